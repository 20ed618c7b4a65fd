//! A workspace's team: owners invite people by email (every address gets an invitation mail with
//! a single-use link, valid 7 days, whether it has an account or not; only that link joins),
//! resend or withdraw invitations, change roles and remove members. Members can do everything
//! but manage members. A workspace always keeps an owner. A user in several workspaces switches
//! between them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::json;

use crate::error::{DomainError, DomainResult};
use crate::ids::{SessionId, UserId, WorkspaceId};
use crate::mail::{self, messages};
use crate::schema::{audit_log, invitations, memberships, sessions, users, workspaces};
use crate::secrets::sha256;
use crate::tenancy::account_links::new_token;
use crate::tenancy::accounts::normalize_email;
use crate::tenancy::sessions::SessionContext;

pub const ROLES: [&str; 2] = ["owner", "member"];

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = invitations)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub id: uuid::Uuid,
    pub email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    /// The mailed link stops working then (7 days after it was last sent).
    pub expires_at: DateTime<Utc>,
}

/// What adding someone did: an invitation was mailed (the same answer whether or not the address
/// has an account).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Added {
    /// The invitation mail is on its way; its link joins the workspace.
    Invitation(Invitation),
}

pub const INVITATION_DAYS: i64 = 7;

fn require_owner(ctx: &SessionContext) -> DomainResult<()> {
    if ctx.is_owner() {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "Only owners of this workspace can manage its members".into(),
        ))
    }
}

fn validate_role(role: &str) -> DomainResult<()> {
    if ROLES.contains(&role) {
        Ok(())
    } else {
        Err(DomainError::invalid("role must be owner or member"))
    }
}

