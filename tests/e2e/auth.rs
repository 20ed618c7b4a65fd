//! Accounts and sessions through the API and the pages.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{csrf_in, TestApp};

fn auth_cookie(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("auth_token="))
        .expect("auth_token cookie")
        .to_owned()
}

#[tokio::test]
async fn signup_sets_a_session_cookie_and_first_user_is_admin() {
    let app = TestApp::spawn().await;
    let client = app.browser();
    let resp = client
        .post(app.url("/v1/auth/signup"))
        .json(&json!({ "email": "First@Example.com", "password": "long enough 1", "workspaceName": "Acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let cookie = auth_cookie(&resp);
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let me: serde_json::Value = client
        .get(app.url("/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "first@example.com");
    assert_eq!(
        me["isAdmin"], true,
        "first user of an install is a platform admin"
    );
    assert_eq!(me["role"], "owner");
    assert_eq!(me["workspace"]["plan"], "pulse");

    let second = app.signup("second@example.com").await;
    let (_, me) = second.get("/v1/me").await;
    assert_eq!(me["isAdmin"], false);

    let (status, body) = second
        .post("/v1/auth/signup", json!({ "email": "FIRST@example.com", "password": "long enough 1", "workspaceName": "x" }))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = second
        .post(
            "/v1/auth/signup",
            json!({ "email": "new@example.com", "password": "short", "workspaceName": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("password"));

    let resp = client
        .post(app.url("/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = client.get(app.url("/v1/me")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.signup("known@example.com").await;
    let client = crate::helpers::http_client();
    let mut answers = Vec::new();
    for email in ["known@example.com", "unknown@example.com"] {
        let resp = client
            .post(app.url("/v1/auth/login"))
            .json(&json!({ "email": email, "password": "wrong password" }))
            .send()
            .await
            .unwrap();
        answers.push((resp.status(), resp.text().await.unwrap()));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
    assert!(answers[0].1.contains("Incorrect email or password"));

    // The page says the same.
    let browser = app.browser();
    let html = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resp = browser
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", csrf_in(&html).as_str()),
            ("email", "known@example.com"),
            ("password", "nope nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("Incorrect email or password"));
}

#[tokio::test]
async fn login_rotates_the_session_and_logout_ends_it() {
    let app = TestApp::spawn().await;
    let user = app.signup("rotate@example.com").await;
    let resp = user
        .client
        .post(app.url("/v1/auth/login"))
        .json(&json!({ "email": "rotate@example.com", "password": "correct horse 1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let new_cookie = auth_cookie(&resp);
    // The token from sign-up no longer works.
    let old_sessions: i64 = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        let mut conn = app.conn().await;
        postback_domain::schema::sessions::table
            .count()
            .get_result(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(
        old_sessions, 1,
        "the sign-up session was replaced, not kept"
    );
    assert_eq!(user.get("/v1/me").await.0, StatusCode::OK);

    let token = new_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("auth_token=")
        .to_owned();
    let resp = crate::helpers::http_client()
        .get(app.url("/v1/me"))
        .header("Cookie", format!("auth_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the seed's curl style with Cookie: auth_token=… works"
    );

    // Page log-out.
    let (_, html) = user.page("/domains").await;
    let resp = user
        .client
        .post(app.url("/logout"))
        .form(&[("csrf_token", csrf_in(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = user.client.get(app.url("/domains")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/login");
}

/// Log-in throttling slows guessing without locking the owner out: after five failures from one
/// address, that address waits a delay that doubles with each further failure (429 with
/// `Retry-After`, through the API and the form alike), while the owner signing in from their own
/// address, and other accounts, are not slowed; once the delay has passed, the right password
/// works again from the guessing address too.
#[tokio::test]
async fn failed_log_ins_slow_the_guesser_and_never_lock_the_owner_out() {
    let app = crate::helpers::TestApp::spawn_adjusted(None, |s| {
        s.trusted_proxies = std::sync::Arc::new("127.0.0.1/32".parse().expect("cidr"))
    })
    .await;
    app.signup("guarded@example.com").await;
    app.signup("neighbour@example.com").await;
    let client = crate::helpers::http_client();
    let login = |email: &'static str, password: &'static str, from: &'static str| {
        let client = client.clone();
        let url = app.url("/v1/auth/login");
        async move {
            let resp = client
                .post(url)
                .header("X-Forwarded-For", from)
                .json(&serde_json::json!({"email": email, "password": password}))
                .send()
                .await
                .expect("login");
            let status = resp.status();
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().expect("seconds"));
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            (status, retry, body)
        }
    };
    const OWNER: &str = "198.51.100.10";
    const GUESSER: &str = "203.0.113.66";
    // The owner has signed in from home before.
    let (status, _, _) = login("guarded@example.com", crate::helpers::PASSWORD, OWNER).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    for i in 0..5 {
        let (status, _, body) = login("guarded@example.com", "wrong password 1", GUESSER).await;
        assert_eq!(
            status,
            reqwest::StatusCode::UNAUTHORIZED,
            "attempt {i}: {body}"
        );
    }
    let (status, retry, body) =
        login("guarded@example.com", crate::helpers::PASSWORD, GUESSER).await;
    assert_eq!(status, reqwest::StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(retry, Some(1), "the first delay is a second");
    assert!(body["error"]
        .as_str()
        .expect("error")
        .contains("Too many failed log-ins"));
    // The owner, from their own address, is not slowed.
    let (status, _, body) = login("guarded@example.com", crate::helpers::PASSWORD, OWNER).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    // Another account from the guessing address is not slowed either.
    let (status, _, _) = login("neighbour@example.com", crate::helpers::PASSWORD, GUESSER).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    // Each further failure doubles the delay: 1 s, then 2 s, then 4 s.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _, _) = login("guarded@example.com", "wrong password 2", GUESSER).await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    let (status, retry, _) = login("guarded@example.com", "wrong password 3", GUESSER).await;
    assert_eq!(status, reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry, Some(2));
    // The form says the same, with Retry-After on the page.
    let browser = app.browser();
    let html = browser
        .get(app.url("/login"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let csrf = crate::helpers::csrf_in(&html);
    let resp = browser
        .post(app.url("/login"))
        .header("X-Forwarded-For", GUESSER)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "Guarded@Example.com"),
            ("password", crate::helpers::PASSWORD),
        ])
        .send()
        .await
        .expect("form");
    assert_eq!(resp.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert!(
        resp.headers().get("retry-after").is_some(),
        "Retry-After on the page"
    );
    assert!(resp
        .text()
        .await
        .expect("html")
        .contains("Too many failed log-ins"));
    // Not a lock: once the delay has passed the right password works from there too.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _, body) = login("guarded@example.com", crate::helpers::PASSWORD, GUESSER).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
}
