//! Single-use links mailed to a user: address verification (24 h), password reset (1 h) and
//! change of address (24 h, sent to the new address). Only each token's SHA-256 is stored; using
//! one marks it used in the same statement that checks it, so a link works once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::error::{DomainError, DomainResult};
use crate::ids::{UserId, WorkspaceId};
use crate::mail::{self, messages};
use crate::schema::{account_tokens, memberships, users, workspaces};
use crate::secrets::{random_bytes, sha256};
use crate::tenancy::accounts::{
    hash_password, normalize_email, validate_password, verify_password,
};
use crate::tenancy::sessions::{self, SessionContext};

pub const VERIFY_HOURS: i64 = 24;
pub const RESET_HOURS: i64 = 1;

/// A new random token for a mailed link, and its stored hash.
pub fn new_token() -> (String, Vec<u8>) {
    let token = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let hash = sha256(token.as_bytes());
    (token, hash)
}

async fn issue(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    purpose: &str,
    new_email: Option<&str>,
    valid_for: Duration,
) -> DomainResult<String> {
    // A new link replaces the unused ones of the same purpose.
    diesel::delete(
        account_tokens::table
            .filter(account_tokens::user_id.eq(user_id))
            .filter(account_tokens::purpose.eq(purpose))
            .filter(account_tokens::used_at.is_null()),
    )
    .execute(conn)
    .await?;
    let (token, hash) = new_token();
    diesel::insert_into(account_tokens::table)
        .values((
            account_tokens::id.eq(uuid::Uuid::now_v7()),
            account_tokens::user_id.eq(user_id),
            account_tokens::purpose.eq(purpose),
            account_tokens::token_hash.eq(hash),
            account_tokens::new_email.eq(new_email),
            account_tokens::expires_at.eq(Utc::now() + valid_for),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// Marks a live token of one of `purposes` used and returns (user, purpose, new email); a token
/// that is unknown, used or expired is refused with the same words.
async fn consume(
    conn: &mut AsyncPgConnection,
    token: &str,
    purposes: &[&str],
) -> DomainResult<(UserId, String, Option<String>)> {
    let invalid = || DomainError::invalid("token is invalid or has expired; ask for a new link");
    let token = token.trim();
    if token.is_empty() || token.len() > 128 {
        return Err(invalid());
    }
    diesel::update(
        account_tokens::table
            .filter(account_tokens::token_hash.eq(sha256(token.as_bytes())))
            .filter(account_tokens::purpose.eq_any(purposes))
            .filter(account_tokens::used_at.is_null())
            .filter(account_tokens::expires_at.gt(Utc::now())),
    )
    .set(account_tokens::used_at.eq(Utc::now()))
    .returning((
        account_tokens::user_id,
        account_tokens::purpose,
        account_tokens::new_email,
    ))
    .get_result(conn)
    .await
    .optional()?
    .ok_or_else(invalid)
}

/// Queues the verification mail of an address (at sign-up, and "resend").
pub async fn send_verification(
    conn: &mut AsyncPgConnection,
    base_url: &str,
    user_id: UserId,
    email: &str,
) -> DomainResult<()> {
    let token = issue(conn, user_id, "verify", None, Duration::hours(VERIFY_HOURS)).await?;
    mail::queue(conn, &messages::verify_email(base_url, email, &token)?).await?;
    Ok(())
}

/// "Resend" from the banner: a new verification link (the old one stops working).
pub async fn resend_verification(
    conn: &mut AsyncPgConnection,
    base_url: &str,
    ctx: &SessionContext,
) -> DomainResult<()> {
    if ctx.email_verified {
        return Err(DomainError::Conflict(
            "Your address is already confirmed".into(),
        ));
    }
    conn.transaction::<_, DomainError, _>(|conn| {
        async move { send_verification(conn, base_url, ctx.user_id, &ctx.email).await }
            .scope_boxed()
    })
    .await
}

/// What a verification link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The account's address is confirmed.
    Address(String),
    /// The account's address changed to this one.
    Changed(String),
}

/// Uses a verification or change-of-address link.
pub async fn verify(conn: &mut AsyncPgConnection, token: &str) -> DomainResult<Verified> {
    let token = token.to_owned();
    conn.transaction::<_, DomainError, _>(|conn| {
        async move {
            let (user_id, purpose, new_email) =
                consume(conn, &token, &["verify", "email_change"]).await?;
            if purpose == "email_change" {
                let new_email = new_email.ok_or_else(|| DomainError::internal("no new email"))?;
                let taken: i64 = users::table
                    .filter(users::email.eq(&new_email))
                    .filter(users::id.ne(user_id))
                    .count()
                    .get_result(conn)
                    .await?;
                if taken > 0 {
                    return Err(DomainError::Conflict(
                        "Another account uses this address now; the change was not made".into(),
                    ));
                }
                diesel::update(users::table.find(user_id))
                    .set((
                        users::email.eq(&new_email),
                        users::email_verified_at.eq(Some(Utc::now())),
                    ))
                    .execute(conn)
                    .await?;
                return Ok(Verified::Changed(new_email));
            }
            let email: String = diesel::update(users::table.find(user_id))
                .set(users::email_verified_at.eq(Some(Utc::now())))
                .returning(users::email)
                .get_result(conn)
                .await?;
            Ok(Verified::Address(email))
        }
        .scope_boxed()
    })
    .await
}

/// "Forgot password": mails a reset link when the address has an account, and does nothing
/// otherwise. The caller answers the same either way.
pub async fn forgot_password(
    conn: &mut AsyncPgConnection,
    base_url: &str,
    email: &str,
) -> DomainResult<()> {
    let Ok(email) = normalize_email("email", email) else {
        return Ok(());
    };
    let user: Option<UserId> = users::table
        .filter(users::email.eq(&email))
        .select(users::id)
        .first(conn)
        .await
        .optional()?;
    let Some(user_id) = user else {
        return Ok(());
    };
    conn.transaction::<_, DomainError, _>(|conn| {
        async move {
            let token = issue(conn, user_id, "reset", None, Duration::hours(RESET_HOURS)).await?;
            mail::queue(conn, &messages::password_reset(base_url, &email, &token)?).await?;
            Ok(())
        }
        .scope_boxed()
    })
    .await
}

/// Sets a new password from a reset link; every session of the user ends, the old password
/// stops working and the address counts as confirmed (the link reached it). Returns the user
/// and their address.
pub async fn reset_password(
    conn: &mut AsyncPgConnection,
    token: &str,
    password: &str,
) -> DomainResult<(UserId, String)> {
    validate_password(password)?;
    let hash = hash_password(password.to_owned()).await?;
    let token = token.to_owned();
    conn.transaction::<_, DomainError, _>(|conn| {
        async move {
            let (user_id, _, _) = consume(conn, &token, &["reset"]).await?;
            let email: String = diesel::update(users::table.find(user_id))
                .set((
                    users::password_hash.eq(&hash),
                    users::email_verified_at.eq(diesel::dsl::sql::<
                        diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
                    >(
                        "COALESCE(email_verified_at, now())"
                    )),
                ))
                .returning(users::email)
                .get_result(conn)
                .await?;
            sessions::delete_all_of(conn, user_id, None).await?;
            Ok((user_id, email))
        }
        .scope_boxed()
    })
    .await
}

async fn check_password(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    password: &str,
) -> DomainResult<()> {
    let hash: String = users::table
        .find(user_id)
        .select(users::password_hash)
        .first(conn)
        .await?;
    if verify_password(password.to_owned(), hash).await? {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "currentPassword is not your current password",
        ))
    }
}

