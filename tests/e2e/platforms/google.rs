//! Google connections with refresh tokens against a fake of Google's token endpoint and Ads
//! API: access tokens fetched, cached until shortly before they expire, fetched again on a 401;
//! a revoked token holds deliveries until the connection is reconnected; TOO_RECENT_EVENT waits
//! the 6 hours Google asks for; the test button only validates.

use std::time::Duration;

use postback_domain::platforms::oauth::{App, Apps};
use postback_domain::platforms::{Platform, PlatformUrls};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::fake_google::{FakeGoogle, CLIENT_ID, CLIENT_SECRET};
use crate::attribution::{shop, Shop};
use crate::helpers::{fresh_database, test_delivery, TestApp};

const REFRESH: &str = "1//refresh-token-secret";

async fn app_with(fake: &FakeGoogle, configured: bool) -> TestApp {
    let mut apps = Apps::default();
    if configured {
        apps = apps.with(
            Platform::GoogleAds,
            App {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                token_url: format!("{}/token", fake.base),
                developer_token: Some("operator-dev-token".into()),
            },
        );
    }
    let delivery = postback_runtime::delivery::DeliveryConfig {
        platform_urls: PlatformUrls::all_at(&fake.base),
        apps,
        ..test_delivery()
    };
    TestApp::spawn_with(&fresh_database().await, delivery).await
}

/// A connection through the Google Ads API (`transport: adsapi`).
async fn connect_google(shop: &Shop, refresh_token: &str) -> Value {
    connect_google_via(shop, refresh_token, "adsapi").await
}

