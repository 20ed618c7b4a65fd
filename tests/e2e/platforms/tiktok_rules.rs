//! TikTok's Events API 2.0 rules against what our TikTok connection sends: a fake that says why
//! TikTok would refuse a request, each rule next to its source, and tests that our requests pass
//! it (with a tracked click, the visitor's ids and a national phone number; without a touch) and
//! that requests breaking a rule would be refused.
//!
//! Sources: "Report Web Events" / Events API 2.0,
//! https://business-api.tiktok.com/portal/docs?id=1771101303285761 (the request: `event_source`,
//! `event_source_id`, `data[]` with `event`, `event_time`, `event_id`, `user`, `page`,
//! `properties`, and `test_event_code`), and "Supported parameters",
//! https://business-api.tiktok.com/portal/docs?id=1771101151059969 (user data hashing and
//! formats).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{connect, sha256_hex};
use crate::attribution::{collect, identify, shop};
use crate::helpers::TestApp;
use crate::receiver::{Received, Receiver, Reply};

/// A SHA-256 as TikTok wants hashed user data: 64 lowercase hex characters ("It must be
/// hashed with SHA-256 on the client side"; an upper-case or plaintext value matches nobody).
fn is_sha256_hex(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Why TikTok would refuse one Events API 2.0 request (its headers and JSON body), or None.
pub fn tiktok_refuses(access_token: Option<&str>, body: &Value) -> Option<String> {
    // Authorization: the `Access-Token` header (…?id=1771101303285761, "Header").
    if access_token.is_none_or(|t| t.trim().is_empty()) {
        return Some("the Access-Token header is required".into());
    }
    // event_source: required, one of web, app, offline, crm.
    let source = body["event_source"].as_str().unwrap_or("");
    if !["web", "app", "offline", "crm"].contains(&source) {
        return Some(format!(
            "event_source {source:?} is not web, app, offline or crm"
        ));
    }
    // event_source_id: required; for web events the pixel code.
    if body["event_source_id"]
        .as_str()
        .is_none_or(|s| s.trim().is_empty())
    {
        return Some("event_source_id (the pixel code) is required".into());
    }
    // test_event_code: optional string.
    if body.get("test_event_code").is_some_and(|c| !c.is_string()) {
        return Some("test_event_code must be a string".into());
    }
    // data: required, 1 to 1,000 events per request.
    let Some(data) = body["data"].as_array().filter(|d| !d.is_empty()) else {
        return Some("data must be a non-empty array of events".into());
    };
    if data.len() > 1000 {
        return Some("at most 1000 events per request".into());
    }
    for (i, e) in data.iter().enumerate() {
        if let Some(why) = refuse_event(e) {
            return Some(format!("data[{i}].{why}"));
        }
    }
    None
}

fn refuse_event(e: &Value) -> Option<String> {
    // event: required string, a standard event name or a custom one.
    if e["event"].as_str().is_none_or(|s| s.trim().is_empty()) {
        return Some("event is required".into());
    }
    // event_time: required, "Use unix timestamp" in seconds (an integer); milliseconds are a
    // time thousands of years ahead.
    let Some(at) = e["event_time"].as_i64() else {
        return Some("event_time must be a Unix timestamp in seconds (an integer)".into());
    };
    if at > chrono::Utc::now().timestamp() + 86_400 || at < 1_000_000_000 {
        return Some(format!("event_time {at} is not a time in seconds"));
    }
    // event_id: optional string (deduplication with the pixel).
    if e.get("event_id").is_some_and(|v| !v.is_string()) {
        return Some("event_id must be a string".into());
    }
    if let Some(user) = e.get("user") {
        // email, phone, external_id: SHA-256 (phone after E.164 formatting, email after
        // trimming and lowercasing); one string or an array of them.
        for key in ["email", "phone", "external_id"] {
            let Some(v) = user.get(key) else { continue };
            let all: Vec<&Value> = match v.as_array() {
                Some(a) => a.iter().collect(),
                None => vec![v],
            };
            if all.is_empty() || !all.iter().all(|v| is_sha256_hex(v)) {
                return Some(format!("user.{key} {v} is not a lowercase hex SHA-256"));
            }
        }
        // ttclid, ttp, ip, user_agent: strings, not hashed.
        for key in ["ttclid", "ttp", "ip", "user_agent"] {
            if let Some(v) = user.get(key) {
                if v.as_str().is_none_or(|s| s.trim().is_empty()) || is_sha256_hex(v) {
                    return Some(format!("user.{key} must be its plain value"));
                }
            }
        }
        if let Some(ip) = user.get("ip").and_then(Value::as_str) {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Some(format!("user.ip {ip:?} is not an IP address"));
            }
        }
    }
    if let Some(page) = e.get("page") {
        // page.url: the page the event happened on, a full URL.
        let url = page["url"].as_str().unwrap_or("");
        let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Some(format!("page.url {url:?} is not an http(s) URL"));
        }
    }
    if let Some(p) = e.get("properties") {
        // value: a number; currency: an ISO 4217 code, required with a value.
        if let Some(v) = p.get("value") {
            if !v.is_number() {
                return Some(format!("properties.value {v} must be a number"));
            }
            let currency = p["currency"].as_str().unwrap_or("");
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Some(format!(
                    "properties.currency {currency:?} is not an ISO 4217 code (needed with value)"
                ));
            }
        }
        // content_type: product or product_group.
        if let Some(t) = p.get("content_type") {
            if t != "product" && t != "product_group" {
                return Some(format!(
                    "properties.content_type {t} is not product or product_group"
                ));
            }
        }
        // contents[]: content_id string, quantity an integer, price a number.
        for (i, c) in p["contents"].as_array().into_iter().flatten().enumerate() {
            if c.get("content_id").is_some_and(|v| !v.is_string()) {
                return Some(format!(
                    "properties.contents[{i}].content_id must be a string"
                ));
            }
            if c.get("quantity").is_some_and(|q| !q.is_u64()) {
                return Some(format!(
                    "properties.contents[{i}].quantity must be a whole number"
                ));
            }
            if c.get("price").is_some_and(|v| !v.is_number()) {
                return Some(format!("properties.contents[{i}].price must be a number"));
            }
        }
    }
    None
}

