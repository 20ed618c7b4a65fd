//! Issue 18 end to end: secret rotation with an overlap (verified with seed 003's Node snippet
//! and the `standardwebhooks` library), bulk recovery under a rate limit, a concurrency cap held
//! across two instances, the circuit breaker, custom headers, and a slow receiver that does not
//! delay another tenant's deliveries.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{purchase, TestApp, User};
use crate::receiver::{Received, Receiver, Reply};

const WAIT: Duration = Duration::from_secs(20);

struct Tenant {
    user: User,
    key: String,
}

async fn tenant(app: &TestApp, email: &str) -> Tenant {
    let user = app.signup(email).await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    Tenant { user, key }
}

async fn webhook(user: &User, body: Value) -> Value {
    let (status, hook) = user.post("/v1/integrations/webhooks", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body} → {hook}");
    hook
}

async fn event(app: &TestApp, key: &str) {
    let (status, answer) = app.inbound(key, purchase()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// Sends `n` events, `parallel` at a time.
async fn events(app: &TestApp, key: &str, n: usize, parallel: usize) {
    let client = crate::helpers::http_client();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        if set.len() >= parallel {
            set.join_next().await.expect("task").expect("sent");
        }
        let (client, url, key) = (client.clone(), app.url("/__cc/inbound"), key.to_owned());
        set.spawn(async move {
            let resp = client
                .post(url)
                .header("X-CC-Api-Key", key)
                .json(&purchase())
                .send()
                .await
                .expect("inbound");
            assert_eq!(resp.status(), StatusCode::OK);
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("sent");
    }
}

/// Runs a Node script in tests/browser (where `standardwebhooks` is installed); whether it
/// exited 0, and what it printed.
async fn node(script: &str, env: &[(&str, &str)]) -> (bool, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = tokio::process::Command::new("node");
    cmd.current_dir(root.join("tests/browser"))
        .args(["-e", script]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("node runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    )
}

/// Seed 003's verification snippet, exactly as printed, applied to what the receiver got.
const SEED_003_VERIFY: &str = r#"const crypto = require('crypto');

function verifyWebhook(body, signature, secret) {
  const expected = 'sha256=' + crypto
    .createHmac('sha256', secret)
    .update(body)
    .digest('hex');
  return crypto.timingSafeEqual(
    Buffer.from(signature),
    Buffer.from(expected)
  );
}
console.log(verifyWebhook(process.env.BODY, process.env.SIGNATURE, process.env.SECRET));
"#;

/// The `standardwebhooks` library's verification, as its README shows it.
const STANDARD_VERIFY: &str = r#"const { Webhook } = require('standardwebhooks');
const wh = new Webhook(process.env.SECRET);
const payload = wh.verify(process.env.BODY, {
  'webhook-id': process.env.ID,
  'webhook-timestamp': process.env.TS,
  'webhook-signature': process.env.SIG,
});
console.log(payload.event);
"#;

/// Whether a receiver holding `secret` accepts `r` with the standard library.
async fn standard_accepts(r: &Received, secret: &str) -> bool {
    let body = String::from_utf8(r.body.clone()).expect("utf-8");
    let (ok, out) = node(
        STANDARD_VERIFY,
        &[
            ("SECRET", secret),
            ("BODY", &body),
            ("ID", r.header("webhook-id").expect("id")),
            ("TS", r.header("webhook-timestamp").expect("ts")),
            ("SIG", r.header("webhook-signature").expect("sig")),
        ],
    )
    .await;
    if ok {
        assert_eq!(out, "purchase");
    }
    ok
}

/// Whether seed 003's snippet with `secret` accepts the signature in `header`.
async fn seed_accepts(r: &Received, header: &str, secret: &str) -> bool {
    let Some(signature) = r.header(header) else {
        return false;
    };
    let body = String::from_utf8(r.body.clone()).expect("utf-8");
    let (ok, out) = node(
        SEED_003_VERIFY,
        &[
            ("SECRET", secret),
            ("BODY", &body),
            ("SIGNATURE", signature),
        ],
    )
    .await;
    // timingSafeEqual throws on a length mismatch; a wrong signature of the right length is false.
    ok && out == "true"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_overlap_old_and_new_secrets_both_verify_and_after_it_only_the_new() {
    let app = TestApp::spawn().await;
    let t = tenant(&app, "rotate@example.com").await;
    let receiver = Receiver::start().await;
    let hook = webhook(&t.user, json!({ "url": receiver.url("/hook") })).await;
    let id = hook["id"].as_str().expect("id");
    let old = hook["secret"].as_str().expect("secret").to_owned();

    let (status, rotated) = t
        .user
        .post(
            &format!("/v1/integrations/webhooks/{id}/secret/rotate"),
            json!({ "overlapSeconds": 3 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().expect("new secret").to_owned();
    assert_ne!(new, old);
    assert!(rotated["previousSecretExpiresAt"].is_string(), "{rotated}");

    event(&app, &t.key).await;
    let got = receiver.wait_for(1, WAIT).await;
    let r = &got[0];
    // Standard Webhooks: both signatures, space-separated; a receiver with either secret accepts.
    assert_eq!(
        r.header("webhook-signature")
            .expect("sig")
            .split(' ')
            .count(),
        2
    );
    assert!(standard_accepts(r, &new).await, "new secret, standard");
    assert!(standard_accepts(r, &old).await, "old secret, standard");
    // Seed 003: the new secret in X-Webhook-Signature, the old one in the second header.
    assert!(seed_accepts(r, "X-Webhook-Signature", &new).await);
    assert!(seed_accepts(r, "X-Webhook-Signature-Previous", &old).await);
    assert!(!seed_accepts(r, "X-Webhook-Signature", &old).await);

    // After the overlap only the new secret signs.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (_, after) = t.user.get(&format!("/v1/integrations/webhooks/{id}")).await;
    assert!(after["previousSecretExpiresAt"].is_null(), "{after}");
    event(&app, &t.key).await;
    let got = receiver.wait_for(2, WAIT).await;
    let r = &got[1];
    assert!(
        standard_accepts(r, &new).await,
        "new secret after the overlap"
    );
    assert!(
        !standard_accepts(r, &old).await,
        "old secret after the overlap"
    );
    assert!(seed_accepts(r, "X-Webhook-Signature", &new).await);
    assert!(r.header("X-Webhook-Signature-Previous").is_none());

    // Ending an overlap by hand: the next delivery carries one signature.
    let (status, _) = t
        .user
        .post(
            &format!("/v1/integrations/webhooks/{id}/secret/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, during) = t.user.get(&format!("/v1/integrations/webhooks/{id}")).await;
    let until = during["previousSecretExpiresAt"]
        .as_str()
        .expect("default overlap");
    let until = chrono::DateTime::parse_from_rfc3339(until).expect("time");
    let hours = (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes();
    assert!(
        (23 * 60..=24 * 60).contains(&hours),
        "default 24 h, got {hours} min"
    );
    let (status, ended) = t
        .user
        .delete(&format!("/v1/integrations/webhooks/{id}/secret/previous"))
        .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert!(ended["previousSecretExpiresAt"].is_null());
    event(&app, &t.key).await;
    let got = receiver.wait_for(3, WAIT).await;
    assert_eq!(
        got[2]
            .header("webhook-signature")
            .expect("sig")
            .split(' ')
            .count(),
        1
    );
    assert!(got[2].header("X-Webhook-Signature-Previous").is_none());
    // The previous secret is stored sealed, like the secret.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM webhooks WHERE previous_secret LIKE '%{}%'",
            &old[6..]
        ))
        .await,
        0
    );
    // Audited.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_log WHERE action IN ('webhook.secret_rotated', 'webhook.secret_overlap_ended')")
            .await,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_recovery_refuse_bad_input_and_other_tenants() {
    let app = TestApp::spawn().await;
    let a = tenant(&app, "owner-a@example.com").await;
    let b = tenant(&app, "owner-b@example.com").await;
    let hook = webhook(&a.user, json!({ "url": "http://127.0.0.1:9/hook" })).await;
    let id = hook["id"].as_str().expect("id");
    for (path, body, field) in [
        (
            "secret/rotate",
            json!({ "overlapSeconds": 604801 }),
            "overlapSeconds",
        ),
        (
            "secret/rotate",
            json!({ "overlapSeconds": "1h" }),
            "overlapSeconds",
        ),
        ("secret/rotate", json!({ "overlap": 5 }), "overlap"),
        ("recover", json!({ "since": "yesterday" }), "since"),
        (
            "recover",
            json!({ "since": "2026-12-04T10:00:00Z", "until": "an hour later" }),
            "until",
        ),
        ("recover", json!({}), "since"),
    ] {
        let (status, answer) = a
            .user
            .post(
                &format!("/v1/integrations/webhooks/{id}/{path}"),
                body.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert!(
            answer["error"].as_str().expect("error").contains(field),
            "{body} → {answer}"
        );
    }
    for (body, field) in [
        (json!({ "rateLimit": 0 }), "rateLimit"),
        (json!({ "rateLimit": 1.5 }), "rateLimit"),
        (json!({ "maxInFlight": 5000 }), "maxInFlight"),
        (
            json!({ "headers": [{ "name": "webhook-signature", "value": "x" }] }),
            "headers",
        ),
        (
            json!({ "headers": [{ "name": "Bad Name", "value": "x" }] }),
            "headers",
        ),
        (
            json!({ "headers": [{ "name": "X-A", "value": "a\r\nX-B: b" }] }),
            "headers",
        ),
        (json!({ "headers": { "X-A": "b" } }), "headers"),
    ] {
        let (status, answer) = a
            .user
            .patch(&format!("/v1/integrations/webhooks/{id}"), body.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert!(
            answer["error"].as_str().expect("error").contains(field),
            "{body} → {answer}"
        );
    }
    // Another tenant's webhook: 404 on every new route.
    for (method, path) in [
        (reqwest::Method::POST, "secret/rotate"),
        (reqwest::Method::DELETE, "secret/previous"),
        (reqwest::Method::POST, "recover"),
        (reqwest::Method::GET, "queue"),
    ] {
        let body =
            (method == reqwest::Method::POST).then(|| json!({ "since": "2026-01-01T00:00:00Z" }));
        let body = if path == "secret/rotate" {
            Some(json!({}))
        } else {
            body
        };
        let (status, answer) = b
            .user
            .send(
                method.clone(),
                &format!("/v1/integrations/webhooks/{id}/{path}"),
                body,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path} → {answer}");
    }
    let (_, still) = a.user.get(&format!("/v1/integrations/webhooks/{id}")).await;
    assert!(still["previousSecretExpiresAt"].is_null());
}

/// The most arrivals in any window of `window` (arrival times sorted).
fn peak(mut at: Vec<Instant>, window: Duration) -> usize {
    at.sort();
    let mut best = 0;
    let mut start = 0;
    for end in 0..at.len() {
        while at[end] - at[start] >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_failed_deliveries_are_recovered_once_each_within_the_rate_limit() {
    const N: usize = 1000;
    const RATE: usize = 100;
    let app = TestApp::spawn().await;
    let t = tenant(&app, "recover@example.com").await;
    let receiver = Receiver::start().await;
    let started = chrono::Utc::now() - chrono::Duration::seconds(1);
    // Paused while the events arrive, so their deliveries are held…
    let hook = webhook(
        &t.user,
        json!({ "url": receiver.url("/hook"), "status": "paused" }),
    )
    .await;
    let id = hook["id"].as_str().expect("id");
    events(&app, &t.key, N, 16).await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM deliveries WHERE webhook_id = '{id}' AND status = 'held'"
        ))
        .await,
        N as i64
    );
    // …then left as an outage leaves them: failed after a round of attempts (a real outage of
    // this size would pause the webhook after 10; the rows are what matters here).
    app.sql(&format!(
        "WITH moved AS (DELETE FROM delivery_queue WHERE webhook_id = '{id}' RETURNING *) \
         INSERT INTO delivery_history (id, workspace_id, webhook_id, event_id, url, status, \
             attempts, round_attempts, next_attempt_at, last_status_code, created_at, \
             completed_at, event_received_at) \
         SELECT id, workspace_id, webhook_id, event_id, url, 'failed', 4, 4, next_attempt_at, \
             503, created_at, now(), event_received_at FROM moved"
    ))
    .await;
    // Also one failed before the window: not resent.
    app.sql(&format!(
        "UPDATE delivery_history SET created_at = now() - interval '2 days' WHERE id = \
         (SELECT id FROM deliveries WHERE webhook_id = '{id}' ORDER BY id LIMIT 1)"
    ))
    .await;
    let (status, patched) = t
        .user
        .patch(
            &format!("/v1/integrations/webhooks/{id}"),
            json!({ "status": "active", "rateLimit": RATE }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["rateLimit"], RATE);

    let begun = Instant::now();
    let (status, recovery) = t
        .user
        .post(
            &format!("/v1/integrations/webhooks/{id}/recover"),
            json!({ "since": started.to_rfc3339() }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{recovery}");
    assert_eq!(recovery["queued"], N - 1);

    // Progress while it runs: part delivered, the rest waiting in the queue (not failed).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, queue) = t
        .user
        .get(&format!("/v1/integrations/webhooks/{id}/queue"))
        .await;
    let done = queue["recovery"]["succeeded"].as_i64().expect("succeeded");
    let waiting = queue["recovery"]["waiting"].as_i64().expect("waiting");
    assert!(done > 0 && waiting > 0, "{queue}");
    assert_eq!(queue["recovery"]["failed"], 0, "{queue}");
    assert_eq!(done + waiting, (N - 1) as i64, "{queue}");
    assert!(
        queue["backlog"].as_i64().expect("backlog") >= waiting,
        "{queue}"
    );

    let got = receiver.wait_for(N - 1, Duration::from_secs(60)).await;
    let elapsed = begun.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_all = receiver.received();
    assert_eq!(got_all.len(), N - 1, "no delivery was sent twice");
    let ids: HashSet<&str> = got
        .iter()
        .map(|r| r.header("webhook-id").expect("id"))
        .collect();
    assert_eq!(ids.len(), N - 1, "each delivery once, under its own id");
    // Each kept its id: the ids are the stored deliveries'.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM deliveries WHERE webhook_id = '{id}' AND status = 'succeeded' AND attempts = 5"
        ))
        .await,
        (N - 1) as i64
    );
    // No more than the limit: 999 at 100/s take at least 8.99 s, and no one-second window saw
    // more than 100 arrive, give or take one 100 ms burst (the limiter counts starts, at most
    // a tenth of the rate per 100 ms; arrivals trail their starts by a few milliseconds).
    assert!(
        elapsed >= Duration::from_millis(((N - 1 - RATE) * 1000 / RATE) as u64),
        "{elapsed:?}"
    );
    let peak = peak(got.iter().map(|r| r.at).collect(), Duration::from_secs(1));
    assert!(peak <= RATE + RATE / 10, "peak {peak} in one second");
    let (_, queue) = t
        .user
        .get(&format!("/v1/integrations/webhooks/{id}/queue"))
        .await;
    assert_eq!(queue["recovery"]["succeeded"], N - 1, "{queue}");
    assert_eq!(queue["backlog"], 0, "{queue}");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM audit_log WHERE action = 'webhook.recovered'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_cap_holds_across_two_instances() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(&first.db_url).await;
    let t = tenant(&first, "cap@example.com").await;
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok().delay(Duration::from_millis(300)));
    let hook = webhook(
        &t.user,
        json!({ "url": receiver.url("/hook"), "maxInFlight": 2 }),
    )
    .await;
    assert_eq!(hook["maxInFlight"], 2);
    // Events arrive through both instances; both workers send.
    let a = events(&first, &t.key, 10, 5);
    let b = events(&second, &t.key, 10, 5);
    tokio::join!(a, b);
    let got = receiver.wait_for(20, WAIT).await;
    // Each request takes 300 ms: more than two arriving within 300 ms would be three at once.
    let at_once = peak(
        got.iter().map(|r| r.at).collect(),
        Duration::from_millis(295),
    );
    assert!(at_once <= 2, "{at_once} requests in flight at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_stops_sending_after_timeouts_and_probes_after_a_pause() {
    let app = TestApp::spawn().await;
    let t = tenant(&app, "breaker@example.com").await;
    let receiver = Receiver::start().await;
    // Longer than the 2 s timeout.
    receiver.always(Reply::ok().delay(Duration::from_secs(3)));
    let hook = webhook(&t.user, json!({ "url": receiver.url("/hook") })).await;
    let id = hook["id"].as_str().expect("id");
    events(&app, &t.key, 6, 6).await;
    receiver.wait_for(6, WAIT).await;
    // Five timeouts in a row trip it.
    let deadline = Instant::now() + WAIT;
    let tripped = loop {
        let (_, h) = t.user.get(&format!("/v1/integrations/webhooks/{id}")).await;
        if h["circuitOpenUntil"].is_string() {
            break h;
        }
        assert!(Instant::now() < deadline, "breaker never tripped: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        tripped["consecutiveTimeouts"].as_i64().expect("n") >= 5,
        "{tripped}"
    );
    let opened = tripped["circuitOpenUntil"]
        .as_str()
        .expect("until")
        .to_owned();
    // After the 1 s pause: one probe, alone (it hangs too, so it times out after 2 s)…
    let sent = receiver.received().len();
    let deadline = Instant::now() + WAIT;
    while receiver.received().len() < sent + 1 {
        if Instant::now() > deadline {
            let (_, h) = t.user.get(&format!("/v1/integrations/webhooks/{id}")).await;
            let (_, log) = t
                .user
                .get(&format!("/v1/integrations/webhooks/{id}/deliveries"))
                .await;
            panic!("no probe within {WAIT:?} after {sent} requests: {h}\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(receiver.received().len(), sent + 1, "one probe at a time");
    // …whose timeout opens the breaker again, for another pause.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, h) = t.user.get(&format!("/v1/integrations/webhooks/{id}")).await;
        if h["circuitOpenUntil"]
            .as_str()
            .is_some_and(|u| u > opened.as_str())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failed probe did not reopen it: {h}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // While open nothing is sent (the retries wait), and nothing failed: they are pending.
    let sent = receiver.received().len();
    receiver.always(Reply::ok());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM deliveries WHERE webhook_id = '{id}' AND status = 'failed'"
        ))
        .await,
        0
    );
    // After the pause a probe goes, succeeds, and closes it; the rest follow.
    let deadline = Instant::now() + WAIT;
    loop {
        let ok = app
            .count(&format!(
                "SELECT count(*) AS n FROM deliveries WHERE webhook_id = '{id}' AND status = 'succeeded'"
            ))
            .await;
        if ok == 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{ok} of 6 delivered after the breaker"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(receiver.received().len() > sent);
    let (_, closed) = t.user.get(&format!("/v1/integrations/webhooks/{id}")).await;
    assert!(closed["circuitOpenUntil"].is_null(), "{closed}");
    assert_eq!(closed["consecutiveTimeouts"], 0, "{closed}");
    assert_eq!(closed["status"], "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_headers_are_sent_sealed_at_rest_and_masked_when_they_look_secret() {
    let app = TestApp::spawn().await;
    let t = tenant(&app, "headers@example.com").await;
    let receiver = Receiver::start().await;
    let hook = webhook(
        &t.user,
        json!({
            "url": receiver.url("/hook"),
            "headers": [
                { "name": "Authorization", "value": "Bearer tok_live_abcdef123456" },
                { "name": "X-Tenant", "value": "acme" }
            ]
        }),
    )
    .await;
    let id = hook["id"].as_str().expect("id");
    assert_eq!(
        hook["headers"],
        json!([
            { "name": "Authorization", "value": "••••3456", "masked": true },
            { "name": "X-Tenant", "value": "acme", "masked": false }
        ])
    );
    event(&app, &t.key).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(
        got[0].header("authorization"),
        Some("Bearer tok_live_abcdef123456")
    );
    assert_eq!(got[0].header("x-tenant"), Some("acme"));
    assert!(got[0].header("x-webhook-signature").is_some());
    assert_eq!(
        app.count("SELECT count(*) AS n FROM webhooks WHERE headers LIKE '%abcdef%' OR headers LIKE '%acme%'")
            .await,
        0
    );
    // Sent back masked as shown, a value stays; a new one replaces it.
    let (status, patched) = t
        .user
        .patch(
            &format!("/v1/integrations/webhooks/{id}"),
            json!({ "headers": [
                { "name": "Authorization", "value": "••••3456" },
                { "name": "X-Tenant", "value": "globex" }
            ] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    event(&app, &t.key).await;
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(
        got[1].header("authorization"),
        Some("Bearer tok_live_abcdef123456")
    );
    assert_eq!(got[1].header("x-tenant"), Some("globex"));
    // The Test button sends them too.
    let (_, test) = t
        .user
        .post(&format!("/v1/integrations/webhooks/{id}/test"), json!({}))
        .await;
    assert_eq!(test["ok"], true, "{test}");
    let got = receiver.wait_for(3, WAIT).await;
    assert_eq!(got[2].header("x-tenant"), Some("globex"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tenant_does_not_delay_another_tenants_deliveries() {
    let app = TestApp::spawn().await;
    let slow = tenant(&app, "slow@example.com").await;
    let fast = tenant(&app, "fast@example.com").await;
    let slow_receiver = Receiver::start().await;
    slow_receiver.always(Reply::ok().delay(Duration::from_millis(1500)));
    let fast_receiver = Receiver::start().await;
    webhook(&slow.user, json!({ "url": slow_receiver.url("/slow") })).await;
    webhook(&fast.user, json!({ "url": fast_receiver.url("/fast") })).await;
    // More than the worker's 256 slots of hanging attempts: without a share they would all be
    // held by the slow receiver.
    events(&app, &slow.key, 320, 32).await;
    slow_receiver.wait_for(50, WAIT).await;
    let mut lags = Vec::new();
    for i in 0..20 {
        let sent = Instant::now();
        event(&app, &fast.key).await;
        let got = fast_receiver.wait_for(i + 1, WAIT).await;
        lags.push(got[i].at.saturating_duration_since(sent));
    }
    lags.sort();
    let worst = *lags.last().expect("lags");
    assert!(
        worst < Duration::from_millis(750),
        "the healthy tenant waited {worst:?} (all: {lags:?})"
    );
    // The slow webhook never had more than its share (64) in flight at once.
    let in_flight = peak(
        slow_receiver.received().iter().map(|r| r.at).collect(),
        Duration::from_millis(1490),
    );
    assert!(in_flight <= 64, "{in_flight} slow attempts at once");
}
