//! `postback-bench retention`: what one retention pass costs over N expired events and what it
//! leaves behind. On a fresh, migrated database it fills one workspace on the `pulse` plan (30
//! days kept) with N events received 40–100 days ago, each with one succeeded webhook delivery
//! and one attempt, and N/10 touches in the same days; a second workspace gets N/20 events of
//! the last 20 days, which must survive. Then `VACUUM ANALYZE`, sizes; one pass as the server
//! runs it (`postback_runtime::retention::run_once`, timed); sizes right after it and after a
//! plain `VACUUM`, dead tuples, and what is left. Works on today's schema and on the
//! partitioned one (monthly partitions made by `postback_partitions_ensure`, deliveries in
//! `delivery_history` behind a `deliveries` view): sizes are summed over `pg_partition_tree`.

use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::prefill::{chunks, time_ordered_id};

/// The expired tenant: workspace, domain, webhook.
const OLD: Tenant = Tenant {
    workspace: "b0000000-0000-4000-8000-000000000001",
    domain: "b0000000-0000-4000-8000-000000000002",
    webhook: "b0000000-0000-4000-8000-000000000003",
    tag: "old",
};
/// The tenant whose recent events must survive.
const NEW: Tenant = Tenant {
    workspace: "b0000000-0000-4000-8000-000000000011",
    domain: "b0000000-0000-4000-8000-000000000012",
    webhook: "b0000000-0000-4000-8000-000000000013",
    tag: "new",
};

struct Tenant {
    workspace: &'static str,
    domain: &'static str,
    webhook: &'static str,
    /// Seeds ids and order ids, so the two tenants' rows never collide.
    tag: &'static str,
}

/// How many rows of each kind the fill makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sizes {
    /// Expired events (and as many deliveries and attempts).
    pub expired_events: u64,
    /// Expired touches: a tenth of the events.
    pub expired_touches: u64,
    /// Recent events of the other tenant (and as many deliveries and attempts): a twentieth.
    pub recent_events: u64,
}

impl Sizes {
    pub fn for_events(events: u64) -> Self {
        Self {
            expired_events: events,
            expired_touches: events / 10,
            recent_events: (events / 20).max(1),
        }
    }
}

/// Which storage the migrated schema has: decides where deliveries go and which tables are
/// measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    /// `postback_partitions_ensure(timestamptz, timestamptz)` exists and was called.
    pub partitions_ensure: bool,
    /// `delivery_history` when it exists, else `deliveries`.
    pub delivery_table: &'static str,
    /// The delivery table has `event_received_at` (the event's partition key).
    pub deliveries_event_received_at: bool,
    /// `delivery_attempts` has `event_received_at`.
    pub attempts_event_received_at: bool,
    /// The tables measured, in report order.
    pub tables: Vec<&'static str>,
}

/// One measured table (with all its partitions).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    pub name: &'static str,
    pub partitions: u64,
    pub rows_before: u64,
    pub rows_after: u64,
    /// Heap + indexes + TOAST, summed over the partitions.
    pub bytes_before: u64,
    pub bytes_after_pass: u64,
    pub bytes_after_vacuum: u64,
    /// The indexes' part of the above.
    pub index_bytes_before: u64,
    pub index_bytes_after_pass: u64,
    pub index_bytes_after_vacuum: u64,
    /// `pg_stat_user_tables.n_dead_tup`, summed over the partitions, after the pass.
    pub dead_tuples_after_pass: u64,
}

/// What is left of each tenant after the pass.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Left {
    pub expired_events: u64,
    pub expired_deliveries: u64,
    pub expired_attempts: u64,
    pub expired_touches: u64,
    pub recent_events: u64,
    pub recent_deliveries: u64,
    pub recent_attempts: u64,
}

impl Left {
    /// Fails unless every expired row is gone and every recent one is still there.
    pub fn check(&self, sizes: &Sizes) -> Result<()> {
        let expired = self.expired_events
            + self.expired_deliveries
            + self.expired_attempts
            + self.expired_touches;
        ensure!(
            expired == 0,
            "expired rows remain after the pass: {} events, {} deliveries, {} attempts, {} touches",
            self.expired_events,
            self.expired_deliveries,
            self.expired_attempts,
            self.expired_touches
        );
        let kept = [
            self.recent_events,
            self.recent_deliveries,
            self.recent_attempts,
        ];
        ensure!(
            kept.iter().all(|&n| n == sizes.recent_events),
            "recent rows were lost: {} of {} events, {} deliveries, {} attempts left",
            self.recent_events,
            sizes.recent_events,
            self.recent_deliveries,
            self.recent_attempts
        );
        Ok(())
    }
}

