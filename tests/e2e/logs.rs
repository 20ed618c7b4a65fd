//! Nothing secret in the logs: the real binary, at `info` with Postback's own crates at `debug`,
//! goes through sign-up, a failed log-in, keys, inbound events with personal data, a signed
//! webhook, a platform connection, an access token, the tracking endpoints and the mail flows
//! (verification, invitation, password reset, with mails written to the outbox directory); its
//! whole output must not contain any password, key, token, link, secret, email or phone number
//! it handled.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::receiver::{Receiver, Reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_secrets_or_personal_data() {
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok().body(r#"{"events_received": 1}"#));
    let db_url = crate::helpers::fresh_database().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_postback"))
        .current_dir(dir.path())
        .env("DATABASE_URL", &db_url)
        .env("POSTBACK_DATA_DIR", dir.path())
        .env("POSTBACK_LISTEN", "127.0.0.1:0")
        .env("POSTBACK_ALLOW_PRIVATE_TARGETS", "true")
        .env("POSTBACK_META_URL", receiver.url(""))
        .env(
            "RUST_LOG",
            "info,postback=debug,postback_api=debug,postback_runtime=debug,postback_domain=debug,postback_web=debug",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run postback");
    let output = Arc::new(Mutex::new(String::new()));
    let (base_tx, base_rx) = tokio::sync::oneshot::channel::<String>();
    let mut base_tx = Some(base_tx);
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut err = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let sink = output.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = out.next_line().await {
            if let Some(url) = line
                .split("open ")
                .nth(1)
                .and_then(|r| r.split(" for the dashboard").next())
            {
                if let Some(tx) = base_tx.take() {
                    let _ = tx.send(url.trim_end_matches('/').to_owned());
                }
            }
            sink.lock().expect("lock").push_str(&(line + "\n"));
        }
    });
    let sink = output.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = err.next_line().await {
            sink.lock().expect("lock").push_str(&(line + "\n"));
        }
    });
    let base = tokio::time::timeout(Duration::from_secs(60), base_rx)
        .await
        .expect("started in time")
        .expect("printed its URL");

    let http = crate::helpers::http_builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let password = "Log-Secret-Password-42";
    let (status, _) = send(&http, &base, "/v1/auth/signup", json!({"email": "Secret.Owner@Example.com", "password": password, "workspaceName": "Logs Co"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let anon = crate::helpers::http_client();
    let (status, _) = send(
        &anon,
        &base,
        "/v1/auth/login",
        json!({"email": "secret.owner@example.com", "password": "Wrong-Password-99"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, domain) = send(
        &http,
        &base,
        "/v1/domains",
        json!({"hostname": "logs.example.com"}),
    )
    .await;
    let domain_id = domain["id"].as_str().expect("domain").to_owned();
    let site = domain["siteId"].as_str().expect("site").to_owned();
    let (_, key) = send(
        &http,
        &base,
        &format!("/v1/domains/{domain_id}/keys"),
        json!({"name": "Backend"}),
    )
    .await;
    let key = key["key"].as_str().expect("key").to_owned();
    let (status, hook) = send(
        &http,
        &base,
        "/v1/integrations/webhooks",
        json!({"url": receiver.url("/hook"), "secret": "log-webhook-secret-7"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let resp = http
        .put(format!("{base}/v1/domains/{domain_id}/connections/meta"))
        .json(&json!({"settings": {"pixelId": "12345"}, "credentials": {"accessToken": "EAAB-log-access-token"}}))
        .send()
        .await
        .expect("connect");
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, token) = send(&http, &base, "/v1/tokens", json!({"name": "Script"})).await;
    let token = token["token"].as_str().expect("token").to_owned();
    let resp = anon
        .get(format!("{base}/v1/domains"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("token use");
    assert_eq!(resp.status(), StatusCode::OK);
    for path in ["/__cc/collect", "/__cc/identify"] {
        let resp = anon
            .post(format!("{base}{path}?email=query.person@example.com"))
            .header("Content-Type", "text/plain")
            .body(json!({"site": site, "vid": "visitor-logs-1", "url": "https://logs.example.com/?gclid=x", "email": "tracked.person@example.com"}).to_string())
            .send()
            .await
            .expect("tracking");
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }
    let resp = anon
        .post(format!("{base}/__cc/inbound"))
        .header("X-CC-Api-Key", &key)
        .json(&json!({"email": "buyer.private@example.com", "event": "purchase", "phone": "+1 555 867 5309", "firstName": "Privatefirst"}))
        .send()
        .await
        .expect("inbound");
    assert_eq!(resp.status(), StatusCode::OK);
    // An unknown key, and a bad body, are logged as refusals without their content.
    let resp = anon
        .post(format!("{base}/__cc/inbound"))
        .header(
            "X-CC-Api-Key",
            "cc_0000000000000000000000000000000000000000",
        )
        .json(&json!({"email": "refused.person@example.com", "event": "purchase"}))
        .send()
        .await
        .expect("inbound");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    receiver.wait_for(2, Duration::from_secs(15)).await;

    // Mail flows, with no SMTP configured: each mail is an .eml file in the data directory.
    let outbox = dir.path().join("outbox");
    let verify = mailed_token(&outbox, "/verify-email?token=", 1).await;
    let (status, _) = send(
        &http,
        &base,
        "/v1/members",
        json!({"email": "invitee.private@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let invitation = mailed_token(&outbox, "/invitations/accept?token=", 1).await;
    let page = anon
        .get(format!("{base}/invitations/accept?token={invitation}"))
        .send()
        .await
        .expect("invitation page");
    assert_eq!(page.status(), StatusCode::OK);
    let (status, _) = send(&anon, &base, "/v1/auth/verify", json!({"token": verify})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(
        &anon,
        &base,
        "/v1/auth/password/forgot",
        json!({"email": "secret.owner@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let reset = mailed_token(&outbox, "/reset-password?token=", 1).await;
    let new_password = "Log-New-Password-43";
    let (status, _) = send(
        &anon,
        &base,
        "/v1/auth/password/reset",
        json!({"token": reset, "password": new_password}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pid = child.id().expect("pid").to_string();
    let _ = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = output.lock().expect("lock").to_lowercase();
    assert!(
        logs.contains("postback is running"),
        "the output was captured:\n{logs}"
    );
    assert!(
        logs.contains("/__cc/inbound"),
        "requests are logged:\n{logs}"
    );
    assert!(
        logs.contains("mail written to the outbox"),
        "the outbox default says where mail went:\n{logs}"
    );
    for secret in [
        password,
        "wrong-password-99",
        &key,
        &token,
        "log-webhook-secret-7",
        "eaab-log-access-token",
        "secret.owner@example.com",
        "query.person@example.com",
        "tracked.person@example.com",
        "buyer.private@example.com",
        "refused.person@example.com",
        "8675309",
        "privatefirst",
        "invitee.private@example.com",
        new_password,
        &verify,
        &invitation,
        &reset,
        "token=",
    ] {
        assert!(
            !logs.contains(&secret.to_lowercase()),
            "the logs contain {secret}:\n{logs}"
        );
    }
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let resp = client
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or_default())
}

/// Waits until `count` mails in `outbox` hold a link with `marker` (e.g. `/verify-email?token=`)
/// and returns the token of the newest. Bodies are quoted-printable or base64 in the `.eml`.
async fn mailed_token(outbox: &std::path::Path, marker: &str, count: usize) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut found: Vec<(std::time::SystemTime, String)> = Vec::new();
        for entry in std::fs::read_dir(outbox).into_iter().flatten().flatten() {
            let raw = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let text = decoded(&raw);
            if let Some(at) = text.find(marker) {
                let token: String = text[at + marker.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                let when = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                found.push((when, token));
            }
        }
        if found.len() >= count {
            found.sort();
            return found.pop().expect("a token").1;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no mail with {marker} in {}",
            outbox.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The raw mail with quoted-printable undone, followed by every base64 block decoded.
fn decoded(raw: &str) -> String {
    use base64::Engine;
    let mut out = raw
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let mut block = String::new();
    for line in raw.lines().chain(std::iter::once("")) {
        let line = line.trim_end();
        if line.len() >= 16
            && line
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=')
        {
            block.push_str(line);
        } else if !block.is_empty() {
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&block) {
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
            block.clear();
        }
    }
    out
}
