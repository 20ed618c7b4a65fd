//! The delivery queue: which webhooks an arriving event fires (planned before its batch commits,
//! inserted in the same statement or transaction as the event), how workers claim due
//! deliveries (`FOR UPDATE SKIP LOCKED`, a lease in `delivery_queue.leased_until`, which no index
//! covers, so a claim is a HOT update), and how each attempt is recorded, retried, held or given
//! up: a final outcome moves the row from `delivery_queue` to `delivery_history`.

use super::*;
use crate::states::AttemptOutcome;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Float8, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::delivery::webhooks::AUTO_PAUSE_AFTER;
use crate::error::{DomainError, DomainResult};
use crate::events::Event;
use crate::ids::{ConnectionId, DeliveryId, TouchId, WebhookId, WorkspaceId};
use crate::platforms::{self, Platform};
use crate::schema::{connections, deliveries, delivery_attempts, delivery_queue, domains};
use crate::tracking::touches::Touch;

/// The channel workers LISTEN on; a notification means "there may be due deliveries".
pub const CHANNEL: &str = "postback_deliveries";
/// Stored response excerpts are cut at this many bytes.
pub const EXCERPT_BYTES: usize = 4096;

/// Hands back claims that will not be attempted (an instance shutting down with deliveries it
/// claimed and never started): each loses its lease, with its attempt count as before the claim
/// (only while the claim is still the latest), and every instance's workers are woken.
/// Returns how many were released.
pub async fn release(
    conn: &mut AsyncPgConnection,
    claims: &[(DeliveryId, i32)],
) -> DomainResult<usize> {
    if claims.is_empty() {
        return Ok(0);
    }
    use diesel_async::AsyncConnection;
    let released = conn
        .transaction::<_, DomainError, _>(async move |conn| {
            plan_as_queue(conn).await?;
            Ok(diesel::sql_query(
                r#"
        UPDATE delivery_queue d
        SET leased_until = NULL,
            -- Claimed at insert, it was due only when the lease ran out: due now.
            next_attempt_at = LEAST(d.next_attempt_at, now()),
            attempts = d.attempts - 1,
            round_attempts = GREATEST(d.round_attempts - 1, 0)
        FROM unnest($1::uuid[], $2::int4[]) AS r(id, attempt)
        WHERE d.id = r.id AND d.attempts = r.attempt AND d.status = 'pending'
        "#,
            )
            .bind::<Array<SqlUuid>, _>(claims.iter().map(|c| c.0 .0).collect::<Vec<_>>())
            .bind::<Array<Int4>, _>(claims.iter().map(|c| c.1).collect::<Vec<_>>())
            .execute(conn)
            .await?)
        })
        .await?;
    wake_workers(conn).await?;
    Ok(released)
}

/// Tells every instance's workers to look for due deliveries (delivered at commit).
pub async fn wake_workers(conn: &mut AsyncPgConnection) -> DomainResult<()> {
    diesel::sql_query("SELECT pg_notify('postback_deliveries', '')")
        .execute(conn)
        .await?;
    Ok(())
}

pub use crate::platforms::PlatformUrls;

/// A delivery a worker has claimed, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: DeliveryId,
    pub workspace_id: WorkspaceId,
    /// The attempt number this claim makes (also the fencing token for its result).
    pub attempt: i32,
    pub round_attempt: i32,
    pub send: Send,
    /// The platform connection a platform delivery goes to (its sends are batched and limited
    /// per connection).
    pub connection_id: Option<ConnectionId>,
    /// Claimed under a rate limit, a concurrency cap or a tripped breaker: holds a row in
    /// `webhook_slots` until its result is written.
    pub slotted: bool,
}

/// What a claimed delivery sends.
#[derive(Debug, Clone)]
pub enum Send {
    Webhook {
        webhook_id: WebhookId,
        url: String,
        secret: Option<String>,
        /// During a rotation's overlap: the previous secret, which signs too.
        previous_secret: Option<String>,
        /// Custom headers, sent as they are.
        headers: Arc<Vec<(String, String)>>,
        body: Arc<Vec<u8>>,
    },
    /// The platform's request, or why it cannot be built (missing credentials, say), which
    /// fails the attempt without sending anything.
    Platform {
        platform: Platform,
        request: Result<platforms::Request, String>,
    },
}

impl Claimed {
    pub fn webhook_id(&self) -> Option<WebhookId> {
        match &self.send {
            Send::Webhook { webhook_id, .. } => Some(*webhook_id),
            Send::Platform { .. } => None,
        }
    }
}

#[derive(QueryableByName)]
struct ClaimRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    workspace_id: uuid::Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    webhook_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    connection_id: Option<uuid::Uuid>,
    #[diesel(sql_type = SqlUuid)]
    event_id: uuid::Uuid,
    #[diesel(sql_type = Timestamptz)]
    event_received_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Int4)]
    attempts: i32,
    #[diesel(sql_type = Int4)]
    round_attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    workspace_status: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    webhook_secret: Option<String>,
    /// None when the delivery is a platform's, or its webhook is gone.
    #[diesel(sql_type = Nullable<Text>)]
    webhook_status: Option<String>,
    /// During a rotation's overlap, the previous secret (sealed).
    #[diesel(sql_type = Nullable<Text>)]
    previous_secret: Option<String>,
    /// The custom headers (sealed JSON).
    #[diesel(sql_type = Nullable<Text>)]
    webhook_headers: Option<String>,
}

/// What a claim returns for each row it took.
const CLAIM_RETURNING: &str = r#"
        RETURNING d.id, d.workspace_id, d.webhook_id, d.connection_id, d.event_id,
                  d.event_received_at, d.url, d.attempts, d.round_attempts,
                  (SELECT w.status FROM workspaces w WHERE w.id = d.workspace_id) AS workspace_status,
                  (SELECT h.secret FROM webhooks h WHERE h.id = d.webhook_id) AS webhook_secret,
                  (SELECT h.status FROM webhooks h WHERE h.id = d.webhook_id) AS webhook_status,
                  (SELECT CASE WHEN h.previous_secret_until > now() THEN h.previous_secret END
                   FROM webhooks h WHERE h.id = d.webhook_id) AS previous_secret,
                  (SELECT h.headers FROM webhooks h WHERE h.id = d.webhook_id) AS webhook_headers
"#;

/// A queue row no worker holds: never claimed, or its lease ran out. (`d` names the row.)
pub const UNLEASED: &str = "(d.leased_until IS NULL OR d.leased_until <= now())";

