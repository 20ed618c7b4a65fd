//! Retention: events (with their deliveries and attempts) and touches older than the plan keeps
//! them are deleted; newer ones, and older ones of longer-lived plans, stay.

use serde_json::json;

use crate::helpers::TestApp;

/// Two workspaces: Pulse (keeps 30 days), with a webhook to `receiver`, and Command (keeps two
/// years), each with a domain and an inbound key.
struct TwoPlans {
    receiver: crate::receiver::Receiver,
    app: TestApp,
    pulse_domain: String,
    pulse_key: String,
    command_domain: String,
    command_key: String,
}

async fn two_plans(name: &str) -> TwoPlans {
    let receiver = crate::receiver::Receiver::start().await;
    receiver.always(crate::receiver::Reply::ok());
    let app = TestApp::spawn().await;
    let pulse = app.signup(&format!("{name}.pulse@example.com")).await;
    let pulse_domain = pulse.add_domain(&format!("pulse.{name}.example.com")).await;
    let (_, pulse_key) = pulse.add_key(&pulse_domain, "Backend").await;
    let command = app.signup(&format!("{name}.command@example.com")).await;
    let command_domain = command
        .add_domain(&format!("command.{name}.example.com"))
        .await;
    let (_, command_key) = command.add_key(&command_domain, "Backend").await;
    app.sql(&format!(
        "UPDATE workspaces SET plan = 'command' WHERE id = '{}'",
        command.workspace_id
    ))
    .await;
    let (status, _) = pulse
        .post(
            "/v1/integrations/webhooks",
            json!({"url": receiver.url("/hook")}),
        )
        .await;
    assert!(status.is_success());
    TwoPlans {
        receiver,
        app,
        pulse_domain,
        pulse_key,
        command_domain,
        command_key,
    }
}

#[tokio::test]
async fn the_retention_pass_deletes_only_what_the_plan_no_longer_keeps() {
    let TwoPlans {
        receiver,
        app,
        pulse_domain,
        pulse_key,
        command_domain,
        command_key,
        ..
    } = two_plans("retention").await;

    for (key, n) in [(&pulse_key, 3), (&command_key, 2)] {
        for i in 0..n {
            let (status, _) = app
                .inbound(
                    key,
                    json!({"email": format!("r{i}@example.com"), "event": "purchase"}),
                )
                .await;
            assert!(status.is_success());
        }
    }
    receiver
        .wait_for(3, std::time::Duration::from_secs(10))
        .await;
    // Age two of Pulse's events and all of Command's by 40 days, and a touch of each domain.
    app.sql(&format!(
        "UPDATE events SET received_at = now() - interval '40 days'
         WHERE id IN (SELECT id FROM events WHERE domain_id = '{pulse_domain}' ORDER BY id LIMIT 2)
            OR domain_id = '{command_domain}'"
    ))
    .await;
    for d in [&pulse_domain, &command_domain] {
        app.sql(&format!(
            "WITH v AS (INSERT INTO visitors (id, workspace_id, domain_id, browser_id)
                        SELECT gen_random_uuid(), workspace_id, id, 'visitor-retention' FROM domains WHERE id = '{d}'
                        RETURNING id, workspace_id, domain_id)
             INSERT INTO touches (id, workspace_id, domain_id, visitor_id, occurred_at, device_type)
             SELECT gen_random_uuid(), workspace_id, domain_id, id, now() - interval '40 days', 'desktop' FROM v
             UNION ALL
             SELECT gen_random_uuid(), workspace_id, domain_id, id, now(), 'desktop' FROM v"
        ))
        .await;
    }
    // Visitors of Pulse's domain: one last seen 40 days ago with nothing left but an email (goes,
    // with its email), one as old but still with a recent touch (stays), one seen now (stays).
    app.sql(&format!(
        "WITH v AS (INSERT INTO visitors (id, workspace_id, domain_id, browser_id, last_seen_at)
                    SELECT gen_random_uuid(), workspace_id, id, b, now() - interval '40 days'
                    FROM domains, (VALUES ('visitor-gone'), ('visitor-kept-touch')) AS x(b)
                    WHERE id = '{pulse_domain}'
                    RETURNING id, workspace_id, domain_id, browser_id)
         INSERT INTO visitor_emails (domain_id, email_sha256, visitor_id, workspace_id)
         SELECT domain_id, sha256(browser_id::bytea), id, workspace_id FROM v"
    ))
    .await;
    app.sql(&format!(
        "INSERT INTO touches (id, workspace_id, domain_id, visitor_id, occurred_at, device_type)
         SELECT gen_random_uuid(), workspace_id, domain_id, id, now(), 'desktop'
         FROM visitors WHERE browser_id = 'visitor-kept-touch' AND domain_id = '{pulse_domain}'"
    ))
    .await;
    app.sql(&format!(
        "INSERT INTO visitors (id, workspace_id, domain_id, browser_id)
         SELECT gen_random_uuid(), workspace_id, id, 'visitor-recent' FROM domains WHERE id = '{pulse_domain}'"
    ))
    .await;
    assert_eq!(app.count("SELECT count(*) AS n FROM deliveries").await, 3);

    let purged = postback_runtime::retention::run_once(&app.pool)
        .await
        .expect("pass ran");
    assert_eq!(purged.events, 2);
    assert_eq!(purged.touches, 1);
    assert_eq!(purged.visitors, 1);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM visitors WHERE browser_id = 'visitor-gone'")
            .await,
        0
    );
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM visitors WHERE browser_id IN ('visitor-kept-touch', 'visitor-recent', 'visitor-retention')"
        )
        .await,
        4,
        "visitors with a touch left or seen lately stay"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM visitor_emails").await,
        1,
        "the purged visitor's email went with it"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM events WHERE domain_id = '{pulse_domain}'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM events WHERE domain_id = '{command_domain}'"
        ))
        .await,
        2
    );
    // The purged events' deliveries and attempts went with them.
    assert_eq!(app.count("SELECT count(*) AS n FROM deliveries").await, 1);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM delivery_attempts")
            .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM touches").await, 4);

    // Passes are counted in /metrics.
    let metrics = postback_runtime::metrics::Metrics::new();
    metrics.retention(Some(purged));
    let text = metrics.render(&app.pool).await.expect("render");
    assert!(
        text.contains("postback_retention_deleted_total{kind=\"events\"} 2"),
        "{text}"
    );
    assert!(text.contains("postback_retention_passes_total{result=\"ok\"} 1"));

    // Nothing left to do: a second pass deletes nothing.
    let again = postback_runtime::retention::run_once(&app.pool)
        .await
        .expect("pass");
    assert_eq!((again.events, again.touches, again.visitors), (0, 0, 0));
}

