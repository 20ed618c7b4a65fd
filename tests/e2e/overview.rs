//! The marketer's overview (issue 22): per-hour rollups that never disagree with the events,
//! `/v1/stats` over them, and the CSV export of a filtered events list.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{TestApp, User};

/// Rows of the rollups (summed over shards) that a GROUP BY over the events (joined with their
/// touches) does not have, plus the reverse.
const DISAGREEMENTS: &str = "
WITH r AS (
    SELECT workspace_id, domain_id, hour, event_name, currency,
           first_source, first_medium, first_campaign, first_link_id, first_click,
           last_source, last_medium, last_campaign, last_link_id, last_click,
           sum(events)::bigint AS events, sum(valued)::bigint AS valued, sum(value_sum) AS value_sum
    FROM event_rollups GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    HAVING sum(events) <> 0 OR sum(valued) <> 0 OR sum(value_sum) <> 0
),
e AS (
    SELECT e.workspace_id, e.domain_id, date_trunc('hour', e.occurred_at, 'UTC') AS hour,
           e.event_name, e.currency,
           ft.utm_source, ft.utm_medium, ft.utm_campaign, ft.link_id,
           touch_click_platform(ft.gclid, ft.gbraid, ft.wbraid, ft.fbclid, ft.ttclid, ft.msclkid),
           lt.utm_source, lt.utm_medium, lt.utm_campaign, lt.link_id,
           touch_click_platform(lt.gclid, lt.gbraid, lt.wbraid, lt.fbclid, lt.ttclid, lt.msclkid),
           count(*)::bigint, count(e.value)::bigint, coalesce(sum(e.value::numeric), 0)
    FROM events e
    LEFT JOIN touches ft ON ft.id = e.first_touch_id
    LEFT JOIN touches lt ON lt.id = e.last_touch_id
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
)
SELECT ((SELECT count(*) FROM (SELECT * FROM r EXCEPT SELECT * FROM e) a)
      + (SELECT count(*) FROM (SELECT * FROM e EXCEPT SELECT * FROM r) b)) AS n";

/// The same for the narrow `event_totals` (no source, medium, campaign or link).
const TOTALS_DISAGREEMENTS: &str = "
WITH r AS (
    SELECT workspace_id, domain_id, hour, event_name, currency, first_click, last_click,
           sum(events)::bigint AS events, sum(valued)::bigint AS valued, sum(value_sum) AS value_sum
    FROM event_totals GROUP BY 1, 2, 3, 4, 5, 6, 7
    HAVING sum(events) <> 0 OR sum(valued) <> 0 OR sum(value_sum) <> 0
),
e AS (
    SELECT e.workspace_id, e.domain_id, date_trunc('hour', e.occurred_at, 'UTC') AS hour,
           e.event_name, e.currency,
           touch_click_platform(ft.gclid, ft.gbraid, ft.wbraid, ft.fbclid, ft.ttclid, ft.msclkid),
           touch_click_platform(lt.gclid, lt.gbraid, lt.wbraid, lt.fbclid, lt.ttclid, lt.msclkid),
           count(*)::bigint, count(e.value)::bigint, coalesce(sum(e.value::numeric), 0)
    FROM events e
    LEFT JOIN touches ft ON ft.id = e.first_touch_id
    LEFT JOIN touches lt ON lt.id = e.last_touch_id
    GROUP BY 1, 2, 3, 4, 5, 6, 7
)
SELECT ((SELECT count(*) FROM (SELECT * FROM r EXCEPT SELECT * FROM e) a)
      + (SELECT count(*) FROM (SELECT * FROM e EXCEPT SELECT * FROM r) b)) AS n";

/// The same for the per-UTC-day `event_days`: each grouping's rows against the events.
const DAYS_DISAGREEMENTS: &str = "
WITH r AS (
    SELECT workspace_id, grouping, day, domain_id, key, kind, currency,
           sum(events)::bigint AS events, sum(first_clicked)::bigint AS first_clicked,
           sum(last_clicked)::bigint AS last_clicked, sum(valued)::bigint AS valued,
           sum(value_sum) AS value_sum
    FROM event_days GROUP BY 1, 2, 3, 4, 5, 6, 7
    HAVING sum(events) <> 0 OR sum(valued) <> 0 OR sum(value_sum) <> 0
),
x AS (
    SELECT e.workspace_id, (e.occurred_at AT TIME ZONE 'UTC')::date AS day, e.domain_id,
           CASE WHEN e.event_name ~* '^(refund|chargeback)$' THEN 'refund'
                WHEN e.event_name ~ '^event([1-9]|10)$' THEN 'custom'
                ELSE 'conversion' END AS kind,
           e.currency, e.value,
           ft.utm_source AS fs, ft.utm_medium AS fm, ft.utm_campaign AS fc, ft.link_id::text AS fl,
           touch_click_platform(ft.gclid, ft.gbraid, ft.wbraid, ft.fbclid, ft.ttclid, ft.msclkid) AS fk,
           lt.utm_source AS ls, lt.utm_medium AS lm, lt.utm_campaign AS lc, lt.link_id::text AS ll,
           touch_click_platform(lt.gclid, lt.gbraid, lt.wbraid, lt.fbclid, lt.ttclid, lt.msclkid) AS lk
    FROM events e
    LEFT JOIN touches ft ON ft.id = e.first_touch_id
    LEFT JOIN touches lt ON lt.id = e.last_touch_id
),
e AS (
    SELECT x.workspace_id, g.grouping, x.day, x.domain_id, g.key, x.kind, x.currency,
           count(*)::bigint, count(x.fk)::bigint, count(x.lk)::bigint, count(x.value)::bigint,
           coalesce(sum(x.value::numeric), 0)
    FROM x CROSS JOIN LATERAL (VALUES ('total', NULL::text), ('first_source', x.fs),
        ('first_medium', x.fm), ('first_campaign', x.fc), ('first_link', x.fl),
        ('first_click', x.fk), ('last_source', x.ls), ('last_medium', x.lm),
        ('last_campaign', x.lc), ('last_link', x.ll), ('last_click', x.lk)) g(grouping, key)
    GROUP BY 1, 2, 3, 4, 5, 6, 7
)
SELECT ((SELECT count(*) FROM (SELECT * FROM r EXCEPT SELECT * FROM e) a)
      + (SELECT count(*) FROM (SELECT * FROM e EXCEPT SELECT * FROM r) b)) AS n";