/// The queue's statements are planned as for a queue of any size: index scans and nested loops
/// only, for the rest of the transaction. `delivery_queue` swings between empty and hundreds of
/// thousands of rows within a minute (a burst, a receiver down), faster than autovacuum
/// re-analyzes it (once a minute at best), and a fresh database has no statistics at all: on
/// stale statistics the planner took a claim's or a result's handful of rows for a large share
/// of the table and hashed the whole queue and history for every batch (0.2 to 1.2 s a
/// statement on the 2-minute bench, the queue growing by 270,000 rows before the first analyze).
/// Every lookup here has an index (by id, by primary key, the due index), so no statement hashes
/// or scans the whole queue whatever its statistics say; the join order still follows them (see
/// [`refresh_queue_statistics`]). `SET LOCAL` ends with the transaction, so it is safe behind a
/// transaction pooler.
/// (JIT is off too: a disabled plan node's cost would otherwise cross `jit_above_cost` and
/// compile the statement for nothing.)
pub const QUEUE_PLANS: &str = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; \
     SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off";

/// Takes fresh statistics of `delivery_queue`. The pinned plans still rest on the queue's size
/// as the planner knows it: when autovacuum finds the queue nearly empty in a file that a burst
/// had grown, the planner reckons a handful of rows until the next analyze, however many have
/// come since, and once (seen in a soak) put a full index scan of the queue on the outer side
/// of a result batch's join, 2 to 33 s a statement as the queue grew. The worker calls this when
/// writing a batch or claiming took longer than a second; it samples at most 30,000 rows.
pub async fn refresh_queue_statistics(conn: &mut AsyncPgConnection) -> DomainResult<()> {
    use diesel_async::SimpleAsyncConnection;
    conn.batch_execute("ANALYZE delivery_queue").await?;
    Ok(())
}

/// Applies [`QUEUE_PLANS`] to the current transaction.
pub async fn plan_as_queue(conn: &mut AsyncPgConnection) -> DomainResult<()> {
    use diesel_async::SimpleAsyncConnection;
    conn.batch_execute(QUEUE_PLANS).await?;
    Ok(())
}

/// A webhook is "governed" while it is active and has a rate limit, a concurrency cap or a
/// tripped breaker: its deliveries are claimed only by [`claim_governed`], never at insert nor
/// by the plain claim. (`w` names the webhook.)
pub const GOVERNED: &str = "(w.status = 'active' AND (w.rate_limit IS NOT NULL \
     OR w.max_in_flight IS NOT NULL OR w.circuit_open_until IS NOT NULL))";

/// A connection as the worker needs it.
#[derive(Debug, Clone, Queryable)]
struct ConnectionRow {
    id: uuid::Uuid,
    platform: String,
    enabled: bool,
    settings: serde_json::Value,
    credentials: serde_json::Value,
    event_map: serde_json::Value,
    default_country: Option<String>,
}

/// What one claim may take.
#[derive(Debug, Clone)]
pub struct ClaimLimits<'a> {
    /// Deliveries in all.
    pub limit: i64,
    /// How long the claimed deliveries stay reserved for this worker, in seconds.
    pub lease_secs: f64,
    /// The most attempts one webhook may have in flight in this worker (its fair share).
    pub share: i64,
    /// This worker's attempts in flight, per webhook.
    pub busy: &'a [(WebhookId, i64)],
    pub platform_urls: &'a PlatformUrls,
}

/// What a claim took, and when governed work held back may be sendable again.
#[derive(Debug, Default)]
pub struct Claim {
    pub claimed: Vec<Claimed>,
    /// The earliest time a governed webhook's due deliveries, held back by its rate limit or
    /// breaker, may be sent (None: nothing held back for a time; a cap frees when results come).
    pub recheck_at: Option<DateTime<Utc>>,
}

/// Claims up to `limits.limit` due deliveries for `limits.lease_secs`: another worker sees them
/// again only if this one has not recorded a result by then. Deliveries of a paused webhook are
/// held instead. No webhook gets more than its share of this worker's attempts in flight; a
/// governed webhook's deliveries are claimed within its rate limit, its concurrency cap and its
/// breaker, counted across every instance in `webhook_slots`. Platform requests are built
/// against `platform_urls`. One transaction: a claim whose rows could not be read (the
/// connection was lost half way) is undone rather than left to its lease.
pub async fn claim(conn: &mut AsyncPgConnection, limits: &ClaimLimits<'_>) -> DomainResult<Claim> {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, DomainError, _>(async move |conn| {
        plan_as_queue(conn).await?;
        claim_in(conn, limits).await
    })
    .await
}

/// The plain claim: due deliveries of webhooks that are not governed (and of platforms), the
/// oldest first, at most `share - busy` per webhook, none of a webhook at its share.
async fn claim_plain(
    conn: &mut AsyncPgConnection,
    limits: &ClaimLimits<'_>,
) -> DomainResult<Vec<ClaimRow>> {
    let full: Vec<uuid::Uuid> = limits
        .busy
        .iter()
        .filter(|(_, n)| *n >= limits.share)
        .map(|(w, _)| w.0)
        .collect();
    let busy_ids: Vec<uuid::Uuid> = limits.busy.iter().map(|(w, _)| w.0).collect();
    let busy_counts: Vec<i64> = limits.busy.iter().map(|(_, n)| *n).collect();
    let sql = format!(
        r#"
        WITH cand AS (
            SELECT d.id, d.webhook_id, d.next_attempt_at FROM delivery_queue d
            WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND {UNLEASED}
              AND (d.webhook_id IS NULL OR (
                    d.webhook_id <> ALL($3::uuid[])
                    AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id AND {GOVERNED})))
            ORDER BY d.next_attempt_at
            LIMIT $1 * 2
            FOR UPDATE OF d SKIP LOCKED
        ),
        ranked AS (
            SELECT c.id, c.webhook_id, c.next_attempt_at,
                   row_number() OVER (PARTITION BY c.webhook_id ORDER BY c.next_attempt_at) AS n
            FROM cand c
        ),
        due AS (
            SELECT r.id FROM ranked r
            LEFT JOIN unnest($4::uuid[], $5::int8[]) AS b(webhook_id, busy)
                   ON b.webhook_id = r.webhook_id
            WHERE r.webhook_id IS NULL OR r.n <= $6 - COALESCE(b.busy, 0)
            ORDER BY r.next_attempt_at
            LIMIT $1
        )
        UPDATE delivery_queue d
        SET leased_until = now() + make_interval(secs => $2),
            attempts = d.attempts + 1,
            round_attempts = d.round_attempts + 1
        FROM due WHERE d.id = due.id
        {CLAIM_RETURNING}
        "#
    );
    Ok(diesel::sql_query(sql)
        .bind::<diesel::sql_types::BigInt, _>(limits.limit)
        .bind::<Float8, _>(limits.lease_secs)
        .bind::<Array<SqlUuid>, _>(full)
        .bind::<Array<SqlUuid>, _>(busy_ids)
        .bind::<Array<diesel::sql_types::BigInt>, _>(busy_counts)
        .bind::<diesel::sql_types::BigInt, _>(limits.share)
        .load(conn)
        .await?)
}

