//! Deliveries held for a connection that needs reconnecting: when a platform refuses the
//! connection's token (after one refresh) or the operator's app credentials, the attempt is not
//! a failure: the delivery waits (pending, [`HOLD`] ahead, its error starting with
//! [`HELD_PREFIX`]) and the connection shows "Reconnect needed". Saving the connection again
//! releases them at once. Marking the connection is `crate::delivery::holds::mark`, where
//! attempt results are recorded.

use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

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

/// Sends a reconnected connection's held deliveries now, on a fresh round of retries.
pub async fn release(
    conn: &mut AsyncPgConnection,
    connection_id: ConnectionId,
) -> DomainResult<()> {
    let n = diesel::sql_query(
        r#"
        UPDATE delivery_queue
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
