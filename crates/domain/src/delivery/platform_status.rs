//! The asynchronous outcome of platform deliveries (`platform_requests`): a Google delivery the
//! Data Manager API accepted with a `requestId` is followed until its request status says how
//! the events were processed ([`crate::platforms::request_status`]). The outcome is kept for the
//! delivery's views; a failed processing fails the delivery with Google's reason.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Double, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use super::AttemptResult;
use crate::error::DomainResult;
use crate::ids::{DeliveryId, WorkspaceId};
use crate::platforms::request_status::{self, Outcome};
use crate::states::AttemptOutcome;

/// Checks stop after this long: the outcome is then recorded as unknown.
pub const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(24);

/// Starts following the accepted Google deliveries whose answer carried a request id (called
/// where attempts are recorded).
pub async fn track(conn: &mut AsyncPgConnection, results: &[AttemptResult]) -> DomainResult<()> {
    let tracked: Vec<(uuid::Uuid, uuid::Uuid, String)> = results
        .iter()
        .filter(|r| r.webhook_id.is_none() && r.outcome == AttemptOutcome::Succeeded)
        .filter_map(|r| {
            let id = request_status::request_id(r.response_body.as_deref()?)?;
            Some((r.workspace_id.0, r.delivery_id.0, id))
        })
        .collect();
    if tracked.is_empty() {
        return Ok(());
    }
    diesel::sql_query(
        r#"
        INSERT INTO platform_requests (workspace_id, delivery_id, request_id, next_check_at)
        SELECT t.workspace_id, t.delivery_id, t.request_id, now()
        FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS t(workspace_id, delivery_id, request_id)
        JOIN deliveries d ON d.workspace_id = t.workspace_id AND d.id = t.delivery_id
        JOIN connections c ON c.workspace_id = d.workspace_id AND c.id = d.connection_id
        WHERE c.platform = 'googleads'
        ON CONFLICT (workspace_id, delivery_id) DO UPDATE
        SET request_id = EXCLUDED.request_id, status = 'processing', detail = NULL, checks = 0,
            next_check_at = now(), checked_at = NULL, created_at = now()
        "#,
    )
    .bind::<Array<SqlUuid>, _>(tracked.iter().map(|t| t.0).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(tracked.iter().map(|t| t.1).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(tracked.into_iter().map(|t| t.2).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// A request whose status is due to be asked for.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct Due {
    #[diesel(sql_type = SqlUuid)]
    pub workspace_id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub delivery_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    pub request_id: String,
    #[diesel(sql_type = Int4)]
    pub checks: i32,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// The connection's credentials, sealed as stored.
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    pub credentials: serde_json::Value,
}

/// Takes up to `limit` due requests, each leased for `lease_secs` so no other instance asks
/// for it meanwhile.
pub async fn due(
    conn: &mut AsyncPgConnection,
    limit: i32,
    lease_secs: f64,
) -> DomainResult<Vec<Due>> {
    Ok(diesel::sql_query(
        r#"
        WITH due AS (
            SELECT workspace_id, delivery_id FROM platform_requests
            WHERE status = 'processing' AND next_check_at <= now()
            ORDER BY next_check_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ), leased AS (
            UPDATE platform_requests p SET next_check_at = now() + make_interval(secs => $2)
            FROM due
            WHERE p.workspace_id = due.workspace_id AND p.delivery_id = due.delivery_id
            RETURNING p.workspace_id, p.delivery_id, p.request_id, p.checks, p.created_at
        )
        SELECT l.workspace_id, l.delivery_id, l.request_id, l.checks, l.created_at,
               c.credentials
        FROM leased l
        JOIN deliveries d ON d.workspace_id = l.workspace_id AND d.id = l.delivery_id
        JOIN connections c ON c.workspace_id = d.workspace_id AND c.id = d.connection_id
        "#,
    )
    .bind::<Int4, _>(limit)
    .bind::<Double, _>(lease_secs)
    .load(conn)
    .await?)
}

/// Records what a status check found: a final outcome (a failure fails the delivery with
/// Google's reason), or, while still processing, the next check after `retry_in` seconds;
/// past [`GIVE_UP_AFTER`] the outcome is recorded as unknown.
pub async fn record(
    conn: &mut AsyncPgConnection,
    due: &Due,
    outcome: &Outcome,
    retry_in: f64,
) -> DomainResult<()> {
    let (status, detail) = match outcome {
        Outcome::Processing if Utc::now() - due.created_at > GIVE_UP_AFTER => (
            "unknown",
            Some("Google Data Manager reported no outcome within 24 hours".to_owned()),
        ),
        o => (o.as_str(), o.detail().map(str::to_owned)),
    };
    diesel::sql_query(
        r#"
        UPDATE platform_requests
        SET status = $3, detail = $4, checks = checks + 1, checked_at = now(),
            next_check_at = now() + make_interval(secs => $5)
        WHERE workspace_id = $1 AND delivery_id = $2 AND request_id = $6
        "#,
    )
    .bind::<SqlUuid, _>(due.workspace_id)
    .bind::<SqlUuid, _>(due.delivery_id)
    .bind::<Text, _>(status)
    .bind::<Nullable<Text>, _>(detail.clone())
    .bind::<Double, _>(retry_in)
    .bind::<Text, _>(&due.request_id)
    .execute(conn)
    .await?;
    if status == "failed" {
        diesel::sql_query(
            r#"
            UPDATE delivery_history SET status = 'failed', last_error = $3
            WHERE workspace_id = $1 AND id = $2 AND status = 'succeeded'
            "#,
        )
        .bind::<SqlUuid, _>(due.workspace_id)
        .bind::<SqlUuid, _>(due.delivery_id)
        .bind::<Text, _>(detail.unwrap_or_default())
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// A delivery's asynchronous outcome as its views show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, diesel::QueryableByName)]
#[serde(rename_all = "camelCase")]
pub struct PlatformStatus {
    #[serde(skip)]
    #[diesel(sql_type = SqlUuid)]
    pub delivery_id: uuid::Uuid,
    /// The platform's id of the request (Google Data Manager `requestId`).
    #[diesel(sql_type = Text)]
    pub request_id: String,
    /// `processing`, `succeeded`, `partially_succeeded`, `failed` or `unknown`.
    #[diesel(sql_type = Text)]
    pub status: String,
    /// The platform's counts and reasons.
    #[diesel(sql_type = Nullable<Text>)]
    pub detail: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub checked_at: Option<DateTime<Utc>>,
}

/// The outcomes of these deliveries of one workspace, by delivery.
pub async fn for_deliveries(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    ids: &[DeliveryId],
) -> DomainResult<Vec<PlatformStatus>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diesel::sql_query(
        r#"
        SELECT delivery_id, request_id, status, detail, checked_at FROM platform_requests
        WHERE workspace_id = $1 AND delivery_id = ANY($2)
        "#,
    )
    .bind::<SqlUuid, _>(workspace_id.0)
    .bind::<Array<SqlUuid>, _>(ids.iter().map(|d| d.0).collect::<Vec<_>>())
    .load(conn)
    .await?)
}
