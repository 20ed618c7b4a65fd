//! Per-connection rate limits and quotas (issue 19), counted in PostgreSQL so every instance
//! sees them.
//!
//! - A throttling answer (HTTP 429; Meta's and TikTok's rate-limit codes, see each adapter's
//!   `throttled`) holds the connection until a time ([`hold`]): its pending deliveries wait
//!   until then, their error starting with [`RATE_LIMITED_PREFIX`] and saying when the next
//!   send is. They are not failed and the attempt does not use up the retry schedule.
//! - Google Ads basic access allows "15,000 operations / day", per developer token, over "a
//!   sliding 24 hour time period" (https://developers.google.com/google-ads/api/docs/access-levels;
//!   each uploaded conversion is counted as one operation). Operations are counted per
//!   connection and hour ([`reserve`]); an hour's count weighs for the 24 hours after it ends.
//!   What does not fit waits, held, until the oldest counted hour drops out.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Int4, Int8, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::{DomainError, DomainResult};
use crate::ids::{ConnectionId, DeliveryId, WorkspaceId};

/// How the error of a rate-limited delivery starts.
pub const RATE_LIMITED_PREFIX: &str = "Rate-limited";

/// Google Ads basic access: operations per 24 hours.
pub const GOOGLE_ADS_BASIC_DAILY_OPERATIONS: u32 = 15_000;

/// How long a throttled connection waits when the platform does not say (no `Retry-After`).
pub const DEFAULT_HOLD: chrono::Duration = chrono::Duration::seconds(60);

/// The longest a throttling answer holds a connection.
pub const MAX_HOLD: chrono::Duration = chrono::Duration::hours(1);