#[derive(QueryableByName)]
struct GovernedRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Int4>)]
    rate_limit: Option<i32>,
    #[diesel(sql_type = Nullable<Int4>)]
    max_in_flight: Option<i32>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    circuit_open_until: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct SlotCounts {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    in_flight: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    recent: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest_recent: Option<DateTime<Utc>>,
    /// Started in the last 100 ms.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    burst: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest_burst: Option<DateTime<Utc>>,
}

/// A rate limit is spread over the second: at most a tenth of it (at least 1) starts in any
/// 100 ms, so a receiver never gets the whole second's allowance in one burst.
pub fn burst_of(rate: i32) -> i64 {
    (i64::from(rate) + 9) / 10
}

/// How many deliveries a governed webhook may start now, and otherwise when to look again.
fn governed_room(
    g: &GovernedRow,
    counts: &SlotCounts,
    local_room: i64,
    now: DateTime<Utc>,
) -> (i64, Option<DateTime<Utc>>) {
    let mut room = local_room;
    let mut recheck = None;
    if let Some(open_until) = g.circuit_open_until {
        if open_until > now {
            return (0, Some(open_until));
        }
        // Half-open: one probe at a time until an attempt succeeds.
        room = room.min(1 - counts.in_flight);
    }
    if let Some(cap) = g.max_in_flight {
        room = room.min(i64::from(cap) - counts.in_flight);
    }
    if let Some(rate) = g.rate_limit {
        let left = i64::from(rate) - counts.recent;
        let burst_left = burst_of(rate) - counts.burst;
        if left <= 0 {
            recheck = counts
                .oldest_recent
                .map(|t| t + chrono::Duration::seconds(1));
        } else if burst_left <= 0 {
            recheck = counts
                .oldest_burst
                .map(|t| t + chrono::Duration::milliseconds(100));
        }
        room = room.min(left).min(burst_left);
    }
    (room.max(0), recheck)
}

/// Claims for governed webhooks with due deliveries, each under a transaction-scoped advisory
/// lock (so two instances never count the same slots at once): at most what its rate limit
/// (starts in the last second), its concurrency cap (slots still held) and its breaker allow,
/// and no more than this worker's share.
async fn claim_governed(
    conn: &mut AsyncPgConnection,
    limits: &ClaimLimits<'_>,
    mut budget: i64,
) -> DomainResult<(Vec<ClaimRow>, Option<DateTime<Utc>>)> {
    let governed: Vec<GovernedRow> = diesel::sql_query(format!(
        r#"
        SELECT w.id, w.rate_limit, w.max_in_flight, w.circuit_open_until
        FROM webhooks w
        WHERE {GOVERNED}
          AND w.id IN (SELECT d.webhook_id FROM delivery_queue d
                       WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND {UNLEASED}
                         AND d.webhook_id IS NOT NULL)
        "#
    ))
    .load(conn)
    .await?;
    let mut rows = Vec::new();
    let mut recheck_at: Option<DateTime<Utc>> = None;
    let mut soonest = |t: Option<DateTime<Utc>>| {
        if let Some(t) = t {
            recheck_at = Some(recheck_at.map_or(t, |r: DateTime<Utc>| r.min(t)));
        }
    };
    for g in governed {
        if budget <= 0 {
            break;
        }
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = Bool)]
            locked: bool,
        }
        let lock: Locked = diesel::sql_query(
            "SELECT pg_try_advisory_xact_lock(1812, hashtext($1::text)) AS locked",
        )
        .bind::<SqlUuid, _>(g.id)
        .get_result(conn)
        .await?;
        if !lock.locked {
            // Another instance is claiming for it right now; look again shortly.
            soonest(Some(Utc::now() + chrono::Duration::seconds(1)));
            continue;
        }
        let counts: SlotCounts = diesel::sql_query(
            r#"
            WITH gone AS (
                DELETE FROM webhook_slots
                WHERE webhook_id = $1 AND held_until <= now()
                  AND started_at <= now() - interval '1 second'
            )
            SELECT count(*) FILTER (WHERE held_until > now()) AS in_flight,
                   count(*) FILTER (WHERE started_at > now() - interval '1 second') AS recent,
                   min(started_at) FILTER (WHERE started_at > now() - interval '1 second') AS oldest_recent,
                   count(*) FILTER (WHERE started_at > now() - interval '100 milliseconds') AS burst,
                   min(started_at) FILTER (WHERE started_at > now() - interval '100 milliseconds') AS oldest_burst
            FROM webhook_slots WHERE webhook_id = $1
            "#,
        )
        .bind::<SqlUuid, _>(g.id)
        .get_result(conn)
        .await?;
        let busy_here = limits
            .busy
            .iter()
            .find(|(w, _)| w.0 == g.id)
            .map_or(0, |(_, n)| *n);
        let local = (limits.share - busy_here).min(budget);
        let (room, recheck) = governed_room(&g, &counts, local, Utc::now());
        // Held back by a cap: a result coming in wakes the worker; a second at most, should it
        // come in on another instance.
        soonest(recheck.or_else(|| (room <= 0).then(|| Utc::now() + chrono::Duration::seconds(1))));
        if room <= 0 {
            continue;
        }
        let taken: Vec<ClaimRow> = diesel::sql_query(format!(
            r#"
            WITH due AS (
                SELECT d.id FROM delivery_queue d
                WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND {UNLEASED}
                  AND d.webhook_id = $1
                ORDER BY d.next_attempt_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            ),
            d AS (
                UPDATE delivery_queue d
                SET leased_until = now() + make_interval(secs => $3),
                    attempts = d.attempts + 1,
                    round_attempts = d.round_attempts + 1
                FROM due WHERE d.id = due.id
                RETURNING d.*
            ),
            slots AS (
                INSERT INTO webhook_slots (workspace_id, delivery_id, attempt, webhook_id, held_until)
                SELECT d.workspace_id, d.id, d.attempts, d.webhook_id,
                       now() + make_interval(secs => $3) FROM d
                -- The same attempt again after a hold gave its number back.
                ON CONFLICT (workspace_id, delivery_id, attempt)
                DO UPDATE SET started_at = now(), held_until = EXCLUDED.held_until
            )
            SELECT d.id, d.workspace_id, d.webhook_id, d.connection_id, d.event_id,
                   d.event_received_at, d.url, d.attempts, d.round_attempts,
                   (SELECT w.status FROM workspaces w WHERE w.id = d.workspace_id) AS workspace_status,
                   h.secret AS webhook_secret, h.status AS webhook_status,
                   CASE WHEN h.previous_secret_until > now() THEN h.previous_secret END AS previous_secret,
                   h.headers AS webhook_headers
            FROM d JOIN webhooks h ON h.id = d.webhook_id
            "#
        ))
        .bind::<SqlUuid, _>(g.id)
        .bind::<diesel::sql_types::BigInt, _>(room)
        .bind::<Float8, _>(limits.lease_secs)
        .load(conn)
        .await?;
        budget -= taken.len() as i64;
        rows.extend(taken);
    }
    Ok((rows, recheck_at))
}

