//! Connecting Google Ads, Meta and TikTok through the whole OAuth flow in Debian's Chromium:
//! starts the fakes (`fake_google`, `fake_social`) and a server pointed at them with the
//! operator's apps set, then runs `tests/browser/flows/connect_oauth.flow.mjs`, which clicks
//! "Connect …" on a domain's Connections tab, follows the provider's page back, picks from the
//! list and saves. The providers' authorization pages are served as `localhost` while the
//! dashboard is 127.0.0.1, and the user returns from them by clicking "Allow" there: the return
//! to the callback is a cross-site navigation, as with the real providers, so a session cookie
//! the browser would not send there (SameSite=Strict) fails this test.

use std::path::Path;
use std::time::Duration;

use postback_domain::platforms::oauth::{App, Apps};
use postback_domain::platforms::{Platform, PlatformUrls};

use super::fake_google::{FakeGoogle, CLIENT_ID, CLIENT_SECRET};
use super::fake_social::{
    FakeSocial, META_APP_ID, META_APP_SECRET, TIKTOK_APP_ID, TIKTOK_APP_SECRET,
};
use crate::helpers::{fresh_database, test_delivery, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_google_meta_and_tiktok_by_oauth_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("tests/browser/node_modules/playwright-core").is_dir(),
        "browser test dependencies are missing: run `npm ci` in tests/browser (scripts/test does it)"
    );
    let google = FakeGoogle::start("1//unused", Duration::from_secs(3600)).await;
    let social = FakeSocial::start().await;
    google.show_consent_page();
    social.show_consent_page();
    let mut urls = PlatformUrls::all_at(&google.base);
    let cross_site = |base: &str| base.replace("127.0.0.1", "localhost");
    for (env, url) in [
        (
            "POSTBACK_GOOGLE_AUTH_URL",
            format!("{}/o/oauth2/v2/auth", cross_site(&google.base)),
        ),
        ("POSTBACK_META_URL", social.base.clone()),
        (
            "POSTBACK_META_AUTH_URL",
            format!("{}/v26.0/dialog/oauth", cross_site(&social.base)),
        ),
        ("POSTBACK_TIKTOK_URL", social.base.clone()),
        (
            "POSTBACK_TIKTOK_AUTH_URL",
            format!("{}/portal/auth", cross_site(&social.base)),
        ),
    ] {
        urls.set(env, &url).expect("endpoint");
    }
    let apps = Apps::default()
        .with(
            Platform::GoogleAds,
            App {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                token_url: format!("{}/token", google.base),
                developer_token: Some("operator-dev-token".into()),
            },
        )
        .with(
            Platform::Meta,
            App {
                client_id: META_APP_ID.into(),
                client_secret: META_APP_SECRET.into(),
                ..App::default()
            },
        )
        .with(
            Platform::TikTok,
            App {
                client_id: TIKTOK_APP_ID.into(),
                client_secret: TIKTOK_APP_SECRET.into(),
                ..App::default()
            },
        );
    let delivery = postback_runtime::delivery::DeliveryConfig {
        platform_urls: urls,
        apps,
        ..test_delivery()
    };
    let app = TestApp::spawn_with(&fresh_database().await, delivery).await;
    for p in ["meta", "tiktok"] {
        social.allow_redirect(&format!("{}/oauth/{p}/callback", app.base));
    }

    let run = tokio::process::Command::new("node")
        .current_dir(root)
        .args([
            "--test",
            "--test-concurrency=1",
            "tests/browser/flows/connect_oauth.flow.mjs",
        ])
        .env("BASE_URL", &app.base)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser flow finishes within 5 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "browser flow failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("# pass 3"),
        "the three flows ran:\n{stdout}"
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");

    // What the browser did reached the providers and the database: Google's code was exchanged
    // with its PKCE verifier, Meta's short token for a long-lived one, TikTok's auth code once.
    let google_codes: Vec<_> = google
        .token_requests()
        .into_iter()
        .filter(|r| r["grant_type"] == "authorization_code")
        .collect();
    assert_eq!(google_codes.len(), 1, "{google_codes:?}");
    assert!(google_codes[0]
        .get("code_verifier")
        .is_some_and(|v| v.len() >= 43));
    assert!(social
        .meta_token_requests()
        .iter()
        .any(|r| r.get("grant_type").map(String::as_str) == Some("fb_exchange_token")));
    assert_eq!(social.tiktok_token_requests().len(), 1);
    let saved = app
        .count(
            "SELECT count(*) AS n FROM connections WHERE \
             (platform = 'googleads' AND settings->>'conversionAction' = '555222') \
             OR (platform = 'meta' AND settings->>'pixelId' = '5550002') \
             OR (platform = 'tiktok' AND settings->>'pixelCode' = 'CSHOPPIXEL02')",
        )
        .await;
    assert_eq!(saved, 3);
}
