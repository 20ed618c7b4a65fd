//! The delivery queue: which webhooks an arriving event fires (planned before its batch commits,
//! inserted in the same statement or transaction as the event), how workers claim due
//! deliveries (`FOR UPDATE SKIP LOCKED`, a lease pushed into `next_attempt_at`), and how each
//! attempt is recorded, retried, held or given up.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Float8, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::attribution::Attribution;
use crate::conditions::{self, Condition, Facts};
use crate::error::{DomainError, DomainResult};
use crate::events::Event;
use crate::ids::{ConnectionId, DeliveryId, EventId, TouchId, WebhookId, WorkspaceId};
use crate::inbound::ParsedEvent;
use crate::paging::{Cursor, Page, PageRequest};
use crate::platforms::{self, Platform};
use crate::schema::{connections, deliveries, delivery_attempts, webhooks};
use crate::tracking::Touch;
use crate::webhooks::{expand_tokens, TokenValues, AUTO_PAUSE_AFTER};

/// The channel workers LISTEN on; a notification means "there may be due deliveries".
pub const CHANNEL: &str = "postback_deliveries";
/// Stored response excerpts are cut at this many bytes.
pub const EXCERPT_BYTES: usize = 4096;

/// What a delivery goes to: an outbound webhook, or an ad platform connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Webhook(WebhookId),
    Connection(ConnectionId, Platform),
}

/// A webhook or platform connection as the ingest path needs it: enough to decide whether an
/// event goes to it.
#[derive(Debug, Clone)]
pub struct Rule {
    pub target: Target,
    /// Webhooks: the URL with its tokens; connections: unused.
    pub url: String,
    /// Webhooks: the events filter (empty = all).
    pub events: Vec<String>,
    /// Webhooks: the conditions, all of which must hold.
    pub conditions: Vec<Condition>,
    /// Connections: Postback event name -> platform event name ("" = not sent).
    pub event_map: HashMap<String, String>,
    /// Webhooks: the signing secret (opened), for sending a delivery straight after its commit.
    pub secret: Option<String>,
    /// Webhooks: during a rotation's overlap, the previous secret (opened), which signs too.
    pub previous_secret: Option<String>,
    /// Webhooks: the custom headers (opened).
    pub headers: Arc<Vec<(String, String)>>,
    /// Connections: the settings and the credentials (sealed), for building the platform's
    /// request straight after the commit; `Null` for webhooks.
    pub settings: serde_json::Value,
    pub credentials: serde_json::Value,
}

impl Rule {
    /// Whether the rule needs the visitor's earlier conversions and events counted.
    pub fn needs_counts(&self) -> bool {
        self.conditions
            .iter()
            .any(|c| c.field == "conversionCount" || c.field == "eventCount")
    }
}

/// Rules by inbound key hash, for one batch.
pub type RuleBook = HashMap<Vec<u8>, Vec<Arc<Rule>>>;

/// The rules of every target that events under these keys may go to: the key's workspace's
/// webhooks for every domain or for the key's domain (paused ones too: their deliveries are
/// held), and the enabled platform connections of the key's domain.
pub const RULES_SQL: &str = r#"
SELECT k.key_hash, w.id, w.url, w.events, w.conditions, NULL::text AS platform, NULL::jsonb AS event_map,
       w.secret, NULL::jsonb AS settings, NULL::jsonb AS credentials,
       CASE WHEN w.previous_secret_until > now() THEN w.previous_secret END AS previous_secret,
       w.headers
FROM inbound_keys k
JOIN webhooks w ON w.workspace_id = k.workspace_id
               AND (w.domain_id IS NULL OR w.domain_id = k.domain_id)
WHERE k.key_hash = ANY($1) AND k.revoked_at IS NULL
UNION ALL
SELECT k.key_hash, c.id, c.platform, '{}'::text[], '[]'::jsonb, c.platform, c.event_map,
       NULL::text, c.settings, c.credentials, NULL::text, NULL::text
