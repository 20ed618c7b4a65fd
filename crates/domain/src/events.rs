//! Stored inbound events: the batch ingest that accepts them (keys checked, quota counted,
//! duplicates recognised, all in one transaction) and the queries that show them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::error::{DomainError, DomainResult};
use crate::ids::{DomainId, EventId, KeyId, WorkspaceId};
use crate::inbound::ParsedEvent;
use crate::keys::LAST_USED_RESOLUTION;
use crate::paging::{Cursor, Page, PageRequest};
use crate::schema::{events, inbound_keys, plans, usage_counters, workspaces};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = events)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: EventId,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub domain_id: DomainId,
    #[serde(skip)]
    pub key_id: Option<KeyId>,
    #[serde(rename = "event")]
    pub event_name: String,
    pub email: String,
    pub payload: serde_json::Value,
    #[serde(rename = "timestamp")]
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    #[serde(skip)]
    pub email_sha256: Vec<u8>,
    pub value: Option<f64>,
    pub currency: String,
    pub order_id: Option<String>,
    #[serde(skip)]
    pub idempotency_key: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub ip: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub country_code: Option<String>,
    pub state: Option<String>,
    pub state_code: Option<String>,
    pub guid: Option<String>,
    pub product_name: Option<String>,
    pub product_link: Option<String>,
    pub product_image: Option<String>,
    pub products: serde_json::Value,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = events)]