async fn claim_in(conn: &mut AsyncPgConnection, limits: &ClaimLimits<'_>) -> DomainResult<Claim> {
    let platform_urls = limits.platform_urls;
    let mut rows: Vec<(ClaimRow, bool)> = claim_plain(conn, limits)
        .await?
        .into_iter()
        .map(|r| (r, false))
        .collect();
    let (governed, recheck_at) =
        claim_governed(conn, limits, limits.limit - rows.len() as i64).await?;
    rows.extend(governed.into_iter().map(|r| (r, true)));
    if rows.is_empty() {
        return Ok(Claim {
            claimed: Vec::new(),
            recheck_at,
        });
    }
    let connection_ids: Vec<uuid::Uuid> =
        rows.iter().filter_map(|(r, _)| r.connection_id).collect();
    let connections: HashMap<uuid::Uuid, ConnectionRow> = if connection_ids.is_empty() {
        HashMap::new()
    } else {
        connections::table
            .left_join(
                domains::table.on(domains::id
                    .eq(connections::domain_id)
                    .and(domains::workspace_id.eq(connections::workspace_id))),
            )
            .filter(connections::id.eq_any(&connection_ids))
            .select((
                connections::id,
                connections::platform,
                connections::enabled,
                connections::settings,
                connections::credentials,
                connections::event_map,
                domains::default_country.nullable(),
            ))
            .load::<ConnectionRow>(conn)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect()
    };
    // One index probe per claimed event, in its month's partition only (a plain `= ANY` let the
    // planner scan the table).
    let events: HashMap<uuid::Uuid, Event> = diesel::sql_query(
        "SELECT e.* FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS x(workspace_id, id, at) \
         JOIN events e ON e.workspace_id = x.workspace_id AND e.id = x.id AND e.received_at = x.at",
    )
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|(r, _)| r.workspace_id).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(rows.iter().map(|(r, _)| r.event_id).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(
        rows.iter()
            .map(|(r, _)| r.event_received_at)
            .collect::<Vec<_>>(),
    )
    .load::<Event>(conn)
    .await?
    .into_iter()
    .map(|e| (e.id.0, e))
    .collect();
    let touch_ids: Vec<TouchId> = events
        .values()
        .flat_map(|e| [e.first_touch_id, e.last_touch_id])
        .flatten()
        .collect();
    let touches = crate::tracking::attribution::touches_by_id(conn, &touch_ids).await?;
    let mut bodies: HashMap<uuid::Uuid, Arc<Vec<u8>>> = HashMap::new();
    // Secrets and headers opened once per webhook.
    type Opened = Option<(Option<String>, Option<String>, Arc<Vec<(String, String)>>)>;
    let mut opened: HashMap<uuid::Uuid, Opened> = HashMap::new();
    let mut claimed = Vec::with_capacity(rows.len());
    let mut held: Vec<uuid::Uuid> = Vec::new();
    for (r, slotted) in rows {
        // The workspace was suspended: nothing new is sent; restoring it releases the row.
        if r.workspace_status.as_deref() == Some("suspended") {
            held.push(r.id);
            continue;
        }
        // Event, webhook or connection deleted meanwhile: the cascade removes the row.
        let Some(event) = events.get(&r.event_id) else {
            continue;
        };
        let send = match (r.webhook_id, r.connection_id) {
            (Some(hook_id), _) => match r.webhook_status.as_deref() {
                Some("active") => {
                    let keys = opened
                        .entry(hook_id)
                        .or_insert_with(|| {
                            let open = |s: Option<&str>| match s.map(crate::secrets::seal::open) {
                                Some(Ok(s)) => Ok(Some(s)),
                                None => Ok(None),
                                Some(Err(e)) => Err(e),
                            };
                            match (
                                open(r.webhook_secret.as_deref()),
                                open(r.previous_secret.as_deref()),
                                crate::delivery::webhooks::open_header_pairs(r.webhook_headers.as_deref()).ok(),
                            ) {
                                (Ok(s), Ok(p), Some(h)) => Some((s, p, Arc::new(h))),
                                _ => {
                                    // Another key: leave the row to its lease rather than
                                    // send it unsigned or without its headers.
                                    tracing::error!(webhook = %hook_id, "webhook secret or headers do not open");
                                    None
                                }
                            }
                        })
                        .clone();
                    let Some((secret, previous_secret, headers)) = keys else {
                        continue;
                    };
                    Send::Webhook {
                        webhook_id: WebhookId(hook_id),
                        url: r.url,
                        secret,
                        previous_secret,
                        headers,
                        body: bodies
                            .entry(r.event_id)
                            .or_insert_with(|| {
                                let touch =
                                    |id: Option<TouchId>| id.and_then(|id| touches.get(&id));
                                Arc::new(body(
                                    event,
                                    touch(event.first_touch_id),
                                    touch(event.last_touch_id),
                                ))
                            })
                            .clone(),
                    }
                }
                // Paused meanwhile: hold it (the claim does not count as an attempt).
                Some(_) => {
                    held.push(r.id);
                    continue;
                }
                None => continue,
            },
            (None, Some(connection_id)) => match connections.get(&connection_id) {
                Some(c) => {
                    let touch = |id: Option<TouchId>| id.and_then(|id| touches.get(&id));
                    let (first, last) = (touch(event.first_touch_id), touch(event.last_touch_id));
                    platform_send(c, event, first, last, platform_urls)
                }
                None => continue,
            },
            (None, None) => continue,
        };
        claimed.push(Claimed {
            id: DeliveryId(r.id),
            workspace_id: WorkspaceId(r.workspace_id),
            attempt: r.attempts,
            round_attempt: r.round_attempts,
            send,
            connection_id: r.connection_id.map(ConnectionId),
            slotted,
        });
    }
    if !held.is_empty() {
        diesel::update(delivery_queue::table.filter(delivery_queue::id.eq_any(held)))
            .set((
                delivery_queue::status.eq("held"),
                delivery_queue::attempts.eq(delivery_queue::attempts - 1),
                delivery_queue::round_attempts.eq(0),
                delivery_queue::leased_until.eq(None::<DateTime<Utc>>),
            ))
            .execute(conn)
            .await?;
    }
    Ok(Claim {
        claimed,
        recheck_at,
    })
}

/// The touch whose click a platform gets: the last touch if it carries the platform's click id,
/// else the first touch if that one does, else the last touch (for its page and browser).
pub fn click_touch<'a>(
    platform: Platform,
    first: Option<&'a Touch>,
    last: Option<&'a Touch>,
) -> Option<&'a Touch> {
    let has = |t: &Touch| platform.has_click(&touch_click(t));
    last.filter(|t| has(t))
        .or(first.filter(|t| has(t)))
        .or(last)
}

