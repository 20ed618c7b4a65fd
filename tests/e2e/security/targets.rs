//! Webhook targets: DNS that changes between save and send (a fake delivery lookup), private
//! addresses in every spelling and behind names, and proxies that would resolve names past the
//! guard.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postback_runtime::delivery::lookup::Lookup;
use postback_runtime::delivery::DeliveryConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{text, WAIT};
use crate::helpers::{csrf_in, fresh_database, purchase, test_delivery, TestApp, User, PASSWORD};
use crate::receiver::{Receiver, Reply};

/// DNS for the delivery lookup that answers what the test says, and can change its mind.
#[derive(Clone, Default)]
struct FakeDns(Arc<Mutex<HashMap<String, Vec<IpAddr>>>>);

impl FakeDns {
    fn set(&self, host: &str, ips: &[&str]) {
        let ips = ips.iter().map(|ip| ip.parse().expect("ip")).collect();
        self.0.lock().expect("dns").insert(host.to_owned(), ips);
    }

    fn lookup(&self) -> Lookup {
        let table = self.0.clone();
        Lookup::new(move |host| {
            let answer = table.lock().expect("dns").get(host).cloned();
            Box::pin(async move {
                answer.ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such name")
                })
            })
        })
    }
}

fn delivery_with(dns: &FakeDns, allow_private_targets: bool) -> DeliveryConfig {
    DeliveryConfig {
        allow_private_targets,
        lookup: dns.lookup(),
        ..test_delivery()
    }
}

async fn shop(app: &TestApp, email: &str) -> (User, String) {
    let user = app.signup(email).await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    (user, key)
}

