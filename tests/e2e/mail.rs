//! Mail over real SMTP (issue 20): an aiosmtpd server on a loopback port (tests/e2e/smtp_sink.py,
//! run with the Python of `POSTBACK_PYTHON`) receives what Postback sends. Verification, password
//! reset, invitations (the hijack by sign-up is closed), owner notifications, workspace deletion,
//! account settings, an SMTP outage, a restart between queueing and sending, and the `.eml`
//! outbox default.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{TestApp, User, PASSWORD};

/// A real SMTP server (aiosmtpd) and the mails it accepted.
pub struct Smtp {
    child: Child,
    pub port: u16,
    mails: Arc<Mutex<Vec<Value>>>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Smtp {
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    pub async fn start_on(port: u16) -> Self {
        Self::start_logging(port, None).await
    }

    /// Also appends every mail, as a JSON line, to `log` (the browser tests read it).
    pub async fn start_logging(port: u16, log: Option<&std::path::Path>) -> Self {
        let python = std::env::var("POSTBACK_PYTHON").expect(
            "POSTBACK_PYTHON is unset: run the suite with scripts/test, which installs \
             tests/api/requirements.txt (aiosmtpd) into a virtualenv",
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/smtp_sink.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .args(log.map(|p| p.as_os_str().to_owned()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SMTP server");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("SMTP server ready in time")
            .expect("read")
            .expect("a line");
        assert!(ready.contains("ready"), "{ready}");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let sink = mails.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().expect("lock").push(v);
                }
            }
        });
        Self { child, port, mails }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn all(&self) -> Vec<Value> {
        self.mails.lock().expect("lock").clone()
    }

    /// Mails to `to` received so far.
    pub fn to(&self, to: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|m| m["rcptTo"][0].as_str() == Some(to))
            .collect()
    }

