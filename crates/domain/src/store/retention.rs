//! Retention: events (with their deliveries and attempts), touches, and visitors (with their
//! emails) that have nothing left, older than the workspace's plan keeps them, are removed.
//!
//! A monthly partition (store::partitions) whose rows have all expired, for every workspace
//! with rows in it, is dropped whole: no row is deleted, nothing is left for VACUUM, and the
//! cost does not grow with the table. What its rows counted for in the overview's rollups is
//! settled in the same transaction. Only where plans differ inside one month (or rows sit in a
//! default partition) are rows deleted, a small batch per statement, so inbound never waits on
//! a long delete.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use diesel_async::AsyncConnection;

use crate::error::{DomainError, DomainResult};
use crate::store::partitions::{self, Partition};

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
    /// Monthly partitions dropped whole (their rows are counted above: events, touches).
    pub partitions: u64,
    /// Expired partitions left for the next pass because dropping one failed (logged): its
    /// table's lock was not granted within [`partitions::LOCK_TIMEOUT`], say.
    pub partitions_left: u64,
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
        DELETE FROM events
        WHERE domain_id = $1 AND received_at < $2
          AND (id, received_at) IN (
            SELECT id, received_at FROM events
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
        DELETE FROM touches
        WHERE domain_id = $1 AND occurred_at < $2
          AND (id, occurred_at) IN (
            SELECT id, occurred_at FROM touches
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

#[derive(diesel::QueryableByName)]
struct Flag {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    yes: bool,
}

/// Whether every row of `p` is past its workspace's retention as of `now`: no workspace whose
/// plan still keeps part of the month has a row in it (one index probe per such workspace).
async fn all_expired(
    conn: &mut AsyncPgConnection,
    p: &Partition,
    now: DateTime<Utc>,
) -> DomainResult<bool> {
    let f: Flag = diesel::sql_query(format!(
        r#"
        SELECT NOT EXISTS (
            SELECT 1 FROM workspaces w JOIN plans pl ON pl.tier = w.plan
            WHERE $1 - make_interval(days => pl.retention_days) < $2
              AND EXISTS (SELECT 1 FROM {} x WHERE x.workspace_id = w.id)
        ) AS yes
        "#,
        partitions::quote_ident(&p.name)
    ))
    .bind::<Timestamptz, _>(now)
    .bind::<Timestamptz, _>(p.until)
    .get_result(conn)
    .await?;
    Ok(f.yes)
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Drops one expired partition in a transaction, with what depended on its rows: for events,
/// the overview's rollups, the idempotency keys and the deliveries still queued; for touches,
/// the rollups' credit; for delivery history, the platforms' request status. Returns how many
/// rows it held.
async fn drop_partition(conn: &mut AsyncPgConnection, p: &Partition) -> DomainResult<u64> {
    conn.transaction::<_, DomainError, _>(async move |conn| {
        diesel::sql_query(format!(
            "SET LOCAL lock_timeout = '{}'",
            partitions::LOCK_TIMEOUT
        ))
        .execute(conn)
        .await?;
        let regclass = partitions::quote_ident(&p.name);
        let c: Count = match p.parent.as_str() {
            "events" => {
                // Deliveries still queued for its events go first (their attempts with them).
                diesel::sql_query(format!(
                    "DELETE FROM delivery_queue q USING {regclass} o \
                     WHERE q.workspace_id = o.workspace_id AND q.event_id = o.id"
                ))
                .execute(conn)
                .await?;
                diesel::sql_query("SELECT event_rollups_drop_events_partition($1::regclass) AS n")
                    .bind::<diesel::sql_types::Text, _>(&regclass)
                    .get_result(conn)
                    .await?
            }
            "touches" => {
                diesel::sql_query(
                    "SELECT event_rollups_drop_touches_partition($1::regclass, $2) AS n",
                )
                .bind::<diesel::sql_types::Text, _>(&regclass)
                .bind::<Timestamptz, _>(p.from)
                .get_result(conn)
                .await?
            }
            parent => {
                if parent == "delivery_history" {
                    // What a platform reported about these deliveries goes with them.
                    diesel::sql_query(format!(
                        "DELETE FROM platform_requests r USING {regclass} h \
                         WHERE r.workspace_id = h.workspace_id AND r.delivery_id = h.id"
                    ))
                    .execute(conn)
                    .await?;
                }
                let c: Count = diesel::sql_query(format!("SELECT count(*) AS n FROM {regclass}"))
                    .get_result(conn)
                    .await?;
                partitions::drop_in_transaction(conn, p).await?;
                c
            }
        };
        Ok(c.n.max(0) as u64)
    })
    .await
}

/// Drops every monthly partition whose rows have all expired: those whose month ended longer
/// ago than any plan keeps anything without looking inside, the others when no workspace with
/// rows in them still keeps any (events before touches, so events credited to a dropped touch
/// are credited again without it).
async fn drop_expired_partitions(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    total: &mut Purged,
) -> DomainResult<()> {
    let longest: Count =
        diesel::sql_query("SELECT coalesce(max(retention_days), 0)::int8 AS n FROM plans")
            .get_result(conn)
            .await?;
    let beyond_every_plan = now - chrono::Duration::days(longest.n);
    let mut expired: Vec<Partition> = Vec::new();
    for p in partitions::list(conn).await? {
        // A month of idempotency keys goes with its month of events (in the same transaction,
        // see event_rollups_drop_events_partition), never on its own.
        if p.until > now || p.parent == "event_keys" {
            continue;
        }
        if p.until <= beyond_every_plan || all_expired(conn, &p, now).await? {
            expired.push(p);
        }
    }
    // Events first: a touch's partition is dropped after the events it credited are settled.
    expired.sort_by_key(|p| (p.parent != "events", p.parent == "touches", p.from));
    for p in expired {
        match drop_partition(conn, &p).await {
            Ok(n) => {
                total.partitions += 1;
                match p.parent.as_str() {
                    "events" => total.events += n,
                    "touches" => total.touches += n,
                    _ => {}
                }
                tracing::info!(partition = %p.name, rows = n, "retention dropped a partition");
            }
            Err(e) => {
                total.partitions_left += 1;
                tracing::warn!(partition = %p.name, error = %e,
                    "retention could not drop a partition; retrying at the next pass");
            }
        }
    }
    Ok(())
}

/// One pass, as of `now`: expired partitions dropped whole, then every domain's remaining
/// expired rows deleted in batches. `pause` runs between batches (the job yields there).
pub async fn purge(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    mut pause: impl FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) -> DomainResult<Purged> {
    let mut total = Purged::default();
    drop_expired_partitions(conn, now, &mut total).await?;
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
