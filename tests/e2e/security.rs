//! The security sweep, as tests. Every route that takes an id, called by another tenant with
//! this tenant's real ids (the API with a personal access token and with a session cookie, the
//! dashboard's pages and forms), answers 404 and changes nothing; a route added without a case
//! here fails the sweep. Also: the flags of every cookie Postback sets over http and https,
//! sessions that stay dead once ended, webhook DNS that changes between save and send, private
//! targets in every spelling, and what the database holds of secrets.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postback_api::delivery::lookup::Lookup;
use postback_api::delivery::DeliveryConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest;

use crate::helpers::{csrf_in, fresh_database, purchase, test_delivery, TestApp, User, PASSWORD};
use crate::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(15);

/// What the fake ad platforms answer: a success for every adapter.
const PLATFORM_OK: &str = r#"{"events_received": 1, "code": 0, "message": "OK"}"#;

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Cross-tenant sweep: the victim's world.

/// The victim's hostname and names: no answer to another tenant may contain them.
const VICTIM_HOST: &str = "victim-shop.example.com";
const VICTIM_WORDS: &[&str] = &[
    VICTIM_HOST,
    "Victim backend",
    "Victim hook",
    "Victim link",
    "Victim script",
    "victim-link",
    "alice@victim.test",
    "carol@victim.test",
    "invitee@victim.test",
];

const PLATFORMS: [&str; 3] = ["googleads", "meta", "tiktok"];

/// Tenant A: one of everything a route can name.
struct Victim {
    user: User,
    workspace: String,
    domain: String,
    key_id: String,
    key: String,
    token_id: String,
    webhook: String,
    delivery: String,
    event: String,
    link: String,
    /// A teammate's user id (A's workspace has two members).
    member: String,
    invitation: String,
}