/// The error recorded on a rate-limited delivery.
pub fn rate_limited_error(platform_label: &str, why: &str, until: DateTime<Utc>) -> String {
    format!(
        "{RATE_LIMITED_PREFIX} by {platform_label} ({why}); next send at {}",
        until.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

/// What a connection may send now.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowance {
    /// Events that may be sent now (of those asked for).
    pub granted: usize,
    /// When the rest may be sent, and why they wait.
    pub held: Option<(DateTime<Utc>, String)>,
}

#[derive(QueryableByName)]
struct Held {
    #[diesel(sql_type = Timestamptz)]
    held_until: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    reason: String,
}

#[derive(QueryableByName)]
struct Used {
    #[diesel(sql_type = Int8)]
    used: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest: Option<DateTime<Utc>>,
}

/// Reserves `wanted` sends for a connection: none while it is held by a throttling answer;
/// within `daily` operations per 24 hours when it has such a quota (counted here, in one
/// transaction that serialises the connection's reservations).
pub async fn reserve(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    connection_id: ConnectionId,
    wanted: usize,
    daily: Option<u32>,
) -> DomainResult<Allowance> {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, DomainError, _>(async move |conn| {
        let held: Option<Held> = diesel::sql_query(
            "SELECT held_until, reason FROM connection_limits
             WHERE workspace_id = $1 AND connection_id = $2 AND held_until > now()",
        )
        .bind::<SqlUuid, _>(workspace_id.0)
        .bind::<SqlUuid, _>(connection_id.0)
        .get_result(conn)
        .await
        .map(Some)
        .or_else(|e| match e {
            diesel::result::Error::NotFound => Ok(None),
            e => Err(e),
        })?;
        if let Some(h) = held {
            return Ok(Allowance {
                granted: 0,
                held: Some((h.held_until, h.reason)),
            });
        }
        let Some(daily) = daily else {
            return Ok(Allowance {
                granted: wanted,
                held: None,
            });
        };
        // This hour's row, locked: the connection's reservations take turns.
        diesel::sql_query(
            "INSERT INTO connection_operations (workspace_id, connection_id, hour, operations)
             VALUES ($1, $2, date_trunc('hour', now()), 0)
             ON CONFLICT (workspace_id, connection_id, hour) DO NOTHING",
        )
        .bind::<SqlUuid, _>(workspace_id.0)
        .bind::<SqlUuid, _>(connection_id.0)
        .execute(conn)
        .await?;
        diesel::sql_query(
            "SELECT 1 FROM connection_operations
             WHERE workspace_id = $1 AND connection_id = $2 AND hour = date_trunc('hour', now())
             FOR UPDATE",
        )
        .bind::<SqlUuid, _>(workspace_id.0)
        .bind::<SqlUuid, _>(connection_id.0)
        .execute(conn)
        .await?;
        let used: Used = diesel::sql_query(
            "SELECT COALESCE(sum(operations), 0)::int8 AS used,
                    min(hour) FILTER (WHERE operations > 0) AS oldest
             FROM connection_operations
             WHERE workspace_id = $1 AND connection_id = $2
               AND hour > now() - interval '25 hours'",
        )
        .bind::<SqlUuid, _>(workspace_id.0)
        .bind::<SqlUuid, _>(connection_id.0)
        .get_result(conn)
        .await?;
        let room = (i64::from(daily) - used.used).max(0);
        let granted = usize::try_from(room).unwrap_or(usize::MAX).min(wanted);
        if granted > 0 {
            diesel::sql_query(
                "UPDATE connection_operations SET operations = operations + $3
                 WHERE workspace_id = $1 AND connection_id = $2 AND hour = date_trunc('hour', now())",
            )
            .bind::<SqlUuid, _>(workspace_id.0)
            .bind::<SqlUuid, _>(connection_id.0)
            .bind::<Int4, _>(i32::try_from(granted).unwrap_or(i32::MAX))
            .execute(conn)
            .await?;
        }
        // Old hours are of no more use.
        diesel::sql_query(
            "DELETE FROM connection_operations
             WHERE workspace_id = $1 AND connection_id = $2 AND hour <= now() - interval '25 hours'",
        )
        .bind::<SqlUuid, _>(workspace_id.0)
        .bind::<SqlUuid, _>(connection_id.0)
        .execute(conn)
        .await?;
        let held = (granted < wanted).then(|| {
            let until = used
                .oldest
                .map_or_else(Utc::now, |h| h + chrono::Duration::hours(25));
            (
                until,
                format!("the daily quota of {daily} operations is used up"),
            )
        });
        Ok(Allowance { granted, held })
    })
    .await
}

/// Holds a connection until `until` (a later hold already there stays): its pending
/// deliveries that were due sooner wait until then, showing why.
pub async fn hold(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    connection_id: ConnectionId,
    until: DateTime<Utc>,
    reason: &str,
    error: &str,
) -> DomainResult<()> {
    diesel::sql_query(
        "INSERT INTO connection_limits (workspace_id, connection_id, held_until, reason)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (workspace_id, connection_id) DO UPDATE
         SET held_until = GREATEST(connection_limits.held_until, EXCLUDED.held_until),
             reason = CASE WHEN EXCLUDED.held_until >= connection_limits.held_until
                           THEN EXCLUDED.reason ELSE connection_limits.reason END",
    )
    .bind::<SqlUuid, _>(workspace_id.0)
    .bind::<SqlUuid, _>(connection_id.0)
    .bind::<Timestamptz, _>(until)
    .bind::<Text, _>(reason)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "UPDATE delivery_queue SET next_attempt_at = $3, last_error = $4
         WHERE workspace_id = $1 AND connection_id = $2 AND status = 'pending'
           AND next_attempt_at < $3",
    )
    .bind::<SqlUuid, _>(workspace_id.0)
    .bind::<SqlUuid, _>(connection_id.0)
    .bind::<Timestamptz, _>(until)
    .bind::<Text, _>(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts claimed deliveries that were not sent (their connection is held) back in the queue
/// until `until`, as if never claimed (only while each claim is still the latest), showing why.
pub async fn postpone(
    conn: &mut AsyncPgConnection,
    claims: &[(DeliveryId, i32)],
    until: DateTime<Utc>,
    error: &str,
) -> DomainResult<usize> {
    if claims.is_empty() {
        return Ok(0);
    }
    Ok(diesel::sql_query(
        r#"
        UPDATE delivery_queue d
        SET next_attempt_at = $3, last_error = $4, leased_until = NULL,
            attempts = d.attempts - 1,
            round_attempts = GREATEST(d.round_attempts - 1, 0)
        FROM unnest($1::uuid[], $2::int4[]) AS r(id, attempt)
        WHERE d.id = r.id AND d.attempts = r.attempt AND d.status = 'pending'
        "#,
    )
    .bind::<Array<SqlUuid>, _>(claims.iter().map(|c| c.0 .0).collect::<Vec<_>>())
    .bind::<Array<Int4>, _>(claims.iter().map(|c| c.1).collect::<Vec<_>>())
    .bind::<Timestamptz, _>(until)
    .bind::<Text, _>(error)
    .execute(conn)
    .await?)
}
