//! Runs the Playwright suite in `tests/browser` (headless Debian Chromium) against a real server.

use std::path::Path;

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("tests/browser/node_modules/playwright-core").is_dir(),
        "browser test dependencies are missing: run `npm ci` in tests/browser (scripts/test does it)"
    );
    // The ad platforms' APIs: a fake on loopback that accepts every conversion.
    let platforms = crate::receiver::Receiver::start().await;
    platforms.always(
        crate::receiver::Reply::ok().body(r#"{"events_received": 1, "code": 0, "message": "OK"}"#),
    );
    // The suite signs up dozens of accounts from loopback: one client's sign-up budget (10 an
    // hour) would refuse most of them.
    let app = TestApp::spawn_with_platforms_and(&platforms.url(""), |s| {
        s.budgets.signups = postback_runtime::shared_limit::Budget::per_minute(u32::MAX);
        s.budgets.per_client = postback_runtime::shared_limit::Budget::per_minute(u32::MAX);
    })
    .await;
    // A real SMTP server; the browser tests read what it received from MAIL_LOG.
    let mail_dir = tempfile::tempdir().expect("tempdir");
    let mail_log = mail_dir.path().join("mails.jsonl");
    let smtp = crate::mail::Smtp::start_logging(crate::mail::free_port(), Some(&mail_log)).await;
    crate::mail::start_mail(&app, Some(smtp.url()), &mail_dir.path().join("outbox"));
    // The install's first account is its platform admin; admin.test.mjs logs in as it.
    let admin = app.signup("platform.admin@example.com").await;
    let (_, me) = admin.get("/v1/me").await;
    assert_eq!(me["isAdmin"], true, "{me}");
    let out = tokio::process::Command::new("node")
        .current_dir(root)
        .args(["--test", "--test-concurrency=1", "tests/browser/"])
        .env("BASE_URL", &app.base)
        .env("ADMIN_EMAIL", "platform.admin@example.com")
        .env("ADMIN_PASSWORD", crate::helpers::PASSWORD)
        .env("MAIL_LOG", &mail_log)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "browser suite failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("# pass"), "the suite ran tests:\n{stdout}");
    assert!(
        stdout.contains("# fail 0"),
        "no browser test failed:\n{stdout}"
    );
    smtp.stop().await;
}
