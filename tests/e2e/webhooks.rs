//! Outbound webhooks (seeds 002 and 003) end to end: configuration over the API, what a real
//! receiver gets (payload, both signatures, tokens), retries, auto-pause, redelivery, the Test
//! button, timeouts, redirects, private targets, and two instances sharing one queue.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{TestApp, User};
use crate::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(15);

struct Fixture {
    app: TestApp,
    user: User,
    domain: String,
    key: String,
    receiver: Receiver,
}

async fn fixture(email: &str) -> Fixture {
    let app = TestApp::spawn().await;
    let user = app.signup(email).await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    let receiver = Receiver::start().await;
    Fixture {
        app,
        user,
        domain,
        key,
        receiver,
    }
}

impl Fixture {
    async fn webhook(&self, body: Value) -> Value {
        let (status, hook) = self
            .user
            .post("/v1/integrations/webhooks", body.clone())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body} → {hook}");
        hook
    }

    async fn event(&self, body: Value) -> String {
        let (status, answer) = self.app.inbound(&self.key, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body} → {answer}");
        answer["eventId"].as_str().expect("eventId").to_owned()
    }

    async fn log(&self, hook_id: &str) -> Vec<Value> {
        let (status, page) = self
            .user
            .get(&format!("/v1/integrations/webhooks/{hook_id}/deliveries"))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["items"].as_array().expect("items").clone()
    }

    /// Waits until the webhook's newest delivery reaches `status`.
    async fn settled(&self, hook_id: &str, status: &str) -> Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let log = self.log(hook_id).await;
            if let Some(d) = log.first().filter(|d| d["status"] == status) {
                return d.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no delivery reached {status}: {log:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn count_deliveries(&self, sql_filter: &str) -> i64 {
        self.app
            .count(&format!(
                "SELECT count(*) AS n FROM deliveries WHERE {sql_filter}"
            ))
            .await
    }
}

fn node(script: &str, env: &[(&str, &str)]) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = std::process::Command::new("node");
    cmd.current_dir(root.join("tests/browser"))
        .args(["-e", script]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("node runs");
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
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

const STANDARD_VERIFY: &str = r#"const { Webhook } = require('standardwebhooks');
const wh = new Webhook(process.env.SECRET);
const payload = wh.verify(process.env.BODY, {
  'webhook-id': process.env.ID,
  'webhook-timestamp': process.env.TS,
  'webhook-signature': process.env.SIG,
});
console.log(payload.event);
"#;

#[tokio::test]
async fn seed_003_curl_creates_a_webhook_with_the_session_cookie() {
    let app = TestApp::spawn().await;
    app.signup("curl-hooks@example.com").await;
    // The session token, as a browser would hold it after logging in.
    let resp = crate::helpers::http_client()
        .post(app.url("/v1/auth/login"))
        .json(&json!({"email": "curl-hooks@example.com", "password": "correct horse 1"}))
        .send()
        .await
        .expect("login");
    let token = resp
        .cookies()
        .find(|c| c.name() == "auth_token")
        .expect("auth_token cookie")
        .value()
        .to_owned();
    let seed = r#"curl -X POST http://YOUR_SERVER/v1/integrations/webhooks \
  -H "Content-Type: application/json" \
  -H "Cookie: auth_token=YOUR_SESSION" \
  -d '{
    "url": "https://your-app.com/webhook/cleanmails",
    "secret": "your-signing-secret",
    "events": ["email.sent", "email.replied", "email.bounced"]
  }'"#;
    let command = seed
        .replace("http://YOUR_SERVER", &app.base)
        .replace("YOUR_SESSION", &token);
    // tokio's Command: the server runs on this test's runtime and must keep answering.
    let out = tokio::process::Command::new("sh")
        .args(["-c", &format!("{command} -s -S -w '\\n%{{http_code}}'")])
        .output()
        .await
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.trim().rsplit_once('\n').unwrap_or_else(|| {
        panic!(
            "curl printed {text:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(code, "201", "{body}");
    let hook: Value = serde_json::from_str(body).expect("json");
    assert_eq!(hook["url"], "https://your-app.com/webhook/cleanmails");
    assert_eq!(
        hook["events"],
        json!(["email.sent", "email.replied", "email.bounced"])
    );
    assert_eq!(hook["status"], "active");
    assert_eq!(hook["secret"], "your-signing-secret");

    // Seed 003's test ping, as printed.
    let id = hook["id"].as_str().expect("id");
    let ping = r#"curl -X POST http://YOUR_SERVER/v1/integrations/webhooks/WEBHOOK_ID/test \
  -H "Cookie: auth_token=YOUR_SESSION""#
        .replace("http://YOUR_SERVER", &app.base)
        .replace("WEBHOOK_ID", id)
        .replace("YOUR_SESSION", &token);
    let out = tokio::process::Command::new("sh")
        .args(["-c", &format!("{ping} -s -S")])
        .output()
        .await
        .expect("curl runs");
    let answer: Value = serde_json::from_slice(&out.stdout).expect("json");
    // your-app.com cannot be reached from here: the answer says so instead of failing.
    assert_eq!(answer["ok"], false, "{answer}");
    assert!(answer["error"].as_str().is_some(), "{answer}");
    assert!(answer["durationMs"].is_number(), "{answer}");
}

#[tokio::test]
async fn a_matching_event_is_delivered_signed_in_the_seed_shape() {
    let f = fixture("deliver@example.com").await;
    let hook = f
        .webhook(json!({
            "url": f.receiver.url("/hook?amount=[revenue]&txn=[transaction]&e=[event]&c=[currency]&id=[event_id]"),
            "secret": "your-signing-secret",
            "events": ["purchase"]
        }))
        .await;
    let event_id = f
        .event(json!({
            "email": "buyer@example.com", "event": "purchase", "value": 149.99,
            "currency": "eur", "orderId": "ORD 12345", "firstName": "Ada", "coupon": "SPRING"
        }))
        .await;
    // Committed with the event: the delivery row exists as soon as inbound answers.
    assert_eq!(
        f.count_deliveries(&format!("event_id = '{event_id}'"))
            .await,
        1
    );
    let got = f.receiver.wait_for(1, WAIT).await;
    let r = &got[0];
    assert_eq!(
        r.path,
        format!("/hook?amount=149.99&txn=ORD%2012345&e=purchase&c=EUR&id={event_id}")
    );
    let body = r.json();
    assert_eq!(body["id"], event_id.as_str());
    assert_eq!(body["event"], "purchase");
    assert_eq!(body["workspace_id"], f.user.workspace_id.as_str());
    assert!(body["timestamp"]
        .as_str()
        .expect("timestamp")
        .ends_with('Z'));
    let data = &body["data"];
    assert_eq!(data["email"], "buyer@example.com");
    assert_eq!(data["value"], 149.99);
    assert_eq!(data["currency"], "EUR");
    assert_eq!(data["orderId"], "ORD 12345");
    assert_eq!(data["firstName"], "Ada");
    assert_eq!(data["custom"]["coupon"], "SPRING");
    assert_eq!(data["domainId"], f.domain.as_str());
    assert_eq!(r.header("content-type"), Some("application/json"));

    let raw = String::from_utf8(r.body.clone()).expect("utf-8");
    let seed_ok = node(
        SEED_003_VERIFY,
        &[
            ("BODY", &raw),
            (
                "SIGNATURE",
                r.header("x-webhook-signature").expect("signature"),
            ),
            ("SECRET", "your-signing-secret"),
        ],
    );
    assert_eq!(seed_ok, "true");
    // A secret of the user's own: receivers pass whsec_ + base64(secret) to the library.
    use base64::Engine;
    let std_secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode("your-signing-secret")
    );
    let verified = node(
        STANDARD_VERIFY,
        &[
            ("SECRET", &std_secret),
            ("BODY", &raw),
            ("ID", r.header("webhook-id").expect("id")),
            ("TS", r.header("webhook-timestamp").expect("ts")),
            ("SIG", r.header("webhook-signature").expect("sig")),
        ],
    );
    assert_eq!(verified, "purchase");
    let wrong = std::process::Command::new("node")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"))
        .args(["-e", SEED_003_VERIFY])
        .env("BODY", raw.replace("149.99", "1.99"))
        .env(
            "SIGNATURE",
            r.header("x-webhook-signature").expect("signature"),
        )
        .env("SECRET", "your-signing-secret")
        .output()
        .expect("node");
    assert_eq!(String::from_utf8_lossy(&wrong.stdout).trim(), "false");

    let d = f
        .settled(hook["id"].as_str().expect("id"), "succeeded")
        .await;
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["attemptLog"][0]["statusCode"], 200);
    assert_eq!(d["attemptLog"][0]["responseBody"], "ok");
    // The event shows its delivery.
    let (_, event) = f.user.get(&format!("/v1/events/{event_id}")).await;
    assert_eq!(event["deliveries"][0]["status"], "succeeded");
}

#[tokio::test]
async fn generated_secrets_verify_with_the_standard_webhooks_library() {
    let f = fixture("stdwh@example.com").await;
    let hook = f.webhook(json!({ "url": f.receiver.url("/std") })).await;
    let secret = hook["secret"]
        .as_str()
        .expect("secret in the 201")
        .to_owned();
    assert!(secret.starts_with("whsec_"));
    // Lists never show it; the reveal endpoint does.
    let (_, list) = f.user.get("/v1/integrations/webhooks").await;
    assert!(list["items"][0].get("secret").is_none(), "{list}");
    assert_eq!(list["items"][0]["hasSecret"], true);
    let id = hook["id"].as_str().expect("id");
    let (_, revealed) = f
        .user
        .get(&format!("/v1/integrations/webhooks/{id}/secret"))
        .await;
    assert_eq!(revealed["secret"], secret.as_str());

    f.event(json!({"email": "a@example.com", "event": "lead"}))
        .await;
    let r = &f.receiver.wait_for(1, WAIT).await[0];
    let raw = String::from_utf8(r.body.clone()).expect("utf-8");
    let verified = node(
        STANDARD_VERIFY,
        &[
            ("SECRET", &secret),
            ("BODY", &raw),
            ("ID", r.header("webhook-id").expect("id")),
            ("TS", r.header("webhook-timestamp").expect("ts")),
            ("SIG", r.header("webhook-signature").expect("sig")),
        ],
    );
    assert_eq!(verified, "lead");

    // Rotation: the next delivery is signed with the new secret.
    let (_, rotated) = f
        .user
        .post(
            &format!("/v1/integrations/webhooks/{id}/secret/rotate"),
            json!({}),
        )
        .await;
    let new_secret = rotated["secret"].as_str().expect("new secret").to_owned();
    assert_ne!(new_secret, secret);
    f.event(json!({"email": "b@example.com", "event": "lead"}))
        .await;
    let r = &f.receiver.wait_for(2, WAIT).await[1];
    let raw = String::from_utf8(r.body.clone()).expect("utf-8");
    let verified = node(
        STANDARD_VERIFY,
        &[
            ("SECRET", &new_secret),
            ("BODY", &raw),
            ("ID", r.header("webhook-id").expect("id")),
            ("TS", r.header("webhook-timestamp").expect("ts")),
            ("SIG", r.header("webhook-signature").expect("sig")),
        ],
    );
    assert_eq!(verified, "lead");
}

#[tokio::test]
async fn events_filter_trigger_groups_and_conditions_decide_what_fires() {
    let f = fixture("filters@example.com").await;
    let purchases = f
        .webhook(json!({"url": f.receiver.url("/purchases"), "events": ["purchase"]}))
        .await;
    let _ = purchases;
    let f2 = f.receiver.clone();
    // Seed 002's example: Facebook traffic over $50; utm_source needs a touch, so only the
    // revenue half can match before attribution; test it with revenue and event conditions.
    f.user
        .post(
            "/v1/integrations/webhooks",
            json!({
                "url": f2.url("/big-refunds"),
                "events": ["refund"],
                "conditions": [{"field": "revenue", "op": "greater_than", "value": "50"}]
            }),
        )
        .await;
    f.event(json!({"email": "a@example.com", "event": "purchase", "value": 10}))
        .await;
    f.event(json!({"email": "a@example.com", "event": "lead"}))
        .await;
    f.event(json!({"email": "a@example.com", "event": "chargeback", "value": 80}))
        .await;
    f.event(json!({"email": "a@example.com", "event": "refund", "value": 20}))
        .await;
    let got = f.receiver.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paths: Vec<String> = f
        .receiver
        .received()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(got.len(), 2);
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(paths.contains(&"/purchases".to_owned()));
    assert!(paths.contains(&"/big-refunds".to_owned()));
    let refund = f
        .receiver
        .received()
        .into_iter()
        .find(|r| r.path == "/big-refunds")
        .expect("refund delivery");
    assert_eq!(refund.json()["event"], "chargeback");
}

#[tokio::test]
async fn a_webhook_narrowed_to_one_domain_ignores_the_others() {
    let f = fixture("narrow@example.com").await;
    f.app
        .sql(&format!(
            "UPDATE workspaces SET plan = 'signal' WHERE id = '{}'",
            f.user.workspace_id
        ))
        .await;
    let other = f.user.add_domain("blog.example.com").await;
    let (_, other_key) = f.user.add_key(&other, "Blog").await;
    f.webhook(json!({"url": f.receiver.url("/shop-only"), "domainId": f.domain}))
        .await;
    let (status, _) = f
        .app
        .inbound(
            &other_key,
            json!({"email": "x@example.com", "event": "purchase"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    f.event(json!({"email": "y@example.com", "event": "purchase"}))
        .await;
    let got = f.receiver.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(f.receiver.received().len(), 1);
    assert_eq!(got[0].json()["data"]["email"], "y@example.com");
}

#[tokio::test]
async fn failures_are_retried_on_schedule_with_the_same_id_and_body() {
    let f = fixture("retries@example.com").await;
    f.receiver.script([
        Reply::status(500).body("boom"),
        Reply::status(503),
        Reply::ok(),
    ]);
    let hook = f.webhook(json!({"url": f.receiver.url("/flaky")})).await;
    f.event(json!({"email": "r@example.com", "event": "purchase", "value": 5}))
        .await;
    let got = f.receiver.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3);
    let ids: HashSet<&str> = got
        .iter()
        .map(|r| r.header("webhook-id").expect("id"))
        .collect();
    assert_eq!(ids.len(), 1, "one webhook-id on every attempt");
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "same body each time"
    );
    for pair in got.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(190), "retry after {gap:?}");
    }
    let d = f
        .settled(hook["id"].as_str().expect("id"), "succeeded")
        .await;
    assert_eq!(d["attempts"], 3);
    let log = d["attemptLog"].as_array().expect("attempts");
    assert_eq!(log[0]["statusCode"], 500);
    assert_eq!(log[0]["responseBody"], "boom");
    assert_eq!(log[1]["statusCode"], 503);
    assert_eq!(log[2]["statusCode"], 200);
}

#[tokio::test]
async fn a_delivery_gives_up_after_the_schedule_and_can_be_redelivered() {
    let f = fixture("giveup@example.com").await;
    f.receiver.always(Reply::status(500));
    let hook = f.webhook(json!({"url": f.receiver.url("/down")})).await;
    let hook_id = hook["id"].as_str().expect("id");
    f.event(json!({"email": "g@example.com", "event": "purchase"}))
        .await;
    let d = f.settled(hook_id, "failed").await;
    assert_eq!(d["attempts"], 4, "one attempt and three retries: {d}");
    assert_eq!(f.receiver.received().len(), 4);
    assert!(d["lastError"].as_str().expect("error").contains("500"));

    // The receiver is fixed; redeliver by hand.
    f.receiver.always(Reply::ok());
    let (status, again) = f
        .user
        .post(
            &format!("/v1/deliveries/{}/redeliver", d["id"].as_str().expect("id")),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    let d2 = f.settled(hook_id, "succeeded").await;
    assert_eq!(d2["id"], d["id"]);
    assert_eq!(d2["attempts"], 5);
    let got = f.receiver.received();
    assert_eq!(got.len(), 5);
    assert_eq!(got[4].header("webhook-id"), got[0].header("webhook-id"));
}

#[tokio::test]
async fn ten_failed_deliveries_pause_the_webhook_and_resume_sends_what_was_held() {
    let f = fixture("pause@example.com").await;
    f.receiver.always(Reply::status(500));
    let hook = f.webhook(json!({"url": f.receiver.url("/dead")})).await;
    let hook_id = hook["id"].as_str().expect("id").to_owned();
    for i in 0..9 {
        f.event(
            json!({"email": "p@example.com", "event": "purchase", "orderId": format!("P-{i}")}),
        )
        .await;
    }
    // Nine failed deliveries: still active.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while f.count_deliveries("status = 'failed'").await < 9 {
        assert!(
            std::time::Instant::now() < deadline,
            "nine deliveries did not fail"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, nine) = f
        .user
        .get(&format!("/v1/integrations/webhooks/{hook_id}"))
        .await;
    assert_eq!(nine["status"], "active", "{nine}");
    assert_eq!(nine["consecutiveFailures"], 9);
    f.event(json!({"email": "p@example.com", "event": "purchase", "orderId": "P-9"}))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let paused = loop {
        let (_, h) = f
            .user
            .get(&format!("/v1/integrations/webhooks/{hook_id}"))
            .await;
        if h["status"] == "paused" {
            break h;
        }
        assert!(std::time::Instant::now() < deadline, "not paused: {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(paused["consecutiveFailures"], 10);
    assert_eq!(
        paused["pausedReason"],
        "Paused automatically after 10 consecutive failed deliveries"
    );
    assert_eq!(f.count_deliveries("status = 'failed'").await, 10);

    // While paused, new events are held, not dropped and not sent.
    f.receiver.always(Reply::ok());
    let sent_before = f.receiver.received().len();
    let held_event = f
        .event(json!({"email": "p@example.com", "event": "purchase", "orderId": "P-held"}))
        .await;
    assert_eq!(
        f.count_deliveries(&format!("event_id = '{held_event}' AND status = 'held'"))
            .await,
        1
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(f.receiver.received().len(), sent_before);

    // Seed 003's re-enable: status active resets the counter and sends what was held.
    let (status, resumed) = f
        .user
        .patch(
            &format!("/v1/integrations/webhooks/{hook_id}"),
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["consecutiveFailures"], 0);
    assert_eq!(resumed["pausedReason"], Value::Null);
    let got = f.receiver.wait_for(sent_before + 1, WAIT).await;
    assert_eq!(
        got.last().expect("held one").json()["id"],
        held_event.as_str()
    );
}

#[tokio::test]
async fn a_webhook_paused_by_hand_holds_and_a_success_resets_the_failure_run() {
    let f = fixture("manual@example.com").await;
    f.receiver.script([
        Reply::status(500),
        Reply::status(500),
        Reply::status(500),
        Reply::status(500),
    ]);
    let hook = f.webhook(json!({"url": f.receiver.url("/m")})).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    f.event(json!({"email": "m@example.com", "event": "purchase", "orderId": "M-1"}))
        .await;
    f.settled(&id, "failed").await;
    let (_, h) = f.user.get(&format!("/v1/integrations/webhooks/{id}")).await;
    assert_eq!(h["consecutiveFailures"], 1);
    f.event(json!({"email": "m@example.com", "event": "purchase", "orderId": "M-2"}))
        .await;
    f.settled(&id, "succeeded").await;
    let (_, h) = f.user.get(&format!("/v1/integrations/webhooks/{id}")).await;
    assert_eq!(h["consecutiveFailures"], 0);

    let (_, paused) = f
        .user
        .patch(
            &format!("/v1/integrations/webhooks/{id}"),
            json!({"status": "paused"}),
        )
        .await;
    assert_eq!(paused["status"], "paused");
    let before = f.receiver.received().len();
    f.event(json!({"email": "m@example.com", "event": "purchase", "orderId": "M-3"}))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(f.receiver.received().len(), before);
    assert_eq!(f.count_deliveries("status = 'held'").await, 1);
    f.user
        .patch(
            &format!("/v1/integrations/webhooks/{id}"),
            json!({"status": "active"}),
        )
        .await;
    f.receiver.wait_for(before + 1, WAIT).await;
}

#[tokio::test]
async fn timeouts_redirects_and_retry_after_are_handled() {
    let f = fixture("edge@example.com").await;
    // Slower than the 2 s test timeout, then a redirect, then Retry-After, then success.
    f.receiver.script([
        Reply::ok().delay(Duration::from_millis(2600)),
        Reply::status(302).header("Location", "https://elsewhere.example/"),
        Reply::status(429).header("Retry-After", "1"),
        Reply::ok(),
    ]);
    let hook = f.webhook(json!({"url": f.receiver.url("/edge")})).await;
    f.event(json!({"email": "e@example.com", "event": "purchase"}))
        .await;
    let d = f
        .settled(hook["id"].as_str().expect("id"), "succeeded")
        .await;
    let log = d["attemptLog"].as_array().expect("log");
    assert_eq!(log.len(), 4, "{d}");
    assert!(
        log[0]["error"]
            .as_str()
            .expect("timeout")
            .contains("timed out"),
        "{d}"
    );
    assert_eq!(log[1]["statusCode"], 302);
    assert!(log[1]["error"]
        .as_str()
        .expect("redirect")
        .contains("not followed"));
    assert_eq!(log[2]["statusCode"], 429);
    let got = f.receiver.received();
    // The redirect was not followed (nothing reached another path), and Retry-After: 1 was
    // honoured instead of the 200 ms schedule.
    assert!(got.iter().all(|r| r.path == "/edge"));
    assert!(got[3].at - got[2].at >= Duration::from_millis(950));
}

#[tokio::test]
async fn the_test_button_reports_status_body_and_time_or_the_error() {
    let f = fixture("testbtn@example.com").await;
    f.receiver
        .always(Reply::status(201).body("{\"received\":true}"));
    let hook = f
        .webhook(json!({"url": f.receiver.url("/t?amount=[revenue]&txn=[transaction]")}))
        .await;
    let id = hook["id"].as_str().expect("id");
    let (status, result) = f
        .user
        .post(&format!("/v1/integrations/webhooks/{id}/test"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["status"], 201, "{result}");
    assert_eq!(result["body"], "{\"received\":true}");
    assert_eq!(result["ok"], true);
    assert!(result["durationMs"].is_number());
    let got = f.receiver.received();
    assert_eq!(got[0].path, "/t?amount=99.99&txn=TEST-ORDER-1001");
    assert_eq!(got[0].json()["event"], "purchase");
    assert!(got[0].header("x-webhook-signature").is_some());
    // Nothing queued or logged by a test.
    assert_eq!(f.count_deliveries("true").await, 0);

    // Target down: the error, not a failure of the button.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = dead.local_addr().expect("addr").port();
    drop(dead);
    f.user
        .patch(
            &format!("/v1/integrations/webhooks/{id}"),
            json!({"url": format!("http://127.0.0.1:{port}/gone")}),
        )
        .await;
    let (status, result) = f
        .user
        .post(&format!("/v1/integrations/webhooks/{id}/test"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["ok"], false);
    assert_eq!(result["status"], Value::Null);
    assert!(
        result["error"]
            .as_str()
            .expect("error")
            .contains("could not connect"),
        "{result}"
    );
}

#[tokio::test]
async fn bad_input_gets_a_message_naming_the_field() {
    let f = fixture("badhooks@example.com").await;
    let cases = [
        (
            json!({"url": "not a url"}),
            "url must be an absolute http:// or https:// URL",
        ),
        (
            json!({"url": "ftp://x.example/"}),
            "url must start with http:// or https://",
        ),
        (json!({}), "url is required"),
        (
            json!({"url": "https://x.example/", "color": "red"}),
            "unknown field \"color\"",
        ),
        (
            json!({"url": "https://x.example/", "events": "purchase"}),
            "events must be a list",
        ),
        (
            json!({"url": "https://x.example/", "status": "on"}),
            "status must be \"active\" or \"paused\"",
        ),
        (
            json!({"url": "https://x.example/", "conditions": [{"field": "utm_sauce", "op": "equals", "value": "x"}]}),
            "conditions[0].field: unknown field \"utm_sauce\"",
        ),
        (
            json!({"url": "https://x.example/", "conditions": [{"field": "utm_source", "op": "greater_than", "value": "x"}]}),
            "conditions[0].op: greater_than does not apply to utm_source",
        ),
        (
            json!({"url": "https://x.example/", "conditions": [{"field": "revenue", "op": "greater_than", "value": "fifty"}]}),
            "conditions[0].value: revenue needs a number",
        ),
        (
            json!({"url": "https://x.example/", "domainId": "00000000-0000-0000-0000-000000000000"}),
            "domainId does not name a domain of this workspace",
        ),
    ];
    for (body, message) in cases {
        let (status, answer) = f.user.post("/v1/integrations/webhooks", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        let error = answer["error"].as_str().expect("error");
        assert!(error.starts_with(message), "{body} → {error}");
    }
    let (status, answer) = f
        .user
        .send(reqwest::Method::POST, "/v1/integrations/webhooks", None)
        .await;
    assert!(status.is_client_error(), "{answer}");
}

#[tokio::test]
async fn the_plan_limits_webhooks_per_workspace() {
    let f = fixture("hooklimit@example.com").await;
    f.webhook(json!({"url": "https://a.example/"})).await;
    f.webhook(json!({"url": "https://b.example/"})).await;
    let (status, answer) = f
        .user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": "https://c.example/"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer["error"],
        "The Pulse plan allows 2 webhooks per workspace"
    );
}

#[tokio::test]
async fn other_tenants_webhooks_and_deliveries_are_not_found() {
    let f = fixture("owner-hooks@example.com").await;
    let hook = f.webhook(json!({"url": f.receiver.url("/mine")})).await;
    let id = hook["id"].as_str().expect("id");
    f.event(json!({"email": "o@example.com", "event": "purchase"}))
        .await;
    let d = f.settled(id, "succeeded").await;
    let delivery = d["id"].as_str().expect("delivery");

    let intruder = f.app.signup("intruder-hooks@example.com").await;
    for (method, path) in [
        (
            reqwest::Method::GET,
            format!("/v1/integrations/webhooks/{id}"),
        ),
        (
            reqwest::Method::PATCH,
            format!("/v1/integrations/webhooks/{id}"),
        ),
        (
            reqwest::Method::DELETE,
            format!("/v1/integrations/webhooks/{id}"),
        ),
        (
            reqwest::Method::POST,
            format!("/v1/integrations/webhooks/{id}/test"),
        ),
        (
            reqwest::Method::GET,
            format!("/v1/integrations/webhooks/{id}/secret"),
        ),
        (
            reqwest::Method::POST,
            format!("/v1/integrations/webhooks/{id}/secret/rotate"),
        ),
        (
            reqwest::Method::GET,
            format!("/v1/integrations/webhooks/{id}/deliveries"),
        ),
        (reqwest::Method::GET, format!("/v1/deliveries/{delivery}")),
        (
            reqwest::Method::POST,
            format!("/v1/deliveries/{delivery}/redeliver"),
        ),
    ] {
        let body = (method != reqwest::Method::GET && method != reqwest::Method::DELETE)
            .then(|| json!({}));
        let (status, answer) = intruder.send(method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path} → {answer}");
    }
    let (_, list) = intruder.get("/v1/integrations/webhooks").await;
    assert_eq!(list["items"], json!([]));
    // Nothing changed for the owner.
    let (status, still) = f.user.get(&format!("/v1/integrations/webhooks/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(still["url"], hook["url"]);
}

#[tokio::test]
async fn private_targets_are_refused_at_save_and_at_send() {
    let app = TestApp::spawn_strict().await;
    let user = app.signup("ssrf@example.com").await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00::1]/hook",
        "http://100.64.1.1/hook",
        "http://localhost:9000/hook",
    ] {
        let (status, answer) = user
            .post("/v1/integrations/webhooks", json!({"url": url}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url} → {answer}");
        assert!(
            answer["error"]
                .as_str()
                .expect("error")
                .contains("public address"),
            "{url} → {answer}"
        );
    }
    // DNS that points somewhere private only at send time: saved under a public-looking name,
    // then the name resolves to loopback (here: a webhook row whose host is a loopback name).
    let receiver = Receiver::start().await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "k").await;
    let (status, hook) = user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": "https://hooks.example.com/x"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let port = receiver.base.rsplit(':').next().expect("port");
    app.sql(&format!(
        "UPDATE webhooks SET url = 'http://localhost:{port}/rebound' WHERE id = '{}'",
        hook["id"].as_str().expect("id")
    ))
    .await;
    let (status, _) = app
        .inbound(&key, json!({"email": "s@example.com", "event": "purchase"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let id = hook["id"].as_str().expect("id");
    let deadline = std::time::Instant::now() + WAIT;
    let d = loop {
        let (_, page) = user
            .get(&format!("/v1/integrations/webhooks/{id}/deliveries"))
            .await;
        let d = page["items"][0].clone();
        if d["status"] == "failed" {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        d["lastError"].as_str().expect("error").contains("refused"),
        "{d}"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the private address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_each_delivery_exactly_once() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(&first.db_url).await;
    let user = first.signup("twin@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "k").await;
    let receiver = Receiver::start().await;
    let (status, _) = user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": receiver.url("/twin")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    const N: usize = 300;
    let client = crate::helpers::http_client();
    let mut tasks = Vec::new();
    for i in 0..N {
        let app_base = if i % 2 == 0 {
            first.base.clone()
        } else {
            second.base.clone()
        };
        let (key, client) = (key.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let resp = client
                .post(format!("{app_base}/__cc/inbound"))
                .header("X-CC-Api-Key", key)
                .json(&json!({"email": format!("c{i}@example.com"), "event": "purchase", "orderId": format!("T-{i}")}))
                .send()
                .await
                .expect("inbound");
            assert_eq!(resp.status(), StatusCode::OK);
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let got = receiver.wait_for(N, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got_after = receiver.received();
    assert_eq!(got_after.len(), N, "no delivery sent twice");
    let ids: HashSet<&str> = got
        .iter()
        .map(|r| r.header("webhook-id").expect("id"))
        .collect();
    assert_eq!(ids.len(), N);
}

#[tokio::test]
async fn a_huge_response_is_cut_to_an_excerpt() {
    let f = fixture("huge@example.com").await;
    f.receiver
        .always(Reply::ok().body(&"x".repeat(2 * 1024 * 1024)));
    let hook = f.webhook(json!({"url": f.receiver.url("/huge")})).await;
    f.event(json!({"email": "h@example.com", "event": "purchase"}))
        .await;
    let d = f
        .settled(hook["id"].as_str().expect("id"), "succeeded")
        .await;
    let body = d["attemptLog"][0]["responseBody"]
        .as_str()
        .expect("excerpt");
    assert_eq!(body.len(), 4096, "stored excerpt is capped at 4 KiB");
}

#[tokio::test]
async fn a_response_with_nul_bytes_is_stored_and_later_results_are_recorded_too() {
    let f = fixture("nul-answer@example.com").await;
    f.receiver.always(Reply::ok().body("ok\u{0}then\u{0}"));
    let hook = f.webhook(json!({"url": f.receiver.url("/nul")})).await;
    let hook_id = hook["id"].as_str().expect("id");
    f.event(json!({"email": "n@example.com", "event": "purchase"}))
        .await;
    let d = f.settled(hook_id, "succeeded").await;
    assert_eq!(
        d["attemptLog"][0]["responseBody"], "okthen",
        "the excerpt is stored without the NULs the receiver sent"
    );
    // The recorder was not stuck on it: the next delivery is recorded as well.
    f.receiver.always(Reply::ok());
    f.event(json!({"email": "n2@example.com", "event": "purchase"}))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = f.log(hook_id).await;
        if log.len() == 2 && log.iter().all(|d| d["status"] == "succeeded") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second delivery was not recorded: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
