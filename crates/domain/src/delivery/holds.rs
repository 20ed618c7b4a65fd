//! Recording held attempts: the connections whose platform refused their authorization are
//! marked "Reconnect needed" (see [`crate::platforms::holds`] for how deliveries are held and
//! released).

use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::AttemptResult;
use crate::error::DomainResult;

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
        JOIN delivery_queue d ON d.id = h.delivery_id
        WHERE c.id = d.connection_id
        "#,
    )
    .bind::<Array<SqlUuid>, _>(held.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(held.into_iter().map(|(_, why)| why).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    // The owners hear of it (at most once a day per connection).
    super::notify::reconnect_needed(conn, &held_results).await?;
    Ok(())
}