FROM inbound_keys k
JOIN connections c ON c.workspace_id = k.workspace_id AND c.domain_id = k.domain_id AND c.enabled
WHERE k.key_hash = ANY($1) AND k.revoked_at IS NULL
"#;

/// A delivery decided for an event that is about to be stored.
#[derive(Debug, Clone)]
pub struct Planned {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub target: Target,
    /// Webhooks: the URL with tokens filled in; connections: the platform's name.
    pub url: String,
}

impl Planned {
    pub fn webhook_id(&self) -> Option<uuid::Uuid> {
        match self.target {
            Target::Webhook(id) => Some(id.0),
            Target::Connection(..) => None,
        }
    }
    pub fn connection_id(&self) -> Option<uuid::Uuid> {
        match self.target {
            Target::Connection(id, _) => Some(id.0),
            Target::Webhook(_) => None,
        }
    }
}

pub fn token_values(event: &ParsedEvent, event_id: EventId) -> TokenValues {
    TokenValues {
        revenue: event.value,
        transaction: event.order_id.clone(),
        event: event.event.clone(),
        currency: event.currency.clone(),
        event_id: event_id.to_string(),
    }
}

/// The platform's name for an event under a connection's mapping, or None when it is not sent.
pub fn platform_event_name(
    platform: Platform,
    event_map: &HashMap<String, String>,
    event: &str,
) -> Option<String> {
    match event_map.get(event) {
        Some(name) if name.trim().is_empty() => None,
        Some(name) => Some(name.trim().to_owned()),
        None => platform.default_event_name(event),
    }
}

/// The deliveries an event fires: every webhook whose event filter and conditions it meets, and
/// every enabled platform connection that sends this event.
pub fn plan(
    rules: &[Arc<Rule>],
    event: &ParsedEvent,
    event_id: EventId,
    attribution: &Attribution,
) -> Vec<Planned> {
    if rules.is_empty() {
        return Vec::new();
    }
    let first = attribution.first.as_ref().map(Touch::facts);
    let last = attribution.last.as_ref().map(Touch::facts);
    let facts = Facts {
        event: &event.event,
        revenue: event.value,
        currency: &event.currency,
        conversion_count: attribution.conversion_count,
        event_count: attribution.event_count,
        first_touch: first.as_ref(),
        last_touch: last.as_ref(),
    };
    let tokens = token_values(event, event_id);
    rules
        .iter()
        .filter_map(|r| {
            match r.target {
                Target::Webhook(_) => (conditions::event_matches(&r.events, &event.event)
                    && conditions::all_hold(&r.conditions, &facts))
                .then(|| expand_tokens(&r.url, &tokens)),
                Target::Connection(_, platform) => {
                    platform_event_name(platform, &r.event_map, &event.event)
                        .map(|_| platform.as_str().to_owned())
                }
            }
            .map(|url| Planned {
                id: DeliveryId::time_ordered(),
                event_id,
                target: r.target,
                url,
            })
        })
        .collect()
}

