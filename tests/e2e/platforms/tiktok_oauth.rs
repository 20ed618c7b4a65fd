//! "Connect TikTok" by TikTok for Business's advertiser authorization against the fake
//! (`fake_social`): the authorization page, the auth code exchange, picking the advertiser ›
//! pixel from lists fetched with the new token, events delivered with it; a reused or unknown
//! state refused; a revoked token (TikTok code 40105) holds deliveries and connecting again
//! releases them.

use reqwest::StatusCode;
use serde_json::json;

use super::fake_social::{FakeSocial, META_APP_SECRET, TIKTOK_APP_ID, TIKTOK_APP_SECRET};
use super::meta_oauth::{
    connect_by_oauth, delivery_when, get, pick, provider, purchase, query, social_app, start, RIGHT,
};
use crate::attribution::shop;

#[tokio::test]
async fn connect_tiktok_by_oauth_pick_the_pixel_and_deliver_with_the_new_token() {
    let fake = FakeSocial::start().await;
    let app = social_app(&fake, RIGHT).await;
    let shop = shop(&app, "tiktok-connect@example.com").await;
    let (_, _, tab) = get(&shop, &format!("/domains/{}/connections", shop.domain_id)).await;
    assert!(tab.contains("Connect TikTok</a>"), "{tab}");

    let to = start(&shop, "tiktok").await;
    assert!(
        to.starts_with(&format!("{}/portal/auth?", fake.base)),
        "{to}"
    );
    let params = query(&to);
    assert_eq!(params["app_id"], TIKTOK_APP_ID);
    assert_eq!(
        params["redirect_uri"],
        format!("{}/oauth/tiktok/callback", app.base)
    );
    assert!(params["state"].len() >= 40, "{params:?}");

    let callback = provider(&to).await;
    let back = query(&callback);
    assert!(back.contains_key("auth_code"), "{callback}");
    let (status, _, html) = get(&shop, &callback).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("Shop Ads (6900000000000000001) › Web (CSHOPPIXEL01)"),
        "{html}"
    );
    assert!(
        html.contains("Shop Ads (6900000000000000001) › Outlet (CSHOPPIXEL02)"),
        "{html}"
    );
    assert!(!html.contains("tt-access-"), "{html}");
    let exchanges = fake.tiktok_token_requests();
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    assert_eq!(
        exchanges[0],
        json!({"app_id": TIKTOK_APP_ID, "secret": TIKTOK_APP_SECRET, "auth_code": back["auth_code"]})
    );

    // Reused: refused with a clear page, and the code is not exchanged again.
    let (status, _, again) = get(&shop, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        again.contains("it was already used, it expired (10 minutes)"),
        "{again}"
    );
    assert_eq!(fake.tiktok_token_requests().len(), 1);

    assert_eq!(
        pick(&shop, "tiktok", &html, "6900000000000000001:CSHOPPIXEL02").await,
        StatusCode::SEE_OTHER
    );
    let (_, c) = shop
        .user
        .get(&format!(
            "/v1/domains/{}/connections/tiktok",
            shop.domain_id
        ))
        .await;
    assert_eq!(c["connected"], true, "{c}");
    assert_eq!(c["settings"]["pixelCode"], "CSHOPPIXEL02");
    assert_eq!(c["credentialsSaved"], json!(["accessToken"]));
    assert!(!c.to_string().contains("tt-access-"), "{c}");

    let id = purchase(&app, &shop, "tiktok", "T-1").await;
    delivery_when(&shop, &id, |d| d["status"] == "succeeded").await;
    let events = fake.tiktok_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_source_id"], "CSHOPPIXEL02");
    assert_eq!(events[0]["data"][0]["event"], "CompletePayment");
}

#[tokio::test]
async fn a_revoked_tiktok_token_holds_deliveries_until_tiktok_is_connected_again() {
    let fake = FakeSocial::start().await;
    let app = social_app(&fake, RIGHT).await;
    let shop = shop(&app, "tiktok-revoked@example.com").await;
    connect_by_oauth(&shop, "tiktok", "6900000000000000001:CSHOPPIXEL01").await;
    fake.revoke_all();

    let id = purchase(&app, &shop, "tiktok", "R-1").await;
    let d = delivery_when(&shop, &id, |d| {
        d["lastError"]
            .as_str()
            .is_some_and(|e| e.starts_with("Reconnect needed"))
    })
    .await;
    assert_eq!(d["status"], "pending", "{d}");
    assert!(
        d["lastError"]
            .as_str()
            .expect("error")
            .contains("TikTok code 40105: Access token is incorrect or has been revoked."),
        "{d}"
    );
    let path = format!("/v1/domains/{}/connections/tiktok", shop.domain_id);
    let (_, c) = shop.user.get(&path).await;
    assert!(c["reconnectNeeded"].is_string(), "{c}");
    assert!(fake.tiktok_events().is_empty());

    connect_by_oauth(&shop, "tiktok", "6900000000000000001:CSHOPPIXEL01").await;
    delivery_when(&shop, &id, |d| d["status"] == "succeeded").await;
    assert_eq!(fake.tiktok_events().len(), 1);
    let (_, c) = shop.user.get(&path).await;
    assert!(c["reconnectNeeded"].is_null(), "{c}");
}

#[tokio::test]
async fn tiktok_refusing_the_operators_secret_and_an_unconfigured_app_are_shown() {
    let fake = FakeSocial::start().await;
    // A wrong app secret: TikTok refuses the code exchange; nothing is saved.
    let app = social_app(&fake, Some((META_APP_SECRET, "wrong-secret"))).await;
    let shop = self::shop(&app, "tiktok-wrong-secret@example.com").await;
    let callback = provider(&start(&shop, "tiktok").await).await;
    let (status, _, html) = get(&shop, &callback).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        html.contains(
            "TikTok refused the sign-in: TikTok code 40001: The app_id or secret is not valid"
        ),
        "{html}"
    );
    let (_, c) = shop
        .user
        .get(&format!(
            "/v1/domains/{}/connections/tiktok",
            shop.domain_id
        ))
        .await;
    assert_eq!(c["connected"], false, "{c}");

    let app = social_app(&fake, None).await;
    let shop = self::shop(&app, "tiktok-unconfigured@example.com").await;
    let (_, _, tab) = get(&shop, &format!("/domains/{}/connections", shop.domain_id)).await;
    assert!(!tab.contains("Connect TikTok</a>"), "{tab}");
    assert!(
        tab.contains("Connect TikTok (sign-in) is not configured by the operator of this server: it needs POSTBACK_TIKTOK_APP_ID and POSTBACK_TIKTOK_APP_SECRET set"),
        "{tab}"
    );
    let (status, _, page) = get(
        &shop,
        &format!("/domains/{}/connections/tiktok/connect", shop.domain_id),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("TikTok is not configured by the operator of this server: it needs POSTBACK_TIKTOK_APP_ID and POSTBACK_TIKTOK_APP_SECRET set"),
        "{page}"
    );
}
