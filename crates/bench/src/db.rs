//! The few SQL statements the bench needs: create and drop its database, lift the workspace's
//! quota, count the stored events (or a link's clicks), and (`--webhook`) count the deliveries not yet succeeded.

use anyhow::{Context, Result};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// `url` with its database name replaced by `db` (query parameters kept). Both forms: a
/// `postgres://…/name?…` URL and libpq's `key=value` string (`dbname=…`).
pub fn with_database(url: &str, db: &str) -> Result<String> {
    if !url.contains("://") {
        let kept: Vec<&str> = url
            .split_whitespace()
            .filter(|part| !part.starts_with("dbname="))
            .collect();
        return Ok(format!("{} dbname={db}", kept.join(" ")));
    }
    let (prefix, rest) = url
        .rsplit_once('/')
        .filter(|(p, _)| p.contains("//"))
        .with_context(|| format!("{} has no database name", redact(url)))?;
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    Ok(format!("{prefix}/{db}{query}"))
}

/// The URL without user and password, for messages.
pub fn redact(url: &str) -> &str {
    url.rsplit_once('@').map_or(url, |(_, host)| host)
}

/// What the run's PostgreSQL was and how it was configured: the settings that decide how write
/// throughput and table growth behave, as the server reports them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerSettings {
    /// `private stock cluster at …` or the server given with --database-url.
    pub server: String,
    pub version: String,
    /// (name, value with unit) in a fixed order.
    pub settings: Vec<(String, String)>,
}

/// The settings reported with every run.
const REPORTED: [&str; 10] = [
    "autovacuum",
    "shared_buffers",
    "synchronous_commit",
    "fsync",
    "wal_level",
    "max_wal_size",
    "checkpoint_timeout",
    "autovacuum_vacuum_scale_factor",
    "max_connections",
    "work_mem",
];

pub async fn settings(url: &str, server: String) -> Result<ServerSettings> {
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let mut conn = connect(url).await?;
    let rows: Vec<Setting> = diesel::sql_query(
        "SELECT name, current_setting(name) AS value FROM pg_settings \
         WHERE name = ANY($1) \
         UNION ALL SELECT 'server_version', current_setting('server_version')",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(REPORTED.to_vec())
    .load(&mut conn)
    .await
    .context("reading the server's settings")?;
    let version = rows
        .iter()
        .find(|r| r.name == "server_version")
        .map(|r| r.value.clone())
        .unwrap_or_default();
    let settings = REPORTED
        .iter()
        .filter_map(|name| {
            rows.iter()
                .find(|r| r.name == *name)
                .map(|r| ((*name).to_owned(), r.value.clone()))
        })
        .collect();
    Ok(ServerSettings {
        server,
        version,
        settings,
    })
}

pub async fn connect(url: &str) -> Result<AsyncPgConnection> {
    // As the server connects: `sslmode` and `sslrootcert` in the URL are honoured.
    postback_domain::store::pg::establish(url)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", redact(url)))
}

/// Runs one statement on a fresh connection.
pub async fn exec(url: &str, sql: &str) -> Result<()> {
    let mut conn = connect(url).await?;
    diesel::sql_query(sql)
        .execute(&mut conn)
        .await
        .with_context(|| format!("running `{sql}`"))?;
    Ok(())
}

/// Moves the workspace to the unlimited `command` plan.
pub async fn lift_quota(url: &str, workspace_id: &str) -> Result<()> {
    let mut conn = connect(url).await?;
    let updated = diesel::sql_query("UPDATE workspaces SET plan = 'command' WHERE id = $1::uuid")
        .bind::<diesel::sql_types::Text, _>(workspace_id)
        .execute(&mut conn)
        .await
        .context("setting the workspace plan to `command`")?;
    anyhow::ensure!(
        updated == 1,
        "workspace {workspace_id} is not in the database at {} (is it the server's database?)",
        redact(url)
    );
    Ok(())
}

/// One `count(*) AS n` statement with one id parameter.
async fn count(url: &str, sql: &str, id: &str, what: &str) -> Result<u64> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = connect(url).await?;
    let rows: Vec<Count> = diesel::sql_query(sql)
        .bind::<diesel::sql_types::Text, _>(id)
        .load(&mut conn)
        .await
        .with_context(|| format!("counting {what}"))?;
    let n = <[Count]>::first(&rows).map_or(0, |c| c.n);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Rows in `events` for the domain.
pub async fn count_events(url: &str, domain_id: &str) -> Result<u64> {
    let sql = "SELECT count(*) AS n FROM events WHERE domain_id = $1::uuid";
    count(url, sql, domain_id, "the stored events").await
}

/// Touches (clicks) recorded for the tracking link.
pub async fn count_clicks(url: &str, link_id: &str) -> Result<u64> {
    let sql = "SELECT count(*) AS n FROM touches WHERE link_id = $1::uuid";
    count(url, sql, link_id, "the stored clicks").await
}

/// The workspace's rows in `deliveries`: (all, not in status `succeeded`).
pub async fn count_deliveries(url: &str, workspace_id: &str) -> Result<(u64, u64)> {
    #[derive(diesel::QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        not_succeeded: i64,
    }
    let mut conn = connect(url).await?;
    let rows: Vec<Counts> = diesel::sql_query(
        "SELECT count(*) AS total, count(*) FILTER (WHERE status <> 'succeeded') AS not_succeeded \
         FROM deliveries WHERE workspace_id = $1::uuid",
    )
    .bind::<diesel::sql_types::Text, _>(workspace_id)
    .load(&mut conn)
    .await
    .context("counting the deliveries")?;
    let (total, not_succeeded) =
        <[Counts]>::first(&rows).map_or((0, 0), |c| (c.total, c.not_succeeded));
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok((n(total), n(not_succeeded)))
}

