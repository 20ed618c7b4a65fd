//! The audit log records every owner and member action that changes or exposes something. The
//! walk below calls every mutating route of the API (`postback_api::routes::all()`) and of the
//! dashboard (`postback_web::ROUTES`), and the secret-revealing GET, against a real server, and
//! checks that each wrote its audit entry. A route neither walked nor exempted here (with the
//! reason) fails the test: a new mutating route must write an entry and be added to the walk.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{csrf_in, purchase, TestApp, User};
use crate::receiver::{Receiver, Reply};

/// Routes that write no audit entry, and why.
const EXEMPT: &[(&str, &str, &str)] = &[
    (
        "post",
        "/v1/auth/verify",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/v1/auth/verify/resend",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/v1/auth/password/forgot",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/v1/auth/password/reset",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/v1/auth/password",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/v1/auth/email",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "delete",
        "/v1/auth/sessions/others",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/v1/me/delete",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "put",
        "/v1/me/notifications",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/forgot-password",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/reset-password",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/verify-email/resend",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/settings/account/password",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/settings/account/email",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/settings/account/sessions",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/settings/account/notifications",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/settings/account/delete",
        "the user's own account (verification, password, email, sessions, notifications, deletion), not a workspace's: no workspace audit entry",
    ),
    (
        "post",
        "/v1/workspaces/{id}/delete",
        "deletes the workspace with its audit log; its members are told by mail",
    ),
    (
        "post",
        "/settings/workspace/delete",
        "deletes the workspace with its audit log; its members are told by mail",
    ),

    (
        "post",
        "/v1/auth/signup",
        "creates the account itself; nobody acts in a workspace yet",
    ),
    (
        "post",
        "/v1/auth/login",
        "a session, not a workspace change",
    ),
    (
        "post",
        "/v1/auth/logout",
        "a session, not a workspace change",
    ),
    (
        "post",
        "/signup",
        "creates the account itself; nobody acts in a workspace yet",
    ),
    ("post", "/login", "a session, not a workspace change"),
    ("post", "/logout", "a session, not a workspace change"),
    (
        "post",
        "/v1/workspaces/{id}/switch",
        "changes only which workspace the session shows",
    ),
    (
        "post",
        "/settings/workspaces/{id}/switch",
        "changes only which workspace the session shows",
    ),
    (
        "post",
        "/v1/inbound",
        "events sent with an inbound key, not a member's action",
    ),
    (
        "post",
        "/v1/integrations/webhooks/{id}/test",
        "sends a sample; changes and reveals nothing",
    ),
    (
        "post",
        "/webhooks/{id}/test",
        "sends a sample; changes and reveals nothing",
    ),
    (
        "post",
        "/v1/domains/{id}/connections/{platform}/test",
        "sends a sample; changes and reveals nothing",
    ),
    (
        "post",
        "/domains/{id}/connections/{platform}/test",
        "sends a sample; changes and reveals nothing",
    ),
    (
        "post",
        "/oauth/{platform}/pick",
        "writes connection.save, checked by platforms::google::connect_google_ads_by_oauth_and_pick_the_conversion_action (it needs the whole OAuth flow against the fake Google)",
    ),
];

/// GET routes that expose a secret, walked like the mutating ones.
const EXPOSING: &[(&str, &str)] = &[("get", "/v1/integrations/webhooks/{id}/secret")];

/// Anonymous endpoints (tracking, inbound by key, health): nobody signed in acts there.
fn anonymous(path: &str) -> bool {
    path.starts_with("/__cc/") || postback_api::ROOT_ROUTES.iter().any(|(_, p)| *p == path)
}

struct Walk {
    app: TestApp,
    owner: User,
    csrf: String,
    covered: BTreeSet<(String, String)>,
}

impl Walk {
    /// Makes `user_id` a member of the owner's workspace.
    async fn join(&self, user_id: &str) {
        self.app
            .sql(&format!(
                "INSERT INTO memberships (workspace_id, user_id, role) VALUES ('{}', '{user_id}', 'member')
                 ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = 'member'",
                self.owner.workspace_id
            ))
            .await;
    }

    async fn entries(&self, action: &str) -> i64 {
        self.app
            .count(&format!(
                "SELECT count(*) AS n FROM audit_log WHERE action = '{action}'"
            ))
            .await
    }

