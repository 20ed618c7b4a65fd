//! The flags of every cookie Postback sets, over an http and an https base URL.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{text, Browser, SetCookie};
use crate::helpers::{csrf_in, TestApp, PASSWORD};

/// Goes through everything that sets a cookie: the anonymous forms' CSRF cookie, sign-up, a
/// flash message, a new key shown once, log-out and log-in through the pages and the API.
/// Returns what was set and the keys page's path.
async fn cookie_journey(app: &TestApp) -> (Vec<SetCookie>, String) {
    let mut b = Browser::new(app);
    let (_, html) = b.get("/signup").await;
    let csrf = csrf_in(&html);
    let status = b
        .form(
            "/signup",
            &[
                ("csrf_token", &csrf),
                ("email", "cookies@example.com"),
                ("password", PASSWORD),
                ("workspace_name", "Cookie Co"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = b.get("/domains").await;
    let csrf = csrf_in(&html);
    let status = b
        .form(
            "/domains",
            &[("csrf_token", &csrf), ("hostname", "cookies.example.com")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // Shows the flash, and clears it.
    let (status, _) = b.get("/domains").await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = b.json(Method::GET, "/v1/domains", None).await;
    let keys = format!("/domains/{}/keys", text(&list["items"][0]["id"]));
    let status = b
        .form(&keys, &[("csrf_token", &csrf), ("name", "Cookie key")])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // Shows the new key once, and clears its cookie.
    let (_, html) = b.get(&keys).await;
    assert!(html.contains("Cookie key"), "{html:.300}");
    assert_eq!(
        b.form("/logout", &[("csrf_token", &csrf)]).await,
        StatusCode::SEE_OTHER
    );
    let (_, html) = b.get("/login").await;
    let csrf = csrf_in(&html);
    let status = b
        .form(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", "cookies@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = b.json(Method::POST, "/v1/auth/logout", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let login = json!({"email": "cookies@example.com", "password": PASSWORD});
    let (status, _) = b.json(Method::POST, "/v1/auth/login", Some(login)).await;
    assert_eq!(status, StatusCode::OK);
    let signup =
        json!({"email": "cookies.two@example.com", "password": PASSWORD, "workspaceName": "Two"});
    let (status, _) = b.json(Method::POST, "/v1/auth/signup", Some(signup)).await;
    assert_eq!(status, StatusCode::CREATED);
    (b.seen, keys)
}

/// Every cookie Postback sets, whether it sets or removes one: HttpOnly (none is for scripts),
/// SameSite, Path=/ (the new key's cookie: only its keys page), and Secure exactly when the
/// public base URL is https, however its scheme is spelled. A removal may leave Secure out (an
/// https page may expire a Secure cookie without it) but never has it over http, where a
/// browser would ignore it and keep the cookie.
#[tokio::test]
async fn every_cookie_has_its_flags_and_is_secure_exactly_over_https() {
    for scheme in ["http", "https", "HTTPS"] {
        let https = scheme.eq_ignore_ascii_case("https");
        let app = TestApp::spawn_public(scheme).await;
        let (seen, keys_path) = cookie_journey(&app).await;
        let mut problems = Vec::new();
        for c in &seen {
            let (path, same_site): (&str, &[&str]) = match c.name.as_str() {
                "auth_token" => ("/", &["Lax"]),
                "pb_csrf" | "pb_flash" => ("/", &["Lax", "Strict"]),
                // The new key's value goes only to the page that shows it once.
                "pb_new_key" => (keys_path.as_str(), &["Strict"]),
                other => {
                    problems.push(format!(
                        "{other}: a cookie this test does not know; add its expected flags"
                    ));
                    continue;
                }
            };
            if c.attrs.get("path").map(String::as_str) != Some(path) {
                problems.push(format!("{}: Path is not {path}", c.raw));
            }
            if !c.attrs.contains_key("httponly") {
                problems.push(format!("{}: not HttpOnly", c.raw));
            }
            if !c
                .attrs
                .get("samesite")
                .is_some_and(|s| same_site.contains(&s.as_str()))
            {
                problems.push(format!("{}: SameSite is not {same_site:?}", c.raw));
            }
            let secure = c.attrs.contains_key("secure");
            // A removal may leave Secure out over https.
            let fine = secure == https || (c.removes() && !secure);
            if !fine {
                problems.push(format!(
                    "{}: Secure must be set exactly when the base URL is https (here {scheme})",
                    c.raw
                ));
            }
        }
        for name in ["auth_token", "pb_csrf", "pb_flash", "pb_new_key"] {
            for removal in [false, true] {
                assert!(
                    seen.iter()
                        .any(|c| c.name == name && c.removes() == removal),
                    "the journey {} {name}: {seen:#?}",
                    if removal {
                        "never removed"
                    } else {
                        "never set"
                    }
                );
            }
        }
        assert!(
            problems.is_empty(),
            "cookie flags (base URL {scheme}://…):\n{}",
            problems.join("\n")
        );
    }
}
