//! `--prefill-events N`: before the load, fill the database as a busy installation would be, so
//! the run shows how ingest and delivery cost grow with stored data. Other tenants get
//! `domains - 1` workspaces with a domain each; `keys` inbound keys and `webhooks` webhooks are
//! spread over the domains (webhooks over the other tenants' only, so the bench's own events
//! fire what `--webhook` asks for and nothing more); `N` purchases are spread over all domains,
//! the bench's included, received over the last seven days, with time-ordered ids as Postback
//! writes them, inserted 250,000 at a time; every event of another tenant has one succeeded
//! delivery. On a partitioned schema `postback_partitions_ensure` makes the partitions first.
//! Then the events are folded into the overview's rollups (the server's folder would have done
//! it long before, and must not do it during the load), `VACUUM ANALYZE`, as autovacuum would
//! have done by then, and a `CHECKPOINT`.

use std::time::Instant;

use anyhow::{ensure, Context, Result};

pub struct Fill {
    pub events: u64,
    pub domains: u64,
    pub keys: u64,
    pub webhooks: u64,
}

/// A UUID whose first 48 bits are the millisecond time of `t` (like the UUIDv7 ids Postback
/// makes), the rest from `seed`: rows land at the right edge of the primary-key index in time
/// order, as in production.
const TIME_ORDERED_ID: &str = "(lpad(to_hex((extract(epoch FROM {t}) * 1000)::bigint), 12, '0') \
                               || substr(md5({seed}), 1, 20))::uuid";

pub fn time_ordered_id(t: &str, seed: &str) -> String {
    TIME_ORDERED_ID.replace("{t}", t).replace("{seed}", seed)
}

/// Rows per insert statement: each is its own transaction, so WAL and memory stay bounded.
const CHUNK: u64 = 250_000;

/// `[lo, hi]` ranges of at most `CHUNK` numbers covering `1..=n`.
pub fn chunks(n: u64) -> Vec<(u64, u64)> {
    (0..n.div_ceil(CHUNK))
        .map(|i| (i * CHUNK + 1, ((i + 1) * CHUNK).min(n)))
        .collect()
}

/// The statements, in order; `{ws}` and `{domain}` are the bench's own workspace and domain.
/// With `keys`, each event's orderId key goes into `event_keys` in the same statement, as ingest
/// writes it.
fn statements(fill: &Fill, workspace_id: &str, domain_id: &str, keys: bool) -> Vec<String> {
    let others = fill.domains.saturating_sub(1).max(1);
    let all = others + 1;
    let event_id = time_ordered_id("x.t", "'e' || g");
    let delivery_id = time_ordered_id("e.received_at", "'d' || e.id::text");
    let mut out = vec![
        format!(
            "CREATE TABLE bench_prefill AS \
             SELECT gen_random_uuid() AS ws, gen_random_uuid() AS id, g AS n \
             FROM generate_series(1, {others}) g"
        ),
        "INSERT INTO workspaces (id, name, plan) \
         SELECT ws, 'Prefill tenant ' || n, 'command' FROM bench_prefill"
            .into(),
        "INSERT INTO domains (id, workspace_id, hostname, site_id) \
         SELECT id, ws, 'tenant-' || n || '.example.com', 'pf' || substr(md5(id::text), 1, 20) \
         FROM bench_prefill"
            .into(),
        format!(
            "INSERT INTO bench_prefill (ws, id, n) VALUES ('{workspace_id}'::uuid, '{domain_id}'::uuid, 0)"
        ),
        // The bench already made one key.
        format!(
            "INSERT INTO inbound_keys (id, workspace_id, domain_id, name, key_hash, prefix) \
             SELECT gen_random_uuid(), d.ws, d.id, 'Prefill key ' || g, \
                    sha256(convert_to('prefill-key-' || g || '-' || d.id, 'UTF8')), 'cc_live_pf' \
             FROM generate_series(1, {keys}) g JOIN bench_prefill d ON d.n = g % {all}",
            keys = fill.keys.saturating_sub(1),
        ),
        format!(
            "INSERT INTO webhooks (id, workspace_id, domain_id, name, url) \
             SELECT gen_random_uuid(), d.ws, d.id, 'Prefill webhook ' || g, \
                    'https://hooks.example.com/postback/' || g \
             FROM generate_series(1, {webhooks}) g JOIN bench_prefill d ON d.n = 1 + g % {others}",
            webhooks = fill.webhooks,
        ),
    ];
    // In chunks, each its own transaction: one statement for 10,000,000 rows holds its
    // transition table and WAL until the end. Oldest first, so the ids grow as Postback writes
    // them and the indexes fill from the right, as in production.
    let events = fill.events.max(1);
    out.extend(
        chunks(events)
            .into_iter()
            .map(|(lo, hi)| {
                let (head, tail) = if keys {
                    (
                        "WITH ins AS (",
                        " RETURNING workspace_id, id, domain_id, received_at, order_id, event_name) \
                         INSERT INTO event_keys (workspace_id, event_id, domain_id, received_at, \
                                                 order_id, event_name) SELECT * FROM ins",
                    )
                } else {
                    ("", "")
                };
                format!(
            "{head}INSERT INTO events (id, workspace_id, domain_id, event_name, email, email_sha256, \
                                 payload, products, occurred_at, received_at, value, currency, \
                                 order_id, first_name, last_name) \
             SELECT {event_id}, d.ws, d.id, 'purchase', x.email, \
                    sha256(convert_to(x.email, 'UTF8')), '{{}}', '[]', x.t, x.t, \
                    (500 + g % 49500) / 100.0, 'USD', 'PF-' || g, 'Ada', 'Lovelace' \
             FROM generate_series({lo}::bigint, {hi}) g \
             JOIN bench_prefill d ON d.n = g % {all} \
             CROSS JOIN LATERAL (SELECT now() - interval '7 days' * (1 - g::float8 / {events}) AS t, \
                                        'customer-' || (g * 7919 % 200000) || '@prefill.example' \
                                        AS email) x{tail}"
        )
            }),
    );
    out.extend([
        format!(
            "INSERT INTO delivery_history (id, workspace_id, webhook_id, event_id, url, status, \
                                           attempts, round_attempts, next_attempt_at, \
                                           last_status_code, created_at, completed_at, \
                                           event_received_at) \
             SELECT {delivery_id}, e.workspace_id, w.id, e.id, w.url, 'succeeded', 1, 1, \
                    e.received_at, 200, e.received_at, e.received_at, e.received_at \
             FROM events e \
             JOIN LATERAL (SELECT id, url FROM webhooks \
                           WHERE workspace_id = e.workspace_id AND domain_id = e.domain_id \
                           ORDER BY id LIMIT 1) w ON true \
             WHERE e.domain_id <> '{domain_id}'::uuid"
        ),
        "DROP TABLE bench_prefill".into(),
    ]);
    out
}

