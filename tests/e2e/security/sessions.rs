//! Ended sessions stay ended for whoever kept a copy of the cookie.

use reqwest::StatusCode;
use serde_json::json;

use super::{session_token, Browser};
use crate::helpers::{csrf_in, TestApp, PASSWORD};

/// What a copy of a session cookie still gets: the API's answer to `/v1/me`, and where the
/// dashboard sends it.
async fn replay(app: &TestApp, token: &str) -> (StatusCode, String) {
    let http = crate::helpers::http_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let cookie = format!("auth_token={token}");
    let api = http
        .get(app.url("/v1/me"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("me")
        .status();
    let page = http
        .get(app.url("/domains"))
        .header("Cookie", &cookie)
        .send()
        .await
        .expect("page");
    let location = page
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (api, format!("{} {location}", page.status().as_u16()))
}

/// A session, once ended, stays ended for whoever kept a copy of its cookie: after a log-out
/// through the API or a page, and after a log-in through the page replaced it. (auth.rs checks
/// that an API log-in replaces the session row and that log-out clears the browser's cookie;
/// here the old value is sent again, as a thief would.) Postback has no password change and no
/// "sign out everywhere" to test.
#[tokio::test]
async fn an_ended_session_stays_ended_when_its_cookie_is_replayed() {
    let app = TestApp::spawn().await;
    app.signup("replay@example.com").await;
    let http = crate::helpers::http_client();
    let api_login = || async {
        let resp = http
            .post(app.url("/v1/auth/login"))
            .json(&json!({"email": "replay@example.com", "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status(), StatusCode::OK);
        session_token(&resp)
    };
    let alive = (StatusCode::OK, "200 ".to_owned());
    let dead = (StatusCode::UNAUTHORIZED, "303 /login".to_owned());

    // Replaced by a log-in through the page, made with the old cookie in the browser.
    let first = api_login().await;
    assert_eq!(replay(&app, &first).await, alive);
    let mut b = Browser::new(&app);
    b.jar.insert("auth_token".into(), first.clone());
    let (_, html) = b.get("/login").await;
    let csrf = csrf_in(&html);
    let status = b
        .form(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", "replay@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let second = b.jar.get("auth_token").cloned().expect("a new session");
    assert_ne!(second, first, "the page log-in started a new session");
    assert_eq!(
        replay(&app, &first).await,
        dead,
        "replaced by a page log-in"
    );
    assert_eq!(replay(&app, &second).await, alive);

    // Ended by the page's log-out.
    let (_, html) = b.get("/domains").await;
    let csrf = csrf_in(&html);
    assert_eq!(
        b.form("/logout", &[("csrf_token", &csrf)]).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        replay(&app, &second).await,
        dead,
        "after the page's log-out"
    );

    // Ended by the API's log-out.
    let third = api_login().await;
    assert_eq!(replay(&app, &third).await, alive);
    let resp = http
        .post(app.url("/v1/auth/logout"))
        .header("Cookie", format!("auth_token={third}"))
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(replay(&app, &third).await, dead, "after the API's log-out");
}
