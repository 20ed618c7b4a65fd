//! Stored inbound events: the batch ingest that accepts them (keys checked, quota counted,
//! duplicates recognised, all in one transaction) and the queries that show them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::conditions;
use crate::delivery as queue;
use crate::error::{DomainError, DomainResult};
use crate::events::ParsedEvent;
use crate::events::{fields, Event, EventFields};
use crate::ids::{DomainId, EventId, KeyId, TouchId, WorkspaceId};
use crate::platforms::Platform;
use crate::schema::{event_keys, events, inbound_keys, plans, usage_counters, workspaces};
use crate::tenancy::keys::LAST_USED_RESOLUTION;
use crate::tracking::attribution::{self, Attribution};

#[derive(Debug, Insertable)]
#[diesel(table_name = events)]
struct NewEventRow<'a> {
    id: EventId,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
    key_id: Option<KeyId>,
    #[diesel(embed)]
    fields: EventFields,
    payload: &'a serde_json::Value,
    idempotency_key: Option<&'a str>,
    first_touch_id: Option<uuid::Uuid>,
    last_touch_id: Option<uuid::Uuid>,
}

/// One inbound request waiting to be committed.
#[derive(Debug, Clone)]
pub struct Submission {
    pub key_hash: Vec<u8>,
    pub idempotency_key: Option<String>,
    pub event: ParsedEvent,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Stored, with the platforms a delivery was queued to (seed 000's `dispatched`).
    Accepted(EventId, Vec<&'static str>),
    /// An earlier event with the same orderId + event or Idempotency-Key; its id.
    Duplicate(EventId),
    InvalidKey,
    Suspended,
    /// The plan's monthly event quota is used up; the message names plan and limit.
    QuotaExceeded(String),
}

struct KeyInfo {
    key_id: KeyId,
    domain_id: DomainId,
    workspace_id: WorkspaceId,
    last_used_at: Option<DateTime<Utc>>,
    suspended: bool,
    plan_name: String,
    quota: Option<i64>,
}

fn month_start(now: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(now.year(), now.month(), 1).unwrap_or_else(|| now.date_naive())
}

/// A submission's keys (alias `v`: workspace_id, domain_id, order_id, event_name,
/// idempotency_key) are held by no stored event of another month than `{month}`'s (the month
/// its key row goes to). `event_keys` is partitioned by month (migration 000130) and each
/// month's unique indexes see only that month: this check covers the others (one index probe
/// per month kept); the insert's own month, concurrent duplicates included, is `ON CONFLICT`'s,
/// which goes by the unique indexes whatever the statistics (a probe of the month being filled
/// could be planned as a scan while its statistics still say empty).
const KEYS_FREE: &str = "NOT EXISTS (SELECT 1 FROM event_keys k \
    WHERE k.workspace_id = v.workspace_id AND k.domain_id = v.domain_id \
      AND k.order_id = v.order_id AND k.event_name = v.event_name \
      AND NOT (k.received_at >= {month} AND k.received_at < {month} + interval '1 month')) \
    AND NOT EXISTS (SELECT 1 FROM event_keys k \
    WHERE k.workspace_id = v.workspace_id AND k.domain_id = v.domain_id \
      AND k.idempotency_key = v.idempotency_key \
      AND NOT (k.received_at >= {month} AND k.received_at < {month} + interval '1 month'))";

/// [`KEYS_FREE`] for key rows stored at `at` (an SQL expression).
fn keys_free(at: &str) -> String {
    KEYS_FREE.replace("{month}", &format!("date_trunc('month', {at}, 'UTC')"))
}

/// How close to the start of a month (UTC), either side, keyed inserts first take
/// [`KEYS_LOCK_SQL`]. Two duplicates in flight at once on either side of the boundary land in
/// different partitions: no unique index sees both, and neither sees the other's uncommitted key
/// in [`KEYS_FREE`]. Under the lock the later one checks after the earlier has committed. Far
/// longer than an insert's transaction, and than any clock skew between instances worth having.
const KEYS_NEAR_BOUNDARY: chrono::Duration = chrono::Duration::minutes(10);
const KEYS_LOCK_CLASS: i32 = 727_003;

/// One transaction lock per domain of the given inbound key hashes ($2), always taken in the
/// same order.
const KEYS_LOCK_SQL: &str = "SELECT count(pg_advisory_xact_lock($1, h))::int8 AS n FROM \
    (SELECT DISTINCT hashtext(domain_id::text) AS h FROM inbound_keys \
     WHERE key_hash = ANY($2) ORDER BY h) d";

/// Whether `t` is within [`KEYS_NEAR_BOUNDARY`] of a month's start.
fn near_month_boundary(t: DateTime<Utc>) -> bool {
    let start = month_start(t).and_time(chrono::NaiveTime::MIN).and_utc();
    let next = start
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(start);
    t - start < KEYS_NEAR_BOUNDARY || next - t <= KEYS_NEAR_BOUNDARY
}

static LOCK_KEYS_ALWAYS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// For tests: keyed batches take [`KEYS_LOCK_SQL`] at any time, not only near a month's start,
/// so the path that otherwise runs twenty minutes a month is exercised whenever they run.
#[doc(hidden)]
pub fn lock_keys_always(on: bool) {
    LOCK_KEYS_ALWAYS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// The inbound key hashes of the submissions that carry a key duplicates are recognised by, if
/// they need [`KEYS_LOCK_SQL`] at `t`.
fn keys_to_lock<'a>(subs: impl Iterator<Item = &'a Submission>, t: DateTime<Utc>) -> Vec<&'a [u8]> {
    if !near_month_boundary(t) && !LOCK_KEYS_ALWAYS.load(std::sync::atomic::Ordering::Relaxed) {
        return Vec::new();
    }
    subs.filter(|s| is_keyed(s))
        .map(|s| s.key_hash.as_slice())
        .collect()
}

async fn resolve_keys(
    conn: &mut AsyncPgConnection,
    hashes: Vec<Vec<u8>>,
) -> DomainResult<HashMap<Vec<u8>, KeyInfo>> {
    type Row = (
        Vec<u8>,
        KeyId,
        DomainId,
        WorkspaceId,
        Option<DateTime<Utc>>,
        String,
        String,
        Option<i64>,
    );
    let rows: Vec<Row> = inbound_keys::table
        .inner_join(workspaces::table.on(workspaces::id.eq(inbound_keys::workspace_id)))
        .inner_join(plans::table.on(plans::tier.eq(workspaces::plan)))
        .filter(inbound_keys::key_hash.eq_any(hashes))
        .filter(inbound_keys::revoked_at.is_null())
        .filter(workspaces::status.ne("deleting"))
        .select((
            inbound_keys::key_hash,
            inbound_keys::id,
            inbound_keys::domain_id,
            inbound_keys::workspace_id,
            inbound_keys::last_used_at,
            workspaces::status,
            plans::name,
            plans::max_events_per_month,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(hash, key_id, domain_id, workspace_id, last_used_at, status, plan_name, quota)| {
                (
                    hash,
                    KeyInfo {
                        key_id,
                        domain_id,
                        workspace_id,
                        last_used_at,
                        suspended: status == "suspended",
                        plan_name,
                        quota,
                    },
                )
            },
        )
        .collect())
}

fn row_for<'a>(
    id: EventId,
    key: &KeyInfo,
    sub: &'a Submission,
    attribution: &Attribution,
) -> NewEventRow<'a> {
    NewEventRow {
        id,
        workspace_id: key.workspace_id,
        domain_id: key.domain_id,
        key_id: Some(key.key_id),
        fields: sub.event.fields.clone(),
        payload: &sub.event.payload,
        idempotency_key: sub.idempotency_key.as_deref(),
        first_touch_id: attribution.first_id(),
        last_touch_id: attribution.last_id(),
    }
}