fn refused(r: &Received) -> Option<String> {
    tiktok_refuses(r.header("access-token"), &r.json())
}

#[tokio::test]
async fn our_tiktok_requests_pass_tiktoks_rules() {
    let fake = Receiver::start().await;
    fake.always(Reply::ok().body(r#"{"code": 0, "message": "OK", "data": {}}"#));
    let app = TestApp::spawn_with_platforms(&fake.url("")).await;
    let shop = shop(&app, "tiktok-rules@example.com").await;
    connect(
        &shop,
        "tiktok",
        json!({"settings": {"pixelCode": "CABCDEF123"}, "credentials": {"accessToken": "tt-secret"}}),
    )
    .await;

    // A visit from a TikTok ad, then a purchase with everything known.
    collect(
        &app,
        &shop.site,
        "visitor-tt-1",
        "https://shop.example.com/mugs?utm_source=tiktok&ttclid=E.C.P.tt-click",
    )
    .await;
    identify(&app, &shop.site, "visitor-tt-1", "Jane.Doe@Example.com").await;
    let (status, answer) = app
        .inbound(
            &shop.key,
            json!({"email": "jane.doe@example.com", "event": "purchase", "value": 49.5,
                   "currency": "eur", "phone": "(415) 555-0132", "countryCode": "US",
                   "ip": "203.0.113.9", "ttp": "2F7h37YkS1j57AYSKTI7IHhJPYH",
                   "externalId": "crm-4711",
                   "products": [{"name": "Mug", "link": "https://shop.example.com/mug",
                                 "id": "SKU-1", "price": 19.75, "quantity": 2.5}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let got = fake.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(refused(&got[0]), None, "{}", got[0].json());
    assert_eq!(got[0].header("access-token"), Some("tt-secret"));
    let body = got[0].json();
    assert_eq!(body["event_source"], "web");
    assert_eq!(body["event_source_id"], "CABCDEF123");
    let e = &body["data"][0];
    assert_eq!(e["event"], "CompletePayment");
    assert_eq!(e["event_id"], answer["eventId"]);
    let user = &e["user"];
    assert_eq!(user["ttclid"], "E.C.P.tt-click");
    assert_eq!(user["ttp"], "2F7h37YkS1j57AYSKTI7IHhJPYH");
    assert_eq!(user["external_id"], sha256_hex("crm-4711"));
    assert_eq!(user["email"], sha256_hex("jane.doe@example.com"));
    // The national number in E.164, '+' included, before hashing.
    assert_eq!(user["phone"], sha256_hex("+14155550132"));
    assert_eq!(user["ip"], "203.0.113.9");
    assert_eq!(
        e["page"]["url"],
        "https://shop.example.com/mugs?utm_source=tiktok&ttclid=E.C.P.tt-click"
    );
    assert_eq!(e["properties"]["value"], 49.5);
    assert_eq!(e["properties"]["currency"], "EUR");
    // TikTok counts whole items: 2.5 becomes 3 rather than a refused request.
    assert_eq!(e["properties"]["contents"][0]["quantity"], 3);

    // A lead with no touch and nothing but an email passes too.
    app.inbound(
        &shop.key,
        json!({"email": "lead@example.com", "event": "lead"}),
    )
    .await;
    let got = fake.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(refused(&got[1]), None, "{}", got[1].json());
    assert!(got[1].json()["data"][0].get("page").is_none());

    // Bad visitor ids are refused at the door, naming the field.
    for (body, field) in [
        (
            json!({"email": "a@example.com", "event": "lead", "ttp": ""}),
            "ttp",
        ),
        (
            json!({"email": "a@example.com", "event": "lead", "externalId": 42}),
            "externalId",
        ),
    ] {
        let (status, e) = app.inbound(&shop.key, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
        assert!(
            e["error"].as_str().expect("error").starts_with(field),
            "{e}"
        );
    }
}

/// The rules are not a formality: a request breaking any of them is refused, saying which.
#[test]
fn tiktoks_rules_refuse_what_tiktok_refuses() {
    let good = json!({
        "event_source": "web",
        "event_source_id": "CABCDEF123",
        "test_event_code": "TEST123",
        "data": [{
            "event": "CompletePayment",
            "event_time": chrono::Utc::now().timestamp(),
            "event_id": "e-1",
            "user": {"email": sha256_hex("a@example.com"), "phone": sha256_hex("+14155550132"),
                     "external_id": [sha256_hex("crm-1")], "ttclid": "E.C.P.x", "ttp": "abc",
                     "ip": "203.0.113.9", "user_agent": "Mozilla/5.0"},
            "page": {"url": "https://shop.example.com/thanks"},
            "properties": {"value": 10.5, "currency": "USD", "content_type": "product",
                           "contents": [{"content_id": "SKU-1", "quantity": 2, "price": 5.25}]}
        }]
    });
    assert_eq!(tiktok_refuses(Some("tok"), &good), None);
    assert_eq!(
        tiktok_refuses(None, &good).as_deref(),
        Some("the Access-Token header is required")
    );
    let broken: Vec<(&str, Value, &str)> = vec![
        ("/event_source", json!("website"), "event_source"),
        ("/event_source_id", json!(""), "event_source_id"),
        ("/test_event_code", json!(123), "test_event_code"),
        ("/data", json!([]), "data must be"),
        ("/data/0/event", json!(""), "data[0].event is required"),
        (
            "/data/0/event_time",
            json!(chrono::Utc::now().timestamp_millis()),
            "data[0].event_time",
        ),
        (
            "/data/0/event_time",
            json!("2026-03-14T15:09:26Z"),
            "data[0].event_time",
        ),
        ("/data/0/event_id", json!(7), "data[0].event_id"),
        (
            "/data/0/user/email",
            json!("a@example.com"),
            "data[0].user.email",
        ),
        (
            "/data/0/user/email",
            json!(sha256_hex("a@example.com").to_uppercase()),
            "data[0].user.email",
        ),
        (
            "/data/0/user/phone",
            json!("+14155550132"),
            "data[0].user.phone",
        ),
        (
            "/data/0/user/external_id",
            json!("crm-1"),
            "data[0].user.external_id",
        ),
        (
            "/data/0/user/ttclid",
            json!(sha256_hex("E.C.P.x")),
            "data[0].user.ttclid",
        ),
        ("/data/0/user/ip", json!("not-an-ip"), "data[0].user.ip"),
        ("/data/0/page/url", json!("/thanks"), "data[0].page.url"),
        (
            "/data/0/properties/value",
            json!("10.50"),
            "data[0].properties.value",
        ),
        (
            "/data/0/properties/currency",
            json!("usd"),
            "data[0].properties.currency",
        ),
        (
            "/data/0/properties/content_type",
            json!("sku"),
            "data[0].properties.content_type",
        ),
        (
            "/data/0/properties/contents/0/quantity",
            json!(2.5),
            "data[0].properties.contents[0].quantity",
        ),
    ];
    for (pointer, value, why) in broken {
        let mut body = good.clone();
        *body.pointer_mut(pointer).expect(pointer) = value.clone();
        let refusal = tiktok_refuses(Some("tok"), &body);
        assert!(
            refusal.as_deref().is_some_and(|r| r.starts_with(why)),
            "{pointer} = {value}: {refusal:?}"
        );
    }
    let mut no_currency = good.clone();
    no_currency["data"][0]["properties"]
        .as_object_mut()
        .expect("properties")
        .remove("currency");
    assert!(tiktok_refuses(Some("tok"), &no_currency)
        .expect("refused")
        .contains("needed with value"));
}
