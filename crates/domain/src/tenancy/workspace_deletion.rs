//! Deleting a workspace: an owner confirms by typing its name; at once it disappears for everyone
//! (memberships, sessions, tokens and invitations go, members are told by mail, it is marked
//! `deleting`), then [`purge_step`] removes its data in small batches, so no other tenant waits on
//! one big delete, and finally the workspace row with what cascades from it (domains, keys,
//! webhooks, links, connections).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use crate::error::{DomainError, DomainResult};
use crate::ids::{UserId, WorkspaceId};
use crate::mail::{self, messages};
use crate::schema::{api_tokens, audit_log, invitations, memberships, sessions, users, workspaces};

/// Rows deleted per statement while purging.
pub const BATCH: i64 = 2000;

/// Tables holding a workspace's bulk data, in the order they are emptied (children first).
const BULK_TABLES: [&str; 8] = [
    // The platform's audit log has no foreign key to workspaces (it stays local under Citus).
    "audit_log",
    "delivery_attempts",
    "delivery_queue",
    "delivery_history",
    "events",
    "touches",
    "visitor_emails",
    "visitors",
];

/// Marks a workspace for deletion (owners only; `confirm` must be its name) and tells its members.
pub async fn request(
    conn: &mut AsyncPgConnection,
    base_url: &str,
    actor: UserId,
    actor_email: &str,
    workspace_id: WorkspaceId,
    confirm: &str,
) -> DomainResult<()> {
    let role: Option<String> = memberships::table
        .inner_join(workspaces::table)
        .filter(memberships::workspace_id.eq(workspace_id))
        .filter(memberships::user_id.eq(actor))
        .filter(workspaces::status.ne("deleting"))
        .select(memberships::role)
        .first(conn)
        .await
        .optional()?;
    match role.as_deref() {
        None => return Err(DomainError::NotFound("workspace")),
        Some("owner") => {}
        Some(_) => {
            return Err(DomainError::Forbidden(
                "Only owners of this workspace can delete it".into(),
            ))
        }
    }
    let name: String = workspaces::table
        .find(workspace_id)
        .select(workspaces::name)
        .first(conn)
        .await?;
    if confirm.trim() != name {
        return Err(DomainError::invalid(
            "name must be the workspace's name exactly, to confirm its deletion",
        ));
    }
    let actor_email = actor_email.to_owned();
    conn.transaction::<_, DomainError, _>(async move |conn| {
        let members: Vec<String> = memberships::table
            .inner_join(users::table)
            .filter(memberships::workspace_id.eq(workspace_id))
            .select(users::email)
            .load(conn)
            .await?;
        diesel::update(workspaces::table.find(workspace_id))
            .set(workspaces::status.eq("deleting"))
            .execute(conn)
            .await?;
        diesel::delete(sessions::table.filter(sessions::workspace_id.eq(workspace_id)))
            .execute(conn)
            .await?;
        diesel::delete(api_tokens::table.filter(api_tokens::workspace_id.eq(workspace_id)))
            .execute(conn)
            .await?;
        diesel::delete(invitations::table.filter(invitations::workspace_id.eq(workspace_id)))
            .execute(conn)
            .await?;
        diesel::delete(memberships::table.filter(memberships::workspace_id.eq(workspace_id)))
            .execute(conn)
            .await?;
        for to in &members {
            mail::queue(
                conn,
                &messages::workspace_deleted(base_url, to, &name, &actor_email)?,
            )
            .await?;
        }
        // Kept in the platform's log (no workspace: the workspace's own log goes with it).
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::id.eq(uuid::Uuid::now_v7()),
                audit_log::workspace_id.eq(None::<uuid::Uuid>),
                audit_log::actor_id.eq(Some(actor.0)),
                audit_log::actor_email.eq(&actor_email),
                audit_log::action.eq("workspace.delete"),
                audit_log::target.eq(&name),
                audit_log::before.eq(Some(
                    json!({ "id": workspace_id, "members": members.len() }),
                )),
                audit_log::after.eq(None::<serde_json::Value>),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

/// One batch of the purge of one workspace marked for deletion. Returns whether there is more to
/// do (call again), false when no workspace is waiting.
pub async fn purge_step(conn: &mut AsyncPgConnection) -> DomainResult<bool> {
    let next: Option<WorkspaceId> = workspaces::table
        .filter(workspaces::status.eq("deleting"))
        .order(workspaces::created_at.asc())
        .select(workspaces::id)
        .first(conn)
        .await
        .optional()?;
    let Some(workspace_id) = next else {
        return Ok(false);
    };
    for table in BULK_TABLES {
        let deleted = diesel::sql_query(format!(
            // A ctid names a row only within one partition: the workspace is matched again.
            "DELETE FROM {table} WHERE workspace_id = $1 AND ctid = ANY(ARRAY(SELECT ctid \
              FROM {table} WHERE workspace_id = $1 LIMIT $2))"
        ))
        .bind::<diesel::sql_types::Uuid, _>(workspace_id.0)
        .bind::<diesel::sql_types::BigInt, _>(BATCH)
        .execute(conn)
        .await?;
        if deleted > 0 {
            return Ok(true);
        }
    }
    diesel::delete(
        workspaces::table
            .filter(workspaces::id.eq(workspace_id))
            .filter(workspaces::status.eq("deleting")),
    )
    .execute(conn)
    .await?;
    Ok(true)
}
