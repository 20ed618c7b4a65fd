//! A `postback` started for the run: a fresh database `postback_bench_<pid>` on the given
//! PostgreSQL server, the release binary on a free loopback port, and cleanup afterwards (server
//! killed, database dropped).

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::db;

/// How long the server may take to apply migrations and answer `/readyz`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Server output lines kept to explain a failed start.
const KEPT_LINES: usize = 30;

pub struct ManagedServer {
    admin_url: String,
    db_name: String,
    /// Set once `CREATE DATABASE` succeeded: only then is there something to drop.
    db_created: bool,
    child: Option<Child>,
    /// The server's own database.
    pub db_url: String,
}

/// The `postback` binary: `--binary`, or the one next to this executable.
pub fn locate_binary(binary: Option<PathBuf>) -> Result<PathBuf> {
    let path = match binary {
        Some(b) => b,
        None => std::env::current_exe()
            .context("locating the bench executable")?
            .with_file_name("postback"),
    };
    if !path.is_file() {
        bail!(
            "{} not found: run `cargo build --release` first (it builds postback), or pass --binary",
            path.display()
        );
    }
    Ok(path)
}

fn free_loopback_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

impl ManagedServer {
    /// Nothing is created yet; call [`ManagedServer::start`], and [`ManagedServer::stop`] at the
    /// end whatever happened in between.
    pub fn new(admin_url: &str) -> Result<Self> {
        let db_name = format!("postback_bench_{}", std::process::id());
        Ok(Self {
            db_url: db::with_database(admin_url, &db_name)?,
            admin_url: admin_url.to_owned(),
            db_name,
            db_created: false,
            child: None,
        })
    }

    /// The database's name (the same through a pooler).
    pub fn db_name(&self) -> &str {
        &self.db_name
    }

    /// Creates the database, starts the server and waits until `/readyz` answers 200.
    /// Returns the address the server listens on.
    /// `env` is added to the server's environment (`POSTBACK_META_URL` for `--platform`).
    pub async fn start(
        &mut self,
        binary: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Result<SocketAddr> {
        self.create_database().await?;

        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_loopback_port()?));
        let mut child = Command::new(binary)
            .arg("--listen")
            .arg(addr.to_string())
            .env("DATABASE_URL", &self.db_url)
            .env_remove("POSTBACK_BASE_URL")
            .env_remove("POSTBACK_LISTEN")
            // `--webhook` delivers to a receiver on loopback.
            .env("POSTBACK_ALLOW_PRIVATE_TARGETS", "true")
            // The load comes from one client, loopback: its budgets must not be what is measured
            // (the limiter's bookkeeping still runs on every request).
            .env("POSTBACK_CLIENT_RATE_LIMIT", u32::MAX.to_string())
            .env("POSTBACK_SITE_RATE_LIMIT", u32::MAX.to_string())
            .env("POSTBACK_SIGNUP_RATE_LIMIT", u32::MAX.to_string())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("warn".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        // Drain the server's output (a full pipe would block it) and keep the tail for errors.
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(KEPT_LINES)));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(keep_tail(BufReader::new(out), tail.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(keep_tail(BufReader::new(err), tail.clone()));
        }
        self.child = Some(child);

        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let ready_url = format!("http://{addr}/readyz");
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "postback exited ({status}) before it was ready; its last output:\n{}",
                        joined(&tail)
                    );
                }
            }
            if let Ok(resp) = http.get(&ready_url).send().await {
                if resp.status() == reqwest::StatusCode::OK {
                    return Ok(addr);
                }
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "postback did not answer 200 on /readyz within {} s; its last output:\n{}",
                    START_TIMEOUT.as_secs(),
                    joined(&tail)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates the (empty) database; [`ManagedServer::stop`] drops it. `start` calls it; the
    /// `retention` command, which needs no server, calls it alone.
    pub async fn create_database(&mut self) -> Result<()> {
        db::exec(
            &self.admin_url,
            &format!("CREATE DATABASE {}", self.db_name),
        )
        .await
        .context("creating the bench database")?;
        self.db_created = true;
        Ok(())
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Leaves the database in place when the server stops, and says where it is.
    pub fn keep_database(&mut self) {
        if self.db_created {
            eprintln!(
                "keeping database {} ({})",
                self.db_name,
                db::redact(&self.db_url)
            );
            self.db_created = false;
        }
    }

    /// Kills the server and drops the database. Errors are printed, not returned: this runs
    /// on the way out, often after another error.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Err(e) = child.start_kill() {
                eprintln!("postback-bench: stopping postback: {e}");
            }
            let _ = child.wait().await;
        }
        if self.db_created {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name);
            match db::exec(&self.admin_url, &sql).await {
                Ok(()) => self.db_created = false,
                Err(e) => eprintln!(
                    "postback-bench: could not drop database {}: {e:#}",
                    self.db_name
                ),
            }
        }
    }
}

async fn keep_tail<R: tokio::io::AsyncBufRead + Unpin>(
    reader: R,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == KEPT_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

fn joined(tail: &Mutex<VecDeque<String>>) -> String {
    tail.lock()
        .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// (VmRSS, VmHWM) of a process in KiB, from `/proc/<pid>/status`.
pub fn memory_kib(pid: u32) -> (Option<u64>, Option<u64>) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (None, None);
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}