/// DNS rebinding: `rebind.example` answers a public address when the webhook is saved, then
/// the loopback address a receiver listens on. The attempt is refused at send time with the
/// address named, the receiver gets nothing, and the delivery fails visibly after its retries
/// (it is not dropped). The same lookup with private targets allowed does reach the receiver,
/// so the refusal is the guard's and not a broken fake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_host_that_rebinds_to_loopback_after_save_is_refused_at_send() {
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let port = receiver.base.rsplit(':').next().expect("port").to_owned();
    let url = format!("http://rebind.example:{port}/hook");
    let dns = FakeDns::default();
    dns.set("rebind.example", &["93.184.216.34"]);

    let app = TestApp::spawn_with(&fresh_database().await, delivery_with(&dns, false)).await;
    let (user, key) = shop(&app, "rebind@example.com").await;
    let (status, hook) = user
        .post("/v1/integrations/webhooks", json!({"url": url}))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "saved while it looks public: {hook}"
    );
    let id = text(&hook["id"]);

    dns.set("rebind.example", &["127.0.0.1"]);
    let (status, _) = app.inbound(&key, purchase()).await;
    assert_eq!(status, StatusCode::OK);
    let deadline = Instant::now() + WAIT;
    let delivery = loop {
        let (_, page) = user
            .get(&format!("/v1/integrations/webhooks/{id}/deliveries"))
            .await;
        let d = page["items"][0].clone();
        if d["status"] == "failed" {
            break d;
        }
        assert!(Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let attempts = delivery["attemptLog"].as_array().expect("attempts");
    assert_eq!(
        attempts.len(),
        4,
        "every attempt of the round was made: {delivery}"
    );
    for a in attempts {
        let error = text(&a["error"]);
        assert!(
            error.contains("refused") && error.contains("127.0.0.1"),
            "the attempt names the refused address: {error}"
        );
        assert_eq!(a["statusCode"], Value::Null);
    }
    assert!(
        text(&delivery["lastError"]).contains("127.0.0.1"),
        "{delivery}"
    );
    let (_, one) = user
        .get(&format!("/v1/deliveries/{}", text(&delivery["id"])))
        .await;
    assert_eq!(one["status"], "failed");
    assert!(receiver.received().is_empty(), "nothing reached loopback");

    // Saved now, the same URL is refused at once, naming the address.
    let (status, answer) = user
        .patch(
            &format!("/v1/integrations/webhooks/{id}"),
            json!({"url": url}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        text(&answer["error"]).contains("rebind.example resolves to 127.0.0.1"),
        "{answer}"
    );

    let lenient = TestApp::spawn_with(&fresh_database().await, delivery_with(&dns, true)).await;
    let (user, key) = shop(&lenient, "allowed@example.com").await;
    let (status, hook) = user
        .post("/v1/integrations/webhooks", json!({"url": url}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    assert_eq!(lenient.inbound(&key, purchase()).await.0, StatusCode::OK);
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].path, "/hook");
}

/// Private, loopback, link-local and unspecified targets at save time, as literals in the
/// spellings URL parsers accept (decimal, hex, octal, short forms) and as names whose DNS
/// answers them; webhooks.rs covers 127.0.0.1, 10/8, 169.254.169.254, ::1, ::ffff:127.0.0.1,
/// fd00::1, 100.64/10 and localhost as literals.
#[tokio::test]
async fn private_targets_in_every_spelling_and_behind_names_are_refused_at_save() {
    let dns = FakeDns::default();
    dns.set("public.example", &["93.184.216.34"]);
    let names = [
        ("ten.example", "10.20.30.40"),
        ("one72.example", "172.16.0.1"),
        ("one72-top.example", "172.31.255.254"),
        ("one92.example", "192.168.1.1"),
        ("loopback.example", "127.0.0.1"),
        ("metadata.example", "169.254.169.254"),
        ("zero.example", "0.0.0.0"),
        ("v6-loopback.example", "::1"),
        ("v6-ula.example", "fd12:3456:789a::1"),
        ("v6-link-local.example", "fe80::1"),
        ("v4-mapped.example", "::ffff:127.0.0.1"),
        ("v4-mapped-metadata.example", "::ffff:169.254.169.254"),
    ];
    for (name, ip) in names {
        dns.set(name, &[ip]);
    }
    // One public and one private answer: refused (a client might pick either).
    dns.set("mixed.example", &["93.184.216.34", "192.168.0.7"]);
    let app = TestApp::spawn_with(&fresh_database().await, delivery_with(&dns, false)).await;
    let user = app.signup("spellings@example.com").await;

    let literals = [
        "http://172.16.0.1/hook",
        "http://172.31.255.255/hook",
        "http://192.168.1.1/hook",
        "http://[fe80::1]/hook",
        "http://[fe80::a:b:c:d]:8080/hook",
        "http://0.0.0.0/hook",
        "http://0/hook",
        "http://[::]/hook",
        "http://2130706433/hook",
        "http://0x7f000001/hook",
        "http://0x7F.0.0.1/hook",
        "http://0177.0.0.1/hook",
        "http://017700000001/hook",
        "http://127.1/hook",
        "http://3232235777/hook",
        "http://0xa9fea9fe/latest/meta-data",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data",
        "http://[0:0:0:0:0:ffff:7f00:1]/hook",
        "https://user:pass@127.0.0.1/hook",
    ];
    let mut problems = Vec::new();
    for url in literals {
        let (status, answer) = user
            .post("/v1/integrations/webhooks", json!({"url": url}))
            .await;
        let error = answer["error"].as_str().unwrap_or("");
        if status != StatusCode::BAD_REQUEST || !error.contains("public address") {
            problems.push(format!("{url} → {status} {answer}"));
        }
    }
    for (name, ip) in names
        .iter()
        .copied()
        .chain([("mixed.example", "192.168.0.7")])
    {
        let url = format!("https://{name}/hook");
        let (status, answer) = user
            .post("/v1/integrations/webhooks", json!({"url": url}))
            .await;
        let error = answer["error"].as_str().unwrap_or("");
        let shown: IpAddr = ip.parse().expect("ip");
        if status != StatusCode::BAD_REQUEST || !error.contains(&format!("resolves to {shown}")) {
            problems.push(format!("{url} ({ip}) → {status} {answer}"));
        }
    }
    assert!(problems.is_empty(), "accepted:\n{}", problems.join("\n"));

    // A public name is saved; changing it to a private spelling is refused like creating one.
    let (status, hook) = user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": "https://public.example/hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let (status, answer) = user
        .patch(
            &format!("/v1/integrations/webhooks/{}", text(&hook["id"])),
            json!({"url": "http://0x7f000001/hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    // The dashboard's form runs the same check.
    let (_, html) = user.page("/webhooks/new").await;
    let resp = user
        .client
        .post(app.url("/webhooks"))
        .form(&[
            ("csrf_token", csrf_in(&html).as_str()),
            ("url", "http://0177.0.0.1/hook"),
        ])
        .send()
        .await
        .expect("form");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.expect("html").contains("public address"));
    let (_, list) = user.get("/v1/integrations/webhooks").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
}

/// The real binary on a fresh database, with these environment variables on top of a private
/// data directory and a port of its own; answers its base URL. Proxy settings the tests run
/// with are not passed on.
async fn run_postback(
    env: &[(&str, String)],
) -> (tokio::process::Child, String, tempfile::TempDir) {
    use tokio::io::AsyncBufReadExt;
    let db_url = fresh_database().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_postback"));
    cmd.current_dir(dir.path())
        .env("DATABASE_URL", &db_url)
        .env("POSTBACK_DATA_DIR", dir.path())
        .env("POSTBACK_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info");
    for var in [
        "POSTBACK_ALLOW_PRIVATE_TARGETS",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run postback");
    let mut out = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = out.next_line().await {
            if let Some(url) = line
                .split("open ")
                .nth(1)
                .and_then(|r| r.split(" for the dashboard").next())
            {
                return url.trim_end_matches('/').to_owned();
            }
        }
        panic!("postback ended without printing its URL");
    })
    .await
    .expect("started in time");
    // Keep reading, so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
    (child, base, dir)
}

/// A proxy in the environment (`HTTP_PROXY`) would resolve the target's name itself, where the
/// send-time check cannot see it: while private targets are refused, deliveries never go
/// through one. Here the "proxy" is a recorder; a webhook whose name does not resolve must fail
/// to send rather than reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_do_not_go_through_a_proxy_that_would_resolve_names_unchecked() {
    let proxy = Receiver::start().await;
    proxy.always(Reply::ok());
    let (_child, base, _dir) = run_postback(&[
        ("HTTP_PROXY", proxy.url("")),
        ("http_proxy", proxy.url("")),
        ("POSTBACK_RETRY_SCHEDULE", "100ms".to_owned()),
    ])
    .await;
    let http = crate::helpers::http_builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let user = User {
        client: http,
        base,
        workspace_id: String::new(),
    };
    let (status, _) = user
        .post(
            "/v1/auth/signup",
            json!({"email": "proxy@example.com", "password": PASSWORD, "workspaceName": "Proxy"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    // Does not resolve: accepted at save, decided at send.
    let (status, hook) = user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": "http://internal-only.proxied.invalid/hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let resp = crate::helpers::http_client()
        .post(format!("{}/__cc/inbound", user.base))
        .header("X-CC-Api-Key", &key)
        .json(&purchase())
        .send()
        .await
        .expect("inbound");
    assert_eq!(resp.status(), StatusCode::OK);
    let id = text(&hook["id"]);
    let deadline = Instant::now() + WAIT;
    let delivery = loop {
        let (_, page) = user
            .get(&format!("/v1/integrations/webhooks/{id}/deliveries"))
            .await;
        let d = page["items"][0].clone();
        if d["status"] == "failed" || d["status"] == "succeeded" {
            break d;
        }
        assert!(Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        proxy.received().is_empty(),
        "the delivery went through the proxy: {delivery}"
    );
    assert_eq!(delivery["status"], "failed", "{delivery}");
}