/// What `run_once` reported deleting.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Purged {
    pub events: u64,
    pub touches: u64,
    pub visitors: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub mode: &'static str,
    /// `nproc`.
    pub cores: usize,
    /// `/proc/loadavg`'s first three fields when the fill began.
    pub load_average: String,
    pub sizes: Sizes,
    pub schema: Schema,
    /// The fill, the rollup fold and `VACUUM ANALYZE`.
    pub fill_seconds: f64,
    /// One retention pass as the server runs it (its pauses between batches included).
    pub pass_seconds: f64,
    pub purged: Purged,
    /// The plain `VACUUM` after the pass.
    pub vacuum_seconds: f64,
    /// Autovacuum runs on the measured tables between the start of the pass and the reading
    /// of the sizes and dead tuples after it.
    pub autovacuum_runs_during_pass: u64,
    pub tables: Vec<Table>,
    pub dead_tuples_after_pass: u64,
    pub left: Left,
    pub database: Option<crate::db::ServerSettings>,
}

/// A connection with the few query shapes the run needs.
struct Db {
    conn: AsyncPgConnection,
}

#[derive(diesel::QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Word {
    #[diesel(sql_type = Text)]
    t: String,
}

impl Db {
    async fn exec(&mut self, sql: &str) -> Result<()> {
        diesel::sql_query(sql)
            .execute(&mut self.conn)
            .await
            .with_context(|| format!("running `{}`", head(sql)))?;
        Ok(())
    }

    /// One `… AS n` bigint.
    async fn number(&mut self, sql: &str) -> Result<u64> {
        let row: Number = diesel::sql_query(sql)
            .get_result(&mut self.conn)
            .await
            .with_context(|| format!("running `{}`", head(sql)))?;
        Ok(u64::try_from(row.n).unwrap_or(0))
    }

    async fn text(&mut self, sql: &str) -> Result<String> {
        let row: Word = diesel::sql_query(sql)
            .get_result(&mut self.conn)
            .await
            .with_context(|| format!("running `{}`", head(sql)))?;
        Ok(row.t)
    }

    async fn exists(&mut self, sql: &str) -> Result<bool> {
        Ok(self
            .number(&format!(
                "SELECT CASE WHEN {sql} THEN 1 ELSE 0 END::bigint AS n"
            ))
            .await?
            == 1)
    }
}

/// The first words of a statement, for messages.
fn head(sql: &str) -> String {
    sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ")
}

async fn detect(db: &mut Db, url: &str) -> Result<Schema> {
    let partitions_ensure = crate::db::partitions_ensure_exists(url).await?;
    let history = db
        .exists("to_regclass('delivery_history') IS NOT NULL")
        .await?;
    let delivery_table = if history {
        "delivery_history"
    } else {
        "deliveries"
    };
    let has_column = |table: &str| {
        format!(
            "EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' \
             AND table_name = '{table}' AND column_name = 'event_received_at')"
        )
    };
    let deliveries_event_received_at = db.exists(&has_column(delivery_table)).await?;
    let attempts_event_received_at = db.exists(&has_column("delivery_attempts")).await?;
    let mut tables = vec!["events", delivery_table];
    if db
        .exists("to_regclass('delivery_queue') IS NOT NULL")
        .await?
    {
        tables.push("delivery_queue");
    }
    tables.extend(["delivery_attempts", "touches"]);
    if db.exists("to_regclass('event_keys') IS NOT NULL").await? {
        tables.push("event_keys");
    }
    Ok(Schema {
        partitions_ensure,
        delivery_table,
        deliveries_event_received_at,
        attempts_event_received_at,
        tables,
    })
}

