//! Hot paths that exist twice (a raw-SQL statement and its diesel or multi-statement twin) give
//! the same result: the inbound fast path (workspaces without a monthly quota) and the exact path
//! (a transaction under the quota lock); recording a batch of attempt results with and without a
//! delivery that used up its attempts.

use std::time::Duration;

use chrono::Utc;
use diesel::sql_types::Jsonb;
use diesel_async::RunQueryDsl;
use postback_domain::delivery::{self, AttemptResult, Breaker, RecordPath};
use postback_domain::ids::{DeliveryId, WebhookId, WorkspaceId};
use postback_domain::states::AttemptOutcome;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::receiver::Receiver;

#[derive(diesel::QueryableByName)]
struct J {
    #[diesel(sql_type = Jsonb)]
    j: Value,
}

async fn json_rows(app: &TestApp, sql: &str) -> Vec<Value> {
    let mut conn = app.conn().await;
    diesel::sql_query(sql)
        .load::<J>(&mut conn)
        .await
        .expect(sql)
        .into_iter()
        .map(|r| r.j)
        .collect()
}

/// Removes what differs by nature between two tenants' copies of one event: ids and times
/// of arrival.
fn without_ids(mut body: Value) -> Value {
    for k in ["id", "workspace_id"] {
        body.as_object_mut().map(|o| o.remove(k));
    }
    if let Some(data) = body.get_mut("data").and_then(Value::as_object_mut) {
        for k in ["eventId", "domainId", "receivedAt"] {
            data.remove(k);
        }
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_and_exact_inbound_paths_store_and_deliver_the_same() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let fast = app.signup("fast@twins.test").await;
    let exact = app.signup("exact@twins.test").await;
    app.sql(&format!(
        "UPDATE workspaces SET plan = 'command' WHERE id = '{}'",
        fast.workspace_id
    ))
    .await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM workspaces w JOIN plans p ON p.tier = w.plan \
             WHERE w.id = '{}' AND p.max_events_per_month IS NULL",
            fast.workspace_id
        ))
        .await,
        1,
        "the fast tenant has no quota"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM workspaces w JOIN plans p ON p.tier = w.plan \
             WHERE w.id = '{}' AND p.max_events_per_month IS NOT NULL",
            exact.workspace_id
        ))
        .await,
        1,
        "the exact tenant has a quota"
    );

    let body = json!({
        "email": "Jane.Doe@Example.org",
        "event": "purchase",
        "currency": "eur",
        "orderId": "T-1",
        "firstName": "Jane",
        "lastName": "Doe",
        "phone": "+33 1 23 45 67 89",
        "timestamp": 1764806400,
        "ip": "2001:db8::1",
        "countryCode": "fr",
        "city": "Paris",
        "guid": "g-1",
        "products": [
            {"name": "Shirt", "link": "https://shop.example/shirt", "price": 20, "quantity": 2, "id": "S1"},
            {"name": "Cap", "link": "https://shop.example/cap", "price": 9.5, "quantity": 1}
        ],
        "coupon": "WELCOME",
        "nested": {"a": [1, 2]}
    });
    for (user, path) in [(&fast, "/fast"), (&exact, "/exact")] {
        let domain = user.add_domain("shop.example").await;
        let (_, key) = user.add_key(&domain, "Backend").await;
        let (status, _) = user
            .post(
                "/v1/integrations/webhooks",
                json!({ "url": receiver.url(path) }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, answer) = app.inbound(&key, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let (status, again) = app.inbound(&key, body.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            again["duplicate"], true,
            "{path}: orderId + event deduplicates"
        );
        assert_eq!(again["eventId"], answer["eventId"]);
    }

    let stored = |ws: String| {
        format!(
            "SELECT to_jsonb(e) - 'id' - 'workspace_id' - 'domain_id' - 'key_id' - 'received_at' AS j \
             FROM events e WHERE workspace_id = '{ws}'"
        )
    };
    let fast_rows = json_rows(&app, &stored(fast.workspace_id.clone())).await;
    let exact_rows = json_rows(&app, &stored(exact.workspace_id.clone())).await;
    assert_eq!(fast_rows.len(), 1);
    assert_eq!(fast_rows, exact_rows, "both paths store the same event");
    assert_eq!(fast_rows[0]["email"], "jane.doe@example.org");
    assert_eq!(
        fast_rows[0]["payload"],
        json!({"coupon": "WELCOME", "nested": {"a": [1, 2]}})
    );

    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let body_of = |path: &str| {
        got.iter()
            .find(|r| r.path == path)
            .map(|r| without_ids(r.json()))
            .expect(path)
    };
    assert_eq!(
        body_of("/fast"),
        body_of("/exact"),
        "receivers get the same body"
    );
    assert_eq!(body_of("/fast")["data"]["value"], 49.5);

    let deliveries = |ws: String| {
        format!(
            "SELECT jsonb_build_object('status', status, 'attempts', attempts, \
             'round', round_attempts, 'code', last_status_code) AS j \
             FROM deliveries WHERE workspace_id = '{ws}'"
        )
    };
    let mut fast_d = Vec::new();
    let mut exact_d = Vec::new();
    for _ in 0..50 {
        fast_d = json_rows(&app, &deliveries(fast.workspace_id.clone())).await;
        exact_d = json_rows(&app, &deliveries(exact.workspace_id.clone())).await;
        if fast_d
            .iter()
            .chain(&exact_d)
            .all(|d| d["status"] == "succeeded")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fast_d, exact_d, "both deliveries end the same");
    assert_eq!(fast_d[0]["status"], "succeeded");
}

/// A delivery pending its second attempt, due in 2100 (so no worker takes it).
async fn pending_delivery(app: &TestApp, webhook: WebhookId, workspace: WorkspaceId) -> DeliveryId {
    let id = DeliveryId(uuid::Uuid::now_v7());
    let event = uuid::Uuid::now_v7();
    app.sql(&format!(
        "INSERT INTO events (id, workspace_id, domain_id, event_name, email, payload, occurred_at, \
         email_sha256, currency, products) \
         SELECT '{event}', w.id, d.id, 'purchase', 'a@b.co', '{{}}', now(), '\\x00', 'USD', '[]' \
         FROM workspaces w JOIN domains d ON d.workspace_id = w.id WHERE w.id = '{}' LIMIT 1",
        workspace.0
    ))
    .await;
    app.sql(&format!(
        "INSERT INTO delivery_queue (id, workspace_id, webhook_id, event_id, url, status, \
         attempts, round_attempts, next_attempt_at, event_received_at) \
         SELECT '{}', '{}', '{}', '{event}', 'http://127.0.0.1:9/', 'pending', 2, 2, \
         '2100-01-01T00:00:00Z', received_at FROM events WHERE id = '{event}'",
        id.0, workspace.0, webhook.0
    ))
    .await;
    id
}

fn result(
    d: DeliveryId,
    ws: WorkspaceId,
    hook: WebhookId,
    outcome: AttemptOutcome,
    retry_at: Option<chrono::DateTime<Utc>>,
) -> AttemptResult {
    let started_at = chrono::DateTime::from_timestamp(1_764_806_400, 0).expect("time");
    AttemptResult {
        delivery_id: d,
        workspace_id: ws,
        webhook_id: Some(hook),
        attempt: 2,
        started_at,
        duration_ms: 12,
        status_code: Some(if outcome == AttemptOutcome::Succeeded {
            200
        } else {
            503
        }),
        response_body: Some("answer".into()),
        error: (outcome != AttemptOutcome::Succeeded).then(|| "HTTP 503".to_owned()),
        outcome,
        retry_at,
        timed_out: false,
        slotted: false,
        reconnect: None,
    }
}

#[tokio::test]
async fn recording_with_or_without_a_give_up_in_the_batch_or_prepared_gives_the_same_rows() {
    let app = TestApp::spawn().await;
    let user = app.signup("record@twins.test").await;
    user.add_domain("shop.example").await;
    let ws = WorkspaceId(user.workspace_id.parse().expect("uuid"));
    app.sql(&format!(
        "UPDATE workspaces SET plan = 'command' WHERE id = '{}'",
        ws.0
    ))
    .await;
    let mut hooks = Vec::new();
    for i in 0..4 {
        let (status, hook) = user
            .post(
                "/v1/integrations/webhooks",
                json!({ "url": format!("http://127.0.0.1:9/{i}") }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        hooks.push(WebhookId(
            hook["id"].as_str().expect("id").parse().expect("uuid"),
        ));
    }
    app.sql(&format!(
        "UPDATE webhooks SET consecutive_failures = 3 WHERE workspace_id = '{}'",
        ws.0
    ))
    .await;
    let (a_ok, a_retry) = (
        pending_delivery(&app, hooks[0], ws).await,
        pending_delivery(&app, hooks[0], ws).await,
    );
    let (b_ok, b_retry) = (
        pending_delivery(&app, hooks[1], ws).await,
        pending_delivery(&app, hooks[1], ws).await,
    );
    let b_gone = pending_delivery(&app, hooks[2], ws).await;
    let (c_ok, c_retry) = (
        pending_delivery(&app, hooks[3], ws).await,
        pending_delivery(&app, hooks[3], ws).await,
    );
    let retry_at = chrono::DateTime::from_timestamp(1_900_000_000, 0);
    let breaker = Breaker {
        after: 5,
        pause: Duration::from_secs(30),
    };

    let mut conn = app.conn().await;
    // Batch A: no delivery used up its attempts (the single-statement recorder).
    delivery::record(
        &mut conn,
        &[
            result(a_ok, ws, hooks[0], AttemptOutcome::Succeeded, None),
            result(a_retry, ws, hooks[0], AttemptOutcome::Retry, retry_at),
        ],
        breaker,
        None,
    )
    .await
    .expect("record A");
    // Batch B: the same results, beside one that gave up (the transaction recorder).
    delivery::record(
        &mut conn,
        &[
            result(b_ok, ws, hooks[1], AttemptOutcome::Succeeded, None),
            result(b_retry, ws, hooks[1], AttemptOutcome::Retry, retry_at),
            result(b_gone, ws, hooks[2], AttemptOutcome::Failed, None),
        ],
        breaker,
        None,
    )
    .await
    .expect("record B");
    // Batch C: batch A's results on the recorder's own connection, its statement prepared.
    let prepared = RecordPath::connect(&app.db_url)
        .await
        .expect("recorder connection");
    delivery::record(
        &mut conn,
        &[
            result(c_ok, ws, hooks[3], AttemptOutcome::Succeeded, None),
            result(c_retry, ws, hooks[3], AttemptOutcome::Retry, retry_at),
        ],
        breaker,
        Some(&prepared),
    )
    .await
    .expect("record C");

    let row = |d: DeliveryId| {
        format!(
            "SELECT jsonb_build_object('status', status, 'attempts', attempts, \
             'next', next_attempt_at, 'code', last_status_code, 'error', last_error, \
             'completed', completed_at IS NOT NULL, \
             'log', (SELECT jsonb_agg(jsonb_build_object('attempt', attempt, 'started', started_at, \
                     'ms', duration_ms, 'code', status_code, 'body', response_body, 'error', error)) \
                     FROM delivery_attempts a WHERE a.delivery_id = d.id)) AS j \
             FROM deliveries d WHERE id = '{}'",
            d.0
        )
    };
    for (a, b) in [
        (a_ok, b_ok),
        (a_retry, b_retry),
        (a_ok, c_ok),
        (a_retry, c_retry),
    ] {
        let a_row = json_rows(&app, &row(a)).await;
        let b_row = json_rows(&app, &row(b)).await;
        assert_eq!(a_row, b_row, "the same result is recorded the same way");
    }
    let ok = json_rows(&app, &row(a_ok)).await;
    assert_eq!(ok[0]["status"], "succeeded");
    assert_eq!(ok[0]["completed"], true);
    let retry = json_rows(&app, &row(a_retry)).await;
    assert_eq!(retry[0]["status"], "pending");
    let gone = json_rows(&app, &row(b_gone)).await;
    assert_eq!(gone[0]["status"], "failed");

    let runs = json_rows(
        &app,
        &format!(
            "SELECT jsonb_object_agg(url, consecutive_failures) AS j FROM webhooks \
             WHERE workspace_id = '{}'",
            ws.0
        ),
    )
    .await;
    assert_eq!(
        runs[0],
        json!({"http://127.0.0.1:9/0": 0, "http://127.0.0.1:9/1": 0, "http://127.0.0.1:9/2": 4,
               "http://127.0.0.1:9/3": 0}),
        "a success resets the run every way; a give-up extends it"
    );
}