async fn audit(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
    action: &str,
    target: &str,
    before: serde_json::Value,
    after: serde_json::Value,
) -> DomainResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::id.eq(uuid::Uuid::now_v7()),
            audit_log::workspace_id.eq(Some(ctx.workspace_id.0)),
            audit_log::actor_id.eq(Some(ctx.user_id.0)),
            audit_log::actor_email.eq(&ctx.email),
            audit_log::action.eq(action),
            audit_log::target.eq(target),
            audit_log::before.eq(Some(before)),
            audit_log::after.eq(Some(after)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn members(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
) -> DomainResult<Vec<Member>> {
    let rows: Vec<(UserId, String, String, DateTime<Utc>)> = memberships::table
        .inner_join(users::table)
        .filter(memberships::workspace_id.eq(workspace_id))
        .order((memberships::created_at.asc(), users::email.asc()))
        .select((
            users::id,
            users::email,
            memberships::role,
            memberships::created_at,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(user_id, email, role, joined_at)| Member {
            user_id,
            email,
            role,
            joined_at,
        })
        .collect())
}

pub async fn invitations(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
) -> DomainResult<Vec<Invitation>> {
    Ok(invitations::table
        .filter(invitations::workspace_id.eq(workspace_id))
        .order(invitations::created_at.asc())
        .select(Invitation::as_select())
        .load(conn)
        .await?)
}

/// Invites a person by email with a role (owners only): an invitation mail with a link that
/// joins. An address that already has an account gets the same mail and the same answer.
pub async fn add(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
    base_url: &str,
    email: &str,
    role: &str,
) -> DomainResult<Added> {
    require_owner(ctx)?;
    validate_role(role)?;
    let email = normalize_email("email", email)?;
    let already: i64 = memberships::table
        .inner_join(users::table)
        .filter(memberships::workspace_id.eq(ctx.workspace_id))
        .filter(users::email.eq(&email))
        .count()
        .get_result(conn)
        .await?;
    if already > 0 {
        return Err(DomainError::Conflict(format!(
            "{email} is already a member of this workspace"
        )));
    }
    let (token, hash) = new_token();
    let inv: Option<Invitation> = diesel::insert_into(invitations::table)
        .values((
            invitations::id.eq(uuid::Uuid::new_v4()),
            invitations::workspace_id.eq(ctx.workspace_id),
            invitations::email.eq(&email),
            invitations::role.eq(role),
            invitations::invited_by.eq(Some(ctx.user_id.0)),
            invitations::token_hash.eq(Some(hash)),
            invitations::expires_at.eq(Utc::now() + chrono::Duration::days(INVITATION_DAYS)),
        ))
        .on_conflict_do_nothing()
        .returning(Invitation::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    let inv = inv.ok_or_else(|| {
        DomainError::Conflict(format!(
            "{email} has already been invited; resend the invitation instead"
        ))
    })?;
    mail::queue(
        conn,
        &messages::invitation(
            base_url,
            &email,
            &token,
            &ctx.workspace_name,
            &ctx.email,
            role,
        )?,
    )
    .await?;
    audit(
        conn,
        ctx,
        "member.invite",
        &email,
        json!(null),
        json!({ "role": role }),
    )
    .await?;
    Ok(Added::Invitation(inv))
}

/// Mails an invitation again with a new link (the old one stops working) valid 7 more days.
pub async fn resend_invitation(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
    base_url: &str,
    id: uuid::Uuid,
) -> DomainResult<Invitation> {
    require_owner(ctx)?;
    let (token, hash) = new_token();
    let inv: Invitation = diesel::update(
        invitations::table
            .filter(invitations::workspace_id.eq(ctx.workspace_id))
            .filter(invitations::id.eq(id)),
    )
    .set((
        invitations::token_hash.eq(Some(hash)),
        invitations::expires_at.eq(Utc::now() + chrono::Duration::days(INVITATION_DAYS)),
    ))
    .returning(Invitation::as_returning())
    .get_result(conn)
    .await
    .optional()?
    .ok_or(DomainError::NotFound("invitation"))?;
    mail::queue(
        conn,
        &messages::invitation(
            base_url,
            &inv.email,
            &token,
            &ctx.workspace_name,
            &ctx.email,
            &inv.role,
        )?,
    )
    .await?;
    audit(
        conn,
        ctx,
        "member.reinvite",
        &inv.email,
        json!(null),
        json!({ "role": inv.role }),
    )
    .await?;
    Ok(inv)
}

/// What an invitation link offers, for the page that accepts it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationOffer {
    pub workspace_id: WorkspaceId,
    pub workspace_name: String,
    pub email: String,
    pub role: String,
}

fn invalid_invitation() -> DomainError {
    DomainError::invalid("token is not a valid invitation: it was used, withdrawn or has expired")
}

/// The invitation a link's token stands for, while it is valid.
pub async fn offer(conn: &mut AsyncPgConnection, token: &str) -> DomainResult<InvitationOffer> {
    let token = token.trim();
    if token.is_empty() || token.len() > 128 {
        return Err(invalid_invitation());
    }
    let row: Option<(WorkspaceId, String, String, String)> = invitations::table
        .inner_join(workspaces::table.on(workspaces::id.eq(invitations::workspace_id)))
        .filter(invitations::token_hash.eq(sha256(token.as_bytes())))
        .filter(invitations::expires_at.gt(Utc::now()))
        .filter(workspaces::status.ne("deleting"))
        .select((
            workspaces::id,
            workspaces::name,
            invitations::email,
            invitations::role,
        ))
        .first(conn)
        .await
        .optional()?;
    let (workspace_id, workspace_name, email, role) = row.ok_or_else(invalid_invitation)?;
    Ok(InvitationOffer {
        workspace_id,
        workspace_name,
        email,
        role,
    })
}

/// Joins the workspace of an invitation link as the signed-in user (the link is used up).
pub async fn accept(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    user_email: &str,
    token: &str,
) -> DomainResult<InvitationOffer> {
    let offer = offer(conn, token).await?;
    let used: Option<(uuid::Uuid, String)> = diesel::delete(
        invitations::table
            .filter(invitations::token_hash.eq(sha256(token.trim().as_bytes())))
            .filter(invitations::expires_at.gt(Utc::now())),
    )
    .returning((invitations::workspace_id, invitations::role))
    .get_result(conn)
    .await
    .optional()?;
    let (workspace_id, role) = used.ok_or_else(invalid_invitation)?;
    diesel::insert_into(memberships::table)
        .values((
            memberships::workspace_id.eq(workspace_id),
            memberships::user_id.eq(user_id),
            memberships::role.eq(&role),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::id.eq(uuid::Uuid::now_v7()),
            audit_log::workspace_id.eq(Some(workspace_id)),
            audit_log::actor_id.eq(Some(user_id.0)),
            audit_log::actor_email.eq(user_email),
            audit_log::action.eq("member.join"),
            audit_log::target.eq(&offer.email),
            audit_log::before.eq(None::<serde_json::Value>),
            audit_log::after.eq(Some(json!({ "role": role }))),
        ))
        .execute(conn)
        .await?;
    Ok(offer)
}

/// The workspace's owners, their membership rows locked until the transaction ends, so two
/// owners changing each other at once take turns and each sees the other's change. The acting
/// user must still be one of them (they may have been demoted a moment ago).
async fn lock_owners(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
) -> DomainResult<Vec<UserId>> {
    let owners: Vec<UserId> = memberships::table
        .filter(memberships::workspace_id.eq(ctx.workspace_id))
        .filter(memberships::role.eq("owner"))
        .select(memberships::user_id)
        .order(memberships::user_id)
        .for_update()
        .load(conn)
        .await?;
    if !owners.contains(&ctx.user_id) {
        return Err(DomainError::Forbidden(
            "Only owners of this workspace can manage its members".into(),
        ));
    }
    Ok(owners)
}

async fn member(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    user_id: UserId,
) -> DomainResult<Member> {
    members(conn, workspace_id)
        .await?
        .into_iter()
        .find(|m| m.user_id == user_id)
        .ok_or(DomainError::NotFound("member"))
}

/// Changes a member's role (owners only); the last owner stays an owner.
pub async fn set_role(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
    user_id: UserId,
    role: &str,
) -> DomainResult<Member> {
    require_owner(ctx)?;
    validate_role(role)?;
    let role = role.to_owned();
    conn.transaction(|conn| {
        async move {
            let owners = lock_owners(conn, ctx).await?;
            let current = member(conn, ctx.workspace_id, user_id).await?;
            if current.role == "owner" && role != "owner" && owners.len() <= 1 {
                return Err(DomainError::Conflict(
                    "A workspace needs an owner: make someone else an owner first".into(),
                ));
            }
            change_role(conn, ctx, &current, &role).await?;
            member(conn, ctx.workspace_id, user_id).await
        }
        .scope_boxed()
    })
    .await
}

async fn change_role(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
    current: &Member,
    role: &str,
) -> DomainResult<()> {
    let user_id = current.user_id;
    diesel::update(
        memberships::table
            .filter(memberships::workspace_id.eq(ctx.workspace_id))
            .filter(memberships::user_id.eq(user_id)),
    )
    .set(memberships::role.eq(role))
    .execute(conn)
    .await?;
    audit(
        conn,
        ctx,
        "member.role",
        &current.email,
        json!({ "role": current.role }),
        json!({ "role": role }),
    )
    .await
}

/// Removes a member (owners only; the last owner cannot be removed). Their sessions in this
/// workspace end.
pub async fn remove(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
    user_id: UserId,
) -> DomainResult<()> {
    require_owner(ctx)?;
    conn.transaction(|conn| {
        async move {
            let owners = lock_owners(conn, ctx).await?;
            let current = member(conn, ctx.workspace_id, user_id).await?;
            if current.role == "owner" && owners.len() <= 1 {
                return Err(DomainError::Conflict(
                    "A workspace needs an owner: the last owner cannot be removed".into(),
                ));
            }
            remove_member(conn, ctx, &current).await
        }
        .scope_boxed()
    })
    .await
}

async fn remove_member(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
    current: &Member,
) -> DomainResult<()> {
    let user_id = current.user_id;
    diesel::delete(
        memberships::table
            .filter(memberships::workspace_id.eq(ctx.workspace_id))
            .filter(memberships::user_id.eq(user_id)),
    )
    .execute(conn)
    .await?;
    diesel::delete(
        sessions::table
            .filter(sessions::workspace_id.eq(ctx.workspace_id))
            .filter(sessions::user_id.eq(user_id)),
    )
    .execute(conn)
    .await?;
    audit(
        conn,
        ctx,
        "member.remove",
        &current.email,
        json!({ "role": current.role }),
        json!(null),
    )
    .await
}

/// Withdraws an invitation (owners only).
pub async fn cancel_invitation(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
    id: uuid::Uuid,
) -> DomainResult<()> {
    require_owner(ctx)?;
    let email: Option<String> = diesel::delete(
        invitations::table
            .filter(invitations::workspace_id.eq(ctx.workspace_id))
            .filter(invitations::id.eq(id)),
    )
    .returning(invitations::email)
    .get_result(conn)
    .await
    .optional()?;
    let email = email.ok_or(DomainError::NotFound("invitation"))?;
    audit(
        conn,
        ctx,
        "member.uninvite",
        &email,
        json!(null),
        json!(null),
    )
    .await
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceChoice {
    pub id: WorkspaceId,
    pub name: String,
    pub role: String,
    pub current: bool,
}

/// The workspaces a user belongs to, for the switcher.
pub async fn workspaces_of(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
) -> DomainResult<Vec<WorkspaceChoice>> {
    let rows: Vec<(WorkspaceId, String, String)> = memberships::table
        .inner_join(workspaces::table)
        .filter(memberships::user_id.eq(ctx.user_id))
        .order(workspaces::name.asc())
        .select((workspaces::id, workspaces::name, memberships::role))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, role)| WorkspaceChoice {
            current: id == ctx.workspace_id,
            id,
            name,
            role,
        })
        .collect())
}

/// Moves a browser session to another workspace the user belongs to.
pub async fn switch(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
    session_id: SessionId,
    to: WorkspaceId,
) -> DomainResult<()> {
    let member: i64 = memberships::table
        .filter(memberships::workspace_id.eq(to))
        .filter(memberships::user_id.eq(ctx.user_id))
        .count()
        .get_result(conn)
        .await?;
    if member == 0 {
        return Err(DomainError::NotFound("workspace"));
    }
    diesel::update(sessions::table.filter(sessions::id.eq(session_id)))
        .set(sessions::workspace_id.eq(to))
        .execute(conn)
        .await?;
    Ok(())
}
