//! The embedded default: with no `DATABASE_URL`, a private PostgreSQL cluster under
//! `<data dir>/postgres`, built from the locally installed binaries, reachable only through a
//! Unix socket inside its own (0700) directory, and stopped again on exit.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const DATABASE: &str = "postback";
const PORT: u16 = 5432;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no PostgreSQL installation found (looked for initdb and pg_ctl on PATH and in /usr/lib/postgresql/*/bin). \
         Install PostgreSQL 13 or newer (Debian/Ubuntu: `apt-get install postgresql`; macOS: `brew install postgresql@15`), \
         or set DATABASE_URL to a PostgreSQL server you run"
    )]
    NotInstalled,
    #[error("running as root: the private cluster must run as the `postgres` user, which does not exist; create it or set DATABASE_URL")]
    NoPostgresUser,
    #[error("{0}")]
    Io(String),
    #[error("{step} failed: {detail}")]
    Command { step: &'static str, detail: String },
}

/// A private cluster. `stop` (or drop) shuts it down if this process started it.
pub struct EmbeddedPg {
    pg_dir: PathBuf,
    bin_dir: PathBuf,
    owner: Option<(u32, u32)>,
    started_here: bool,
}

fn find_bin_dir() -> Option<PathBuf> {
    find_bin_dir_in(std::env::var_os("PATH"), Path::new("/usr/lib/postgresql"))
}

/// The PostgreSQL bin directory: the first `PATH` entry holding both `initdb` and `pg_ctl`
/// (following a symlinked `pg_ctl` to its real directory), else the newest `<root>/<version>/bin`.
fn find_bin_dir_in(path: Option<std::ffi::OsString>, versions_root: &Path) -> Option<PathBuf> {
    let has_both = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(path) = path {
        for dir in std::env::split_paths(&path) {
            if has_both(&dir) {
                // Distribution wrappers and symlinks (e.g. /usr/local/bin/pg_ctl) point at the
                // real bin directory, which also holds psql and postgres.
                let real = dir.join("pg_ctl").canonicalize().ok();
                return Some(
                    real.and_then(|p| p.parent().map(Path::to_path_buf))
                        .unwrap_or(dir),
                );
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(versions_root)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_both(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}

/// uid and gid of the `postgres` user.
fn postgres_user() -> Result<(u32, u32), EmbeddedError> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").arg(flag).arg("postgres").output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    match (id("-u"), id("-g")) {
        (Some(u), Some(g)) => Ok((u, g)),
        _ => Err(EmbeddedError::NoPostgresUser),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn io(context: &str) -> impl Fn(std::io::Error) -> EmbeddedError + '_ {
    move |e| EmbeddedError::Io(format!("{context}: {e}"))
}

impl EmbeddedPg {
    /// Initialises the cluster on first use, starts it unless it already runs, and makes sure
    /// the `postback` database exists. Blocking; call it before the async runtime is busy.
    pub fn start(data_dir: &Path) -> Result<Self, EmbeddedError> {
        let bin_dir = find_bin_dir().ok_or(EmbeddedError::NotInstalled)?;
        std::fs::create_dir_all(data_dir).map_err(io("creating the data directory"))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(io("resolving the data directory"))?;
        let pg_dir = data_dir.join("postgres");
        let owner = if is_root() {
            Some(postgres_user()?)
        } else {
            None
        };
        let mut pg = Self {
            pg_dir,
            bin_dir,
            owner,
            started_here: false,
        };
        pg.ensure_reachable(&data_dir)?;
        if !pg.pg_dir.join("PG_VERSION").is_file() {
            pg.init()?;
        }
        if !pg.is_running() {
            pg.run(
                "starting PostgreSQL",
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    pg.pg_dir.as_os_str(),
                    "-l".as_ref(),
                    pg.pg_dir.join("server.log").as_os_str(),
                    "-w".as_ref(),
                    "-t".as_ref(),
                    "60".as_ref(),
                    "-o".as_ref(),
                    format!(
                        "-c listen_addresses='' -k '{}' -p {PORT}",
                        pg.pg_dir.display()
                    )
                    .as_ref(),
                    "start".as_ref(),
                ],
            )?;
            pg.started_here = true;
        }
        pg.ensure_database()?;
        Ok(pg)
    }

    /// Started as root, the cluster runs as `postgres`, which must be able to enter the data
    /// directory; a checkout under /root, say, is not reachable. Say so plainly up front.
    fn ensure_reachable(&self, data_dir: &Path) -> Result<(), EmbeddedError> {
        let Some((uid, gid)) = self.owner else {
            return Ok(());
        };
        let reachable = Command::new("sh")
            .args(["-c", "cd \"$1\"", "sh"])
            .arg(data_dir)
            .uid(uid)
            .gid(gid)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if reachable {
            return Ok(());
        }
        Err(EmbeddedError::Io(format!(
            "running as root, the private cluster runs as the postgres user, which cannot enter {}: \
             make its parent directories searchable (chmod o+x) or set POSTBACK_DATA_DIR to a \
             directory it can reach (e.g. /var/tmp/postback), or set DATABASE_URL",
            data_dir.display()
        )))
    }

    fn init(&self) -> Result<(), EmbeddedError> {
        std::fs::create_dir_all(&self.pg_dir).map_err(io("creating the cluster directory"))?;
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(&self.pg_dir, Some(uid), Some(gid))
                .map_err(io("handing the cluster directory to the postgres user"))?;
        }
        self.run(
            "initdb",
            "initdb",
            &[
                "-D".as_ref(),
                self.pg_dir.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--locale=C".as_ref(),
            ],
        )?;
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid).env("HOME", &self.pg_dir);
        }
        // The cluster lives in the caller's data directory; keep its own cwd out of the way.
        cmd.current_dir(&self.pg_dir);
        cmd
    }

    fn run(
        &self,
        step: &'static str,
        program: &str,
        args: &[&std::ffi::OsStr],
    ) -> Result<Output, EmbeddedError> {
        let out =
            self.command(program)
                .args(args)
                .output()
                .map_err(|e| EmbeddedError::Command {
                    step,
                    detail: format!("could not run {program}: {e}"),
                })?;
        if !out.status.success() {
            let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            if detail.is_empty() {
                detail = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            }
            if step == "starting PostgreSQL" {
                if let Ok(log) = std::fs::read_to_string(self.pg_dir.join("server.log")) {
                    let tail: Vec<&str> = log.lines().rev().take(10).collect();
                    detail.push_str("\nserver.log:\n");
                    detail.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
                }
            }
            return Err(EmbeddedError::Command { step, detail });
        }
        Ok(out)
    }

    fn is_running(&self) -> bool {
        self.command("pg_ctl")
            .arg("-D")
            .arg(&self.pg_dir)
            .arg("status")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn ensure_database(&self) -> Result<(), EmbeddedError> {
        let psql = self.bin_dir.join("psql");
        let conn_args = |db: &str| -> Vec<String> {
            vec![
                "-h".into(),
                self.pg_dir.display().to_string(),
                "-p".into(),
                PORT.to_string(),
                "-U".into(),
                "postgres".into(),
                "-d".into(),
                db.into(),
                "-tAc".into(),
            ]
        };
        let query = |db: &str, sql: &str| -> Result<String, EmbeddedError> {
            let out = Command::new(&psql)
                .args(conn_args(db))
                .arg(sql)
                .output()
                .map_err(|e| EmbeddedError::Command {
                    step: "psql",
                    detail: e.to_string(),
                })?;
            if !out.status.success() {
                return Err(EmbeddedError::Command {
                    step: "preparing the postback database",
                    detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                });
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let exists = query(
            "postgres",
            &format!("SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"),
        )?;
        if exists != "1" {
            query("postgres", &format!("CREATE DATABASE {DATABASE}"))?;
        }
        Ok(())
    }

    /// A libpq-style connection string for a database of this cluster (over its socket).
    pub fn url_for(&self, database: &str) -> String {
        let host = self.pg_dir.display().to_string().replace('\'', "\\'");
        format!("host='{host}' port={PORT} user=postgres dbname={database}")
    }

    pub fn url(&self) -> String {
        self.url_for(DATABASE)
    }

    pub fn pg_dir(&self) -> &Path {
        &self.pg_dir
    }

    /// Stops the cluster if this process started it. Safe to call twice.
    pub fn stop(&mut self) {
        if !self.started_here {
            return;
        }
        self.started_here = false;
        let result = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.pg_dir)
            .args(["-m", "fast", "-w", "stop"])
            .output();
        match result {
            Ok(o) if o.status.success() => tracing::info!("private PostgreSQL stopped"),
            Ok(o) => tracing::warn!(
                stderr = %String::from_utf8_lossy(&o.stderr).trim(),
                "stopping private PostgreSQL failed"
            ),
            Err(e) => tracing::warn!(error = %e, "stopping private PostgreSQL failed"),
        }
    }
}

impl Drop for EmbeddedPg {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_install(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for tool in ["initdb", "pg_ctl"] {
            std::fs::write(dir.join(tool), "").unwrap();
        }
    }

    #[test]
    fn finds_the_newest_installed_version_or_nothing() {
        let root = tempfile::tempdir().unwrap();
        let empty_path = Some(std::ffi::OsString::from(root.path().join("nowhere")));
        assert_eq!(find_bin_dir_in(empty_path.clone(), root.path()), None);
        fake_install(&root.path().join("13/bin"));
        fake_install(&root.path().join("15/bin"));
        assert_eq!(
            find_bin_dir_in(empty_path, root.path()),
            Some(root.path().join("15/bin"))
        );
        let on_path = root.path().join("custom");
        fake_install(&on_path);
        assert_eq!(
            find_bin_dir_in(Some(on_path.clone().into_os_string()), root.path()),
            Some(on_path.canonicalize().unwrap())
        );
    }

    #[test]
    fn without_postgres_the_message_says_what_to_do() {
        let message = EmbeddedError::NotInstalled.to_string();
        assert!(message.contains("apt-get install postgresql"), "{message}");
        assert!(message.contains("DATABASE_URL"), "{message}");
    }
}
