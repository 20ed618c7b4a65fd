//! Cross-tenant sweep: every route of the API (`postback_api::routes::all()`) and of the
//! dashboard (`postback_web::ROUTES`) that takes an id, called by another tenant with the
//! victim's real ids and a valid body, answers 404 (`{"error"}` on the API) and changes nothing
//! the victim can see. A route with no case here fails the sweep, so it stays exhaustive.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{connection_body, settled, text, PLATFORMS, PLATFORM_OK};
use crate::helpers::{csrf_in, purchase, TestApp, User};
use crate::receiver::{Receiver, Reply};

// The victim's world.

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

/// Tenant A: one of everything a route can name.
struct Victim {
    user: User,
    workspace: String,
    domain: String,
    key_id: String,
    key: String,
    token_id: String,
    webhook: String,
    /// The webhook's signing secret.
    secret: String,
    delivery: String,
    event: String,
    link: String,
    /// A teammate's user id (A's workspace has two members).
    member: String,
    invitation: String,
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
    let carol = app.signup("carol@victim.test").await;
    let (status, invited) = user
        .post("/v1/members", json!({"email": "carol@victim.test"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invited}");
    let invite = crate::mail::queued_token(app, "carol@victim.test", "/invitations/accept").await;
    let (status, joined) = carol
        .post("/v1/invitations/accept", json!({"token": invite}))
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    let (_, member) = carol.get("/v1/me").await;
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
        secret: text(&hook["secret"]),
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
        let (status, mut body) = v.user.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        if path == "/v1/audit" {
            // The snapshot's own reading of the secret is audited; leave those entries out.
            if let Some(items) = body["items"].as_array_mut() {
                items.retain(|e| {
                    !(e["action"] == "webhook.secret.reveal"
                        && e["actorEmail"] == "alice@victim.test")
                });
            }
        }
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
/// names, key or secret in it. Returns what is wrong, if anything.
fn refusal_problem(
    v: &Victim,
    status: StatusCode,
    body: &str,
    want: StatusCode,
    json: bool,
) -> Option<String> {
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
        .copied()
        .chain([v.key.as_str(), v.secret.as_str()])
        .find(|w| body.contains(w))
        .map(|w| format!("the answer shows the victim's {w}"))
}

// ---------------------------------------------------------------------------------------------
// The API.

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
        ("get", "/v1/admin/workspaces/{id}") => {
            one(format!("/v1/admin/workspaces/{}", v.workspace), None)
        }
        ("patch", "/v1/admin/workspaces/{id}") => one(
            format!("/v1/admin/workspaces/{}", v.workspace),
            Some(json!({"status": "suspended", "reason": "sweep"})),
        ),
        ("patch", "/v1/admin/plans/{tier}") => one(
            "/v1/admin/plans/pulse".into(),
            Some(json!({"maxDomains": 0})),
        ),
        ("patch", "/v1/members/{id}") => one(
            format!("/v1/members/{}", v.member),
            Some(json!({"role": "owner"})),
        ),
        ("delete", "/v1/members/{id}") => one(format!("/v1/members/{}", v.member), None),
        ("delete", "/v1/invitations/{id}") => {
            one(format!("/v1/invitations/{}", v.invitation), None)
        }
        ("post", "/v1/invitations/{id}/resend") => {
            one(format!("/v1/invitations/{}/resend", v.invitation), None)
        }
        // The name is right: only membership keeps the attacker out.
        ("post", "/v1/workspaces/{id}/delete") => one(
            format!("/v1/workspaces/{}/delete", v.workspace),
            Some(json!({"name": "Test Co"})),
        ),
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
        ("get", "/v1/domains/{id}/connections") => {
            one(format!("/v1/domains/{d}/connections"), None)
        }
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
        ("delete", "/v1/integrations/webhooks/{id}/secret/previous") => one(
            format!("/v1/integrations/webhooks/{w}/secret/previous"),
            None,
        ),
        ("post", "/v1/integrations/webhooks/{id}/recover") => one(
            format!("/v1/integrations/webhooks/{w}/recover"),
            Some(json!({"since": "2000-01-01T00:00:00Z"})),
        ),
        ("get", "/v1/integrations/webhooks/{id}/queue") => {
            one(format!("/v1/integrations/webhooks/{w}/queue"), None)
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
            Some(
                json!({"name": "Hijacked", "targets": [{"url": "https://attacker.example/", "weight": 1}]}),
            ),
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
        if !pattern.contains('{')
            || API_EXEMPT
                .iter()
                .any(|(m, p, _)| (*m, *p) == (method, pattern))
        {
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
        Auth::Token(token) => crate::helpers::http_client()
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
            assert_eq!(
                status,
                StatusCode::OK,
                "the victim's own {}: {body}",
                probe.path
            );
        }
    }
    let before = snapshot(&v).await;
    let sent = fake.received().len();

    for (name, auth) in [("token", Auth::Token(&token)), ("session", Auth::Session)] {
        let mut problems = Vec::new();
        for (method, probe) in api_routes_to_sweep(&v, auth) {
            let (status, body) = attacker_call(&mallory, auth, method, &probe).await;
            if let Some(p) = refusal_problem(&v, status, &body, probe.want, true) {
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
    assert_eq!(
        fake.received().len(),
        sent,
        "nothing was sent for the victim"
    );
    assert_unchanged(&v, &before, "the body-id checks").await;
    let (status, answer) = app.inbound(&v.key, purchase()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_ne!(answer["duplicate"], true);
}

// ---------------------------------------------------------------------------------------------
// The dashboard.

/// One dashboard request of the attacker's: path and form fields (besides `csrf_token`).
struct PageProbe {
    path: String,
    form: Vec<(&'static str, String)>,
}

/// Dashboard routes that take an id but are deliberately not called as a cross-tenant attack.
/// The OAuth return and pick take the platform only; their flow is bound to the session.
const WEB_EXEMPT: &[(&str, &str, &str)] = &[
    (
        "get",
        "/oauth/{platform}/callback",
        "takes no tenant id: the state is bound to the session that started it (another session gets 400, platforms::google::connect_google_ads_by_oauth_and_pick_the_conversion_action)",
    ),
    (
        "post",
        "/oauth/{platform}/pick",
        "takes no tenant id: the flow is bound to the session that started it",
    ),
];

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
    let one =
        |path: String, form: Vec<(&'static str, String)>| Some(vec![PageProbe { path, form }]);
    let per_platform = |tail: &str, with_form: bool| {
        Some(
            PLATFORMS
                .iter()
                .map(|p| PageProbe {
                    path: format!("/domains/{d}/connections/{p}{tail}"),
                    form: if with_form {
                        connection_form(p)
                    } else {
                        Vec::new()
                    },
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
        | ("get" | "post", "/domains/{id}/delete") => one(pattern.replace("{id}", d), Vec::new()),
        ("post", "/domains/{id}/keys") => one(
            format!("/domains/{d}/keys"),
            vec![("name", "Mallory".into())],
        ),
        ("post", "/domains/{id}/links") => {
            one(format!("/domains/{d}/links"), link_form("mallory-web"))
        }
        ("post", "/domains/{id}/attribution") => one(
            format!("/domains/{d}/attribution"),
            vec![("days", "7".into())],
        ),
        ("post", "/domains/{id}/default-country") => one(
            format!("/domains/{d}/default-country"),
            vec![("country", "GB".into())],
        ),
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
        // Every platform connects by OAuth.
        ("get", "/domains/{id}/connections/{platform}/connect") => per_platform("/connect", false),
        ("get" | "post", "/domains/{id}/connections/{platform}/delete") => {
            per_platform("/delete", false)
        }
        ("get" | "post", "/keys/{id}/revoke")
        | ("post", "/keys/{id}/restore")
        | ("get" | "post", "/keys/{id}/delete") => {
            one(pattern.replace("{id}", &v.key_id), Vec::new())
        }
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
        ("post", "/settings/members/{id}/role") => one(
            format!("/settings/members/{}/role", v.member),
            vec![("role", "owner".into())],
        ),
        ("get" | "post", "/settings/members/{id}/remove") => {
            one(format!("/settings/members/{}/remove", v.member), Vec::new())
        }
        ("post", "/settings/invitations/{id}/cancel") => one(
            format!("/settings/invitations/{}/cancel", v.invitation),
            Vec::new(),
        ),
        ("post", "/settings/invitations/{id}/resend") => one(
            format!("/settings/invitations/{}/resend", v.invitation),
            Vec::new(),
        ),
        // Membership-scoped: the attacker is not a member of the victim's workspace.
        ("post", "/settings/workspaces/{id}/switch") => one(
            format!("/settings/workspaces/{}/switch", v.workspace),
            Vec::new(),
        ),
        ("get" | "post", "/settings/tokens/{id}/revoke") => one(
            format!("/settings/tokens/{}/revoke", v.token_id),
            Vec::new(),
        ),
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
        ("post", "/webhooks/{id}/status") => one(
            format!("/webhooks/{w}/status"),
            vec![("status", "paused".into())],
        ),
        ("post", "/webhooks/{id}/end-overlap") => {
            one(format!("/webhooks/{w}/end-overlap"), Vec::new())
        }
        ("post", "/webhooks/{id}/delivery") => one(
            format!("/webhooks/{w}/delivery"),
            vec![
                ("rate_limit", "1".into()),
                ("headers", "X-Hijacked: yes".into()),
            ],
        ),
        ("post", "/webhooks/{id}/recover") => one(
            format!("/webhooks/{w}/recover"),
            vec![("since", "2000-01-01T00:00".into())],
        ),
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
        if !pattern.contains('{')
            || WEB_EXEMPT
                .iter()
                .any(|(m, p, _)| (*m, *p) == (method, pattern))
        {
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
            let resp = v
                .user
                .client
                .get(app.url(&probe.path))
                .send()
                .await
                .expect("page");
            let status = resp.status();
            let to = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .unwrap_or("")
                .to_owned();
            assert!(
                status == StatusCode::OK
                    || (status == StatusCode::SEE_OTHER
                        && to.starts_with(&format!("/domains/{}", v.domain))),
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
            mallory
                .client
                .post(url)
                .form(&form)
                .send()
                .await
                .expect("form")
        };
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if let Some(p) = refusal_problem(&v, status, &body, StatusCode::NOT_FOUND, false) {
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
    assert_eq!(
        fake.received().len(),
        sent,
        "nothing was sent for the victim"
    );
    assert_unchanged(&v, &before, "the dashboard's body-id check").await;
    let (status, answer) = app.inbound(&v.key, purchase()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}
