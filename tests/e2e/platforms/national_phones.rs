//! National phone numbers ("020 7946 0958") and the domain's default country: set through
//! `PATCH /v1/domains/{id}` (`defaultCountry`), used to complete such numbers to E.164 before
//! hashing for every platform; without a country the number is left out, never guessed.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{by_path, connect_all, sha256_hex};
use crate::attribution::shop;
use crate::helpers::TestApp;
use crate::receiver::{Receiver, Reply};

/// The phone hash each platform got in one event's three requests:
/// (Google `hashedPhoneNumber`, Meta `ph`, TikTok `phone`).
fn phones(got: &[crate::receiver::Received]) -> (Value, Value, Value) {
    let google = by_path(got, ":uploadClickConversions").json();
    let meta = by_path(got, "/events").json();
    let tiktok = by_path(got, "/event/track").json();
    let google_phone = google["conversions"][0]["userIdentifiers"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|i| i.get("hashedPhoneNumber").cloned())
        .unwrap_or(Value::Null);
    (
        google_phone,
        meta["data"][0]["user_data"]["ph"][0].clone(),
        tiktok["data"][0]["user"]["phone"].clone(),
    )
}

#[tokio::test]
async fn national_numbers_take_the_domains_default_country_or_are_left_out() {
    let fake = Receiver::start().await;
    fake.always(Reply::ok().body(r#"{"events_received": 1, "code": 0, "message": "OK"}"#));
    let app = TestApp::spawn_with_platforms(&fake.url("")).await;
    let shop = shop(&app, "phones@example.com").await;
    connect_all(&shop).await;
    let path = format!("/v1/domains/{}", shop.domain_id);

    // No default country yet, none on the event: the national number is not sent at all.
    let (status, a) = app
        .inbound(
            &shop.key,
            json!({"email": "a@example.com", "event": "purchase", "phone": "020 7946 0958"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    let got = fake.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(phones(&got), (Value::Null, Value::Null, Value::Null));

    // Bad values name the field, and change nothing.
    for bad in [json!("XX"), json!("GBR"), json!(44), json!("RU")] {
        let (status, e) = shop
            .user
            .patch(&path, json!({ "defaultCountry": bad }))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {e}");
        assert!(
            e["error"]
                .as_str()
                .expect("error")
                .contains("defaultCountry"),
            "{bad}: {e}"
        );
    }
    let (_, d) = shop.user.get(&path).await;
    assert_eq!(d["defaultCountry"], Value::Null);
    let (status, e) = shop.user.patch(&path, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");

    // Any case is accepted and stored upper case; the window is left alone.
    let (status, d) = shop
        .user
        .patch(&path, json!({"defaultCountry": "gb"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["defaultCountry"], "GB");
    let (_, d) = shop.user.get(&path).await;
    assert_eq!(d["defaultCountry"], "GB");
    assert_eq!(d["attributionWindowDays"], 90);

    app.inbound(
        &shop.key,
        json!({"email": "b@example.com", "event": "purchase", "phone": "020 7946 0958"}),
    )
    .await;
    let got = fake.wait_for(6, Duration::from_secs(10)).await;
    let got = &got[3..6];
    // E.164: Google and TikTok hash it with its '+', Meta as digits only.
    assert_eq!(
        phones(got),
        (
            json!(sha256_hex("+442079460958")),
            json!(sha256_hex("442079460958")),
            json!(sha256_hex("+442079460958")),
        )
    );

    // The event's own country wins over the domain's.
    app.inbound(
        &shop.key,
        json!({"email": "c@example.com", "event": "purchase", "phone": "01 23 45 67 89",
               "countryCode": "FR"}),
    )
    .await;
    let got = fake.wait_for(9, Duration::from_secs(10)).await;
    assert_eq!(phones(&got[6..9]).1, json!(sha256_hex("33123456789")));

    // Cleared with null: national numbers are left out again.
    let (status, d) = shop
        .user
        .patch(&path, json!({"defaultCountry": null}))
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["defaultCountry"], Value::Null);
    app.inbound(
        &shop.key,
        json!({"email": "d@example.com", "event": "purchase", "phone": "020 7946 0958"}),
    )
    .await;
    let got = fake.wait_for(12, Duration::from_secs(10)).await;
    assert_eq!(phones(&got[9..12]), (Value::Null, Value::Null, Value::Null));

    // Another workspace's domain is not found.
    let other = shop_in_other_workspace(&app).await;
    let (status, _) = other.patch(&path, json!({"defaultCountry": "US"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn shop_in_other_workspace(app: &TestApp) -> crate::helpers::User {
    app.signup("phones-other@example.com").await
}
