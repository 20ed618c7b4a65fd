//! The mail worker: claims due mails from the PostgreSQL outbox and sends them over SMTP
//! (`POSTBACK_SMTP_URL`, through lettre with rustls), or, with no SMTP configured, writes each as
//! an `.eml` file under `$POSTBACK_DATA_DIR/outbox/`. Failures are retried with backoff; a crash
//! leaves claimed mails to be claimed again when their lease ends. The same loop purges deleted
//! workspaces batch by batch and checks event quotas for owner notifications.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use postback_domain::mail::{self, Claimed};
use postback_domain::store::db::DbPool;

use crate::ratelimit::RateLimiter;

/// Where mail goes.
#[derive(Clone, Debug)]
pub struct MailConfig {
    /// `smtp://host:25`, `smtp://user:pass@host:587?tls=required`, `smtps://user:pass@host:465`;
    /// None: `.eml` files in `outbox_dir`.
    pub smtp_url: Option<String>,
    /// The `From` of every mail, e.g. `Postback <postback@example.com>`.
    pub from: String,
    pub outbox_dir: PathBuf,
    /// How often the worker looks for due mail.
    pub poll: Duration,
    /// How often workspaces' event usage is checked against their quota.
    pub quota_every: Duration,
}

impl MailConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.from
            .parse::<Mailbox>()
            .map_err(|e| format!("POSTBACK_MAIL_FROM is not a mail address: {e}"))?;
        if let Some(url) = &self.smtp_url {
            // The error text can quote the URL, password included: keep it out.
            AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|_| {
                "POSTBACK_SMTP_URL is not an SMTP URL (smtp://host:25, smtp://user:pass@host:587?tls=required, smtps://user:pass@host:465)".to_owned()
            })?;
        }
        Ok(())
    }
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

impl Transport {
    fn new(config: &MailConfig) -> Result<Self, String> {
        match &config.smtp_url {
            Some(url) => {
                let t = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|_| "POSTBACK_SMTP_URL is not an SMTP URL".to_owned())?
                    .timeout(Some(Duration::from_secs(30)))
                    .build();
                Ok(Self::Smtp(t))
            }
            None => Ok(Self::Outbox(config.outbox_dir.clone())),
        }
    }

    async fn send(&self, mail: &Claimed, message: Message) -> Result<(), String> {
        match self {
            Self::Smtp(t) => t.send(message).await.map(|_| ()).map_err(smtp_error),
            Self::Outbox(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                let path = dir.join(format!("{}.eml", mail.id));
                tokio::fs::write(&path, message.formatted())
                    .await
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
                // Where the mail is, not what it says: its link is a credential.
                tracing::info!(
                    kind = %mail.kind,
                    file = %path.display(),
                    "mail written to the outbox (POSTBACK_SMTP_URL is unset)"
                );
                Ok(())
            }
        }
    }
}

/// An SMTP error in words that hold no part of the message.
fn smtp_error(e: lettre::transport::smtp::Error) -> String {
    let kind = if e.is_transient() {
        "temporary"
    } else if e.is_permanent() {
        "permanent"
    } else {
        "connection"
    };
    match e.status() {
        Some(code) => format!("SMTP {kind} error {code}"),
        None => format!("SMTP {kind} error: {e}"),
    }
}

fn build(from: &Mailbox, mail: &Claimed) -> Result<Message, String> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|_| "the recipient is not a valid address".to_owned())?;
    Message::builder()
        .message_id(Some(format!("<{}@postback>", mail.id)))
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(mail.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(mail.html.clone()),
                ),
        )
        .map_err(|e| format!("building the message: {e}"))
}

/// Mails claimed, and sent side by side, per round.
const BATCH: i64 = 16;

/// Starts the mail worker on the current runtime.
pub fn start(pool: DbPool, config: MailConfig) -> Result<(), String> {
    config.validate()?;
    let transport = Transport::new(&config)?;
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|e| format!("POSTBACK_MAIL_FROM: {e}"))?;
    tokio::spawn(run(pool, transport, from, config.poll, config.quota_every));
    Ok(())
}

