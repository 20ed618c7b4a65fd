//! "Connect Meta" by Facebook Login against the fake (`fake_social`): the dialog, the code and
//! long-lived exchanges, picking the ad account › pixel from lists fetched with the new token,
//! events delivered with it; a wrong or reused state refused; a revoked token holds deliveries
//! and connecting again releases them. The OAuth dance helpers here serve `tiktok_oauth` too.

use std::collections::HashMap;
use std::time::Duration;

use postback_domain::platforms::oauth::{App, Apps};
use postback_domain::platforms::{Platform, PlatformUrls};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::fake_social::{
    FakeSocial, META_APP_ID, META_APP_SECRET, TIKTOK_APP_ID, TIKTOK_APP_SECRET,
};
use crate::attribution::{shop, Shop};
use crate::helpers::{fresh_database, test_delivery, TestApp};

/// A server whose Meta and TikTok APIs are the fake, with the operator's apps set when
/// `secrets` (Meta's, TikTok's app secret) are given, its callbacks registered with the fake's
/// apps.
pub(super) async fn social_app(fake: &FakeSocial, secrets: Option<(&str, &str)>) -> TestApp {
    let mut apps = Apps::default();
    if let Some((meta_secret, tiktok_secret)) = secrets {
        apps = apps
            .with(
                Platform::Meta,
                App {
                    client_id: META_APP_ID.into(),
                    client_secret: meta_secret.into(),
                    ..App::default()
                },
            )
            .with(
                Platform::TikTok,
                App {
                    client_id: TIKTOK_APP_ID.into(),
                    client_secret: tiktok_secret.into(),
                    ..App::default()
                },
            );
    }
    let delivery = postback_runtime::delivery::DeliveryConfig {
        platform_urls: PlatformUrls::all_at(&fake.base),
        apps,
        ..test_delivery()
    };
    let app = TestApp::spawn_with(&fresh_database().await, delivery).await;
    for p in ["meta", "tiktok"] {
        fake.allow_redirect(&format!("{}/oauth/{p}/callback", app.base));
    }
    app
}

/// The operator's app secrets as the fake's apps have them.
pub(super) const RIGHT: Option<(&str, &str)> = Some((META_APP_SECRET, TIKTOK_APP_SECRET));

/// GET in the shop user's session (redirects not followed): (status, Location, body).
pub(super) async fn get(shop: &Shop, url: &str) -> (StatusCode, String, String) {
    let url = if url.starts_with("http") {
        url.to_owned()
    } else {
        format!("{}{url}", shop.user.base)
    };
    let resp = shop.user.client.get(url).send().await.expect("get");
    let status = resp.status();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, location, resp.text().await.expect("body"))
}

/// "Connect {platform}": the provider's URL the dashboard sends the user to.
pub(super) async fn start(shop: &Shop, platform: &str) -> String {
    let (status, to, body) = get(
        shop,
        &format!("/domains/{}/connections/{platform}/connect", shop.domain_id),
    )
    .await;
    assert_eq!(status, StatusCode::FOUND, "{body}");
    to
}

/// The provider's page (the fake grants at once): where it sends the user back to.
pub(super) async fn provider(to: &str) -> String {
    let browser = crate::helpers::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let back = browser.get(to).send().await.expect("provider");
    assert_eq!(back.status(), StatusCode::FOUND, "{to}");
    back.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

pub(super) fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect()
}

/// A hidden field's value on the pick page.
fn field(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("{name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').expect("quote")].to_owned()
}

/// Submits the pick page's form with `choice`: the status.
pub(super) async fn pick(shop: &Shop, platform: &str, html: &str, choice: &str) -> StatusCode {
    pick_answer(shop, platform, html, choice).await.0
}

/// Submits the pick page's form with `choice`: the status and the page.
pub(super) async fn pick_answer(
    shop: &Shop,
    platform: &str,
    html: &str,
    choice: &str,
) -> (StatusCode, String) {
    let (csrf, flow) = (field(html, "csrf_token"), field(html, "flow"));
    let resp = shop
        .user
        .client
        .post(format!("{}/oauth/{platform}/pick", shop.user.base))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("flow", flow.as_str()),
            ("choice", choice),
        ])
        .send()
        .await
        .expect("pick");
    (resp.status(), resp.text().await.expect("page"))
}