/// Inserts planned deliveries for events stored in the current transaction (held when the
/// webhook is paused) and wakes the workers at commit. Events that were not stored (duplicates)
/// and webhooks deleted meanwhile are skipped by the joins.
pub async fn insert_planned(conn: &mut AsyncPgConnection, planned: &[Planned]) -> DomainResult<()> {
    if planned.is_empty() {
        return Ok(());
    }
    let ids: Vec<uuid::Uuid> = planned.iter().map(|p| p.id.0).collect();
    let event_ids: Vec<uuid::Uuid> = planned.iter().map(|p| p.event_id.0).collect();
    let hook_ids: Vec<Option<uuid::Uuid>> = planned.iter().map(Planned::webhook_id).collect();
    let connection_ids: Vec<Option<uuid::Uuid>> =
        planned.iter().map(Planned::connection_id).collect();
    let urls: Vec<&str> = planned.iter().map(|p| p.url.as_str()).collect();
    diesel::sql_query(
        r#"
        WITH queued AS (
            INSERT INTO deliveries (id, workspace_id, webhook_id, connection_id, event_id, url, status)
            SELECT d.id, e.workspace_id, w.id, c.id, e.id, d.url,
                   CASE WHEN w.status = 'paused' THEN 'held' ELSE 'pending' END
            FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[])
                 AS d(id, event_id, webhook_id, url, connection_id)
            JOIN events e ON e.id = d.event_id
            LEFT JOIN webhooks w ON w.id = d.webhook_id AND w.workspace_id = e.workspace_id
            LEFT JOIN connections c ON c.id = d.connection_id AND c.workspace_id = e.workspace_id
                                   AND c.enabled
            WHERE w.id IS NOT NULL OR c.id IS NOT NULL
            RETURNING status
        )
        SELECT pg_notify('postback_deliveries', '') FROM (SELECT 1 FROM queued WHERE status = 'pending' LIMIT 1) q
        "#,
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Array<SqlUuid>, _>(event_ids)
    .bind::<Array<Nullable<SqlUuid>>, _>(hook_ids)
    .bind::<Array<Text>, _>(urls)
    .bind::<Array<Nullable<SqlUuid>>, _>(connection_ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// Hands back claims that will not be attempted (an instance shutting down with deliveries it
/// claimed and never started): each becomes due now, with its attempt count as before the claim
/// (only while the claim is still the latest), and every instance's workers are woken.
/// Returns how many were released.
pub async fn release(
    conn: &mut AsyncPgConnection,
    claims: &[(DeliveryId, i32)],
) -> DomainResult<usize> {
    if claims.is_empty() {
        return Ok(0);
    }
    let released = diesel::sql_query(
        r#"
        UPDATE deliveries d
        SET next_attempt_at = now(),
            attempts = d.attempts - 1,
            round_attempts = GREATEST(d.round_attempts - 1, 0)
        FROM unnest($1::uuid[], $2::int4[]) AS r(id, attempt)
        WHERE d.id = r.id AND d.attempts = r.attempt AND d.status = 'pending'
        "#,
    )
    .bind::<Array<SqlUuid>, _>(claims.iter().map(|c| c.0 .0).collect::<Vec<_>>())
    .bind::<Array<Int4>, _>(claims.iter().map(|c| c.1).collect::<Vec<_>>())
    .execute(conn)
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

/// The body every delivery of an event carries (seed 003's shape). Built from the stored event,
/// so every attempt sends the same bytes.
#[derive(Debug, Serialize)]
pub struct Body<'a> {
    pub id: EventId,
    pub event: &'a str,
    pub workspace_id: WorkspaceId,
    pub timestamp: String,
    pub data: BodyData<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BodyData<'a> {
    pub event_id: EventId,
    pub event: &'a str,
    /// 1–10 for seed 002's custom events `event1` … `event10`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_number: Option<i64>,
    pub email: &'a str,
    pub value: Option<f64>,
    pub currency: &'a str,
    pub order_id: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub city: Option<&'a str>,
    pub country: Option<&'a str>,
    pub country_code: Option<&'a str>,
    pub state: Option<&'a str>,
    pub state_code: Option<&'a str>,
    pub guid: Option<&'a str>,
    pub product_name: Option<&'a str>,
    pub product_link: Option<&'a str>,
    pub product_image: Option<&'a str>,
    pub products: &'a serde_json::Value,
    pub domain_id: crate::ids::DomainId,
    pub timestamp: String,
    pub received_at: String,
    /// Fields the sender added beyond the documented ones, as received.
    pub custom: &'a serde_json::Value,
    /// First and last touch once attribution finds the visitor; null without a match.
    pub attribution: Option<serde_json::Value>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `data.attribution` of a delivery: the event's first and last touch, or null without a match.
fn attribution_json(first: Option<&Touch>, last: Option<&Touch>) -> Option<serde_json::Value> {
    if first.is_none() && last.is_none() {
        return None;
    }
    Some(serde_json::json!({ "firstTouch": first, "lastTouch": last }))
}

pub fn body(event: &Event, first: Option<&Touch>, last: Option<&Touch>) -> Vec<u8> {
    let b = Body {
        id: event.id,
        event: &event.event_name,
        workspace_id: event.workspace_id,
        timestamp: rfc3339(event.occurred_at),
        data: BodyData {
            event_id: event.id,
            event: &event.event_name,
            event_number: conditions::event_number(&event.event_name),
            email: &event.email,
            value: event.value,
            currency: &event.currency,
            order_id: event.order_id.as_deref(),
            first_name: event.first_name.as_deref(),
            last_name: event.last_name.as_deref(),
            phone: event.phone.as_deref(),
            ip: event.ip.as_deref(),
            city: event.city.as_deref(),
            country: event.country.as_deref(),
            country_code: event.country_code.as_deref(),
            state: event.state.as_deref(),
            state_code: event.state_code.as_deref(),
            guid: event.guid.as_deref(),
            product_name: event.product_name.as_deref(),
            product_link: event.product_link.as_deref(),
            product_image: event.product_image.as_deref(),
            products: &event.products,
            domain_id: event.domain_id,
            timestamp: rfc3339(event.occurred_at),
            received_at: rfc3339(event.received_at),
            custom: &event.payload,
            attribution: attribution_json(first, last),
        },
    };
    serde_json::to_vec(&b).unwrap_or_default()
}

/// The body the Test button sends: a sample purchase, shaped like a real delivery.
pub fn sample_body(workspace_id: WorkspaceId, domain_id: Option<crate::ids::DomainId>) -> Vec<u8> {
    let now = Utc::now();
    let event = Event {
        id: EventId(uuid::Uuid::nil()),
        workspace_id,
        domain_id: domain_id.unwrap_or(crate::ids::DomainId(uuid::Uuid::nil())),
        key_id: None,
        event_name: "purchase".into(),
        email: "test.customer@example.com".into(),
        payload: serde_json::json!({ "test": true }),
        occurred_at: now,
        received_at: now,
        email_sha256: Vec::new(),
        value: Some(99.99),
        currency: "USD".into(),
        order_id: Some("TEST-ORDER-1001".into()),
        idempotency_key: None,
        first_name: Some("Test".into()),
        last_name: Some("Customer".into()),
        phone: None,
        ip: None,
        city: None,
        country: None,
        country_code: None,
        state: None,
        state_code: None,
        guid: None,
        product_name: Some("Sample product".into()),
        product_link: None,
        product_image: None,
        products: serde_json::json!([]),
        first_touch_id: None,
        last_touch_id: None,
    };
    body(&event, None, None)
}

/// Where each platform's API lives (moved to the platforms module).
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
        RETURNING d.id, d.workspace_id, d.webhook_id, d.connection_id, d.event_id, d.url,
                  d.attempts, d.round_attempts,
                  (SELECT w.status FROM workspaces w WHERE w.id = d.workspace_id) AS workspace_status,
                  (SELECT h.secret FROM webhooks h WHERE h.id = d.webhook_id) AS webhook_secret,
                  (SELECT h.status FROM webhooks h WHERE h.id = d.webhook_id) AS webhook_status,
                  (SELECT CASE WHEN h.previous_secret_until > now() THEN h.previous_secret END
                   FROM webhooks h WHERE h.id = d.webhook_id) AS previous_secret,
                  (SELECT h.headers FROM webhooks h WHERE h.id = d.webhook_id) AS webhook_headers
"#;

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
    use diesel_async::scoped_futures::ScopedFutureExt;
    use diesel_async::AsyncConnection;
    conn.transaction::<_, DomainError, _>(|conn| claim_in(conn, limits).scope_boxed())
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
            SELECT d.id, d.webhook_id, d.next_attempt_at FROM deliveries d
            WHERE d.status = 'pending' AND d.next_attempt_at <= now()
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
        UPDATE deliveries d
        SET next_attempt_at = now() + make_interval(secs => $2),
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
          AND w.id IN (SELECT d.webhook_id FROM deliveries d
                       WHERE d.status = 'pending' AND d.next_attempt_at <= now()
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
        let taken: Vec<ClaimRow> = diesel::sql_query(
            r#"
            WITH due AS (
                SELECT id FROM deliveries
                WHERE status = 'pending' AND next_attempt_at <= now() AND webhook_id = $1
                ORDER BY next_attempt_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED
            ),
            d AS (
                UPDATE deliveries d
                SET next_attempt_at = now() + make_interval(secs => $3),
                    attempts = d.attempts + 1,
                    round_attempts = d.round_attempts + 1
                FROM due WHERE d.id = due.id
                RETURNING d.*
            ),
            slots AS (
                INSERT INTO webhook_slots (delivery_id, attempt, webhook_id, held_until)
                SELECT d.id, d.attempts, d.webhook_id, now() + make_interval(secs => $3) FROM d
                -- The same attempt again after a hold gave its number back.
                ON CONFLICT (delivery_id, attempt)
                DO UPDATE SET started_at = now(), held_until = EXCLUDED.held_until
            )
            SELECT d.id, d.workspace_id, d.webhook_id, d.connection_id, d.event_id, d.url,
                   d.attempts, d.round_attempts,
                   (SELECT w.status FROM workspaces w WHERE w.id = d.workspace_id) AS workspace_status,
                   h.secret AS webhook_secret, h.status AS webhook_status,
                   CASE WHEN h.previous_secret_until > now() THEN h.previous_secret END AS previous_secret,
                   h.headers AS webhook_headers
            FROM d JOIN webhooks h ON h.id = d.webhook_id
            "#,
        )
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
            .filter(connections::id.eq_any(&connection_ids))
            .select((
                connections::id,
                connections::platform,
                connections::enabled,
                connections::settings,
                connections::credentials,
                connections::event_map,
            ))
            .load::<ConnectionRow>(conn)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect()
    };
    let event_ids: Vec<uuid::Uuid> = rows.iter().map(|(r, _)| r.event_id).collect();
    // One index probe per claimed id (a plain `= ANY` let the planner scan the table).
    let events: HashMap<uuid::Uuid, Event> = diesel::sql_query(
        "SELECT e.* FROM unnest($1::uuid[]) AS x(id) JOIN events e ON e.id = x.id",
    )
    .bind::<Array<SqlUuid>, _>(&event_ids)
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
    let touches = crate::attribution::touches_by_id(conn, &touch_ids).await?;
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
                            let open = |s: Option<&str>| match s.map(crate::crypto::open) {
                                Some(Ok(s)) => Ok(Some(s)),
                                None => Ok(None),
                                Some(Err(e)) => Err(e),
                            };
                            match (
                                open(r.webhook_secret.as_deref()),
                                open(r.previous_secret.as_deref()),
                                crate::webhooks::open_header_pairs(r.webhook_headers.as_deref()).ok(),
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
            slotted,
        });
    }
    if !held.is_empty() {
        diesel::update(deliveries::table.filter(deliveries::id.eq_any(held)))
            .set((
                deliveries::status.eq("held"),
                deliveries::attempts.eq(deliveries::attempts - 1),
                deliveries::round_attempts.eq(0),
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
) -> platforms::Conversion {
    let products: Vec<crate::inbound::Product> =
        serde_json::from_value(event.products.clone()).unwrap_or_default();
    let (user_agent, source_url, consent) = platforms::inbound_fields::read(&event.payload);
    platforms::Conversion {
        event_id: event.id.to_string(),
        event_name: platform_event,
        occurred_at: event.occurred_at,
        email: event.email.clone(),
        phone: event.phone.clone(),
        first_name: event.first_name.clone(),
        last_name: event.last_name.clone(),
        city: event.city.clone(),
        state_code: event.state_code.clone(),
        country_code: event.country_code.clone(),
        ip: event.ip.clone(),
        user_agent: touch.and_then(|t| t.user_agent.clone()).or(user_agent),
        value: event.value,
        currency: event.currency.clone(),
        order_id: event.order_id.clone(),
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
            let name = platform_event_name(platform, self.event_map, &event.event_name)
                .ok_or_else(|| {
                    format!(
                        "The {} connection no longer sends \"{}\" events",
                        platform.label(),
                        event.event_name
                    )
                })?;
            let settings: platforms::Settings =
                serde_json::from_value(self.settings.clone()).unwrap_or_default();
            let credentials: platforms::Credentials = crate::crypto::open_json(self.credentials)
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
                &conversion(event, name, touch),
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
    Ok(deliveries::table
        .filter(deliveries::status.eq("pending"))
        .select(diesel::dsl::min(deliveries::next_attempt_at))
        .first::<Option<DateTime<Utc>>>(conn)
        .await?)
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
    /// "succeeded", "failed" (no attempts left) or "pending" (retry at `retry_at`).
    pub outcome: &'static str,
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
/// [`AUTO_PAUSE_AFTER`].
pub async fn record(
    conn: &mut AsyncPgConnection,
    results: &[AttemptResult],
    breaker: Breaker,
) -> DomainResult<()> {
    if results.is_empty() {
        return Ok(());
    }
    platforms::holds::mark(conn, results).await?;
    if results.iter().all(|r| r.outcome != "failed") {
        record_without_give_ups(conn, results).await?;
    } else {
        record_with_give_ups(conn, results).await?;
    }
    record_breaker_and_slots(conn, results, breaker).await
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
        if r.outcome == "succeeded" {
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

/// [`record`] for a batch in which some delivery used up its attempts.
async fn record_with_give_ups(
    conn: &mut AsyncPgConnection,
    results: &[AttemptResult],
) -> DomainResult<()> {
    use diesel_async::scoped_futures::ScopedFutureExt;
    use diesel_async::AsyncConnection;
    conn.transaction::<_, DomainError, _>(|conn| {
        async move {
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
            let applied: Vec<Applied> = diesel::sql_query(
                r#"
                UPDATE deliveries d
                SET status = r.status,
                    next_attempt_at = COALESCE(r.retry_at, d.next_attempt_at),
                    last_status_code = r.code,
                    last_error = r.error,
                    completed_at = CASE WHEN r.status = 'pending' THEN NULL ELSE now() END
                FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::timestamptz[], $5::int4[], $6::text[])
                     AS r(id, attempt, status, retry_at, code, error)
                WHERE d.id = r.id AND d.attempts = r.attempt AND d.status = 'pending'
                RETURNING d.id
                "#,
            )
            .bind::<Array<SqlUuid>, _>(results.iter().map(|r| r.delivery_id.0).collect::<Vec<_>>())
            .bind::<Array<Int4>, _>(results.iter().map(|r| r.attempt).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(results.iter().map(|r| r.outcome).collect::<Vec<_>>())
            .bind::<Array<Nullable<Timestamptz>>, _>(
                results.iter().map(|r| r.retry_at).collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Int4>>, _>(
                results.iter().map(|r| r.status_code).collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Text>>, _>(
                results.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>(),
            )
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
                    "succeeded" => {
                        runs.insert(hook, (true, 0));
                    }
                    "failed" => runs.entry(hook).or_insert((false, 0)).1 += 1,
                    _ => {}
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
                crate::mail::notify::webhook_paused(conn, hook).await?;
            }
            crate::mail::notify::reconnect_needed(conn, results).await?;
            Ok(())
        }
        .scope_boxed()
    })
    .await
}

/// [`record`] for the common batch: no delivery used up its attempts, so a webhook's run of
/// failures can only be reset (by a success), never extended. One statement, in autocommit: the
/// attempt log, each delivery's new state (fenced by its attempt number, as in [`record`]), and
/// the reset of the webhooks a recorded success belongs to.
async fn record_without_give_ups(
    conn: &mut AsyncPgConnection,
    results: &[AttemptResult],
) -> DomainResult<()> {
    let ids: Vec<uuid::Uuid> = results.iter().map(|_| uuid::Uuid::now_v7()).collect();
    diesel::sql_query(
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
            -- Only while the delivery exists (it may have gone with its event meanwhile).
            WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = r.id)
        ),
        applied AS (
            UPDATE deliveries d
            SET status = r.status,
                next_attempt_at = COALESCE(r.retry_at, d.next_attempt_at),
                last_status_code = r.code,
                last_error = r.error,
                completed_at = CASE WHEN r.status = 'pending' THEN NULL ELSE now() END
            FROM r
            WHERE d.id = r.id AND d.attempts = r.attempt AND d.status = 'pending'
            RETURNING d.webhook_id, r.status
        )
        UPDATE webhooks
        SET consecutive_failures = 0, consecutive_timeouts = 0, circuit_open_until = NULL
        WHERE id IN (SELECT webhook_id FROM applied WHERE status = 'succeeded')
          AND (consecutive_failures <> 0 OR consecutive_timeouts <> 0
               OR circuit_open_until IS NOT NULL)
        "#,
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Array<SqlUuid>, _>(results.iter().map(|r| r.workspace_id.0).collect::<Vec<_>>())
    .bind::<Array<SqlUuid>, _>(results.iter().map(|r| r.delivery_id.0).collect::<Vec<_>>())
    .bind::<Array<Int4>, _>(results.iter().map(|r| r.attempt).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(results.iter().map(|r| r.started_at).collect::<Vec<_>>())
    .bind::<Array<Int4>, _>(results.iter().map(|r| r.duration_ms).collect::<Vec<_>>())
    .bind::<Array<Nullable<Int4>>, _>(results.iter().map(|r| r.status_code).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(
        results
            .iter()
            .map(|r| r.response_body.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Nullable<Text>>, _>(
        results
            .iter()
            .map(|r| r.error.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<Text>, _>(results.iter().map(|r| r.outcome).collect::<Vec<_>>())
    .bind::<Array<Nullable<Timestamptz>>, _>(results.iter().map(|r| r.retry_at).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
pub struct Delivery {
    pub id: DeliveryId,
    pub workspace_id: WorkspaceId,
    pub webhook_id: Option<WebhookId>,
    pub connection_id: Option<ConnectionId>,
    pub event_id: EventId,
    pub url: String,
    pub status: String,
    pub attempts: i32,
    pub round_attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = delivery_attempts)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    #[serde(skip)]
    pub delivery_id: DeliveryId,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// A delivery with its attempts, as the log and the API show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: DeliveryId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<WebhookId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<ConnectionId>,
    /// For platform deliveries: `googleads`, `meta` or `tiktok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<&'static str>,
    pub event_id: EventId,
    pub url: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub attempt_log: Vec<Attempt>,
}

async fn with_attempts(
    conn: &mut AsyncPgConnection,
    rows: Vec<Delivery>,
) -> DomainResult<Vec<DeliveryView>> {
    let ids: Vec<DeliveryId> = rows.iter().map(|d| d.id).collect();
    let mut attempts: HashMap<DeliveryId, Vec<Attempt>> = HashMap::new();
    if !ids.is_empty() {
        for a in delivery_attempts::table
            .filter(delivery_attempts::delivery_id.eq_any(&ids))
            .order((delivery_attempts::delivery_id, delivery_attempts::attempt))
            .select(Attempt::as_select())
            .load::<Attempt>(conn)
            .await?
        {
            attempts.entry(a.delivery_id).or_default().push(a);
        }
    }
    Ok(rows
        .into_iter()
        .map(|d| DeliveryView {
            attempt_log: attempts.remove(&d.id).unwrap_or_default(),
            id: d.id,
            webhook_id: d.webhook_id,
            platform: d
                .connection_id
                .and_then(|_| Platform::parse(&d.url))
                .map(Platform::as_str),
            connection_id: d.connection_id,
            event_id: d.event_id,
            url: d.url,
            next_attempt_at: (d.status == "pending").then_some(d.next_attempt_at),
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            completed_at: d.completed_at,
        })
        .collect())
}

/// A webhook's delivery log, newest first.
pub async fn list_for_webhook(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    webhook_id: WebhookId,
    page: PageRequest,
) -> DomainResult<Page<DeliveryView>> {
    crate::webhooks::get(conn, workspace_id, webhook_id).await?;
    let q = crate::after_cursor!(
        deliveries::table
            .filter(deliveries::workspace_id.eq(workspace_id))
            .filter(deliveries::webhook_id.eq(webhook_id))
            .select(Delivery::as_select()),
        page,
        deliveries::created_at,
        deliveries::id
    );
    let rows: Vec<Delivery> = q.load(conn).await?;
    let page = Page::from_rows(rows, page.limit, |d: &Delivery| Cursor {
        at: d.created_at,
        id: d.id.0,
    });
    let next_cursor = page.next_cursor;
    Ok(Page {
        items: with_attempts(conn, page.items).await?,
        next_cursor,
    })
}

/// An event's deliveries (one per webhook it fired).
pub async fn list_for_event(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    event_id: EventId,
) -> DomainResult<Vec<DeliveryView>> {
    let rows: Vec<Delivery> = deliveries::table
        .filter(deliveries::workspace_id.eq(workspace_id))
        .filter(deliveries::event_id.eq(event_id))
        .order(deliveries::created_at.asc())
        .select(Delivery::as_select())
        .load(conn)
        .await?;
    with_attempts(conn, rows).await
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: DeliveryId,
) -> DomainResult<DeliveryView> {
    let row: Delivery = deliveries::table
        .filter(deliveries::workspace_id.eq(workspace_id))
        .filter(deliveries::id.eq(id))
        .select(Delivery::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("delivery"))?;
    Ok(with_attempts(conn, vec![row]).await?.remove(0))
}

/// Sends a finished delivery again with a fresh round of attempts (held if the webhook is
/// paused). The same delivery id and body, so receivers can recognise it.
pub async fn redeliver(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: DeliveryId,
) -> DomainResult<DeliveryView> {
    let current = get(conn, workspace_id, id).await?;
    if current.status == "pending" {
        return Err(DomainError::Conflict(
            "This delivery is already queued; it will be sent shortly".into(),
        ));
    }
    let active: bool = match current.webhook_id {
        Some(hook) => webhooks::table
            .filter(webhooks::workspace_id.eq(workspace_id))
            .filter(webhooks::id.eq(hook))
            .select(webhooks::status.eq("active"))
            .first(conn)
            .await
            .optional()?
            .ok_or(DomainError::NotFound("webhook"))?,
        None => true,
    };
    diesel::update(
        deliveries::table
            .filter(deliveries::workspace_id.eq(workspace_id))
            .filter(deliveries::id.eq(id)),
    )
    .set((
        deliveries::status.eq(if active { "pending" } else { "held" }),
        deliveries::round_attempts.eq(0),
        deliveries::next_attempt_at.eq(diesel::dsl::now),
        deliveries::completed_at.eq(None::<DateTime<Utc>>),
    ))
    .execute(conn)
    .await?;
    if active {
        wake_workers(conn).await?;
    }
    get(conn, workspace_id, id).await
}

/// Deliveries not yet finished (pending or held), for the bench and the operations view.
pub async fn backlog(conn: &mut AsyncPgConnection) -> DomainResult<i64> {
    Ok(deliveries::table
        .filter(deliveries::status.eq_any(["pending", "held"]))
        .count()
        .get_result(conn)
        .await?)
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