/// The same for the per-hour `event_hours` (domain, kind and currency).
const HOURS_DISAGREEMENTS: &str = "
WITH r AS (
    SELECT workspace_id, hour, domain_id, kind, currency,
           sum(events)::bigint AS events, sum(first_clicked)::bigint AS first_clicked,
           sum(last_clicked)::bigint AS last_clicked, sum(valued)::bigint AS valued,
           sum(value_sum) AS value_sum
    FROM event_hours GROUP BY 1, 2, 3, 4, 5
    HAVING sum(events) <> 0 OR sum(valued) <> 0 OR sum(value_sum) <> 0
),
e AS (
    SELECT e.workspace_id, date_trunc('hour', e.occurred_at, 'UTC'), e.domain_id,
           CASE WHEN e.event_name ~* '^(refund|chargeback)$' THEN 'refund'
                WHEN e.event_name ~ '^event([1-9]|10)$' THEN 'custom'
                ELSE 'conversion' END,
           e.currency, count(*)::bigint,
           count(touch_click_platform(ft.gclid, ft.gbraid, ft.wbraid, ft.fbclid, ft.ttclid, ft.msclkid))::bigint,
           count(touch_click_platform(lt.gclid, lt.gbraid, lt.wbraid, lt.fbclid, lt.ttclid, lt.msclkid))::bigint,
           count(e.value)::bigint, coalesce(sum(e.value::numeric), 0)
    FROM events e
    LEFT JOIN touches ft ON ft.id = e.first_touch_id
    LEFT JOIN touches lt ON lt.id = e.last_touch_id
    GROUP BY 1, 2, 3, 4, 5
)
SELECT ((SELECT count(*) FROM (SELECT * FROM r EXCEPT SELECT * FROM e) a)
      + (SELECT count(*) FROM (SELECT * FROM e EXCEPT SELECT * FROM r) b)) AS n";

/// Folds every workspace's pending events into the rollups, as a read of the overview does
/// (migration 000090: the insert only notes an event; the runtime folds it in the background).
pub(crate) async fn fold_all(app: &TestApp) {
    let mut conn = app.conn().await;
    for ws in postback_domain::stats::fold::pending_workspaces(&mut conn, 10_000)
        .await
        .expect("pending workspaces")
    {
        postback_domain::stats::fold::fold_pending(&mut conn, ws)
            .await
            .expect("fold");
    }
}

/// The rollups, once every pending event is folded, agree with the events.
async fn assert_in_step(app: &TestApp, after: &str) {
    fold_all(app).await;
    assert_eq!(
        app.count(HOURS_DISAGREEMENTS).await,
        0,
        "hourly totals disagree after {after}"
    );
    assert_eq!(
        app.count(DAYS_DISAGREEMENTS).await,
        0,
        "daily rollups disagree after {after}"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM (SELECT 1 FROM event_days
             GROUP BY workspace_id, grouping, day, domain_id, key, kind, currency
             HAVING sum(events) = 0 AND sum(valued) = 0 AND sum(value_sum) = 0) z"
        )
        .await,
        0,
        "empty daily rollups left after {after}"
    );
    assert_eq!(
        app.count(DISAGREEMENTS).await,
        0,
        "rollups disagree after {after}"
    );
    assert_eq!(
        app.count(TOTALS_DISAGREEMENTS).await,
        0,
        "totals disagree after {after}"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM (SELECT 1 FROM event_totals
             GROUP BY workspace_id, domain_id, hour, event_name, currency, first_click, last_click
             HAVING sum(events) = 0 AND sum(valued) = 0 AND sum(value_sum) = 0) z"
        )
        .await,
        0,
        "empty totals left after {after}"
    );
    // Deletions fold the shards of the hours they touch: no key is left summing to nothing.
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM (SELECT 1 FROM event_rollups
             GROUP BY workspace_id, domain_id, hour, event_name, currency, first_source,
                      first_medium, first_campaign, first_link_id, first_click, last_source,
                      last_medium, last_campaign, last_link_id, last_click
             HAVING sum(events) = 0 AND sum(valued) = 0 AND sum(value_sum) = 0) z"
        )
        .await,
        0,
        "empty rollups left after {after}"
    );
}

/// A visitor of the domain known by `email`, with a first touch 3 days ago from
/// `first_source` (a Google Ads click) and a last touch an hour ago from `last_source`.
async fn visitor_with_touches(
    app: &TestApp,
    domain: &str,
    email: &str,
    first_campaign: &str,
    last_campaign: &str,
) {
    app.sql(&format!(
        "WITH v AS (INSERT INTO visitors (id, workspace_id, domain_id, browser_id)
                    SELECT gen_random_uuid(), workspace_id, id, 'v-{email}' FROM domains WHERE id = '{domain}'
                    RETURNING id, workspace_id, domain_id),
              e AS (INSERT INTO visitor_emails (domain_id, email_sha256, visitor_id, workspace_id)
                    SELECT domain_id, sha256(convert_to('{email}', 'UTF8')), id, workspace_id FROM v)
         INSERT INTO touches (id, workspace_id, domain_id, visitor_id, occurred_at, device_type,
                              utm_source, utm_medium, utm_campaign, gclid)
         SELECT gen_random_uuid(), workspace_id, domain_id, id, now() - interval '3 days', 'desktop',
                'google', 'cpc', '{first_campaign}', 'gclid-1' FROM v
         UNION ALL
         SELECT gen_random_uuid(), workspace_id, domain_id, id, now() - interval '1 hour', 'desktop',
                'newsletter', 'email', '{last_campaign}', NULL FROM v"
    ))
    .await;
}

