//! Attribution (seed 000 "How Attribution Works"): touches found through the email's hash, the
//! first and last inside the window stored on the event, what webhook conditions see of them,
//! and the event page that shows them.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::receiver::{Receiver, Reply};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";

pub struct Shop {
    pub user: crate::helpers::User,
    pub domain_id: String,
    pub site: String,
    pub key: String,
}

pub async fn shop(app: &TestApp, email: &str) -> Shop {
    let user = app.signup(email).await;
    let domain_id = user.add_domain("shop.example.com").await;
    let (_, domain) = user.get(&format!("/v1/domains/{domain_id}")).await;
    let site = domain["siteId"].as_str().expect("siteId").to_owned();
    let (_, key) = user.add_key(&domain_id, "Backend").await;
    Shop {
        user,
        domain_id,
        site,
        key,
    }
}

/// Reports a landing of visitor `vid` on `url`, as the snippet would.
pub async fn collect(app: &TestApp, site: &str, vid: &str, url: &str) {
    let resp = crate::helpers::http_client()
        .post(app.url("/__cc/collect"))
        .header("Content-Type", "text/plain")
        .header("User-Agent", UA)
        .header("Origin", "https://shop.example.com")
        .body(json!({ "site": site, "vid": vid, "url": url }).to_string())
        .send()
        .await
        .expect("collect");
    assert_eq!(resp.status(), StatusCode::OK);
}

