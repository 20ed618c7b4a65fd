//! Tables whose rows come and go at the event rate: the hot delivery queue (a row per delivery,
//! deleted when it moves to history) and the rollups' pending list (a row per stored event,
//! deleted when folded). Each delete leaves a dead row version in the table and in every index
//! until VACUUM removes it, and autovacuum visits a database at most once a minute
//! (`autovacuum_naptime`): at 8,000 deliveries a second the queue then carries some 450,000 dead
//! versions, grows to 150 MB or more of heap and indexes for a few hundred live rows, and falls
//! out of `shared_buffers` (measured in a 30-minute soak on a stock cluster: the queue was the
//! second-largest source of buffer misses). The runtime's upkeep job ([`due`], [`vacuum`])
//! vacuums these tables as soon as they carry more dead versions than a threshold, so their size
//! follows the work pending, not the work done.

use diesel::sql_types::{Array, BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::error::DomainResult;

/// The tables the upkeep job keeps small.
pub const TABLES: [&str; 2] = ["delivery_queue", "event_rollup_pending"];

/// A churning table's dead and live row versions, as PostgreSQL's statistics count them.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Churn {
    #[diesel(sql_type = Text)]
    pub table: String,
    #[diesel(sql_type = BigInt)]
    pub dead: i64,
    #[diesel(sql_type = BigInt)]
    pub live: i64,
}

impl Churn {
    /// Whether the table is worth a VACUUM: `base` dead versions, plus a fifth of its live rows
    /// (so a large backlog of pending deliveries is not rescanned for a handful of deletes).
    pub fn is_due(&self, base: i64) -> bool {
        self.dead >= base + self.live / 5
    }
}

/// The churning tables' counts (tables of the current schema; a table PostgreSQL has no
/// statistics for yet counts as clean).
pub async fn counts(conn: &mut AsyncPgConnection) -> DomainResult<Vec<Churn>> {
    Ok(diesel::sql_query(
        "SELECT t AS table, s.n_dead_tup AS dead, s.n_live_tup AS live \
         FROM unnest($1::text[]) t JOIN pg_stat_user_tables s ON s.relid = to_regclass(t) \
         ORDER BY t",
    )
    .bind::<Array<Text>, _>(TABLES.to_vec())
    .load(conn)
    .await?)
}

/// The churning tables due for a VACUUM at threshold `base` (see [`Churn::is_due`]).
pub async fn due(conn: &mut AsyncPgConnection, base: i64) -> DomainResult<Vec<Churn>> {
    let mut counts = counts(conn).await?;
    counts.retain(|c| c.is_due(base));
    Ok(counts)
}

/// VACUUMs one of [`TABLES`] (any other name is refused). `SKIP_LOCKED`: while autovacuum or
/// another instance is at it, this returns at once instead of queueing behind it.
/// `TRUNCATE false`: the pages freed at the end of the file are left to be reused by the next
/// rows rather than cut off, since cutting them takes an exclusive lock that holds up every
/// claim and insert on the table meanwhile (autovacuum, which still visits, truncates after a
/// burst). `PARALLEL 0`: a manual VACUUM would otherwise start background workers for the
/// indexes, a process each, every few seconds. One statement outside any transaction, so it runs
/// behind a transaction pooler too. A role that does not own the table gets a warning from
/// PostgreSQL and nothing done, which [`due`] then shows.
pub async fn vacuum(conn: &mut AsyncPgConnection, table: &str) -> DomainResult<()> {
    let Some(table) = TABLES.iter().find(|t| **t == table) else {
        return Err(crate::error::DomainError::Invalid(format!(
            "{table} is not a table the upkeep job vacuums"
        )));
    };
    conn.batch_execute(&format!(
        "VACUUM (SKIP_LOCKED, TRUNCATE false, PARALLEL 0) {table}"
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn churn(dead: i64, live: i64) -> Churn {
        Churn {
            table: "delivery_queue".into(),
            dead,
            live,
        }
    }

    #[test]
    fn a_table_is_due_past_the_base_plus_a_fifth_of_its_live_rows() {
        assert!(!churn(9_999, 0).is_due(10_000));
        assert!(churn(10_000, 0).is_due(10_000));
        assert!(!churn(29_999, 100_000).is_due(10_000));
        assert!(churn(30_000, 100_000).is_due(10_000));
    }
}
