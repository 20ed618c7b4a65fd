//! Secrets at rest: what the database holds of passwords, tokens, keys, webhook secrets and
//! platform credentials, read across every column of every table.

use reqwest::StatusCode;
use serde_json::json;
use sha2::Digest;

use super::{connection_body, session_token, settled, text, PLATFORMS, PLATFORM_OK};
use crate::helpers::{purchase, TestApp, User};
use crate::receiver::{Receiver, Reply};

async fn pg(db_url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(db_url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
}

/// Every row of every table, as JSON text (bytea columns show as `\x` and hex).
async fn whole_database(db: &tokio_postgres::Client) -> String {
    let tables = db
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            &[],
        )
        .await
        .expect("tables");
    let mut dump = String::new();
    for t in tables {
        let table: String = t.get(0);
        let sql = format!(
            "SELECT coalesce(string_agg(to_jsonb(t)::text, E'\\n'), '') FROM \"{table}\" t"
        );
        let rows: String = db.query_one(&sql, &[]).await.expect("rows").get(0);
        dump.push_str(&rows);
        dump.push('\n');
    }
    dump
}

/// No secret Postback handles is in the database in clear, in any column of any table:
/// passwords are argon2id hashes; session tokens, access tokens and inbound keys are their
/// SHA-256; webhook secrets (the user's own, generated, rotated) and every platform credential
/// are sealed. (keys.rs, tokens.rs and platforms.rs each check one column; this reads them all.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_stored_in_clear_anywhere_in_the_database() {
    let fake = Receiver::start().await;
    fake.always(Reply::ok().body(PLATFORM_OK));
    let app = TestApp::spawn_with_platforms(&fake.url("")).await;
    let password = "Stored-Only-Hashed-42";
    let http = crate::helpers::http_client();
    let resp = http
        .post(app.url("/v1/auth/signup"))
        .json(
            &json!({"email": "vault@example.com", "password": password, "workspaceName": "Vault"}),
        )
        .send()
        .await
        .expect("signup");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let signup_session = session_token(&resp);
    let resp = http
        .post(app.url("/v1/auth/login"))
        .json(&json!({"email": "vault@example.com", "password": password}))
        .send()
        .await
        .expect("login");
    let session = session_token(&resp);
    let user = User {
        client: crate::helpers::http_builder()
            .default_headers(
                [(
                    reqwest::header::COOKIE,
                    format!("auth_token={session}").parse().expect("header"),
                )]
                .into_iter()
                .collect(),
            )
            .build()
            .expect("client"),
        base: app.base.clone(),
        workspace_id: String::new(),
    };
    let domain = user.add_domain("vault.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    let (_, token) = user.post("/v1/tokens", json!({"name": "Script"})).await;
    let token = text(&token["token"]);
    let mut credentials = Vec::new();
    for platform in PLATFORMS {
        let mut body = connection_body(platform);
        for (name, value) in body["credentials"].as_object_mut().expect("credentials") {
            let secret = format!("at-rest-{platform}-{name}-9f8e7d");
            *value = json!(secret);
            credentials.push(secret);
        }
        let (status, c) = user
            .put(
                &format!("/v1/domains/{domain}/connections/{platform}"),
                body,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{c}");
    }
    let own = "own-signing-secret-at-rest-31";
    let (status, hook) = user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": fake.url("/own"), "secret": own}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let (status, generated) = user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": fake.url("/generated")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{generated}");
    let first_generated = text(&generated["secret"]);
    let (_, rotated) = user
        .post(
            &format!(
                "/v1/integrations/webhooks/{}/secret/rotate",
                text(&generated["id"])
            ),
            json!({}),
        )
        .await;
    let rotated = text(&rotated["secret"]);
    assert!(rotated.starts_with("whsec_") && rotated != first_generated);
    let (status, answer) = app.inbound(&key, purchase()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Signed deliveries to both webhooks and the three platforms have run.
    settled(&user, &text(&answer["eventId"]), 5).await;

    let db = pg(&app.db_url).await;
    let dump = whole_database(&db).await;
    assert!(
        dump.contains("vault.example.com"),
        "the dump reads the data"
    );
    let mut secrets: Vec<String> = vec![
        password.into(),
        signup_session.clone(),
        session.clone(),
        key.clone(),
        token.clone(),
        own.into(),
        first_generated,
        rotated,
    ];
    secrets.extend(credentials);
    for secret in &secrets {
        assert!(
            !dump.contains(secret.as_str()),
            "{secret} is stored in clear"
        );
        let hex = hex::encode(secret.as_bytes());
        assert!(!dump.contains(&hex), "{secret} is stored in clear (bytea)");
    }

    let count = |sql: &'static str, hash: Vec<u8>| {
        let db = &db;
        async move {
            let n: i64 = db.query_one(sql, &[&hash]).await.expect(sql).get(0);
            n
        }
    };
    let sha = |s: &str| sha2::Sha256::digest(s.as_bytes()).to_vec();
    for s in [&signup_session, &session] {
        assert_eq!(
            count(
                "SELECT count(*) FROM sessions WHERE token_hash = $1",
                sha(s)
            )
            .await,
            1,
            "a session is stored as its SHA-256"
        );
    }
    assert_eq!(
        count(
            "SELECT count(*) FROM api_tokens WHERE token_hash = $1",
            sha(&token)
        )
        .await,
        1
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM inbound_keys WHERE key_hash = $1",
            sha(&key)
        )
        .await,
        1
    );
    let hash: String = db
        .query_one(
            "SELECT password_hash FROM users WHERE email = 'vault@example.com'",
            &[],
        )
        .await
        .expect("user")
        .get(0);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let clear: i64 = db
        .query_one(
            "SELECT count(*) FROM webhooks WHERE secret IS NULL OR secret NOT LIKE 'enc:v1:%'",
            &[],
        )
        .await
        .expect("webhooks")
        .get(0);
    assert_eq!(clear, 0, "every webhook secret is sealed");
    let clear: i64 = db
        .query_one(
            "SELECT count(*) FROM connections WHERE credentials - 'sealed' <> '{}'::jsonb \
             OR coalesce(credentials->>'sealed', '') NOT LIKE 'enc:v1:%'",
            &[],
        )
        .await
        .expect("connections")
        .get(0);
    assert_eq!(
        clear, 0,
        "every connection's credentials are sealed, and only sealed"
    );
}
