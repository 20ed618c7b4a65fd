//! Starts a real `postback` on a fresh database, sets up an account, and cleans up after.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    base: String,
    admin_url: String,
    db_url: String,
    db_name: String,
}

pub struct Account {
    pub key: String,
    pub domain_id: String,
}

fn with_database(url: &str, db: &str) -> Result<String, String> {
    let (prefix, rest) = url
        .rsplit_once('/')
        .ok_or("DATABASE_URL has no database name")?;
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    Ok(format!("{prefix}/{db}{query}"))
}

async fn exec(url: &str, sql: &str) -> Result<(), String> {
    let mut conn = AsyncPgConnection::establish(url).await.map_err(|e| {
        format!(
            "connecting to {}: {e}",
            url.split('@').next_back().unwrap_or("")
        )
    })?;
    diesel::sql_query(sql)
        .execute(&mut conn)
        .await
        .map_err(|e| format!("{sql}: {e}"))?;
    Ok(())
}

impl Server {
    pub async fn start(
        admin_url: &str,
        binary: Option<std::path::PathBuf>,
    ) -> Result<Self, String> {
        let binary = match binary {
            Some(b) => b,
            None => std::env::current_exe()
                .map_err(|e| e.to_string())?
                .with_file_name("postback"),
        };
        if !binary.is_file() {
            return Err(format!(
                "{} not found: run `cargo build --release` first (or pass --binary)",
                binary.display()
            ));
        }
        let db_name = format!("postback_bench_{}", std::process::id());
        exec(admin_url, &format!("CREATE DATABASE {db_name}")).await?;
        let db_url = with_database(admin_url, &db_name)?;
        let mut child = Command::new(&binary)
            .env("DATABASE_URL", &db_url)
            .env("POSTBACK_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn,postback=info")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("open ").nth(1) {
                    return rest
                        .split(" for the dashboard")
                        .next()
                        .map(|u| u.trim_end_matches('/').to_owned());
                }
            }
            None
        })
        .await
        .map_err(|_| "postback did not start within 60 s".to_owned())?
        .ok_or("postback exited before printing its URL")?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let addr: SocketAddr = base
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| format!("address {base}: {e}"))?;
        Ok(Self {
            child,
            addr,
            base,
            admin_url: admin_url.to_owned(),
            db_url,
            db_name,
        })
    }

    /// A user, a domain and a key, on the unlimited plan so the quota does not cut the run short.
    pub async fn setup_account(&self) -> Result<Account, String> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .map_err(|e| e.to_string())?;
        let post = |path: &str, body: Value| {
            let req = http.post(format!("{}{path}", self.base)).json(&body);
            async move {
                let resp = req.send().await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let body: Value = resp.json().await.map_err(|e| e.to_string())?;
                if !status.is_success() {
                    return Err(format!("{status}: {body}"));
                }
                Ok::<Value, String>(body)
            }
        };
        let signup = post(
            "/v1/auth/signup",
            json!({"email": "bench@example.com", "password": "benchmark password", "workspaceName": "Bench"}),
        )
        .await?;
        let workspace = signup["workspaceId"]
            .as_str()
            .ok_or("no workspaceId")?
            .to_owned();
        exec(
            &self.db_url,
            &format!("UPDATE workspaces SET plan = 'command' WHERE id = '{workspace}'"),
        )
        .await?;
        let domain = post("/v1/domains", json!({"hostname": "bench.example.com"})).await?;
        let domain_id = domain["id"].as_str().ok_or("no domain id")?.to_owned();
        let key = post(
            &format!("/v1/domains/{domain_id}/keys"),
            json!({"name": "bench"}),
        )
        .await?;
        Ok(Account {
            key: key["key"].as_str().ok_or("no key")?.to_owned(),
            domain_id,
        })
    }

    pub async fn count_events(&self, domain_id: &str) -> Result<i64, String> {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = AsyncPgConnection::establish(&self.db_url)
            .await
            .map_err(|e| e.to_string())?;
        let rows: Vec<Count> = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM events WHERE domain_id = '{domain_id}'"
        ))
        .load(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
        Ok(rows.into_iter().next().map_or(0, |c| c.n))
    }

    /// (VmRSS, VmHWM) of the server in KiB.
    pub fn memory_kib(&self) -> (Option<u64>, Option<u64>) {
        let Some(pid) = self.child.id() else {
            return (None, None);
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        let _ = exec(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name),
        )
        .await;
    }
}
