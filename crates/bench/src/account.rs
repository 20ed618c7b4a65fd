//! The account the load runs under: a fresh user and workspace, a domain, and an inbound key,
//! made through the public API the way a customer would.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

pub struct Account {
    pub workspace_id: String,
    pub domain_id: String,
    pub key: String,
    /// With `link`: the tracking link's id.
    pub link_id: Option<String>,
}

/// Signs up a unique user (`bench-<run>@example.com`), adds `bench-<run>.example.com` and a key.
/// With `webhook`, also a webhook to that URL for every event (an empty `events` list); with
/// `link`, a tracking link with that slug and two targets weighted 1:3; with `meta`, the
/// domain's Meta connection (a pixel id and an access token; the server's `POSTBACK_META_URL`
/// decides where its requests go).
pub async fn create(
    base: &str,
    run_id: &str,
    webhook: Option<&str>,
    link: Option<&str>,
    meta: bool,
) -> Result<Account> {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let call = |method: reqwest::Method, path: String, body: Value| {
        let req = http
            .request(method.clone(), format!("{base}{path}"))
            .json(&body);
        async move {
            let resp = req
                .send()
                .await
                .with_context(|| format!("{method} {path}"))?;
            let status = resp.status();
            let text = resp
                .text()
                .await
                .with_context(|| format!("{method} {path}"))?;
            if !status.is_success() {
                bail!("{method} {path} answered {status}: {text}");
            }
            serde_json::from_str::<Value>(&text)
                .with_context(|| format!("{method} {path} answered non-JSON: {text}"))
        }
    };
    let post = |path: String, body: Value| call(reqwest::Method::POST, path, body);
    let field = |v: &Value, name: &str, what: &str| -> Result<String> {
        v[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("{what} answer has no `{name}`: {v}"))
    };

    let signup = post(
        "/v1/auth/signup".into(),
        json!({
            "email": format!("bench-{run_id}@example.com"),
            "password": "benchmark password, long enough",
            "workspaceName": format!("Bench {run_id}"),
        }),
    )
    .await?;
    let workspace_id = field(&signup, "workspaceId", "signup")?;
    let domain = post(
        "/v1/domains".into(),
        json!({ "hostname": format!("bench-{run_id}.example.com") }),
    )
    .await?;
    let domain_id = field(&domain, "id", "domain")?;
    let key = post(
        format!("/v1/domains/{domain_id}/keys"),
        json!({ "name": "bench" }),
    )
    .await?;
    if let Some(url) = webhook {
        post(
            "/v1/integrations/webhooks".into(),
            json!({ "url": url, "events": [], "name": "bench receiver" }),
        )
        .await?;
    }
    if meta {
        call(
            reqwest::Method::PUT,
            format!("/v1/domains/{domain_id}/connections/meta"),
            json!({
                "settings": { "pixelId": "1234567890123456" },
                "credentials": { "accessToken": format!("EAAB-bench-{run_id}") },
            }),
        )
        .await?;
    }
    let link_id = match link {
        Some(slug) => {
            let host = format!("bench-{run_id}.example.com");
            let link = post(
                format!("/v1/domains/{domain_id}/links"),
                json!({ "name": "bench", "slug": slug, "targets": [
                    { "url": format!("https://{host}/a?utm_campaign=bench"), "weight": 1 },
                    { "url": format!("https://{host}/b"), "weight": 3 },
                ]}),
            )
            .await?;
            Some(field(&link, "id", "link")?)
        }
        None => None,
    };
    Ok(Account {
        workspace_id,
        key: field(&key, "key", "key")?,
        domain_id,
        link_id,
    })
}
