//! The audit log's writer for owner and member actions that change or expose something
//! (deleting domains, keys, webhooks, links and connections; revoking and restoring keys;
//! creating and revoking tokens; revealing or rotating a webhook secret; connecting and
//! disconnecting platforms; …). One call per handler, from the API and the dashboard alike;
//! plan, workspace and member changes write theirs in `admin` and `team`. Entries never hold a
//! secret, only what was acted on.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::error::DomainResult;
use crate::schema::audit_log;
use crate::tenancy::sessions::SessionContext;

/// Records `action` (`noun.verb`, e.g. `key.revoke`) on `target` (what a reader recognises:
/// a name, a hostname, a URL) by the signed-in user, in their current workspace; `detail`
/// goes in the entry's "after" column (Null for none).
pub async fn record(
    conn: &mut AsyncPgConnection,
    ctx: &SessionContext,
    action: &str,
    target: &str,
    detail: Value,
) -> DomainResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::id.eq(uuid::Uuid::now_v7()),
            audit_log::workspace_id.eq(Some(ctx.workspace_id.0)),
            audit_log::actor_id.eq(Some(ctx.user_id.0)),
            audit_log::actor_email.eq(&ctx.email),
            audit_log::action.eq(action),
            audit_log::target.eq(target),
            audit_log::before.eq(None::<Value>),
            audit_log::after.eq((!detail.is_null()).then_some(detail)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}
