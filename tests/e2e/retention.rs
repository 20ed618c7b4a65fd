//! Retention: events (with their deliveries and attempts) and touches older than the plan keeps
//! them are deleted; newer ones, and older ones of longer-lived plans, stay.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn the_retention_pass_deletes_only_what_the_plan_no_longer_keeps() {
    let receiver = crate::receiver::Receiver::start().await;
    receiver.always(crate::receiver::Reply::ok());
    let app = TestApp::spawn().await;
    // Pulse keeps 30 days; Command keeps two years.
    let pulse = app.signup("retention.pulse@example.com").await;
    let pulse_domain = pulse.add_domain("old.example.com").await;
    let (_, pulse_key) = pulse.add_key(&pulse_domain, "Backend").await;
    let command = app.signup("retention.command@example.com").await;
    let command_domain = command.add_domain("kept.example.com").await;
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
