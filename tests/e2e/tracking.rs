//! The tracking snippet's endpoints: `t.js`, landings as touches, identify, and what they refuse.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

async fn site(app: &TestApp, email: &str) -> String {
    let user = app.signup(email).await;
    user.add_domain("shop.example.com").await;
    let (_, domains) = user.get("/v1/domains").await;
    domains["items"][0]["siteId"]
        .as_str()
        .expect("siteId")
        .to_owned()
}

async fn post(
    app: &TestApp,
    path: &str,
    origin: Option<&str>,
    body: &str,
) -> (StatusCode, Value, Option<String>) {
    let mut req = crate::helpers::http_client()
        .post(app.url(path))
        .header("Content-Type", "text/plain")
        .header(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
        )
        .body(body.to_owned());
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    let resp = req.send().await.expect("post");
    let status = resp.status();
    let acao = resp
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    (status, resp.json().await.unwrap_or(Value::Null), acao)
}

async fn rows(app: &TestApp, sql: &str) -> Vec<Vec<Option<String>>> {
    use tokio_postgres::NoTls;
    let (client, conn) = tokio_postgres::connect(&app.db_url, NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .query(sql, &[])
        .await
        .expect(sql)
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<_, Option<String>>(i))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn the_snippet_is_small_cacheable_javascript() {
    let app = TestApp::spawn().await;
    let resp = crate::helpers::http_client()
        .get(app.url("/__cc/t.js"))
        .send()
        .await
        .expect("t.js");
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert!(headers["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("application/javascript"));
    assert!(headers["cache-control"]
        .to_str()
        .expect("cc")
        .contains("public"));
    let body = resp.text().await.expect("body");
    assert!(body.len() < 4096, "t.js is {} bytes", body.len());
    assert!(body.contains("/__cc/collect") && body.contains("_pb_vid"));
}

#[tokio::test]
async fn a_landing_becomes_a_touch_with_click_ids_and_utms() {
    let app = TestApp::spawn().await;
    let site = site(&app, "touch@example.com").await;
    let body = json!({
        "site": site, "vid": "4f1c2a9e-visitor-1",
        "url": "https://www.shop.example.com/sale?utm_source=google&utm_medium=cpc&utm_campaign=spring&gclid=Cj0KCQ&fbclid=IwAR",
        "referrer": "https://www.google.com/", "webdriver": false
    });
    let (status, answer, acao) = post(
        &app,
        "/__cc/collect",
        Some("https://www.shop.example.com"),
        &body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(acao.as_deref(), Some("https://www.shop.example.com"));
    let got = rows(
        &app,
        "SELECT t.utm_source, t.utm_medium, t.utm_campaign, t.gclid, t.fbclid, t.referrer, t.device_type, v.browser_id
         FROM touches t JOIN visitors v ON v.id = t.visitor_id",
    )
    .await;
    assert_eq!(got.len(), 1);
    let r: Vec<&str> = got[0].iter().map(|c| c.as_deref().unwrap_or("")).collect();
    assert_eq!(
        r,
        vec![
            "google",
            "cpc",
            "spring",
            "Cj0KCQ",
            "IwAR",
            "https://www.google.com/",
            "desktop",
            "4f1c2a9e-visitor-1"
        ]
    );

    // The same visitor again: a second touch, one visitor.
    post(&app, "/__cc/collect", None, &body.to_string()).await;
    let n = rows(&app, "SELECT count(*)::text FROM touches").await;
    assert_eq!(n[0][0].as_deref(), Some("2"));
    let v = rows(&app, "SELECT count(*)::text FROM visitors").await;
    assert_eq!(v[0][0].as_deref(), Some("1"));
}

#[tokio::test]
async fn identify_maps_the_email_hash_to_the_visitor() {
    let app = TestApp::spawn().await;
    let site = site(&app, "ident@example.com").await;
    let (status, answer, _) = post(
        &app,
        "/__cc/identify",
        Some("https://shop.example.com"),
        &json!({"site": site, "vid": "visitor-abc-123", "email": "  Buyer@Example.COM "})
            .to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let got = rows(
        &app,
        "SELECT encode(e.email_sha256, 'hex'), v.browser_id FROM visitor_emails e JOIN visitors v ON v.id = e.visitor_id",
    )
    .await;
    use sha2::Digest;
    let want = hex::encode(sha2::Sha256::digest(b"buyer@example.com"));
    assert_eq!(
        got,
        vec![vec![Some(want), Some("visitor-abc-123".to_owned())]]
    );
}

#[tokio::test]
async fn bad_reports_are_refused_with_a_reason() {
    let app = TestApp::spawn().await;
    let site = site(&app, "refuse@example.com").await;
    let ok_body =
        json!({"site": site, "vid": "visitor-abc-123", "url": "https://shop.example.com/"});
    let cases: Vec<(Option<&str>, String, StatusCode, &str)> = vec![
        (
            Some("https://evil.test"),
            ok_body.to_string(),
            StatusCode::FORBIDDEN,
            "only accepts reports from shop.example.com",
        ),
        (
            Some("https://notshop.example.com"),
            ok_body.to_string(),
            StatusCode::FORBIDDEN,
            "only accepts reports",
        ),
        (
            None,
            json!({"site": "nope", "vid": "visitor-abc-123", "url": "https://shop.example.com/"})
                .to_string(),
            StatusCode::NOT_FOUND,
            "site not found",
        ),
        (
            None,
            json!({"site": site, "vid": "x", "url": "https://shop.example.com/"}).to_string(),
            StatusCode::BAD_REQUEST,
            "vid must be",
        ),
        (
            None,
            json!({"site": site, "vid": "visitor-abc-123"}).to_string(),
            StatusCode::BAD_REQUEST,
            "not valid JSON for this report",
        ),
        (
            None,
            json!({"site": site, "vid": "visitor-abc-123", "url": "javascript:alert(1)"})
                .to_string(),
            StatusCode::BAD_REQUEST,
            "url must be",
        ),
        (
            None,
            "{not json".to_owned(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            None,
            format!("{{\"site\":\"{site}\",\"pad\":\"{}\"}}", "x".repeat(20_000)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "at most 8 KiB",
        ),
    ];
    for (origin, body, status, message) in cases {
        let (got, answer, _) = post(&app, "/__cc/collect", origin, &body).await;
        assert_eq!(got, status, "{answer}");
        assert!(
            answer["error"].as_str().expect("error").contains(message),
            "{answer} should say {message}"
        );
    }
    let (got, answer, _) = post(
        &app,
        "/__cc/identify",
        None,
        &json!({"site": site, "vid": "visitor-abc-123", "email": "not-an-email"}).to_string(),
    )
    .await;
    assert_eq!(got, StatusCode::BAD_REQUEST, "{answer}");
    let n = rows(&app, "SELECT count(*)::text FROM touches").await;
    assert_eq!(n[0][0].as_deref(), Some("0"), "nothing refused was stored");
}

#[tokio::test]
async fn one_address_is_rate_limited() {
    crate::hostile::fresh_minute().await;
    let app = TestApp::spawn().await;
    let site = site(&app, "ratelimit@example.com").await;
    let client = crate::helpers::http_client();
    let mut limited = None;
    for i in 0..620 {
        // Many visitors behind one address (one visitor alone would meet its own daily cap).
        let body = json!({"site": site, "vid": format!("visitor-abc-{i:04}"),
                          "url": "https://shop.example.com/"})
        .to_string();
        let resp = client
            .post(app.url("/__cc/collect"))
            .body(body)
            .send()
            .await
            .expect("post");
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&wait), "Retry-After {wait}");
            let answer: Value = resp.json().await.expect("json");
            assert!(answer["error"]
                .as_str()
                .expect("error")
                .starts_with("Too many requests"));
            limited = Some(i);
            break;
        }
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_eq!(
        limited,
        Some(600),
        "the 601st request in a minute is refused"
    );
}

/// The snippet in a real browser: a landing with click ids becomes a touch, a form's email and
/// `postback.identify()` map to the same visitor as the `_pb_vid` cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snippet_reports_landings_and_emails_from_a_real_browser() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("tests/browser/node_modules/playwright-core").is_dir(),
        "browser test dependencies are missing: run `npm ci` in tests/browser (scripts/test does it)"
    );
    let app = TestApp::spawn().await;
    let user = app.signup("snippet@example.com").await;
    user.add_domain("shop.localhost").await;
    let (_, domains) = user.get("/v1/domains").await;
    let site = domains["items"][0]["siteId"]
        .as_str()
        .expect("siteId")
        .to_owned();
    let out = tokio::process::Command::new("node")
        .current_dir(root)
        .args([
            "tests/browser/tools/visit.mjs",
            &app.base,
            &site,
            "shop.localhost",
        ])
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "visit failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).expect("visit prints JSON");
    assert_eq!(
        seen["errors"],
        json!([]),
        "the snippet threw nothing into the page"
    );
    let vid = seen["vid"].as_str().expect("_pb_vid cookie").to_owned();

    // Beacons are asynchronous: wait (bounded) for both emails.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n = rows(&app, "SELECT count(*)::text FROM visitor_emails").await;
        if n[0][0].as_deref() == Some("2") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "emails identified: {n:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let touches = rows(
        &app,
        "SELECT t.utm_source, t.utm_campaign, t.fbclid, t.webdriver::text, v.browser_id
         FROM touches t JOIN visitors v ON v.id = t.visitor_id ORDER BY t.occurred_at",
    )
    .await;
    assert!(touches.len() >= 2, "{touches:?}");
    let first: Vec<&str> = touches[0]
        .iter()
        .map(|c| c.as_deref().unwrap_or(""))
        .collect();
    // Playwright's Chromium says it is automated (navigator.webdriver): recorded for quality.
    assert_eq!(
        first,
        vec!["facebook", "spring", "IwAR-test", "true", vid.as_str()]
    );
    use sha2::Digest;
    let hashes = rows(
        &app,
        "SELECT encode(e.email_sha256, 'hex') FROM visitor_emails e JOIN visitors v ON v.id = e.visitor_id ORDER BY 1",
    )
    .await;
    let mut want = vec![
        hex::encode(sha2::Sha256::digest(b"visitor@example.com")),
        hex::encode(sha2::Sha256::digest(b"second@example.com")),
    ];
    want.sort();
    let got: Vec<String> = hashes.into_iter().filter_map(|r| r[0].clone()).collect();
    assert_eq!(got, want);
    let visitors = rows(&app, "SELECT count(*)::text FROM visitors").await;
    assert_eq!(
        visitors[0][0].as_deref(),
        Some("1"),
        "one visitor for the whole visit"
    );
}
