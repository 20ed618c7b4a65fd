//! Owner notifications about deliveries: a webhook paused itself, a platform refused a
//! connection's credentials. Sent through [`crate::mail::notify::owners`], at most once per
//! cause per day.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::DomainResult;
use crate::ids::{WebhookId, WorkspaceId};
use crate::mail::notify::owners;
use crate::schema::webhooks;

/// Called where the delivery worker counts a webhook's failures: when that count has just paused
/// the webhook, its workspace's owners hear of it.
pub async fn webhook_paused(conn: &mut AsyncPgConnection, hook: WebhookId) -> DomainResult<()> {
    let row: Option<(WorkspaceId, String, String, Option<String>)> = webhooks::table
        .filter(webhooks::id.eq(hook))
        .select((
            webhooks::workspace_id,
            webhooks::url,
            webhooks::status,
            webhooks::paused_reason,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((workspace_id, url, status, reason)) = row else {
        return Ok(());
    };
    let automatic = reason
        .as_deref()
        .is_some_and(|r| r.starts_with("Paused automatically"));
    if status != "paused" || !automatic {
        return Ok(());
    }
    // The target's host only: its path and query may carry a receiver's secret.
    let host = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    owners(
        conn,
        workspace_id,
        &format!("webhook_paused:{hook}"),
        "webhook_paused",
        format!("A webhook to {host} paused itself"),
        format!(
            "The webhook to {host} failed too many deliveries in a row and paused itself. New deliveries are held; fix the receiver, then press Resume on the webhook's page to send them."
        ),
        &format!("/webhooks/{hook}"),
    )
    .await?;
    Ok(())
}

/// Called where delivery results are recorded: a platform that refused a connection's credentials
/// (HTTP 401 or 403, no retry left, or a delivery held for reconnecting) means it needs
/// reconnecting, and the owners hear of it.
pub async fn reconnect_needed(
    conn: &mut AsyncPgConnection,
    results: &[super::queue::AttemptResult],
) -> DomainResult<()> {
    use crate::schema::{connections, deliveries};
    for r in results.iter().filter(|r| {
        r.webhook_id.is_none()
            && (r.reconnect.is_some()
                || (r.outcome == crate::states::AttemptOutcome::Failed
                    && matches!(r.status_code, Some(401 | 403))))
    }) {
        let row: Option<(uuid::Uuid, uuid::Uuid, String)> = deliveries::table
            .inner_join(
                connections::table.on(deliveries::connection_id.eq(connections::id.nullable())),
            )
            .filter(deliveries::id.eq(r.delivery_id))
            .filter(connections::workspace_id.eq(r.workspace_id))
            .select((
                connections::id,
                connections::domain_id,
                connections::platform,
            ))
            .first(conn)
            .await
            .optional()?;
        if let Some((connection_id, domain_id, platform)) = row {
            let label = crate::platforms::Platform::parse(&platform)
                .map(|p| p.label().to_owned())
                .unwrap_or(platform);
            reconnect(conn, r.workspace_id, connection_id, domain_id, &label).await?;
        }
    }
    Ok(())
}

async fn reconnect(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    connection_id: uuid::Uuid,
    domain_id: uuid::Uuid,
    platform: &str,
) -> DomainResult<()> {
    owners(
        conn,
        workspace_id,
        &format!("reconnect:{connection_id}"),
        "reconnect",
        format!("Reconnect {platform} in Postback"),
        format!(
            "{platform} refused the credentials of a connection, so conversions are not reaching it. Enter new credentials on the domain's Connections tab."
        ),
        &format!("/domains/{domain_id}/connections"),
    )
    .await?;
    Ok(())
}
