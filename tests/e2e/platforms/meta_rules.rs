//! Meta's Conversions API rules against a fake that enforces them: a website event needs its
//! page and browser, otherwise the connection's fallback action source goes; events older than
//! 7 days are not sent; Limited Data Use; the test button does not record a real purchase
//! unless confirmed.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::connect;
use crate::attribution::shop;
use crate::helpers::TestApp;
use crate::receiver::{Receiver, Reply};

/// Why Meta would refuse one server event
/// (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/server-event):
/// event_name, event_time and action_source are required; "website" also requires
/// event_source_url and user_data.client_user_agent; event_time no more than 7 days old.
fn meta_refuses(event: &Value) -> Option<String> {
    for key in ["event_name", "event_time", "action_source", "user_data"] {
        if event.get(key).is_none() {
            return Some(format!("{key} is required"));
        }
    }
    let sources = [
        "email",
        "website",
        "app",
        "phone_call",
        "chat",
        "physical_store",
        "system_generated",
        "business_messaging",
        "other",
    ];
    let source = event["action_source"].as_str().unwrap_or("");
    if !sources.contains(&source) {
        return Some(format!("action_source {source:?} is not one of Meta's"));
    }
    if source == "website"
        && (event.get("event_source_url").is_none()
            || event["user_data"].get("client_user_agent").is_none())
    {
        return Some("website events need event_source_url and client_user_agent".into());
    }
    let at = event["event_time"].as_i64().unwrap_or(0);
    if chrono::Utc::now().timestamp() - at > 7 * 86_400 {
        return Some("event_time is more than 7 days ago".into());
    }
    None
}

