//! Every mail Postback sends: one askama template pair (plain text and simple HTML) filled with
//! each mail's words and, where it has one, its link (always under `POSTBACK_BASE_URL`).

use askama::Template;

use crate::error::{DomainError, DomainResult};

/// A rendered mail, ready to queue.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Template)]
#[template(path = "mail/message.txt")]
struct TextPart<'a> {
    greeting: &'a str,
    paragraphs: &'a [String],
    action: &'a Option<(String, String)>,
    after: &'a [String],
    base_url: &'a str,
    footer: &'a str,
}

#[derive(Template)]
#[template(path = "mail/message.html")]
struct HtmlPart<'a> {
    subject: &'a str,
    greeting: &'a str,
    paragraphs: &'a [String],
    action: &'a Option<(String, String)>,
    after: &'a [String],
    footer: &'a str,
}

/// The words of one mail before rendering.
struct Draft {
    kind: &'static str,
    subject: String,
    paragraphs: Vec<String>,
    action: Option<(String, String)>,
    after: Vec<String>,
    footer: &'static str,
}

const ACCOUNT_FOOTER: &str =
    "You get this mail because of an action on your Postback account. If it was not you, you can ignore it.";
const NOTIFY_FOOTER: &str =
    "You get this mail as an owner of the workspace. Turn these notices off under Settings > Account.";

fn render(base_url: &str, to: &str, d: Draft) -> DomainResult<Mail> {
    let greeting = "Hello,";
    let text = TextPart {
        greeting,
        paragraphs: &d.paragraphs,
        action: &d.action,
        after: &d.after,
        base_url,
        footer: d.footer,
    }
    .render()
    .map_err(|e| DomainError::internal(format!("mail template: {e}")))?;
    let html = HtmlPart {
        subject: &d.subject,
        greeting,
        paragraphs: &d.paragraphs,
        action: &d.action,
        after: &d.after,
        footer: d.footer,
    }
    .render()
    .map_err(|e| DomainError::internal(format!("mail template: {e}")))?;
    Ok(Mail {
        to: to.to_owned(),
        kind: d.kind,
        subject: d.subject,
        text,
        html,
    })
}

fn link(base_url: &str, path: &str, token: &str) -> String {
    format!("{}{path}?token={token}", base_url.trim_end_matches('/'))
}

pub fn verify_email(base_url: &str, to: &str, token: &str) -> DomainResult<Mail> {
    render(
        base_url,
        to,
        Draft {
            kind: "verify",
            subject: "Confirm your email address for Postback".into(),
            paragraphs: vec![format!(
                "Please confirm that {to} is your address. The link works once, for 24 hours."
            )],
            action: Some((
                "Confirm my address".into(),
                link(base_url, "/verify-email", token),
            )),
            after: vec![],
            footer: ACCOUNT_FOOTER,
        },
    )
}

pub fn password_reset(base_url: &str, to: &str, token: &str) -> DomainResult<Mail> {
    render(
        base_url,
        to,
        Draft {
            kind: "reset",
            subject: "Reset your Postback password".into(),
            paragraphs: vec![
                "Someone (hopefully you) asked to reset the password of your Postback account."
                    .into(),
                "The link works once, for one hour. Setting a new password signs you out everywhere."
                    .into(),
            ],
            action: Some((
                "Choose a new password".into(),
                link(base_url, "/reset-password", token),
            )),
            after: vec!["If you did not ask for this, your password stays as it is.".into()],
            footer: ACCOUNT_FOOTER,
        },
    )
}

pub fn invitation(
    base_url: &str,
    to: &str,
    token: &str,
    workspace: &str,
    inviter: &str,
    role: &str,
) -> DomainResult<Mail> {
    render(
        base_url,
        to,
        Draft {
            kind: "invitation",
            subject: format!("{inviter} invited you to {workspace} on Postback"),
            paragraphs: vec![
                format!("{inviter} invited you to join the workspace \"{workspace}\" on Postback as {role}."),
                "Open the link to accept: you sign in (or create an account) first. It works once, for 7 days.".into(),
            ],
            action: Some((
                "Accept the invitation".into(),
                link(base_url, "/invitations/accept", token),
            )),
            after: vec![],
            footer: ACCOUNT_FOOTER,
        },
    )
}

pub fn email_change(base_url: &str, to: &str, token: &str) -> DomainResult<Mail> {
    render(
        base_url,
        to,
        Draft {
            kind: "email_change",
            subject: "Confirm your new email address for Postback".into(),
            paragraphs: vec![format!(
                "Confirm {to} as the new address of your Postback account. Until you do, the old address stays. The link works once, for 24 hours."
            )],
            action: Some((
                "Confirm the new address".into(),
                link(base_url, "/verify-email", token),
            )),
            after: vec![],
            footer: ACCOUNT_FOOTER,
        },
    )
}

pub fn email_change_notice(base_url: &str, to: &str, new_email: &str) -> DomainResult<Mail> {
    render(
        base_url,
        to,
        Draft {
            kind: "email_change_notice",
            subject: "Your Postback address is changing".into(),
            paragraphs: vec![format!(
                "Someone signed in to your Postback account asked to change its address to {new_email}. It changes once the new address is confirmed."
            )],
            action: None,
            after: vec![
                "If this was not you, change your password now and sign out all other sessions under Settings > Account.".into(),
            ],
            footer: ACCOUNT_FOOTER,
        },
    )
}

pub fn workspace_deleted(
    base_url: &str,
    to: &str,
    workspace: &str,
    by: &str,
) -> DomainResult<Mail> {
    render(
        base_url,
        to,
        Draft {
            kind: "workspace_deleted",
            subject: format!("The workspace {workspace} was deleted"),
            paragraphs: vec![format!(
                "{by} deleted the Postback workspace \"{workspace}\", with its domains, keys, events, webhooks, links and connections. You no longer have access to it."
            )],
            action: None,
            after: vec![],
            footer: ACCOUNT_FOOTER,
        },
    )
}

/// An owner notification: what happened in a workspace, and where to look.
pub fn notification(
    base_url: &str,
    to: &str,
    kind: &'static str,
    subject: String,
    message: String,
    path: &str,
) -> DomainResult<Mail> {
    let url = format!("{}{path}", base_url.trim_end_matches('/'));
    render(
        base_url,
        to,
        Draft {
            kind,
            subject,
            paragraphs: vec![message],
            action: Some(("Open Postback".into(), url)),
            after: vec![],
            footer: NOTIFY_FOOTER,
        },
    )
}