/// The fill's statements, in order. `base` is the fill's "now" (a timestamptz literal).
fn fill_statements(sizes: &Sizes, schema: &Schema, base: &str) -> Vec<String> {
    let mut out = vec![
        format!(
            "INSERT INTO workspaces (id, name, plan) VALUES \
             ('{}', 'Retention bench: expired', 'pulse'), \
             ('{}', 'Retention bench: recent', 'pulse')",
            OLD.workspace, NEW.workspace
        ),
        format!(
            "INSERT INTO domains (id, workspace_id, hostname, site_id) VALUES \
             ('{}', '{}', 'expired.example.com', 'rtexpired0000000000000'), \
             ('{}', '{}', 'recent.example.com', 'rtrecent00000000000000')",
            OLD.domain, OLD.workspace, NEW.domain, NEW.workspace
        ),
        format!(
            "INSERT INTO webhooks (id, workspace_id, domain_id, name, url) VALUES \
             ('{}', '{}', '{}', 'Retention bench', 'https://hooks.example.com/old'), \
             ('{}', '{}', '{}', 'Retention bench', 'https://hooks.example.com/new')",
            OLD.webhook, OLD.workspace, OLD.domain, NEW.webhook, NEW.workspace, NEW.domain
        ),
    ];
    if schema.partitions_ensure {
        out.push(format!(
            "SELECT postback_partitions_ensure({base} - interval '100 days', {base})"
        ));
    }
    // Expired: 40–100 days before `base`, oldest first; recent: the last 20 days.
    let expired_t = |n: u64| format!("{base} - interval '100 days' + interval '60 days' * g / {n}");
    let recent_t =
        |n: u64| format!("{base} - interval '20 days' + interval '20 days' * (g - 1) / {n}");
    for (tenant, n, t) in [
        (&OLD, sizes.expired_events, expired_t(sizes.expired_events)),
        (&NEW, sizes.recent_events, recent_t(sizes.recent_events)),
    ] {
        for (lo, hi) in chunks(n) {
            out.extend(event_chunk(tenant, schema, &t, lo, hi));
        }
    }
    let touches_t = expired_t(sizes.expired_touches.max(1));
    for (lo, hi) in chunks(sizes.expired_touches) {
        out.push(format!(
            "INSERT INTO touches (id, workspace_id, domain_id, occurred_at, landing_page, \
                                  utm_source, utm_medium, gclid, device_type) \
             SELECT {id}, '{ws}', '{domain}', x.t, 'https://expired.example.com/landing', \
                    'google', 'cpc', 'rt-' || g, 'desktop' \
             FROM generate_series({lo}::bigint, {hi}) g \
             CROSS JOIN LATERAL (SELECT {touches_t} AS t) x",
            id = time_ordered_id("x.t", &format!("'{}t' || g", OLD.tag)),
            ws = OLD.workspace,
            domain = OLD.domain,
        ));
    }
    out
}

/// Events `lo..=hi` of a tenant, then their deliveries, then their attempts, then (where the
/// schema keeps idempotency in `event_keys`) their orderId keys, as ingest writes them.
fn event_chunk(tenant: &Tenant, schema: &Schema, t: &str, lo: u64, hi: u64) -> Vec<String> {
    let event_id = time_ordered_id("x.t", &format!("'{}e' || g", tenant.tag));
    let delivery_id = time_ordered_id("x.t", &format!("'{}d' || g", tenant.tag));
    let attempt_id = time_ordered_id("x.t", &format!("'{}a' || g", tenant.tag));
    let from = format!(
        "FROM generate_series({lo}::bigint, {hi}) g CROSS JOIN LATERAL (SELECT {t} AS t) x"
    );
    let (ws, domain, hook, tag) = (tenant.workspace, tenant.domain, tenant.webhook, tenant.tag);
    let received = |has: bool| match has {
        true => (", event_received_at", ", x.t"),
        false => ("", ""),
    };
    let (d_col, d_val) = received(schema.deliveries_event_received_at);
    let (a_col, a_val) = received(schema.attempts_event_received_at);
    let mut out = vec![
        format!(
            "INSERT INTO events (id, workspace_id, domain_id, event_name, email, email_sha256, \
                                 payload, products, occurred_at, received_at, value, currency, \
                                 order_id, first_name, last_name) \
             SELECT {event_id}, '{ws}', '{domain}', 'purchase', \
                    'customer-' || (g * 7919 % 200000) || '@retention.example', \
                    sha256(convert_to('customer-' || (g * 7919 % 200000) || '@retention.example', 'UTF8')), \
                    '{{}}', '[]', x.t, x.t, (500 + g % 49500) / 100.0, 'USD', '{tag}-' || g, \
                    'Ada', 'Lovelace' \
             {from}"
        ),
        format!(
            "INSERT INTO {table} (id, workspace_id, webhook_id, event_id, url, status, attempts, \
                                  round_attempts, next_attempt_at, last_status_code, created_at, \
                                  completed_at{d_col}) \
             SELECT {delivery_id}, '{ws}', '{hook}', {event_id}, 'https://hooks.example.com/{tag}', \
                    'succeeded', 1, 1, x.t, 200, x.t, x.t{d_val} \
             {from}",
            table = schema.delivery_table,
        ),
        format!(
            "INSERT INTO delivery_attempts (id, workspace_id, delivery_id, attempt, started_at, \
                                            duration_ms, status_code{a_col}) \
             SELECT {attempt_id}, '{ws}', {delivery_id}, 1, x.t, 12, 200{a_val} \
             {from}"
        ),
    ];
    if schema.tables.contains(&"event_keys") {
        out.push(format!(
            "INSERT INTO event_keys (workspace_id, event_id, domain_id, received_at, order_id, \
                                     event_name) \
             SELECT '{ws}', {event_id}, '{domain}', x.t, '{tag}-' || g, 'purchase' \
             {from}"
        ));
    }
    out
}

