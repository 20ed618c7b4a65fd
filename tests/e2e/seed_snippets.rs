//! The seeds' own client examples (cURL, Python `requests`, Node `fetch`), run as printed with
//! only the host and key replaced.

use std::process::Command;

use reqwest::StatusCode;

use crate::helpers::TestApp;

const SEED_HOST: &str = "https://cleanclicks.yourdomain.com";

const CURL: &str = r#"curl -X POST https://cleanclicks.yourdomain.com/__cc/inbound \
-H "Content-Type: application/json" \
-H "X-CC-Api-Key: cc_your_api_key" \
-d '{
"email": "test@example.com",
"event": "purchase",
"value": 99.99,
"currency": "USD"
}'"#;

const PYTHON: &str = r#"import requests
response = requests.post(
"https://cleanclicks.yourdomain.com/__cc/inbound",
headers={
"Content-Type": "application/json",
"X-CC-Api-Key": "cc_your_api_key"
},
json={
"email": "customer@example.com",
"event": "purchase",
"value": 149.99,
"currency": "USD",
"orderId": "ORD-12345"
}
)
print(response.json())
"#;

const NODE: &str = r#"const response = await fetch('https://cleanclicks.yourdomain.com/__cc/inbound', {
method: 'POST',
headers: {
'Content-Type': 'application/json',
'X-CC-Api-Key': 'cc_your_api_key'
},
body: JSON.stringify({
email: 'customer@example.com',
event: 'purchase',
value: 149.99,
currency: 'USD',
orderId: 'ORD-12346'
})
});
const data = await response.json();
console.log(data);
"#;

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_client_examples_run_unchanged() {
    let app = TestApp::spawn().await;
    let user = app.signup("snippets@seed.test").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Snippets").await;
    let adapt = |s: &str| {
        s.replace(SEED_HOST, &app.base)
            .replace("cc_your_api_key", &key)
    };
    let dir = tempfile::tempdir().unwrap();

    let curl = adapt(CURL);
    let out = tokio::task::spawn_blocking(move || run("bash", &["-c", &curl]))
        .await
        .unwrap();
    assert!(
        out.contains(r#""ok":true"#) && out.contains(r#""dispatched":[]"#),
        "curl: {out}"
    );

    let py = dir.path().join("seed.py");
    std::fs::write(&py, adapt(PYTHON)).unwrap();
    let out = tokio::task::spawn_blocking(move || run("python3", &[py.to_str().unwrap()]))
        .await
        .unwrap();
    assert!(
        out.contains("'ok': True") && out.contains("'eventId'"),
        "python: {out}"
    );

    let js = dir.path().join("seed.mjs");
    std::fs::write(&js, adapt(NODE)).unwrap();
    let out = tokio::task::spawn_blocking(move || run("node", &[js.to_str().unwrap()]))
        .await
        .unwrap();
    assert!(
        out.contains("ok: true") && out.contains("eventId"),
        "node: {out}"
    );

    let (status, list) = user.get(&format!("/v1/events?domainId={domain}")).await;
    assert_eq!(status, StatusCode::OK);
    let orders: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["orderId"].as_str())
        .collect();
    assert_eq!(orders, vec!["ORD-12346", "ORD-12345"]);
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
}
