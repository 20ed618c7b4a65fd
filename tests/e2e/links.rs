//! Tracking links (SPEC "Tracking links and click quality"): managing them per domain, the
//! `/__cc/go/{slug}` redirect with its touch, weights, the join to the visitor through
//! `pb_click`, conditions on `linkId`, and the link page's numbers.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::attribution::{identify, shop, Shop};
use crate::helpers::{TestApp, User};
use crate::receiver::{Receiver, Reply};

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";

async fn add_link(user: &User, domain_id: &str, body: Value) -> Value {
    let (status, link) = user
        .post(&format!("/v1/domains/{domain_id}/links"), body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    link
}

fn clicker() -> reqwest::Client {
    crate::helpers::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(UA)
        .build()
        .expect("client")
}

/// Follows nothing: the status and `Location` of one click.
async fn click(client: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let resp = client.get(url).send().await.expect("click");
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (resp.status(), location)
}

fn param(location: &str, name: &str) -> Option<String> {
    url::Url::parse(location)
        .expect("location is a URL")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn rows(app: &TestApp, sql: &str) -> Vec<Vec<Option<String>>> {
    use tokio_postgres::NoTls;
    let (client, conn) = tokio_postgres::connect(&app.db_url, NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .query(sql, &[])
        .await
        .expect(sql)
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<_, Option<String>>(i))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn links_are_managed_per_domain_with_every_field_checked() {
    let app = TestApp::spawn().await;
    let user = app.signup("links@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let created = add_link(
        &user,
        &domain,
        json!({"name": "Spring sale", "slug": "spring-sale",
               "targets": [{"url": "https://shop.example.com/a", "weight": 1},
                           {"url": "https://shop.example.com/b?x=1", "weight": 3}]}),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["slug"], "spring-sale");
    assert_eq!(created["name"], "Spring sale");
    assert_eq!(created["url"], app.url("/__cc/go/spring-sale"));
    assert_eq!(created["targets"].as_array().map(Vec::len), Some(2));
    assert_eq!(created["targets"][1]["weight"], 3);
    assert_eq!(
        created["targets"][1]["url"],
        "https://shop.example.com/b?x=1"
    );
    let kept_target = created["targets"][1]["id"]
        .as_str()
        .expect("tid")
        .to_owned();

    // Each bad field is refused with a message that names it.
    let bad = [
        (
            json!({"slug": "s1", "targets": [{"url": "https://a.test/", "weight": 1}]}),
            "name",
        ),
        (
            json!({"name": "n", "slug": "Upper", "targets": [{"url": "https://a.test/", "weight": 1}]}),
            "slug",
        ),
        (
            json!({"name": "n", "slug": "a_b", "targets": [{"url": "https://a.test/", "weight": 1}]}),
            "slug",
        ),
        (
            json!({"name": "n", "slug": "x".repeat(65), "targets": [{"url": "https://a.test/", "weight": 1}]}),
            "slug",
        ),
        (json!({"name": "n", "slug": "s2", "targets": []}), "targets"),
        (json!({"name": "n", "slug": "s2"}), "targets"),
        (
            json!({"name": "n", "slug": "s2", "targets": [{"url": "ftp://a.test/", "weight": 1}]}),
            "targets[0].url",
        ),
        (
            json!({"name": "n", "slug": "s2", "targets": [{"url": "not a url", "weight": 1}]}),
            "targets[0].url",
        ),
        (
            json!({"name": "n", "slug": "s2", "targets": [{"url": "https://a.test/", "weight": 1}, {"url": "https://b.test/", "weight": 0}]}),
            "targets[1].weight",
        ),
        (
            json!({"name": "n", "slug": "s2", "targets": [{"url": "https://a.test/", "weight": 2.5}]}),
            "targets[0].weight",
        ),
        (
            json!({"name": "n", "slug": "s2", "targets": [{"url": "https://a.test/", "weight": "2"}]}),
            "targets[0].weight",
        ),
        (
            json!({"name": 7, "slug": "s2", "targets": [{"url": "https://a.test/", "weight": 1}]}),
            "name",
        ),
        (
            json!({"name": "n", "slug": "s2", "colour": "red", "targets": [{"url": "https://a.test/", "weight": 1}]}),
            "colour",
        ),
    ];
    for (body, field) in bad {
        let (status, answer) = user
            .post(&format!("/v1/domains/{domain}/links"), body.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        let msg = answer["error"].as_str().expect("error message");
        assert!(msg.contains(field), "{body}: {msg:?} should name {field}");
    }

    // Slugs are unique across the installation: another workspace cannot take it either.
    let (status, answer) = user
        .post(
            &format!("/v1/domains/{domain}/links"),
            json!({"name": "Again", "slug": "spring-sale", "targets": [{"url": "https://a.test/", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"], "slug spring-sale is already taken");
    let other = app.signup("other-links@example.com").await;
    let other_domain = other.add_domain("other.example.com").await;
    let (status, _) = other
        .post(
            &format!("/v1/domains/{other_domain}/links"),
            json!({"name": "Mine", "slug": "spring-sale", "targets": [{"url": "https://a.test/", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Another tenant sees none of it.
    for path in [
        format!("/v1/links/{id}"),
        format!("/v1/domains/{domain}/links"),
    ] {
        let (status, _) = other.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = other
        .patch(&format!("/v1/links/{id}"), json!({"name": "Hijacked"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = other.delete(&format!("/v1/links/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = other
        .post(
            &format!("/v1/domains/{domain}/links"),
            json!({"name": "n", "slug": "into-yours", "targets": [{"url": "https://a.test/", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Editing keeps the ids of targets that stay; a target id of another link is refused.
    let (status, edited) = user
        .patch(
            &format!("/v1/links/{id}"),
            json!({"name": "Spring sale (EU)", "slug": "spring-eu",
                   "targets": [{"id": kept_target, "url": "https://shop.example.com/b2", "weight": 5},
                               {"url": "https://shop.example.com/c", "weight": 2}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["name"], "Spring sale (EU)");
    assert_eq!(edited["url"], app.url("/__cc/go/spring-eu"));
    assert_eq!(edited["targets"][0]["id"], kept_target.as_str());
    assert_eq!(edited["targets"][0]["weight"], 5);
    assert_eq!(edited["targets"][0]["url"], "https://shop.example.com/b2");
    assert_ne!(edited["targets"][1]["id"], created["targets"][0]["id"]);
    assert_eq!(edited["targets"].as_array().map(Vec::len), Some(2));
    let (_, fetched) = user.get(&format!("/v1/links/{id}")).await;
    assert_eq!(fetched["targets"], edited["targets"]);
    let (status, answer) = user
        .patch(
            &format!("/v1/links/{id}"),
            json!({"targets": [{"id": uuid::Uuid::new_v4().to_string(), "url": "https://a.test/", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"]
        .as_str()
        .unwrap_or("")
        .contains("targets[0].id"));
    // The old slug is free again; the taken one answers 409 on edit too.
    add_link(
        &user,
        &domain,
        json!({"name": "Old", "slug": "spring-sale", "targets": [{"url": "https://a.test/", "weight": 1}]}),
    )
    .await;
    let (status, _) = user
        .patch(&format!("/v1/links/{id}"), json!({"slug": "spring-sale"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Newest first, cursor paged.
    let (_, page) = user
        .get(&format!("/v1/domains/{domain}/links?limit=1"))
        .await;
    assert_eq!(page["items"][0]["slug"], "spring-sale");
    let cursor = page["nextCursor"].as_str().expect("cursor").to_owned();
    let (_, page2) = user
        .get(&format!(
            "/v1/domains/{domain}/links?limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(page2["items"][0]["slug"], "spring-eu");
    assert!(page2["nextCursor"].is_null());

    // The Pulse plan allows as many links per domain as webhooks: 2.
    let (status, answer) = user
        .post(
            &format!("/v1/domains/{domain}/links"),
            json!({"name": "Third", "slug": "third", "targets": [{"url": "https://a.test/", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(
        answer["error"],
        "The Pulse plan allows 2 tracking links per domain"
    );

    let (status, _) = user.delete(&format!("/v1/links/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = user.get(&format!("/v1/links/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = crate::helpers::http_client()
        .get(app.url("/__cc/go/spring-eu"))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .expect("go");
    assert_eq!(status, StatusCode::NOT_FOUND);
    add_link(
        &user,
        &domain,
        json!({"name": "Third", "slug": "third", "targets": [{"url": "https://a.test/", "weight": 1}]}),
    )
    .await;
}

#[tokio::test]
async fn a_click_redirects_with_its_query_and_is_stored_as_a_touch() {
    let app = TestApp::spawn().await;
    let user = app.signup("click@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let link = add_link(
        &user,
        &domain,
        json!({"name": "Ad", "slug": "ad-1",
               "targets": [{"url": "https://shop.example.com/sale?utm_campaign=spring#offer", "weight": 1}]}),
    )
    .await;
    let client = clicker();
    let started = std::time::Instant::now();
    let (status, location) = click(
        &client,
        &app.url("/__cc/go/ad-1?utm_source=google&utm_medium=cpc&gclid=Cj0-click&utm_campaign=ignored&pb_click=forged"),
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(started.elapsed() < Duration::from_secs(2));
    let parsed = url::Url::parse(&location).expect("location");
    assert_eq!(parsed.host_str(), Some("shop.example.com"));
    assert_eq!(parsed.path(), "/sale");
    assert_eq!(parsed.fragment(), Some("offer"));
    // The target's own parameters win; the click's are added; pb_click is the server's.
    assert_eq!(param(&location, "utm_campaign").as_deref(), Some("spring"));
    assert_eq!(param(&location, "utm_source").as_deref(), Some("google"));
    assert_eq!(param(&location, "gclid").as_deref(), Some("Cj0-click"));
    let click_id = param(&location, "pb_click").expect("pb_click");
    assert_ne!(click_id, "forged");
    assert_eq!(
        parsed
            .query_pairs()
            .filter(|(k, _)| k == "pb_click")
            .count(),
        1
    );

    let got = rows(
        &app,
        &format!(
            "SELECT link_id::text, target_id::text, utm_source, utm_medium, utm_campaign, gclid,
                    device_type, referrer, visitor_id::text, quality_score::text
             FROM touches WHERE id = '{click_id}'"
        ),
    )
    .await;
    assert_eq!(got.len(), 1, "the click is a touch");
    let r = &got[0];
    assert_eq!(r[0].as_deref(), link["id"].as_str());
    assert_eq!(r[1].as_deref(), link["targets"][0]["id"].as_str());
    assert_eq!(r[2].as_deref(), Some("google"));
    assert_eq!(r[3].as_deref(), Some("cpc"));
    assert_eq!(r[4].as_deref(), Some("spring"));
    assert_eq!(r[5].as_deref(), Some("Cj0-click"));
    assert_eq!(r[6].as_deref(), Some("desktop"));
    assert_eq!(r[7], None);
    assert_eq!(r[8], None, "no visitor until the landing page reports it");
    assert_eq!(r[9].as_deref(), Some("80"), "unconfirmed click");

    // A crawler's click scores 0; a referrer is kept.
    let resp = crate::helpers::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Googlebot/2.1 (+http://www.google.com/bot.html)")
        .build()
        .expect("client")
        .get(app.url("/__cc/go/ad-1"))
        .header("Referer", "https://news.example.org/")
        .send()
        .await
        .expect("bot click");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let bot_click = param(
        resp.headers()["location"].to_str().expect("location"),
        "pb_click",
    )
    .expect("pb_click");
    let got = rows(
        &app,
        &format!("SELECT quality_score::text, referrer, device_type FROM touches WHERE id = '{bot_click}'"),
    )
    .await;
    assert_eq!(
        got[0],
        vec![
            Some("0".into()),
            Some("https://news.example.org/".into()),
            Some("bot".into())
        ]
    );

    // An unknown slug is a plain HTML 404 page, and no touch.
    for slug in ["no-such-link", "UPPER", "x".repeat(80).as_str()] {
        let resp = client
            .get(app.url(&format!("/__cc/go/{slug}?utm_source=x")))
            .send()
            .await
            .expect("unknown");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(resp.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html"));
        assert!(resp.text().await.expect("body").contains("Link not found"));
    }
    let count = rows(&app, "SELECT count(*)::text FROM touches").await;
    assert_eq!(count[0][0].as_deref(), Some("2"));
}

/// Weights 1:3 over 2,000 clicks: target A's share is 0.25 with a standard deviation of
/// sqrt(0.25 · 0.75 / 2000) ≈ 0.0097, so ±0.05 (over 5 standard deviations) fails a correct
/// implementation about once in two million runs, while an even split (0.5) or inverted weights
/// (0.75) are more than 25 standard deviations away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_are_honoured_over_two_thousand_clicks() {
    let app = TestApp::spawn_without_client_budget().await;
    let user = app.signup("weights@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let link = add_link(
        &user,
        &domain,
        json!({"name": "Split", "slug": "split",
               "targets": [{"url": "https://a.example.com/", "weight": 1},
                           {"url": "https://b.example.com/", "weight": 3}]}),
    )
    .await;
    const CLICKS: usize = 2000;
    const TASKS: usize = 16;
    let client = clicker();
    let url = app.url("/__cc/go/split?utm_source=split-test");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            let mut hosts = Vec::new();
            for _ in 0..CLICKS / TASKS {
                let (status, location) = click(&client, &url).await;
                assert_eq!(status, StatusCode::FOUND);
                let u = url::Url::parse(&location).expect("location");
                hosts.push(u.host_str().unwrap_or("").to_owned());
            }
            hosts
        });
    }
    let mut a = 0usize;
    let mut b = 0usize;
    while let Some(hosts) = tasks.join_next().await {
        for h in hosts.expect("task") {
            match h.as_str() {
                "a.example.com" => a += 1,
                "b.example.com" => b += 1,
                other => panic!("redirected to {other}"),
            }
        }
    }
    assert_eq!(a + b, CLICKS);
    let share = a as f64 / CLICKS as f64;
    assert!(
        (share - 0.25).abs() < 0.05,
        "target A got {a} of {CLICKS} clicks ({share:.3}), expected 0.25 ± 0.05"
    );
    // Each click is one touch, counted for the target it went to.
    let got = rows(
        &app,
        &format!(
            "SELECT target_id::text, count(*)::text FROM touches
             WHERE link_id = '{}' AND utm_source = 'split-test' GROUP BY 1",
            link["id"].as_str().expect("id")
        ),
    )
    .await;
    let count_of = |i: usize| {
        let tid = link["targets"][i]["id"].as_str().expect("tid");
        got.iter()
            .find(|r| r[0].as_deref() == Some(tid))
            .and_then(|r| r[1].clone())
            .unwrap_or_default()
    };
    assert_eq!(count_of(0), a.to_string());
    assert_eq!(count_of(1), b.to_string());
    // The link page shows the same numbers.
    let (status, html) = user
        .page(&format!("/links/{}", link["id"].as_str().expect("id")))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Counts read with thousands separators.
    let (a, b) = (
        postback_domain::text::thousands(a as i64),
        postback_domain::text::thousands(b as i64),
    );
    assert!(
        html.contains(&format!(
            "<td class=\"num\" data-target-clicks=\"0\">{a}</td>"
        )),
        "{html}"
    );
    assert!(html.contains(&format!(
        "<td class=\"num\" data-target-clicks=\"1\">{b}</td>"
    )));
    assert!(html.contains(&format!(
        "id=\"total-clicks\">{}<",
        postback_domain::text::thousands(CLICKS as i64)
    )));
}

async fn collect_click(app: &TestApp, site: &str, vid: &str, url: &str, click: &str) {
    let resp = crate::helpers::http_client()
        .post(app.url("/__cc/collect"))
        .header("Content-Type", "text/plain")
        .header("User-Agent", UA)
        .header("Origin", "https://shop.example.com")
        .body(json!({ "site": site, "vid": vid, "url": url, "click": click }).to_string())
        .send()
        .await
        .expect("collect");
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn webhook_on_link(shop: &Shop, url: &str, link_id: &str) {
    let (status, hook) = shop
        .user
        .post(
            "/v1/integrations/webhooks",
            json!({ "url": url, "events": ["purchase"],
                    "conditions": [{"field": "linkId", "op": "equals", "value": link_id}] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
}

#[tokio::test]
async fn the_snippet_joins_the_click_to_the_visitor_and_conditions_see_the_link() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let shop = shop(&app, "joined@example.com").await;
    let link = add_link(
        &shop.user,
        &shop.domain_id,
        json!({"name": "Newsletter", "slug": "newsletter",
               "targets": [{"url": "https://shop.example.com/landing", "weight": 1}]}),
    )
    .await;
    let other_link = add_link(
        &shop.user,
        &shop.domain_id,
        json!({"name": "Other", "slug": "other",
               "targets": [{"url": "https://shop.example.com/other", "weight": 1}]}),
    )
    .await;
    let link_id = link["id"].as_str().expect("id");
    let target_id = link["targets"][0]["id"].as_str().expect("tid");
    webhook_on_link(&shop, &receiver.url("/this-link"), link_id).await;
    webhook_on_link(
        &shop,
        &receiver.url("/other-link"),
        other_link["id"].as_str().expect("id"),
    )
    .await;

    let client = clicker();
    let (status, location) = click(
        &client,
        &app.url("/__cc/go/newsletter?utm_source=newsletter&utm_campaign=november"),
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    let click_id = param(&location, "pb_click").expect("pb_click");

    // A landing on another workspace's domain cannot claim the click.
    let stranger = shop_with_host(&app, "stranger@example.com").await;
    collect_click(&app, &stranger, "stranger-visitor-1", &location, &click_id).await;
    // The landing page's snippet reports the click with the landing.
    let landing = location.replace(&format!("&pb_click={click_id}"), "");
    collect_click(&app, &shop.site, "visitor-link-1", &landing, &click_id).await;
    // Only once: a second browser with the same URL gets a touch of its own.
    collect_click(&app, &shop.site, "visitor-link-2", &location, &click_id).await;
    let got = rows(
        &app,
        &format!(
            "SELECT v.browser_id, t.landing_page, t.quality_score::text, t.link_id::text
             FROM touches t LEFT JOIN visitors v ON v.id = t.visitor_id
             WHERE t.domain_id = '{}' ORDER BY t.occurred_at",
            shop.domain_id
        ),
    )
    .await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0][0].as_deref(), Some("visitor-link-1"));
    assert_eq!(got[0][1].as_deref(), Some(landing.as_str()));
    assert_eq!(
        got[0][2].as_deref(),
        Some("100"),
        "the snippet confirmed the click"
    );
    assert_eq!(got[0][3].as_deref(), Some(link_id));
    assert_eq!(got[1][0].as_deref(), Some("visitor-link-2"));
    assert_eq!(got[1][3], None);

    identify(
        &app,
        &shop.site,
        "visitor-link-1",
        "linked.buyer@example.com",
    )
    .await;
    let (status, answer) = app
        .inbound(
            &shop.key,
            json!({"email": "linked.buyer@example.com", "event": "purchase", "value": 40, "currency": "EUR"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let event_id = answer["eventId"].as_str().expect("eventId");
    receiver.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = receiver.received();
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, vec!["/this-link"]);
    let body = got[0].json();
    assert_eq!(body["data"]["attribution"]["lastTouch"]["linkId"], link_id);
    assert_eq!(
        body["data"]["attribution"]["lastTouch"]["targetId"],
        target_id
    );
    assert_eq!(body["data"]["attribution"]["firstTouch"]["linkId"], link_id);

    let (_, event) = shop.user.get(&format!("/v1/events/{event_id}")).await;
    let last = &event["attribution"]["lastTouch"];
    assert_eq!(last["linkId"], link_id);
    assert_eq!(last["targetId"], target_id);
    assert_eq!(last["utmSource"], "newsletter");
    assert_eq!(last["utmCampaign"], "november");

    // A refund is not a conversion; a second purchase in USD is.
    for body in [
        json!({"email": "linked.buyer@example.com", "event": "refund", "value": 40, "currency": "EUR"}),
        json!({"email": "linked.buyer@example.com", "event": "purchase", "value": 10.5, "currency": "USD"}),
    ] {
        let (status, answer) = app.inbound(&shop.key, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (status, html) = shop.user.page(&format!("/links/{link_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"total-clicks\">1<"), "{html}");
    assert!(html.contains("id=\"first-conversions\">2<"), "{html}");
    assert!(html.contains("id=\"last-conversions\">2<"), "{html}");
    assert!(
        html.contains("€40.00, $10.50"),
        "money with symbols: {html}"
    );
    // The event page shows the link and target on the touch.
    let (_, html) = shop.user.page(&format!("/events/{event_id}")).await;
    assert!(html.contains(link_id) && html.contains(target_id), "{html}");
    assert!(html.contains("Newsletter"), "{html}");
}

/// A second workspace with a domain; returns its site id.
async fn shop_with_host(app: &TestApp, email: &str) -> String {
    let user = app.signup(email).await;
    let id = user.add_domain("shop.example.com").await;
    let (_, domain) = user.get(&format!("/v1/domains/{id}")).await;
    domain["siteId"].as_str().expect("siteId").to_owned()
}

/// Where a click on `slug` through `app` goes: the target without its query, or the status.
async fn lands(app: &TestApp, slug: &str) -> String {
    let (status, location) = click(&clicker(), &app.url(&format!("/__cc/go/{slug}"))).await;
    if status != StatusCode::FOUND {
        return status.as_u16().to_string();
    }
    let mut url = url::Url::parse(&location).expect("location is a URL");
    url.set_query(None);
    url.to_string()
}

#[tokio::test]
async fn link_changes_redirect_at_once_here_and_within_seconds_on_other_instances() {
    let app = TestApp::spawn().await;
    let other = TestApp::spawn_on(&app.db_url).await;
    let user = app.signup("cache@example.com").await;
    let domain = user.add_domain("shop.example.com").await;

    // An unknown slug is remembered as unknown, and creating it ends that at once.
    assert_eq!(lands(&app, "flip").await, "404");
    assert_eq!(lands(&other, "flip").await, "404");
    let link = add_link(
        &user,
        &domain,
        json!({"name": "Flip", "slug": "flip", "targets": [{"url": "https://a.test/x", "weight": 1}]}),
    )
    .await;
    let id = link["id"].as_str().expect("id").to_owned();
    assert_eq!(lands(&app, "flip").await, "https://a.test/x");

    // An edit takes effect at once where it was made; the other instance follows within the
    // cache's lifetime.
    assert_eq!(
        wait_for_landing(&other, "flip", "https://a.test/x").await,
        "https://a.test/x"
    );
    let (status, _) = user
        .patch(
            &format!("/v1/links/{id}"),
            json!({"targets": [{"url": "https://b.test/y", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lands(&app, "flip").await, "https://b.test/y");
    assert_eq!(
        wait_for_landing(&other, "flip", "https://b.test/y").await,
        "https://b.test/y"
    );

    // So does a delete, and a deleted domain takes its links with it.
    let (status, _) = user.delete(&format!("/v1/links/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(lands(&app, "flip").await, "404");
    assert_eq!(wait_for_landing(&other, "flip", "404").await, "404");
    add_link(
        &user,
        &domain,
        json!({"name": "Gone", "slug": "gone", "targets": [{"url": "https://c.test/", "weight": 1}]}),
    )
    .await;
    assert_eq!(lands(&app, "gone").await, "https://c.test/");
    let (status, _) = user.delete(&format!("/v1/domains/{domain}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(lands(&app, "gone").await, "404");
}

/// Clicks through `app` until `slug` lands on `want`, for at most twice the cache's lifetime;
/// returns the last landing.
async fn wait_for_landing(app: &TestApp, slug: &str, want: &str) -> String {
    let deadline = std::time::Instant::now() + 2 * postback_runtime::clicks::DESTINATION_TTL;
    loop {
        let got = lands(app, slug).await;
        if got == want || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