/// The table and its partitions, as a `relid` relation (`pg_partition_tree` is empty for a
/// table that is not partitioned).
fn tree(table: &str) -> String {
    format!(
        "(SELECT relid, isleaf FROM pg_partition_tree('{table}') \
          UNION SELECT '{table}'::regclass, true \
          WHERE NOT EXISTS (SELECT 1 FROM pg_partition_tree('{table}'))) tree"
    )
}

/// (total bytes, index bytes, partitions) of a table and its partitions.
async fn size(db: &mut Db, table: &str) -> Result<(u64, u64, u64)> {
    let tree = tree(table);
    let total = db
        .number(&format!(
            "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint AS n FROM {tree}"
        ))
        .await?;
    let indexes = db
        .number(&format!(
            "SELECT coalesce(sum(pg_indexes_size(relid)), 0)::bigint AS n FROM {tree}"
        ))
        .await?;
    let partitions = db
        .number(&format!(
            "SELECT count(*) FILTER (WHERE isleaf)::bigint AS n FROM {tree}"
        ))
        .await?;
    Ok((total, indexes, partitions))
}

/// Sum of a `pg_stat_user_tables` column over a table's partitions.
async fn stat(db: &mut Db, table: &str, column: &str) -> Result<u64> {
    db.number(&format!(
        "SELECT coalesce(sum({column}), 0)::bigint AS n FROM pg_stat_user_tables \
         WHERE relid IN (SELECT relid FROM {tree})",
        tree = tree(table)
    ))
    .await
}

async fn rows(db: &mut Db, table: &str) -> Result<u64> {
    db.number(&format!("SELECT count(*) AS n FROM {table}"))
        .await
}

