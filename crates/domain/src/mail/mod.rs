//! Mail: a durable outbox in PostgreSQL. Whatever causes a mail queues it in its own transaction
//! (so a mail exists exactly when its cause was committed); the mail worker claims due mails with
//! `FOR UPDATE SKIP LOCKED`, sends them and retries failures with backoff. Bodies are sealed while
//! queued (their links are credentials) and emptied once sent.

pub mod messages;
pub mod notify;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::error::DomainResult;
use crate::schema::mail_outbox;
use crate::secrets::seal;

pub use messages::Mail;

/// A mail that failed this many times is listed for platform admins as failing.
pub const FAILING_AFTER: i32 = 3;
/// A mail still unsent this long after it was queued is given up (and stays listed as failed).
pub const GIVE_UP_AFTER_HOURS: i64 = 72;
/// How long a claimed mail stays reserved for the worker that claimed it.
pub const LEASE_SECS: i64 = 120;

/// Queues a mail. Call it on the connection (or in the transaction) of what causes the mail.
pub async fn queue(conn: &mut AsyncPgConnection, mail: &Mail) -> DomainResult<uuid::Uuid> {
    let id = uuid::Uuid::now_v7();
    diesel::insert_into(mail_outbox::table)
        .values((
            mail_outbox::id.eq(id),
            mail_outbox::to_address.eq(&mail.to),
            mail_outbox::kind.eq(mail.kind),
            mail_outbox::subject.eq(&mail.subject),
            mail_outbox::text_body.eq(seal::seal(&mail.text)?),
            mail_outbox::html_body.eq(seal::seal(&mail.html)?),
        ))
        .execute(conn)
        .await?;
    Ok(id)
}

/// A mail claimed for sending, its bodies opened.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: uuid::Uuid,
    pub to: String,
    pub kind: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// Claims up to `limit` due mails for this worker (one attempt each, reserved for [`LEASE_SECS`]).
pub async fn claim(conn: &mut AsyncPgConnection, limit: i64) -> DomainResult<Vec<Claimed>> {
    let rows: Vec<ClaimRow> = diesel::sql_query(
        "UPDATE mail_outbox SET attempts = attempts + 1, \
                next_attempt_at = now() + make_interval(secs => $2) \
          WHERE id IN (SELECT id FROM mail_outbox \
                        WHERE status = 'queued' AND next_attempt_at <= now() \
                        ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
      RETURNING id, to_address, kind, subject, text_body, html_body, attempts, created_at",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .bind::<diesel::sql_types::Double, _>(LEASE_SECS as f64)
    .load(conn)
    .await?;
    // In the order they were queued (ids are time-ordered), whatever order UPDATE returned.
    let mut rows = rows;
    rows.sort_by_key(|r| r.id);
    rows.into_iter()
        .map(|r| {
            Ok(Claimed {
                id: r.id,
                to: r.to_address,
                kind: r.kind,
                subject: r.subject,
                text: seal::open(&r.text_body)?,
                html: seal::open(&r.html_body)?,
                attempts: r.attempts,
                created_at: r.created_at,
            })
        })
        .collect()
}

#[derive(QueryableByName)]
struct ClaimRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    to_address: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    subject: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    text_body: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    html_body: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    attempts: i32,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    created_at: DateTime<Utc>,
}

/// The mail went out: its bodies (and the links in them) are no longer kept.
pub async fn mark_sent(conn: &mut AsyncPgConnection, id: uuid::Uuid) -> DomainResult<()> {
    diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::status.eq("sent"),
            mail_outbox::sent_at.eq(Utc::now()),
            mail_outbox::text_body.eq(""),
            mail_outbox::html_body.eq(""),
            mail_outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Waits before the next attempt after `attempts` failures: 1 s, 2 s, 4 s … at most 10 minutes.
pub fn backoff(attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 20) - 1;
    Duration::seconds((1i64 << exp).min(600))
}

/// The attempt failed: retried after [`backoff`], or given up once the mail is too old.
pub async fn mark_failed(
    conn: &mut AsyncPgConnection,
    mail: &Claimed,
    error: &str,
) -> DomainResult<()> {
    let give_up = Utc::now() - mail.created_at > Duration::hours(GIVE_UP_AFTER_HOURS);
    let error: String = error.chars().take(500).collect();
    diesel::update(mail_outbox::table.find(mail.id))
        .set((
            mail_outbox::status.eq(if give_up { "failed" } else { "queued" }),
            mail_outbox::next_attempt_at.eq(Utc::now() + backoff(mail.attempts)),
            mail_outbox::last_error.eq(Some(error)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A mail that keeps failing, for platform admins.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = mail_outbox)]
#[serde(rename_all = "camelCase")]
pub struct FailingMail {
    pub id: uuid::Uuid,
    pub to_address: String,
    pub kind: String,
    pub subject: String,
    /// `queued` (still retried) or `failed` (given up).
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// Mails not sent after [`FAILING_AFTER`] attempts, newest first.
pub async fn failing(conn: &mut AsyncPgConnection, limit: i64) -> DomainResult<Vec<FailingMail>> {
    Ok(mail_outbox::table
        .filter(mail_outbox::status.ne("sent"))
        .filter(mail_outbox::attempts.ge(FAILING_AFTER))
        .order(mail_outbox::created_at.desc())
        .limit(limit)
        .select(FailingMail::as_select())
        .load(conn)
        .await?)
}
