//! Retention: events (with their deliveries and attempts), touches, and visitors (with their
//! emails) that have nothing left, older than the workspace's
//! plan keeps them are deleted, a small batch per statement, so inbound never waits on a long
//! delete.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::DomainResult;

/// Rows deleted per statement.
pub const BATCH: i64 = 1000;

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub events: u64,
    pub touches: u64,
    /// Visitors not seen within the retention and with no touch left (their emails go with
    /// them).
    pub visitors: u64,
}

#[derive(diesel::QueryableByName)]
struct DomainCutoff {
    #[diesel(sql_type = SqlUuid)]
    domain_id: uuid::Uuid,
    #[diesel(sql_type = Timestamptz)]
    cutoff: DateTime<Utc>,
}

/// Every domain with the moment before which its workspace's plan keeps nothing.
async fn cutoffs(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
) -> DomainResult<Vec<DomainCutoff>> {
    Ok(diesel::sql_query(
        r#"
        SELECT d.id AS domain_id, $1 - make_interval(days => p.retention_days) AS cutoff
        FROM domains d
        JOIN workspaces w ON w.id = d.workspace_id
        JOIN plans p ON p.tier = w.plan
        "#,
    )
    .bind::<Timestamptz, _>(now)
    .load(conn)
    .await?)
}

/// Deletes one batch of a domain's events received before `cutoff` (deliveries and attempts go
/// with them); returns how many.
async fn events_batch(
    conn: &mut AsyncPgConnection,
    domain_id: uuid::Uuid,
    cutoff: DateTime<Utc>,
) -> DomainResult<usize> {
    Ok(diesel::sql_query(
        r#"
        DELETE FROM events WHERE id IN (
            SELECT id FROM events
            WHERE domain_id = $1 AND received_at < $2
            ORDER BY received_at
            LIMIT $3
        )
        "#,
    )
    .bind::<SqlUuid, _>(domain_id)
    .bind::<Timestamptz, _>(cutoff)
    .bind::<BigInt, _>(BATCH)
    .execute(conn)
    .await?)
}

async fn touches_batch(
    conn: &mut AsyncPgConnection,
    domain_id: uuid::Uuid,
    cutoff: DateTime<Utc>,
) -> DomainResult<usize> {
    Ok(diesel::sql_query(
        r#"
        DELETE FROM touches WHERE id IN (
            SELECT id FROM touches
            WHERE domain_id = $1 AND occurred_at < $2
            ORDER BY occurred_at
            LIMIT $3
        )
        "#,
    )
    .bind::<SqlUuid, _>(domain_id)
    .bind::<Timestamptz, _>(cutoff)
    .bind::<BigInt, _>(BATCH)
    .execute(conn)
    .await?)
}

/// Deletes one batch of a domain's visitors last seen before `cutoff` with no touch left; their
/// `visitor_emails` rows go with them (ON DELETE CASCADE).
async fn visitors_batch(
    conn: &mut AsyncPgConnection,
    domain_id: uuid::Uuid,
    cutoff: DateTime<Utc>,
) -> DomainResult<usize> {
    Ok(diesel::sql_query(
        r#"
        DELETE FROM visitors WHERE id IN (
            SELECT v.id FROM visitors v
            WHERE v.domain_id = $1 AND v.last_seen_at < $2
              AND NOT EXISTS (SELECT 1 FROM touches t WHERE t.visitor_id = v.id)
            ORDER BY v.last_seen_at
            LIMIT $3
        )
        "#,
    )
    .bind::<SqlUuid, _>(domain_id)
    .bind::<Timestamptz, _>(cutoff)
    .bind::<BigInt, _>(BATCH)
    .execute(conn)
    .await?)
}

/// One pass over every domain, as of `now`. `pause` runs between batches (the job yields there).
pub async fn purge(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    mut pause: impl FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) -> DomainResult<Purged> {
    let mut total = Purged::default();
    for d in cutoffs(conn, now).await? {
        loop {
            let n = events_batch(conn, d.domain_id, d.cutoff).await?;
            total.events += n as u64;
            if (n as i64) < BATCH {
                break;
            }
            pause().await;
        }
        loop {
            let n = touches_batch(conn, d.domain_id, d.cutoff).await?;
            total.touches += n as u64;
            if (n as i64) < BATCH {
                break;
            }
            pause().await;
        }
        loop {
            let n = visitors_batch(conn, d.domain_id, d.cutoff).await?;
            total.visitors += n as u64;
            if (n as i64) < BATCH {
                break;
            }
            pause().await;
        }
    }
    Ok(total)
}