/// The plaintext conversion an adapter hashes and sends, from a stored event and its touch.
pub fn conversion(
    event: &Event,
    platform_event: String,
    touch: Option<&Touch>,
    default_country: Option<&str>,
) -> platforms::Conversion {
    let products = event.fields.products();
    let (user_agent, source_url, consent) = platforms::inbound_fields::read(&event.payload);
    let ids = platforms::inbound_fields::read_ids(&event.payload);
    platforms::Conversion {
        event_id: event.id.to_string(),
        event_name: platform_event,
        occurred_at: event.fields.occurred_at,
        email: event.fields.email.clone(),
        phone: event.fields.phone.clone(),
        first_name: event.fields.first_name.clone(),
        last_name: event.fields.last_name.clone(),
        city: event.fields.city.clone(),
        state_code: event.fields.state_code.clone(),
        country_code: event.fields.country_code.clone(),
        ip: event.fields.ip.clone(),
        user_agent: touch.and_then(|t| t.user_agent.clone()).or(user_agent),
        value: event.fields.value,
        currency: event.fields.currency.clone(),
        order_id: event.fields.order_id.clone(),
        products: products
            .into_iter()
            .map(|p| platforms::Product {
                id: p.id,
                name: p.name,
                price: p.price,
                quantity: p.quantity,
            })
            .collect(),
        click: touch.map(touch_click).unwrap_or_default(),
        source_url,
        consent,
        fbp: ids.fbp,
        ttp: ids.ttp,
        external_id: ids.external_id,
        default_country: default_country.map(str::to_owned),
    }
}

/// A touch's click ids, time, page and referrer.
fn touch_click(t: &Touch) -> platforms::Click {
    platforms::Click {
        gclid: t.gclid.clone(),
        gbraid: t.gbraid.clone(),
        wbraid: t.wbraid.clone(),
        fbclid: t.fbclid.clone(),
        ttclid: t.ttclid.clone(),
        clicked_at: Some(t.occurred_at),
        landing_page: t.landing_page.clone(),
        referrer: t.referrer.clone(),
    }
}

fn platform_send(
    c: &ConnectionRow,
    event: &Event,
    first: Option<&Touch>,
    last: Option<&Touch>,
    urls: &PlatformUrls,
) -> Send {
    let Some(platform) = Platform::parse(&c.platform) else {
        return Send::Platform {
            platform: Platform::Meta,
            request: Err(format!("unknown platform {}", c.platform)),
        };
    };
    if !c.enabled {
        return Send::Platform {
            platform,
            request: Err(format!(
                "The {} connection was disabled before this was sent",
                platform.label()
            )),
        };
    }
    let event_map: HashMap<String, String> =
        serde_json::from_value(c.event_map.clone()).unwrap_or_default();
    let connection = PlatformConnection {
        platform,
        event_map: &event_map,
        settings: &c.settings,
        credentials: &c.credentials,
        default_country: c.default_country.as_deref(),
    };
    connection.send(event, first, last, urls)
}

/// An enabled platform connection as a request is built from it.
pub struct PlatformConnection<'a> {
    pub platform: Platform,
    /// Postback event name -> platform event name ("" = not sent).
    pub event_map: &'a HashMap<String, String>,
    pub settings: &'a serde_json::Value,
    /// Sealed with the server's key, as stored.
    pub credentials: &'a serde_json::Value,
    /// The domain's default country (phone numbers without a country code).
    pub default_country: Option<&'a str>,
}

impl PlatformConnection<'_> {
    /// The request for a stored event and its touches, or why it cannot be built (which fails
    /// the attempt without sending anything).
    pub fn send(
        &self,
        event: &Event,
        first: Option<&Touch>,
        last: Option<&Touch>,
        urls: &PlatformUrls,
    ) -> Send {
        let platform = self.platform;
        let request = (|| {
            let name =
                platforms::platform_event_name(platform, self.event_map, &event.fields.event_name)
                    .ok_or_else(|| {
                        format!(
                            "The {} connection no longer sends \"{}\" events",
                            platform.label(),
                            event.fields.event_name
                        )
                    })?;
            let settings: platforms::Settings =
                serde_json::from_value(self.settings.clone()).unwrap_or_default();
            let credentials: platforms::Credentials =
                crate::secrets::seal::open_json(self.credentials)
                    .ok()
                    .and_then(|v| serde_json::from_value(v).ok())
                    .ok_or_else(|| {
                        format!(
                            "The {} credentials do not open with this server's POSTBACK_SECRET_KEY",
                            platform.label()
                        )
                    })?;
            let touch = click_touch(platform, first, last);
            platforms::build_at(
                platform,
                urls,
                &settings,
                &credentials,
                &conversion(event, name, touch, self.default_country),
                Utc::now(),
            )
        })();
        Send::Platform { platform, request }
    }
}

/// When the earliest pending delivery not due yet falls due, if any. (Deliveries due already
/// that a claim left are held back by a share, a limit or a breaker; what frees them wakes the
/// worker.)
pub async fn next_due(conn: &mut AsyncPgConnection) -> DomainResult<Option<DateTime<Utc>>> {
    // Rows already due count too: one that became due after the claim looked must not wait for
    // the idle check (the claimer waits at least a moment when what is due cannot be claimed
    // yet: a webhook at its share, a rate limit or breaker holding it back).
    // A claimed row is due again when its lease ends; claims take only rows due already, so the
    // leased ones are all among those due now, and beyond them only the earliest counts.
    #[derive(QueryableByName)]
    struct Due {
        #[diesel(sql_type = Nullable<Timestamptz>)]
        at: Option<DateTime<Utc>>,
    }
    let due: Due = diesel::sql_query(
        r#"
        SELECT min(s.at) AS at FROM (
            SELECT GREATEST(next_attempt_at, leased_until) AS at FROM delivery_queue
            WHERE status = 'pending' AND next_attempt_at <= now()
            UNION ALL
            (SELECT next_attempt_at FROM delivery_queue
             WHERE status = 'pending' AND next_attempt_at > now()
             ORDER BY next_attempt_at LIMIT 1)
        ) s
        "#,
    )
    .get_result(conn)
    .await?;
    Ok(due.at)
}

/// What happened to one attempt, and what comes next.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub delivery_id: DeliveryId,
    pub workspace_id: WorkspaceId,
    /// Webhook deliveries count towards the webhook's run of failures; platform ones do not.
    pub webhook_id: Option<WebhookId>,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub outcome: AttemptOutcome,
    pub retry_at: Option<DateTime<Utc>>,
    /// The receiver did not answer within the timeout (counts towards the breaker).
    pub timed_out: bool,
    /// The claim held a row in `webhook_slots`, freed now.
    pub slotted: bool,
    /// The platform refused the connection's authorization: the delivery is held and its
    /// connection marked "Reconnect needed" with this reason ([`platforms::holds`]).
    pub reconnect: Option<String>,
}

/// The circuit breaker: after `after` attempts in a row to one webhook time out, nothing is
/// sent to it for `pause`; then one probe at a time, until an attempt succeeds (which closes it)
/// or a probe times out (which opens it for another pause).
#[derive(Debug, Clone, Copy)]
pub struct Breaker {
    pub after: i32,
    pub pause: std::time::Duration,
}

