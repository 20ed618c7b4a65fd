//! Batched platform sends, per-event outcomes, and per-connection rate limits (issue 19).

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::fake_google::{FakeGoogle, CLIENT_ID, CLIENT_SECRET};
use crate::attribution::{shop, Shop};
use crate::helpers::{fresh_database, test_delivery, TestApp};
use crate::receiver::{Receiver, Reply};

const REFRESH: &str = "1//batching-refresh";

async fn app_at(base: &str, google: bool) -> TestApp {
    use postback_domain::platforms::oauth::{App, Apps};
    use postback_domain::platforms::{Platform, PlatformUrls};
    let mut apps = Apps::default();
    if google {
        apps = apps.with(
            Platform::GoogleAds,
            App {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                token_url: format!("{base}/token"),
                developer_token: None,
            },
        );
    }
    let delivery = postback_runtime::delivery::DeliveryConfig {
        platform_urls: PlatformUrls::all_at(base),
        apps,
        // The tests count requests: the deliveries made due together must meet in one batch
        // even on a loaded machine, where 20 ms can pass between two of them being claimed.
        batch_window: std::time::Duration::from_millis(500),
        ..test_delivery()
    };
    TestApp::spawn_with(&fresh_database().await, delivery).await
}

async fn connect(shop: &Shop, platform: &str, body: Value) -> String {
    let (status, c) = shop
        .user
        .put(
            &format!("/v1/domains/{}/connections/{platform}", shop.domain_id),
            body,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    c["id"].as_str().expect("connection id").to_owned()
}

async fn purchase(app: &TestApp, shop: &Shop, order: &str) -> String {
    let (status, answer) = app
        .inbound(
            &shop.key,
            json!({"email": format!("{order}@example.com"), "event": "purchase", "value": 20,
                   "currency": "USD", "orderId": order}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["eventId"].as_str().expect("eventId").to_owned()
}

/// The event's one delivery (as the API shows it), once `done` says it is where the test
/// expects it.
async fn delivery_when(
    shop: &Shop,
    event: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let (_, e) = shop.user.get(&format!("/v1/events/{event}")).await;
        let d = e["deliveries"][0].clone();
        if done(&d) {
            return d;
        }
        assert!(std::time::Instant::now() < deadline, "{e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Holds the connection (as a quota would) so the events below queue up behind it.
async fn hold(app: &TestApp, connection: &str) {
    app.sql(&format!(
        "INSERT INTO connection_limits (workspace_id, connection_id, held_until, reason)
         SELECT workspace_id, id, now() + interval '1 hour', 'held by the test'
         FROM connections WHERE id = '{connection}'"
    ))
    .await;
}

/// Ends the hold, and makes the queued deliveries due, waking the workers.
async fn release(app: &TestApp, connection: &str) {
    app.sql(&format!(
        "DELETE FROM connection_limits WHERE connection_id = '{connection}'"
    ))
    .await;
    app.sql(&format!(
        "UPDATE delivery_queue SET next_attempt_at = now() WHERE connection_id = '{connection}'"
    ))
    .await;
    app.sql("SELECT pg_notify('postback_deliveries', '')").await;
}

/// Waits until every delivery of `events` is pending behind the hold, its error saying so.
async fn queued_behind_hold(shop: &Shop, events: &[String]) {
    for id in events {
        let d = delivery_when(shop, id, Duration::from_secs(10), |d| {
            d["status"] == "pending"
                && d["lastError"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("Rate-limited"))
        })
        .await;
        assert!(d["rateLimitedUntil"].is_string(), "{d}");
    }
}

/// N events of one connection reach Meta in fewer requests than events (one here: they were
/// due together), each event once, and each delivery succeeded with its own attempt.
#[tokio::test]
async fn a_connections_events_share_one_request() {
    let fake = Receiver::start().await;
    fake.always(Reply::ok().body(r#"{"events_received": 5}"#));
    let app = app_at(&fake.url(""), false).await;
    let shop = shop(&app, "batching-meta@example.com").await;
    let connection = connect(
        &shop,
        "meta",
        json!({"settings": {"pixelId": "4242"}, "credentials": {"accessToken": "EAAB-batch"}}),
    )
    .await;
    hold(&app, &connection).await;
    let mut events = Vec::new();
    for i in 0..5 {
        events.push(purchase(&app, &shop, &format!("M-{i}")).await);
    }
    queued_behind_hold(&shop, &events).await;
    assert!(fake.received().is_empty(), "nothing is sent while held");
    release(&app, &connection).await;
    for id in &events {
        let d = delivery_when(&shop, id, Duration::from_secs(10), |d| {
            d["status"] == "succeeded"
        })
        .await;
        assert_eq!(d["attempts"], 1, "{d}");
        assert_eq!(d["attemptLog"].as_array().map(Vec::len), Some(1), "{d}");
    }
    let got = fake.received();
    assert_eq!(got.len(), 1, "⌈5/1000⌉ = 1 request for 5 events");
    let body = got[0].json();
    let sent: Vec<&str> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id"))
        .collect();
    let mut expected: Vec<&str> = events.iter().map(String::as_str).collect();
    let mut sent_sorted = sent.clone();
    sent_sorted.sort_unstable();
    expected.sort_unstable();
    assert_eq!(sent_sorted, expected, "every event once");
    assert_eq!(body["access_token"], "EAAB-batch");
}

/// One conversion Google refuses in a batch fails alone, with Google's message; the others of
/// the same request succeed.
#[tokio::test]
async fn one_bad_conversion_in_a_google_batch_fails_alone() {
    let fake = FakeGoogle::start(REFRESH, Duration::from_secs(600)).await;
    fake.click_not_found("G-2");
    let app = app_at(&fake.base, true).await;
    let shop = shop(&app, "batching-google@example.com").await;
    let connection = connect(
        &shop,
        "googleads",
        json!({"settings": {"customerId": "123-456-7890", "conversionAction": "555111",
                            "transport": "adsapi"},
               "credentials": {"developerToken": "dev-token", "refreshToken": REFRESH}}),
    )
    .await;
    hold(&app, &connection).await;
    let mut events = Vec::new();
    for order in ["G-1", "G-2", "G-3", "G-4"] {
        events.push((order, purchase(&app, &shop, order).await));
    }
    queued_behind_hold(
        &shop,
        &events.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
    )
    .await;
    release(&app, &connection).await;
    let mut outcomes = HashMap::new();
    for (order, id) in &events {
        let d = delivery_when(&shop, id, Duration::from_secs(10), |d| {
            d["status"] == "succeeded" || d["status"] == "failed"
        })
        .await;
        outcomes.insert(*order, d);
    }
    for order in ["G-1", "G-3", "G-4"] {
        assert_eq!(
            outcomes[order]["status"], "succeeded",
            "{}",
            outcomes[order]
        );
    }
    let bad = &outcomes["G-2"];
    assert_eq!(bad["status"], "failed", "{bad}");
    assert_eq!(bad["attempts"], 1, "a refusal is final: {bad}");
    assert!(
        bad["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("was not found in the system")),
        "Google's own message: {bad}"
    );
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1, "one request for the four: {uploads:?}");
    let orders: Vec<&str> = uploads[0]["conversions"]
        .as_array()
        .expect("conversions")
        .iter()
        .map(|c| c["orderId"].as_str().expect("orderId"))
        .collect();
    assert_eq!(orders.len(), 4, "{orders:?}");
    for order in ["G-1", "G-2", "G-3", "G-4"] {
        assert!(orders.contains(&order), "{orders:?}");
    }
}

/// Meta's throttling answer (HTTP 429, code 17, Retry-After) holds the connection: its
/// deliveries stay pending, shown as "rate-limited, next send at …" in the API and the
/// dashboard, and are sent once the time comes, each event exactly once.
#[tokio::test]
async fn a_throttled_connection_holds_its_deliveries_and_sends_them_after() {
    let fake = Receiver::start().await;
    fake.script([Reply::status(429)
        .header("Retry-After", "4")
        .body(r#"{"error": {"message": "(#17) User request limit reached", "type": "OAuthException", "code": 17}}"#)]);
    fake.always(Reply::ok().body(r#"{"events_received": 1}"#));
    let app = app_at(&fake.url(""), false).await;
    let shop = shop(&app, "batching-throttle@example.com").await;
    connect(
        &shop,
        "meta",
        json!({"settings": {"pixelId": "4343"}, "credentials": {"accessToken": "EAAB-throttle"}}),
    )
    .await;
    let first = purchase(&app, &shop, "T-1").await;
    let d = delivery_when(&shop, &first, Duration::from_secs(10), |d| {
        d["rateLimitedUntil"].is_string()
    })
    .await;
    assert_eq!(d["status"], "pending", "held, not failed: {d}");
    let error = d["lastError"].as_str().expect("error");
    assert!(error.starts_with("Rate-limited by Meta"), "{error}");
    assert!(error.contains("User request limit reached"), "{error}");
    assert!(error.contains("next send at"), "{error}");
    // Events that come in meanwhile wait behind the hold, unsent.
    let second = purchase(&app, &shop, "T-2").await;
    let third = purchase(&app, &shop, "T-3").await;
    for id in [&second, &third] {
        let d = delivery_when(&shop, id, Duration::from_secs(3), |d| {
            d["rateLimitedUntil"].is_string()
        })
        .await;
        assert_eq!(d["status"], "pending", "{d}");
    }
    assert_eq!(fake.received().len(), 1, "nothing more is sent while held");
    // The dashboard's event page says so.
    let (status, html) = shop.user.page(&format!("/events/{second}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("rate-limited, next send at"), "{html}");

    for id in [&first, &second, &third] {
        delivery_when(&shop, id, Duration::from_secs(20), |d| {
            d["status"] == "succeeded"
        })
        .await;
    }
    let got = fake.received();
    let mut sent: Vec<String> = got[1..]
        .iter()
        .flat_map(|r| {
            r.json()["data"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|e| e["event_id"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    sent.sort_unstable();
    let mut expected = vec![first, second, third];
    expected.sort_unstable();
    assert_eq!(sent, expected, "each event sent once after the hold");
}

/// Google Ads basic access's daily operations (here 2, `POSTBACK_GOOGLEADS_DAILY_OPERATIONS`):
/// what does not fit waits, pending and shown as rate-limited, and is sent once the oldest
/// counted hour has left the 24 hours.
#[tokio::test]
async fn the_google_ads_daily_quota_holds_what_does_not_fit() {
    use postback_domain::platforms::oauth::{App, Apps};
    use postback_domain::platforms::{Platform, PlatformUrls};
    let fake = FakeGoogle::start(REFRESH, Duration::from_secs(600)).await;
    let delivery = postback_runtime::delivery::DeliveryConfig {
        platform_urls: PlatformUrls::all_at(&fake.base),
        apps: Apps::default().with(
            Platform::GoogleAds,
            App {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                token_url: format!("{}/token", fake.base),
                developer_token: None,
            },
        ),
        googleads_daily_operations: Some(2),
        ..test_delivery()
    };
    let app = TestApp::spawn_with(&fresh_database().await, delivery).await;
    let shop = shop(&app, "batching-quota@example.com").await;
    let connection = connect(
        &shop,
        "googleads",
        json!({"settings": {"customerId": "123-456-7890", "conversionAction": "555111",
                            "transport": "adsapi"},
               "credentials": {"developerToken": "dev-token", "refreshToken": REFRESH}}),
    )
    .await;
    let mut events = Vec::new();
    for order in ["Q-1", "Q-2"] {
        let id = purchase(&app, &shop, order).await;
        delivery_when(&shop, &id, Duration::from_secs(10), |d| {
            d["status"] == "succeeded"
        })
        .await;
        events.push(id);
    }
    let third = purchase(&app, &shop, "Q-3").await;
    let d = delivery_when(&shop, &third, Duration::from_secs(10), |d| {
        d["rateLimitedUntil"].is_string()
    })
    .await;
    assert_eq!(d["status"], "pending", "held, not failed: {d}");
    assert_eq!(d["attempts"], 0, "not sent, so no attempt: {d}");
    let error = d["lastError"].as_str().expect("error");
    assert!(
        error
            .starts_with("Rate-limited by Google Ads (the daily quota of 2 operations is used up)"),
        "{error}"
    );
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 2, "the third is not sent: {uploads:?}");

    // A day later the quota has room again.
    app.sql(&format!(
        "UPDATE connection_operations SET hour = hour - interval '1 day 2 hours'
         WHERE connection_id = '{connection}'"
    ))
    .await;
    release(&app, &connection).await;
    let d = delivery_when(&shop, &third, Duration::from_secs(10), |d| {
        d["status"] == "succeeded"
    })
    .await;
    assert_eq!(d["attempts"], 1, "{d}");
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 3, "{uploads:?}");
    assert_eq!(uploads[2]["conversions"][0]["orderId"], "Q-3");
}

/// Meta refuses a whole batch when one event is bad: the batch is split in halves and sent
/// again until the bad event stands alone; it fails with Meta's message, the others succeed,
/// and each good event is accepted once.
#[tokio::test]
async fn a_batch_meta_refuses_as_a_whole_is_split_until_the_bad_event_stands_alone() {
    let refusal = || {
        Reply::status(400).body(
            r#"{"error": {"message": "Invalid parameter", "type": "OAuthException", "code": 100, "error_user_msg": "The event time is more than 7 days ago."}}"#,
        )
    };
    let ok = || Reply::ok().body(r#"{"events_received": 2}"#);
    let fake = Receiver::start().await;
    // 4 events: refused; the first half accepted; the second half refused; its first event
    // accepted, its second refused: that one is the bad one.
    fake.script([refusal(), ok(), refusal(), ok(), refusal()]);
    fake.always(Reply::status(500));
    let app = app_at(&fake.url(""), false).await;
    let shop = shop(&app, "batching-split@example.com").await;
    let connection = connect(
        &shop,
        "meta",
        json!({"settings": {"pixelId": "4444"}, "credentials": {"accessToken": "EAAB-split"}}),
    )
    .await;
    hold(&app, &connection).await;
    let mut events = Vec::new();
    for i in 0..4 {
        events.push(purchase(&app, &shop, &format!("S-{i}")).await);
    }
    queued_behind_hold(&shop, &events).await;
    release(&app, &connection).await;
    let got = fake.wait_for(5, Duration::from_secs(10)).await;
    let ids = |i: usize| -> Vec<String> {
        got[i].json()["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["event_id"].as_str().expect("event_id").to_owned())
            .collect()
    };
    assert_eq!(ids(0).len(), 4);
    assert_eq!(ids(1).len(), 2);
    assert_eq!(ids(2).len(), 2);
    assert_eq!(ids(3).len(), 1);
    assert_eq!(ids(4).len(), 1);
    let bad = ids(4)[0].clone();
    let accepted: Vec<String> = [ids(1), ids(3)].concat();
    for id in &events {
        let d = delivery_when(&shop, id, Duration::from_secs(10), |d| {
            d["status"] == "succeeded" || d["status"] == "failed"
        })
        .await;
        if *id == bad {
            assert_eq!(d["status"], "failed", "{d}");
            assert!(
                d["lastError"]
                    .as_str()
                    .is_some_and(|e| e.contains("more than 7 days ago")),
                "{d}"
            );
        } else {
            assert_eq!(d["status"], "succeeded", "{d}");
            assert_eq!(
                accepted.iter().filter(|a| *a == id).count(),
                1,
                "accepted once"
            );
        }
        assert_eq!(d["attempts"], 1, "{d}");
    }
    assert_eq!(fake.received().len(), 5, "nothing more was sent");
}
