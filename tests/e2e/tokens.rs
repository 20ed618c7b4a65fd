//! Personal access tokens (`pb_…`): created once, stored hashed, usable as `Authorization:
//! Bearer` on the management API, scoped to their workspace, revocable, rate limited.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

async fn with_token(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value, Option<String>) {
    let resp = crate::helpers::http_client()
        .get(app.url(path))
        .header("Authorization", format!("Bearer {token}"))
        // A token carries no ambient browser credentials: the cross-site check does not apply.
        .header("Origin", "https://elsewhere.example")
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    (status, resp.json().await.unwrap_or(Value::Null), retry)
}

#[tokio::test]
async fn a_token_is_shown_once_stored_hashed_and_acts_for_its_workspace() {
    let app = TestApp::spawn().await;
    let user = app.signup("tokens@example.com").await;
    user.add_domain("tokens.example.com").await;

    let (status, created) = user
        .post("/v1/tokens", json!({"name": "Deploy script"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("pb_") && token.len() == 43, "{token}");
    assert_eq!(created["name"], "Deploy script");

    // Bearer works on the API, as this user in this workspace.
    let (status, domains, _) = with_token(&app, &token, "/v1/domains").await;
    assert_eq!(status, StatusCode::OK, "{domains}");
    assert_eq!(domains["items"][0]["hostname"], "tokens.example.com");

    // Listed without its value, with when it was last used.
    let (_, list, _) = with_token(&app, &token, "/v1/tokens").await;
    let item = &list["items"][0];
    assert_eq!(item["name"], "Deploy script");
    assert!(item["lastUsedAt"].is_string(), "{item}");
    assert!(!list.to_string().contains(&token));
    assert!(token.starts_with(item["prefix"].as_str().expect("prefix")));

    // Only the hash is stored.
    let mut conn = app.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use postback_domain::schema::api_tokens;
    let hash: Vec<u8> = api_tokens::table
        .select(api_tokens::token_hash)
        .first(&mut conn)
        .await
        .expect("row");
    use sha2::Digest;
    assert_eq!(hash, sha2::Sha256::digest(token.as_bytes()).to_vec());

    // Another workspace neither sees nor revokes it.
    let other = app.signup("tokens.other@example.com").await;
    let (_, theirs) = other.get("/v1/tokens").await;
    assert_eq!(theirs["items"], json!([]));
    let id = created["id"].as_str().expect("id");
    let (status, _) = other.delete(&format!("/v1/tokens/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = with_token(&app, &token, "/v1/domains").await;
    assert_eq!(status, StatusCode::OK);

    // Revoked: refused at once.
    let (status, _) = user.delete(&format!("/v1/tokens/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body, _) = with_token(&app, &token, "/v1/domains").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"]
        .as_str()
        .expect("error")
        .contains("Invalid access token"));

    // Nonsense and missing names.
    let (status, _, _) = with_token(&app, "pb_nope", "/v1/domains").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = user.post("/v1/tokens", json!({"name": "  "})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().expect("error").contains("name"));
}

#[tokio::test]
async fn a_token_over_its_rate_limit_gets_429_with_retry_after() {
    let app = TestApp::spawn().await;
    let user = app.signup("ratelimit@example.com").await;
    let (_, created) = user.post("/v1/tokens", json!({"name": "Busy"})).await;
    let token = created["token"].as_str().expect("token").to_owned();
    let client = crate::helpers::http_client();
    let mut first_refused = None;
    for i in 1..=601 {
        let resp = client
            .get(app.url("/v1/me"))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .expect("request");
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .expect("header")
                .parse()
                .expect("seconds");
            assert!((1..=60).contains(&retry));
            first_refused = Some(i);
            break;
        }
        assert_eq!(resp.status(), StatusCode::OK, "request {i}");
    }
    assert_eq!(first_refused, Some(601));
    // The session cookie is not limited by the token's budget.
    let (status, _) = user.get("/v1/me").await;
    assert_eq!(status, StatusCode::OK);
}