/// After the fill (and the rollup fold).
const FINISH: [&str; 2] = [
    "VACUUM ANALYZE",
    // The fill wrote gigabytes of WAL: without this, the checkpoints it calls for (and the
    // full-page images after each) would land in the measured window.
    "CHECKPOINT",
];

/// Runs the fill on the server's database, printing how long each part took.
pub async fn run(db_url: &str, fill: &Fill, workspace_id: &str, domain_id: &str) -> Result<()> {
    ensure!(
        uuid_like(workspace_id) && uuid_like(domain_id),
        "unexpected ids from the server: {workspace_id} {domain_id}"
    );
    eprintln!(
        "prefill: {} events, {} domains, {} keys, {} webhooks",
        fill.events, fill.domains, fill.keys, fill.webhooks
    );
    let started = Instant::now();
    let mut sqls = Vec::new();
    if crate::db::partitions_ensure_exists(db_url).await? {
        sqls.push(
            "SELECT postback_partitions_ensure(now() - interval '8 days', now() + interval '1 day')"
                .to_owned(),
        );
    }
    let keys = crate::db::event_keys_exist(db_url).await?;
    sqls.extend(statements(fill, workspace_id, domain_id, keys));
    for sql in sqls {
        let t = Instant::now();
        crate::db::exec(db_url, &sql)
            .await
            .context("filling the database")?;
        let head: String = sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
        eprintln!("prefill: {head} … {:.1} s", t.elapsed().as_secs_f64());
    }
    let t = Instant::now();
    crate::db::fold_rollups(db_url).await?;
    eprintln!(
        "prefill: rollups folded … {:.1} s",
        t.elapsed().as_secs_f64()
    );
    for sql in FINISH {
        let t = Instant::now();
        crate::db::exec(db_url, sql)
            .await
            .context("finishing the fill")?;
        eprintln!("prefill: {sql} … {:.1} s", t.elapsed().as_secs_f64());
    }
    eprintln!("prefill: done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Only hex digits and dashes: the ids are spliced into the statements.
fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_once() {
        assert_eq!(chunks(0), vec![]);
        assert_eq!(chunks(1), vec![(1, 1)]);
        assert_eq!(chunks(250_000), vec![(1, 250_000)]);
        assert_eq!(
            chunks(1_000_001),
            vec![
                (1, 250_000),
                (250_001, 500_000),
                (500_001, 750_000),
                (750_001, 1_000_000),
                (1_000_001, 1_000_001)
            ]
        );
    }

    #[test]
    fn events_go_in_chunks_oldest_first() {
        let fill = Fill {
            events: 600_000,
            domains: 100,
            keys: 1,
            webhooks: 1,
        };
        let sql = statements(&fill, "w", "d", true);
        let events: Vec<&String> = sql
            .iter()
            .filter(|s| s.contains("INSERT INTO events"))
            .collect();
        assert_eq!(events.len(), 3);
        // Each chunk's orderId keys go into event_keys with it.
        assert!(events
            .iter()
            .all(|s| s.starts_with("WITH ins AS (INSERT INTO events")
                && s.ends_with("INSERT INTO event_keys (workspace_id, event_id, domain_id, received_at, order_id, event_name) SELECT * FROM ins")));
        assert!(events[0].contains("generate_series(1::bigint, 250000)"));
        assert!(events[2].contains("generate_series(500001::bigint, 600000)"));
        assert!(events[2].contains("now() - interval '7 days' * (1 - g::float8 / 600000)"));
    }

    #[test]
    fn ids_are_checked_before_they_are_spliced_in() {
        assert!(uuid_like("0192f1c4-5b6e-7a8b-9c0d-1e2f3a4b5c6d"));
        assert!(!uuid_like("0192f1c4'; DROP TABLE events; --aaaaa"));
    }

    #[test]
    fn every_other_tenant_gets_a_share() {
        let fill = Fill {
            events: 1000,
            domains: 100,
            keys: 1000,
            webhooks: 1000,
        };
        let sql = statements(&fill, "w", "d", false).join("\n");
        assert!(sql.contains("generate_series(1, 99)"));
        assert!(sql.contains("generate_series(1, 999) g JOIN bench_prefill d ON d.n = g % 100"));
        assert!(sql.contains("generate_series(1, 1000) g JOIN bench_prefill d ON d.n = 1 + g % 99"));
    }
}
