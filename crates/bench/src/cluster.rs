//! The bench's own PostgreSQL: a private cluster initialised with the stock settings (as
//! `initdb` writes them: autovacuum on, 128 MB shared buffers, synchronous commit), under
//! `/var/tmp`, reachable through a Unix socket only, stopped and removed at the end. The same
//! code as `postback`'s embedded default, so it runs wherever Postback's own default does.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use postback::embedded_pg::EmbeddedPg;

pub struct PrivateCluster {
    dir: PathBuf,
    pg: EmbeddedPg,
    keep: bool,
}

impl PrivateCluster {
    /// Initialises and starts the cluster. With `keep`, its directory stays after the run.
    pub async fn start(keep: bool) -> Result<Self> {
        // Not /tmp: started as root the cluster runs as `postgres`, and /var/tmp is the usual
        // place both can reach that outlives nothing important.
        let dir = PathBuf::from("/var/tmp").join(format!("postback-bench-{}", std::process::id()));
        eprintln!(
            "initialising a private PostgreSQL cluster with stock settings in {}",
            dir.display()
        );
        let at = dir.clone();
        let pg = tokio::task::spawn_blocking(move || EmbeddedPg::start(&at))
            .await
            .context("starting the private cluster")?
            .context("starting the private cluster (or pass --database-url / --shared-server)")?;
        Ok(Self { dir, pg, keep })
    }

    /// A connection string to its `postgres` database, for creating the bench's database.
    pub fn admin_url(&self) -> String {
        self.pg.url_for("postgres")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the cluster and removes its directory (unless kept).
    pub async fn stop(self) {
        let Self { dir, mut pg, keep } = self;
        let pg_dir = pg.pg_dir().to_owned();
        let _ = tokio::task::spawn_blocking(move || pg.stop()).await;
        if keep {
            eprintln!(
                "keeping the private cluster at {} (start it with `pg_ctl -D {} start`)",
                dir.display(),
                pg_dir.display()
            );
        } else if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("postback-bench: could not remove {}: {e}", dir.display());
        }
    }
}