async fn connect_google_via(shop: &Shop, refresh_token: &str, transport: &str) -> Value {
    let (status, c) = shop
        .user
        .put(
            &format!("/v1/domains/{}/connections/googleads", shop.domain_id),
            json!({"settings": {"customerId": "123-456-7890", "conversionAction": "555111",
                                "transport": transport},
                   "credentials": {"developerToken": "dev-token", "refreshToken": refresh_token}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    c
}

async fn purchase(app: &TestApp, shop: &Shop, order: &str) -> String {
    let (status, answer) = app
        .inbound(
            &shop.key,
            json!({"email": "Cloudy.SF+shop@GMail.com", "event": "purchase", "value": 20,
                   "currency": "usd", "orderId": order}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["dispatched"], json!(["googleads"]));
    answer["eventId"].as_str().expect("eventId").to_owned()
}

/// The event's one delivery, once `done` says it is where the test expects it.
async fn delivery_when(shop: &Shop, event: &str, done: impl Fn(&Value) -> bool) -> Value {
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

#[tokio::test]
async fn access_tokens_come_from_the_refresh_token_cached_until_they_expire() {
    let fake = FakeGoogle::start(REFRESH, Duration::from_secs(2)).await;
    let app = app_with(&fake, true).await;
    let shop = shop(&app, "google-oauth@example.com").await;
    let c = connect_google(&shop, REFRESH).await;
    // Write-only: which credentials are saved, never their values.
    assert_eq!(
        c["credentialsSaved"],
        json!(["developerToken", "refreshToken"])
    );
    assert!(!c.to_string().contains(REFRESH), "{c}");

    for order in ["A-1", "A-2", "A-3"] {
        let id = purchase(&app, &shop, order).await;
        delivery_when(&shop, &id, |d| d["status"] == "succeeded").await;
    }
    let uploads = fake.wait_uploads(3, Duration::from_secs(5)).await;
    // One token for all three: cached, not fetched per request.
    let tokens = fake.token_requests();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0]["grant_type"], "refresh_token");
    assert_eq!(tokens[0]["refresh_token"], REFRESH);
    assert_eq!(tokens[0]["client_id"], CLIENT_ID);
    // Gmail addresses are hashed the way Google normalises them: dots and +suffix removed
    // (https://developers.google.com/data-manager/api/devguides/concepts/formatting).
    let hashed = super::sha256_hex("cloudysf@gmail.com");
    assert_eq!(
        uploads[0]["conversions"][0]["userIdentifiers"][0]["hashedEmail"],
        hashed.as_str()
    );

    // The token lasts 2 s: after that a new one is fetched before sending.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let id = purchase(&app, &shop, "A-4").await;
    let d = delivery_when(&shop, &id, |d| d["status"] == "succeeded").await;
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(fake.token_requests().len(), 2);
    assert_eq!(
        fake.unauthorized(),
        0,
        "no request went out with an expired token"
    );
}

#[tokio::test]
async fn a_refused_access_token_is_refreshed_once_before_the_attempt_counts() {
    let fake = FakeGoogle::start(REFRESH, Duration::from_secs(3600)).await;
    let app = app_with(&fake, true).await;
    let shop = shop(&app, "google-401@example.com").await;
    connect_google(&shop, REFRESH).await;
    let id = purchase(&app, &shop, "B-1").await;
    delivery_when(&shop, &id, |d| d["status"] == "succeeded").await;

    // Google stops honouring the cached token long before its hour is up.
    fake.invalidate_access_tokens();
    let id = purchase(&app, &shop, "B-2").await;
    let d = delivery_when(&shop, &id, |d| d["status"] == "succeeded").await;
    assert_eq!(d["attempts"], 1, "the 401 did not count as an attempt: {d}");
    assert_eq!(fake.unauthorized(), 1);
    assert_eq!(fake.token_requests().len(), 2);
    assert_eq!(fake.uploads().len(), 2);
}

#[tokio::test]
async fn a_revoked_refresh_token_holds_deliveries_until_the_connection_is_reconnected() {
    let fake = FakeGoogle::start(REFRESH, Duration::from_secs(3600)).await;
    let app = app_with(&fake, true).await;
    let shop = shop(&app, "google-revoked@example.com").await;
    connect_google(&shop, REFRESH).await;
    fake.revoke(REFRESH);

    let id = purchase(&app, &shop, "C-1").await;
    let d = delivery_when(&shop, &id, |d| {
        d["lastError"]
            .as_str()
            .is_some_and(|e| e.starts_with("Reconnect needed"))
    })
    .await;
    // Held, not failed: still pending, due far ahead, with Google's own reason.
    assert_eq!(d["status"], "pending", "{d}");
    assert!(
        d["lastError"]
            .as_str()
            .expect("error")
            .contains("invalid_grant: Token has been expired or revoked."),
        "{d}"
    );
    let due: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(d["nextAttemptAt"].clone()).expect("nextAttemptAt");
    assert!(
        due > chrono::Utc::now() + chrono::Duration::minutes(55),
        "{d}"
    );
    assert!(fake.uploads().is_empty());

    // The connection says so, in the API and on the Connections tab.
    let path = format!("/v1/domains/{}/connections/googleads", shop.domain_id);
    let (_, c) = shop.user.get(&path).await;
    assert!(
        c["reconnectNeeded"]
            .as_str()
            .is_some_and(|r| r.contains("invalid_grant")),
        "{c}"
    );
    let html = shop
        .user
        .client
        .get(format!(
            "{}/domains/{}/connections",
            shop.user.base, shop.domain_id
        ))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(html.contains("Reconnect needed"), "{html}");

    // Reconnecting with a new refresh token sends what was held.
    fake.accept_refresh_token("1//new-refresh-token");
    connect_google(&shop, "1//new-refresh-token").await;
    let d = delivery_when(&shop, &id, |d| d["status"] == "succeeded").await;
    assert!(d["lastError"].is_null() || d["lastError"] == "", "{d}");
    assert_eq!(fake.uploads().len(), 1);
    let (_, c) = shop.user.get(&path).await;
    assert!(c["reconnectNeeded"].is_null(), "{c}");
}

#[tokio::test]
async fn an_operator_without_a_google_app_holds_deliveries_and_says_what_to_set() {
    let fake = FakeGoogle::start(REFRESH, Duration::from_secs(3600)).await;
    let app = app_with(&fake, false).await;
    let shop = shop(&app, "google-unconfigured@example.com").await;
    connect_google(&shop, REFRESH).await;
    let html = shop
        .user
        .client
        .get(format!(
            "{}/domains/{}/connections",
            shop.user.base, shop.domain_id
        ))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        html.contains("Google Ads is not configured by the operator of this server: it needs POSTBACK_GOOGLE_CLIENT_ID and POSTBACK_GOOGLE_CLIENT_SECRET set"),
        "{html}"
    );
    let id = purchase(&app, &shop, "D-1").await;
    let d = delivery_when(&shop, &id, |d| !d["lastError"].is_null()).await;
    assert_eq!(d["status"], "pending", "{d}");
    assert!(
        d["lastError"]
            .as_str()
            .expect("error")
            .contains("set POSTBACK_GOOGLE_CLIENT_ID and POSTBACK_GOOGLE_CLIENT_SECRET"),
        "{d}"
    );
    assert!(fake.token_requests().is_empty());
}

#[tokio::test]
async fn refused_app_credentials_hold_deliveries_too() {
    let fake = FakeGoogle::start(REFRESH, Duration::from_secs(3600)).await;
    let delivery = postback_runtime::delivery::DeliveryConfig {
        platform_urls: PlatformUrls::all_at(&fake.base),
        apps: Apps::default().with(
            Platform::GoogleAds,
            App {
                client_id: CLIENT_ID.into(),
                client_secret: "a-wrong-secret".into(),
                token_url: format!("{}/token", fake.base),
                developer_token: None,
            },
        ),
        ..test_delivery()
    };
    let app = TestApp::spawn_with(&fresh_database().await, delivery).await;
    let shop = shop(&app, "google-bad-app@example.com").await;
    connect_google(&shop, REFRESH).await;
    let id = purchase(&app, &shop, "F-1").await;
    let d = delivery_when(&shop, &id, |d| !d["lastError"].is_null()).await;
    assert_eq!(d["status"], "pending", "{d}");
    let error = d["lastError"].as_str().expect("error");
    assert!(error.starts_with("Reconnect needed"), "{error}");
    assert!(error.contains("invalid_client"), "{error}");
    assert!(fake.uploads().is_empty());
}

#[tokio::test]
async fn too_recent_event_waits_the_six_hours_google_asks_for() {
    let fake = FakeGoogle::start(REFRESH, Duration::from_secs(3600)).await;
    let app = app_with(&fake, true).await;
    let shop = shop(&app, "google-too-recent@example.com").await;
    connect_google(&shop, REFRESH).await;
    fake.too_recent(1);
    let before = chrono::Utc::now();
    let id = purchase(&app, &shop, "E-1").await;
    let d = delivery_when(&shop, &id, |d| !d["lastError"].is_null()).await;
    assert_eq!(d["status"], "pending", "{d}");
    let error = d["lastError"].as_str().expect("error");
    assert!(error.starts_with("Waiting until "), "{error}");
    assert!(error.contains("less than 6 hours ago"), "{error}");
    let due: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(d["nextAttemptAt"].clone()).expect("nextAttemptAt");
    let wait = due - before;
    assert!(
        wait > chrono::Duration::minutes(359) && wait < chrono::Duration::minutes(361),
        "{wait:?}"
    );
    // Not retried on the short schedule meanwhile.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(fake.uploads().len(), 1);
}

#[tokio::test]
async fn the_google_test_button_only_validates() {
    let fake = FakeGoogle::start(REFRESH, Duration::from_secs(3600)).await;
    let app = app_with(&fake, true).await;
    let shop = shop(&app, "google-test@example.com").await;
    connect_google(&shop, REFRESH).await;
    let (status, r) = shop
        .user
        .post(
            &format!("/v1/domains/{}/connections/googleads/test", shop.domain_id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["validateOnly"], true, "{r}");
    // Validated by the fake (the same rules as real uploads) but nothing recorded.
    assert!(fake.uploads().is_empty());
    assert_eq!(fake.token_requests().len(), 1);
}

#[tokio::test]
async fn the_data_manager_api_is_the_default_transport() {
    let fake = FakeGoogle::start(REFRESH, Duration::from_secs(3600)).await;
    let app = app_with(&fake, true).await;
    let shop = shop(&app, "google-dm@example.com").await;
    // No transport and no developer token: the Data Manager API needs neither.
    let (status, c) = shop
        .user
        .put(
            &format!("/v1/domains/{}/connections/googleads", shop.domain_id),
            json!({"settings": {"customerId": "123-456-7890", "conversionAction": "555111"},
                   "credentials": {"refreshToken": REFRESH}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["settings"]["transport"], "datamanager");
    let (status, answer) = app
        .inbound(
            &shop.key,
            json!({"email": "Jane.Doe+x@gmail.com", "event": "purchase", "value": 12.5,
                   "currency": "eur", "orderId": "DM-1", "phone": "+44 20 7946 0958",
                   "consent": {"adUserData": "granted", "adPersonalization": "denied"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let id = answer["eventId"].as_str().expect("id").to_owned();
    let d = delivery_when(&shop, &id, |d| d["status"] == "succeeded").await;
    // The platform's own answer (the request id of the asynchronous ingestion) is kept.
    assert!(
        d["attemptLog"][0]["responseBody"]
            .as_str()
            .is_some_and(|b| b.contains("req-1")),
        "{d}"
    );
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1);
    let b = &uploads[0];
    assert_eq!(
        b["destinations"][0]["operatingAccount"],
        json!({"accountType": "GOOGLE_ADS", "accountId": "1234567890"})
    );
    assert_eq!(b["destinations"][0]["productDestinationId"], "555111");
    let e = &b["events"][0];
    assert_eq!(e["transactionId"], "DM-1");
    // The inbound consent, as Google's ConsentStatus.
    assert_eq!(
        e["consent"],
        json!({"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_DENIED"})
    );
    assert_eq!(e["currency"], "EUR");
    assert_eq!(
        e["userData"]["userIdentifiers"][0]["emailAddress"],
        super::sha256_hex("janedoe@gmail.com").as_str()
    );
    assert_eq!(
        e["userData"]["userIdentifiers"][1]["phoneNumber"],
        super::sha256_hex("+442079460958").as_str()
    );
}

/// The Connections tab's "Connect Google Ads": 302 to Google with state and PKCE, back to the
/// callback, a pick from the lists fetched with the new token, and the connection saved with
/// the refresh token; the state works once, in the session that started it.
#[tokio::test]
async fn connect_google_ads_by_oauth_and_pick_the_conversion_action() {
    let fake = FakeGoogle::start(REFRESH, Duration::from_secs(3600)).await;
    let app = app_with(&fake, true).await;
    let shop = shop(&app, "google-connect@example.com").await;
    let page = |path: String| {
        let client = shop.user.client.clone();
        let url = format!("{}{path}", shop.user.base);
        async move { client.get(url).send().await.expect("get") }
    };
    let tab = page(format!("/domains/{}/connections", shop.domain_id))
        .await
        .text()
        .await
        .expect("html");
    assert!(tab.contains("Connect Google Ads"), "{tab}");

    let start = page(format!(
        "/domains/{}/connections/googleads/connect",
        shop.domain_id
    ))
    .await;
    assert_eq!(start.status(), StatusCode::FOUND);
    let to = start.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(
        to.starts_with(&format!("{}/o/oauth2/v2/auth?", fake.base)),
        "{to}"
    );
    let params: std::collections::HashMap<String, String> = url::Url::parse(&to)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(
        params["redirect_uri"],
        format!("{}/oauth/googleads/callback", app.base)
    );
    assert_eq!(params["code_challenge_method"], "S256");
    assert!(params["state"].len() >= 40, "{params:?}");

    // Google's page sends the user back with a code.
    let google = crate::helpers::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let back = google.get(&to).send().await.expect("auth");
    assert_eq!(back.status(), StatusCode::FOUND);
    let callback = back.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let path = callback.trim_start_matches(&app.base).to_owned();

    // Another user's session cannot use this state.
    let other = self::shop(&app, "google-connect-other@example.com").await;
    let stolen = other
        .user
        .client
        .get(&callback)
        .send()
        .await
        .expect("callback");
    assert_eq!(stolen.status(), StatusCode::BAD_REQUEST);
    assert!(stolen.text().await.expect("html").contains("is not valid"));

    let picked = page(path.clone()).await;
    assert_eq!(picked.status(), StatusCode::OK);
    let html = picked.text().await.expect("html");
    assert!(html.contains("123-456-7890 › Purchase (555111)"), "{html}");
    assert!(html.contains("123-456-7890 › Lead (555222)"), "{html}");
    // Used once: the same return again is refused with a clear page.
    let again = page(path).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(again.text().await.expect("html").contains(
        "it was already used, it expired (10 minutes), or it was started in another session"
    ));
    // A made-up state too.
    let made_up = page("/oauth/googleads/callback?code=x&state=made-up".into()).await;
    assert_eq!(made_up.status(), StatusCode::BAD_REQUEST);

    let field = |name: &str| {
        let at = html.find(&format!("name=\"{name}\" value=\"")).expect(name);
        let rest = &html[at + name.len() + 15..];
        rest[..rest.find('"').expect("quote")].to_owned()
    };
    let (csrf, flow) = (field("csrf_token"), field("flow"));
    let saved = shop
        .user
        .client
        .post(format!("{}/oauth/googleads/pick", shop.user.base))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("flow", flow.as_str()),
            ("choice", "1234567890:555222"),
        ])
        .send()
        .await
        .expect("pick");
    assert_eq!(
        saved.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        saved.text().await
    );
    let (_, c) = shop
        .user
        .get(&format!(
            "/v1/domains/{}/connections/googleads",
            shop.domain_id
        ))
        .await;
    assert_eq!(c["connected"], true, "{c}");
    assert_eq!(c["settings"]["customerId"], "1234567890");
    assert_eq!(c["settings"]["conversionAction"], "555222");
    assert_eq!(c["settings"]["transport"], "datamanager");
    assert_eq!(c["credentialsSaved"], json!(["refreshToken"]));
    // The pick writes the connection's audit entry (audit.rs exempts the route for this test).
    let audited = app
        .count(
            "SELECT count(*) AS n FROM audit_log WHERE action = 'connection.save' \
             AND after::text LIKE '%\"via\": \"oauth\"%'",
        )
        .await;
    assert_eq!(audited, 1);

    // The refresh token from the code sends events.
    let (_, answer) = app
        .inbound(
            &shop.key,
            json!({"email": "c@example.com", "event": "purchase", "orderId": "O-1"}),
        )
        .await;
    let id = answer["eventId"].as_str().expect("id").to_owned();
    delivery_when(&shop, &id, |d| d["status"] == "succeeded").await;
    let refreshes: Vec<_> = fake
        .token_requests()
        .into_iter()
        .filter(|r| r["grant_type"] == "refresh_token")
        .collect();
    assert_eq!(refreshes.len(), 1);
    assert!(refreshes[0]["refresh_token"].starts_with("1//from-code-"));
}

/// Data Manager processes events after answering `{"requestId"}`: the request status is asked
/// for later (requestStatus:retrieve, authorized like the upload) until Google reports an
/// outcome, which the delivery shows in the API and on the event page; a failed processing
/// fails the delivery with Google's reason.
#[tokio::test]
async fn data_manager_request_status_is_retrieved_later_and_recorded_on_the_delivery() {
    let fake = FakeGoogle::start(REFRESH, Duration::from_secs(3600)).await;
    // Two checks answer PROCESSING before the outcome.
    fake.processing_for(2);
    let app = app_with(&fake, true).await;
    let shop = shop(&app, "google-dm-status@example.com").await;
    connect_google_via(&shop, REFRESH, "datamanager").await;

    let id = purchase(&app, &shop, "DM-S1").await;
    let d = delivery_when(&shop, &id, |d| d["platformStatus"]["status"] == "succeeded").await;
    assert_eq!(d["status"], "succeeded", "{d}");
    assert_eq!(d["platformStatus"]["requestId"], "req-1");
    assert_eq!(
        d["platformStatus"]["detail"],
        "Google Data Manager: SUCCESS, 1 event ingested"
    );
    assert!(d["platformStatus"]["checkedAt"].is_string(), "{d}");
    // Asked until it was known, then no more.
    assert_eq!(fake.status_checks(), vec!["req-1"; 3]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(fake.status_checks().len(), 3);

    // The event page shows what Google reported.
    let (_, page) = shop.user.page(&format!("/events/{id}")).await;
    assert!(
        page.contains("Processing succeeded: Google Data Manager: SUCCESS, 1 event ingested"),
        "{page}"
    );

    // Google fails the processing: the delivery fails, with Google's reason.
    fake.processing_for(0);
    fake.fail_processing(Some("PROCESSING_ERROR_REASON_INVALID_GCLID"));
    let id = purchase(&app, &shop, "DM-S2").await;
    let d = delivery_when(&shop, &id, |d| d["status"] == "failed").await;
    let why = "Google Data Manager: FAILED: PROCESSING_ERROR_REASON_INVALID_GCLID (1 event)";
    assert_eq!(d["lastError"], why, "{d}");
    assert_eq!(d["platformStatus"]["status"], "failed");
    assert_eq!(d["platformStatus"]["requestId"], "req-2");
    let (_, page) = shop.user.page(&format!("/events/{id}")).await;
    assert!(
        page.contains("PROCESSING_ERROR_REASON_INVALID_GCLID"),
        "{page}"
    );

    // Google never says: after 24 hours the outcome is recorded as unknown, and the delivery
    // stays as sent.
    fake.fail_processing(None);
    fake.processing_for(u32::MAX);
    let id = purchase(&app, &shop, "DM-S3").await;
    delivery_when(&shop, &id, |d| {
        d["platformStatus"]["status"] == "processing"
    })
    .await;
    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.conn().await;
        diesel::sql_query(
            "UPDATE platform_requests SET created_at = now() - interval '25 hours', \
             next_check_at = now() WHERE request_id = 'req-3'",
        )
        .execute(&mut conn)
        .await
        .expect("age the request");
    }
    let d = delivery_when(&shop, &id, |d| d["platformStatus"]["status"] == "unknown").await;
    assert_eq!(d["status"], "succeeded", "{d}");
    assert_eq!(
        d["platformStatus"]["detail"],
        "Google Data Manager reported no outcome within 24 hours"
    );

    // Google Ads API uploads are answered at once: nothing is followed for them.
    let checks = fake.status_checks().len();
    connect_google_via(&shop, REFRESH, "adsapi").await;
    let id = purchase(&app, &shop, "ADS-1").await;
    let d = delivery_when(&shop, &id, |d| d["status"] == "succeeded").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, e) = shop.user.get(&format!("/v1/events/{id}")).await;
    assert!(e["deliveries"][0].get("platformStatus").is_none(), "{d}");
    assert_eq!(fake.status_checks().len(), checks);
}