/// The workspace's deliveries in status `pending` (in the queue, through its partial index on
/// pending rows).
pub async fn count_pending(url: &str, workspace_id: &str) -> Result<u64> {
    let sql = "SELECT count(*) AS n FROM delivery_queue WHERE status = 'pending' \
               AND workspace_id = $1::uuid";
    count(url, sql, workspace_id, "the pending deliveries").await
}

/// Whether the schema makes its own monthly partitions:
/// `postback_partitions_ensure(timestamptz, timestamptz)` exists.
pub async fn partitions_ensure_exists(url: &str) -> Result<bool> {
    let sql = "SELECT count(to_regprocedure($1)) AS n";
    let function = "postback_partitions_ensure(timestamptz, timestamptz)";
    Ok(count(url, sql, function, "the partition function").await? > 0)
}

/// Whether the schema has the idempotency table `event_keys` (migration 000100 on).
pub async fn event_keys_exist(url: &str) -> Result<bool> {
    let sql = "SELECT count(to_regclass($1)) AS n";
    Ok(count(url, sql, "event_keys", "the idempotency table").await? > 0)
}

/// Folds every event the insert trigger noted into the overview's rollups (waiting for any
/// folder at work on a workspace), as the server's folder does in the background. Nothing to do
/// on a schema without `event_rollups_fold`.
pub async fn fold_rollups(url: &str) -> Result<()> {
    #[derive(diesel::QueryableByName)]
    struct Pending {
        #[diesel(sql_type = diesel::sql_types::Text)]
        workspace_id: String,
    }
    #[derive(diesel::QueryableByName)]
    struct Folded {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        n: i32,
    }
    const BATCH: i32 = 100_000;
    let mut conn = connect(url).await?;
    let exists: Vec<Pending> = diesel::sql_query(
        "SELECT p.oid::text AS workspace_id FROM pg_proc p WHERE p.proname = 'event_rollups_fold' \
         AND to_regclass('event_rollup_pending') IS NOT NULL",
    )
    .load(&mut conn)
    .await
    .context("looking for event_rollups_fold")?;
    if exists.is_empty() {
        return Ok(());
    }
    let pending: Vec<Pending> = diesel::sql_query(
        "SELECT DISTINCT workspace_id::text AS workspace_id FROM event_rollup_pending",
    )
    .load(&mut conn)
    .await
    .context("reading the pending rollups")?;
    for ws in pending {
        loop {
            let f: Folded = diesel::sql_query("SELECT event_rollups_fold($1::uuid, $2, true) AS n")
                .bind::<diesel::sql_types::Text, _>(&ws.workspace_id)
                .bind::<diesel::sql_types::Integer, _>(BATCH)
                .get_result(&mut conn)
                .await
                .context("folding the rollups")?;
            if f.n < BATCH {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced_in_both_url_forms() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=require", "b").unwrap(),
            "postgres://u:p@h:5432/b?sslmode=require"
        );
        assert_eq!(
            with_database("host='/tmp/x' port=5432 user=postgres dbname=postgres", "b").unwrap(),
            "host='/tmp/x' port=5432 user=postgres dbname=b"
        );
        assert_eq!(
            with_database("host=/tmp/x user=postgres", "b").unwrap(),
            "host=/tmp/x user=postgres dbname=b"
        );
    }
}
