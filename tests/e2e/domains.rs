//! Domains: normalisation, duplicates, plan limit, delete.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{purchase, TestApp};

#[tokio::test]
async fn hostnames_are_normalised_and_duplicates_refused() {
    let app = TestApp::spawn().await;
    let user = app.signup("owner@domains.test").await;
    let (status, body) = user
        .post(
            "/v1/domains",
            json!({ "hostname": "https://Shop.Example.com/" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["hostname"], "shop.example.com");
    let site_id = body["siteId"].as_str().unwrap();
    assert!(site_id.len() >= 12, "a public site id");

    app.sql(&format!(
        "UPDATE workspaces SET plan = 'signal' WHERE id = '{}'",
        user.workspace_id
    ))
    .await;
    let (status, body) = user
        .post("/v1/domains", json!({ "hostname": "shop.example.com" }))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["error"].as_str().unwrap().contains("already added"),
        "{body}"
    );

    let (status, body) = user
        .post("/v1/domains", json!({ "hostname": "not a host" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("hostname"),
        "{body}"
    );
    let (status, body) = user.post("/v1/domains", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("hostname"),
        "{body}"
    );
}

#[tokio::test]
async fn domain_limit_follows_the_plan() {
    let app = TestApp::spawn().await;
    let user = app.signup("owner@domainlimit.test").await;
    user.add_domain("one.example.com").await;
    let (status, body) = user
        .post("/v1/domains", json!({ "hostname": "two.example.com" }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"],
        "The Pulse plan allows 1 domain per workspace"
    );

    app.sql(&format!(
        "UPDATE workspaces SET plan = 'signal' WHERE id = '{}'",
        user.workspace_id
    ))
    .await;
    user.add_domain("two.example.com").await;
    user.add_domain("three.example.com").await;
    let (status, body) = user
        .post("/v1/domains", json!({ "hostname": "four.example.com" }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"],
        "The Signal plan allows 3 domains per workspace"
    );

    app.sql(&format!(
        "UPDATE workspaces SET plan = 'command' WHERE id = '{}'",
        user.workspace_id
    ))
    .await;
    user.add_domain("four.example.com").await;
    let (_, list) = user.get("/v1/domains?limit=2").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        list["items"][0]["hostname"], "four.example.com",
        "newest first"
    );
    let cursor = list["nextCursor"].as_str().expect("more pages");
    let (_, rest) = user
        .get(&format!("/v1/domains?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(rest["items"][1]["hostname"], "one.example.com");
    assert_eq!(rest["nextCursor"], serde_json::Value::Null);
}

#[tokio::test]
async fn deleting_a_domain_removes_its_keys_events_and_deliveries() {
    let receiver = crate::receiver::Receiver::start().await;
    receiver.always(crate::receiver::Reply::ok());
    let app = TestApp::spawn().await;
    let user = app.signup("owner@deldomain.test").await;
    // Signal allows three domains.
    app.sql(&format!(
        "UPDATE workspaces SET plan = 'signal' WHERE id = '{}'",
        user.workspace_id
    ))
    .await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    let (status, hook) = user
        .post(
            "/v1/integrations/webhooks",
            serde_json::json!({"url": receiver.url("/hook")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    // A neighbour's event and delivery, which must stay.
    let other = user.add_domain("other-shop.example.com").await;
    let (_, other_key) = user.add_key(&other, "Backend").await;
    user.add_domain("third.example.com").await;
    for k in [&key, &other_key] {
        assert_eq!(app.inbound(k, purchase()).await.0, StatusCode::OK);
    }
    let ws = &user.workspace_id;
    let rows =
        |table: &str| format!("SELECT count(*) AS n FROM {table} WHERE workspace_id = '{ws}'");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.count(&rows("delivery_attempts")).await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "both deliveries attempted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, _) = user.delete(&format!("/v1/domains/{domain}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        user.get(&format!("/v1/domains/{domain}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.inbound(&key, purchase()).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Its events went, and with them their deliveries and the deliveries' attempts; the other
    // domain's stayed.
    for table in ["events", "deliveries", "delivery_attempts"] {
        assert_eq!(app.count(&rows(table)).await, 1, "{table}");
    }
    // The slot is free again.
    user.add_domain("fourth.example.com").await;
}
