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

/// Two counters of `table` in `pg_stat_user_tables`, once `enough` holds for them (a backend
/// reports its counters when it goes idle, within seconds).
async fn table_stats(
    app: &TestApp,
    table: &str,
    (a, b): (&str, &str),
    enough: impl Fn(i64, i64) -> bool,
) -> (i64, i64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let n = app
            .count(&format!(
                "SELECT ({a} * 1000000 + {b})::int8 AS n FROM pg_stat_user_tables \
                 WHERE relname = '{table}'"
            ))
            .await;
        let (x, y) = (n / 1_000_000, n % 1_000_000);
        if enough(x, y) {
            return (x, y);
        }
        assert!(Instant::now() < deadline, "{table}: {a} {x}, {b} {y}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The queue's (updates, HOT updates), once the app's connections have reported at least
/// `hot` HOT updates and `cold` others.
async fn queue_updates(app: &TestApp, hot: i64, cold: i64) -> (i64, i64) {
    table_stats(
        app,
        "delivery_queue",
        ("n_tup_upd", "n_tup_hot_upd"),
        |upd, hot_upd| hot_upd >= hot && upd - hot_upd >= cold,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_work_leaves_the_queue_for_history_and_claims_stay_hot() {
    let app = TestApp::spawn().await;
    let user = app.signup("queue-history@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    let receiver = Receiver::start().await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    let hook = user.add_webhook(&receiver.url("/hook")).await;

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
    let hook = user.add_webhook(&receiver.url("/hook")).await;
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

/// Statistics taken while the queue was empty (a fresh database, a quiet minute before a burst)
/// must not make a batch of results or the delete triggers read the whole queue and history once
/// they have grown. Before the queue's statements were pinned to index scans and nested loops,
/// such stale statistics made the recorder hash all of `delivery_queue` and `delivery_history`
/// for every batch (0.2 to 1.2 s a statement on the bench) and the queue grew by 270,000 rows in
/// the first minute of a soak.
#[tokio::test]
async fn queue_statements_keep_index_plans_on_statistics_of_an_empty_queue() {
    let app = TestApp::spawn().await;
    let db = crate::faults::pg(&app.db_url).await;
    let user = app.signup("queue-plans@example.com").await;
    let hook = crate::faults::add_webhook(&user, "http://127.0.0.1:9/never").await;
    // Statistics of an empty queue and history, then 20,000 rows neither has statistics for
    // (not due for a day, so no worker touches them).
    db.batch_execute("ANALYZE delivery_queue; ANALYZE delivery_history")
        .await
        .expect("analyze");
    db.batch_execute(&format!(
        "INSERT INTO delivery_queue (id, workspace_id, webhook_id, event_id, url, status,
                                     next_attempt_at, event_received_at)
         SELECT gen_random_uuid(), '{ws}', '{hook}', gen_random_uuid(), 'http://127.0.0.1:9/never',
                'pending', now() + interval '1 day', now()
         FROM generate_series(1, 20000);
         INSERT INTO delivery_history (id, workspace_id, webhook_id, event_id, url, status,
                                       created_at, completed_at, event_received_at)
         SELECT gen_random_uuid(), '{ws}', '{hook}', gen_random_uuid(), 'http://127.0.0.1:9/never',
                'succeeded', now(), now(), now()
         FROM generate_series(1, 20000);",
        ws = user.workspace_id
    ))
    .await
    .expect("fill the queue");

    // A batch of results as the recorder writes it: find the rows, move them to history.
    let rows = db
        .query(
            "SELECT workspace_id::text, id::text, attempts FROM delivery_queue LIMIT 100",
            &[],
        )
        .await
        .expect("rows");
    let array = |f: &dyn Fn(&tokio_postgres::Row) -> String| {
        rows.iter().map(f).collect::<Vec<_>>().join(",")
    };
    let (workspaces, ids, attempts) = (
        array(&|r| r.get::<_, String>(0)),
        array(&|r| r.get::<_, String>(1)),
        array(&|r| r.get::<_, i32>(2).to_string()),
    );
    let explain = |plans: bool| {
        let settings = if plans {
            postback_domain::delivery::queue::QUEUE_PLANS
        } else {
            "SELECT 1"
        };
        format!(
            "BEGIN; {settings};
             EXPLAIN (COSTS OFF)
             WITH r AS (SELECT * FROM unnest('{{{workspaces}}}'::uuid[], '{{{ids}}}'::uuid[],
                                             '{{{attempts}}}'::int4[])
                                  AS t(workspace_id, id, attempt)),
             logged AS (SELECT r.id FROM r
                        WHERE EXISTS (SELECT 1 FROM delivery_queue q
                                      WHERE q.workspace_id = r.workspace_id AND q.id = r.id)
                           OR EXISTS (SELECT 1 FROM delivery_history h
                                      WHERE h.workspace_id = r.workspace_id AND h.id = r.id)),
             moved AS (DELETE FROM delivery_queue d USING r
                       WHERE d.workspace_id = r.workspace_id AND d.id = r.id
                         AND d.attempts = r.attempt AND d.status = 'pending'
                       RETURNING d.*)
             INSERT INTO delivery_history (id, workspace_id, webhook_id, event_id, url, status,
                                           created_at, completed_at, event_received_at)
             SELECT id, workspace_id, webhook_id, event_id, url, 'succeeded', created_at, now(),
                    event_received_at
             FROM moved WHERE id IN (SELECT id FROM logged);"
        )
    };
    let plan_of = |messages: Vec<tokio_postgres::SimpleQueryMessage>| -> String {
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let pinned = plan_of(db.simple_query(&explain(true)).await.expect("explain"));
    db.batch_execute("ROLLBACK").await.expect("rollback");
    for bad in [
        "Seq Scan on delivery_queue",
        "Seq Scan on delivery_history",
        "Hash Join",
        "Bitmap Heap Scan on delivery_queue",
    ] {
        assert!(
            !pinned.contains(bad),
            "{bad} in the recorder's plan:\n{pinned}"
        );
    }
    assert!(
        pinned.contains("Index Scan using delivery_queue_pkey on delivery_queue d"),
        "the rows are found by primary key:\n{pinned}"
    );

    // The triggers that follow a delete into other tables carry the same settings.
    let pinned_functions: Vec<String> = db
        .query(
            "SELECT proname::text FROM pg_proc
             WHERE proconfig @> ARRAY['enable_seqscan=off', 'enable_hashjoin=off',
                                      'enable_mergejoin=off', 'enable_bitmapscan=off']
             ORDER BY 1",
            &[],
        )
        .await
        .expect("functions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        pinned_functions,
        [
            "delete_children_of_deleted_deliveries",
            "delete_deliveries_of_deleted_events",
            "delete_keys_of_deleted_events"
        ]
    );
    let unpinned = plan_of(db.simple_query(&explain(false)).await.expect("explain"));
    db.batch_execute("ROLLBACK").await.expect("rollback");
    println!("plan without the settings:\n{unpinned}\n\nwith them:\n{pinned}");
}

/// The rules look-up (the webhooks and connections a batch's keys may fire) runs once a batch,
/// with one plan made for every batch on the fast path's connection. That plan must probe by
/// index whatever the number of tenants: the statement's generic plan once scanned every
/// tenant's keys and webhooks, so PostgreSQL planned it afresh for every batch instead (0.3 ms a
/// batch with 1,000 keys and webhooks stored, a tenth of the machine on the prefilled bench).
#[tokio::test]
async fn the_rules_look_up_probes_by_index_in_the_one_plan_it_keeps_whatever_the_tenants() {
    let app = TestApp::spawn().await;
    let db = crate::faults::pg(&app.db_url).await;
    // 200 tenants with a domain, 10 keys and 10 webhooks each.
    db.batch_execute(
        "CREATE TEMP TABLE tenants AS
             SELECT gen_random_uuid() AS ws, gen_random_uuid() AS id, n
             FROM generate_series(1, 200) n;
         INSERT INTO workspaces (id, name, plan) SELECT ws, 'Tenant ' || n, 'command' FROM tenants;
         INSERT INTO domains (id, workspace_id, hostname, site_id)
             SELECT id, ws, 'tenant-' || n || '.example.com', 'rl' || substr(md5(id::text), 1, 20)
             FROM tenants;
         INSERT INTO inbound_keys (id, workspace_id, domain_id, name, key_hash, prefix)
             SELECT gen_random_uuid(), ws, id, 'Key ' || g,
                    sha256(convert_to('key-' || n || '-' || g, 'UTF8')), 'cc_live_rl'
             FROM tenants, generate_series(1, 10) g;
         INSERT INTO webhooks (id, workspace_id, domain_id, name, url)
             SELECT gen_random_uuid(), ws, id, 'Hook ' || g, 'https://hooks.example.com/' || n || '/' || g
             FROM tenants, generate_series(1, 10) g;
         ANALYZE workspaces; ANALYZE domains; ANALYZE inbound_keys; ANALYZE webhooks;
         ANALYZE connections;",
    )
    .await
    .expect("tenants");
    db.batch_execute(&format!(
        "PREPARE rules(bytea[]) AS {}; SET plan_cache_mode = force_generic_plan",
        postback_domain::delivery::RULES_SQL
    ))
    .await
    .expect("prepare the look-up");
    let keys =
        "ARRAY[sha256(convert_to('key-7-1', 'UTF8')), sha256(convert_to('key-9-3', 'UTF8'))]";
    let plan: Vec<String> = db
        .query(&format!("EXPLAIN (COSTS OFF) EXECUTE rules({keys})"), &[])
        .await
        .expect("explain")
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        !plan.contains("Seq Scan on inbound_keys") && !plan.contains("Seq Scan on webhooks"),
        "the kept plan scans every tenant's rows:\n{plan}"
    );
    assert!(plan.contains("inbound_keys_key_hash_idx"), "{plan}");
    // And it finds what it should: each key's workspace's webhooks, no one else's.
    let rows = db
        .query(&format!("EXECUTE rules({keys})"), &[])
        .await
        .expect("execute");
    let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.get::<_, uuid::Uuid>(1)).collect();
    let owners: Vec<i32> = db
        .query(
            "SELECT DISTINCT t.n FROM webhooks w JOIN tenants t ON t.ws = w.workspace_id
             WHERE w.id = ANY($1) ORDER BY t.n",
            &[&ids],
        )
        .await
        .expect("owners")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids.len(), 20, "10 webhooks for each of the two keys");
    assert_eq!(owners, vec![7, 9]);
}

/// The queue's manual VACUUMs (the upkeep job's) and dead row versions, once `enough` holds.
async fn queue_vacuums(app: &TestApp, enough: impl Fn(i64, i64) -> bool) -> (i64, i64) {
    table_stats(
        app,
        "delivery_queue",
        ("vacuum_count", "n_dead_tup"),
        enough,
    )
    .await
}

/// Manual VACUUMs of `table` (the upkeep job's; autovacuum's are counted apart) and its dead
/// row versions, once at least one such VACUUM is counted and fewer than `dead` versions remain.
async fn vacuumed(app: &TestApp, table: &str, dead: i64) -> (i64, i64) {
    table_stats(
        app,
        table,
        ("vacuum_count", "n_dead_tup"),
        |vacuums, now| vacuums >= 1 && now < dead,
    )
    .await
}

/// A server whose upkeep job looks every 0.1 s with `dead` dead versions as its threshold, and a
/// user of it with a key and a webhook to the returned receiver.
async fn upkeep_app(email: &str, dead: i64) -> (TestApp, String, Receiver) {
    let app = TestApp::spawn_adjusted(None, |s| {
        s.upkeep = Some(postback_runtime::upkeep::Settings {
            every: Duration::from_millis(100),
            dead,
        })
    })
    .await;
    let user = app.signup(email).await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    let receiver = Receiver::start().await;
    user.add_webhook(&receiver.url("/hook")).await;
    (app, key, receiver)
}

/// Sends `events` purchases, 20 at a time, and waits until each has reached the receiver: every
/// delivery passes through the queue (its row deleted as it moves to history) and every event
/// through the rollups' pending list.
async fn churn(app: &TestApp, key: &str, receiver: &Receiver, prefix: &str, events: usize) {
    for chunk in 0..events / 20 {
        let orders: Vec<String> = (0..20).map(|i| format!("{prefix}-{chunk}-{i}")).collect();
        futures_util::future::join_all(orders.iter().map(|o| send(app, key, o))).await;
    }
    assert_eq!(receiver.wait_for(events, WAIT).await.len(), events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upkeep_job_vacuums_the_queue_and_the_pending_rollups_as_they_churn() {
    let dead = 200;
    let (app, key, receiver) = upkeep_app("queue-upkeep@example.com", dead).await;

    // 600 deliveries pass through the queue (each row deleted as it moves to history), and 600
    // stored events through the rollups' pending list.
    let events = 600;
    churn(&app, &key, &receiver, "upkeep", events).await;

    // Both tables get VACUUMed by the job, well before autovacuum's next visit, and keep fewer
    // dead versions than the threshold.
    let (_, queue_dead) = vacuumed(&app, "delivery_queue", dead).await;
    let (_, pending_dead) = vacuumed(&app, "event_rollup_pending", dead).await;
    assert!(queue_dead < dead && pending_dead < dead);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM delivery_queue").await,
        0,
        "every delivery left the queue"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM delivery_history WHERE status = 'succeeded'")
            .await,
        events as i64
    );
}

/// While a long transaction elsewhere still sees the queue's dead row versions, VACUUM can remove
/// none of them: the job backs off (a look after 0.1, 0.2, 0.4, 0.8 … s instead of every 0.1 s)
/// and cleans the queue soon after the transaction ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upkeep_job_backs_off_while_a_long_transaction_holds_the_dead_rows() {
    let dead = 100;
    let (app, key, receiver) = upkeep_app("queue-backoff@example.com", dead).await;

    // A reporting query, say, that keeps its snapshot open from before the deliveries.
    let holder = crate::faults::pg(&app.db_url).await;
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM delivery_queue")
        .await
        .expect("open the long transaction");

    let events = 300;
    churn(&app, &key, &receiver, "held", events).await;

    // The job has found the queue due and VACUUMed it, in vain: the dead versions stay.
    let (first, _) = queue_vacuums(&app, |vacuums, now| vacuums >= 1 && now >= dead).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (later, still) = queue_vacuums(&app, |_, _| true).await;
    assert!(
        still >= dead,
        "nothing can be removed while the transaction is open: {still} dead versions left"
    );
    // Every 0.1 s that would be about 40 VACUUMs; doubling waits make it 4 or 5.
    assert!(
        later - first <= 8,
        "{} VACUUMs in 4 s while none could remove anything",
        later - first
    );

    holder.batch_execute("COMMIT").await.expect("commit");
    let (_, left) = queue_vacuums(&app, |vacuums, now| vacuums > later && now < dead).await;
    assert!(left < dead);
}