/// The month `months` ago (UTC), one day in, as SQL.
fn month_ago(months: u32) -> String {
    format!("(date_trunc('month', now() - interval '{months} months', 'UTC') + interval '1 day')")
}

/// `events_pYYYYMM` for the month `months` ago.
async fn partition_name(app: &TestApp, table: &str, months: u32) -> String {
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    use diesel_async::RunQueryDsl;
    let mut conn = app.conn().await;
    let n: Name = diesel::sql_query(format!(
        "SELECT '{table}_p' || to_char(date_trunc('month', now() - interval '{months} months', 'UTC') AT TIME ZONE 'UTC', 'YYYYMM') AS name"
    ))
    .get_result(&mut conn)
    .await
    .expect("name");
    n.name
}

/// A month whose rows every plan has let go of is dropped whole (events, attempts), with what
/// its events counted for in the overview and their idempotency keys; a month another plan
/// still keeps part of loses only the expired workspace's rows; partitions stay ready ahead.
#[tokio::test]
async fn a_month_every_plan_has_let_go_of_is_dropped_whole() {
    let TwoPlans {
        receiver,
        app,
        pulse_domain,
        pulse_key,
        command_domain,
        command_key,
    } = two_plans("partitions").await;
    for (key, order) in [
        (&pulse_key, "o-1"),
        (&pulse_key, "o-2"),
        (&pulse_key, "o-3"),
        (&command_key, "c-1"),
        (&command_key, "c-2"),
    ] {
        let (status, body) = app
            .inbound(
                key,
                json!({"email": "buyer@example.com", "event": "purchase", "value": 10, "orderId": order}),
            )
            .await;
        assert!(status.is_success(), "{body}");
    }
    receiver
        .wait_for(3, std::time::Duration::from_secs(10))
        .await;
    // Their results are recorded (the receiver has them a moment before the database does).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app
        .count("SELECT count(*) AS n FROM delivery_attempts")
        .await
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the three attempts were not recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Months four and three back exist (as they would have, had the install run then).
    app.sql("SELECT postback_partitions_ensure(now() - interval '4 months', now())")
        .await;
    // o-1 and o-2 (Pulse only) were received four months ago; o-3 (Pulse) and c-1 (Command)
    // three months ago. Their attempts were made then too.
    let (old, mixed) = (month_ago(4), month_ago(3));
    app.sql(&format!(
        "UPDATE events SET received_at = {old}, occurred_at = {old} WHERE order_id IN ('o-1', 'o-2')"
    ))
    .await;
    app.sql(&format!(
        "UPDATE events SET received_at = {mixed}, occurred_at = {mixed} WHERE order_id IN ('o-3', 'c-1')"
    ))
    .await;
    app.sql(
        "UPDATE event_keys k SET received_at = e.received_at FROM events e WHERE e.id = k.event_id",
    )
    .await;
    app.sql(&format!(
        "UPDATE delivery_attempts SET started_at = {old}
         WHERE delivery_id IN (SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id
                               WHERE e.order_id IN ('o-1', 'o-2'))"
    ))
    .await;
    crate::overview::fold_all(&app).await;
    let rollup = |domain: &str| {
        format!("SELECT coalesce(sum(events), 0)::bigint AS n FROM event_rollups WHERE domain_id = '{domain}'")
    };
    assert_eq!(app.count(&rollup(&pulse_domain)).await, 3);
    let old_events = partition_name(&app, "events", 4).await;
    let old_attempts = partition_name(&app, "delivery_attempts", 4).await;
    let mixed_events = partition_name(&app, "events", 3).await;
    let old_keys = partition_name(&app, "event_keys", 4).await;
    let mixed_keys = partition_name(&app, "event_keys", 3).await;
    let exists =
        |name: &str| format!("SELECT count(*) AS n FROM pg_class WHERE relname = '{name}'");
    assert_eq!(app.count(&exists(&old_events)).await, 1);
    assert_eq!(
        app.count(&format!("SELECT count(*) AS n FROM {old_attempts}"))
            .await,
        2
    );

    let purged = postback_runtime::retention::run_once(&app.pool)
        .await
        .expect("pass ran");
    assert_eq!(purged.events, 3, "{purged:?}");
    assert_eq!(purged.partitions_left, 0, "{purged:?}");
    assert_eq!(
        app.count(&exists(&old_events)).await,
        0,
        "the Pulse-only month is gone"
    );
    assert_eq!(
        app.count(&exists(&old_attempts)).await,
        0,
        "with its attempts"
    );
    assert_eq!(
        app.count(&exists(&old_keys)).await,
        0,
        "and its month of idempotency keys, dropped rather than emptied"
    );
    // o-3's key went with its event by a row delete; c-1's stays in the mixed month.
    assert_eq!(
        app.count(&format!("SELECT count(*) AS n FROM {mixed_keys}"))
            .await,
        1
    );
    assert_eq!(
        app.count(&exists(&mixed_events)).await,
        1,
        "Command still keeps c-1"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM events WHERE domain_id = '{pulse_domain}'"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM events WHERE domain_id = '{command_domain}'"
        ))
        .await,
        2
    );
    // The overview forgot them; their idempotency keys went with them.
    crate::overview::fold_all(&app).await;
    assert_eq!(app.count(&rollup(&pulse_domain)).await, 0);
    assert_eq!(app.count(&rollup(&command_domain)).await, 2);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM event_keys WHERE domain_id = '{pulse_domain}'"
        ))
        .await,
        0
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM event_keys").await, 2);
    // So o-1 is a new order again; c-1 is still a duplicate.
    let (status, body) = app
        .inbound(
            &pulse_key,
            json!({"email": "buyer@example.com", "event": "purchase", "value": 10, "orderId": "o-1"}),
        )
        .await;
    assert!(
        status.is_success() && body.get("duplicate").is_none(),
        "{body}"
    );
    let (_, body) = app
        .inbound(
            &command_key,
            json!({"email": "buyer@example.com", "event": "purchase", "value": 10, "orderId": "c-1"}),
        )
        .await;
    assert_eq!(body["duplicate"], true, "{body}");

    // A kept event credited to a touch of a month the plan let go of: the touch's month is
    // dropped and the event is no longer credited to it in the overview.
    app.sql("SELECT postback_partitions_ensure(now() - interval '4 months', now())")
        .await;
    app.sql(&format!(
        "WITH v AS (INSERT INTO visitors (id, workspace_id, domain_id, browser_id)
                    SELECT gen_random_uuid(), workspace_id, id, 'spring-visitor' FROM domains
                    WHERE id = '{pulse_domain}' RETURNING id, workspace_id, domain_id),
              t AS (INSERT INTO touches (id, workspace_id, domain_id, visitor_id, occurred_at,
                                         device_type, utm_campaign)
                    SELECT gen_random_uuid(), workspace_id, domain_id, id, {old}, 'desktop', 'spring'
                    FROM v RETURNING id)
         UPDATE events SET first_touch_id = (SELECT id FROM t), last_touch_id = (SELECT id FROM t)
         WHERE domain_id = '{pulse_domain}' AND order_id = 'o-1'"
    ))
    .await;
    crate::overview::fold_all(&app).await;
    let spring = format!(
        "SELECT coalesce(sum(events), 0)::bigint AS n FROM event_rollups
         WHERE domain_id = '{pulse_domain}' AND last_campaign = 'spring'"
    );
    assert_eq!(app.count(&spring).await, 1);
    let purged = postback_runtime::retention::run_once(&app.pool)
        .await
        .expect("pass ran");
    assert_eq!((purged.events, purged.touches), (0, 1), "{purged:?}");
    crate::overview::fold_all(&app).await;
    assert_eq!(
        app.count(&spring).await,
        0,
        "no longer credited to the dropped touch"
    );
    assert_eq!(
        app.count(&rollup(&pulse_domain)).await,
        1,
        "the event itself still counts"
    );

    // The months ahead are there, and the keeper finds nothing to add.
    let ahead = partition_name(&app, "events", 0).await;
    assert_eq!(app.count(&exists(&ahead)).await, 1);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM pg_class WHERE relname ~ '^events_p[0-9]{6}$' AND relname > to_char(now() + interval '3 months', '\"events_p\"YYYYMM')").await,
        0
    );
    assert_eq!(
        postback_runtime::partitions::run_once(&app.pool).await,
        Some(0)
    );
    let again = postback_runtime::retention::run_once(&app.pool)
        .await
        .expect("pass");
    assert_eq!((again.events, again.partitions), (0, 0), "{again:?}");
}