pub async fn identify(app: &TestApp, site: &str, vid: &str, email: &str) {
    let resp = crate::helpers::http_client()
        .post(app.url("/__cc/identify"))
        .header("Content-Type", "text/plain")
        .header("Origin", "https://shop.example.com")
        .body(json!({ "site": site, "vid": vid, "email": email }).to_string())
        .send()
        .await
        .expect("identify");
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn event(shop: &Shop, id: &str) -> Value {
    let (status, e) = shop.user.get(&format!("/v1/events/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    e
}

#[tokio::test]
async fn the_first_and_last_touch_of_the_visitor_are_stored_on_the_event() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "attr@example.com").await;
    collect(
        &app,
        &shop.site,
        "visitor-first-1",
        "https://shop.example.com/?utm_source=google&utm_medium=cpc&utm_campaign=spring&gclid=G-1",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    collect(
        &app,
        &shop.site,
        "visitor-first-1",
        "https://shop.example.com/p/shoes?utm_source=facebook&fbclid=F-1",
    )
    .await;
    identify(&app, &shop.site, "visitor-first-1", "Buyer@Example.com").await;

    let (status, answer) = app
        .inbound(
            &shop.key,
            json!({"email": "buyer@example.com", "event": "purchase", "value": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let e = event(&shop, answer["eventId"].as_str().expect("id")).await;
    let a = &e["attribution"];
    assert_eq!(a["firstTouch"]["utmSource"], "google", "{a}");
    assert_eq!(a["firstTouch"]["gclid"], "G-1");
    assert_eq!(a["firstTouch"]["utmCampaign"], "spring");
    assert_eq!(a["lastTouch"]["utmSource"], "facebook");
    assert_eq!(a["lastTouch"]["fbclid"], "F-1");
    assert_eq!(
        a["lastTouch"]["landingPage"],
        "https://shop.example.com/p/shoes?utm_source=facebook&fbclid=F-1"
    );
    assert!(a["secondsFromFirstTouch"].as_i64().expect("secs") >= 0);

    // Another email of the same shop: no match, nothing attributed.
    let (_, other) = app
        .inbound(
            &shop.key,
            json!({"email": "stranger@example.com", "event": "purchase"}),
        )
        .await;
    let e = event(&shop, other["eventId"].as_str().expect("id")).await;
    assert_eq!(e["attribution"]["firstTouch"], Value::Null);
    assert_eq!(e["attribution"]["lastTouch"], Value::Null);
}

/// Window edges: with a 90-day window, a touch 90 days + 1 s before the event is ignored, one at
/// 90 days - 1 s counts; a touch after the event time never does.
#[tokio::test]
async fn touches_outside_the_window_or_after_the_event_are_ignored() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "window@example.com").await;
    identify(&app, &shop.site, "visitor-window-1", "edge@example.com").await;
    let event_ms: i64 = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let at = |offset_secs: i64| {
        chrono::DateTime::from_timestamp_millis(event_ms + offset_secs * 1000)
            .expect("time")
            .to_rfc3339()
    };
    let day = 86_400;
    for (source, when) in [
        ("outside", at(-90 * day - 1)),
        ("inside-first", at(-90 * day + 1)),
        ("inside-last", at(-600)),
        ("after-event", at(1)),
    ] {
        app.sql(&format!(
            "INSERT INTO touches (id, workspace_id, domain_id, visitor_id, occurred_at, utm_source, device_type)
             SELECT gen_random_uuid(), v.workspace_id, v.domain_id, v.id, '{when}', '{source}', 'desktop'
             FROM visitors v WHERE v.browser_id = 'visitor-window-1'"
        ))
        .await;
    }
    let (status, answer) = app
        .inbound(
            &shop.key,
            json!({"email": "edge@example.com", "event": "lead", "timestamp": event_ms}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let e = event(&shop, answer["eventId"].as_str().expect("id")).await;
    assert_eq!(e["attribution"]["firstTouch"]["utmSource"], "inside-first");
    assert_eq!(e["attribution"]["lastTouch"]["utmSource"], "inside-last");

    // A 30-day window leaves only the recent touch.
    app.sql(&format!(
        "UPDATE domains SET attribution_window_days = 30 WHERE id = '{}'",
        shop.domain_id
    ))
    .await;
    let (_, answer) = app
        .inbound(
            &shop.key,
            json!({"email": "edge@example.com", "event": "purchase", "timestamp": event_ms}),
        )
        .await;
    let e = event(&shop, answer["eventId"].as_str().expect("id")).await;
    assert_eq!(e["attribution"]["firstTouch"]["utmSource"], "inside-last");
    assert_eq!(e["attribution"]["lastTouch"]["utmSource"], "inside-last");
}

async fn webhook(shop: &Shop, url: &str, conditions: Value) -> String {
    let (status, hook) = shop
        .user
        .post(
            "/v1/integrations/webhooks",
            json!({ "url": url, "events": ["purchase"], "conditions": conditions }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    hook["id"].as_str().expect("id").to_owned()
}

/// Conditions on touch fields and visitor counts now see real data: first vs last touch,
/// isFromGoogleAds, conversionCount.
#[tokio::test]
async fn webhook_conditions_use_the_attributed_touches() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let shop = shop(&app, "cond@example.com").await;
    app.sql(&format!(
        "UPDATE workspaces SET plan = 'signal' WHERE id = '{}'",
        shop.user.workspace_id
    ))
    .await;
    webhook(
        &shop,
        &receiver.url("/first-google"),
        json!([{"field": "utm_source", "op": "equals", "value": "google", "touch": "first"}]),
    )
    .await;
    webhook(
        &shop,
        &receiver.url("/last-google"),
        json!([{"field": "utm_source", "op": "equals", "value": "google", "touch": "last"}]),
    )
    .await;
    webhook(
        &shop,
        &receiver.url("/from-meta"),
        json!([{"field": "isFromFacebookAds", "op": "equals", "value": true}]),
    )
    .await;
    webhook(
        &shop,
        &receiver.url("/repeat"),
        json!([{"field": "conversionCount", "op": "greater_than", "value": 0}]),
    )
    .await;

    collect(
        &app,
        &shop.site,
        "visitor-cond-1",
        "https://shop.example.com/?utm_source=google&gclid=G-2",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    collect(
        &app,
        &shop.site,
        "visitor-cond-1",
        "https://shop.example.com/?utm_source=facebook&fbclid=F-2",
    )
    .await;
    identify(&app, &shop.site, "visitor-cond-1", "cond.buyer@example.com").await;

    let send = |order: &'static str| {
        let (app, key) = (&app, shop.key.clone());
        async move {
            let (status, answer) = app
                .inbound(
                    &key,
                    json!({"email": "cond.buyer@example.com", "event": "purchase", "orderId": order, "value": 5}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
    };
    send("A-1").await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut paths: Vec<String> = receiver.received().iter().map(|r| r.path.clone()).collect();
    paths.sort();
    assert_eq!(paths, vec!["/first-google", "/from-meta"], "{got:?}");
    let body = receiver.received()[0].json();
    assert_eq!(
        body["data"]["attribution"]["firstTouch"]["utmSource"],
        "google"
    );
    assert_eq!(
        body["data"]["attribution"]["lastTouch"]["utmSource"],
        "facebook"
    );

    // The second purchase of the same customer is a repeat: conversionCount 1.
    send("A-2").await;
    receiver.wait_for(5, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let repeats = receiver
        .received()
        .iter()
        .filter(|r| r.path == "/repeat")
        .count();
    assert_eq!(repeats, 1);
}

/// The event page shows both touches side by side and the time from click to conversion.
#[tokio::test]
async fn the_event_page_shows_first_and_last_touch() {
    let app = TestApp::spawn().await;
    let shop = shop(&app, "page@example.com").await;
    collect(
        &app,
        &shop.site,
        "visitor-page-1",
        "https://shop.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=nov",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    collect(
        &app,
        &shop.site,
        "visitor-page-1",
        "https://shop.example.com/?utm_source=tiktok&ttclid=T-1",
    )
    .await;
    identify(&app, &shop.site, "visitor-page-1", "reader@example.com").await;
    let (_, answer) = app
        .inbound(
            &shop.key,
            json!({"email": "reader@example.com", "event": "purchase"}),
        )
        .await;
    let (status, html) = shop
        .user
        .page(&format!(
            "/events/{}",
            answer["eventId"].as_str().expect("id")
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let first = html.find("data-touch=\"first\"").expect("first touch card");
    let last = html.find("data-touch=\"last\"").expect("last touch card");
    assert!(first < last);
    assert!(html[first..last].contains("newsletter") && html[first..last].contains("nov"));
    assert!(html[last..].contains("tiktok") && html[last..].contains("T-1"));
    assert!(html[last..].contains("TikTok"), "ad click from TikTok");
    assert!(html.contains("before the event"));
}

/// With a GeoIP file configured, a touch gets the country of the visitor's address (as the
/// trusted proxy in front reports it), and the event page shows it.
#[tokio::test]
async fn touches_get_the_country_of_the_visitor_address() {
    let geoip = postback_domain::tracking::geoip::GeoIp::parse(
        "198.51.100.0,198.51.100.255,NL\n2001:db8::,2001:db8::ffff:ffff,DE\n",
    )
    .expect("geoip");
    let app = TestApp::spawn_with_geoip(geoip).await;
    let shop = shop(&app, "geo@example.com").await;
    for (vid, ip) in [
        ("visitor-geo-nl", "198.51.100.7"),
        ("visitor-geo-xx", "192.0.2.1"),
    ] {
        let resp = crate::helpers::http_client()
            .post(app.url("/__cc/collect"))
            .header("Content-Type", "text/plain")
            .header("User-Agent", UA)
            .header("X-Forwarded-For", ip)
            .body(
                json!({"site": shop.site, "vid": vid, "url": "https://shop.example.com/"})
                    .to_string(),
            )
            .send()
            .await
            .expect("collect");
        assert_eq!(resp.status(), StatusCode::OK);
    }
    identify(&app, &shop.site, "visitor-geo-nl", "dutch@example.com").await;
    let (_, answer) = app
        .inbound(
            &shop.key,
            json!({"email": "dutch@example.com", "event": "purchase"}),
        )
        .await;
    let e = event(&shop, answer["eventId"].as_str().expect("id")).await;
    assert_eq!(e["attribution"]["lastTouch"]["country"], "NL");

    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use postback_domain::schema::{touches, visitors};
    let unknown: Option<String> = touches::table
        .inner_join(visitors::table)
        .filter(visitors::browser_id.eq("visitor-geo-xx"))
        .select(touches::country)
        .first(&mut conn)
        .await
        .expect("touch");
    assert_eq!(
        unknown, None,
        "an address outside every range has no country"
    );
}

async fn collect_as(app: &TestApp, site: &str, vid: &str, ua: &str, webdriver: bool) {
    let resp = crate::helpers::http_client()
        .post(app.url("/__cc/collect"))
        .header("Content-Type", "text/plain")
        .header("User-Agent", ua)
        .body(
            json!({"site": site, "vid": vid, "url": "https://shop.example.com/", "webdriver": webdriver})
                .to_string(),
        )
        .send()
        .await
        .expect("collect");
    assert_eq!(resp.status(), StatusCode::OK);
}

/// Click quality: a person's visit scores 100, an automated browser less, a bot 0, an email
/// within two seconds of landing costs points; `qualityScore` conditions use the last touch.
#[tokio::test]
async fn touches_are_scored_for_quality_and_conditions_use_it() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let shop = shop(&app, "quality@example.com").await;
    webhook(
        &shop,
        &receiver.url("/good-clicks"),
        json!([{"field": "qualityScore", "op": "greater_than", "value": 80}]),
    )
    .await;

    collect_as(&app, &shop.site, "visitor-person", UA, false).await;
    collect_as(&app, &shop.site, "visitor-driven", UA, true).await;
    collect_as(
        &app,
        &shop.site,
        "visitor-googlebot",
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
        false,
    )
    .await;
    collect_as(&app, &shop.site, "visitor-hasty", UA, false).await;
    identify(&app, &shop.site, "visitor-hasty", "hasty@example.com").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    identify(&app, &shop.site, "visitor-person", "person@example.com").await;
    identify(&app, &shop.site, "visitor-driven", "driven@example.com").await;

    let scores = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use postback_domain::schema::{touches, visitors};
        let mut conn = app.conn().await;
        let rows: Vec<(String, i32, Vec<String>)> = touches::table
            .inner_join(visitors::table)
            .select((
                visitors::browser_id,
                touches::quality_score,
                touches::quality_reasons,
            ))
            .order(visitors::browser_id.asc())
            .load(&mut conn)
            .await
            .expect("touches");
        rows
    };
    let score = |vid: &str| scores.iter().find(|r| r.0 == vid).expect(vid).clone();
    assert_eq!(score("visitor-person").1, 100);
    assert_eq!(score("visitor-driven").1, 60);
    assert!(score("visitor-driven").2[0].contains("webdriver"));
    assert_eq!(score("visitor-googlebot").1, 0);
    assert_eq!(score("visitor-hasty").1, 70, "{:?}", score("visitor-hasty"));
    assert!(score("visitor-hasty").2[0].starts_with("email submitted"));

    for email in [
        "person@example.com",
        "driven@example.com",
        "hasty@example.com",
    ] {
        let (status, _) = app
            .inbound(&shop.key, json!({"email": email, "event": "purchase"}))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "only the person's purchase passes"
    );
    assert_eq!(got[0].json()["data"]["email"], "person@example.com");
    assert_eq!(
        got[0].json()["data"]["attribution"]["lastTouch"]["qualityScore"],
        100
    );
}

/// Seed 002's custom events: `event1` … `event10` carry their number; the "Event Triggered"
/// trigger and `eventNumber` conditions use it.
#[tokio::test]
async fn custom_events_carry_their_number() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let shop = shop(&app, "eventnumber@example.com").await;
    let (status, hook) = shop
        .user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": receiver.url("/third"), "events": ["event"],
                   "conditions": [{"field": "eventNumber", "op": "equals", "value": 3}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let mut third = None;
    for name in ["event1", "event3", "purchase", "event11"] {
        let (status, answer) = app
            .inbound(&shop.key, json!({"email": "n@example.com", "event": name}))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        if name == "event3" {
            third = answer["eventId"].as_str().map(str::to_owned);
        }
    }
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(got[0].json()["data"]["eventNumber"], 3);
    let e = event(&shop, &third.expect("event3 id")).await;
    assert_eq!(e["eventNumber"], 3);
}