/// Timeouts in a row that trip the breaker.
pub const BREAKER_AFTER: i32 = 5;

/// Records a batch of attempts: the attempt log, each delivery's new state (only if its claim is
/// still the latest: a result that comes back after its lease ran out and another worker took
/// over is logged but does not overwrite), and each webhook's run of failures, pausing it at
/// [`AUTO_PAUSE_AFTER`]. The common batch (no delivery used up its attempts) runs on
/// `prepared` when the recorder has it.
pub async fn record(
    conn: &mut AsyncPgConnection,
    results: &[AttemptResult],
    breaker: Breaker,
    prepared: Option<&RecordPath>,
) -> DomainResult<()> {
    if results.is_empty() {
        return Ok(());
    }
    let cleaned: Vec<AttemptResult>;
    let results = if results.iter().any(has_unstorable) {
        cleaned = results.iter().cloned().map(scrubbed).collect();
        &cleaned
    } else {
        results
    };
    super::holds::mark(conn, results).await?;
    super::platform_status::track(conn, results).await?;
    if results.iter().all(|r| r.outcome != AttemptOutcome::Failed) {
        record_without_give_ups(conn, results, prepared).await?;
    } else {
        record_with_give_ups(conn, results).await?;
    }
    record_breaker_and_slots(conn, results, breaker).await
}

/// Whether a result carries text PostgreSQL cannot store ([`crate::text`]), which a receiver's
/// answer (its body, or a platform's error message) may hold. Stored as it is, it would fail the
/// whole batch of results, and every retry of it, so that nothing more was recorded.
fn has_unstorable(r: &AttemptResult) -> bool {
    [&r.response_body, &r.error, &r.reconnect]
        .into_iter()
        .flatten()
        .any(|t| !crate::text::is_storable(t))
}

/// `r` without the characters its texts cannot be stored with.
fn scrubbed(mut r: AttemptResult) -> AttemptResult {
    for t in [&mut r.response_body, &mut r.error, &mut r.reconnect]
        .into_iter()
        .flatten()
    {
        crate::text::scrub_owned(t);
    }
    r
}