/// The id of the stored event a duplicate submission matches, if any (from `event_keys`, where
/// idempotency is kept: a partitioned `events` cannot hold these unique keys).
async fn existing_event(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
    sub: &Submission,
) -> DomainResult<Option<EventId>> {
    if let Some(k) = &sub.idempotency_key {
        let found = event_keys::table
            .filter(event_keys::workspace_id.eq(workspace_id))
            .filter(event_keys::domain_id.eq(domain_id))
            .filter(event_keys::idempotency_key.eq(k))
            .select(event_keys::event_id)
            .first::<EventId>(conn)
            .await
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    if let Some(o) = &sub.event.fields.order_id {
        return Ok(event_keys::table
            .filter(event_keys::workspace_id.eq(workspace_id))
            .filter(event_keys::domain_id.eq(domain_id))
            .filter(event_keys::order_id.eq(o))
            .filter(event_keys::event_name.eq(&sub.event.fields.event_name))
            .select(event_keys::event_id)
            .first::<EventId>(conn)
            .await
            .optional()?);
    }
    Ok(None)
}

/// Whether a submission carries a key duplicates are recognised by.
fn is_keyed(sub: &Submission) -> bool {
    sub.idempotency_key.is_some() || sub.event.fields.order_id.is_some()
}

/// Claims the idempotency keys of `rows` (those that have one) in `event_keys`; returns the ids
/// of the events that may be stored: every unkeyed one, and each keyed one whose keys were all
/// free ([`KEYS_FREE`] in other months, `ON CONFLICT` in this one). A key taken by a concurrent
/// transaction waits for it, then counts as taken.
async fn claim_keys(
    conn: &mut AsyncPgConnection,
    rows: &[NewEventRow<'_>],
    subs: &[&Submission],
) -> DomainResult<std::collections::HashSet<EventId>> {
    use diesel::sql_types::{Array, Nullable, Text, Uuid as SqlUuid};
    #[derive(QueryableByName)]
    struct Claimed {
        #[diesel(sql_type = SqlUuid)]
        event_id: uuid::Uuid,
    }
    let keyed: Vec<(&NewEventRow, &&Submission)> =
        rows.iter().zip(subs).filter(|(_, s)| is_keyed(s)).collect();
    let mut free: std::collections::HashSet<EventId> = rows
        .iter()
        .zip(subs)
        .filter(|(_, s)| !is_keyed(s))
        .map(|(r, _)| r.id)
        .collect();
    if !keyed.is_empty() {
        let claimed: Vec<Claimed> = diesel::sql_query(format!(
            "INSERT INTO event_keys (workspace_id, event_id, domain_id, received_at, order_id, \
                                     event_name, idempotency_key) \
             SELECT v.workspace_id, v.id, v.domain_id, now(), v.order_id, v.event_name, \
                    v.idempotency_key \
             FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[]) \
                  WITH ORDINALITY AS v(workspace_id, id, domain_id, order_id, event_name, \
                                       idempotency_key, ord) \
             WHERE {keys_free} \
             ORDER BY v.ord \
             ON CONFLICT DO NOTHING \
             RETURNING event_id",
            keys_free = keys_free("now()")
        ))
        .bind::<Array<SqlUuid>, _>(
            keyed
                .iter()
                .map(|(r, _)| r.workspace_id.0)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<SqlUuid>, _>(keyed.iter().map(|(r, _)| r.id.0).collect::<Vec<_>>())
        .bind::<Array<SqlUuid>, _>(keyed.iter().map(|(r, _)| r.domain_id.0).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(
            keyed
                .iter()
                .map(|(_, s)| s.event.fields.order_id.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            keyed
                .iter()
                .map(|(_, s)| s.event.fields.event_name.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            keyed
                .iter()
                .map(|(_, s)| s.idempotency_key.as_deref())
                .collect::<Vec<_>>(),
        )
        .load(conn)
        .await?;
        free.extend(claimed.into_iter().map(|c| EventId(c.event_id)));
    }
    Ok(free)
}

/// Far from its monthly quota a workspace's batches commit in parallel (shared lock); within this
/// many events of the quota they take turns (exclusive lock) so the boundary is exact. Exact as
/// long as fewer than QUOTA_SAFETY / 512 batches of one workspace commit at once.
const QUOTA_SAFETY: i64 = 16_384;
const QUOTA_LOCK_CLASS: i32 = 727_002;

enum TxError {
    Domain(DomainError),
    /// The workspace came near its quota under a shared lock: redo the batch taking turns.
    NeedExclusive(WorkspaceId),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Domain(e.into())
    }
}

impl From<DomainError> for TxError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

fn lock_key(workspace_id: WorkspaceId) -> i32 {
    let b = workspace_id.0.as_bytes();
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

async fn month_usage(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    month: NaiveDate,
) -> DomainResult<i64> {
    let sum: Option<i64> = usage_counters::table
        .filter(usage_counters::workspace_id.eq(workspace_id))
        .filter(usage_counters::month.eq(month))
        .select(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::BigInt>,
        >("sum(events)::bigint"))
        .first::<Option<i64>>(conn)
        .await
        .optional()?
        .flatten();
    Ok(sum.unwrap_or(0))
}

/// The exact path: one transaction that checks each workspace's monthly quota under a lock.
async fn ingest_exact(
    conn: &mut AsyncPgConnection,
    subs: &[&Submission],
    found: &[&Attribution],
    rules: &queue::RuleBook,
    shard: i16,
) -> DomainResult<Vec<Outcome>> {
    let mut exclusive = std::collections::BTreeSet::new();
    loop {
        match try_ingest(conn, subs, found, rules, shard, &exclusive).await {
            Ok(outcomes) => return Ok(outcomes),
            Err(TxError::Domain(e)) => return Err(e),
            Err(TxError::NeedExclusive(ws)) => {
                exclusive.insert(ws);
            }
        }
    }
}

async fn try_ingest(
    conn: &mut AsyncPgConnection,
    subs: &[&Submission],
    found: &[&Attribution],
    rules: &queue::RuleBook,
    shard: i16,
    exclusive: &std::collections::BTreeSet<WorkspaceId>,
) -> Result<Vec<Outcome>, TxError> {
    conn.transaction::<_, TxError, _>(async move |conn| {
        let now = Utc::now();
        let mut hashes: Vec<Vec<u8>> = subs.iter().map(|s| s.key_hash.clone()).collect();
        hashes.sort();
        hashes.dedup();
        let keys = resolve_keys(conn, hashes).await?;
        let near_boundary = keys_to_lock(subs.iter().copied(), now);
        if !near_boundary.is_empty() {
            diesel::sql_query(KEYS_LOCK_SQL)
                .bind::<diesel::sql_types::Integer, _>(KEYS_LOCK_CLASS)
                .bind::<diesel::sql_types::Array<diesel::sql_types::Bytea>, _>(near_boundary)
                .execute(conn)
                .await?;
        }

        let mut outcomes: Vec<Option<Outcome>> = vec![None; subs.len()];
        let mut accepted: Vec<(&Submission, &Attribution, EventId)> = Vec::new();
        // Candidates per workspace, in arrival order; a BTreeMap so quota locks are always
        // taken in the same order by concurrent batches.
        let mut by_workspace: BTreeMap<WorkspaceId, Vec<usize>> = BTreeMap::new();
        for (i, sub) in subs.iter().enumerate() {
            match keys.get(&sub.key_hash) {
                None => outcomes[i] = Some(Outcome::InvalidKey),
                Some(k) if k.suspended => outcomes[i] = Some(Outcome::Suspended),
                Some(k) => by_workspace.entry(k.workspace_id).or_default().push(i),
            }
        }

        let month = month_start(now);
        for (workspace_id, candidates) in &by_workspace {
            let first = &keys[&subs[candidates[0]].key_hash];
            let mut allowance = match first.quota {
                None => None,
                Some(quota) => {
                    let take_turns = exclusive.contains(workspace_id) || quota <= 4 * QUOTA_SAFETY;
                    let lock = if take_turns {
                        "SELECT pg_advisory_xact_lock($1, $2)"
                    } else {
                        "SELECT pg_advisory_xact_lock_shared($1, $2)"
                    };
                    diesel::sql_query(lock)
                        .bind::<diesel::sql_types::Integer, _>(QUOTA_LOCK_CLASS)
                        .bind::<diesel::sql_types::Integer, _>(lock_key(*workspace_id))
                        .execute(conn)
                        .await?;
                    let used = month_usage(conn, *workspace_id, month).await?;
                    let remaining = (quota - used).max(0);
                    if take_turns {
                        Some(remaining)
                    } else if remaining <= QUOTA_SAFETY {
                        return Err(TxError::NeedExclusive(*workspace_id));
                    } else {
                        None
                    }
                }
            };
            let mut pending: &[usize] = candidates;
            let mut inserted_total = 0i64;
            while !pending.is_empty() {
                let take = allowance.map_or(pending.len(), |a| (a as usize).min(pending.len()));
                if take == 0 {
                    break;
                }
                let (now_batch, rest) = pending.split_at(take);
                pending = rest;
                let ids: Vec<EventId> = now_batch.iter().map(|_| EventId::time_ordered()).collect();
                let rows: Vec<NewEventRow> = now_batch
                    .iter()
                    .zip(&ids)
                    .map(|(&i, &id)| row_for(id, &keys[&subs[i].key_hash], subs[i], found[i]))
                    .collect();
                let batch_subs: Vec<&Submission> = now_batch.iter().map(|&i| subs[i]).collect();
                let free = claim_keys(conn, &rows, &batch_subs).await?;
                let rows: Vec<&NewEventRow> =
                    rows.iter().filter(|r| free.contains(&r.id)).collect();
                let inserted: Vec<EventId> = if rows.is_empty() {
                    Vec::new()
                } else {
                    diesel::insert_into(events::table)
                        .values(rows)
                        .returning(events::id)
                        .get_results(conn)
                        .await?
                };
                let inserted: std::collections::HashSet<EventId> = inserted.into_iter().collect();
                for (&i, id) in now_batch.iter().zip(&ids) {
                    if inserted.contains(id) {
                        outcomes[i] = Some(Outcome::Accepted(*id, Vec::new()));
                        accepted.push((subs[i], found[i], *id));
                    } else {
                        let k = &keys[&subs[i].key_hash];
                        let existing =
                            existing_event(conn, k.workspace_id, k.domain_id, subs[i]).await?;
                        outcomes[i] = Some(match existing {
                            Some(e) => Outcome::Duplicate(e),
                            None => {
                                return Err(TxError::Domain(DomainError::internal(
                                    "event neither inserted nor found as a duplicate",
                                )))
                            }
                        });
                    }
                }
                let n = inserted.len() as i64;
                inserted_total += n;
                allowance = allowance.map(|a| a - n);
            }
            // Over the quota: a retry of an accepted event is still a duplicate, not a 429.
            for &i in pending {
                let k = &keys[&subs[i].key_hash];
                outcomes[i] = Some(
                    match existing_event(conn, k.workspace_id, k.domain_id, subs[i]).await? {
                        Some(e) => Outcome::Duplicate(e),
                        None => Outcome::QuotaExceeded(format!(
                            "The {} plan allows {} inbound events per month",
                            k.plan_name,
                            crate::text::thousands(k.quota.unwrap_or(0))
                        )),
                    },
                );
            }
            if inserted_total > 0 {
                diesel::insert_into(usage_counters::table)
                    .values((
                        usage_counters::workspace_id.eq(workspace_id),
                        usage_counters::month.eq(month),
                        usage_counters::shard.eq(shard),
                        usage_counters::events.eq(inserted_total),
                    ))
                    .on_conflict((
                        usage_counters::workspace_id,
                        usage_counters::month,
                        usage_counters::shard,
                    ))
                    .do_update()
                    .set(usage_counters::events.eq(usage_counters::events + inserted_total))
                    .execute(conn)
                    .await?;
            }
        }

        let planned = plan_all(rules, accepted.iter().map(|(s, a, id)| (*s, *a, id)));
        queue::insert_planned(conn, &planned).await?;
        for o in outcomes.iter_mut().flatten() {
            if let Outcome::Accepted(id, platforms) = o {
                *platforms = dispatched(&planned, *id);
            }
        }

        let stale: Vec<KeyId> = keys
            .values()
            .filter(|k| {
                k.last_used_at
                    .is_none_or(|t| now - t >= LAST_USED_RESOLUTION)
            })
            .map(|k| k.key_id)
            .collect();
        if !stale.is_empty() {
            diesel::update(inbound_keys::table.filter(inbound_keys::id.eq_any(stale)))
                .set(inbound_keys::last_used_at.eq(now))
                .execute(conn)
                .await?;
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.ok_or_else(|| {
                    TxError::Domain(DomainError::internal("submission left unanswered"))
                })
            })
            .collect()
    })
    .await
}

/// The fast path, for workspaces without a monthly quota: one statement, in autocommit, that
/// checks the keys (unrevoked, workspace active, plan unlimited), inserts the events (duplicates
/// skipped by the idempotency indexes), adds them to the usage counter and records key use.
/// Submissions it did not take (unknown keys, suspended or quota-limited workspaces) come back
/// as None, for the exact path. The deliveries planned for the events are inserted with them
/// (only for events actually stored), and the workers are notified at commit.
/// [`FAST_INSERT`]'s parameters before the event's fields (`$1` … `$17`); the fields follow, one
/// array each, in [`fields::COLUMNS`] order.
const FAST_FIXED_PARAMS: usize = 17;

/// The fast insert, with the event's columns and their parameters generated from
/// [`fields::COLUMNS`].
fn fast_insert_sql() -> String {
    let cols: Vec<&str> = fields::COLUMNS.iter().map(|(c, _)| *c).collect();
    let params: Vec<String> = fields::COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| format!("${}::{ty}[]", FAST_FIXED_PARAMS + 1 + i))
        .collect();
    let cols = cols.join(", ");
    let params = params.join(", ");
    FAST_INSERT
        .replace("{keys_free}", &keys_free("$8::timestamptz"))
        .replace("{field_params}", &params)
        .replace("{field_columns}", &cols)
        .replace(
            "{lease_due}",
            "(w.status = 'active' AND w.rate_limit IS NULL AND w.max_in_flight IS NULL \
             AND w.circuit_open_until IS NULL OR c.id IS NOT NULL) AND $15::float8 > 0",
        )
}

const FAST_INSERT: &str = r#"
WITH input AS (
    SELECT * FROM unnest(
        $1::int4[], $2::bytea[], $3::uuid[], $4::text[], $5::jsonb[], $6::uuid[], $7::uuid[],
        {field_params}
    ) AS t(ord, key_hash, id, idempotency_key, payload, first_touch_id, last_touch_id,
           {field_columns})
),
-- Each distinct key of the batch is looked up once, by the key_hash index (LIMIT keeps the
-- lookup a probe per key: joined to the input directly it was planned as a scan of every
-- tenant's keys, or of every workspace per submission, a cost that grew with the tenants).
keys AS MATERIALIZED (
    SELECT h.hash, k.*
    FROM (SELECT DISTINCT key_hash AS hash FROM input) h
    CROSS JOIN LATERAL (
        SELECT k.id AS key_id, k.domain_id, k.workspace_id, k.last_used_at
        FROM inbound_keys k
        JOIN workspaces w ON w.id = k.workspace_id AND w.status = 'active'
        JOIN plans p ON p.tier = w.plan AND p.max_events_per_month IS NULL
        WHERE k.key_hash = h.hash AND k.revoked_at IS NULL
        LIMIT 1
    ) k
),
valid AS (
    SELECT i.*, k.key_id, k.domain_id, k.workspace_id, k.last_used_at
    FROM input i JOIN keys k ON k.hash = i.key_hash
),
-- Idempotency lives in event_keys (a partitioned events table cannot hold unique keys that
-- leave out received_at): a keyed event is stored only if its keys were free, in every month
-- (the check below) and in its own month's unique indexes (ON CONFLICT, which also settles
-- concurrent duplicates).
keyed AS (
    INSERT INTO event_keys (workspace_id, event_id, domain_id, received_at, order_id, event_name,
                            idempotency_key)
    SELECT workspace_id, id, domain_id, $8::timestamptz, order_id, event_name, idempotency_key
    FROM valid v WHERE (order_id IS NOT NULL OR idempotency_key IS NOT NULL) AND {keys_free}
    ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING event_id
),
ins AS (
    INSERT INTO events (id, workspace_id, domain_id, key_id, idempotency_key, payload,
        first_touch_id, last_touch_id, received_at, {field_columns})
    SELECT id, workspace_id, domain_id, key_id, idempotency_key, payload, first_touch_id,
        last_touch_id, $8::timestamptz, {field_columns}
    FROM valid
    WHERE (order_id IS NULL AND idempotency_key IS NULL) OR id IN (SELECT event_id FROM keyed)
    ORDER BY ord
    RETURNING id, workspace_id
),
counted AS (
    INSERT INTO usage_counters (workspace_id, month, shard, events)
    SELECT workspace_id, $9, $10, count(*) FROM ins GROUP BY workspace_id
    ON CONFLICT (workspace_id, month, shard)
    DO UPDATE SET events = usage_counters.events + EXCLUDED.events
),
touched AS (
    UPDATE inbound_keys SET last_used_at = now()
    WHERE id IN (SELECT key_id FROM valid
                 WHERE last_used_at IS NULL OR last_used_at <= now() - $16::float8 * interval '1 second')
),
queued AS (
    INSERT INTO delivery_queue (id, workspace_id, webhook_id, connection_id, event_id, url,
                                status, attempts, round_attempts, next_attempt_at, leased_until,
                                event_received_at)
    SELECT d.id, ins.workspace_id, w.id, c.id, ins.id, d.url,
           CASE WHEN w.status = 'paused' THEN 'held' ELSE 'pending' END,
           -- An active webhook's or an enabled connection's delivery is claimed by this
           -- instance as it is stored (the same lease as a claim): it is sent straight after
           -- the commit, with no claim query.
           -- Not a webhook with a rate limit, a concurrency cap or a tripped breaker: the
           -- worker claims those within their limits.
           CASE WHEN {lease_due} THEN 1 ELSE 0 END,
           CASE WHEN {lease_due} THEN 1 ELSE 0 END,
           -- Due only when the lease runs out: a backlog of deliveries claimed here (a burst
           -- the worker has not sent yet) stays out of the due index the claimer scans.
           CASE WHEN {lease_due} THEN now() + make_interval(secs => $15::float8) ELSE now() END,
           CASE WHEN {lease_due} THEN now() + make_interval(secs => $15::float8) END,
           $8::timestamptz
    FROM unnest($11::uuid[], $12::uuid[], $13::uuid[], $14::text[], $17::uuid[])
         AS d(id, event_id, webhook_id, url, connection_id)
    JOIN ins ON ins.id = d.event_id
    LEFT JOIN webhooks w ON w.id = d.webhook_id AND w.workspace_id = ins.workspace_id
    LEFT JOIN connections c ON c.id = d.connection_id AND c.workspace_id = ins.workspace_id
                           AND c.enabled
    WHERE w.id IS NOT NULL OR c.id IS NOT NULL
    RETURNING id, event_id, status, attempts
),
woken AS (
    SELECT pg_notify('postback_deliveries', '')
    FROM (SELECT 1 FROM queued WHERE status = 'pending' AND attempts = 0 LIMIT 1) q
)
SELECT v.ord, v.id, v.domain_id, (ins.id IS NOT NULL) AS inserted,
       (SELECT count(*) FROM woken) AS woken, v.workspace_id,
       (SELECT array_agg(q.id) FROM queued q WHERE q.event_id = v.id AND q.attempts = 1) AS claimed
FROM valid v LEFT JOIN ins ON ins.id = v.id
"#;

/// A connection kept by one committer for the fast path, with [`FAST_INSERT`] prepared once so
/// PostgreSQL plans it once rather than for every batch.
pub struct FastPath {
    client: tokio_postgres::Client,
    statement: tokio_postgres::Statement,
    rules: tokio_postgres::Statement,
    attribution: tokio_postgres::Statement,
}

impl FastPath {
    pub async fn connect(database_url: &str) -> DomainResult<Self> {
        let client = crate::store::pg::connect_kept(database_url, "inbound fast-path").await?;
        // Each statement below is planned once, for every batch to come. Left to choose,
        // PostgreSQL kept planning the rules look-up anew (0.3 ms a batch with 1,000 keys and
        // webhooks stored): its generic plan, estimated for ten keys, looked dearer than a plan
        // for the batch's one. Behind a transaction pooler every statement is parsed and
        // planned for each run anyway.
        crate::store::pg::set_unless_pooled(
            &client,
            "SET plan_cache_mode = force_generic_plan",
            "setting the fast path's plans",
        )
        .await?;
        let statement = client
            .prepare(&fast_insert_sql())
            .await
            .map_err(|e| crate::error::pg_error("preparing the inbound insert", e))?;
        let rules = client
            .prepare(queue::RULES_SQL)
            .await
            .map_err(|e| crate::error::pg_error("preparing the rules query", e))?;
        let attribution = client
            .prepare(attribution::ATTRIBUTION_SQL)
            .await
            .map_err(|e| crate::error::pg_error("preparing attribution", e))?;
        Ok(Self {
            client,
            statement,
            rules,
            attribution,
        })
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    fn db_error(&self, what: &str, e: tokio_postgres::Error) -> DomainError {
        if self.client.is_closed() || crate::error::is_pg_connection_loss(&e) {
            DomainError::Unavailable(e.to_string())
        } else {
            DomainError::internal(format!("{what}: {e}"))
        }
    }

    /// The webhooks that events under these keys may fire, by key hash (one round trip, no
    /// writes). The committer starts it as soon as a batch's first request arrives, so it runs
    /// while the batch is still filling.
    pub async fn rules_for(&self, hashes: &[&[u8]]) -> DomainResult<queue::RuleBook> {
        let rows = self
            .client
            .query(&self.rules, &[&hashes])
            .await
            .map_err(|e| self.db_error("webhook rules", e))?;
        let mut book = queue::RuleBook::new();
        let mut parsed: HashMap<uuid::Uuid, std::sync::Arc<queue::Rule>> = HashMap::new();
        // Webhooks whose stored conditions cannot be read: they fire for nothing and are paused.
        let mut unreadable: Vec<(uuid::Uuid, String)> = Vec::new();
        for r in rows {
            let get_err = |e: tokio_postgres::Error| DomainError::internal(e.to_string());
            let hash: Vec<u8> = r.try_get(0).map_err(get_err)?;
            let id: uuid::Uuid = r.try_get(1).map_err(get_err)?;
            let rule = match parsed.get(&id) {
                Some(rule) => rule.clone(),
                None if unreadable.iter().any(|(u, _)| *u == id) => continue,
                None => {
                    let conditions: serde_json::Value = r.try_get(4).map_err(get_err)?;
                    let conditions = match conditions::stored(&conditions) {
                        Ok(c) => c,
                        Err(reason) => {
                            unreadable.push((id, reason));
                            continue;
                        }
                    };
                    let platform: Option<String> = r.try_get(5).map_err(get_err)?;
                    let event_map: Option<serde_json::Value> = r.try_get(6).map_err(get_err)?;
                    let target = match platform.as_deref().map(Platform::parse) {
                        None => queue::Target::Webhook(crate::ids::WebhookId(id)),
                        Some(Some(p)) => queue::Target::Connection(crate::ids::ConnectionId(id), p),
                        Some(None) => continue,
                    };
                    let rule = std::sync::Arc::new(queue::Rule {
                        target,
                        url: r.try_get(2).map_err(get_err)?,
                        events: r.try_get(3).map_err(get_err)?,
                        conditions,
                        event_map: event_map
                            .and_then(|m| serde_json::from_value(m).ok())
                            .unwrap_or_default(),
                        secret: match r.try_get::<_, Option<String>>(7).map_err(get_err)? {
                            Some(sealed) => Some(crate::secrets::seal::open(&sealed)?),
                            None => None,
                        },
                        settings: r
                            .try_get::<_, Option<serde_json::Value>>(8)
                            .map_err(get_err)?
                            .unwrap_or_default(),
                        credentials: r
                            .try_get::<_, Option<serde_json::Value>>(9)
                            .map_err(get_err)?
                            .unwrap_or_default(),
                        previous_secret: match r
                            .try_get::<_, Option<String>>(10)
                            .map_err(get_err)?
                        {
                            Some(sealed) => Some(crate::secrets::seal::open(&sealed)?),
                            None => None,
                        },
                        headers: std::sync::Arc::new(crate::delivery::webhooks::open_header_pairs(
                            r.try_get::<_, Option<String>>(11)
                                .map_err(get_err)?
                                .as_deref(),
                        )?),
                        default_country: r.try_get(12).map_err(get_err)?,
                    });
                    parsed.insert(id, rule.clone());
                    rule
                }
            };
            book.entry(hash).or_default().push(rule);
        }
        if !unreadable.is_empty() {
            self.pause_unreadable(&unreadable).await?;
        }
        Ok(book)
    }

    /// Pauses webhooks whose stored conditions cannot be read, with the reason the owner sees:
    /// a webhook whose conditions are unknown must not fire for every event (fails closed).
    async fn pause_unreadable(&self, unreadable: &[(uuid::Uuid, String)]) -> DomainResult<()> {
        let ids: Vec<uuid::Uuid> = unreadable.iter().map(|(id, _)| *id).collect();
        let reasons: Vec<String> = unreadable
            .iter()
            .map(|(_, why)| conditions::unreadable_reason(why))
            .collect();
        tracing::warn!(webhooks = ?ids, "webhooks paused: their stored conditions cannot be read");
        tokio_postgres::Client::execute(
                &self.client,
                "UPDATE webhooks w SET status = 'paused', paused_reason = u.reason, updated_at = now()
                 FROM unnest($1::uuid[], $2::text[]) AS u(id, reason)
                 WHERE w.id = u.id AND (w.status <> 'paused' OR w.paused_reason IS DISTINCT FROM u.reason)",
                &[&ids, &reasons],
            )
        .await
        .map_err(|e| self.db_error("pausing webhooks", e))?;
        Ok(())
    }

    /// [`FAST_INSERT`] in a transaction that first takes [`KEYS_LOCK_SQL`] for `hashes`' domains.
    async fn locked_insert(
        &self,
        hashes: &[&[u8]],
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        crate::store::pg::in_transaction(&self.client, "BEGIN", async {
            self.client
                .query(KEYS_LOCK_SQL, &[&KEYS_LOCK_CLASS, &hashes])
                .await?;
            self.client.query(&self.statement, params).await
        })
        .await
    }

    /// Runs the fast path; see [`FAST_INSERT`]. One row per submission under a valid key.
    async fn run(
        &self,
        subs: &[Submission],
        found: &[Attribution],
        event_ids: &[EventId],
        planned: &[queue::Planned],
        batch: BatchParams,
    ) -> DomainResult<Vec<FastRow>> {
        let BatchParams {
            shard,
            received_at,
            direct_lease,
        } = batch;
        let ords: Vec<i32> = (0..subs.len() as i32).collect();
        let hashes: Vec<&[u8]> = subs.iter().map(|s| s.key_hash.as_slice()).collect();
        let ids: Vec<uuid::Uuid> = event_ids.iter().map(|e| e.0).collect();
        let d_ids: Vec<uuid::Uuid> = planned.iter().map(|p| p.id.0).collect();
        let d_events: Vec<uuid::Uuid> = planned.iter().map(|p| p.event_id.0).collect();
        let d_hooks: Vec<Option<uuid::Uuid>> =
            planned.iter().map(queue::Planned::webhook_id).collect();
        let d_connections: Vec<Option<uuid::Uuid>> =
            planned.iter().map(queue::Planned::connection_id).collect();
        let first_touches: Vec<Option<uuid::Uuid>> =
            found.iter().map(Attribution::first_id).collect();
        let last_touches: Vec<Option<uuid::Uuid>> =
            found.iter().map(Attribution::last_id).collect();
        let d_urls: Vec<&str> = planned.iter().map(|p| p.url.as_str()).collect();
        let idem: Vec<Option<&str>> = subs.iter().map(|s| s.idempotency_key.as_deref()).collect();
        let payloads: Vec<&serde_json::Value> = subs.iter().map(|s| &s.event.payload).collect();
        let mut fields = fields::FieldArrays::default();
        for s in subs {
            fields.push(&s.event.fields);
        }
        let month = month_start(Utc::now());
        let resolution = LAST_USED_RESOLUTION.as_seconds_f64();
        let fixed: [&(dyn tokio_postgres::types::ToSql + Sync); FAST_FIXED_PARAMS] = [
            &ords,
            &hashes,
            &ids,
            &idem,
            &payloads,
            &first_touches,
            &last_touches,
            &received_at,
            &month,
            &shard,
            &d_ids,
            &d_events,
            &d_hooks,
            &d_urls,
            &direct_lease,
            &resolution,
            &d_connections,
        ];
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = fixed.to_vec();
        params.extend(fields.params());
        let near_boundary = keys_to_lock(subs.iter(), received_at);
        let rows = if near_boundary.is_empty() {
            self.client.query(&self.statement, &params).await
        } else {
            self.locked_insert(&near_boundary, &params).await
        }
        .map_err(|e| self.db_error("inbound insert", e))?;
        rows.iter()
            .map(|r| {
                let get_err = |e: tokio_postgres::Error| DomainError::internal(e.to_string());
                let ord: i32 = r.try_get(0).map_err(get_err)?;
                let id: uuid::Uuid = r.try_get(1).map_err(get_err)?;
                let domain: uuid::Uuid = r.try_get(2).map_err(get_err)?;
                let inserted: bool = r.try_get(3).map_err(get_err)?;
                let workspace: uuid::Uuid = r.try_get(5).map_err(get_err)?;
                let claimed: Option<Vec<uuid::Uuid>> = r.try_get(6).map_err(get_err)?;
                let ord = usize::try_from(ord).map_err(|_| DomainError::internal("bad ordinal"))?;
                Ok(FastRow {
                    ord,
                    event_id: EventId(id),
                    domain_id: DomainId(domain),
                    workspace_id: WorkspaceId(workspace),
                    inserted,
                    claimed: claimed.unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// What a fast-path batch is stored with: the committer's usage-counter shard, the events'
/// received time, and the lease (seconds) of deliveries claimed at insert (0: none are).
struct BatchParams {
    shard: i16,
    received_at: DateTime<Utc>,
    direct_lease: f64,
}

/// One submission's row from the fast path.
struct FastRow {
    ord: usize,
    event_id: EventId,
    domain_id: DomainId,
    workspace_id: WorkspaceId,
    inserted: bool,
    /// Its deliveries claimed by this instance as they were stored (active webhooks, enabled
    /// connections).
    claimed: Vec<uuid::Uuid>,
}

/// The stored event a submission became, as the delivery body is built from it.
fn stored_event(
    sub: &Submission,
    row: &FastRow,
    received_at: DateTime<Utc>,
    found: &Attribution,
) -> Event {
    Event {
        id: row.event_id,
        workspace_id: row.workspace_id,
        domain_id: row.domain_id,
        key_id: None,
        fields: sub.event.fields.clone(),
        payload: sub.event.payload.clone(),
        received_at,
        idempotency_key: sub.idempotency_key.clone(),
        first_touch_id: found.first.as_ref().map(|t| t.id),
        last_touch_id: found.last.as_ref().map(|t| t.id),
    }
}

async fn ingest_fast(
    pool: &crate::store::db::DbPool,
    fast: &FastPath,
    subs: &[Submission],
    found: &[Attribution],
    rules: &queue::RuleBook,
    shard: i16,
    direct: Option<&ClaimAtInsert<'_>>,
) -> DomainResult<(Vec<Option<DomainResult<Outcome>>>, Vec<queue::Claimed>)> {
    let ids: Vec<EventId> = subs.iter().map(|_| EventId::time_ordered()).collect();
    let planned = plan_all(
        rules,
        subs.iter()
            .zip(found)
            .zip(&ids)
            .map(|((s, a), id)| (s, a, id)),
    );
    // Microsecond precision, as PostgreSQL stores it, so a body built now and one built later
    // from the stored row are the same bytes.
    let received_at =
        DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_else(Utc::now);
    let rows = fast
        .run(
            subs,
            found,
            &ids,
            &planned,
            BatchParams {
                shard,
                received_at,
                direct_lease: direct.map_or(0.0, |d| d.lease),
            },
        )
        .await?;
    // From here on the batch is committed: a failure answers only the submission it concerns.
    let mut outcomes: Vec<Option<DomainResult<Outcome>>> = subs.iter().map(|_| None).collect();
    let mut claimed: Vec<queue::Claimed> = Vec::new();
    // A pooled connection only for the rare duplicate look-up.
    let mut conn: Option<crate::store::db::DbConn> = None;
    for row in rows {
        let i = row.ord;
        let Some(sub) = subs.get(i) else {
            tracing::error!(ordinal = i, "inbound fast path: ordinal out of range");
            continue;
        };
        if !row.claimed.is_empty() {
            let event = stored_event(sub, &row, received_at, &found[i]);
            let body = std::sync::Arc::new(queue::body(
                &event,
                found[i].first.as_ref(),
                found[i].last.as_ref(),
            ));
            for p in planned.iter().filter(|p| row.claimed.contains(&p.id.0)) {
                // A claimed delivery left out here is sent by a worker once its lease ends.
                let Some(rule) = rules
                    .get(&sub.key_hash)
                    .and_then(|r| r.iter().find(|r| r.target == p.target))
                else {
                    continue;
                };
                let send = match p.target {
                    queue::Target::Webhook(webhook_id) => queue::Send::Webhook {
                        webhook_id,
                        url: p.url.clone(),
                        secret: rule.secret.clone(),
                        previous_secret: rule.previous_secret.clone(),
                        headers: rule.headers.clone(),
                        body: body.clone(),
                    },
                    queue::Target::Connection(_, platform) => {
                        let Some(urls) = direct.map(|d| d.platform_urls) else {
                            continue;
                        };
                        queue::PlatformConnection {
                            platform,
                            event_map: &rule.event_map,
                            settings: &rule.settings,
                            credentials: &rule.credentials,
                            default_country: rule.default_country.as_deref(),
                        }
                        .send(
                            &event,
                            found[i].first.as_ref(),
                            found[i].last.as_ref(),
                            urls,
                        )
                    }
                };
                claimed.push(queue::Claimed {
                    id: p.id,
                    workspace_id: row.workspace_id,
                    attempt: 1,
                    round_attempt: 1,
                    send,
                    connection_id: match p.target {
                        queue::Target::Connection(c, _) => Some(c),
                        queue::Target::Webhook(_) => None,
                    },
                    slotted: false,
                });
            }
        }
        outcomes[i] = Some(if row.inserted {
            Ok(Outcome::Accepted(
                row.event_id,
                dispatched(&planned, row.event_id),
            ))
        } else {
            // Not stored (a duplicate): if its first event cannot be looked up, only this
            // submission fails, and its retry is a duplicate again.
            duplicate_of(pool, &mut conn, row.workspace_id, row.domain_id, sub).await
        });
    }
    Ok((outcomes, claimed))
}

/// The answer to a submission skipped as a duplicate: its first event.
async fn duplicate_of(
    pool: &crate::store::db::DbPool,
    conn: &mut Option<crate::store::db::DbConn>,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
    sub: &Submission,
) -> DomainResult<Outcome> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(crate::store::db::conn(pool).await?),
    };
    match existing_event(c, workspace_id, domain_id, sub).await? {
        Some(first) => Ok(Outcome::Duplicate(first)),
        None => Err(DomainError::internal(
            "event neither inserted nor a duplicate",
        )),
    }
}

/// Webhook rules fetched ahead of a batch, and the key hashes they were fetched for.
pub struct Prefetched {
    pub book: queue::RuleBook,
    pub covered: Vec<Vec<u8>>,
}

/// The deliveries each (submission, attribution, event id) fires, from the rules of its key.
fn plan_all<'a>(
    rules: &queue::RuleBook,
    events: impl Iterator<Item = (&'a Submission, &'a Attribution, &'a EventId)>,
) -> Vec<queue::Planned> {
    let mut planned = Vec::new();
    for (sub, found, id) in events {
        if let Some(r) = rules.get(&sub.key_hash) {
            planned.extend(queue::plan(r, &sub.event, *id, found));
        }
    }
    planned
}

/// The platforms an event was queued to, in a stable order (seed 000's `dispatched`).
fn dispatched(planned: &[queue::Planned], id: EventId) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = planned
        .iter()
        .filter(|p| p.event_id == id)
        .filter_map(|p| match p.target {
            queue::Target::Connection(_, platform) => Some(platform.as_str()),
            queue::Target::Webhook(_) => None,
        })
        .collect();
    out.sort_unstable();
    out
}

/// Finds each submission's first and last touch (and, where a rule asks, its earlier
/// conversions and events) in one round trip; touches are loaded only for events that have one.
async fn attribute(
    pool: &crate::store::db::DbPool,
    fast: &FastPath,
    subs: &[Submission],
    rules: &queue::RuleBook,
) -> DomainResult<Vec<Attribution>> {
    let ords: Vec<i32> = (0..subs.len() as i32).collect();
    let hashes: Vec<&[u8]> = subs.iter().map(|s| s.key_hash.as_slice()).collect();
    let emails_sha: Vec<&[u8]> = subs
        .iter()
        .map(|s| s.event.fields.email_sha256.as_slice())
        .collect();
    let occurred: Vec<DateTime<Utc>> = subs.iter().map(|s| s.event.fields.occurred_at).collect();
    let emails: Vec<&str> = subs.iter().map(|s| s.event.fields.email.as_str()).collect();
    let counts: Vec<bool> = subs
        .iter()
        .map(|s| {
            rules
                .get(&s.key_hash)
                .is_some_and(|r| r.iter().any(|r| r.needs_counts()))
        })
        .collect();
    let rows = fast
        .client
        .query(
            &fast.attribution,
            &[&ords, &hashes, &emails_sha, &occurred, &emails, &counts],
        )
        .await
        .map_err(|e| fast.db_error("attribution", e))?;
    let mut found: Vec<(Option<TouchId>, Option<TouchId>)> = vec![(None, None); subs.len()];
    let mut out: Vec<Attribution> = vec![Attribution::default(); subs.len()];
    let get_err = |e: tokio_postgres::Error| DomainError::internal(e.to_string());
    for r in rows {
        let ord: i32 = r.try_get(0).map_err(get_err)?;
        let i = usize::try_from(ord).map_err(|_| DomainError::internal("bad ordinal"))?;
        let first: Option<uuid::Uuid> = r.try_get(1).map_err(get_err)?;
        let last: Option<uuid::Uuid> = r.try_get(2).map_err(get_err)?;
        let (Some(slot), Some(a)) = (found.get_mut(i), out.get_mut(i)) else {
            return Err(DomainError::internal("ordinal out of range"));
        };
        *slot = (first.map(TouchId), last.map(TouchId));
        a.conversion_count = r.try_get(3).map_err(get_err)?;
        a.event_count = r.try_get(4).map_err(get_err)?;
    }
    let ids: Vec<TouchId> = found.iter().flat_map(|(f, l)| [*f, *l]).flatten().collect();
    if !ids.is_empty() {
        let mut conn = crate::store::db::conn(pool).await?;
        let touches = attribution::touches_by_id(&mut conn, &ids).await?;
        for ((first, last), a) in found.into_iter().zip(out.iter_mut()) {
            a.first = first.and_then(|id| touches.get(&id).cloned());
            a.last = last.and_then(|id| touches.get(&id).cloned());
        }
    }
    Ok(out)
}

/// Deliveries claimed by the statement that stores their event (active webhooks and enabled
/// platform connections): claimed for `lease` seconds, platform requests built against
/// `platform_urls`.
pub struct ClaimAtInsert<'a> {
    pub lease: f64,
    pub platform_urls: &'a queue::PlatformUrls,
}

/// Each submission's answer (in order), and the deliveries claimed at insert.
pub type BatchAnswers = (Vec<DomainResult<Outcome>>, Vec<queue::Claimed>);

/// Commits a batch of submissions and answers each one; a 200 may only follow an Ok. Keys are
/// checked in the same statement or transaction that stores the events, so a revocation
/// committed before it is always seen. `shard` is the committer's own usage-counter row.
///
/// A batch may be stored in two parts (the fast path's statement, then the exact path's
/// transaction). An `Err` means nothing was stored; once a part has committed, a failure
/// answers only the submissions it left unstored, so none of the stored ones is retried
/// (which would store it twice).
pub async fn ingest_batch(
    pool: &crate::store::db::DbPool,
    fast: &FastPath,
    subs: &[Submission],
    shard: i16,
    prefetched: Option<Prefetched>,
    direct: Option<&ClaimAtInsert<'_>>,
) -> DomainResult<BatchAnswers> {
    let (mut rules, covered) = prefetched.map_or_else(Default::default, |p| (p.book, p.covered));
    let mut missing: Vec<&[u8]> = subs
        .iter()
        .map(|s| s.key_hash.as_slice())
        .filter(|h| !covered.iter().any(|c| c.as_slice() == *h))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        rules.extend(fast.rules_for(&missing).await?);
    }
    let found = attribute(pool, fast, subs, &rules).await?;
    let (mut outcomes, claimed) =
        ingest_fast(pool, fast, subs, &found, &rules, shard, direct).await?;
    let rest: Vec<usize> = (0..subs.len()).filter(|&i| outcomes[i].is_none()).collect();
    if !rest.is_empty() {
        let rest_subs: Vec<&Submission> = rest.iter().map(|&i| &subs[i]).collect();
        let rest_found: Vec<&Attribution> = rest.iter().map(|&i| &found[i]).collect();
        let exact = match crate::store::db::conn(pool).await {
            Ok(mut conn) => ingest_exact(&mut conn, &rest_subs, &rest_found, &rules, shard).await,
            Err(e) => Err(e),
        };
        match exact {
            Ok(exact) => {
                for (&i, outcome) in rest.iter().zip(exact) {
                    outcomes[i] = Some(Ok(outcome));
                }
            }
            // Nothing of the exact path's part was stored: only its submissions fail.
            Err(e) => {
                for &i in &rest {
                    outcomes[i] = Some(Err(e.replicate()));
                }
            }
        }
    }
    let outcomes = outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(DomainError::internal("submission left unanswered"))))
        .collect();
    Ok((outcomes, claimed))
}

/// Events accepted this calendar month (UTC) by a workspace, from the quota counter.
pub async fn count_this_month(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
) -> DomainResult<i64> {
    month_usage(conn, workspace_id, month_start(Utc::now())).await
}

#[cfg(test)]
mod boundary_tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a time")
            .with_timezone(&Utc)
    }

    #[test]
    fn keyed_inserts_lock_only_around_a_months_start() {
        assert!(near_month_boundary(at("2026-12-01T00:00:00Z")));
        assert!(near_month_boundary(at("2026-12-01T00:09:59Z")));
        assert!(!near_month_boundary(at("2026-12-01T00:10:00Z")));
        assert!(!near_month_boundary(at("2026-12-15T12:00:00Z")));
        assert!(!near_month_boundary(at("2026-12-31T23:49:59Z")));
        assert!(near_month_boundary(at("2026-12-31T23:50:00Z")));
        assert!(near_month_boundary(at("2026-12-31T23:59:59.999Z")));
        assert!(near_month_boundary(at("2027-02-28T23:55:00Z")));
    }
}
