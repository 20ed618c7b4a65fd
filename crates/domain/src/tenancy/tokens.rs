//! Personal access tokens for the management API: `pb_` and 40 hex characters, shown once when
//! created, stored as their SHA-256. A token acts as the user who made it, in the workspace it
//! was made in, for as long as the user is still a member.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::error::{DomainError, DomainResult};
use crate::ids::{SessionId, TokenId, UserId, WorkspaceId};
use crate::schema::{api_tokens, memberships, users, workspaces};
use crate::secrets::{random_bytes, sha256};
use crate::store::paging::{Cursor, Page, PageRequest};
use crate::tenancy::sessions::SessionContext;

pub const PREFIX: &str = "pb_";
/// `last_used_at` is written at most this often per token.
const LAST_USED_RESOLUTION: Duration = Duration::seconds(60);

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = api_tokens)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    pub id: TokenId,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    #[serde(skip)]
    pub user_id: UserId,
    pub name: String,
    /// `pb_1a2b…`: enough to recognise it, useless to use.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A token just created: the only time its value is known.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: ApiToken,
    pub token_value: String,
}

/// True for `pb_` + 40 lowercase hex characters.
pub fn is_well_formed(raw: &str) -> bool {
    raw.strip_prefix(PREFIX)
        .is_some_and(|h| h.len() == 40 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

pub async fn create(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
    name: &str,
) -> DomainResult<CreatedToken> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::invalid(
            "name is required and must be at most 100 characters",
        ));
    }
    let value = format!("{PREFIX}{}", hex::encode(random_bytes::<20>()));
    let token: ApiToken = diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::id.eq(TokenId::new()),
            api_tokens::workspace_id.eq(ctx.workspace_id),
            api_tokens::user_id.eq(ctx.user_id),
            api_tokens::name.eq(name),
            api_tokens::token_hash.eq(sha256(value.as_bytes())),
            api_tokens::prefix.eq(&value[..PREFIX.len() + 6]),
        ))
        .returning(ApiToken::as_returning())
        .get_result(conn)
        .await?;
    Ok(CreatedToken {
        token,
        token_value: value,
    })
}

/// The workspace's tokens, newest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    page: PageRequest,
) -> DomainResult<Page<ApiToken>> {
    let q = crate::after_cursor!(
        api_tokens::table
            .filter(api_tokens::workspace_id.eq(workspace_id))
            .select(ApiToken::as_select()),
        page,
        api_tokens::created_at,
        api_tokens::id
    );
    let rows = q.load(conn).await?;
    Ok(Page::from_rows(rows, page.limit, |t: &ApiToken| Cursor {
        at: t.created_at,
        id: t.id.0,
    }))
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: TokenId,
) -> DomainResult<ApiToken> {
    api_tokens::table
        .filter(api_tokens::workspace_id.eq(workspace_id))
        .filter(api_tokens::id.eq(id))
        .select(ApiToken::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("token"))
}

/// Revokes a token: it stops working at once and leaves the list.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: TokenId,
) -> DomainResult<ApiToken> {
    diesel::delete(
        api_tokens::table
            .filter(api_tokens::workspace_id.eq(workspace_id))
            .filter(api_tokens::id.eq(id)),
    )
    .returning(ApiToken::as_returning())
    .get_result(conn)
    .await
    .optional()?
    .ok_or(DomainError::NotFound("token"))
}

/// The user and workspace a token acts for, or None when it is unknown, revoked, or its user is
/// no longer a member. Records its use (at most once a minute).
pub async fn authenticate(
    conn: &mut AsyncPgConnection,
    raw: &str,
) -> DomainResult<Option<(TokenId, SessionContext)>> {
    if !is_well_formed(raw) {
        return Ok(None);
    }
    type Row = (
        TokenId,
        Option<DateTime<Utc>>,
        UserId,
        String,
        bool,
        WorkspaceId,
        String,
        String,
        String,
        Option<String>,
        String,
        String,
    );
    let row: Option<Row> = api_tokens::table
        .inner_join(users::table.on(users::id.eq(api_tokens::user_id)))
        .inner_join(workspaces::table.on(workspaces::id.eq(api_tokens::workspace_id)))
        .inner_join(
            memberships::table.on(memberships::workspace_id
                .eq(api_tokens::workspace_id)
                .and(memberships::user_id.eq(api_tokens::user_id))),
        )
        .filter(api_tokens::token_hash.eq(sha256(raw.as_bytes())))
        .select((
            api_tokens::id,
            api_tokens::last_used_at,
            users::id,
            users::email,
            users::is_admin,
            workspaces::id,
            workspaces::name,
            workspaces::plan,
            workspaces::status,
            workspaces::suspended_reason,
            memberships::role,
            workspaces::time_zone,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((
        id,
        last_used,
        user_id,
        email,
        is_admin,
        workspace_id,
        name,
        plan,
        status,
        suspended_reason,
        role,
        time_zone,
    )) = row
    else {
        return Ok(None);
    };
    let now = Utc::now();
    if last_used.is_none_or(|t| now - t >= LAST_USED_RESOLUTION) {
        diesel::update(api_tokens::table.filter(api_tokens::id.eq(id)))
            .set(api_tokens::last_used_at.eq(now))
            .execute(conn)
            .await?;
    }
    Ok(Some((
        id,
        SessionContext {
            // Not a browser session: nothing to sign out of.
            session_id: SessionId(uuid::Uuid::nil()),
            user_id,
            email,
            is_admin,
            workspace_id,
            workspace_name: name,
            plan,
            status,
            suspended_reason,
            role,
            email_verified: true,
            time_zone,
        },
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_shape() {
        assert!(super::is_well_formed(
            "pb_0123456789abcdef0123456789abcdef01234567"
        ));
        assert!(!super::is_well_formed(
            "cc_0123456789abcdef0123456789abcdef01234567"
        ));
        assert!(!super::is_well_formed("pb_XYZ"));
    }
}