/// Waits (up to 10 s) until no other client session is connected to this database, so the
/// deleting sessions have reported their statistics (a backend flushes them when it exits).
async fn sessions_gone(db: &mut Db) -> Result<()> {
    let started = Instant::now();
    loop {
        let others = db
            .number(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            )
            .await?;
        if others == 0 {
            return Ok(());
        }
        if started.elapsed().as_secs() >= 10 {
            eprintln!("retention: {others} other session(s) still connected; reading the statistics anyway");
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn count_left(db: &mut Db) -> Result<Left> {
    let n = |table: &str, ws: &str| {
        format!("SELECT count(*) AS n FROM {table} WHERE workspace_id = '{ws}'")
    };
    Ok(Left {
        expired_events: db.number(&n("events", OLD.workspace)).await?,
        expired_deliveries: db.number(&n("deliveries", OLD.workspace)).await?,
        expired_attempts: db.number(&n("delivery_attempts", OLD.workspace)).await?,
        expired_touches: db.number(&n("touches", OLD.workspace)).await?,
        recent_events: db.number(&n("events", NEW.workspace)).await?,
        recent_deliveries: db.number(&n("deliveries", NEW.workspace)).await?,
        recent_attempts: db.number(&n("delivery_attempts", NEW.workspace)).await?,
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Fills the (migrated, empty) database at `url`, runs one pass and measures.
pub async fn measure(url: &str, events: u64) -> Result<Report> {
    let sizes = Sizes::for_events(events);
    let load_average = load_average();
    let mut db = Db {
        conn: crate::db::connect(url).await?,
    };
    let schema = detect(&mut db, url).await?;
    eprintln!(
        "retention: {} expired events (deliveries in {}, partitions_ensure: {}), {} expired \
         touches, {} recent events",
        sizes.expired_events,
        schema.delivery_table,
        schema.partitions_ensure,
        sizes.expired_touches,
        sizes.recent_events
    );
    let started = Instant::now();
    let base = format!(
        "'{}'::timestamptz",
        db.text("SELECT now()::text AS t").await?
    );
    for sql in fill_statements(&sizes, &schema, &base) {
        let t = Instant::now();
        db.exec(&sql).await.context("filling the database")?;
        eprintln!(
            "retention: {} … {:.1} s",
            head(&sql),
            t.elapsed().as_secs_f64()
        );
    }
    let t = Instant::now();
    // As the server's folder would have long before the events expire: the delete trigger's
    // cost depends on it.
    crate::db::fold_rollups(url).await?;
    eprintln!(
        "retention: rollups folded … {:.1} s",
        t.elapsed().as_secs_f64()
    );
    db.exec("VACUUM ANALYZE").await?;
    db.exec("CHECKPOINT").await?;
    let fill_seconds = started.elapsed().as_secs_f64();
    eprintln!("retention: fill done in {fill_seconds:.0} s");

    let mut tables = Vec::new();
    for &name in &schema.tables {
        let (bytes, index_bytes, partitions) = size(&mut db, name).await?;
        tables.push(Table {
            name,
            partitions,
            rows_before: rows(&mut db, name).await?,
            rows_after: 0,
            bytes_before: bytes,
            bytes_after_pass: 0,
            bytes_after_vacuum: 0,
            index_bytes_before: index_bytes,
            index_bytes_after_pass: 0,
            index_bytes_after_vacuum: 0,
            dead_tuples_after_pass: 0,
        });
    }
    let mut autovacuum_before = 0;
    for t in &tables {
        autovacuum_before += stat(&mut db, t.name, "autovacuum_count").await?;
    }

    eprintln!("retention: one pass, as the server runs it");
    let pool = postback_domain::store::db::pool(url, 2)
        .map_err(|e| anyhow::anyhow!("building the pool: {e}"))?;
    let t = Instant::now();
    let purged = postback_runtime::retention::run_once(&pool).await;
    let pass_seconds = t.elapsed().as_secs_f64();
    drop(pool);
    let Some(purged) = purged else {
        bail!("the retention pass failed (run_once logs why at warn level)");
    };
    eprintln!(
        "retention: pass deleted {} events, {} touches, {} visitors in {pass_seconds:.1} s",
        purged.events, purged.touches, purged.visitors
    );
    sessions_gone(&mut db).await?;
    let mut autovacuum_after = 0;
    for t in &mut tables {
        let (bytes, index_bytes, _) = size(&mut db, t.name).await?;
        t.bytes_after_pass = bytes;
        t.index_bytes_after_pass = index_bytes;
        t.dead_tuples_after_pass = stat(&mut db, t.name, "n_dead_tup").await?;
        autovacuum_after += stat(&mut db, t.name, "autovacuum_count").await?;
        t.rows_after = rows(&mut db, t.name).await?;
    }
    let t = Instant::now();
    db.exec("VACUUM").await?;
    let vacuum_seconds = t.elapsed().as_secs_f64();
    for t in &mut tables {
        let (bytes, index_bytes, _) = size(&mut db, t.name).await?;
        t.bytes_after_vacuum = bytes;
        t.index_bytes_after_vacuum = index_bytes;
    }
    let left = count_left(&mut db).await?;
    Ok(Report {
        mode: "retention",
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average,
        sizes,
        schema,
        fill_seconds,
        pass_seconds,
        purged: Purged {
            events: purged.events,
            touches: purged.touches,
            visitors: purged.visitors,
        },
        vacuum_seconds,
        autovacuum_runs_during_pass: autovacuum_after.saturating_sub(autovacuum_before),
        dead_tuples_after_pass: tables.iter().map(|t| t.dead_tuples_after_pass).sum(),
        tables,
        left,
        database: None,
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

impl Report {
    pub fn print(&self) {
        println!(
            "machine:      {} cores (nproc), load average {} at the start",
            self.cores, self.load_average
        );
        if let Some(db) = &self.database {
            println!("postgresql:   {} ({})", db.version, db.server);
            let settings: Vec<String> = db
                .settings
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            println!("settings:     {}", settings.join(", "));
        }
        println!(
            "fill:         {} expired events (40–100 days old, pulse plan: 30 days kept) with a \
             delivery and an attempt each, {} expired touches, {} recent events; {:.0} s",
            self.sizes.expired_events,
            self.sizes.expired_touches,
            self.sizes.recent_events,
            self.fill_seconds
        );
        println!(
            "schema:       deliveries in {}, partitions made by postback_partitions_ensure: {}",
            self.schema.delivery_table,
            if self.schema.partitions_ensure {
                "yes"
            } else {
                "no"
            }
        );
        println!(
            "pass:         {:.1} s; run_once deleted {} events, {} touches, {} visitors",
            self.pass_seconds, self.purged.events, self.purged.touches, self.purged.visitors
        );
        println!(
            "dead tuples:  {} after the pass; {} autovacuum run(s) on these tables meanwhile",
            self.dead_tuples_after_pass, self.autovacuum_runs_during_pass
        );
        println!(
            "vacuum:       plain VACUUM after the pass took {:.1} s",
            self.vacuum_seconds
        );
        println!(
            "{:<19} {:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "MiB (indexes)",
            "parts",
            "rows",
            "rows",
            "before",
            "",
            "after",
            "pass",
            "after",
            "VACUUM"
        );
        println!(
            "{:<19} {:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "", "", "before", "after", "total", "idx", "total", "idx", "total", "idx"
        );
        for t in &self.tables {
            println!(
                "{:<19} {:>5} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                t.name,
                t.partitions,
                t.rows_before,
                t.rows_after,
                mib(t.bytes_before),
                mib(t.index_bytes_before),
                mib(t.bytes_after_pass),
                mib(t.index_bytes_after_pass),
                mib(t.bytes_after_vacuum),
                mib(t.index_bytes_after_vacuum),
            );
        }
        let l = &self.left;
        println!(
            "left:         expired {} events, {} deliveries, {} attempts, {} touches; recent {} \
             events, {} deliveries, {} attempts (of {})",
            l.expired_events,
            l.expired_deliveries,
            l.expired_attempts,
            l.expired_touches,
            l.recent_events,
            l.recent_deliveries,
            l.recent_attempts,
            self.sizes.recent_events
        );
    }

    /// Fails when expired rows remain or recent ones were lost.
    pub fn check(&self) -> Result<()> {
        self.left.check(&self.sizes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fill_follows_the_schema() {
        let sizes = Sizes::for_events(1_000_000);
        assert_eq!(sizes.expired_touches, 100_000);
        assert_eq!(sizes.recent_events, 50_000);
        let today = Schema {
            partitions_ensure: false,
            delivery_table: "deliveries",
            deliveries_event_received_at: false,
            attempts_event_received_at: false,
            tables: vec![],
        };
        let sql = fill_statements(&sizes, &today, "'2026-12-05'::timestamptz").join("\n");
        assert!(!sql.contains("postback_partitions_ensure"));
        assert!(!sql.contains("event_received_at"));
        // 4 chunks of expired events, 1 of recent ones, 3 statements each; 1 of touches.
        assert_eq!(sql.matches("INSERT INTO events").count(), 5);
        assert_eq!(sql.matches("INSERT INTO deliveries").count(), 5);
        assert_eq!(sql.matches("INSERT INTO touches").count(), 1);
        let partitioned = Schema {
            partitions_ensure: true,
            delivery_table: "delivery_history",
            deliveries_event_received_at: true,
            ..today
        };
        let sql = fill_statements(&sizes, &partitioned, "'2026-12-05'::timestamptz").join("\n");
        assert!(sql.contains(
            "SELECT postback_partitions_ensure('2026-12-05'::timestamptz - interval '100 days', \
             '2026-12-05'::timestamptz)"
        ));
        assert_eq!(sql.matches("INSERT INTO delivery_history").count(), 5);
        assert_eq!(sql.matches("completed_at, event_received_at)").count(), 5);
        assert!(!sql.contains("status_code, event_received_at)"));
    }

    #[test]
    fn expired_rows_left_or_recent_rows_lost_fail_the_run() {
        let sizes = Sizes::for_events(100);
        let clean = Left {
            recent_events: 5,
            recent_deliveries: 5,
            recent_attempts: 5,
            ..Left::default()
        };
        assert!(clean.check(&sizes).is_ok());
        let leftover = Left {
            expired_attempts: 1,
            ..clean
        };
        assert!(leftover.check(&sizes).is_err());
        let lost = Left {
            recent_deliveries: 4,
            ..clean
        };
        assert!(lost.check(&sizes).is_err());
    }
}
