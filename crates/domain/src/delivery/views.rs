//! Deliveries as the dashboard and the management API show them, and redelivery.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use super::*;
use crate::error::{DomainError, DomainResult};
use crate::ids::{ConnectionId, DeliveryId, EventId, WebhookId, WorkspaceId};
use crate::platforms::Platform;
use crate::schema::{deliveries, delivery_attempts, delivery_queue, webhooks};
use crate::states::DeliveryStatus;
use crate::store::paging::{Cursor, Page, PageRequest};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
pub struct Delivery {
    pub id: DeliveryId,
    pub workspace_id: WorkspaceId,
    pub webhook_id: Option<WebhookId>,
    pub connection_id: Option<ConnectionId>,
    pub event_id: EventId,
    pub url: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub round_attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = delivery_attempts)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    #[serde(skip)]
    pub delivery_id: DeliveryId,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// A delivery with its attempts, as the log and the API show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: DeliveryId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<WebhookId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<ConnectionId>,
    /// For platform deliveries: `googleads`, `meta` or `tiktok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<&'static str>,
    pub event_id: EventId,
    pub url: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Held by its platform's rate limit or quota (pending, not failed): when it is sent next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limited_until: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub attempt_log: Vec<Attempt>,
    /// For platforms that process asynchronously (Google Data Manager): the outcome reported
    /// after the request was accepted, once asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_status: Option<super::platform_status::PlatformStatus>,
}

async fn with_attempts(
    conn: &mut AsyncPgConnection,
    rows: Vec<Delivery>,
) -> DomainResult<Vec<DeliveryView>> {
    let ids: Vec<DeliveryId> = rows.iter().map(|d| d.id).collect();
    let mut attempts: HashMap<DeliveryId, Vec<Attempt>> = HashMap::new();
    let mut statuses: HashMap<uuid::Uuid, super::platform_status::PlatformStatus> = HashMap::new();
    if let Some(first) = rows.iter().find(|d| d.connection_id.is_some()) {
        let platform_ids: Vec<DeliveryId> = rows
            .iter()
            .filter(|d| d.connection_id.is_some())
            .map(|d| d.id)
            .collect();
        for s in
            super::platform_status::for_deliveries(conn, first.workspace_id, &platform_ids).await?
        {
            statuses.insert(s.delivery_id, s);
        }
    }
    if !ids.is_empty() {
        for a in delivery_attempts::table
            .filter(delivery_attempts::delivery_id.eq_any(&ids))
            .order((delivery_attempts::delivery_id, delivery_attempts::attempt))
            .select(Attempt::as_select())
            .load::<Attempt>(conn)
            .await?
        {
            attempts.entry(a.delivery_id).or_default().push(a);
        }
    }
    Ok(rows
        .into_iter()
        .map(|d| DeliveryView {
            attempt_log: attempts.remove(&d.id).unwrap_or_default(),
            platform_status: statuses.remove(&d.id.0),
            id: d.id,
            webhook_id: d.webhook_id,
            platform: d
                .connection_id
                .and_then(|_| Platform::parse(&d.url))
                .map(Platform::as_str),
            connection_id: d.connection_id,
            event_id: d.event_id,
            url: d.url,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            rate_limited_until: (d.status == DeliveryStatus::Pending
                && d.next_attempt_at > Utc::now()
                && d.last_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with(crate::platforms::limits::RATE_LIMITED_PREFIX)))
            .then_some(d.next_attempt_at),
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            completed_at: d.completed_at,
        })
        .collect())
}

/// A webhook's delivery log, newest first.
pub async fn list_for_webhook(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    webhook_id: WebhookId,
    page: PageRequest,
) -> DomainResult<Page<DeliveryView>> {
    crate::delivery::webhooks::get(conn, workspace_id, webhook_id).await?;
    let q = crate::after_cursor!(
        deliveries::table
            .filter(deliveries::workspace_id.eq(workspace_id))
            .filter(deliveries::webhook_id.eq(webhook_id))
            .select(Delivery::as_select()),
        page,
        deliveries::created_at,
        deliveries::id
    );
    let rows: Vec<Delivery> = q.load(conn).await?;
    let page = Page::from_rows(rows, page.limit, |d: &Delivery| Cursor {
        at: d.created_at,
        id: d.id.0,
    });
    let next_cursor = page.next_cursor;
    Ok(Page {
        items: with_attempts(conn, page.items).await?,
        next_cursor,
    })
}

/// An event's deliveries (one per webhook it fired).
pub async fn list_for_event(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    event_id: EventId,
) -> DomainResult<Vec<DeliveryView>> {
    let rows: Vec<Delivery> = deliveries::table
        .filter(deliveries::workspace_id.eq(workspace_id))
        .filter(deliveries::event_id.eq(event_id))
        .order(deliveries::created_at.asc())
        .select(Delivery::as_select())
        .load(conn)
        .await?;
    with_attempts(conn, rows).await
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: DeliveryId,
) -> DomainResult<DeliveryView> {
    let row: Delivery = deliveries::table
        .filter(deliveries::workspace_id.eq(workspace_id))
        .filter(deliveries::id.eq(id))
        .select(Delivery::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("delivery"))?;
    Ok(with_attempts(conn, vec![row]).await?.remove(0))
}

/// Sends a finished delivery again with a fresh round of attempts (held if the webhook is
/// paused). The same delivery id and body, so receivers can recognise it.
pub async fn redeliver(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: DeliveryId,
) -> DomainResult<DeliveryView> {
    let current = get(conn, workspace_id, id).await?;
    if current.status == DeliveryStatus::Pending {
        return Err(DomainError::Conflict(
            "This delivery is already queued; it will be sent shortly".into(),
        ));
    }
    let active: bool = match current.webhook_id {
        Some(hook) => webhooks::table
            .filter(webhooks::workspace_id.eq(workspace_id))
            .filter(webhooks::id.eq(hook))
            .select(webhooks::status.eq("active"))
            .first(conn)
            .await
            .optional()?
            .ok_or(DomainError::NotFound("webhook"))?,
        None => true,
    };
    let status = if active { "pending" } else { "held" };
    // A finished delivery moves from history back into the queue; a held one is in it already.
    diesel::sql_query(
        r#"
        WITH moved AS (
            DELETE FROM delivery_history WHERE workspace_id = $1 AND id = $2 RETURNING *
        ),
        queued AS (
            INSERT INTO delivery_queue (id, workspace_id, webhook_id, event_id, url, status,
                                        attempts, round_attempts, next_attempt_at,
                                        last_status_code, last_error, created_at, connection_id,
                                        recovery_id, event_received_at)
            SELECT id, workspace_id, webhook_id, event_id, url, $3, attempts, 0, now(),
                   last_status_code, last_error, created_at, connection_id, recovery_id,
                   event_received_at
            FROM moved
        )
        UPDATE delivery_queue
        SET status = $3, round_attempts = 0, next_attempt_at = now(), leased_until = NULL
        WHERE workspace_id = $1 AND id = $2
        "#,
    )
    .bind::<diesel::sql_types::Uuid, _>(workspace_id.0)
    .bind::<diesel::sql_types::Uuid, _>(id.0)
    .bind::<diesel::sql_types::Text, _>(status)
    .execute(conn)
    .await?;
    if active {
        wake_workers(conn).await?;
    }
    get(conn, workspace_id, id).await
}

/// Deliveries not yet finished (pending or held), for the bench and the operations view.
pub async fn backlog(conn: &mut AsyncPgConnection) -> DomainResult<i64> {
    Ok(delivery_queue::table.count().get_result(conn).await?)
}
