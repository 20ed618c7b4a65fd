//! Forms need their CSRF token; cookie-authenticated JSON from another site is refused.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{csrf_in, TestApp};

#[tokio::test]
async fn form_posts_without_the_token_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.signup("csrf@example.com").await;
    for token in [None, Some("0000"), Some("")] {
        let mut form = vec![("hostname", "shop.example.com")];
        if let Some(t) = token {
            form.push(("csrf_token", t));
        }
        let resp = user
            .client
            .post(app.url("/domains"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "token {token:?}");
    }
    let (_, list) = user.get("/v1/domains").await;
    assert_eq!(list["items"], json!([]), "nothing was created");

    let (_, html) = user.page("/domains").await;
    let resp = user
        .client
        .post(app.url("/domains"))
        .form(&[
            ("csrf_token", csrf_in(&html).as_str()),
            ("hostname", "shop.example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, list) = user.get("/v1/domains").await;
    assert_eq!(list["items"][0]["hostname"], "shop.example.com");

    // Log-in form too (login CSRF).
    let resp = app
        .browser()
        .post(app.url("/login"))
        .form(&[
            ("email", "csrf@example.com"),
            ("password", "correct horse 1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn cookie_json_from_another_site_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.signup("origin@example.com").await;
    let attempts = [
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
    ];
    for (header, value) in attempts {
        let resp = user
            .client
            .post(app.url("/v1/domains"))
            .header(header, value)
            .json(&json!({ "hostname": "evil.example.com" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{header}: {value}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("Cross-site"));
    }
    let resp = user
        .client
        .post(app.url("/v1/domains"))
        .header("Origin", app.base.as_str())
        .header("Sec-Fetch-Site", "same-origin")
        .json(&json!({ "hostname": "shop.example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "same-origin requests pass"
    );
}
