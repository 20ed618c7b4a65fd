//! `/v1/openapi.json`: served without credentials, valid OpenAPI 3.1, covering every route, and
//! true to what the server answers (Schemathesis drives every operation of a live server).

use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::TestApp;

/// The Python of the virtualenv `scripts/test` prepares (openapi-spec-validator, schemathesis).
fn python() -> PathBuf {
    let path = std::env::var("POSTBACK_PYTHON").expect(
        "POSTBACK_PYTHON is unset: run the suite with scripts/test, which installs \
         openapi-spec-validator and schemathesis (tests/api/requirements.txt) in a virtualenv",
    );
    PathBuf::from(path)
}

/// Runs openapi-spec-validator on a document; its verdict and output.
fn validate(doc: &Value) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(doc).unwrap()).unwrap();
    let out = std::process::Command::new(python())
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("run openapi_spec_validator");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn the_document_is_served_valid_openapi_3_1_and_lists_every_route() {
    let app = TestApp::spawn().await;
    let resp = crate::helpers::http_client()
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path) in postback_api::routes::all() {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is registered but not in the served document"
        );
    }
    assert_eq!(
        doc["paths"]["/v1/domains"]["post"]["requestBody"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/NewDomain"
    );
    assert_eq!(
        doc["components"]["schemas"]["ErrorBody"]["required"],
        json!(["error"])
    );

    let (ok, output) = validate(&doc);
    assert!(ok, "openapi-spec-validator refused the document:\n{output}");
    // The validator does refuse a broken document (so the pass above means something).
    let mut broken = doc.clone();
    broken["paths"]["/v1/domains"]["get"]["responses"]["200"] = json!({ "content": 7 });
    let (ok, _) = validate(&broken);
    assert!(
        !ok,
        "the validator accepted a response without a description"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_the_document_does_not_describe() {
    let app = TestApp::spawn_unthrottled().await;
    // The install's first account is a platform admin, so /v1/admin is exercised too.
    let admin = app.signup("conformance@example.com").await;
    let (status, token) = admin
        .post("/v1/tokens", json!({ "name": "schemathesis" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let token = token["token"].as_str().unwrap().to_owned();
    let domain = admin.add_domain("shop.example.com").await;
    let (_, key) = admin.add_key(&domain, "conformance").await;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schemathesis = python().with_file_name("schemathesis");
    let out = tokio::process::Command::new(&schemathesis)
        .current_dir(std::env::temp_dir())
        .arg("--config-file")
        .arg(root.join("tests/api/schemathesis.toml"))
        .arg("run")
        .arg(app.url("/v1/openapi.json"))
        .args(["--max-examples", "15", "--workers", "1"])
        .args(["--seed", "20261123"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", &format!("X-CC-Api-Key: {key}")])
        // One worker: hypothesis under Python 3.11 can trip over its own AST cache with two
        // threads ("AST constructor recursion depth mismatch"), an error of the tool, not the API.
        // Signing out (the test's own session too), revoking the run's own token, or deleting its
        // workspace or account (the run finds the workspace's id and name in GET /v1/workspaces)
        // would leave nothing to test.
        .args(["--exclude-path", "/v1/auth/logout"])
        .args(["--exclude-path", "/v1/auth/sessions/others"])
        .args(["--exclude-path", "/v1/tokens/{id}"])
        .args(["--exclude-path", "/v1/workspaces/{id}/delete"])
        .args(["--exclude-path", "/v1/me/delete"])
        .output()
        .await
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found failures:\n{text}");
    assert!(text.contains("Tested:"), "{text}");

    // It did drive the API: inbound events went in with the key.
    let (_, events) = admin.get("/v1/events?limit=1").await;
    assert!(!events["items"].as_array().unwrap().is_empty(), "{events}");
}

/// Schemathesis again with NUL characters allowed in every generated string, and a real inbound
/// key and site id, so `/__cc/*` and every `/v1` route get text PostgreSQL cannot store: no answer
/// may be a server error (each such string is refused with a 400 naming its field, or cleaned
/// from what visitors report).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_with_nul_characters_finds_no_server_error() {
    let app = TestApp::spawn_unthrottled().await;
    let admin = app.signup("nul-conformance@example.com").await;
    let (status, token) = admin
        .post("/v1/tokens", json!({ "name": "schemathesis-nul" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let token = token["token"].as_str().unwrap().to_owned();
    let domain = admin.add_domain("shop.example.com").await;
    let (_, key) = admin.add_key(&domain, "conformance").await;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schemathesis = python().with_file_name("schemathesis");
    let out = tokio::process::Command::new(&schemathesis)
        .current_dir(std::env::temp_dir())
        .arg("--config-file")
        .arg(root.join("tests/api/schemathesis.toml"))
        .arg("run")
        .arg(app.url("/v1/openapi.json"))
        .args(["--generation-allow-x00", "true"])
        .args(["--checks", "not_a_server_error"])
        .args(["--max-examples", "15", "--workers", "1"])
        .args(["--seed", "20261204"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", &format!("X-CC-Api-Key: {key}")])
        .args(["--exclude-path", "/v1/auth/logout"])
        .args(["--exclude-path", "/v1/tokens/{id}"])
        .output()
        .await
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found failures:\n{text}");
    assert!(text.contains("Tested:"), "{text}");
    // It reached inbound with the key, and NUL characters were among what it sent: requests were
    // refused with 400 (and none answered 500, which the run itself checks).
    let metrics = crate::helpers::http_client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused = metrics
        .lines()
        .find(|l| l.starts_with("postback_inbound_events_total{outcome=\"bad_request\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(refused > 0.0, "{metrics}");
}
