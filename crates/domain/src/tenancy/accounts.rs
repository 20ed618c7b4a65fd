//! Users, workspaces and memberships: sign-up, log-in and the password hashing behind them.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::error::{DomainError, DomainResult};
use crate::ids::{UserId, WorkspaceId};
use crate::schema::{memberships, users, workspaces};
use crate::tenancy::plans::DEFAULT_TIER;

pub const MIN_PASSWORD_LEN: usize = 8;
/// In characters: at most 1 KiB of UTF-8 for argon2 to hash.
const MAX_PASSWORD_LEN: usize = 256;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
    pub email_verified_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = workspaces)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub plan: String,
    pub status: String,
    pub suspended_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Workspace {
    pub fn is_suspended(&self) -> bool {
        self.status == "suspended"
    }
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: String,
    pub password: String,
    pub workspace_name: String,
    /// Forces the platform-admin flag (the CLI's `--admin`); the first user of an install gets it anyway.
    pub admin: bool,
    /// The public base URL for the verification mail's link. None (the CLI's `user create`):
    /// no mail, the address counts as confirmed.
    pub verify_with: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Account {
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    pub is_admin: bool,
}

/// Trims and lowercases, then checks the shape of an address. Names the field on failure.
pub fn normalize_email(field: &str, raw: &str) -> DomainResult<String> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err(DomainError::invalid(format!("{field} is required")));
    }
    if !is_valid_email(&email) {
        return Err(DomainError::invalid(format!(
            "{field} must be a valid email address"
        )));
    }
    Ok(email)
}

pub fn is_valid_email(s: &str) -> bool {
    if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
}

pub fn validate_password(password: &str) -> DomainResult<()> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(DomainError::invalid(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if len > MAX_PASSWORD_LEN {
        return Err(DomainError::invalid(format!(
            "password must be at most {MAX_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

pub fn validate_workspace_name(raw: &str) -> DomainResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(DomainError::invalid("workspaceName is required"));
    }
    if name.chars().count() > 100 {
        return Err(DomainError::invalid(
            "workspaceName must be at most 100 characters",
        ));
    }
    Ok(name.to_owned())
}

/// argon2id with the crate's default (OWASP) parameters, on a blocking thread.
pub async fn hash_password(password: String) -> DomainResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| DomainError::internal(format!("hashing password: {e}")))
    })
    .await
    .map_err(|e| DomainError::internal(format!("hashing task: {e}")))?
}

/// A valid hash of a random password, verified against when the email is unknown so a wrong
/// email costs as much time as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Q0RHHVIdg8dLSi5LJ/LiSbo7wSZ8sdaIP0rLCq+pbD0";

pub async fn verify_password(password: String, hash: String) -> DomainResult<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| DomainError::internal(format!("stored hash unreadable: {e}")))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| DomainError::internal(format!("verify task: {e}")))?
}

/// Creates a user and a workspace on the default plan with the user as its owner.
pub async fn sign_up(conn: &mut AsyncPgConnection, input: NewAccount) -> DomainResult<Account> {
    let email = normalize_email("email", &input.email)?;
    validate_password(&input.password)?;
    let workspace_name = validate_workspace_name(&input.workspace_name)?;
    let password_hash = hash_password(input.password).await?;
    let force_admin = input.admin;
    let verify_with = input.verify_with;

    conn.transaction::<_, DomainError, _>(|conn| {
        async move {
            // Serialises sign-ups so exactly one "first user" becomes the platform admin.
            diesel::sql_query("SELECT pg_advisory_xact_lock(727001)")
                .execute(conn)
                .await?;
            let taken: i64 = users::table
                .filter(users::email.eq(&email))
                .count()
                .get_result(conn)
                .await?;
            if taken > 0 {
                return Err(DomainError::Conflict(
                    "An account with this email already exists; log in instead".into(),
                ));
            }
            let any_user: i64 = users::table.count().get_result(conn).await?;
            let user_id = UserId::new();
            let workspace_id = WorkspaceId::new();
            let is_admin = force_admin || any_user == 0;
            diesel::insert_into(users::table)
                .values((
                    users::id.eq(user_id),
                    users::email.eq(&email),
                    users::password_hash.eq(&password_hash),
                    users::is_admin.eq(is_admin),
                    users::email_verified_at.eq(verify_with.is_none().then(Utc::now)),
                ))
                .execute(conn)
                .await?;
            diesel::insert_into(workspaces::table)
                .values((
                    workspaces::id.eq(workspace_id),
                    workspaces::name.eq(&workspace_name),
                    workspaces::plan.eq(DEFAULT_TIER),
                ))
                .execute(conn)
                .await?;
            diesel::insert_into(memberships::table)
                .values((
                    memberships::workspace_id.eq(workspace_id),
                    memberships::user_id.eq(user_id),
                    memberships::role.eq("owner"),
                ))
                .execute(conn)
                .await?;
            // Invitations to this address are not joined here: only their mailed link joins.
            if let Some(base_url) = &verify_with {
                crate::tenancy::account_links::send_verification(conn, base_url, user_id, &email)
                    .await?;
            }
            Ok(Account {
                user_id,
                workspace_id,
                is_admin,
            })
        }
        .scope_boxed()
    })
    .await
}

/// Checks an email and password. The same error, after the same work, whether the email is
/// unknown or the password wrong.
pub async fn log_in(
    conn: &mut AsyncPgConnection,
    email: &str,
    password: &str,
) -> DomainResult<Account> {
    let wrong = || DomainError::Unauthorized("Incorrect email or password".into());
    let email = email.trim().to_lowercase();
    let user: Option<User> = users::table
        .filter(users::email.eq(&email))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?;
    let Some(user) = user else {
        verify_password(password.to_owned(), DUMMY_HASH.to_owned()).await?;
        return Err(wrong());
    };
    if !verify_password(password.to_owned(), user.password_hash.clone()).await? {
        return Err(wrong());
    }
    let workspace_id: Option<WorkspaceId> = memberships::table
        .filter(memberships::user_id.eq(user.id))
        .order(memberships::created_at.asc())
        .select(memberships::workspace_id)
        .first(conn)
        .await
        .optional()?;
    // Every workspace of the user was deleted: a new empty one of their own.
    let workspace_id = match workspace_id {
        Some(id) => id,
        None => {
            let id = WorkspaceId::new();
            diesel::insert_into(workspaces::table)
                .values((
                    workspaces::id.eq(id),
                    workspaces::name.eq("My workspace"),
                    workspaces::plan.eq(DEFAULT_TIER),
                ))
                .execute(conn)
                .await?;
            diesel::insert_into(memberships::table)
                .values((
                    memberships::workspace_id.eq(id),
                    memberships::user_id.eq(user.id),
                    memberships::role.eq("owner"),
                ))
                .execute(conn)
                .await?;
            id
        }
    };
    Ok(Account {
        user_id: user.id,
        workspace_id,
        is_admin: user.is_admin,
    })
}

pub async fn workspace(conn: &mut AsyncPgConnection, id: WorkspaceId) -> DomainResult<Workspace> {
    workspaces::table
        .find(id)
        .select(Workspace::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("workspace"))
}

/// The workspace a user works in first (the oldest membership), for a session started without
/// a log-in form (after a password reset).
pub async fn first_workspace(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
) -> DomainResult<WorkspaceId> {
    memberships::table
        .filter(memberships::user_id.eq(user_id))
        .order(memberships::created_at.asc())
        .select(memberships::workspace_id)
        .first(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("workspace"))
}