/// The whole flow: start, the provider, the callback's list, the pick of `choice`.
pub(super) async fn connect_by_oauth(shop: &Shop, platform: &str, choice: &str) {
    let to = start(shop, platform).await;
    let callback = provider(&to).await;
    let (status, _, html) = get(shop, &callback).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(
        pick(shop, platform, &html, choice).await,
        StatusCode::SEE_OTHER
    );
}

/// The event's one delivery, once `done` says it is where the test expects it.
pub(super) async fn delivery_when(
    shop: &Shop,
    event: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, e) = shop.user.get(&format!("/v1/events/{event}")).await;
        let d = e["deliveries"][0].clone();
        if done(&d) {
            return d;
        }
        assert!(std::time::Instant::now() < deadline, "{e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) async fn purchase(app: &TestApp, shop: &Shop, platform: &str, order: &str) -> String {
    let (status, answer) = app
        .inbound(
            &shop.key,
            json!({"email": "buyer@example.com", "event": "purchase", "value": 20,
                   "currency": "usd", "orderId": order}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["dispatched"], json!([platform]));
    answer["eventId"].as_str().expect("eventId").to_owned()
}

#[tokio::test]
async fn connect_meta_by_oauth_pick_the_pixel_and_deliver_with_the_long_lived_token() {
    let fake = FakeSocial::start().await;
    let app = social_app(&fake, RIGHT).await;
    let shop = shop(&app, "meta-connect@example.com").await;
    let (_, _, tab) = get(&shop, &format!("/domains/{}/connections", shop.domain_id)).await;
    assert!(tab.contains("Connect Meta</a>"), "{tab}");

    let to = start(&shop, "meta").await;
    assert!(
        to.starts_with(&format!("{}/v26.0/dialog/oauth?", fake.base)),
        "{to}"
    );
    let params = query(&to);
    assert_eq!(params["client_id"], META_APP_ID);
    assert_eq!(
        params["redirect_uri"],
        format!("{}/oauth/meta/callback", app.base)
    );
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["scope"], "ads_management,business_management");
    assert!(params["state"].len() >= 40, "{params:?}");

    let callback = provider(&to).await;
    // Another user's session cannot use this state.
    let other = self::shop(&app, "meta-connect-other@example.com").await;
    let (status, _, html) = get(&other, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("is not valid"), "{html}");

    let (status, _, html) = get(&shop, &callback).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("Shop EU (1010) › Main pixel (5550001)"),
        "{html}"
    );
    assert!(
        html.contains("Shop EU (1010) › Staging (5550002)"),
        "{html}"
    );
    assert!(html.contains("Ad account › pixel"), "{html}");
    // No token in the page.
    assert!(!html.contains("EAA-"), "{html}");
    // The code was exchanged, then the short-lived token for a long-lived one.
    let exchanges = fake.meta_token_requests();
    assert_eq!(exchanges.len(), 2, "{exchanges:?}");
    assert_eq!(exchanges[0]["redirect_uri"], params["redirect_uri"]);
    assert_eq!(exchanges[1]["grant_type"], "fb_exchange_token");

    // Used once: the same return again is refused with a clear page.
    let (status, _, again) = get(&shop, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        again.contains("it was already used, it expired (10 minutes)"),
        "{again}"
    );
    let (status, _, _) = get(&shop, "/oauth/meta/callback?code=AQ-x&state=made-up").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Only what was listed can be picked; a pixel not offered is refused and the sign-in keeps
    // waiting for a listed one.
    let (status, refused) = pick_answer(&shop, "meta", &html, "1010:999999").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        refused.contains("choice must be one of the listed choices"),
        "{refused}"
    );
    assert_eq!(
        pick(&shop, "meta", &html, "1010:5550002").await,
        StatusCode::SEE_OTHER
    );
    // Once.
    assert_eq!(
        pick(&shop, "meta", &html, "1010:5550002").await,
        StatusCode::BAD_REQUEST
    );
    let (_, c) = shop
        .user
        .get(&format!("/v1/domains/{}/connections/meta", shop.domain_id))
        .await;
    assert_eq!(c["connected"], true, "{c}");
    assert_eq!(c["settings"]["pixelId"], "5550002");
    assert_eq!(c["credentialsSaved"], json!(["accessToken"]));
    assert!(!c.to_string().contains("EAA-"), "{c}");
    // Sealed at rest.
    let plain = app
        .count("SELECT count(*) AS n FROM connections WHERE credentials::text LIKE '%EAA-%'")
        .await;
    assert_eq!(plain, 0);

    let id = purchase(&app, &shop, "meta", "M-1").await;
    delivery_when(&shop, &id, |d| d["status"] == "succeeded").await;
    let events = fake.meta_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "5550002");
    // Sent with the long-lived token, not the short-lived one.
    assert!(
        events[0].1["access_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("EAA-long-")),
        "{:?}",
        events[0].1
    );
}

