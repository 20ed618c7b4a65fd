//! Deliveries held for a connection that needs reconnecting: when a platform refuses the
//! connection's token (after one refresh) or the operator's app credentials, the attempt is not
//! a failure: the delivery waits (pending, [`HOLD`] ahead, its error starting with
//! [`HELD_PREFIX`]) and the connection shows "Reconnect needed". Saving the connection again
//! releases them at once.

use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::deliveries::AttemptResult;
use crate::error::DomainResult;
use crate::ids::ConnectionId;

/// How the error of a held delivery starts.
pub const HELD_PREFIX: &str = "Reconnect needed";

/// How far ahead a held delivery is due again: reconnecting releases it at once; an operator's
/// fix (the app's credentials set or corrected) is picked up at the next look, an hour later at
/// most. While the refusal lasts, each look costs one token request and holds it again.
pub const HOLD: chrono::Duration = chrono::Duration::hours(1);

/// The error recorded on a held delivery.
pub fn held_error(platform_label: &str, why: &str) -> String {
    format!("{HELD_PREFIX}: {platform_label} refused the connection's authorization ({why}); held until the connection is reconnected")
}

/// Marks the connections of held attempts "Reconnect needed" with the platform's reason.
pub async fn mark(conn: &mut AsyncPgConnection, results: &[AttemptResult]) -> DomainResult<()> {
    let held: Vec<(uuid::Uuid, String)> = results
        .iter()
        .filter_map(|r| {
            r.reconnect
                .as_ref()
                .map(|why| (r.delivery_id.0, why.clone()))
        })
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    let held_results: Vec<AttemptResult> = results
        .iter()
        .filter(|r| r.reconnect.is_some())
        .cloned()
        .collect();
    diesel::sql_query(
        r#"
        UPDATE connections c
        SET reconnect_reason = h.why, reconnect_since = COALESCE(c.reconnect_since, now())
        FROM unnest($1::uuid[], $2::text[]) AS h(delivery_id, why)
        JOIN deliveries d ON d.id = h.delivery_id
        WHERE c.id = d.connection_id
        "#,
    )
    .bind::<Array<SqlUuid>, _>(held.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(held.into_iter().map(|(_, why)| why).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    // The owners hear of it (at most once a day per connection).
    crate::mail::notify::reconnect_needed(conn, &held_results).await?;
    Ok(())
}

/// Sends a reconnected connection's held deliveries now, on a fresh round of retries.
pub async fn release(
    conn: &mut AsyncPgConnection,
    connection_id: ConnectionId,
) -> DomainResult<()> {
    let n = diesel::sql_query(
        r#"
        UPDATE deliveries
        SET next_attempt_at = now(), round_attempts = 0
        WHERE connection_id = $1 AND status = 'pending' AND last_error LIKE $2
        "#,
    )
    .bind::<SqlUuid, _>(connection_id.0)
    .bind::<Text, _>(format!("{HELD_PREFIX}%"))
    .execute(conn)
    .await?;
    if n > 0 {
        diesel::sql_query("SELECT pg_notify('postback_deliveries', '')")
            .execute(conn)
            .await?;
    }
    Ok(())
}
