//! Owner notifications: a webhook paused itself, a platform connection needs reconnecting, 80 %
//! and 100 % of the monthly event quota, the workspace was suspended or restored. Each goes to
//! the workspace's owners who have not turned them off, at most once per cause per day.

use std::sync::OnceLock;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::DomainResult;
use crate::ids::{WebhookId, WorkspaceId};
use crate::schema::{memberships, notifications_sent, users, webhooks, workspaces};

static BASE_URL: OnceLock<String> = OnceLock::new();

/// The public base URL for links in notifications queued where no request is at hand (the
/// delivery worker). Set once at start; later calls keep the first.
pub fn install_base_url(base_url: &str) {
    let _ = BASE_URL.set(base_url.trim_end_matches('/').to_owned());
}

fn base_url() -> &'static str {
    BASE_URL.get().map(String::as_str).unwrap_or("")
}

/// Mails the owners of a workspace about `cause` unless they were told of it today. Returns how
/// many mails were queued.
pub async fn owners(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    cause: &str,
    kind: &'static str,
    subject: String,
    message: String,
    path: &str,
) -> DomainResult<usize> {
    let first_today = diesel::insert_into(notifications_sent::table)
        .values((
            notifications_sent::workspace_id.eq(workspace_id),
            notifications_sent::cause.eq(cause),
            notifications_sent::day.eq(chrono::Utc::now().date_naive()),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    if first_today == 0 {
        return Ok(0);
    }
    let to: Vec<String> = memberships::table
        .inner_join(users::table)
        .inner_join(workspaces::table)
        .filter(memberships::workspace_id.eq(workspace_id))
        .filter(memberships::role.eq("owner"))
        .filter(users::notifications_enabled.eq(true))
        .filter(workspaces::status.ne("deleting"))
        .select(users::email)
        .load(conn)
        .await?;
    for address in &to {
        let mail = super::messages::notification(
            base_url(),
            address,
            kind,
            subject.clone(),
            message.clone(),
            path,
        )?;
        super::queue(conn, &mail).await?;
    }
    Ok(to.len())
}

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
    results: &[crate::deliveries::AttemptResult],
) -> DomainResult<()> {
    use crate::schema::{connections, deliveries};
    for r in results.iter().filter(|r| {
        r.webhook_id.is_none()
            && (r.reconnect.is_some()
                || (r.outcome == "failed" && matches!(r.status_code, Some(401 | 403))))
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

/// The workspace was suspended or restored by a platform admin.
pub async fn suspension(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    suspended: bool,
    reason: Option<&str>,
) -> DomainResult<()> {
    let (cause, subject, message) = if suspended {
        (
            "suspended",
            "Your Postback workspace was suspended".to_owned(),
            format!(
                "A platform admin suspended the workspace: {}. Inbound events are refused and nothing is sent until it is restored.",
                reason.unwrap_or("no reason given")
            ),
        )
    } else {
        (
            "restored",
            "Your Postback workspace was restored".to_owned(),
            "A platform admin restored the workspace: inbound events are accepted and deliveries resume.".to_owned(),
        )
    };
    owners(
        conn,
        workspace_id,
        cause,
        if suspended { "suspended" } else { "restored" },
        subject,
        message,
        "/plan",
    )
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct Usage {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    workspace_id: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    plan_name: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    used: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    quota: i64,
}

/// Workspaces at 80 % or 100 % of this month's event quota: their owners hear of it (once a day
/// per threshold). Run periodically by the mail worker. Returns how many workspaces it told.
pub async fn quota(conn: &mut AsyncPgConnection) -> DomainResult<usize> {
    let rows: Vec<Usage> = diesel::sql_query(
        "SELECT w.id AS workspace_id, p.name AS plan_name, u.used, p.max_events_per_month AS quota \
           FROM (SELECT workspace_id, sum(events)::int8 AS used FROM usage_counters \
                  WHERE month = date_trunc('month', now() AT TIME ZONE 'UTC')::date \
                  GROUP BY workspace_id) u \
           JOIN workspaces w ON w.id = u.workspace_id AND w.status <> 'deleting' \
           JOIN plans p ON p.tier = w.plan \
          WHERE p.max_events_per_month > 0 AND u.used * 5 >= p.max_events_per_month * 4",
    )
    .load(conn)
    .await?;
    let mut told = 0;
    for u in rows {
        let full = u.used >= u.quota;
        let (cause, subject, message) = if full {
            (
                "quota100",
                "Your Postback event quota is used up".to_owned(),
                format!(
                    "The workspace used all {} inbound events its {} plan allows this month: new events are refused until next month or a larger plan.",
                    u.quota, u.plan_name
                ),
            )
        } else {
            (
                "quota80",
                "80 % of your Postback event quota is used".to_owned(),
                format!(
                    "The workspace used {} of the {} inbound events its {} plan allows this month. At the limit, new events are refused.",
                    u.used, u.quota, u.plan_name
                ),
            )
        };
        told += owners(
            conn,
            WorkspaceId(u.workspace_id),
            cause,
            if full { "quota100" } else { "quota80" },
            subject,
            message,
            "/plan",
        )
        .await?
        .min(1);
    }
    Ok(told)
}