/// Changes the password (the current one required); the user's other sessions end.
pub async fn change_password(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
    current: &str,
    new: &str,
) -> DomainResult<()> {
    check_password(conn, ctx.user_id, current).await?;
    validate_password(new)?;
    let hash = hash_password(new.to_owned()).await?;
    diesel::update(users::table.find(ctx.user_id))
        .set(users::password_hash.eq(hash))
        .execute(conn)
        .await?;
    let keep = (!ctx.session_id.0.is_nil()).then_some(ctx.session_id);
    sessions::delete_all_of(conn, ctx.user_id, keep).await?;
    Ok(())
}

/// Asks to change the address: a link to the new address (which takes effect when used) and a
/// notice to the old one. An address another account has gets no link, and the answer is the
/// same, so this does not tell which addresses have accounts.
pub async fn request_email_change(
    conn: &mut AsyncPgConnection,
    base_url: &str,
    ctx: &SessionContext,
    new_email: &str,
    password: &str,
) -> DomainResult<String> {
    let new_email = normalize_email("newEmail", new_email)?;
    check_password(conn, ctx.user_id, password).await?;
    if new_email == ctx.email {
        return Err(DomainError::invalid("newEmail is already your address"));
    }
    conn.transaction::<_, DomainError, _>(|conn| {
        async move {
            let taken: i64 = users::table
                .filter(users::email.eq(&new_email))
                .count()
                .get_result(conn)
                .await?;
            if taken == 0 {
                let token = issue(
                    conn,
                    ctx.user_id,
                    "email_change",
                    Some(&new_email),
                    Duration::hours(VERIFY_HOURS),
                )
                .await?;
                mail::queue(conn, &messages::email_change(base_url, &new_email, &token)?).await?;
            }
            mail::queue(
                conn,
                &messages::email_change_notice(base_url, &ctx.email, &new_email)?,
            )
            .await?;
            Ok(new_email)
        }
        .scope_boxed()
    })
    .await
}

