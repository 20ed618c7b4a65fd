//! Another workspace's ids answer 404, on the API and on the pages, and change nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{csrf_in, purchase, TestApp};

#[tokio::test]
async fn other_tenants_ids_are_not_found() {
    let app = TestApp::spawn().await;
    let alice = app.signup("alice@tenant.test").await;
    let bob = app.signup("bob@tenant.test").await;
    let domain = alice.add_domain("alice.example.com").await;
    let (key_id, key) = alice.add_key(&domain, "Alice backend").await;
    let (_, ev) = app.inbound(&key, purchase()).await;
    let event_id = ev["eventId"].as_str().unwrap().to_owned();

    for path in [
        format!("/v1/domains/{domain}"),
        format!("/v1/domains/{domain}/keys"),
        format!("/v1/events/{event_id}"),
    ] {
        let (status, body) = bob.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    for path in [
        format!("/v1/domains/{domain}/keys"),
        format!("/v1/keys/{key_id}/revoke"),
        format!("/v1/keys/{key_id}/restore"),
    ] {
        let (status, _) = bob.post(&path, json!({ "name": "x" })).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        bob.delete(&format!("/v1/keys/{key_id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        bob.delete(&format!("/v1/domains/{domain}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, events) = bob.get(&format!("/v1/events?domainId={domain}")).await;
    assert_eq!(events["items"], json!([]));

    for path in [
        format!("/domains/{domain}/keys"),
        format!("/domains/{domain}/delete"),
        format!("/keys/{key_id}/revoke"),
        format!("/keys/{key_id}/delete"),
    ] {
        let (status, html) = bob.page(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!html.contains("alice.example.com"), "{path}");
    }
    let (_, html) = bob.page("/domains").await;
    let csrf = csrf_in(&html);
    for path in [
        format!("/keys/{key_id}/revoke"),
        format!("/keys/{key_id}/delete"),
        format!("/domains/{domain}/delete"),
    ] {
        let resp = bob
            .client
            .post(app.url(&path))
            .form(&[("csrf_token", &csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }

    // Alice's key still works and her domain is intact.
    assert_eq!(app.inbound(&key, purchase()).await.0, StatusCode::OK);
    assert_eq!(
        alice.get(&format!("/v1/domains/{domain}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        bob.get("/v1/domains/not-a-uuid").await.0,
        StatusCode::NOT_FOUND
    );
}