struct Shop {
    user: User,
    domain: String,
    key: String,
}

async fn shop(app: &TestApp, email: &str, host: &str) -> Shop {
    let user = app.signup(email).await;
    let domain = user.add_domain(host).await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    Shop { user, domain, key }
}

#[tokio::test]
async fn rollups_never_disagree_with_the_events() {
    let app = TestApp::spawn().await;
    // Pulse has a quota (the diesel ingest path); Command has none (the raw-SQL fast path).
    let pulse = shop(&app, "rollups.pulse@example.com", "pulse.example.com").await;
    let command = shop(&app, "rollups.command@example.com", "command.example.com").await;
    app.sql(&format!(
        "UPDATE workspaces SET plan = 'command' WHERE id = '{}'",
        command.user.workspace_id
    ))
    .await;
    for s in [&pulse, &command] {
        visitor_with_touches(&app, &s.domain, "buyer@example.com", "spring", "weekly").await;
        for (i, (event, value, currency)) in [
            ("purchase", json!(10.1), "USD"),
            ("purchase", json!(0.2), "USD"),
            ("purchase", json!(5), "EUR"),
            ("refund", json!(3.3), "USD"),
            ("event3", Value::Null, "USD"),
        ]
        .into_iter()
        .enumerate()
        {
            let (status, body) = app
                .inbound(
                    &s.key,
                    json!({"email": "Buyer@Example.com", "event": event, "value": value,
                           "currency": currency, "orderId": format!("o-{i}")}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        // Someone without touches, a day ago.
        let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
        let (status, _) = app
            .inbound(
                &s.key,
                json!({"email": "walk-in@example.com", "event": "purchase", "value": 7,
                       "timestamp": yesterday}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    fold_all(&app).await;
    assert!(
        app.count("SELECT count(*) AS n FROM event_rollups WHERE first_campaign = 'spring' AND last_campaign = 'weekly' AND first_click = 'googleads'")
            .await
            >= 2,
        "the rollups hold the touches' attribution"
    );
    assert_eq!(
        app.count("SELECT sum(events)::bigint AS n FROM event_days WHERE grouping = 'last_campaign' AND key = 'weekly' AND kind = 'conversion'")
            .await,
        6,
        "the daily rollups credit the last touch's campaign"
    );
    assert_in_step(&app, "inserts").await;

    // Duplicates (same orderId + event) are refused by idempotency and counted nowhere.
    for s in [&pulse, &command] {
        let (status, body) = app
            .inbound(
                &s.key,
                json!({"email": "buyer@example.com", "event": "purchase", "value": 10.1, "orderId": "o-0"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["duplicate"], true, "{body}");
    }
    fold_all(&app).await;
    assert_eq!(
        app.count("SELECT sum(events)::bigint AS n FROM event_rollups")
            .await,
        12
    );
    assert_in_step(&app, "duplicates").await;

    // Retention: Pulse keeps 30 days. Its touches and two of its events become 40 days old.
    app.sql(&format!(
        "UPDATE events SET received_at = now() - interval '40 days'
         WHERE id IN (SELECT id FROM events WHERE domain_id = '{}' AND event_name = 'purchase'
                      ORDER BY id LIMIT 2)",
        pulse.domain
    ))
    .await;
    app.sql(&format!(
        "UPDATE touches SET occurred_at = occurred_at - interval '40 days' WHERE domain_id = '{}'",
        pulse.domain
    ))
    .await;
    let purged = postback_runtime::retention::run_once(&app.pool)
        .await
        .expect("retention ran");
    assert_eq!(purged.events, 2);
    assert_eq!(purged.touches, 2);
    fold_all(&app).await;
    assert_eq!(
        app.count(&format!(
            "SELECT sum(events)::bigint AS n FROM event_rollups WHERE domain_id = '{}'",
            pulse.domain
        ))
        .await,
        4
    );
    assert_eq!(
        app.count(&format!(
            "SELECT coalesce(sum(events), 0)::bigint AS n FROM event_rollups
             WHERE domain_id = '{}' AND last_campaign IS NOT NULL",
            pulse.domain
        ))
        .await,
        0,
        "events whose touches are gone are no longer credited to them"
    );
    assert_in_step(&app, "retention").await;

    // Deleting a domain takes its rollups with it; the other domain's stay.
    let (status, _) = command
        .user
        .delete(&format!("/v1/domains/{}", command.domain))
        .await;
    assert!(status.is_success());
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM event_rollups WHERE domain_id = '{}'",
            command.domain
        ))
        .await,
        0
    );
    assert_eq!(
        app.count("SELECT sum(events)::bigint AS n FROM event_rollups")
            .await,
        4
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM event_days WHERE domain_id = '{}'",
            command.domain
        ))
        .await,
        0
    );
    assert_in_step(&app, "deleting a domain").await;
}

fn day(offset: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

fn ts(days_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days_ago)).to_rfc3339()
}

#[tokio::test]
async fn stats_count_conversions_revenue_and_attribution() {
    let app = TestApp::spawn().await;
    let s = shop(&app, "stats@example.com", "stats.example.com").await;
    visitor_with_touches(&app, &s.domain, "fan@example.com", "spring", "weekly").await;
    for body in [
        json!({"email": "fan@example.com", "event": "purchase", "value": 10.5, "currency": "USD"}),
        json!({"email": "fan@example.com", "event": "purchase", "value": 20, "currency": "EUR"}),
        json!({"email": "other@example.com", "event": "purchase", "value": 4.25, "timestamp": ts(2)}),
        json!({"email": "other@example.com", "event": "refund", "value": 4.25}),
        json!({"email": "other@example.com", "event": "event2"}),
        // Previous period (the 7 days before the last 7).
        json!({"email": "old@example.com", "event": "purchase", "value": 1, "timestamp": ts(9)}),
    ] {
        let (status, b) = app.inbound(&s.key, body).await;
        assert_eq!(status, StatusCode::OK, "{b}");
    }

    let (status, stats) = s
        .user
        .get(&format!("/v1/stats?domainId={}", s.domain))
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["from"], day(-6));
    assert_eq!(stats["to"], day(0));
    assert_eq!(stats["timeZone"], "UTC");
    let t = &stats["totals"];
    assert_eq!(t["events"], 5);
    assert_eq!(t["conversions"], 3);
    assert_eq!(t["refunds"], 1);
    assert_eq!(t["adClickConversions"], 0, "the last touch is a newsletter");
    assert_eq!(
        t["revenue"],
        json!([{"currency": "EUR", "amount": 20.0}, {"currency": "USD", "amount": 14.75}])
    );
    assert_eq!(t["refunded"], json!([{"currency": "USD", "amount": 4.25}]));
    assert_eq!(stats["previous"]["conversions"], 1);
    let days = stats["groups"].as_array().expect("groups");
    assert_eq!(days.len(), 7, "one group per day of the range");
    assert_eq!(days[6]["key"], day(0));
    assert_eq!(days[6]["conversions"], 2);
    assert_eq!(days[4]["key"], day(-2));
    assert_eq!(days[4]["conversions"], 1);

    // First touch: the Google Ads click of the spring campaign; last touch: the newsletter.
    let (_, first) = s
        .user
        .get(&format!(
            "/v1/stats?domainId={}&groupBy=campaign&touch=first",
            s.domain
        ))
        .await;
    assert_eq!(first["totals"]["adClickConversions"], 2);
    assert_eq!(first["groups"][0]["key"], "spring");
    assert_eq!(first["groups"][0]["conversions"], 2);
    assert_eq!(first["groups"][1]["key"], Value::Null);
    assert_eq!(first["groups"][1]["label"], "(none)");
    let (_, last) = s
        .user
        .get(&format!(
            "/v1/stats?domainId={}&groupBy=campaign&touch=last",
            s.domain
        ))
        .await;
    assert_eq!(last["groups"][0]["key"], "weekly");
    let (_, platform) = s
        .user
        .get(&format!(
            "/v1/stats?groupBy=platform&touch=first&from={}&to={}",
            day(-6),
            day(0)
        ))
        .await;
    assert_eq!(platform["groups"][0]["key"], "googleads");
    assert_eq!(
        platform["groups"][0]["deliveries"],
        json!({"sent": 0, "failed": 0, "waiting": 0})
    );

    // The workspace's time zone moves the day boundaries.
    app.sql(&format!(
        "UPDATE workspaces SET time_zone = 'Pacific/Kiritimati' WHERE id = '{}'",
        s.user.workspace_id
    ))
    .await;
    let (_, kiritimati) = s.user.get("/v1/stats").await;
    assert_eq!(kiritimati["timeZone"], "Pacific/Kiritimati");

    // Bad input names the field; another workspace's domain is not found.
    for (query, field) in [
        ("groupBy=week", "groupBy"),
        ("touch=middle", "touch"),
        ("from=yesterday", "from"),
        ("to=", "to"),
        ("domainId=nope", "domainId"),
    ] {
        let (status, body) = s.user.get(&format!("/v1/stats?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            body["error"].as_str().unwrap_or("").contains(field),
            "{query}: {body}"
        );
    }
    // A range backwards is empty; a long one lists only the days with events.
    let (status, backwards) = s.user.get("/v1/stats?from=2026-01-02&to=2026-01-01").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(backwards["groups"], json!([]));
    assert_eq!(backwards["totals"]["events"], 0);
    let (status, long) = s
        .user
        .get(&format!("/v1/stats?domainId={}&from=2000-01-01", s.domain))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(long["totals"]["events"], 6);
    assert_eq!(long["groups"].as_array().map(Vec::len), Some(3), "{long}");
    let stranger = app.signup("stats.stranger@example.com").await;
    let (status, body) = stranger
        .get(&format!("/v1/stats?domainId={}", s.domain))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, theirs) = stranger.get("/v1/stats").await;
    assert_eq!(theirs["totals"]["events"], 0);
}

#[tokio::test]
async fn the_csv_export_streams_every_matching_event() {
    let app = TestApp::spawn().await;
    let s = shop(&app, "export@example.com", "export.example.com").await;
    app.sql(&format!(
        "UPDATE workspaces SET plan = 'command' WHERE id = '{}'",
        s.user.workspace_id
    ))
    .await;
    // More than one page of the export's queries (500), and a name that needs quoting.
    for i in 0..520 {
        let (status, _) = app
            .inbound(
                &s.key,
                json!({"email": format!("c{i}@example.com"), "event": if i % 2 == 0 { "purchase" } else { "lead" },
                       "value": i, "firstName": "Ann, \"Jr\"", "timestamp": ts(i64::from(i % 3 == 0) * 10)}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let resp = s
        .user
        .client
        .get(format!(
            "{}/v1/events/export?domainId={}&event=purchase&from={}&to={}",
            s.user.base,
            s.domain,
            day(-1),
            day(0)
        ))
        .send()
        .await
        .expect("export");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap_or(""),
        "text/csv; charset=utf-8"
    );
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap_or("")
        .contains("filename=\"postback-events.csv\""));
    let csv = resp.text().await.expect("body");
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert!(lines[0].starts_with("id,receivedAt,timestamp,event,email,value,currency"));
    // The same rows, in the same order, as the list with the same filter.
    let mut listed = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = s
            .user
            .get(&format!(
                "/v1/events?domainId={}&event=purchase&from={}&to={}&limit=200&cursor={cursor}",
                s.domain,
                day(-1),
                day(0)
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for e in page["items"].as_array().expect("items") {
            listed.push(e["id"].as_str().expect("id").to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    // Purchases are the even i; a third of them (i divisible by 3) are 10 days old.
    let expected = (0..520).filter(|i| i % 2 == 0 && i % 3 != 0).count();
    assert_eq!(listed.len(), expected);
    let exported: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap_or(""))
        .collect();
    assert_eq!(exported, listed);
    assert!(lines[1].contains(",\"Ann, \"\"Jr\"\"\","), "{}", lines[1]);
    assert!(
        lines[1].ends_with(",none"),
        "no webhook took it: {}",
        lines[1]
    );

    let (status, body) = s.user.get("/v1/events/export?to=").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap_or("").contains("to"));
    let (status, body) = s.user.get("/v1/events/export?from=soon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap_or("").contains("from"));
    let stranger = app.signup("export.stranger@example.com").await;
    let (status, _) = stranger
        .get(&format!("/v1/events/export?domainId={}", s.domain))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_workspace_time_zone_decides_the_days() {
    let app = TestApp::spawn().await;
    let s = shop(&app, "zone@example.com", "zone.example.com").await;
    // Yesterday 20:00 UTC is already the next day in Tokyo (UTC+9).
    let at = (chrono::Utc::now() - chrono::Duration::days(1))
        .date_naive()
        .and_hms_opt(20, 0, 0)
        .expect("time")
        .and_utc();
    let (status, _) = app
        .inbound(
            &s.key,
            json!({"email": "late@example.com", "event": "purchase", "value": 5, "timestamp": at.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let range = format!("/v1/stats?from={}&to={}", day(-2), day(1));
    let day_of = |stats: &Value| {
        stats["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .find(|g| g["conversions"] == 1)
            .map(|g| g["key"].as_str().unwrap_or("").to_owned())
    };
    let (_, utc) = s.user.get(&range).await;
    assert_eq!(day_of(&utc), Some(at.date_naive().to_string()));

    // A name PostgreSQL does not know is refused on the settings page, naming the field.
    let (_, html) = s.user.page("/settings/time-zone").await;
    let csrf = crate::helpers::csrf_in(&html);
    let resp = s
        .user
        .client
        .post(format!("{}/settings/time-zone", s.user.base))
        .form(&[("csrf_token", csrf.as_str()), ("time_zone", "Mars/Olympus")])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp
        .text()
        .await
        .unwrap_or_default()
        .contains("timeZone must be an IANA time zone"));
    let resp = s
        .user
        .client
        .post(format!("{}/settings/time-zone", s.user.base))
        .form(&[("csrf_token", csrf.as_str()), ("time_zone", "Asia/Tokyo")])
        .send()
        .await
        .expect("post");
    assert!(resp.status().is_redirection() || resp.status().is_success());
    let (_, tokyo) = s.user.get(&range).await;
    assert_eq!(tokyo["timeZone"], "Asia/Tokyo");
    let local = (at + chrono::Duration::hours(9)).date_naive().to_string();
    assert_eq!(day_of(&tokyo), Some(local));
}

#[tokio::test]
async fn tracking_tab_and_webhooks_list_show_setup_and_delivery_health() {
    let receiver = crate::receiver::Receiver::start().await;
    receiver.always(crate::receiver::Reply::ok());
    let app = TestApp::spawn().await;
    let s = shop(&app, "health@example.com", "shop.example.com").await;
    let (_, html) = s
        .user
        .page(&format!("/domains/{}/tracking", s.domain))
        .await;
    assert!(html.contains("no report yet"), "{html}");
    let (_, domain) = s.user.get(&format!("/v1/domains/{}", s.domain)).await;
    let site = domain["siteId"].as_str().expect("siteId");
    crate::attribution::collect(
        &app,
        site,
        "visitor-health-1",
        "https://shop.example.com/pricing?utm_source=x",
    )
    .await;
    let (_, html) = s
        .user
        .page(&format!("/domains/{}/tracking", s.domain))
        .await;
    assert!(html.contains("installed"), "{html}");
    assert!(
        html.contains("https://shop.example.com/pricing"),
        "from which page"
    );
    assert!(html.contains("1 visitors, 0 identified emails"), "{html}");

    let (_, html) = s.user.page("/webhooks").await;
    assert!(!html.contains("succeeded"));
    let (status, _) = s
        .user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": receiver.url("/hook")}),
        )
        .await;
    assert!(status.is_success());
    let (status, _) = app.inbound(&s.key, crate::helpers::purchase()).await;
    assert_eq!(status, StatusCode::OK);
    receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, html) = s.user.page("/webhooks").await;
        if html.contains("just now · succeeded") {
            assert!(html.contains("100.0%"), "24 h success rate: {html}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{html}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The overview's health table has the webhook with its numbers.
    let (status, html) = s.user.page("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"health-table\""), "{html}");
    assert!(html.contains("100.0%"));
}

#[tokio::test]
async fn the_workspace_time_zone_is_read_and_set_over_the_api() {
    let app = TestApp::spawn().await;
    let s = shop(&app, "zone.api@example.com", "zone-api.example.com").await;
    let other = app.signup("zone.other@example.com").await;

    let (status, body) = s.user.get("/v1/workspace/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"timeZone": "UTC"}));

    let (status, body) = s
        .user
        .patch(
            "/v1/workspace/settings",
            json!({"timeZone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["timeZone"], "Europe/Berlin");
    let (_, body) = s.user.get("/v1/workspace/settings").await;
    assert_eq!(body["timeZone"], "Europe/Berlin");
    let (_, stats) = s.user.get("/v1/stats").await;
    assert_eq!(
        stats["timeZone"], "Europe/Berlin",
        "the stats count days in it"
    );
    let (_, page) = s.user.page("/settings/time-zone").await;
    assert!(page.contains("Europe/Berlin"), "the settings page shows it");
    // Another workspace keeps its own.
    let (_, body) = other.get("/v1/workspace/settings").await;
    assert_eq!(body["timeZone"], "UTC");

    for bad in [
        json!({"timeZone": "Mars/Olympus_Mons"}),
        json!({"timeZone": ""}),
        json!({}),
    ] {
        let (status, body) = s.user.patch("/v1/workspace/settings", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("timeZone"),
            "{bad}: the error names the field: {body}"
        );
    }
    let (_, body) = s.user.get("/v1/workspace/settings").await;
    assert_eq!(
        body["timeZone"], "Europe/Berlin",
        "a refused change changes nothing"
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_log WHERE action = 'workspace.time_zone' AND workspace_id = '{}'",
            s.user.workspace_id
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn the_dashboard_shows_times_in_the_workspace_zone_money_with_symbols_and_each_keys_last_event(
) {
    let app = TestApp::spawn().await;
    let s = shop(&app, "zone.pages@example.com", "zone-pages.example.com").await;
    s.user.add_key(&s.domain, "Idle").await;
    // Asia/Tokyo has no daylight saving time: the same offset (+9, JST) whenever this runs.
    let (status, _) = s
        .user
        .patch("/v1/workspace/settings", json!({"timeZone": "Asia/Tokyo"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = app
        .inbound(
            &s.key,
            json!({"email": "tokyo@example.com", "event": "purchase", "value": 1234.5,
                   "currency": "USD", "timestamp": "2026-01-15T23:30:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let id = answer["eventId"].as_str().expect("event id");

    // The event's page: occurred at 23:30 UTC is 08:30 the next day in Tokyo, zone shown.
    let (status, page) = s.user.page(&format!("/events/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("2026-01-16 08:30:00 JST"), "{page}");
    assert!(
        !page.contains("23:30:00 UTC"),
        "no UTC time left on the page"
    );
    assert!(
        page.contains("$1,234.50"),
        "money with symbol and minor units"
    );
    assert!(!page.contains("1234.5 USD"));

    // The events list: the value formatted, the received time's title in the zone.
    let (_, list) = s.user.page(&format!("/domains/{}/events", s.domain)).await;
    assert!(list.contains("$1,234.50"), "{list}");
    assert!(
        list.contains(" JST\""),
        "received time's title carries the zone: {list}"
    );

    // The keys tab: the key that sent it shows its last event; the idle one says never.
    let (_, keys_page) = s.user.page(&format!("/domains/{}/keys", s.domain)).await;
    assert!(keys_page.contains("<th>Last event</th>"), "{keys_page}");
    let backend_row = keys_page
        .split("<tr data-key-id=")
        .find(|r| r.contains("<strong>Backend</strong>"))
        .expect("the Backend key's row");
    assert!(
        backend_row.contains("class=\"last-event\">just now<"),
        "{backend_row}"
    );
    assert!(backend_row.contains(" JST\""), "{backend_row}");
    let idle_row = keys_page
        .split("<tr data-key-id=")
        .find(|r| r.contains("<strong>Idle</strong>"))
        .expect("the Idle key's row");
    assert!(
        idle_row.contains("class=\"last-event\">Never<"),
        "{idle_row}"
    );

    // The same over /v1: lastEventAt on the key that sent the event only.
    let (status, keys) = s.user.get(&format!("/v1/domains/{}/keys", s.domain)).await;
    assert_eq!(status, StatusCode::OK);
    let items = keys["items"].as_array().expect("items");
    let by_name = |n: &str| {
        items
            .iter()
            .find(|k| k["name"] == n)
            .cloned()
            .expect("key listed")
    };
    let received: chrono::DateTime<chrono::Utc> = by_name("Backend")["lastEventAt"]
        .as_str()
        .expect("lastEventAt")
        .parse()
        .expect("a time");
    assert!((chrono::Utc::now() - received).num_minutes() < 5);
    assert!(by_name("Idle").get("lastEventAt").is_none());
}

#[tokio::test]
async fn days_in_any_zone_match_the_events_local_dates() {
    let app = TestApp::spawn().await;
    let s = shop(&app, "zone.days@example.com", "zone-days.example.com").await;
    // An event every 3 hours (and one at 30 minutes past) over the last 5 days: every hour of
    // a day boundary in any zone is near one.
    let now = chrono::Utc::now();
    for i in 0..40 {
        let at = now - chrono::Duration::minutes(i * 180 + 30 * (i % 2));
        let (status, body) = app
            .inbound(
                &s.key,
                json!({"email": format!("d{i}@example.com"), "event": "purchase",
                       "value": i, "timestamp": at.to_rfc3339()}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for zone in [
        "America/New_York",
        "Asia/Tokyo",
        "Europe/Berlin",
        "Pacific/Kiritimati",
        "UTC",
    ] {
        let (status, _) = s
            .user
            .patch("/v1/workspace/settings", json!({"timeZone": zone}))
            .await;
        assert_eq!(status, StatusCode::OK);
        // Three middle days of the events' span, in the zone.
        let today = app
            .count(&format!(
                "SELECT ((now() AT TIME ZONE '{zone}')::date - date '2000-01-01')::bigint AS n"
            ))
            .await;
        let date = |n: i64| {
            (chrono::NaiveDate::from_ymd_opt(2000, 1, 1).expect("date") + chrono::Duration::days(n))
                .to_string()
        };
        let (from, to) = (date(today - 3), date(today - 1));
        for domain in [String::new(), format!("&domainId={}", s.domain)] {
            let (status, stats) = s
                .user
                .get(&format!(
                    "/v1/stats?from={from}&to={to}&groupBy=day{domain}"
                ))
                .await;
            assert_eq!(status, StatusCode::OK, "{stats}");
            let groups = stats["groups"].as_array().expect("groups");
            assert_eq!(groups.len(), 3, "{zone}: one group per day");
            let mut total = 0;
            for g in groups {
                let key = g["key"].as_str().expect("day");
                let expected = app
                    .count(&format!(
                        "SELECT count(*) AS n FROM events
                         WHERE (occurred_at AT TIME ZONE '{zone}')::date = '{key}'"
                    ))
                    .await;
                assert_eq!(g["events"].as_i64(), Some(expected), "{zone} {key}: {g}");
                total += expected;
            }
            assert!(total > 0, "{zone}: the days hold events");
            let in_range = app
                .count(&format!(
                    "SELECT count(*) AS n FROM events
                     WHERE (occurred_at AT TIME ZONE '{zone}')::date BETWEEN '{from}' AND '{to}'"
                ))
                .await;
            assert_eq!(
                stats["totals"]["events"].as_i64(),
                Some(in_range),
                "{zone} totals"
            );
        }
        // A range of centuries answers at once with the days that hold events.
        let started = std::time::Instant::now();
        let (status, long) = s
            .user
            .get(&format!("/v1/stats?from=0358-08-15&to={to}&groupBy=day"))
            .await;
        assert_eq!(status, StatusCode::OK, "{long}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{zone}"
        );
        let days = long["groups"].as_array().expect("groups");
        assert!(!days.is_empty() && days.len() <= 6, "{zone}: {long}");
        assert!(
            days.iter().all(|g| g["events"].as_i64() > Some(0)),
            "{zone}: {long}"
        );
    }
}

// The rollups off the insert path (migration 000090): an insert only notes its events; the
// runtime folds them in the background, and every read of the overview folds what is pending.

/// A server on a fresh database with no background folder: only the overview's reads fold.
async fn spawn_without_folder() -> TestApp {
    TestApp::spawn_adjusted(None, |s| s.rollups_folding = None).await
}

async fn pending(app: &TestApp) -> i64 {
    app.count("SELECT count(*) AS n FROM event_rollup_pending")
        .await
}

async fn folded_events(app: &TestApp) -> i64 {
    app.count("SELECT coalesce(sum(events), 0)::bigint AS n FROM event_totals")
        .await
}

#[tokio::test]
async fn the_overview_counts_events_right_after_their_ingest() {
    let app = spawn_without_folder().await;
    let s = shop(&app, "fresh@example.com", "fresh.example.com").await;
    visitor_with_touches(&app, &s.domain, "fan@example.com", "spring", "weekly").await;
    for body in [
        json!({"email": "fan@example.com", "event": "purchase", "value": 10, "currency": "USD"}),
        json!({"email": "fan@example.com", "event": "purchase", "value": 5, "currency": "USD"}),
        json!({"email": "other@example.com", "event": "refund", "value": 2, "currency": "USD"}),
        json!({"email": "other@example.com", "event": "event1"}),
    ] {
        let (status, b) = app.inbound(&s.key, body).await;
        assert_eq!(status, StatusCode::OK, "{b}");
    }
    assert_eq!(pending(&app).await, 4, "the insert only notes its events");
    assert_eq!(folded_events(&app).await, 0, "nothing folded them yet");

    let (status, stats) = s.user.get("/v1/stats").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let t = &stats["totals"];
    assert_eq!(t["events"], 4);
    assert_eq!(t["conversions"], 2);
    assert_eq!(t["refunds"], 1);
    assert_eq!(t["revenue"], json!([{"currency": "USD", "amount": 15.0}]));
    assert_eq!(t["refunded"], json!([{"currency": "USD", "amount": 2.0}]));
    assert_eq!(pending(&app).await, 0, "the read folded them");
    assert_eq!(folded_events(&app).await, 4);

    // Again right after the next ingest, grouped by the last touch's campaign.
    let (status, _) = app
        .inbound(
            &s.key,
            json!({"email": "fan@example.com", "event": "purchase", "value": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pending(&app).await, 1);
    let (_, last) = s.user.get("/v1/stats?groupBy=campaign&touch=last").await;
    assert_eq!(last["groups"][0]["key"], "weekly", "{last}");
    assert_eq!(last["groups"][0]["conversions"], 3, "{last}");
    assert_in_step(&app, "reads right after ingests").await;
}

#[tokio::test]
async fn rollups_stay_exact_through_updates_and_deletes_of_pending_and_folded_events() {
    let app = spawn_without_folder().await;
    let s = shop(&app, "edits@example.com", "edits.example.com").await;
    visitor_with_touches(&app, &s.domain, "fan@example.com", "spring", "weekly").await;
    let send = |order: String| {
        app.inbound(
            &s.key,
            json!({"email": "fan@example.com", "event": "purchase", "value": 10,
                   "currency": "USD", "orderId": order}),
        )
    };
    // Four events folded (by a read) and four still pending.
    for i in 0..4 {
        assert_eq!(send(format!("f-{i}")).await.0, StatusCode::OK);
    }
    let (_, stats) = s.user.get("/v1/stats").await;
    assert_eq!(stats["totals"]["conversions"], 4);
    for i in 0..4 {
        assert_eq!(send(format!("p-{i}")).await.0, StatusCode::OK);
    }
    assert_eq!(pending(&app).await, 4);

    // A status change: one folded and one pending purchase become refunds of 4.
    app.sql(&format!(
        "UPDATE events SET event_name = 'refund', value = 4
         WHERE domain_id = '{}' AND order_id IN ('f-0', 'p-0')",
        s.domain
    ))
    .await;
    // Deleted by hand: one of each.
    app.sql(&format!(
        "DELETE FROM events WHERE domain_id = '{}' AND order_id IN ('f-1', 'p-1')",
        s.domain
    ))
    .await;
    // Retention (Pulse keeps 30 days): one of each is old, and so are the touches, which
    // attributed every event.
    app.sql(&format!(
        "UPDATE events SET received_at = now() - interval '40 days'
         WHERE domain_id = '{}' AND order_id IN ('f-2', 'p-2')",
        s.domain
    ))
    .await;
    app.sql(&format!(
        "UPDATE touches SET occurred_at = occurred_at - interval '40 days' WHERE domain_id = '{}'",
        s.domain
    ))
    .await;
    let purged = postback_runtime::retention::run_once(&app.pool)
        .await
        .expect("retention ran");
    assert_eq!((purged.events, purged.touches), (2, 2));
    assert_eq!(
        pending(&app).await,
        2,
        "p-0 (updated) and p-3 wait; p-1 and p-2 went with their events"
    );

    // Left: f-0 and p-0 (refunds of 4), f-3 and p-3 (purchases of 10), no touch any more.
    let (_, stats) = s.user.get("/v1/stats").await;
    let t = &stats["totals"];
    assert_eq!(t["events"], 4, "{stats}");
    assert_eq!(t["conversions"], 2);
    assert_eq!(t["refunds"], 2);
    assert_eq!(t["revenue"], json!([{"currency": "USD", "amount": 20.0}]));
    assert_eq!(t["refunded"], json!([{"currency": "USD", "amount": 8.0}]));
    let (_, last) = s.user.get("/v1/stats?groupBy=campaign&touch=last").await;
    let groups = last["groups"].as_array().expect("groups");
    assert_eq!(
        groups.len(),
        1,
        "the touches' campaign is credited with nothing once they are gone: {last}"
    );
    assert_eq!(groups[0]["key"], Value::Null);
    assert_eq!(groups[0]["conversions"], 2);
    assert_eq!(groups[0]["refunds"], 2);
    assert_in_step(&app, "updates and deletes of pending and folded events").await;
}

#[tokio::test]
async fn the_runtime_folds_stored_events_in_the_background() {
    let app = TestApp::spawn().await;
    let s = shop(&app, "background@example.com", "background.example.com").await;
    for i in 0..3 {
        let (status, _) = app
            .inbound(
                &s.key,
                json!({"email": "a@example.com", "event": "purchase", "value": i}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    // No read of the overview: the folder alone empties the pending events.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pending(&app).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the folder did not fold within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(folded_events(&app).await, 3);
    assert_in_step(&app, "the background fold").await;
}

#[tokio::test]
async fn two_folders_never_count_an_event_twice() {
    use postback_domain::stats::fold::{fold_workspace, Fold};
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    use std::sync::Arc;

    // Two instances on one database, each with its background folder, plus six more folders
    // folding small batches as fast as they can, half of them waiting for the lock.
    let app = TestApp::spawn().await;
    let other = TestApp::spawn_on(&app.db_url).await;
    let s = shop(&app, "folders@example.com", "folders.example.com").await;
    let ws = postback_domain::ids::WorkspaceId(s.user.workspace_id.parse().expect("uuid"));
    let folders_pool = postback_domain::store::db::pool(&app.db_url, 6).expect("pool");
    let stop = Arc::new(AtomicBool::new(false));
    let folded = Arc::new(AtomicI64::new(0));
    let mut folders = Vec::new();
    for i in 0..6 {
        let (pool, stop, folded) = (folders_pool.clone(), stop.clone(), folded.clone());
        folders.push(tokio::spawn(async move {
            let mut conn = postback_domain::store::db::conn(&pool).await.expect("conn");
            while !stop.load(Ordering::SeqCst) {
                match fold_workspace(&mut conn, ws, 7, i % 2 == 0).await {
                    Ok(Fold::Folded(n)) => {
                        folded.fetch_add(i64::from(n), Ordering::SeqCst);
                    }
                    Ok(Fold::Busy) => {}
                    // A row lock held past the non-waiting folder's 500 ms: tried again.
                    Err(_) => {}
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    // 240 events through both instances, 12 senders at a time.
    let mut senders = Vec::new();
    for sender in 0..12 {
        let base = if sender % 2 == 0 {
            app.base.clone()
        } else {
            other.base.clone()
        };
        let key = s.key.clone();
        senders.push(tokio::spawn(async move {
            let client = crate::helpers::http_client();
            for i in 0..20 {
                let resp = client
                    .post(format!("{base}/__cc/inbound"))
                    .header("X-CC-Api-Key", &key)
                    .json(&json!({"email": format!("s{sender}@example.com"),
                                  "event": "purchase", "value": 1.5,
                                  "orderId": format!("{sender}-{i}")}))
                    .send()
                    .await
                    .expect("inbound");
                assert_eq!(resp.status(), StatusCode::OK);
            }
        }));
    }
    for t in senders {
        t.await.expect("sender");
    }
    stop.store(true, Ordering::SeqCst);
    for t in folders {
        t.await.expect("folder");
    }
    assert!(
        folded.load(Ordering::SeqCst) > 0,
        "the extra folders folded events"
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM events").await, 240);
    let (_, stats) = s.user.get("/v1/stats").await;
    assert_eq!(stats["totals"]["events"], 240, "{stats}");
    assert_eq!(
        stats["totals"]["revenue"],
        json!([{"currency": "USD", "amount": 360.0}])
    );
    assert_eq!(folded_events(&app).await, 240);
    assert_in_step(&app, "folds by eight folders at once").await;
}