#[tokio::test]
async fn events_without_page_and_browser_use_the_fallback_action_source() {
    let fake = Receiver::start().await;
    fake.always(Reply::ok().body(r#"{"events_received": 1}"#));
    let app = TestApp::spawn_with_platforms(&fake.url("")).await;
    let shop = shop(&app, "meta-rules@example.com").await;
    connect(
        &shop,
        "meta",
        json!({"settings": {"pixelId": "42"}, "credentials": {"accessToken": "EAAB"}}),
    )
    .await;
    // No touch, no user agent: not an incomplete website event, the default fallback.
    app.inbound(
        &shop.key,
        json!({"email": "a@example.com", "event": "lead"}),
    )
    .await;
    let got = fake.wait_for(1, Duration::from_secs(10)).await;
    let event = got[0].json()["data"][0].clone();
    assert_eq!(meta_refuses(&event), None, "{event}");
    assert_eq!(event["action_source"], "system_generated");

    // The browser and page given with the inbound event make it a complete website event.
    let (status, answer) = app
        .inbound(
            &shop.key,
            json!({"email": "a@example.com", "event": "lead", "userAgent": "Mozilla/5.0 (Test)",
                   "sourceUrl": "https://shop.example.com/thanks",
                   "fbp": "fb.1.1596403881668.1116446470", "externalId": "crm-4711"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let got = fake.wait_for(2, Duration::from_secs(10)).await;
    let event = got[1].json()["data"][0].clone();
    assert_eq!(meta_refuses(&event), None, "{event}");
    assert_eq!(event["action_source"], "website");
    assert_eq!(event["event_source_url"], "https://shop.example.com/thanks");
    assert_eq!(
        event["user_data"]["client_user_agent"],
        "Mozilla/5.0 (Test)"
    );
    // The browser id unhashed, the customer's id hashed (customer-information-parameters:
    // fbp "do not hash", external_id "hashing recommended").
    assert_eq!(event["user_data"]["fbp"], "fb.1.1596403881668.1116446470");
    assert_eq!(
        event["user_data"]["external_id"],
        json!([super::sha256_hex("crm-4711")])
    );
    // Bad values are refused, naming the field.
    for (body, field) in [
        (
            json!({"email": "a@example.com", "event": "lead", "sourceUrl": "ftp://x"}),
            "sourceUrl",
        ),
        (
            json!({"email": "a@example.com", "event": "lead", "consent": {"adUserData": "maybe"}}),
            "consent.adUserData",
        ),
        (
            json!({"email": "a@example.com", "event": "lead", "fbp": "1596403881668"}),
            "fbp",
        ),
    ] {
        let (status, e) = app.inbound(&shop.key, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
        assert!(
            e["error"].as_str().expect("error").starts_with(field),
            "{e}"
        );
    }

    // The connection's own fallback, Limited Data Use, and the order id as event id.
    let (status, c) = shop
        .user
        .put(
            &format!("/v1/domains/{}/connections/meta", shop.domain_id),
            json!({"settings": {"pixelId": "42", "actionSource": "phone_call",
                                "dataProcessingOptions": "ldu", "eventIdSource": "orderId"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["settings"]["dataProcessingOptions"], "LDU");
    app.inbound(
        &shop.key,
        json!({"email": "a@example.com", "event": "purchase", "orderId": "ORD-9"}),
    )
    .await;
    let got = fake.wait_for(3, Duration::from_secs(10)).await;
    let event = got[2].json()["data"][0].clone();
    assert_eq!(meta_refuses(&event), None, "{event}");
    assert_eq!(event["action_source"], "phone_call");
    assert_eq!(event["event_id"], "ORD-9");
    assert_eq!(event["data_processing_options"], json!(["LDU"]));
    assert_eq!(event["data_processing_options_country"], 0);

    // A bad setting names the field.
    let (status, e) = shop
        .user
        .put(
            &format!("/v1/domains/{}/connections/meta", shop.domain_id),
            json!({"settings": {"pixelId": "42", "actionSource": "website"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["error"]
            .as_str()
            .expect("error")
            .starts_with("settings.actionSource must be one of"),
        "{e}"
    );
}

#[tokio::test]
async fn an_event_older_than_seven_days_is_not_sent_to_meta_and_says_why() {
    let fake = Receiver::start().await;
    fake.always(Reply::ok().body(r#"{"events_received": 1}"#));
    let app = TestApp::spawn_with_platforms(&fake.url("")).await;
    let shop = shop(&app, "meta-old@example.com").await;
    connect(
        &shop,
        "meta",
        json!({"settings": {"pixelId": "42"}, "credentials": {"accessToken": "EAAB"}}),
    )
    .await;
    let old = (chrono::Utc::now() - chrono::Duration::days(8)).to_rfc3339();
    let (_, answer) = app
        .inbound(
            &shop.key,
            json!({"email": "a@example.com", "event": "purchase", "timestamp": old}),
        )
        .await;
    let id = answer["eventId"].as_str().expect("id").to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let d = loop {
        let (_, e) = shop.user.get(&format!("/v1/events/{id}")).await;
        if e["deliveries"][0]["status"] == "failed" {
            break e["deliveries"][0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "{e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        d["lastError"]
            .as_str()
            .expect("error")
            .starts_with("Not sent: Meta refuses events older than 7 days"),
        "{d}"
    );
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn the_meta_test_button_needs_a_test_code_or_a_confirmation() {
    let fake = Receiver::start().await;
    fake.always(Reply::ok().body(r#"{"events_received": 1}"#));
    let app = TestApp::spawn_with_platforms(&fake.url("")).await;
    let shop = shop(&app, "meta-test@example.com").await;
    connect(
        &shop,
        "meta",
        json!({"settings": {"pixelId": "42"}, "credentials": {"accessToken": "EAAB"}}),
    )
    .await;
    let test = format!("/v1/domains/{}/connections/meta/test", shop.domain_id);
    let (status, r) = shop.user.post(&test, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["ok"], false);
    assert_eq!(r["needsConfirmation"], true);
    assert!(
        r["error"]
            .as_str()
            .expect("error")
            .contains("would record this sample as a real 99.99 USD purchase"),
        "{r}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(fake.received().is_empty(), "nothing was sent");

    let (status, r) = shop
        .user
        .post(&test, json!({"confirmRealConversion": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["ok"], true, "{r}");
    let got = fake.wait_for(1, Duration::from_secs(5)).await;
    let event = got[0].json()["data"][0].clone();
    assert_eq!(meta_refuses(&event), None, "{event}");

    // With a test event code the test goes as a test event, no confirmation needed.
    connect(
        &shop,
        "meta",
        json!({"settings": {"pixelId": "42", "testEventCode": "TEST123"}}),
    )
    .await;
    let (_, r) = shop.user.post(&test, json!({})).await;
    assert_eq!(r["ok"], true, "{r}");
    let got = fake.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].json()["test_event_code"], "TEST123");

    // A body that is not the options is refused, naming them.
    let (status, e) = shop.user.post(&test, json!({"confirm": "yes"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["error"]
            .as_str()
            .expect("error")
            .contains("confirmRealConversion"),
        "{e}"
    );
}