/// Frees the slots of governed attempts, and moves each webhook's breaker: a run of timeouts
/// (after its last success in this batch) extends the webhook's count, tripping the breaker at
/// `breaker.after` (a success was already recorded as a reset).
async fn record_breaker_and_slots(
    conn: &mut AsyncPgConnection,
    results: &[AttemptResult],
    breaker: Breaker,
) -> DomainResult<()> {
    let slotted: Vec<&AttemptResult> = results.iter().filter(|r| r.slotted).collect();
    if !slotted.is_empty() {
        diesel::sql_query(
            r#"
            UPDATE webhook_slots s SET held_until = now()
            FROM unnest($1::uuid[], $2::int4[]) AS r(id, attempt)
            WHERE s.delivery_id = r.id AND s.attempt = r.attempt
            "#,
        )
        .bind::<Array<SqlUuid>, _>(slotted.iter().map(|r| r.delivery_id.0).collect::<Vec<_>>())
        .bind::<Array<Int4>, _>(slotted.iter().map(|r| r.attempt).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    }
    if !results.iter().any(|r| r.timed_out) {
        return Ok(());
    }
    // Per webhook, in arrival order: (a success came first, timeouts after the last success).
    let mut runs: HashMap<WebhookId, (bool, i32)> = HashMap::new();
    for r in results {
        let Some(hook) = r.webhook_id else {
            continue;
        };
        if r.outcome == AttemptOutcome::Succeeded {
            runs.insert(hook, (true, 0));
        } else if r.timed_out {
            runs.entry(hook).or_insert((false, 0)).1 += 1;
        }
    }
    for (hook, (reset, timeouts)) in runs.into_iter().filter(|(_, (_, n))| *n > 0) {
        diesel::sql_query(
            r#"
            UPDATE webhooks
            SET consecutive_timeouts = n.count,
                circuit_open_until = CASE WHEN n.count >= $4
                                          THEN now() + make_interval(secs => $5)
                                          ELSE circuit_open_until END
            FROM (SELECT CASE WHEN $2 THEN $3 ELSE consecutive_timeouts + $3 END AS count
                  FROM webhooks WHERE id = $1) n
            WHERE id = $1
            "#,
        )
        .bind::<SqlUuid, _>(hook.0)
        .bind::<Bool, _>(reset)
        .bind::<Int4, _>(timeouts)
        .bind::<Int4, _>(breaker.after)
        .bind::<Float8, _>(breaker.pause.as_secs_f64())
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Applies a batch of outcomes, given as a CTE `r` (workspace_id, id, attempt, status, retry_at,
/// code, error), to the deliveries whose claim is still the latest (attempt number, pending): a
/// final one moves the row from the queue to history, a retry schedules the queue row again
/// (this changes `next_attempt_at`, which the due index covers: not a HOT update). Ends with
/// the CTE `applied` (id, webhook_id, status) of the rows changed.
const APPLY_OUTCOMES: &str = r#"
        moved AS (
            DELETE FROM delivery_queue d USING r
            WHERE d.workspace_id = r.workspace_id AND d.id = r.id AND d.attempts = r.attempt
              AND d.status = 'pending' AND r.status <> 'pending'
            RETURNING d.*, r.status AS outcome, r.code, r.error
        ),
        finished AS (
            INSERT INTO delivery_history (id, workspace_id, webhook_id, event_id, url, status,
                                          attempts, round_attempts, next_attempt_at,
                                          last_status_code, last_error, created_at, completed_at,
                                          connection_id, recovery_id, event_received_at)
            SELECT id, workspace_id, webhook_id, event_id, url, outcome, attempts, round_attempts,
                   next_attempt_at, code, error, created_at, now(), connection_id, recovery_id,
                   event_received_at
            FROM moved
            RETURNING id, webhook_id, status
        ),
        retried AS (
            UPDATE delivery_queue d
            SET next_attempt_at = COALESCE(r.retry_at, d.next_attempt_at),
                leased_until = CASE WHEN r.retry_at IS NULL THEN d.leased_until END,
                last_status_code = r.code,
                last_error = r.error
            FROM r
            WHERE d.workspace_id = r.workspace_id AND d.id = r.id AND d.attempts = r.attempt
              AND d.status = 'pending' AND r.status = 'pending'
            RETURNING d.id, d.webhook_id, d.status
        ),
        applied AS (SELECT * FROM finished UNION ALL SELECT * FROM retried)
"#;

/// [`record`] for a batch in which some delivery used up its attempts.
async fn record_with_give_ups(
    conn: &mut AsyncPgConnection,
    results: &[AttemptResult],
) -> DomainResult<()> {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, DomainError, _>(async move |conn| {
            plan_as_queue(conn).await?;
            // An attempt is logged only while its delivery exists (it may have gone with its
            // event meanwhile; nothing else removes an attempt whose delivery is gone).
            let existing: std::collections::HashSet<DeliveryId> = deliveries::table
                .filter(deliveries::id.eq_any(results.iter().map(|r| r.delivery_id)))
                .select(deliveries::id)
                .load::<DeliveryId>(conn)
                .await?
                .into_iter()
                .collect();
            let rows: Vec<_> = results
                .iter()
                .filter(|r| existing.contains(&r.delivery_id))
                .map(|r| {
                    (
                        delivery_attempts::id.eq(uuid::Uuid::now_v7()),
                        delivery_attempts::workspace_id.eq(r.workspace_id),
                        delivery_attempts::delivery_id.eq(r.delivery_id),
                        delivery_attempts::attempt.eq(r.attempt),
                        delivery_attempts::started_at.eq(r.started_at),
                        delivery_attempts::duration_ms.eq(r.duration_ms),
                        delivery_attempts::status_code.eq(r.status_code),
                        delivery_attempts::response_body.eq(r.response_body.as_deref()),
                        delivery_attempts::error.eq(r.error.as_deref()),
                    )
                })
                .collect();
            diesel::insert_into(delivery_attempts::table)
                .values(rows)
                .execute(conn)
                .await?;

            #[derive(QueryableByName)]
            struct Applied {
                #[diesel(sql_type = SqlUuid)]
                id: uuid::Uuid,
            }
            let applied: Vec<Applied> = diesel::sql_query(format!(
                r#"
                WITH r AS (
                    SELECT * FROM unnest($7::uuid[], $1::uuid[], $2::int4[], $3::text[],
                                         $4::timestamptz[], $5::int4[], $6::text[])
                        AS t(workspace_id, id, attempt, status, retry_at, code, error)
                ),
                {APPLY_OUTCOMES}
                SELECT id FROM applied
                "#
            ))
            .bind::<Array<SqlUuid>, _>(results.iter().map(|r| r.delivery_id.0).collect::<Vec<_>>())
            .bind::<Array<Int4>, _>(results.iter().map(|r| r.attempt).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(
                results.iter().map(|r| r.outcome.status().as_str()).collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Timestamptz>>, _>(
                results.iter().map(|r| r.retry_at).collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Int4>>, _>(
                results.iter().map(|r| r.status_code).collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Text>>, _>(
                results.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>(),
            )
            .bind::<Array<SqlUuid>, _>(results.iter().map(|r| r.workspace_id.0).collect::<Vec<_>>())
            .load(conn)
            .await?;
            let applied: std::collections::HashSet<uuid::Uuid> =
                applied.into_iter().map(|a| a.id).collect();

            // Per webhook, in arrival order: a success resets the run, a delivery that used up
            // its attempts extends it. (reset, failures after the last success)
            let mut runs: HashMap<WebhookId, (bool, i32)> = HashMap::new();
            for r in results.iter().filter(|r| applied.contains(&r.delivery_id.0)) {
                let Some(hook) = r.webhook_id else {
                    continue;
                };
                match r.outcome {
                    AttemptOutcome::Succeeded => {
                        runs.insert(hook, (true, 0));
                    }
                    AttemptOutcome::Failed => runs.entry(hook).or_insert((false, 0)).1 += 1,
                    AttemptOutcome::Retry => {}
                }
            }
            for (hook, (reset, failures)) in runs {
                diesel::sql_query(
                    r#"
                    UPDATE webhooks
                    SET consecutive_failures = n.count,
                        consecutive_timeouts = CASE WHEN $2 THEN 0 ELSE consecutive_timeouts END,
                        circuit_open_until = CASE WHEN $2 THEN NULL ELSE circuit_open_until END,
                        status = CASE WHEN n.count >= $4 THEN 'paused' ELSE status END,
                        paused_reason = CASE WHEN n.count >= $4 AND status = 'active'
                                             THEN 'Paused automatically after ' || $4 || ' consecutive failed deliveries'
                                             ELSE paused_reason END,
                        updated_at = CASE WHEN n.count >= $4 AND status = 'active' THEN now() ELSE updated_at END
                    FROM (SELECT CASE WHEN $2 THEN $3 ELSE consecutive_failures + $3 END AS count
                          FROM webhooks WHERE id = $1) n
                    WHERE id = $1 AND (consecutive_failures IS DISTINCT FROM n.count
                                       OR ($2 AND (consecutive_timeouts <> 0
                                                   OR circuit_open_until IS NOT NULL)))
                    "#,
                )
                .bind::<SqlUuid, _>(hook.0)
                .bind::<Bool, _>(reset)
                .bind::<Int4, _>(failures)
                .bind::<Int4, _>(AUTO_PAUSE_AFTER)
                .execute(conn)
                .await?;
                super::notify::webhook_paused(conn, hook).await?;
            }
            super::notify::reconnect_needed(conn, results).await?;
            Ok(())
        })
    .await
}

/// The statement of [`record_without_give_ups`]: the attempt log, each delivery's new state
/// (fenced by its attempt number, as in [`record`]), and the reset of the webhooks a recorded
/// success belongs to. Parameters as [`RecordParams`] binds them.
fn record_sql() -> String {
    format!(
        r#"
        WITH r AS (
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int4[], $5::timestamptz[],
                                 $6::int4[], $7::int4[], $8::text[], $9::text[], $10::text[],
                                 $11::timestamptz[])
                AS t(attempt_id, workspace_id, id, attempt, started_at, duration_ms, code, body,
                     error, status, retry_at)
        ),
        logged AS (
            INSERT INTO delivery_attempts (id, workspace_id, delivery_id, attempt, started_at,
                                           duration_ms, status_code, response_body, error)
            SELECT attempt_id, workspace_id, id, attempt, started_at, duration_ms, code, body, error
            FROM r
            -- Only while the delivery exists (it may have gone with its event meanwhile):
            -- in the queue as a rule, by primary key, and only otherwise in history.
            WHERE EXISTS (SELECT 1 FROM delivery_queue q
                          WHERE q.workspace_id = r.workspace_id AND q.id = r.id)
               OR EXISTS (SELECT 1 FROM delivery_history h
                          WHERE h.workspace_id = r.workspace_id AND h.id = r.id)
        ),
        {APPLY_OUTCOMES}
        UPDATE webhooks
        SET consecutive_failures = 0, consecutive_timeouts = 0, circuit_open_until = NULL
        WHERE id IN (SELECT webhook_id FROM applied WHERE status = 'succeeded')
          AND (consecutive_failures <> 0 OR consecutive_timeouts <> 0
               OR circuit_open_until IS NOT NULL)
        "#
    )
}

/// [`record_sql`]'s parameters, column by column.
struct RecordParams<'a> {
    attempt_ids: Vec<uuid::Uuid>,
    workspaces: Vec<uuid::Uuid>,
    deliveries: Vec<uuid::Uuid>,
    attempts: Vec<i32>,
    started: Vec<DateTime<Utc>>,
    durations: Vec<i32>,
    codes: Vec<Option<i32>>,
    bodies: Vec<Option<&'a str>>,
    errors: Vec<Option<&'a str>>,
    statuses: Vec<&'static str>,
    retry_at: Vec<Option<DateTime<Utc>>>,
}

impl<'a> RecordParams<'a> {
    fn of(results: &'a [AttemptResult]) -> Self {
        Self {
            attempt_ids: results.iter().map(|_| uuid::Uuid::now_v7()).collect(),
            workspaces: results.iter().map(|r| r.workspace_id.0).collect(),
            deliveries: results.iter().map(|r| r.delivery_id.0).collect(),
            attempts: results.iter().map(|r| r.attempt).collect(),
            started: results.iter().map(|r| r.started_at).collect(),
            durations: results.iter().map(|r| r.duration_ms).collect(),
            codes: results.iter().map(|r| r.status_code).collect(),
            bodies: results.iter().map(|r| r.response_body.as_deref()).collect(),
            errors: results.iter().map(|r| r.error.as_deref()).collect(),
            statuses: results
                .iter()
                .map(|r| r.outcome.status().as_str())
                .collect(),
            retry_at: results.iter().map(|r| r.retry_at).collect(),
        }
    }
}

/// [`record`] for the common batch: no delivery used up its attempts, so a webhook's run of
/// failures can only be reset (by a success), never extended. One statement, [`record_sql`] (in
/// a transaction only for [`QUEUE_PLANS`]), prepared on `prepared` when the recorder has it.
async fn record_without_give_ups(
    conn: &mut AsyncPgConnection,
    results: &[AttemptResult],
    prepared: Option<&RecordPath>,
) -> DomainResult<()> {
    let p = RecordParams::of(results);
    if let Some(path) = prepared {
        return path.record(&p).await;
    }
    use diesel_async::AsyncConnection;
    conn.transaction::<_, DomainError, _>(async move |conn| {
        plan_as_queue(conn).await?;
        diesel::sql_query(record_sql())
            .bind::<Array<SqlUuid>, _>(p.attempt_ids)
            .bind::<Array<SqlUuid>, _>(p.workspaces)
            .bind::<Array<SqlUuid>, _>(p.deliveries)
            .bind::<Array<Int4>, _>(p.attempts)
            .bind::<Array<Timestamptz>, _>(p.started)
            .bind::<Array<Int4>, _>(p.durations)
            .bind::<Array<Nullable<Int4>>, _>(p.codes)
            .bind::<Array<Nullable<Text>>, _>(p.bodies)
            .bind::<Array<Nullable<Text>>, _>(p.errors)
            .bind::<Array<Text>, _>(p.statuses)
            .bind::<Array<Nullable<Timestamptz>>, _>(p.retry_at)
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

/// A connection the delivery recorder keeps for itself, with [`record_sql`] prepared once. A
/// statement sent through the pool is parsed, analyzed and planned afresh every time (diesel
/// prepares no raw SQL), and planning this one, with its view of every history partition, took
/// 0.9 ms a batch on the bench (`pg_stat_statements` with `track_planning`): as long as running
/// it. Prepared, PostgreSQL plans it once. Behind a transaction pooler the connection's
/// [`crate::store::pooler::Wire`] re-prepares it where needed, as for the inbound fast path.
pub struct RecordPath {
    client: tokio_postgres::Client,
    statement: tokio_postgres::Statement,
}

impl RecordPath {
    pub async fn connect(database_url: &str) -> DomainResult<Self> {
        let client = crate::store::pg::connect_kept(database_url, "delivery recorder").await?;
        let statement = client
            .prepare(&record_sql())
            .await
            .map_err(|e| crate::error::pg_error("preparing the delivery recorder", e))?;
        Ok(Self { client, statement })
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    async fn record(&self, p: &RecordParams<'_>) -> DomainResult<()> {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 11] = [
            &p.attempt_ids,
            &p.workspaces,
            &p.deliveries,
            &p.attempts,
            &p.started,
            &p.durations,
            &p.codes,
            &p.bodies,
            &p.errors,
            &p.statuses,
            &p.retry_at,
        ];
        crate::store::pg::in_transaction(&self.client, &format!("BEGIN; {QUEUE_PLANS}"), async {
            self.client.execute(&self.statement, &params).await
        })
        .await
        .map_err(|e| crate::error::pg_error("recording delivery attempts", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod governed_tests {
    use super::*;

    fn hook(rate: Option<i32>, cap: Option<i32>, open: Option<DateTime<Utc>>) -> GovernedRow {
        GovernedRow {
            id: uuid::Uuid::nil(),
            rate_limit: rate,
            max_in_flight: cap,
            circuit_open_until: open,
        }
    }

    fn counts(in_flight: i64, recent: i64, burst: i64, at: DateTime<Utc>) -> SlotCounts {
        SlotCounts {
            in_flight,
            recent,
            oldest_recent: Some(at),
            burst,
            oldest_burst: Some(at),
        }
    }

    #[test]
    fn room_under_limits_caps_and_the_breaker() {
        let now = Utc::now();
        let at = now - chrono::Duration::milliseconds(400);
        // A cap of 5 with 3 in flight leaves 2.
        assert_eq!(
            governed_room(&hook(None, Some(5), None), &counts(3, 0, 0, at), 64, now).0,
            2
        );
        // 100/s: at most 10 per 100 ms; with 10 started in the last 100 ms, none until they age.
        let (room, recheck) = governed_room(
            &hook(Some(100), None, None),
            &counts(0, 10, 10, at),
            64,
            now,
        );
        assert_eq!(room, 0);
        assert_eq!(recheck, Some(at + chrono::Duration::milliseconds(100)));
        // A whole second's allowance used: none until the oldest start is a second old.
        let (room, recheck) = governed_room(
            &hook(Some(100), None, None),
            &counts(0, 100, 0, at),
            64,
            now,
        );
        assert_eq!(room, 0);
        assert_eq!(recheck, Some(at + chrono::Duration::seconds(1)));
        // The worker's share bounds it too.
        assert_eq!(
            governed_room(&hook(None, Some(500), None), &counts(0, 0, 0, at), 64, now).0,
            64
        );
        // Breaker open: nothing until it ends; then one probe at a time.
        let until = now + chrono::Duration::seconds(5);
        assert_eq!(
            governed_room(
                &hook(None, None, Some(until)),
                &counts(0, 0, 0, at),
                64,
                now
            ),
            (0, Some(until))
        );
        let ended = now - chrono::Duration::seconds(1);
        assert_eq!(
            governed_room(
                &hook(None, None, Some(ended)),
                &counts(0, 0, 0, at),
                64,
                now
            )
            .0,
            1
        );
        assert_eq!(
            governed_room(
                &hook(None, None, Some(ended)),
                &counts(1, 0, 0, at),
                64,
                now
            )
            .0,
            0
        );
        assert_eq!(burst_of(1), 1);
        assert_eq!(burst_of(15), 2);
    }
}