fn connection_body(platform: &str) -> Value {
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
async fn settled(user: &User, event: &str, n: usize) -> Value {
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

/// Signs the victim up (the first account of the install, so a platform admin) and gives it a
/// domain, a key, three connections, a webhook with a delivery, an event, a tracking link, an
/// access token, a teammate and an invitation.
async fn victim(app: &TestApp, fake: &Receiver) -> Victim {
    let user = app.signup("alice@victim.test").await;
    let domain = user.add_domain(VICTIM_HOST).await;
    let (key_id, key) = user.add_key(&domain, "Victim backend").await;
    for platform in PLATFORMS {
        let (status, c) = user
            .put(
                &format!("/v1/domains/{domain}/connections/{platform}"),
                connection_body(platform),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{c}");
    }
    let (status, hook) = user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": fake.url("/victim"), "domainId": domain, "name": "Victim hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let (status, link) = user
        .post(
            &format!("/v1/domains/{domain}/links"),
            json!({"name": "Victim link", "slug": "victim-link",
                   "targets": [{"url": "https://victim-shop.example.com/landing", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let (status, token) = user
        .post("/v1/tokens", json!({"name": "Victim script"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    app.signup("carol@victim.test").await;
    let (status, member) = user
        .post("/v1/members", json!({"email": "carol@victim.test"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    let (status, invitation) = user
        .post("/v1/members", json!({"email": "invitee@victim.test"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    assert_eq!(invitation["kind"], "invitation");
    let (status, answer) = app.inbound(&key, purchase()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let event = text(&answer["eventId"]);
    // Every delivery settles first, so whatever differs after the sweep is the sweep's doing.
    // (The webhook and the three platforms.)
    let e = settled(&user, &event, 4).await;
    let webhook = text(&hook["id"]);
    let delivery = e["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .find(|d| d["webhookId"] == webhook.as_str())
        .map(|d| text(&d["id"]))
        .expect("the webhook's delivery");
    Victim {
        workspace: user.workspace_id.clone(),
        domain,
        key_id,
        key,
        token_id: text(&token["id"]),
        webhook,
        delivery,
        event,
        link: text(&link["id"]),
        member: text(&member["userId"]),
        invitation: text(&invitation["id"]),
        user,
    }
}

/// Everything the victim can read of what it owns, to compare before and after a sweep.
async fn snapshot(v: &Victim) -> Vec<(String, Value)> {
    let (d, w) = (&v.domain, &v.webhook);
    let mut paths = vec![
        "/v1/me".to_owned(),
        format!("/v1/domains/{d}"),
        format!("/v1/domains/{d}/keys"),
        format!("/v1/domains/{d}/connections"),
        format!("/v1/domains/{d}/links"),
        format!("/v1/links/{}", v.link),
        "/v1/integrations/webhooks".to_owned(),
        format!("/v1/integrations/webhooks/{w}"),
        format!("/v1/integrations/webhooks/{w}/secret"),
        format!("/v1/integrations/webhooks/{w}/deliveries"),
        format!("/v1/deliveries/{}", v.delivery),
        format!("/v1/events/{}", v.event),
        format!("/v1/events?domainId={d}"),
        "/v1/tokens".to_owned(),
        "/v1/members".to_owned(),
        "/v1/workspaces".to_owned(),
        "/v1/audit".to_owned(),
        format!("/v1/admin/workspaces/{}", v.workspace),
        "/v1/admin/plans".to_owned(),
    ];
    paths.extend(PLATFORMS.map(|p| format!("/v1/domains/{d}/connections/{p}")));
    let mut out = Vec::new();
    for path in paths {
        let (status, body) = v.user.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        out.push((path, body));
    }
    out
}

async fn assert_unchanged(v: &Victim, before: &[(String, Value)], after_what: &str) {
    let after = snapshot(v).await;
    for ((path, old), (_, new)) in before.iter().zip(&after) {
        assert_eq!(
            old, new,
            "{after_what} changed the victim's {path}:\nbefore {old}\nafter  {new}"
        );
    }
}

/// Checks a refusal: the status wanted, an `{"error": "…"}` body and none of the victim's
/// names in it. Returns what is wrong, if anything.
fn refusal_problem(status: StatusCode, body: &str, want: StatusCode, json: bool) -> Option<String> {
    if status != want {
        return Some(format!("answered {status} (want {want}): {body:.300}"));
    }
    if json {
        let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let envelope = parsed
            .as_object()
            .is_some_and(|o| o.len() == 1 && o.get("error").is_some_and(Value::is_string));
        if !envelope {
            return Some(format!("body is not {{\"error\": \"…\"}}: {body:.300}"));
        }
    }
    VICTIM_WORDS
        .iter()
        .find(|w| body.contains(*w))
        .map(|w| format!("the answer shows the victim's {w}"))
}

// ---------------------------------------------------------------------------------------------
// Cross-tenant sweep of the API.

/// API routes that take an id but are deliberately not called as a cross-tenant attack, and why.
const API_EXEMPT: &[(&str, &str, &str)] = &[(
    "get",
    "/__cc/go/{slug}",
    "a tracking link is public by design: it redirects any visitor to the link's targets",
)];

/// One call of the attacker's: path, body (one that would be valid for the victim) and the
/// answer it must get.
struct Probe {
    path: String,
    body: Option<Value>,
    want: StatusCode,
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    Token(&'a str),
    Session,
}

/// How the attacker calls one route with the victim's ids. None: a route the sweep does not
/// know yet.
fn api_probes(method: &str, pattern: &str, v: &Victim, auth: Auth<'_>) -> Option<Vec<Probe>> {
    let (d, w) = (&v.domain, &v.webhook);
    let one = |path: String, body: Option<Value>| {
        Some(vec![Probe {
            path,
            body,
            want: StatusCode::NOT_FOUND,
        }])
    };
    let per_platform = |tail: &str, body: bool| {
        Some(
            PLATFORMS
                .iter()
                .map(|p| Probe {
                    path: format!("/v1/domains/{d}/connections/{p}{tail}"),
                    body: body.then(|| connection_body(p)),
                    want: StatusCode::NOT_FOUND,
                })
                .collect(),
        )
    };
    match (method, pattern) {
        // Platform-admin routes are not tenant-scoped. To anyone but a platform admin they
        // answer 404, as if they did not exist (README; the product's choice over 403).
        ("get", "/v1/admin/workspaces/{id}") => one(format!("/v1/admin/workspaces/{}", v.workspace), None),
        ("patch", "/v1/admin/workspaces/{id}") => one(
            format!("/v1/admin/workspaces/{}", v.workspace),
            Some(json!({"status": "suspended", "reason": "sweep"})),
        ),
        ("patch", "/v1/admin/plans/{tier}") => {
            one("/v1/admin/plans/pulse".into(), Some(json!({"maxDomains": 0})))
        }
        ("patch", "/v1/members/{id}") => one(
            format!("/v1/members/{}", v.member),
            Some(json!({"role": "owner"})),
        ),
        ("delete", "/v1/members/{id}") => one(format!("/v1/members/{}", v.member), None),
        ("delete", "/v1/invitations/{id}") => one(format!("/v1/invitations/{}", v.invitation), None),
        ("post", "/v1/workspaces/{id}/switch") => Some(vec![Probe {
            path: format!("/v1/workspaces/{}/switch", v.workspace),
            body: None,
            // A token never switches (403 before any lookup); a session is not a member (404).
            want: match auth {
                Auth::Token(_) => StatusCode::FORBIDDEN,
                Auth::Session => StatusCode::NOT_FOUND,
            },
        }]),
        ("delete", "/v1/tokens/{id}") => one(format!("/v1/tokens/{}", v.token_id), None),
        ("get" | "delete", "/v1/domains/{id}") => one(format!("/v1/domains/{d}"), None),
        ("patch", "/v1/domains/{id}") => one(
            format!("/v1/domains/{d}"),
            Some(json!({"attributionWindowDays": 7})),
        ),
        ("get", "/v1/domains/{id}/connections") => one(format!("/v1/domains/{d}/connections"), None),
        ("get" | "delete", "/v1/domains/{id}/connections/{platform}") => per_platform("", false),
        ("put", "/v1/domains/{id}/connections/{platform}") => per_platform("", true),
        ("post", "/v1/domains/{id}/connections/{platform}/test") => per_platform("/test", false),
        ("get", "/v1/domains/{id}/keys") => one(format!("/v1/domains/{d}/keys"), None),
        ("post", "/v1/domains/{id}/keys") => one(
            format!("/v1/domains/{d}/keys"),
            Some(json!({"name": "Mallory"})),
        ),
        ("post", "/v1/keys/{id}/revoke") => one(format!("/v1/keys/{}/revoke", v.key_id), None),
        ("post", "/v1/keys/{id}/restore") => one(format!("/v1/keys/{}/restore", v.key_id), None),
        ("delete", "/v1/keys/{id}") => one(format!("/v1/keys/{}", v.key_id), None),
        ("get", "/v1/events/{id}") => one(format!("/v1/events/{}", v.event), None),
        ("get" | "delete", "/v1/integrations/webhooks/{id}") => {
            one(format!("/v1/integrations/webhooks/{w}"), None)
        }
        ("patch", "/v1/integrations/webhooks/{id}") => one(
            format!("/v1/integrations/webhooks/{w}"),
            Some(json!({"url": "https://attacker.example/steal", "status": "paused"})),
        ),
        ("post", "/v1/integrations/webhooks/{id}/test") => {
            one(format!("/v1/integrations/webhooks/{w}/test"), None)
        }
        ("get", "/v1/integrations/webhooks/{id}/secret") => {
            one(format!("/v1/integrations/webhooks/{w}/secret"), None)
        }
        ("post", "/v1/integrations/webhooks/{id}/secret/rotate") => {
            one(format!("/v1/integrations/webhooks/{w}/secret/rotate"), None)
        }
        ("get", "/v1/integrations/webhooks/{id}/deliveries") => {
            one(format!("/v1/integrations/webhooks/{w}/deliveries"), None)
        }
        ("get", "/v1/deliveries/{id}") => one(format!("/v1/deliveries/{}", v.delivery), None),
        ("post", "/v1/deliveries/{id}/redeliver") => {
            one(format!("/v1/deliveries/{}/redeliver", v.delivery), None)
        }
        ("get", "/v1/domains/{id}/links") => one(format!("/v1/domains/{d}/links"), None),
        ("post", "/v1/domains/{id}/links") => one(
            format!("/v1/domains/{d}/links"),
            Some(json!({"name": "Mallory", "slug": "mallory-link",
                        "targets": [{"url": "https://attacker.example/", "weight": 1}]})),
        ),
        ("get" | "delete", "/v1/links/{id}") => one(format!("/v1/links/{}", v.link), None),
        ("patch", "/v1/links/{id}") => one(
            format!("/v1/links/{}", v.link),
            Some(json!({"name": "Hijacked", "targets": [{"url": "https://attacker.example/", "weight": 1}]})),
        ),
        _ => None,
    }
}

/// Every API route with a path parameter, minus the exemptions; fails naming the routes the
/// sweep has no case for.
fn api_routes_to_sweep(v: &Victim, auth: Auth<'_>) -> Vec<(&'static str, Probe)> {
    let all = postback_api::routes::all();
    for (method, pattern, _) in API_EXEMPT {
        assert!(
            all.contains(&(*method, *pattern)),
            "API_EXEMPT names {method} {pattern}, which is no longer a route: remove it"
        );
    }
    let mut unknown = Vec::new();
    let mut probes = Vec::new();
    for (method, pattern) in all {
        if !pattern.contains('{') || API_EXEMPT.iter().any(|(m, p, _)| (*m, *p) == (method, pattern)) {
            continue;
        }
        match api_probes(method, pattern, v, auth) {
            Some(list) => probes.extend(list.into_iter().map(|p| (method, p))),
            None => unknown.push(format!("{method} {pattern}")),
        }
    }
    assert!(
        unknown.is_empty(),
        "the cross-tenant sweep has no case for {unknown:?}: add each to api_probes in \
         tests/e2e/security.rs (the victim's ids and a valid body; another tenant must get 404), \
         or to API_EXEMPT with the reason it is not tenant-owned"
    );
    probes
}

async fn attacker_call(
    attacker: &User,
    auth: Auth<'_>,
    method: &str,
    probe: &Probe,
) -> (StatusCode, String) {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
    let url = format!("{}{}", attacker.base, probe.path);
    let mut req = match auth {
        Auth::Token(token) => reqwest::Client::new()
            .request(method, url)
            .bearer_auth(token),
        Auth::Session => attacker.client.request(method, url),
    };
    if let Some(body) = &probe.body {
        req = req.json(body);
    }
    let resp = req.send().await.expect("request");
    (resp.status(), resp.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_gets_404_on_every_api_route_that_takes_an_id() {
    let fake = Receiver::start().await;
    fake.always(Reply::ok().body(PLATFORM_OK));
    let app = TestApp::spawn_with_platforms(&fake.url("")).await;
    let v = victim(&app, &fake).await;
    let mallory = app.signup("mallory@attacker.test").await;
    mallory.add_domain("attacker.example.com").await;
    let (status, token) = mallory
        .post("/v1/tokens", json!({"name": "Mallory script"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let token = text(&token["token"]);

    // The ids are real: the victim reads every one of them.
    for (method, probe) in api_routes_to_sweep(&v, Auth::Session) {
        if method == "get" {
            let (status, body) = v.user.get(&probe.path).await;
            assert_eq!(status, StatusCode::OK, "the victim's own {}: {body}", probe.path);
        }
    }
    let before = snapshot(&v).await;
    let sent = fake.received().len();

    for (name, auth) in [("token", Auth::Token(&token)), ("session", Auth::Session)] {
        let mut problems = Vec::new();
        for (method, probe) in api_routes_to_sweep(&v, auth) {
            let (status, body) = attacker_call(&mallory, auth, method, &probe).await;
            if let Some(p) = refusal_problem(status, &body, probe.want, true) {
                problems.push(format!("{method} {}: {p}", probe.path));
            }
        }
        assert!(
            problems.is_empty(),
            "with a {name}, another tenant reached the victim's data:\n{}",
            problems.join("\n")
        );
        assert_unchanged(&v, &before, &format!("the sweep with a {name}")).await;
    }

    // An id in a body is the same: a webhook of the attacker's scoped to the victim's domain is
    // refused exactly as one scoped to a domain that does not exist.
    let mut answers = Vec::new();
    for domain in [v.domain.clone(), uuid::Uuid::new_v4().to_string()] {
        answers.push(
            mallory
                .post(
                    "/v1/integrations/webhooks",
                    json!({"url": "https://attacker.example/hook", "domainId": domain}),
                )
                .await,
        );
    }
    assert_eq!(answers[0].0, StatusCode::BAD_REQUEST, "{}", answers[0].1);
    assert_eq!(answers[0], answers[1]);

    // Nothing was sent on the victim's behalf (no test, no redelivery), and its key still works.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.received().len(), sent, "nothing was sent for the victim");
    assert_unchanged(&v, &before, "the body-id checks").await;
    let (status, answer) = app.inbound(&v.key, purchase()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_ne!(answer["duplicate"], true);
}

// ---------------------------------------------------------------------------------------------
// Cross-tenant sweep of the dashboard.

/// One dashboard request of the attacker's: path and form fields (besides `csrf_token`).
struct PageProbe {
    path: String,
    form: Vec<(&'static str, String)>,
}

/// Dashboard routes that take an id but are deliberately not called as a cross-tenant attack.
/// None today: every one of them is tenant-owned or admin-only.
const WEB_EXEMPT: &[(&str, &str, &str)] = &[];

fn connection_form(platform: &str) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("enabled", "on".to_owned()),
        ("access_token", "mallory-token".to_owned()),
    ];
    match platform {
        "googleads" => form.extend([
            ("customer_id", "999-999-9999".to_owned()),
            ("conversion_action", "1".to_owned()),
            ("developer_token", "mallory-dev".to_owned()),
        ]),
        "meta" => form.push(("pixel_id", "999".to_owned())),
        _ => form.push(("pixel_code", "CMALLORY".to_owned())),
    }
    form
}

/// How the attacker calls one dashboard route with the victim's ids; every one must answer 404.
/// None: a route the sweep does not know yet.
fn web_probes(method: &str, pattern: &str, v: &Victim) -> Option<Vec<PageProbe>> {
    let (d, w) = (&v.domain, &v.webhook);
    let one = |path: String, form: Vec<(&'static str, String)>| Some(vec![PageProbe { path, form }]);
    let per_platform = |tail: &str, with_form: bool| {
        Some(
            PLATFORMS
                .iter()
                .map(|p| PageProbe {
                    path: format!("/domains/{d}/connections/{p}{tail}"),
                    form: if with_form { connection_form(p) } else { Vec::new() },
                })
                .collect(),
        )
    };
    let link_form = |slug: &str| {
        vec![
            ("name", "Hijacked".to_owned()),
            ("slug", slug.to_owned()),
            ("target_url", "https://attacker.example/".to_owned()),
            ("target_weight", "1".to_owned()),
        ]
    };
    match (method, pattern) {
        ("get", "/domains/{id}")
        | ("get", "/domains/{id}/keys")
        | ("get", "/domains/{id}/events")
        | ("get", "/domains/{id}/webhooks")
        | ("get", "/domains/{id}/tracking")
        | ("get", "/domains/{id}/connections")
        | ("get" | "post", "/domains/{id}/delete") => {
            one(pattern.replace("{id}", d), Vec::new())
        }
        ("post", "/domains/{id}/keys") => {
            one(format!("/domains/{d}/keys"), vec![("name", "Mallory".into())])
        }
        ("post", "/domains/{id}/links") => one(format!("/domains/{d}/links"), link_form("mallory-web")),
        ("post", "/domains/{id}/attribution") => {
            one(format!("/domains/{d}/attribution"), vec![("days", "7".into())])
        }
        ("post", "/domains/{id}/connections/{platform}") => Some(
            PLATFORMS
                .iter()
                .map(|p| PageProbe {
                    path: format!("/domains/{d}/connections/{p}"),
                    form: connection_form(p),
                })
                .collect(),
        ),
        ("post", "/domains/{id}/connections/{platform}/test") => per_platform("/test", false),
        ("get" | "post", "/domains/{id}/connections/{platform}/delete") => {
            per_platform("/delete", false)
        }
        ("get" | "post", "/keys/{id}/revoke")
        | ("post", "/keys/{id}/restore")
        | ("get" | "post", "/keys/{id}/delete") => one(pattern.replace("{id}", &v.key_id), Vec::new()),
        ("get", "/links/{id}") | ("get" | "post", "/links/{id}/delete") => {
            one(pattern.replace("{id}", &v.link), Vec::new())
        }
        ("post", "/links/{id}") => one(format!("/links/{}", v.link), link_form("victim-link")),
        ("get", "/events/{id}") => one(format!("/events/{}", v.event), Vec::new()),
        // Platform-admin pages are not tenant-scoped: anyone but a platform admin gets 404.
        ("get", "/admin/workspaces/{id}") => {
            one(format!("/admin/workspaces/{}", v.workspace), Vec::new())
        }
        ("post", "/admin/workspaces/{id}") => one(
            format!("/admin/workspaces/{}", v.workspace),
            vec![("status", "suspended".into()), ("reason", "sweep".into())],
        ),
        ("post", "/admin/plans/{tier}") => one(
            "/admin/plans/pulse".into(),
            vec![
                ("max_keys_per_domain", "0".into()),
                ("max_domains", "0".into()),
                ("max_webhooks", "0".into()),
                ("max_events_per_month", "0".into()),
                ("retention_days", "1".into()),
            ],
        ),
        ("post", "/settings/members/{id}/role") => {
            one(format!("/settings/members/{}/role", v.member), vec![("role", "owner".into())])
        }
        ("get" | "post", "/settings/members/{id}/remove") => {
            one(format!("/settings/members/{}/remove", v.member), Vec::new())
        }
        ("post", "/settings/invitations/{id}/cancel") => {
            one(format!("/settings/invitations/{}/cancel", v.invitation), Vec::new())
        }
        // Membership-scoped: the attacker is not a member of the victim's workspace.
        ("post", "/settings/workspaces/{id}/switch") => {
            one(format!("/settings/workspaces/{}/switch", v.workspace), Vec::new())
        }
        ("get" | "post", "/settings/tokens/{id}/revoke") => {
            one(format!("/settings/tokens/{}/revoke", v.token_id), Vec::new())
        }
        ("get", "/webhooks/{id}")
        | ("post", "/webhooks/{id}/test")
        | ("post", "/webhooks/{id}/reveal")
        | ("post", "/webhooks/{id}/rotate")
        | ("get" | "post", "/webhooks/{id}/delete") => one(pattern.replace("{id}", w), Vec::new()),
        ("post", "/webhooks/{id}") => one(
            format!("/webhooks/{w}"),
            vec![
                ("url", "https://attacker.example/steal".into()),
                ("name", "Hijacked".into()),
            ],
        ),
        ("post", "/webhooks/{id}/status") => {
            one(format!("/webhooks/{w}/status"), vec![("status", "paused".into())])
        }
        ("post", "/deliveries/{id}/redeliver") => {
            one(format!("/deliveries/{}/redeliver", v.delivery), Vec::new())
        }
        _ => None,
    }
}

/// Every dashboard route with a path parameter, minus the exemptions; fails naming the routes
/// the sweep has no case for.
fn web_routes_to_sweep(v: &Victim) -> Vec<(&'static str, PageProbe)> {
    let mut unknown = Vec::new();
    let mut probes = Vec::new();
    for &(method, pattern) in postback_web::ROUTES {
        if !pattern.contains('{') || WEB_EXEMPT.iter().any(|(m, p, _)| (*m, *p) == (method, pattern)) {
            continue;
        }
        match web_probes(method, pattern, v) {
            Some(list) => probes.extend(list.into_iter().map(|p| (method, p))),
            None => unknown.push(format!("{method} {pattern}")),
        }
    }
    assert!(
        unknown.is_empty(),
        "the cross-tenant sweep has no case for the dashboard's {unknown:?}: add each to \
         web_probes in tests/e2e/security.rs (the victim's ids and valid form fields; another \
         tenant must get 404), or to WEB_EXEMPT with the reason it is not tenant-owned"
    );
    probes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_gets_404_on_every_dashboard_page_and_form_that_takes_an_id() {
    let fake = Receiver::start().await;
    fake.always(Reply::ok().body(PLATFORM_OK));
    let app = TestApp::spawn_with_platforms(&fake.url("")).await;
    let v = victim(&app, &fake).await;
    let mallory = app.signup("mallory@attacker.test").await;
    mallory.add_domain("attacker.example.com").await;

    // The ids are real: the victim opens every page (or is sent on to the domain's first tab).
    for (method, probe) in web_routes_to_sweep(&v) {
        if method == "get" {
            let resp = v.user.client.get(app.url(&probe.path)).send().await.expect("page");
            let status = resp.status();
            let to = resp.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("").to_owned();
            assert!(
                status == StatusCode::OK || (status == StatusCode::SEE_OTHER && to.starts_with(&format!("/domains/{}", v.domain))),
                "the victim's own {}: {status} {to}",
                probe.path
            );
        }
    }
    let before = snapshot(&v).await;
    let sent = fake.received().len();

    let (_, html) = mallory.page("/settings").await;
    let csrf = csrf_in(&html);
    let mut problems = Vec::new();
    for (method, probe) in web_routes_to_sweep(&v) {
        let url = app.url(&probe.path);
        let resp = if method == "get" {
            mallory.client.get(url).send().await.expect("page")
        } else {
            let mut form = probe.form.clone();
            form.push(("csrf_token", csrf.clone()));
            mallory.client.post(url).form(&form).send().await.expect("form")
        };
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if let Some(p) = refusal_problem(status, &body, StatusCode::NOT_FOUND, false) {
            problems.push(format!("{method} {}: {p}", probe.path));
        }
    }
    assert!(
        problems.is_empty(),
        "on the dashboard, another tenant reached the victim's data:\n{}",
        problems.join("\n")
    );
    assert_unchanged(&v, &before, "the dashboard sweep").await;

    // A form naming the victim's domain in a field is refused as one naming no domain at all.
    let mut answers = Vec::new();
    for domain in [v.domain.clone(), uuid::Uuid::new_v4().to_string()] {
        let resp = mallory
            .client
            .post(app.url("/webhooks"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("url", "https://attacker.example/hook"),
                ("domain_id", domain.as_str()),
            ])
            .send()
            .await
            .expect("form");
        let status = resp.status();
        let html = resp.text().await.unwrap_or_default();
        answers.push((status, html.replace(&domain, "DOMAIN")));
    }
    assert_eq!(answers[0].0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answers[0], answers[1]);
    let (_, theirs) = mallory.get("/v1/integrations/webhooks").await;
    assert_eq!(theirs["items"], json!([]), "no webhook was created");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.received().len(), sent, "nothing was sent for the victim");
    assert_unchanged(&v, &before, "the dashboard's body-id check").await;
    let (status, answer) = app.inbound(&v.key, purchase()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

// ---------------------------------------------------------------------------------------------
// Cookies.

/// A `Set-Cookie` header: name, value and attributes (attribute names lower case).
#[derive(Debug, Clone)]
struct SetCookie {
    raw: String,
    name: String,
    value: String,
    attrs: HashMap<String, String>,
}

impl SetCookie {
    fn parse(raw: &str) -> Self {
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

    fn removes(&self) -> bool {
        self.value.is_empty() || self.attrs.get("max-age").is_some_and(|m| m == "0")
    }
}

/// A browser that keeps every cookie, Secure or not (reqwest's store would not send a Secure
/// cookie back over the tests' plain http), and records every `Set-Cookie` it gets.
struct Browser {
    base: String,
    http: reqwest::Client,
    jar: BTreeMap<String, String>,
    seen: Vec<SetCookie>,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            base: app.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            jar: BTreeMap::new(),
            seen: Vec::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> (StatusCode, String) {
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

    async fn get(&mut self, path: &str) -> (StatusCode, String) {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn form(&mut self, path: &str, fields: &[(&str, &str)]) -> StatusCode {
        let req = self.http.post(format!("{}{path}", self.base)).form(fields);
        self.send(req).await.0
    }

    async fn json(&mut self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let (status, text) = self.send(req).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

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
    assert_eq!(b.form("/logout", &[("csrf_token", &csrf)]).await, StatusCode::SEE_OTHER);
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
    let signup = json!({"email": "cookies.two@example.com", "password": PASSWORD, "workspaceName": "Two"});
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
            if secure != https && !(c.removes() && !secure) {
                problems.push(format!(
                    "{}: Secure must be set exactly when the base URL is https (here {scheme})",
                    c.raw
                ));
            }
        }
        for name in ["auth_token", "pb_csrf", "pb_flash", "pb_new_key"] {
            for removal in [false, true] {
                assert!(
                    seen.iter().any(|c| c.name == name && c.removes() == removal),
                    "the journey {} {name}: {seen:#?}",
                    if removal { "never removed" } else { "never set" }
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

// ---------------------------------------------------------------------------------------------
// Sessions.

/// `auth_token` of a response, as a stolen copy would hold it.
fn session_token(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(SetCookie::parse)
        .find(|c| c.name == "auth_token" && !c.removes())
        .map(|c| c.value)
        .expect("auth_token set")
}

/// What a copy of a session cookie still gets: the API's answer to `/v1/me`, and where the
/// dashboard sends it.
async fn replay(app: &TestApp, token: &str) -> (StatusCode, String) {
    let http = reqwest::Client::builder()
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
    let http = reqwest::Client::new();
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
    assert_eq!(replay(&app, &first).await, dead, "replaced by a page log-in");
    assert_eq!(replay(&app, &second).await, alive);

    // Ended by the page's log-out.
    let (_, html) = b.get("/domains").await;
    let csrf = csrf_in(&html);
    assert_eq!(b.form("/logout", &[("csrf_token", &csrf)]).await, StatusCode::SEE_OTHER);
    assert_eq!(replay(&app, &second).await, dead, "after the page's log-out");

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

// ---------------------------------------------------------------------------------------------
// Webhook targets: DNS that changes between save and send, and private addresses in every
// spelling.

/// DNS for the delivery lookup that answers what the test says, and can change its mind.
#[derive(Clone, Default)]
struct FakeDns(Arc<Mutex<HashMap<String, Vec<IpAddr>>>>);

impl FakeDns {
    fn set(&self, host: &str, ips: &[&str]) {
        let ips = ips.iter().map(|ip| ip.parse().expect("ip")).collect();
        self.0.lock().expect("dns").insert(host.to_owned(), ips);
    }

    fn lookup(&self) -> Lookup {
        let table = self.0.clone();
        Lookup::new(move |host| {
            let answer = table.lock().expect("dns").get(host).cloned();
            Box::pin(async move {
                answer.ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such name")
                })
            })
        })
    }
}

fn delivery_with(dns: &FakeDns, allow_private_targets: bool) -> DeliveryConfig {
    DeliveryConfig {
        allow_private_targets,
        lookup: dns.lookup(),
        ..test_delivery()
    }
}

async fn shop(app: &TestApp, email: &str) -> (User, String) {
    let user = app.signup(email).await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    (user, key)
}

/// DNS rebinding: `rebind.example` answers a public address when the webhook is saved, then
/// the loopback address a receiver listens on. The attempt is refused at send time with the
/// address named, the receiver gets nothing, and the delivery fails visibly after its retries
/// (it is not dropped). The same lookup with private targets allowed does reach the receiver,
/// so the refusal is the guard's and not a broken fake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_host_that_rebinds_to_loopback_after_save_is_refused_at_send() {
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let port = receiver.base.rsplit(':').next().expect("port").to_owned();
    let url = format!("http://rebind.example:{port}/hook");
    let dns = FakeDns::default();
    dns.set("rebind.example", &["93.184.216.34"]);

    let app = TestApp::spawn_with(&fresh_database().await, delivery_with(&dns, false)).await;
    let (user, key) = shop(&app, "rebind@example.com").await;
    let (status, hook) = user
        .post("/v1/integrations/webhooks", json!({"url": url}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "saved while it looks public: {hook}");
    let id = text(&hook["id"]);

    dns.set("rebind.example", &["127.0.0.1"]);
    let (status, _) = app.inbound(&key, purchase()).await;
    assert_eq!(status, StatusCode::OK);
    let deadline = Instant::now() + WAIT;
    let delivery = loop {
        let (_, page) = user
            .get(&format!("/v1/integrations/webhooks/{id}/deliveries"))
            .await;
        let d = page["items"][0].clone();
        if d["status"] == "failed" {
            break d;
        }
        assert!(Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let attempts = delivery["attemptLog"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 4, "every attempt of the round was made: {delivery}");
    for a in attempts {
        let error = text(&a["error"]);
        assert!(
            error.contains("refused") && error.contains("127.0.0.1"),
            "the attempt names the refused address: {error}"
        );
        assert_eq!(a["statusCode"], Value::Null);
    }
    assert!(text(&delivery["lastError"]).contains("127.0.0.1"), "{delivery}");
    let (_, one) = user
        .get(&format!("/v1/deliveries/{}", text(&delivery["id"])))
        .await;
    assert_eq!(one["status"], "failed");
    assert!(receiver.received().is_empty(), "nothing reached loopback");

    // Saved now, the same URL is refused at once, naming the address.
    let (status, answer) = user
        .patch(&format!("/v1/integrations/webhooks/{id}"), json!({"url": url}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        text(&answer["error"]).contains("rebind.example resolves to 127.0.0.1"),
        "{answer}"
    );

    let lenient = TestApp::spawn_with(&fresh_database().await, delivery_with(&dns, true)).await;
    let (user, key) = shop(&lenient, "allowed@example.com").await;
    let (status, hook) = user
        .post("/v1/integrations/webhooks", json!({"url": url}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    assert_eq!(lenient.inbound(&key, purchase()).await.0, StatusCode::OK);
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].path, "/hook");
}

/// Private, loopback, link-local and unspecified targets at save time, as literals in the
/// spellings URL parsers accept (decimal, hex, octal, short forms) and as names whose DNS
/// answers them; webhooks.rs covers 127.0.0.1, 10/8, 169.254.169.254, ::1, ::ffff:127.0.0.1,
/// fd00::1, 100.64/10 and localhost as literals.
#[tokio::test]
async fn private_targets_in_every_spelling_and_behind_names_are_refused_at_save() {
    let dns = FakeDns::default();
    dns.set("public.example", &["93.184.216.34"]);
    let names = [
        ("ten.example", "10.20.30.40"),
        ("one72.example", "172.16.0.1"),
        ("one72-top.example", "172.31.255.254"),
        ("one92.example", "192.168.1.1"),
        ("loopback.example", "127.0.0.1"),
        ("metadata.example", "169.254.169.254"),
        ("zero.example", "0.0.0.0"),
        ("v6-loopback.example", "::1"),
        ("v6-ula.example", "fd12:3456:789a::1"),
        ("v6-link-local.example", "fe80::1"),
        ("v4-mapped.example", "::ffff:127.0.0.1"),
        ("v4-mapped-metadata.example", "::ffff:169.254.169.254"),
    ];
    for (name, ip) in names {
        dns.set(name, &[ip]);
    }
    // One public and one private answer: refused (a client might pick either).
    dns.set("mixed.example", &["93.184.216.34", "192.168.0.7"]);
    let app = TestApp::spawn_with(&fresh_database().await, delivery_with(&dns, false)).await;
    let user = app.signup("spellings@example.com").await;

    let literals = [
        "http://172.16.0.1/hook",
        "http://172.31.255.255/hook",
        "http://192.168.1.1/hook",
        "http://[fe80::1]/hook",
        "http://[fe80::a:b:c:d]:8080/hook",
        "http://0.0.0.0/hook",
        "http://0/hook",
        "http://[::]/hook",
        "http://2130706433/hook",
        "http://0x7f000001/hook",
        "http://0x7F.0.0.1/hook",
        "http://0177.0.0.1/hook",
        "http://017700000001/hook",
        "http://127.1/hook",
        "http://3232235777/hook",
        "http://0xa9fea9fe/latest/meta-data",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data",
        "http://[0:0:0:0:0:ffff:7f00:1]/hook",
        "https://user:pass@127.0.0.1/hook",
    ];
    let mut problems = Vec::new();
    for url in literals {
        let (status, answer) = user
            .post("/v1/integrations/webhooks", json!({"url": url}))
            .await;
        let error = answer["error"].as_str().unwrap_or("");
        if status != StatusCode::BAD_REQUEST || !error.contains("public address") {
            problems.push(format!("{url} → {status} {answer}"));
        }
    }
    for (name, ip) in names.iter().copied().chain([("mixed.example", "192.168.0.7")]) {
        let url = format!("https://{name}/hook");
        let (status, answer) = user
            .post("/v1/integrations/webhooks", json!({"url": url}))
            .await;
        let error = answer["error"].as_str().unwrap_or("");
        let shown: IpAddr = ip.parse().expect("ip");
        if status != StatusCode::BAD_REQUEST || !error.contains(&format!("resolves to {shown}")) {
            problems.push(format!("{url} ({ip}) → {status} {answer}"));
        }
    }
    assert!(problems.is_empty(), "accepted:\n{}", problems.join("\n"));

    // A public name is saved; changing it to a private spelling is refused like creating one.
    let (status, hook) = user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": "https://public.example/hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let (status, answer) = user
        .patch(
            &format!("/v1/integrations/webhooks/{}", text(&hook["id"])),
            json!({"url": "http://0x7f000001/hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    // The dashboard's form runs the same check.
    let (_, html) = user.page("/webhooks/new").await;
    let resp = user
        .client
        .post(app.url("/webhooks"))
        .form(&[
            ("csrf_token", csrf_in(&html).as_str()),
            ("url", "http://0177.0.0.1/hook"),
        ])
        .send()
        .await
        .expect("form");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.expect("html").contains("public address"));
    let (_, list) = user.get("/v1/integrations/webhooks").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
}

/// The real binary on a fresh database, with these environment variables on top of a private
/// data directory and a port of its own; answers its base URL. Proxy settings the tests run
/// with are not passed on.
async fn run_postback(env: &[(&str, String)]) -> (tokio::process::Child, String, tempfile::TempDir) {
    use tokio::io::AsyncBufReadExt;
    let db_url = fresh_database().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_postback"));
    cmd.current_dir(dir.path())
        .env("DATABASE_URL", &db_url)
        .env("POSTBACK_DATA_DIR", dir.path())
        .env("POSTBACK_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info");
    for var in [
        "POSTBACK_ALLOW_PRIVATE_TARGETS",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run postback");
    let mut out = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = out.next_line().await {
            if let Some(url) = line
                .split("open ")
                .nth(1)
                .and_then(|r| r.split(" for the dashboard").next())
            {
                return url.trim_end_matches('/').to_owned();
            }
        }
        panic!("postback ended without printing its URL");
    })
    .await
    .expect("started in time");
    // Keep reading, so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
    (child, base, dir)
}

/// A proxy in the environment (`HTTP_PROXY`) would resolve the target's name itself, where the
/// send-time check cannot see it: while private targets are refused, deliveries never go
/// through one. Here the "proxy" is a recorder; a webhook whose name does not resolve must fail
/// to send rather than reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_do_not_go_through_a_proxy_that_would_resolve_names_unchecked() {
    let proxy = Receiver::start().await;
    proxy.always(Reply::ok());
    let (_child, base, _dir) = run_postback(&[
        ("HTTP_PROXY", proxy.url("")),
        ("http_proxy", proxy.url("")),
        ("POSTBACK_RETRY_SCHEDULE", "100ms".to_owned()),
    ])
    .await;
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let user = User {
        client: http,
        base,
        workspace_id: String::new(),
    };
    let (status, _) = user
        .post(
            "/v1/auth/signup",
            json!({"email": "proxy@example.com", "password": PASSWORD, "workspaceName": "Proxy"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    // Does not resolve: accepted at save, decided at send.
    let (status, hook) = user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": "http://internal-only.proxied.invalid/hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let resp = reqwest::Client::new()
        .post(format!("{}/__cc/inbound", user.base))
        .header("X-CC-Api-Key", &key)
        .json(&purchase())
        .send()
        .await
        .expect("inbound");
    assert_eq!(resp.status(), StatusCode::OK);
    let id = text(&hook["id"]);
    let deadline = Instant::now() + WAIT;
    let delivery = loop {
        let (_, page) = user
            .get(&format!("/v1/integrations/webhooks/{id}/deliveries"))
            .await;
        let d = page["items"][0].clone();
        if d["status"] == "failed" || d["status"] == "succeeded" {
            break d;
        }
        assert!(Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        proxy.received().is_empty(),
        "the delivery went through the proxy: {delivery}"
    );
    assert_eq!(delivery["status"], "failed", "{delivery}");
}

// ---------------------------------------------------------------------------------------------
// Secrets at rest.

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
    let http = reqwest::Client::new();
    let resp = http
        .post(app.url("/v1/auth/signup"))
        .json(&json!({"email": "vault@example.com", "password": password, "workspaceName": "Vault"}))
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
        client: reqwest::Client::builder()
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
            .put(&format!("/v1/domains/{domain}/connections/{platform}"), body)
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
        .post("/v1/integrations/webhooks", json!({"url": fake.url("/generated")}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{generated}");
    let first_generated = text(&generated["secret"]);
    let (_, rotated) = user
        .post(
            &format!("/v1/integrations/webhooks/{}/secret/rotate", text(&generated["id"])),
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
    assert!(dump.contains("vault.example.com"), "the dump reads the data");
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
        assert!(!dump.contains(secret.as_str()), "{secret} is stored in clear");
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
            count("SELECT count(*) FROM sessions WHERE token_hash = $1", sha(s)).await,
            1,
            "a session is stored as its SHA-256"
        );
    }
    assert_eq!(
        count("SELECT count(*) FROM api_tokens WHERE token_hash = $1", sha(&token)).await,
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM inbound_keys WHERE key_hash = $1", sha(&key)).await,
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
    assert_eq!(clear, 0, "every connection's credentials are sealed, and only sealed");
}
