//! The security sweep, as tests. Every route that takes an id, called by another tenant with
//! this tenant's real ids (the API with a personal access token and with a session cookie, the
//! dashboard's pages and forms), answers 404 and changes nothing; a route added without a case
//! fails the sweep (`sweep`). Also: the flags of every cookie Postback sets over http and https
//! (`cookies`), sessions that stay dead once ended (`sessions`), webhook DNS that changes between
//! save and send, private targets in every spelling and proxies (`targets`), and what the
//! database holds of secrets (`at_rest`).

mod at_rest;
mod cookies;
mod sessions;
mod sweep;
mod targets;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{TestApp, User};

pub const WAIT: Duration = Duration::from_secs(15);

/// What the fake ad platforms answer: a success for every adapter.
pub const PLATFORM_OK: &str = r#"{"events_received": 1, "code": 0, "message": "OK"}"#;

/// A JSON string's value; anything else fails the test.
pub fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_owned()
}

/// The ad platforms a domain can connect.
pub const PLATFORMS: [&str; 3] = ["googleads", "meta", "tiktok"];

/// A body for `PUT /v1/domains/{id}/connections/{platform}`.
pub fn connection_body(platform: &str) -> Value {
    match platform {
        "googleads" => json!({
            "settings": {"customerId": "123-456-7890", "conversionAction": "555111"},
            "credentials": {"developerToken": "victim-dev-token", "accessToken": "victim-google-token"},
        }),
        "meta" => json!({
            "settings": {"pixelId": "1234567890"},
            "credentials": {"accessToken": "victim-meta-token"},
        }),
        _ => json!({
            "settings": {"pixelCode": "CVICTIM123"},
            "credentials": {"accessToken": "victim-tiktok-token"},
        }),
    }
}

/// Polls an event until all `n` deliveries of it have succeeded.
pub async fn settled(user: &User, event: &str, n: usize) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, e) = user.get(&format!("/v1/events/{event}")).await;
        let deliveries = e["deliveries"].as_array().cloned().unwrap_or_default();
        if deliveries.len() == n && deliveries.iter().all(|d| d["status"] == "succeeded") {
            return e;
        }
        assert!(Instant::now() < deadline, "deliveries did not settle: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `Set-Cookie` header: name, value and attributes (attribute names lower case).
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub raw: String,
    pub name: String,
    pub value: String,
    pub attrs: HashMap<String, String>,
}

impl SetCookie {
    pub fn parse(raw: &str) -> Self {
        let mut parts = raw.split(';').map(str::trim);
        let (name, value) = parts
            .next()
            .and_then(|nv| nv.split_once('='))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .unwrap_or_default();
        let attrs = parts
            .map(|a| match a.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), v.to_owned()),
                None => (a.to_ascii_lowercase(), String::new()),
            })
            .collect();
        Self {
            raw: raw.to_owned(),
            name,
            value,
            attrs,
        }
    }

    pub fn removes(&self) -> bool {
        self.value.is_empty() || self.attrs.get("max-age").is_some_and(|m| m == "0")
    }
}

/// A browser that keeps every cookie, Secure or not (reqwest's store would not send a Secure
/// cookie back over the tests' plain http), and records every `Set-Cookie` it gets.
pub struct Browser {
    base: String,
    http: reqwest::Client,
    pub jar: BTreeMap<String, String>,
    pub seen: Vec<SetCookie>,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.base.clone(),
            http: crate::helpers::http_builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            jar: BTreeMap::new(),
            seen: Vec::new(),
        }
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> (StatusCode, String) {
        let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let req = if cookies.is_empty() {
            req
        } else {
            req.header("Cookie", cookies.join("; "))
        };
        let resp = req.send().await.expect("request");
        for raw in resp.headers().get_all("set-cookie") {
            let c = SetCookie::parse(raw.to_str().expect("ascii cookie"));
            if c.removes() {
                self.jar.remove(&c.name);
            } else {
                self.jar.insert(c.name.clone(), c.value.clone());
            }
            self.seen.push(c);
        }
        (resp.status(), resp.text().await.unwrap_or_default())
    }

    pub async fn get(&mut self, path: &str) -> (StatusCode, String) {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    pub async fn form(&mut self, path: &str, fields: &[(&str, &str)]) -> StatusCode {
        let req = self.http.post(format!("{}{path}", self.base)).form(fields);
        self.send(req).await.0
    }

    pub async fn json(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let (status, text) = self.send(req).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// `auth_token` of a response, as a stolen copy would hold it.
pub fn session_token(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(SetCookie::parse)
        .find(|c| c.name == "auth_token" && !c.removes())
        .map(|c| c.value)
        .expect("auth_token set")
}
