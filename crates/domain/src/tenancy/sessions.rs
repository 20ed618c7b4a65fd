//! Server-side sessions: a random token in the `auth_token` cookie, stored as its SHA-256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::DomainResult;
use crate::ids::{SessionId, UserId, WorkspaceId};
use crate::schema::{memberships, sessions, users, workspaces};
use crate::secrets::{random_bytes, sha256, sha256_hex};

pub const COOKIE_NAME: &str = "auth_token";
pub const SESSION_DAYS: i64 = 30;

/// Who is making a request, and in which workspace.
#[derive(Debug, Clone)]
pub struct SessionContext {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub email: String,
    pub is_admin: bool,
    pub workspace_id: WorkspaceId,
    pub workspace_name: String,
    pub plan: String,
    pub status: String,
    /// Why the workspace is suspended, when it is.
    pub suspended_reason: Option<String>,
    pub role: String,
    /// Whether the user confirmed their address (else the dashboard shows a banner).
    pub email_verified: bool,
    /// The workspace's time zone (IANA name): the dashboard shows times in it.
    pub time_zone: String,
}

impl SessionContext {
    pub fn is_owner(&self) -> bool {
        self.role == "owner"
    }
    pub fn is_suspended(&self) -> bool {
        self.status == "suspended"
    }
}

/// Creates a session and returns the raw token for the cookie; only its hash is stored.
pub async fn create(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    workspace_id: WorkspaceId,
) -> DomainResult<String> {
    let token = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(SessionId::new()),
            sessions::token_hash.eq(sha256(token.as_bytes())),
            sessions::user_id.eq(user_id),
            sessions::workspace_id.eq(workspace_id),
            sessions::expires_at.eq(Utc::now() + Duration::days(SESSION_DAYS)),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// Resolves a cookie token to its live session, or None when unknown, expired or no longer a member.
pub async fn lookup(
    conn: &mut AsyncPgConnection,
    token: &str,
) -> DomainResult<Option<SessionContext>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    type Row = (
        SessionId,
        UserId,
        String,
        bool,
        WorkspaceId,
        String,
        String,
        String,
        Option<String>,
        String,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        String,
    );
    let row: Option<Row> = sessions::table
        .inner_join(users::table)
        .inner_join(workspaces::table.on(workspaces::id.eq(sessions::workspace_id)))
        .inner_join(
            memberships::table.on(memberships::workspace_id
                .eq(sessions::workspace_id)
                .and(memberships::user_id.eq(sessions::user_id))),
        )
        .filter(sessions::token_hash.eq(sha256(token.as_bytes())))
        .select((
            sessions::id,
            users::id,
            users::email,
            users::is_admin,
            workspaces::id,
            workspaces::name,
            workspaces::plan,
            workspaces::status,
            workspaces::suspended_reason,
            memberships::role,
            sessions::expires_at,
            users::email_verified_at,
            workspaces::time_zone,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(row.and_then(
        |(
            session_id,
            user_id,
            email,
            is_admin,
            workspace_id,
            workspace_name,
            plan,
            status,
            suspended_reason,
            role,
            expires_at,
            verified_at,
            time_zone,
        )| {
            (expires_at > Utc::now()).then_some(SessionContext {
                session_id,
                user_id,
                email,
                is_admin,
                workspace_id,
                workspace_name,
                plan,
                status,
                suspended_reason,
                role,
                email_verified: verified_at.is_some(),
                time_zone,
            })
        },
    ))
}

pub async fn delete_by_token(conn: &mut AsyncPgConnection, token: &str) -> DomainResult<()> {
    diesel::delete(sessions::table.filter(sessions::token_hash.eq(sha256(token.as_bytes()))))
        .execute(conn)
        .await?;
    Ok(())
}

/// The CSRF token of a session (or of an anonymous pre-session cookie): derived from the secret
/// cookie value, so a page on another site, which cannot read the cookie, cannot compute it.
pub fn csrf_token(cookie_secret: &str) -> String {
    sha256_hex(format!("postback-csrf:{cookie_secret}").as_bytes())[..40].to_owned()
}

/// Ends every session of a user (after a password reset), or every one but `keep`.
pub async fn delete_all_of(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    keep: Option<SessionId>,
) -> DomainResult<usize> {
    let mut q = diesel::delete(sessions::table)
        .filter(sessions::user_id.eq(user_id))
        .into_boxed();
    if let Some(keep) = keep {
        q = q.filter(sessions::id.ne(keep));
    }
    Ok(q.execute(conn).await?)
}