    async fn check(&mut self, method: &str, pattern: &str, path: &str, action: &str, before: i64) {
        let after = self.entries(action).await;
        assert_eq!(
            after,
            before + 1,
            "{method} {path} ({pattern}) must write one {action:?} audit entry"
        );
        self.covered.insert((method.to_owned(), pattern.to_owned()));
    }

    /// Calls an API route as the owner; it must succeed and write `action`.
    async fn api(
        &mut self,
        method: &str,
        pattern: &str,
        path: &str,
        body: Option<Value>,
        action: &str,
    ) -> Value {
        let before = self.entries(action).await;
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let (status, answer) = self.owner.send(m, path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        self.check(method, pattern, path, action, before).await;
        answer
    }

    /// Posts a dashboard form (with the session's CSRF token) as the owner.
    async fn form(&mut self, pattern: &str, path: &str, fields: &[(&str, &str)], action: &str) {
        let before = self.entries(action).await;
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", &self.csrf)];
        all.extend_from_slice(fields);
        let resp = self
            .owner
            .client
            .post(format!("{}{path}", self.owner.base))
            .form(&all)
            .send()
            .await
            .expect("form");
        let status = resp.status();
        let flash = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .join("; ");
        assert!(
            status.is_success() || status.is_redirection(),
            "POST {path}: {status} {}",
            resp.text().await.unwrap_or_default()
        );
        assert!(!flash.contains("k=error"), "POST {path} failed: {flash}");
        self.check("post", pattern, path, action, before).await;
    }
}

async fn delivery_ids(user: &User, hook: &str, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let (_, page) = user
            .get(&format!("/v1/integrations/webhooks/{hook}/deliveries"))
            .await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let done: Vec<String> = items
            .iter()
            .filter(|d| d["status"] == "succeeded")
            .filter_map(|d| d["id"].as_str().map(str::to_owned))
            .collect();
        if done.len() >= n {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} deliveries did not succeed in time");
}

#[tokio::test]
async fn every_mutating_route_writes_an_audit_entry() {
    let app = TestApp::spawn().await;
    // The first account is the platform admin, so the admin routes are walked too.
    let owner = app.signup("owner@audit.example").await;
    let mate = app.signup("mate@audit.example").await;
    let (_, page) = owner.page("/settings").await;
    let csrf = csrf_in(&page);
    // Room for a domain made over the API and one in the dashboard.
    app.sql(&format!(
        "UPDATE workspaces SET plan = 'command' WHERE id = '{}'",
        owner.workspace_id
    ))
    .await;
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let mut w = Walk {
        app,
        owner,
        csrf,
        covered: BTreeSet::new(),
    };

    // ---- The API ----
    let d = w
        .api(
            "post",
            "/v1/domains",
            "/v1/domains",
            Some(json!({"hostname": "api.audit.example"})),
            "domain.create",
        )
        .await;
    let domain = d["id"].as_str().expect("id").to_owned();
    w.api(
        "patch",
        "/v1/domains/{id}",
        &format!("/v1/domains/{domain}"),
        Some(json!({"attributionWindowDays": 7})),
        "domain.update",
    )
    .await;
    let k = w
        .api(
            "post",
            "/v1/domains/{id}/keys",
            &format!("/v1/domains/{domain}/keys"),
            Some(json!({"name": "Backend"})),
            "key.create",
        )
        .await;
    let key_id = k["id"].as_str().expect("id").to_owned();
    let key = k["key"].as_str().expect("key").to_owned();
    w.api(
        "post",
        "/v1/keys/{id}/revoke",
        &format!("/v1/keys/{key_id}/revoke"),
        None,
        "key.revoke",
    )
    .await;
    w.api(
        "post",
        "/v1/keys/{id}/restore",
        &format!("/v1/keys/{key_id}/restore"),
        None,
        "key.restore",
    )
    .await;
    let t = w
        .api(
            "post",
            "/v1/tokens",
            "/v1/tokens",
            Some(json!({"name": "CI"})),
            "token.create",
        )
        .await;
    let token = t["id"].as_str().expect("id").to_owned();
    w.api(
        "delete",
        "/v1/tokens/{id}",
        &format!("/v1/tokens/{token}"),
        None,
        "token.revoke",
    )
    .await;
    let connection = format!("/v1/domains/{domain}/connections/meta");
    w.api(
        "put",
        "/v1/domains/{id}/connections/{platform}",
        &connection,
        Some(json!({"settings": {"pixelId": "1234567890"}, "credentials": {"accessToken": "EAAB-secret"}})),
        "connection.save",
    )
    .await;
    w.api(
        "delete",
        "/v1/domains/{id}/connections/{platform}",
        &connection,
        None,
        "connection.delete",
    )
    .await;
    let h = w
        .api(
            "post",
            "/v1/integrations/webhooks",
            "/v1/integrations/webhooks",
            Some(json!({"url": receiver.url("/hook"), "events": ["purchase"]})),
            "webhook.create",
        )
        .await;
    let hook = h["id"].as_str().expect("id").to_owned();
    let hook_path = format!("/v1/integrations/webhooks/{hook}");
    w.api(
        "patch",
        "/v1/integrations/webhooks/{id}",
        &hook_path,
        Some(json!({"name": "Orders"})),
        "webhook.update",
    )
    .await;
    w.api(
        "get",
        "/v1/integrations/webhooks/{id}/secret",
        &format!("{hook_path}/secret"),
        None,
        "webhook.secret.reveal",
    )
    .await;
    w.api(
        "post",
        "/v1/integrations/webhooks/{id}/secret/rotate",
        &format!("{hook_path}/secret/rotate"),
        None,
        "webhook.secret_rotated",
    )
    .await;
    w.api(
        "delete",
        "/v1/integrations/webhooks/{id}/secret/previous",
        &format!("{hook_path}/secret/previous"),
        None,
        "webhook.secret_overlap_ended",
    )
    .await;
    w.api(
        "post",
        "/v1/integrations/webhooks/{id}/recover",
        &format!("{hook_path}/recover"),
        Some(json!({"since": "2020-01-01T00:00:00Z"})),
        "webhook.recovered",
    )
    .await;
    for _ in 0..2 {
        let (status, answer) = w.app.inbound(&key, purchase()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let deliveries = delivery_ids(&w.owner, &hook, 2).await;
    w.api(
        "post",
        "/v1/deliveries/{id}/redeliver",
        &format!("/v1/deliveries/{}/redeliver", deliveries[0]),
        None,
        "delivery.redeliver",
    )
    .await;
    let l = w
        .api(
            "post",
            "/v1/domains/{id}/links",
            &format!("/v1/domains/{domain}/links"),
            Some(json!({"name": "Sale", "slug": "api-sale", "targets": [{"url": "https://a.test/", "weight": 1}]})),
            "link.create",
        )
        .await;
    let link = l["id"].as_str().expect("id").to_owned();
    w.api("patch", "/v1/links/{id}", &format!("/v1/links/{link}"), Some(json!({"name": "Spring sale", "slug": "api-sale", "targets": [{"url": "https://a.test/", "weight": 1}]})), "link.update").await;
    w.api(
        "delete",
        "/v1/links/{id}",
        &format!("/v1/links/{link}"),
        None,
        "link.delete",
    )
    .await;
    // Adding someone is always an invitation (issue 20); the mate then joins (by the mailed
    // link in real life; here directly, since joining is the mate's action, not the owner's).
    w.api(
        "post",
        "/v1/members",
        "/v1/members",
        Some(json!({"email": "mate@audit.example", "role": "member"})),
        "member.invite",
    )
    .await;
    let (_, me) = mate.get("/v1/me").await;
    let mate_id = me["userId"].as_str().expect("userId").to_owned();
    w.join(&mate_id).await;
    w.api(
        "patch",
        "/v1/members/{id}",
        &format!("/v1/members/{mate_id}"),
        Some(json!({"role": "owner"})),
        "member.role",
    )
    .await;
    w.api(
        "delete",
        "/v1/members/{id}",
        &format!("/v1/members/{mate_id}"),
        None,
        "member.remove",
    )
    .await;
    let inv = w
        .api(
            "post",
            "/v1/members",
            "/v1/members",
            Some(json!({"email": "later@audit.example", "role": "member"})),
            "member.invite",
        )
        .await;
    let inv_id = inv["id"].as_str().expect("invitation id").to_owned();
    w.api(
        "post",
        "/v1/invitations/{id}/resend",
        &format!("/v1/invitations/{inv_id}/resend"),
        None,
        "member.reinvite",
    )
    .await;
    // Joining by the mailed token is the invited person's action, recorded in the workspace.
    let later = w.app.signup("later@audit.example").await;
    let token =
        crate::mail::queued_token(&w.app, "later@audit.example", "/invitations/accept").await;
    let before = w.entries("member.join").await;
    let (status, body) = later
        .post("/v1/invitations/accept", json!({ "token": token }))
        .await;
    assert!(status.is_success(), "accept: {status} {body}");
    w.check(
        "post",
        "/v1/invitations/accept",
        "/v1/invitations/accept",
        "member.join",
        before,
    )
    .await;
    let inv = w
        .api(
            "post",
            "/v1/members",
            "/v1/members",
            Some(json!({"email": "withdrawn@audit.example", "role": "member"})),
            "member.invite",
        )
        .await;
    let inv_id = inv["id"].as_str().expect("invitation id").to_owned();
    w.api(
        "delete",
        "/v1/invitations/{id}",
        &format!("/v1/invitations/{inv_id}"),
        None,
        "member.uninvite",
    )
    .await;
    w.api(
        "patch",
        "/v1/admin/workspaces/{id}",
        &format!("/v1/admin/workspaces/{}", mate.workspace_id),
        Some(json!({"plan": "command"})),
        "workspace.plan",
    )
    .await;
    w.api(
        "patch",
        "/v1/admin/plans/{tier}",
        "/v1/admin/plans/pulse",
        Some(json!({"maxWebhooks": 9})),
        "plan.limits",
    )
    .await;
    w.api(
        "patch",
        "/v1/workspace/settings",
        "/v1/workspace/settings",
        Some(json!({"timeZone": "America/New_York"})),
        "workspace.time_zone",
    )
    .await;
    let api_domain = domain.clone();
    let api_key = key_id.clone();

    // ---- The dashboard ----
    w.form(
        "/domains",
        "/domains",
        &[("hostname", "web.audit.example")],
        "domain.create",
    )
    .await;
    w.form(
        "/settings/time-zone",
        "/settings/time-zone",
        &[("time_zone", "Europe/Berlin")],
        "workspace.time_zone",
    )
    .await;
    let (_, list) = w.owner.get("/v1/domains").await;
    let domain = list["items"][0]["id"].as_str().expect("id").to_owned();
    w.form(
        "/domains/{id}/attribution",
        &format!("/domains/{domain}/attribution"),
        &[("days", "14")],
        "domain.update",
    )
    .await;
    w.form(
        "/domains/{id}/default-country",
        &format!("/domains/{domain}/default-country"),
        &[("country", "GB")],
        "domain.update",
    )
    .await;
    w.form(
        "/domains/{id}/keys",
        &format!("/domains/{domain}/keys"),
        &[("name", "Shop")],
        "key.create",
    )
    .await;
    let (_, keys) = w.owner.get(&format!("/v1/domains/{domain}/keys")).await;
    let key_id = keys["items"][0]["id"].as_str().expect("id").to_owned();
    w.form(
        "/keys/{id}/revoke",
        &format!("/keys/{key_id}/revoke"),
        &[],
        "key.revoke",
    )
    .await;
    w.form(
        "/keys/{id}/restore",
        &format!("/keys/{key_id}/restore"),
        &[],
        "key.restore",
    )
    .await;
    w.form(
        "/settings/tokens",
        "/settings/tokens",
        &[("name", "Deploys")],
        "token.create",
    )
    .await;
    let (_, tokens) = w.owner.get("/v1/tokens").await;
    let token = tokens["items"][0]["id"].as_str().expect("id").to_owned();
    w.form(
        "/settings/tokens/{id}/revoke",
        &format!("/settings/tokens/{token}/revoke"),
        &[],
        "token.revoke",
    )
    .await;
    let connection = format!("/domains/{domain}/connections/tiktok");
    w.form(
        "/domains/{id}/connections/{platform}",
        &connection,
        &[
            ("enabled", "on"),
            ("pixel_code", "CABCDEF123"),
            ("access_token", "tt-secret"),
        ],
        "connection.save",
    )
    .await;
    w.form(
        "/domains/{id}/connections/{platform}/delete",
        &format!("{connection}/delete"),
        &[],
        "connection.delete",
    )
    .await;
    w.form(
        "/webhooks",
        "/webhooks",
        &[("url", &receiver.url("/web")), ("trigger", "conversion")],
        "webhook.create",
    )
    .await;
    let (_, hooks) = w.owner.get("/v1/integrations/webhooks").await;
    let hook = hooks["items"][0]["id"].as_str().expect("id").to_owned();
    w.form(
        "/webhooks/{id}",
        &format!("/webhooks/{hook}"),
        &[
            ("url", &receiver.url("/web2")),
            ("trigger", "conversion"),
            ("name", "Web"),
        ],
        "webhook.update",
    )
    .await;
    w.form(
        "/webhooks/{id}/reveal",
        &format!("/webhooks/{hook}/reveal"),
        &[],
        "webhook.secret.reveal",
    )
    .await;
    w.form(
        "/webhooks/{id}/rotate",
        &format!("/webhooks/{hook}/rotate"),
        &[],
        "webhook.secret_rotated",
    )
    .await;
    w.form(
        "/webhooks/{id}/end-overlap",
        &format!("/webhooks/{hook}/end-overlap"),
        &[],
        "webhook.secret_overlap_ended",
    )
    .await;
    w.form(
        "/webhooks/{id}/delivery",
        &format!("/webhooks/{hook}/delivery"),
        &[
            ("rate_limit", "5"),
            ("max_in_flight", "2"),
            ("headers", "X-Team: growth"),
        ],
        "webhook.delivery_settings_changed",
    )
    .await;
    w.form(
        "/webhooks/{id}/recover",
        &format!("/webhooks/{hook}/recover"),
        &[("since", "2020-01-01T00:00"), ("until", "")],
        "webhook.recovered",
    )
    .await;
    w.form(
        "/webhooks/{id}/status",
        &format!("/webhooks/{hook}/status"),
        &[("status", "paused")],
        "webhook.status",
    )
    .await;
    w.form(
        "/deliveries/{id}/redeliver",
        &format!("/deliveries/{}/redeliver", deliveries[1]),
        &[],
        "delivery.redeliver",
    )
    .await;
    w.form(
        "/domains/{id}/links",
        &format!("/domains/{domain}/links"),
        &[
            ("name", "Web sale"),
            ("slug", "web-sale"),
            ("target_id", ""),
            ("target_url", "https://b.test/"),
            ("target_weight", "1"),
        ],
        "link.create",
    )
    .await;
    let (_, links) = w.owner.get(&format!("/v1/domains/{domain}/links")).await;
    let link = links["items"][0]["id"].as_str().expect("id").to_owned();
    let target = links["items"][0]["targets"][0]["id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    w.form(
        "/links/{id}",
        &format!("/links/{link}"),
        &[
            ("name", "Web sale 2"),
            ("slug", "web-sale"),
            ("target_id", &target),
            ("target_url", "https://b.test/"),
            ("target_weight", "1"),
        ],
        "link.update",
    )
    .await;
    w.form(
        "/links/{id}/delete",
        &format!("/links/{link}/delete"),
        &[],
        "link.delete",
    )
    .await;
    w.form(
        "/settings/members",
        "/settings/members",
        &[("email", "mate.web@audit.example"), ("role", "member")],
        "member.invite",
    )
    .await;
    w.join(&mate_id).await;
    w.form(
        "/settings/members/{id}/role",
        &format!("/settings/members/{mate_id}/role"),
        &[("role", "owner")],
        "member.role",
    )
    .await;
    w.form(
        "/settings/members/{id}/remove",
        &format!("/settings/members/{mate_id}/remove"),
        &[],
        "member.remove",
    )
    .await;
    w.form(
        "/settings/members",
        "/settings/members",
        &[("email", "soon@audit.example"), ("role", "member")],
        "member.invite",
    )
    .await;
    let (_, team) = w.owner.get("/v1/members").await;
    let inv_id = team["invitations"][0]["id"]
        .as_str()
        .expect("invitation")
        .to_owned();
    w.form(
        "/settings/invitations/{id}/resend",
        &format!("/settings/invitations/{inv_id}/resend"),
        &[],
        "member.reinvite",
    )
    .await;
    w.form(
        "/settings/invitations/{id}/cancel",
        &format!("/settings/invitations/{inv_id}/cancel"),
        &[],
        "member.uninvite",
    )
    .await;
    // Accepting on the link page, signed in as the invited person.
    w.form(
        "/settings/members",
        "/settings/members",
        &[("email", "webjoin@audit.example"), ("role", "member")],
        "member.invite",
    )
    .await;
    let joiner = w.app.signup("webjoin@audit.example").await;
    let token =
        crate::mail::queued_token(&w.app, "webjoin@audit.example", "/invitations/accept").await;
    let (_, page) = joiner
        .page(&format!("/invitations/accept?token={token}"))
        .await;
    let csrf = csrf_in(&page);
    let before = w.entries("member.join").await;
    let resp = joiner
        .client
        .post(w.app.url("/invitations/accept"))
        .form(&[("csrf_token", csrf.as_str()), ("token", token.as_str())])
        .send()
        .await
        .expect("accept form");
    assert!(
        resp.status().is_redirection() || resp.status().is_success(),
        "{}",
        resp.status()
    );
    w.check(
        "post",
        "/invitations/accept",
        "/invitations/accept",
        "member.join",
        before,
    )
    .await;
    w.form(
        "/admin/workspaces/{id}",
        &format!("/admin/workspaces/{}", mate.workspace_id),
        &[("plan", "pulse")],
        "workspace.plan",
    )
    .await;
    w.form(
        "/admin/plans/{tier}",
        "/admin/plans/pulse",
        &[
            ("max_keys_per_domain", ""),
            ("max_domains", ""),
            ("max_webhooks", "8"),
            ("max_events_per_month", ""),
            ("retention_days", "30"),
        ],
        "plan.limits",
    )
    .await;
    w.form(
        "/webhooks/{id}/delete",
        &format!("/webhooks/{hook}/delete"),
        &[],
        "webhook.delete",
    )
    .await;
    w.form(
        "/keys/{id}/delete",
        &format!("/keys/{key_id}/delete"),
        &[],
        "key.delete",
    )
    .await;
    w.form(
        "/domains/{id}/delete",
        &format!("/domains/{domain}/delete"),
        &[],
        "domain.delete",
    )
    .await;
    w.api(
        "delete",
        "/v1/integrations/webhooks/{id}",
        &hook_path,
        None,
        "webhook.delete",
    )
    .await;
    w.api(
        "delete",
        "/v1/keys/{id}",
        &format!("/v1/keys/{api_key}"),
        None,
        "key.delete",
    )
    .await;
    w.api(
        "delete",
        "/v1/domains/{id}",
        &format!("/v1/domains/{api_domain}"),
        None,
        "domain.delete",
    )
    .await;

    // Every mutating route (and every exposing one) was walked or is exempt with a reason.
    let mut missing = Vec::new();
    let routes = postback_api::routes::all()
        .into_iter()
        .chain(postback_web::ROUTES.iter().copied());
    for (method, path) in routes {
        let mutating = method != "get" || EXPOSING.contains(&(method, path));
        if !mutating || anonymous(path) {
            continue;
        }
        let walked = w.covered.contains(&(method.to_owned(), path.to_owned()));
        let exempt = EXEMPT.iter().any(|(m, p, _)| *m == method && *p == path);
        if !walked && !exempt {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "mutating routes that write no audit entry (or are not walked here): {missing:?}"
    );

    // The owner sees them in the audit view of Settings, with who did it.
    let (status, page) = w.owner.page("/settings").await;
    assert_eq!(status, StatusCode::OK);
    for action in [
        "key.revoke",
        "token.create",
        "webhook.secret.reveal",
        "connection.delete",
        "link.delete",
    ] {
        assert!(page.contains(action), "Settings shows {action}");
    }
    assert!(page.contains("owner@audit.example"));
    // And no entry holds a secret.
    let leaked = w
        .app
        .count(&format!(
            "SELECT count(*) AS n FROM audit_log WHERE after::text LIKE '%{key}%' \
             OR after::text LIKE '%EAAB-secret%' OR after::text LIKE '%whsec_%'"
        ))
        .await;
    assert_eq!(leaked, 0, "audit entries never hold a key, token or secret");
}