    /// Waits for the first mail to `to` whose subject contains `subject`.
    pub async fn wait_for(&self, to: &str, subject: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(m) = self
                .to(to)
                .into_iter()
                .find(|m| m["subject"].as_str().is_some_and(|s| s.contains(subject)))
            {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no mail to {to} about {subject:?}; got {:#?}",
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.shutdown().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

/// The token of the link to `{base}{path}?token=` in a mail's plain-text part (and the HTML
/// part has the same link).
pub fn token_in(mail: &Value, base: &str, path: &str) -> String {
    let text = mail["text"].as_str().expect("a plain-text part");
    let token = token_from(text, base, path);
    let prefix = format!("{base}{path}?token=");
    let html = mail["html"].as_str().expect("an HTML part");
    assert!(
        html.contains(&format!("href=\"{prefix}{token}\"")),
        "{html}"
    );
    token
}

/// The token of the `{base}{path}?token=` link in the newest mail to `to` with one, waiting in the
/// outbox (for tests of other areas that run no mail worker; this module reads what SMTP got).
pub async fn queued_token(app: &TestApp, to: &str, path: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Body {
        #[diesel(sql_type = diesel::sql_types::Text)]
        text_body: String,
    }
    use diesel_async::RunQueryDsl;
    let mut conn = app.conn().await;
    let bodies: Vec<Body> = diesel::sql_query(
        "SELECT text_body FROM mail_outbox WHERE to_address = $1 AND status = 'queued' \
         ORDER BY id DESC",
    )
    .bind::<diesel::sql_types::Text, _>(to)
    .load(&mut conn)
    .await
    .expect("queued mails");
    let link = format!("{}{path}?token=", app.base);
    let text = bodies
        .iter()
        .map(|b| postback_domain::secrets::seal::open(&b.text_body).expect("sealed body"))
        .find(|t| t.contains(&link))
        .unwrap_or_else(|| panic!("no queued mail to {to} with a {link} link"));
    token_from(&text, &app.base, path)
}

fn token_from(text: &str, base: &str, path: &str) -> String {
    let prefix = format!("{base}{path}?token=");
    let start = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in:\n{text}"))
        + prefix.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// Starts the mail worker of a test server, sending to `smtp_url`.
pub fn start_mail(app: &TestApp, smtp_url: Option<String>, outbox: &std::path::Path) {
    postback_runtime::mail::start(
        app.pool.clone(),
        postback_runtime::mail::MailConfig {
            smtp_url,
            from: "Postback Tests <postback@tests.example>".into(),
            outbox_dir: outbox.to_owned(),
            poll: Duration::from_millis(100),
            quota_every: Duration::from_millis(300),
        },
    )
    .expect("mail worker");
}

async fn app_with_smtp() -> (TestApp, Smtp) {
    let smtp = Smtp::start().await;
    let app = TestApp::spawn().await;
    start_mail(&app, Some(smtp.url()), std::path::Path::new("/nonexistent"));
    (app, smtp)
}

fn anon(app: &TestApp) -> User {
    User {
        client: app.browser(),
        base: app.base.clone(),
        workspace_id: String::new(),
    }
}

async fn login(app: &TestApp, email: &str, password: &str) -> (StatusCode, User) {
    let user = anon(app);
    let (status, _) = user
        .post(
            "/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await;
    (status, user)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_up_with_an_invited_address_joins_nothing_and_the_mailed_link_joins() {
    let (app, smtp) = app_with_smtp().await;
    let owner = app.signup("boss@corp.example").await;
    let existing = app.signup("existing@corp.example").await;

    // The answer is the same whether or not the address has an account.
    let (status, invited) = owner
        .post(
            "/v1/members",
            json!({"email": "newhire@corp.example", "role": "owner"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invited}");
    let (status, invited_existing) = owner
        .post(
            "/v1/members",
            json!({"email": "existing@corp.example", "role": "member"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invited_existing}");
    assert_eq!(invited["kind"], "invitation");
    assert_eq!(invited_existing["kind"], "invitation");
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&invited), keys(&invited_existing));

    // Anyone signing up with the invited address gets their own workspace only.
    let hijacker = app.signup("newhire@corp.example").await;
    let (_, list) = hijacker.get("/v1/workspaces").await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{list}");
    assert_ne!(items[0]["id"].as_str(), Some(owner.workspace_id.as_str()));
    let (status, _) = hijacker
        .post(
            &format!("/v1/workspaces/{}/switch", owner.workspace_id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The existing account has not joined either.
    let (_, list) = existing.get("/v1/workspaces").await;
    assert_eq!(list["items"].as_array().expect("items").len(), 1);

    // The invitation mail has the link; a wrong token joins nothing.
    let mail = smtp.wait_for("newhire@corp.example", "invited you").await;
    assert!(mail["subject"]
        .as_str()
        .expect("subject")
        .contains("Test Co"));
    assert_eq!(mail["from"], "Postback Tests <postback@tests.example>");
    let token = token_in(&mail, &app.base, "/invitations/accept");
    let (status, e) = hijacker
        .post("/v1/invitations/accept", json!({"token": "not-a-token"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"].as_str().expect("error").contains("token"));
    // Not signed in: 401.
    let (status, _) = anon(&app)
        .post("/v1/invitations/accept", json!({"token": token}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The link joins, with the invited role, once.
    let (status, joined) = hijacker
        .post("/v1/invitations/accept", json!({"token": token}))
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(
        joined["workspaceId"].as_str(),
        Some(owner.workspace_id.as_str())
    );
    assert_eq!(joined["role"], "owner");
    let (_, list) = hijacker.get("/v1/workspaces").await;
    assert_eq!(list["items"].as_array().expect("items").len(), 2);
    let (status, _) = existing
        .post("/v1/invitations/accept", json!({"token": token}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the link is single use");

    // Resend: a new link, the old one stops working; withdraw: no link works.
    let (_, team) = owner.get("/v1/members").await;
    let inv_id = team["invitations"]
        .as_array()
        .expect("invitations")
        .iter()
        .find(|i| i["email"] == "existing@corp.example")
        .expect("pending invitation")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let first = smtp.wait_for("existing@corp.example", "invited you").await;
    let old = token_in(&first, &app.base, "/invitations/accept");
    let (status, resent) = owner
        .post(&format!("/v1/invitations/{inv_id}/resend"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{resent}");
    let invitations_to = |to: &str| -> Vec<Value> {
        smtp.to(to)
            .into_iter()
            .filter(|m| m["subject"].as_str().unwrap_or("").contains("invited you"))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while invitations_to("existing@corp.example").len() < 2 {
        assert!(Instant::now() < deadline, "resent mail");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = invitations_to("existing@corp.example")
        .pop()
        .expect("second");
    let new = token_in(&second, &app.base, "/invitations/accept");
    assert_ne!(old, new);
    let (status, _) = existing
        .post("/v1/invitations/accept", json!({"token": old}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Another tenant cannot resend or withdraw it.
    let (status, _) = hijacker
        .post(&format!("/v1/invitations/{inv_id}/resend"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = owner.delete(&format!("/v1/invitations/{inv_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = existing
        .post("/v1/invitations/accept", json!({"token": new}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Joining is in the workspace's audit log.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM audit_log WHERE workspace_id = '{}' AND action IN ('member.join', 'member.reinvite')",
            owner.workspace_id
        ))
        .await,
        2
    );
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_sends_a_single_use_verification_link() {
    let (app, smtp) = app_with_smtp().await;
    let user = app.signup("verify.me@mail.example").await;
    let (_, me) = user.get("/v1/me").await;
    assert_eq!(me["emailVerified"], false);
    // Queued or sent, the outbox never holds a link in clear.
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM mail_outbox WHERE text_body LIKE '%token=%' OR html_body LIKE '%token=%'"
        )
        .await,
        0
    );
    let mail = smtp
        .wait_for("verify.me@mail.example", "Confirm your email")
        .await;
    let token = token_in(&mail, &app.base, "/verify-email");
    // Nothing but its hash is stored.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM account_tokens WHERE encode(token_hash, 'escape') LIKE '%{token}%'"
        ))
        .await,
        0
    );
    let (status, done) = anon(&app)
        .post("/v1/auth/verify", json!({"token": token}))
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["email"], "verify.me@mail.example");
    let (_, me) = user.get("/v1/me").await;
    assert_eq!(me["emailVerified"], true);
    let (status, e) = anon(&app)
        .post("/v1/auth/verify", json!({"token": token}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "single use: {e}");
    // Resend is refused once confirmed; a fresh account can ask for a new link.
    let (status, _) = user.post("/v1/auth/verify/resend", json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let other = app.signup("resend.me@mail.example").await;
    let first = smtp
        .wait_for("resend.me@mail.example", "Confirm your email")
        .await;
    let (status, _) = other.post("/v1/auth/verify/resend", json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(30);
    while smtp.to("resend.me@mail.example").len() < 2 {
        assert!(Instant::now() < deadline, "resent mail");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let old = token_in(&first, &app.base, "/verify-email");
    let (status, _) = anon(&app)
        .post("/v1/auth/verify", json!({"token": old}))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a new link replaces the old"
    );
    // An expired link is refused.
    let newest = smtp.to("resend.me@mail.example").pop().expect("mail");
    let newest = token_in(&newest, &app.base, "/verify-email");
    app.sql("UPDATE account_tokens SET expires_at = now() - interval '1 second'")
        .await;
    let (status, _) = anon(&app)
        .post("/v1/auth/verify", json!({"token": newest}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_by_mail_signs_out_everywhere_and_works_once() {
    let (app, smtp) = app_with_smtp().await;
    let user = app.signup("forgetful@mail.example").await;
    let (status, other_session) = login(&app, "forgetful@mail.example", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);

    // The same answer for an unknown address, and no mail.
    let (status, _) = anon(&app)
        .post(
            "/v1/auth/password/forgot",
            json!({"email": "nobody@mail.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = anon(&app)
        .post(
            "/v1/auth/password/forgot",
            json!({"email": "Forgetful@Mail.example"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mail = smtp
        .wait_for("forgetful@mail.example", "Reset your Postback password")
        .await;
    let token = token_in(&mail, &app.base, "/reset-password");
    assert!(smtp.to("nobody@mail.example").is_empty());

    let (status, e) = anon(&app)
        .post(
            "/v1/auth/password/reset",
            json!({"token": token, "password": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["error"].as_str().expect("error").contains("password"));
    let new_password = "a brand new password 9";
    let (status, _) = anon(&app)
        .post(
            "/v1/auth/password/reset",
            json!({"token": token, "password": new_password}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Every session is signed out; the old password fails, the new one works.
    assert_eq!(user.get("/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        other_session.get("/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, "forgetful@mail.example", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, "forgetful@mail.example", new_password).await.0,
        StatusCode::OK
    );
    // The link works once.
    let (status, _) = anon(&app)
        .post(
            "/v1/auth/password/reset",
            json!({"token": token, "password": "yet another password"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Throttled per address.
    let mut last = StatusCode::ACCEPTED;
    for _ in 0..10 {
        last = anon(&app)
            .post(
                "/v1/auth/password/forgot",
                json!({"email": "throttled@mail.example"}),
            )
            .await
            .0;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    // And per client, whatever the address.
    let mut refused = 0;
    for i in 0..40 {
        let (status, body) = anon(&app)
            .post(
                "/v1/auth/password/forgot",
                json!({"email": format!("someone{i}@mail.example")}),
            )
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(body["error"].as_str().expect("error").contains("Too many"));
            refused += 1;
        }
    }
    assert!(refused > 0, "one client is limited across addresses");
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_settings_password_email_sessions_and_deletion() {
    let (app, smtp) = app_with_smtp().await;
    let user = app.signup("settings@mail.example").await;
    let (_, second) = login(&app, "settings@mail.example", PASSWORD).await;

    // Change password: the current one is required; other sessions end.
    let (status, e) = user
        .post(
            "/v1/auth/password",
            json!({"currentPassword": "wrong password", "newPassword": "new password 123"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["error"]
        .as_str()
        .expect("error")
        .contains("currentPassword"));
    let (status, _) = user
        .post(
            "/v1/auth/password",
            json!({"currentPassword": PASSWORD, "newPassword": "new password 123"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(user.get("/v1/me").await.0, StatusCode::OK);
    assert_eq!(second.get("/v1/me").await.0, StatusCode::UNAUTHORIZED);

    // Sign out all other sessions.
    let (_, third) = login(&app, "settings@mail.example", "new password 123").await;
    let (status, ended) = user.delete("/v1/auth/sessions/others").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ended["ended"], 1);
    assert_eq!(third.get("/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(user.get("/v1/me").await.0, StatusCode::OK);

    // Change email: confirmed at the new address first, a notice to the old one.
    let (status, _) = user
        .post(
            "/v1/auth/email",
            json!({"newEmail": "moved@mail.example", "password": "new password 123"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let notice = smtp
        .wait_for("settings@mail.example", "address is changing")
        .await;
    assert!(notice["text"]
        .as_str()
        .expect("text")
        .contains("moved@mail.example"));
    let confirm = smtp.wait_for("moved@mail.example", "new email").await;
    let (_, me) = user.get("/v1/me").await;
    assert_eq!(
        me["email"], "settings@mail.example",
        "not before confirmation"
    );
    let token = token_in(&confirm, &app.base, "/verify-email");
    let (status, done) = anon(&app)
        .post("/v1/auth/verify", json!({"token": token}))
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["changed"], true);
    let (_, me) = user.get("/v1/me").await;
    assert_eq!(me["email"], "moved@mail.example");
    assert_eq!(me["emailVerified"], true);

    // Notifications opt-out is saved.
    let (status, saved) = user
        .put("/v1/me/notifications", json!({"enabled": false}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(saved["enabled"], false);

    // Deleting the account is refused while it is the last owner of a workspace with members.
    let mate = app.signup("leaving@mail.example").await;
    let (status, _) = user
        .post(
            "/v1/members",
            json!({"email": "leaving@mail.example", "role": "member"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let inv = smtp.wait_for("leaving@mail.example", "invited you").await;
    let t = token_in(&inv, &app.base, "/invitations/accept");
    assert_eq!(
        mate.post("/v1/invitations/accept", json!({"token": t}))
            .await
            .0,
        StatusCode::OK
    );
    let (status, e) = user
        .post("/v1/me/delete", json!({"password": "new password 123"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    let msg = e["error"].as_str().expect("error");
    assert!(
        msg.contains("last owner") && msg.contains("Test Co"),
        "{msg}"
    );
    // The member can delete theirs (the password is required); the workspace they were alone in
    // goes with it, the one they were a member of stays.
    let (status, _) = mate
        .post("/v1/me/delete", json!({"password": "wrong"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = mate
        .post("/v1/me/delete", json!({"password": PASSWORD}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM workspaces WHERE id = '{}' AND status <> 'deleting'",
            mate.workspace_id
        ))
        .await,
        0
    );
    let (_, team) = user.get("/v1/members").await;
    assert_eq!(team["items"].as_array().expect("members").len(), 1);
    assert_eq!(
        login(&app, "leaving@mail.example", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_delete_a_workspace_with_its_data_and_members_are_told() {
    let (app, smtp) = app_with_smtp().await;
    let owner = app.signup("deleter@gone.example").await;
    let mate = app.signup("mate@gone.example").await;
    let bystander = app.signup("bystander@stays.example").await;
    let (status, _) = owner
        .post("/v1/members", json!({"email": "mate@gone.example"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let inv = smtp.wait_for("mate@gone.example", "invited you").await;
    let t = token_in(&inv, &app.base, "/invitations/accept");
    assert_eq!(
        mate.post("/v1/invitations/accept", json!({"token": t}))
            .await
            .0,
        StatusCode::OK
    );
    let domain = owner.add_domain("gone.example.com").await;
    let (_, key) = owner.add_key(&domain, "k").await;
    let keep_domain = bystander.add_domain("stays.example.com").await;
    let (_, keep_key) = bystander.add_key(&keep_domain, "k").await;
    for i in 0..5 {
        let body = json!({"email": format!("c{i}@x.example"), "event": "purchase", "orderId": format!("o{i}")});
        assert_eq!(app.inbound(&key, body.clone()).await.0, StatusCode::OK);
        assert_eq!(app.inbound(&keep_key, body).await.0, StatusCode::OK);
    }
    // A member cannot; a wrong name is refused; another tenant's id is not found.
    let (status, _) = mate
        .post(
            &format!("/v1/workspaces/{}/delete", owner.workspace_id),
            json!({"name": "Test Co"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, e) = owner
        .post(
            &format!("/v1/workspaces/{}/delete", owner.workspace_id),
            json!({"name": "Test"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["error"].as_str().expect("error").contains("name"));
    let (status, _) = owner
        .post(
            &format!("/v1/workspaces/{}/delete", bystander.workspace_id),
            json!({"name": "Test Co"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The other tenant's events of last month: a partition of their own, where their row
    // positions (ctid) are the same as the deleted workspace's in this month's partition.
    app.sql(&format!(
        "UPDATE events SET received_at = received_at - interval '1 month' \
         WHERE workspace_id = '{}'",
        bystander.workspace_id
    ))
    .await;
    let (status, _) = owner
        .post(
            &format!("/v1/workspaces/{}/delete", owner.workspace_id),
            json!({"name": "Test Co"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Gone at once for everyone: the key stops working, members are told.
    assert_eq!(owner.get("/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.inbound(
            &key,
            json!({"email": "late@x.example", "event": "purchase"})
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    smtp.wait_for("mate@gone.example", "was deleted").await;
    smtp.wait_for("deleter@gone.example", "was deleted").await;
    let (_, list) = mate.get("/v1/workspaces").await;
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    // Its data goes in the background; the other tenant's stays.
    let deadline = Instant::now() + Duration::from_secs(30);
    while app
        .count(&format!(
            "SELECT count(*) AS n FROM workspaces WHERE id = '{}'",
            owner.workspace_id
        ))
        .await
        > 0
    {
        assert!(Instant::now() < deadline, "the workspace was purged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM events WHERE workspace_id = '{}'",
            owner.workspace_id
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM events WHERE workspace_id = '{}'",
            bystander.workspace_id
        ))
        .await,
        5
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM domains WHERE id = '{domain}'"
        ))
        .await,
        0
    );
    // The owner logs in again to a new empty workspace of their own.
    let (status, again) = login(&app, "deleter@gone.example", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let (_, domains) = again.get("/v1/domains").await;
    assert_eq!(domains["items"].as_array().expect("items").len(), 0);
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_are_notified_once_a_day_per_cause_unless_they_opt_out() {
    let (app, smtp) = app_with_smtp().await;
    let admin = app.signup("admin@notify.example").await;
    let owner = app.signup("owner@notify.example").await;
    let quiet = app.signup("quiet@notify.example").await;
    let (status, _) = quiet
        .put("/v1/me/notifications", json!({"enabled": false}))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Suspended, restored, suspended again the same day: one mail each for suspend and restore.
    for status in ["suspended", "active", "suspended"] {
        for ws in [&owner.workspace_id, &quiet.workspace_id] {
            let (code, body) = admin
                .patch(
                    &format!("/v1/admin/workspaces/{ws}"),
                    json!({"status": status, "reason": "Unpaid invoice"}),
                )
                .await;
            assert_eq!(code, StatusCode::OK, "{body}");
        }
    }
    let mail = smtp.wait_for("owner@notify.example", "was suspended").await;
    assert!(mail["text"]
        .as_str()
        .expect("text")
        .contains("Unpaid invoice"));
    smtp.wait_for("owner@notify.example", "was restored").await;

    // 80 % and 100 % of the monthly quota.
    app.sql("UPDATE plans SET max_events_per_month = 5 WHERE tier = 'pulse'")
        .await;
    let (status, _) = admin
        .patch(
            &format!("/v1/admin/workspaces/{}", owner.workspace_id),
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let domain = owner.add_domain("notify.example.com").await;
    let (_, key) = owner.add_key(&domain, "k").await;
    for i in 0..4 {
        let body = json!({"email": format!("q{i}@x.example"), "event": "purchase"});
        assert_eq!(app.inbound(&key, body).await.0, StatusCode::OK);
    }
    smtp.wait_for("owner@notify.example", "80 %").await;
    let body = json!({"email": "q5@x.example", "event": "purchase"});
    assert_eq!(app.inbound(&key, body).await.0, StatusCode::OK);
    let full = smtp.wait_for("owner@notify.example", "used up").await;
    assert!(full["text"].as_str().expect("text").contains("/plan"));

    // Give the worker a few more rounds: nothing is sent twice, nothing to the quiet owner.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let subjects: Vec<String> = smtp
        .to("owner@notify.example")
        .iter()
        .map(|m| m["subject"].as_str().unwrap_or("").to_owned())
        .filter(|s| !s.contains("Confirm"))
        .collect();
    assert_eq!(subjects.len(), 4, "{subjects:?}");
    assert!(smtp
        .to("quiet@notify.example")
        .iter()
        .all(|m| m["subject"].as_str().unwrap_or("").contains("Confirm")));
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_queued_while_smtp_is_down_is_delivered_when_it_is_back() {
    let port = free_port();
    let app = TestApp::spawn().await;
    start_mail(
        &app,
        Some(format!("smtp://127.0.0.1:{port}")),
        std::path::Path::new("/nonexistent"),
    );
    let admin = app.signup("admin@outage.example").await;
    let _user = app.signup("outage@mail.example").await;
    // Attempts fail, the mails stay queued, and platform admins see them once they keep failing.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, failing) = admin.get("/v1/admin/mail").await;
        assert_eq!(status, StatusCode::OK);
        let items = failing["items"].as_array().expect("items").clone();
        if let Some(m) = items
            .iter()
            .find(|m| m["toAddress"] == "outage@mail.example")
        {
            assert_eq!(m["status"], "queued");
            assert!(m["lastError"].as_str().expect("lastError").contains("SMTP"));
            break;
        }
        assert!(Instant::now() < deadline, "a failing mail is listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, html) = admin.page("/admin").await;
    assert_eq!(status, StatusCode::OK);
    let section = &html[html
        .find("id=\"failing-mail\"")
        .expect("the failing mails table")..];
    assert!(
        section.contains("outage@mail.example") && section.contains("SMTP"),
        "{section}"
    );
    let user = app.signup("user@outage.example").await;
    assert_eq!(user.get("/v1/admin/mail").await.0, StatusCode::NOT_FOUND);
    // The server comes up on that port: every mail arrives, none lost.
    let smtp = Smtp::start_on(port).await;
    smtp.wait_for("outage@mail.example", "Confirm").await;
    smtp.wait_for("admin@outage.example", "Confirm").await;
    smtp.wait_for("user@outage.example", "Confirm").await;
    assert_eq!(
        app.count("SELECT count(*) AS n FROM mail_outbox WHERE status <> 'sent'")
            .await,
        0
    );
    // Sent mails keep no body (their links were credentials).
    assert_eq!(
        app.count("SELECT count(*) AS n FROM mail_outbox WHERE text_body <> '' OR html_body <> ''")
            .await,
        0
    );
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_mails_are_written_to_the_outbox_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn().await;
    start_mail(&app, None, &dir.path().join("outbox"));
    app.signup("outbox@mail.example").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let eml = loop {
        let found: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        if let Some(p) = found.first() {
            break std::fs::read_to_string(p).expect("read eml");
        }
        assert!(Instant::now() < deadline, "an .eml file in the outbox");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(eml.contains("To: outbox@mail.example"), "{eml}");
    assert!(eml.contains("Subject: Confirm your email address for Postback"));
    assert!(eml.contains("multipart/alternative"));
    assert!(eml.contains("text/html"));
}

/// The real binary, restarted between queueing a mail and sending it: the mail arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_queueing_and_sending_loses_no_mail() {
    let db_url = crate::helpers::fresh_database().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let start = |db_url: String, dir: std::path::PathBuf, smtp_url: String| async move {
        let mut child = Command::new(env!("CARGO_BIN_EXE_postback"))
            .current_dir(&dir)
            .env("DATABASE_URL", &db_url)
            .env("POSTBACK_DATA_DIR", &dir)
            .env("POSTBACK_LISTEN", "127.0.0.1:0")
            .env("POSTBACK_SECRET_KEY", "5e".repeat(32))
            .env("POSTBACK_SMTP_URL", &smtp_url)
            .env("POSTBACK_WORKERS", "1")
            .env("RUST_LOG", "warn,postback=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("run postback");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line
                    .split("open ")
                    .nth(1)
                    .and_then(|r| r.split(" for the dashboard").next())
                {
                    return url.trim_end_matches('/').to_owned();
                }
            }
            panic!("postback exited");
        })
        .await
        .expect("started");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (child, base)
    };
    let (mut first, base) = start(db_url.clone(), dir.path().to_owned(), smtp_url.clone()).await;
    let client = crate::helpers::http_client();
    let resp = client
        .post(format!("{base}/v1/auth/signup"))
        .json(&json!({"email": "restart@mail.example", "password": PASSWORD, "workspaceName": "R"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(resp.status(), StatusCode::CREATED);
    // Killed hard while the mail waits (SMTP is not up yet).
    first.kill().await.expect("kill");
    let _ = first.wait().await;
    let smtp = Smtp::start_on(port).await;
    let (_second, base2) = start(db_url, dir.path().to_owned(), smtp_url).await;
    let mail = smtp.wait_for("restart@mail.example", "Confirm").await;
    // The link points at the configured base URL (here: the first instance's address).
    let text = mail["text"].as_str().expect("text");
    assert!(text.contains("/verify-email?token="), "{text}");
    assert!(text.contains(&base) || text.contains(&base2), "{text}");
    smtp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_webhook_and_refused_platform_credentials_notify_owners() {
    use crate::receiver::{Receiver, Reply};
    let smtp = Smtp::start().await;
    let fake = Receiver::start().await;
    fake.always(Reply::status(401).body(r#"{"error": {"message": "Invalid OAuth access token"}}"#));
    let app = TestApp::spawn_with_platforms(&fake.url("")).await;
    start_mail(&app, Some(smtp.url()), std::path::Path::new("/nonexistent"));
    let owner = app.signup("hooks@notify.example").await;
    let domain = owner.add_domain("hooks.notify.example").await;
    let (_, key) = owner.add_key(&domain, "k").await;

    // Meta refuses the credentials: the owner is asked to reconnect, once.
    let (status, body) = owner
        .put(
            &format!("/v1/domains/{domain}/connections/meta"),
            json!({"settings": {"pixelId": "42"}, "credentials": {"accessToken": "EAAB"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for i in 0..2 {
        let body = json!({"email": format!("r{i}@x.example"), "event": "lead"});
        assert_eq!(app.inbound(&key, body).await.0, StatusCode::OK);
    }
    let mail = smtp
        .wait_for("hooks@notify.example", "Reconnect Meta")
        .await;
    assert!(mail["text"]
        .as_str()
        .expect("text")
        .contains(&format!("/domains/{domain}/connections")));
    let (status, _) = owner
        .delete(&format!("/v1/domains/{domain}/connections/meta"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A webhook whose receiver keeps failing pauses itself: the owner is told, once.
    let (status, hook) = owner
        .post(
            "/v1/integrations/webhooks",
            json!({"url": fake.url("/hook")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    for i in 0..12 {
        let body = json!({"email": format!("h{i}@x.example"), "event": "purchase"});
        assert_eq!(app.inbound(&key, body).await.0, StatusCode::OK);
    }
    let mail = smtp.wait_for("hooks@notify.example", "paused itself").await;
    let text = mail["text"].as_str().expect("text");
    assert!(text.contains("Resume"), "{text}");
    assert!(!text.contains("/hook"), "only the target's host: {text}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let count = |subject: &str| {
        smtp.to("hooks@notify.example")
            .iter()
            .filter(|m| m["subject"].as_str().unwrap_or("").contains(subject))
            .count()
    };
    assert_eq!(count("paused itself"), 1);
    assert_eq!(count("Reconnect"), 1);
    smtp.stop().await;
}