struct NewEventRow {
    id: EventId,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
    key_id: Option<KeyId>,
    event_name: String,
    email: String,
    payload: serde_json::Value,
    occurred_at: DateTime<Utc>,
    email_sha256: Vec<u8>,
    value: Option<f64>,
    currency: String,
    order_id: Option<String>,
    idempotency_key: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    ip: Option<String>,
    city: Option<String>,
    country: Option<String>,
    country_code: Option<String>,
    state: Option<String>,
    state_code: Option<String>,
    guid: Option<String>,
    product_name: Option<String>,
    product_link: Option<String>,
    product_image: Option<String>,
    products: serde_json::Value,
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
    Accepted(EventId),
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

/// 10000 → "10,000".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
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

fn row_for(id: EventId, key: &KeyInfo, sub: &Submission) -> NewEventRow {
    let e = sub.event.clone();
    NewEventRow {
        id,
        workspace_id: key.workspace_id,
        domain_id: key.domain_id,
        key_id: Some(key.key_id),
        event_name: e.event,
        email: e.email,
        payload: e.payload,
        occurred_at: e.occurred_at,
        email_sha256: e.email_sha256,
        value: e.value,
        currency: e.currency,
        order_id: e.order_id,
        idempotency_key: sub.idempotency_key.clone(),
        first_name: e.first_name,
        last_name: e.last_name,
        phone: e.phone,
        ip: e.ip,
        city: e.city,
        country: e.country,
        country_code: e.country_code,
        state: e.state,
        state_code: e.state_code,
        guid: e.guid,
        product_name: e.product_name,
        product_link: e.product_link,
        product_image: e.product_image,
        products: serde_json::to_value(&e.products).unwrap_or_else(|_| serde_json::json!([])),
    }
}

/// The id of the stored event a duplicate submission matches, if any.
async fn existing_event(
    conn: &mut AsyncPgConnection,
    domain_id: DomainId,
    sub: &Submission,
) -> DomainResult<Option<EventId>> {
    if let Some(k) = &sub.idempotency_key {
        let found = events::table
            .filter(events::domain_id.eq(domain_id))
            .filter(events::idempotency_key.eq(k))
            .select(events::id)
            .first::<EventId>(conn)
            .await
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    if let Some(o) = &sub.event.order_id {
        return Ok(events::table
            .filter(events::domain_id.eq(domain_id))
            .filter(events::order_id.eq(o))
            .filter(events::event_name.eq(&sub.event.event))
            .select(events::id)
            .first::<EventId>(conn)
            .await
            .optional()?);
    }
    Ok(None)
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

/// Commits a batch of submissions in one transaction and answers each one. Keys are checked
/// inside the transaction, so a revocation committed before it is always seen. `shard` is the
/// committer's own usage-counter row.
pub async fn ingest_batch(
    conn: &mut AsyncPgConnection,
    subs: &[Submission],
    shard: i16,
) -> DomainResult<Vec<Outcome>> {
    let mut exclusive = std::collections::BTreeSet::new();
    loop {
        match try_ingest(conn, subs, shard, &exclusive).await {
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
    subs: &[Submission],
    shard: i16,
    exclusive: &std::collections::BTreeSet<WorkspaceId>,
) -> Result<Vec<Outcome>, TxError> {
    conn.transaction::<_, TxError, _>(|conn| {
        async move {
            let now = Utc::now();
            let mut hashes: Vec<Vec<u8>> = subs.iter().map(|s| s.key_hash.clone()).collect();
            hashes.sort();
            hashes.dedup();
            let keys = resolve_keys(conn, hashes).await?;

            let mut outcomes: Vec<Option<Outcome>> = vec![None; subs.len()];
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
                        let take_turns =
                            exclusive.contains(workspace_id) || quota <= 4 * QUOTA_SAFETY;
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
                    let ids: Vec<EventId> = now_batch.iter().map(|_| EventId::new()).collect();
                    let rows: Vec<NewEventRow> = now_batch
                        .iter()
                        .zip(&ids)
                        .map(|(&i, &id)| row_for(id, &keys[&subs[i].key_hash], &subs[i]))
                        .collect();
                    let inserted: Vec<EventId> = diesel::insert_into(events::table)
                        .values(&rows)
                        .on_conflict_do_nothing()
                        .returning(events::id)
                        .get_results(conn)
                        .await?;
                    let inserted: std::collections::HashSet<EventId> =
                        inserted.into_iter().collect();
                    for (&i, id) in now_batch.iter().zip(&ids) {
                        if inserted.contains(id) {
                            outcomes[i] = Some(Outcome::Accepted(*id));
                        } else {
                            let domain_id = keys[&subs[i].key_hash].domain_id;
                            let existing = existing_event(conn, domain_id, &subs[i]).await?;
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
                    outcomes[i] = Some(match existing_event(conn, k.domain_id, &subs[i]).await? {
                        Some(e) => Outcome::Duplicate(e),
                        None => Outcome::QuotaExceeded(format!(
                            "The {} plan allows {} inbound events per month",
                            k.plan_name,
                            thousands(k.quota.unwrap_or(0))
                        )),
                    });
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
        }
        .scope_boxed()
    })
    .await
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub domain_id: Option<DomainId>,
    pub event_name: Option<String>,
    pub email: Option<String>,
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    filter: &EventFilter,
    page: PageRequest,
) -> DomainResult<Page<Event>> {
    let mut q = crate::after_cursor!(
        events::table
            .filter(events::workspace_id.eq(workspace_id))
            .select(Event::as_select()),
        page,
        events::received_at,
        events::id
    );
    if let Some(d) = filter.domain_id {
        q = q.filter(events::domain_id.eq(d));
    }
    if let Some(n) = &filter.event_name {
        q = q.filter(events::event_name.eq(n.clone()));
    }
    if let Some(e) = &filter.email {
        q = q.filter(events::email.eq(e.trim().to_lowercase()));
    }
    let rows = q.load(conn).await?;
    Ok(Page::from_rows(rows, page.limit, |e: &Event| Cursor {
        at: e.received_at,
        id: e.id.0,
    }))
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: EventId,
) -> DomainResult<Event> {
    events::table
        .filter(events::workspace_id.eq(workspace_id))
        .filter(events::id.eq(id))
        .select(Event::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("event"))
}

/// Events accepted this calendar month (UTC) by a workspace, from the quota counter.
pub async fn count_this_month(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
) -> DomainResult<i64> {
    month_usage(conn, workspace_id, month_start(Utc::now())).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_separators() {
        assert_eq!(super::thousands(10000), "10,000");
        assert_eq!(super::thousands(1000000), "1,000,000");
        assert_eq!(super::thousands(999), "999");
    }
}
