//! Inbound integration keys (seed 001) as a client of `POST /__cc/inbound` sees them.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{purchase, TestApp};

const LIMIT_MESSAGE: &str = "The Pulse plan allows 2 active inbound integration keys per domain";

#[tokio::test]
async fn key_lifecycle_works_revoke_restore_delete() {
    let app = TestApp::spawn().await;
    let user = app.signup("owner@lifecycle.test").await;
    let domain = user.add_domain("shop.example.com").await;
    let (key_id, key) = user.add_key(&domain, "Zapier Integration").await;

    let (status, body) = app.inbound(&key, purchase()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(body["dispatched"], json!([]));
    let event_id = body["eventId"].as_str().expect("eventId").to_owned();
    let (status, event) = user.get(&format!("/v1/events/{event_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(event["event"], "purchase");
    assert_eq!(event["email"], "customer@example.com");
    assert_eq!(event["domainId"], domain.as_str());

    let (status, body) = user
        .post(&format!("/v1/keys/{key_id}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "revoked");
    let (status, body) = app.inbound(&key, purchase()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({ "error": "Invalid API key" }));

    let (status, body) = user
        .post(&format!("/v1/keys/{key_id}/restore"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "active");
    let (status, _) = app.inbound(&key, purchase()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the same key value works again after restore"
    );

    let (status, _) = user.delete(&format!("/v1/keys/{key_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.inbound(&key, purchase()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "Invalid API key");
    let (status, _) = user
        .post(&format!("/v1/keys/{key_id}/restore"), json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a deleted key cannot be restored"
    );

    let (_, list) = user.get(&format!("/v1/events?domainId={domain}")).await;
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(2),
        "two accepted events stored"
    );
}

#[tokio::test]
async fn keys_have_the_seed_format_and_are_shown_once() {
    let app = TestApp::spawn().await;
    let user = app.signup("owner@format.test").await;
    let domain = user.add_domain("shop.example.com").await;
    let (status, created) = user
        .post(
            &format!("/v1/domains/{domain}/keys"),
            json!({ "name": "CRM Webhook" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let key = created["key"].as_str().expect("full key in the 201");
    assert_eq!(key.len(), 43);
    assert!(key.starts_with("cc_"));
    assert!(key[3..]
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(created["prefix"], &key[..11]);
    assert_eq!(created["masked"], format!("{}••••", &key[..11]));
    assert_eq!(created["status"], "active");
    assert_eq!(created["lastUsedAt"], serde_json::Value::Null);

    let (_, list) = user.get(&format!("/v1/domains/{domain}/keys")).await;
    let text = list.to_string();
    assert!(!text.contains(key), "the list never shows the full key");
    assert_eq!(list["items"][0]["masked"], format!("{}••••", &key[..11]));
    assert!(list["items"][0].get("key").is_none());

    let (_, html) = user.page(&format!("/domains/{domain}/keys")).await;
    assert!(
        !html.contains(key),
        "the keys page never shows an API-created key"
    );
    assert!(html.contains(&format!("{}••••", &key[..11])));

    // Only the hash is stored.
    let mut conn = app.conn().await;
    let stored: Vec<Vec<u8>> = postback_domain::schema::inbound_keys::table
        .select(postback_domain::schema::inbound_keys::key_hash)
        .load(&mut conn)
        .await
        .expect("hashes");
    use sha2::Digest;
    assert_eq!(stored, vec![sha2::Sha256::digest(key.as_bytes()).to_vec()]);
}

#[tokio::test]
async fn missing_malformed_and_unknown_keys_are_refused_and_bearer_works() {
    let app = TestApp::spawn().await;
    let user = app.signup("owner@auth.test").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    let client = crate::helpers::http_client();

    let resp = client
        .post(app.url("/__cc/inbound"))
        .json(&purchase())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["error"],
        "Invalid API key"
    );
    for bad in [
        "cc_123",
        "not a key",
        "cc_0000000000000000000000000000000000000000",
        &key.to_uppercase(),
    ] {
        let (status, body) = app.inbound(bad, purchase()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
        assert_eq!(body["error"], "Invalid API key");
    }
    let resp = client
        .post(app.url("/v1/inbound"))
        .header("Authorization", format!("Bearer {key}"))
        .json(&purchase())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "Bearer form on the /v1 alias"
    );

    let (status, body) = app.inbound(&key, json!({ "event": "purchase" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("email"), "{body}");
    let (status, body) = app.inbound(&key, json!({ "email": "a@b.com" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("event"), "{body}");
}

#[tokio::test]
async fn active_key_limit_applies_to_create_and_restore() {
    let app = TestApp::spawn().await;
    let user = app.signup("owner@limits.test").await;
    let domain = user.add_domain("shop.example.com").await;
    let (first, _) = user.add_key(&domain, "one").await;
    user.add_key(&domain, "two").await;

    let (status, body) = user
        .post(
            &format!("/v1/domains/{domain}/keys"),
            json!({ "name": "three" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], LIMIT_MESSAGE);

    user.post(&format!("/v1/keys/{first}/revoke"), json!({}))
        .await;
    let (third, _) = user.add_key(&domain, "three").await;
    let (status, body) = user
        .post(&format!("/v1/keys/{first}/restore"), json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "restoring past the limit is refused"
    );
    assert_eq!(body["error"], LIMIT_MESSAGE);

    // An upgrade lifts the limit at once.
    app.sql(&format!(
        "UPDATE workspaces SET plan = 'signal' WHERE id = '{}'",
        user.workspace_id
    ))
    .await;
    let (status, _) = user
        .post(&format!("/v1/keys/{first}/restore"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);

    // A downgrade deletes nothing: all three keep working, but nothing new can be added.
    app.sql(&format!(
        "UPDATE workspaces SET plan = 'pulse' WHERE id = '{}'",
        user.workspace_id
    ))
    .await;
    let (_, list) = user.get(&format!("/v1/domains/{domain}/keys")).await;
    let active = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["status"] == "active")
        .count();
    assert_eq!(active, 3);
    let (status, body) = user
        .post(
            &format!("/v1/domains/{domain}/keys"),
            json!({ "name": "four" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], LIMIT_MESSAGE);
    let (status, _) = user
        .post(&format!("/v1/keys/{third}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);

    let (_, html) = user.page(&format!("/domains/{domain}/keys")).await;
    assert!(
        html.contains("2 of 2 keys used"),
        "usage shown next to the Create button"
    );
}

#[tokio::test]
async fn revocation_is_seen_by_another_instance_on_its_next_request() {
    let app = TestApp::spawn().await;
    let other = TestApp::spawn_on(&app.db_url).await;
    let user = app.signup("owner@instances.test").await;
    let domain = user.add_domain("shop.example.com").await;
    let (key_id, key) = user.add_key(&domain, "Backend").await;

    assert_eq!(other.inbound(&key, purchase()).await.0, StatusCode::OK);
    let (status, _) = user
        .post(&format!("/v1/keys/{key_id}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = other.inbound(&key, purchase()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    user.post(&format!("/v1/keys/{key_id}/restore"), json!({}))
        .await;
    assert_eq!(other.inbound(&key, purchase()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn last_used_is_written_at_most_once_a_minute() {
    use postback_domain::schema::inbound_keys::dsl as k;
    let app = TestApp::spawn().await;
    let user = app.signup("owner@lastused.test").await;
    let domain = user.add_domain("shop.example.com").await;
    let (key_id, key) = user.add_key(&domain, "Backend").await;
    let key_uuid: uuid::Uuid = key_id.parse().unwrap();
    let last_used = || async {
        let mut conn = app.conn().await;
        k::inbound_keys
            .filter(k::id.eq(key_uuid))
            .select(k::last_used_at)
            .first::<Option<DateTime<Utc>>>(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(last_used().await, None);
    app.inbound(&key, purchase()).await;
    let first = last_used().await.expect("set on first use");
    app.inbound(&key, purchase()).await;
    assert_eq!(
        last_used().await,
        Some(first),
        "not rewritten within the minute"
    );

    let earlier = Utc::now() - Duration::seconds(90);
    let mut conn = app.conn().await;
    diesel::update(k::inbound_keys.filter(k::id.eq(key_uuid)))
        .set(k::last_used_at.eq(earlier))
        .execute(&mut conn)
        .await
        .unwrap();
    app.inbound(&key, purchase()).await;
    assert!(
        last_used().await.unwrap() > first,
        "rewritten once the minute has passed"
    );

    let (_, html) = user.page(&format!("/domains/{domain}/keys")).await;
    assert!(
        html.contains("just now"),
        "last used shown as a relative time"
    );
}