#[tokio::test]
async fn a_revoked_meta_token_holds_deliveries_until_meta_is_connected_again() {
    let fake = FakeSocial::start().await;
    let app = social_app(&fake, RIGHT).await;
    let shop = shop(&app, "meta-revoked@example.com").await;
    connect_by_oauth(&shop, "meta", "1010:5550001").await;
    fake.revoke_all();

    let id = purchase(&app, &shop, "meta", "R-1").await;
    let d = delivery_when(&shop, &id, |d| {
        d["lastError"]
            .as_str()
            .is_some_and(|e| e.starts_with("Reconnect needed"))
    })
    .await;
    // Held, not failed, with Meta's own reason (error 190).
    assert_eq!(d["status"], "pending", "{d}");
    assert!(
        d["lastError"].as_str().expect("error").contains("code 190"),
        "{d}"
    );
    let path = format!("/v1/domains/{}/connections/meta", shop.domain_id);
    let (_, c) = shop.user.get(&path).await;
    assert!(c["reconnectNeeded"].is_string(), "{c}");
    let (_, _, tab) = get(&shop, &format!("/domains/{}/connections", shop.domain_id)).await;
    assert!(tab.contains("Reconnect needed"), "{tab}");
    assert!(tab.contains("Reconnect Meta</a>"), "{tab}");
    assert!(fake.meta_events().is_empty());

    // Connecting again by OAuth sends what was held, with the new token.
    connect_by_oauth(&shop, "meta", "1010:5550001").await;
    let d = delivery_when(&shop, &id, |d| d["status"] == "succeeded").await;
    assert_eq!(d["status"], "succeeded");
    assert_eq!(fake.meta_events().len(), 1);
    let (_, c) = shop.user.get(&path).await;
    assert!(c["reconnectNeeded"].is_null(), "{c}");
}

#[tokio::test]
async fn meta_refusing_the_operators_secret_and_an_unconfigured_app_are_shown() {
    let fake = FakeSocial::start().await;
    // The operator set a wrong app secret: Meta refuses the code exchange.
    let app = social_app(&fake, Some(("wrong-secret", TIKTOK_APP_SECRET))).await;
    let shop = shop(&app, "meta-wrong-secret@example.com").await;
    let callback = provider(&start(&shop, "meta").await).await;
    let (status, _, html) = get(&shop, &callback).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        html.contains("Meta refused the sign-in: Error validating client secret. (code 1)"),
        "{html}"
    );
    let (_, c) = shop
        .user
        .get(&format!("/v1/domains/{}/connections/meta", shop.domain_id))
        .await;
    assert_eq!(c["connected"], false, "{c}");

    // No app at all: no sign-in button, and the page says what to set.
    let bare = social_app(&fake, None).await;
    let shop = self::shop(&bare, "meta-unconfigured@example.com").await;
    let (_, _, tab) = get(&shop, &format!("/domains/{}/connections", shop.domain_id)).await;
    assert!(!tab.contains("Connect Meta</a>"), "{tab}");
    assert!(
        tab.contains("Connect Meta (sign-in) is not configured by the operator of this server: it needs POSTBACK_META_APP_ID and POSTBACK_META_APP_SECRET set"),
        "{tab}"
    );
    let (status, _, page) = get(
        &shop,
        &format!("/domains/{}/connections/meta/connect", shop.domain_id),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Meta is not configured by the operator of this server: it needs POSTBACK_META_APP_ID and POSTBACK_META_APP_SECRET set"),
        "{page}"
    );
}
