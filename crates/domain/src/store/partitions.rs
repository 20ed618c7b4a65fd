//! Monthly partitions of the append-only, high-volume tables (migration 000100): which exist,
//! creating them ahead of time, and dropping one whose rows have all expired. Every
//! range-partitioned table of the schema is covered (events, touches, delivery_attempts, and
//! any added later): `postback_partitions_ensure` finds them in the catalog.

use chrono::{DateTime, Months, NaiveDate, TimeZone, Utc};
use diesel::sql_types::{Integer, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::error::{DomainError, DomainResult};

/// Months of partitions kept ready beyond the current one.
pub const MONTHS_AHEAD: u32 = 3;

/// How long creating or dropping a partition waits for its table's lock before giving up until
/// the next run (inbound never queues behind it for longer).
pub const LOCK_TIMEOUT: &str = "5s";

/// One monthly partition: `<parent>_pYYYYMM`, holding `[from, until)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub parent: String,
    pub name: String,
    /// The partition key's column.
    pub column: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

#[derive(diesel::QueryableByName)]
struct PartitionRow {
    #[diesel(sql_type = Text)]
    parent: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    column: String,
}

/// The month a partition's name says it holds: `events_p202612` → [2026-12-01, 2027-01-01).
pub fn month_of(name: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (_, suffix) = name.rsplit_once("_p")?;
    if suffix.len() != 6 || !suffix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = suffix[..4].parse().ok()?;
    let month: u32 = suffix[4..].parse().ok()?;
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = first.checked_add_months(Months::new(1))?;
    Some((
        Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0)?),
        Utc.from_utc_datetime(&next.and_hms_opt(0, 0, 0)?),
    ))
}

/// Every monthly partition of every range-partitioned table, oldest first per table (default
/// partitions are left out: retention deletes their expired rows one by one).
pub async fn list(conn: &mut AsyncPgConnection) -> DomainResult<Vec<Partition>> {
    let rows: Vec<PartitionRow> = diesel::sql_query(
        r#"
        SELECT p.relname::text AS parent, c.relname::text AS name, a.attname::text AS column
        FROM pg_partitioned_table pt
        JOIN pg_class p ON p.oid = pt.partrelid
        JOIN pg_namespace n ON n.oid = p.relnamespace AND n.nspname = current_schema()
        JOIN pg_attribute a ON a.attrelid = p.oid AND a.attnum = pt.partattrs[0]
        JOIN pg_inherits i ON i.inhparent = p.oid
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE pt.partstrat = 'r' AND pt.partnatts = 1
        ORDER BY p.relname, c.relname
        "#,
    )
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let (from, until) = month_of(&r.name)?;
            r.name
                .starts_with(&format!("{}_p", r.parent))
                .then_some(Partition {
                    parent: r.parent,
                    name: r.name,
                    column: r.column,
                    from,
                    until,
                })
        })
        .collect())
}

/// Creates the monthly partitions of every partitioned table from `from`'s month through
/// [`MONTHS_AHEAD`] months after `now`'s; returns how many were missing. Rows that reached a
/// default partition for want of their month are moved into it.
pub async fn ensure(
    conn: &mut AsyncPgConnection,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DomainResult<i32> {
    #[derive(diesel::QueryableByName)]
    struct Created {
        #[diesel(sql_type = Integer)]
        created: i32,
    }
    let until = now
        .checked_add_months(Months::new(MONTHS_AHEAD))
        .ok_or_else(|| DomainError::internal("partition horizon out of range"))?;
    conn.transaction::<_, DomainError, _>(async move |conn| {
        diesel::sql_query(format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            .execute(conn)
            .await?;
        let c: Created = diesel::sql_query("SELECT postback_partitions_ensure($1, $2) AS created")
            .bind::<Timestamptz, _>(from)
            .bind::<Timestamptz, _>(until)
            .get_result(conn)
            .await?;
        Ok(c.created)
    })
    .await
}

/// Drops a partition (its table's lock is waited for at most [`LOCK_TIMEOUT`]); the caller runs
/// this inside the transaction that also settles what depended on its rows.
pub async fn drop_in_transaction(
    conn: &mut AsyncPgConnection,
    partition: &Partition,
) -> DomainResult<()> {
    diesel::sql_query(format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        .execute(conn)
        .await?;
    diesel::sql_query(format!("DROP TABLE {}", quote_ident(&partition.name)))
        .execute(conn)
        .await?;
    Ok(())
}

/// A name as a quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partitions_month_comes_from_its_name() {
        let (from, until) = month_of("delivery_attempts_p202612").expect("a month");
        assert_eq!(from.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(until.to_rfc3339(), "2027-01-01T00:00:00+00:00");
        assert_eq!(month_of("events_default"), None);
        assert_eq!(month_of("events_p2026"), None);
        assert_eq!(month_of("events_p202613"), None);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("events_p202612"), "\"events_p202612\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