async fn run(
    pool: DbPool,
    transport: Transport,
    from: Mailbox,
    poll: Duration,
    quota_every: Duration,
) {
    let mut last_quota_check: Option<std::time::Instant> = None;
    loop {
        let busy = match tick(&pool, &transport, &from).await {
            Ok(busy) => busy,
            Err(e) => {
                tracing::warn!(error = %e, "mail worker");
                false
            }
        };
        if last_quota_check.is_none_or(|t| t.elapsed() >= quota_every) {
            last_quota_check = Some(std::time::Instant::now());
            if let Ok(mut conn) = postback_domain::store::db::conn(&pool).await {
                if let Err(e) = mail::notify::quota(&mut conn).await {
                    tracing::warn!(error = %e, "quota notifications");
                }
            }
        }
        if !busy {
            tokio::time::sleep(poll).await;
        }
    }
}

/// One round: send what is due, then one batch of workspace purging. True when there may be
/// more to do at once.
async fn tick(pool: &DbPool, transport: &Transport, from: &Mailbox) -> Result<bool, String> {
    let mut conn = postback_domain::store::db::conn(pool)
        .await
        .map_err(|e| e.to_string())?;
    let due = mail::claim(&mut conn, BATCH)
        .await
        .map_err(|e| e.to_string())?;
    let sent_any = !due.is_empty();
    // Side by side across recipients (the SMTP transport pools its connections); in queue order
    // for each recipient, so a resent link arrives after the one it replaces.
    let mut by_recipient: Vec<Vec<usize>> = Vec::new();
    for (i, m) in due.iter().enumerate() {
        match by_recipient.iter_mut().find(|g| due[g[0]].to == m.to) {
            Some(g) => g.push(i),
            None => by_recipient.push(vec![i]),
        }
    }
    let sent = futures_util::future::join_all(by_recipient.into_iter().map(|group| {
        let due = &due;
        async move {
            let mut out = Vec::new();
            for i in group {
                let m = &due[i];
                let outcome = match build(from, m) {
                    Ok(message) => transport.send(m, message).await,
                    Err(e) => Err(e),
                };
                out.push((i, outcome));
            }
            out
        }
    }))
    .await;
    let mut outcomes: Vec<(usize, Result<(), String>)> = sent.into_iter().flatten().collect();
    outcomes.sort_by_key(|(i, _)| *i);
    let outcomes = outcomes.into_iter().map(|(_, o)| o);
    for (m, outcome) in due.iter().zip(outcomes) {
        match outcome {
            Ok(()) => mail::mark_sent(&mut conn, m.id)
                .await
                .map_err(|e| e.to_string())?,
            Err(e) => {
                tracing::warn!(kind = %m.kind, attempt = m.attempts, error = %e, "mail not sent; retried later");
                mail::mark_failed(&mut conn, m, &e)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    let purging = postback_domain::tenancy::workspace_deletion::purge_step(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(sent_any || purging)
}

/// Throttles of the mail-sending requests that anyone can make.
pub struct MailThrottle {
    /// Per address (its hash): reset and verification mails asked for.
    pub per_address: RateLimiter<[u8; 32]>,
    /// Per client address.
    pub per_client: RateLimiter<[u8; 32]>,
}

/// Mails one address may be sent on request per hour, and requests one client may make.
pub const MAILS_PER_ADDRESS_PER_HOUR: u32 = 5;
pub const MAIL_REQUESTS_PER_CLIENT_PER_HOUR: u32 = 30;

impl Default for MailThrottle {
    fn default() -> Self {
        Self {
            per_address: RateLimiter::new(MAILS_PER_ADDRESS_PER_HOUR, Duration::from_secs(3600)),
            per_client: RateLimiter::new(
                MAIL_REQUESTS_PER_CLIENT_PER_HOUR,
                Duration::from_secs(3600),
            ),
        }
    }
}

impl MailThrottle {
    /// Counts a request for mail to `email` from this client; Err(seconds to wait) when over.
    pub fn check(&self, req: &actix_web::HttpRequest, email: &str) -> Result<(), u64> {
        use sha2::Digest;
        let ip = req
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let client: [u8; 32] = sha2::Sha256::digest(format!("mail-client:{ip}")).into();
        let address: [u8; 32] =
            sha2::Sha256::digest(format!("mail-address:{}", email.trim().to_lowercase())).into();
        self.per_client.check(client)?;
        self.per_address.check(address)
    }
}

pub type SharedThrottle = Arc<MailThrottle>;
