//! The hot queue apart from history (issue 23): what is pending or held lives in
//! `delivery_queue`, what succeeded or failed moves to `delivery_history`; the API still shows
//! every delivery, "Resend failed since…" moves failed ones back, and a claim is a HOT update.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{purchase, TestApp, User};
use crate::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(30);

/// The webhook's delivery log, as the API shows it (newest first).
async fn log(user: &User, hook: &str) -> Vec<Value> {
    let (status, page) = user
        .get(&format!(
            "/v1/integrations/webhooks/{hook}/deliveries?limit=100"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().expect("items").clone()
}

/// Waits until the log holds `succeeded` succeeded and `failed` failed deliveries, nothing else.
async fn settled(user: &User, hook: &str, succeeded: usize, failed: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = log(user, hook).await;
        let of = |s: &str| log.iter().filter(|d| d["status"] == s).count();
        if log.len() == succeeded + failed && of("succeeded") == succeeded && of("failed") == failed
        {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "not {succeeded} succeeded and {failed} failed: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn send(app: &TestApp, key: &str, order: &str) {
    let mut body = purchase();
    body["orderId"] = json!(order);
    let (status, answer) = app.inbound(key, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// The queue's (updates, HOT updates), once the app's connections have reported at least
/// `hot` HOT updates and `cold` others (a backend reports its counters when it goes idle, within
/// seconds).
async fn queue_updates(app: &TestApp, hot: i64, cold: i64) -> (i64, i64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let counts = app
            .count(
                "SELECT (n_tup_upd * 1000000 + n_tup_hot_upd)::int8 AS n FROM pg_stat_user_tables \
                 WHERE relname = 'delivery_queue'",
            )
            .await;
        let (upd, hot_upd) = (counts / 1_000_000, counts % 1_000_000);
        if hot_upd >= hot && upd - hot_upd >= cold {
            return (upd, hot_upd);
        }
        assert!(
            Instant::now() < deadline,
            "delivery_queue shows {upd} updates, {hot_upd} HOT"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_work_leaves_the_queue_for_history_and_claims_stay_hot() {
    let app = TestApp::spawn().await;
    let user = app.signup("queue-history@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    let receiver = Receiver::start().await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    let (status, hook) = user
        .post(
            "/v1/integrations/webhooks",
            json!({ "url": receiver.url("/hook") }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let hook = hook["id"].as_str().expect("id").to_owned();

    // An outage: three deliveries use up their round (1 attempt + 3 retries) and fail.
    receiver.always(Reply::status(503));
    for i in 0..3 {
        send(&app, &key, &format!("down-{i}")).await;
    }
    let failed = settled(&user, &hook, 0, 3).await;
    assert!(failed.iter().all(|d| d["attempts"] == 4), "{failed:?}");

    // Back up, but the first request still fails once: that delivery succeeds on its retry.
    receiver.always(Reply::ok());
    receiver.script([Reply::status(500)]);
    send(&app, &key, "flaky").await;
    let deadline = Instant::now() + WAIT;
    while !log(&user, &hook)
        .await
        .iter()
        .any(|d| d["status"] == "succeeded")
    {
        assert!(
            Instant::now() < deadline,
            "the retried delivery never succeeded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..3 {
        send(&app, &key, &format!("up-{i}")).await;
    }
    settled(&user, &hook, 4, 3).await;

    // "Resend failed since…": the failed ones go back to the queue, keeping their ids.
    let (status, recovery) = user
        .post(
            &format!("/v1/integrations/webhooks/{hook}/recover"),
            json!({ "since": since.to_rfc3339() }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{recovery}");
    assert_eq!(recovery["queued"], 3, "{recovery}");
    let done = settled(&user, &hook, 7, 0).await;
    let failed_ids: Vec<&Value> = failed.iter().map(|d| &d["id"]).collect();
    let mut attempts: Vec<i64> = Vec::new();
    for d in &done {
        let n = d["attempts"].as_i64().expect("attempts");
        let logged = d["attemptLog"].as_array().expect("attemptLog").len() as i64;
        assert_eq!(n, logged, "every attempt is in its log: {d}");
        if failed_ids.contains(&&d["id"]) {
            assert_eq!(n, 5, "a resent delivery's fifth attempt succeeded: {d}");
        }
        attempts.push(n);
    }
    attempts.sort_unstable();
    assert_eq!(attempts, [1, 1, 1, 2, 5, 5, 5], "{done:?}");
    let (_, queue) = user
        .get(&format!("/v1/integrations/webhooks/{hook}/queue"))
        .await;
    assert_eq!(queue["recovery"]["succeeded"], 3, "{queue}");
    assert_eq!(queue["backlog"], 0, "{queue}");

    // The queue is empty; history holds every delivery, final, with its attempts.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM delivery_queue").await,
        0
    );
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM delivery_history \
             WHERE status = 'succeeded' AND completed_at IS NOT NULL"
        )
        .await,
        7
    );
    assert_eq!(
        app.count("SELECT sum(attempts)::int8 AS n FROM delivery_history")
            .await,
        3 * 5 + 2 + 3
    );
    // …and the receiver got exactly those attempts: no claim took a row another one held.
    assert_eq!(receiver.received().len(), 3 * 5 + 2 + 3);
    // Each knows its event's partition key.
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM delivery_history d JOIN events e \
             ON e.workspace_id = d.workspace_id AND e.id = d.event_id \
             AND e.received_at = d.event_received_at"
        )
        .await,
        7
    );

    // Updates of the queue: every claim by a worker (3 × 3 retries of the outage, the flaky
    // one's retry, the 3 resent; a claim handed back over a webhook's share and taken again
    // adds two more) is HOT; only scheduling a retry (3 × 3 + 1) moves the due index.
    // Deliveries claimed at insert and final outcomes are no updates at all.
    let claims = 3 * 3 + 1 + 3;
    let retries = 3 * 3 + 1;
    let (upd, hot) = queue_updates(&app, claims, retries).await;
    assert_eq!(
        upd - hot,
        retries,
        "only retries are not HOT: {upd} updates, {hot} HOT"
    );
}

/// A delivery claimed as its event is stored is sent straight after the commit; until its lease
/// runs out it is not due, so a burst the worker is still sending stays out of what every claim
/// scans (the due index), and nothing is sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_claimed_at_insert_are_not_due_while_they_are_sent() {
    let app = TestApp::spawn().await;
    let user = app.signup("queue-in-flight@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    // Unlimited plans take ingest's one-statement path, which claims deliveries as it stores
    // them.
    app.sql(&format!(
        "UPDATE workspaces SET plan = 'command' WHERE id = '{}'",
        user.workspace_id
    ))
    .await;
    let receiver = Receiver::start().await;
    // Slow, though within the attempt's timeout (2 s in tests).
    receiver.always(Reply::ok().delay(Duration::from_millis(1500)));
    let (status, hook) = user
        .post(
            "/v1/integrations/webhooks",
            json!({ "url": receiver.url("/hook") }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let hook = hook["id"].as_str().expect("id").to_owned();
    for i in 0..3 {
        send(&app, &key, &format!("slow-{i}")).await;
    }
    // In flight: queued, leased, and not due before the lease's end.
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM delivery_queue \
             WHERE status = 'pending' AND leased_until > now() AND next_attempt_at >= leased_until"
        )
        .await,
        3
    );
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM delivery_queue \
             WHERE status = 'pending' AND next_attempt_at <= now()"
        )
        .await,
        0
    );
    settled(&user, &hook, 3, 0).await;
    assert_eq!(receiver.received().len(), 3);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM delivery_queue").await,
        0
    );
}