/// Signs out every other session of the user. Returns how many ended.
pub async fn sign_out_others(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
) -> DomainResult<usize> {
    let keep = (!ctx.session_id.0.is_nil()).then_some(ctx.session_id);
    sessions::delete_all_of(conn, ctx.user_id, keep).await
}

/// Deletes the signed-in user's account (password required). Refused while the user is the last
/// owner of a workspace that has other members, naming it and what to do; a workspace the user
/// is alone in is deleted with the account.
pub async fn delete_account(
    conn: &mut AsyncPgConnection,
    base_url: &str,
    ctx: &SessionContext,
    password: &str,
) -> DomainResult<()> {
    check_password(conn, ctx.user_id, password).await?;
    let owned: Vec<(WorkspaceId, String)> = memberships::table
        .inner_join(workspaces::table)
        .filter(memberships::user_id.eq(ctx.user_id))
        .filter(memberships::role.eq("owner"))
        .filter(workspaces::status.ne("deleting"))
        .select((workspaces::id, workspaces::name))
        .load(conn)
        .await?;
    let mut alone_in = Vec::new();
    for (workspace_id, name) in owned {
        let roles: Vec<String> = memberships::table
            .filter(memberships::workspace_id.eq(workspace_id))
            .select(memberships::role)
            .load(conn)
            .await?;
        if roles.len() == 1 {
            alone_in.push((workspace_id, name));
        } else if roles.iter().filter(|r| *r == "owner").count() <= 1 {
            return Err(DomainError::Conflict(format!(
                "You are the last owner of the workspace \"{name}\": make another member its owner, or delete the workspace first (Settings > Workspace)"
            )));
        }
    }
    for (workspace_id, name) in alone_in {
        crate::tenancy::workspace_deletion::request(
            conn,
            base_url,
            ctx.user_id,
            &ctx.email,
            workspace_id,
            &name,
        )
        .await?;
    }
    audit(conn, ctx.user_id, &ctx.email, "account.delete").await?;
    diesel::delete(users::table.find(ctx.user_id))
        .execute(conn)
        .await?;
    Ok(())
}

/// An entry in the platform's audit log for a change to an account (not to a workspace).
pub async fn audit(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    email: &str,
    action: &str,
) -> DomainResult<()> {
    use crate::schema::audit_log;
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::id.eq(uuid::Uuid::now_v7()),
            audit_log::workspace_id.eq(None::<uuid::Uuid>),
            audit_log::actor_id.eq(Some(user_id.0)),
            audit_log::actor_email.eq(email),
            audit_log::action.eq(action),
            audit_log::target.eq(email),
            audit_log::before.eq(None::<serde_json::Value>),
            audit_log::after.eq(None::<serde_json::Value>),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Turns the user's owner notifications on or off.
pub async fn set_notifications(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
    enabled: bool,
) -> DomainResult<()> {
    diesel::update(users::table.find(ctx.user_id))
        .set(users::notifications_enabled.eq(enabled))
        .execute(conn)
        .await?;
    audit(
        conn,
        ctx.user_id,
        &ctx.email,
        if enabled {
            "account.notifications_on"
        } else {
            "account.notifications_off"
        },
    )
    .await
}

/// Whether the user gets owner notifications.
pub async fn notifications_enabled(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
) -> DomainResult<bool> {
    Ok(users::table
        .find(user_id)
        .select(users::notifications_enabled)
        .first(conn)
        .await?)
}
