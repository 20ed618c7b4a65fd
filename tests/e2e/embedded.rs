//! The embedded default: the real binary, no DATABASE_URL, a fresh directory.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Running {
    child: Child,
    base: String,
}

async fn start(dir: &std::path::Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_postback"))
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("TEST_DATABASE_URL")
        .env_remove("POSTBACK_DATA_DIR")
        .env("POSTBACK_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run postback");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(120), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("open ").nth(1) {
                if let Some(url) = rest.split(" for the dashboard").next() {
                    return url.trim_end_matches('/').to_owned();
                }
            }
        }
        String::new()
    })
    .await
    .expect("postback printed its URL in time");
    assert!(
        base.starts_with("http://127.0.0.1:"),
        "printed URL: {base:?}"
    );
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Running { child, base }
}

async fn interrupt(mut running: Running) {
    let pid = running.child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(60), running.child.wait())
        .await
        .expect("postback exits after Ctrl-C")
        .expect("wait");
    assert!(exit.success(), "clean exit, got {exit:?}");
}

#[tokio::test]
async fn runs_on_a_private_cluster_without_database_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start(dir.path()).await;
    let client = crate::helpers::http_client();
    let ready = client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let signup = client
        .post(format!("{}/v1/auth/signup", app.base))
        .json(&json!({ "email": "embedded@example.com", "password": "long enough 1", "workspaceName": "E" }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::CREATED);
    let pg_dir = dir.path().join("data/postgres");
    assert!(
        pg_dir.join("PG_VERSION").is_file(),
        "cluster under ./data/postgres"
    );
    assert!(pg_dir.join("postmaster.pid").is_file(), "cluster running");

    interrupt(app).await;
    assert!(
        !pg_dir.join("postmaster.pid").exists(),
        "the private cluster is stopped on exit"
    );

    // Kept between runs: the account is still there.
    let app = start(dir.path()).await;
    let login = client
        .post(format!("{}/v1/auth/login", app.base))
        .json(&json!({ "email": "embedded@example.com", "password": "long enough 1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    interrupt(app).await;
    assert!(!pg_dir.join("postmaster.pid").exists());
}

#[tokio::test]
async fn migrate_and_user_create_commands_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_url = crate::helpers::fresh_database().await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_postback"))
            .current_dir(dir.path())
            .env("DATABASE_URL", &db_url)
            .args(args)
            .output()
            .expect("run postback")
    };
    let out = run(&["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "user",
        "create",
        "--email",
        "ops@example.com",
        "--password",
        "long enough 1",
        "--admin",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("platform admin"));
    let out = run(&[
        "user",
        "create",
        "--email",
        "ops@example.com",
        "--password",
        "long enough 1",
    ]);
    assert!(!out.status.success(), "duplicate email refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    let app = crate::helpers::TestApp::spawn_on(&db_url).await;
    let resp = crate::helpers::http_client()
        .post(app.url("/v1/auth/login"))
        .json(&json!({ "email": "ops@example.com", "password": "long enough 1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_data_directory_the_cluster_user_cannot_reach_is_explained() {
    use std::os::unix::fs::PermissionsExt;
    let outer = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(outer.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let data = outer.path().join("data");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_postback"))
        .env_remove("DATABASE_URL")
        .env("POSTBACK_DATA_DIR", &data)
        .arg("migrate")
        .output()
        .await
        .expect("run postback");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let as_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if as_root {
        // The cluster would run as `postgres`, which cannot enter a 0700 directory of root's.
        assert!(!out.status.success());
        assert!(stderr.contains("POSTBACK_DATA_DIR"), "{stderr}");
        assert!(stderr.contains("cannot enter"), "{stderr}");
    } else {
        // Run as its owner, the same directory is fine.
        assert!(out.status.success(), "{stderr}");
    }
}
