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

use crate::conditions::{self, Condition, Facts};
use crate::error::{DomainError, DomainResult};
use crate::events::Event;
use crate::ids::{DeliveryId, EventId, WebhookId, WorkspaceId};
use crate::inbound::ParsedEvent;
use crate::paging::{Cursor, Page, PageRequest};
use crate::schema::{deliveries, delivery_attempts, webhooks};
use crate::webhooks::{expand_tokens, TokenValues, AUTO_PAUSE_AFTER};

/// The channel workers LISTEN on; a notification means "there may be due deliveries".
pub const CHANNEL: &str = "postback_deliveries";
/// Stored response excerpts are cut at this many bytes.
pub const EXCERPT_BYTES: usize = 4096;

/// A webhook as the ingest path needs it: enough to decide whether an event fires it.
#[derive(Debug, Clone)]
pub struct Rule {
    pub webhook_id: WebhookId,
    pub url: String,
    pub events: Vec<String>,
    pub conditions: Vec<Condition>,
}

/// Rules by inbound key hash, for one batch.
pub type RuleBook = HashMap<Vec<u8>, Vec<Arc<Rule>>>;

/// The rules of every webhook that events under these keys may fire (the key's workspace's
/// webhooks for every domain or for the key's domain; paused ones too: their deliveries are held).
pub const RULES_SQL: &str = r#"
SELECT k.key_hash, w.id, w.url, w.events, w.conditions
FROM inbound_keys k
JOIN webhooks w ON w.workspace_id = k.workspace_id
               AND (w.domain_id IS NULL OR w.domain_id = k.domain_id)
WHERE k.key_hash = ANY($1) AND k.revoked_at IS NULL
"#;

/// A delivery decided for an event that is about to be stored.
#[derive(Debug, Clone)]
pub struct Planned {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub webhook_id: WebhookId,
    pub url: String,
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

/// The deliveries an event fires: every rule whose event filter and conditions it meets.
pub fn plan(rules: &[Arc<Rule>], event: &ParsedEvent, event_id: EventId) -> Vec<Planned> {
    if rules.is_empty() {
        return Vec::new();
    }
    // Touch facts and visitor counts join here once attribution stores them.
    let facts = Facts {
        event: &event.event,
        revenue: event.value,
        currency: &event.currency,
        ..Facts::default()
    };
    let tokens = token_values(event, event_id);
    rules
        .iter()
        .filter(|r| conditions::event_matches(&r.events, &event.event))
        .filter(|r| conditions::all_hold(&r.conditions, &facts))
        .map(|r| Planned {
            id: DeliveryId::time_ordered(),
            event_id,
            webhook_id: r.webhook_id,
            url: expand_tokens(&r.url, &tokens),
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
    let hook_ids: Vec<uuid::Uuid> = planned.iter().map(|p| p.webhook_id.0).collect();
    let urls: Vec<&str> = planned.iter().map(|p| p.url.as_str()).collect();
    diesel::sql_query(
        r#"
        WITH queued AS (
            INSERT INTO deliveries (id, workspace_id, webhook_id, event_id, url, status)
            SELECT d.id, e.workspace_id, w.id, e.id, d.url,
                   CASE WHEN w.status = 'active' THEN 'pending' ELSE 'held' END
            FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[]) AS d(id, event_id, webhook_id, url)
            JOIN events e ON e.id = d.event_id
            JOIN webhooks w ON w.id = d.webhook_id AND w.workspace_id = e.workspace_id
            RETURNING status
        )
        SELECT pg_notify('postback_deliveries', '') FROM (SELECT 1 FROM queued WHERE status = 'pending' LIMIT 1) q
        "#,
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Array<SqlUuid>, _>(event_ids)
    .bind::<Array<SqlUuid>, _>(hook_ids)
    .bind::<Array<Text>, _>(urls)
    .execute(conn)
    .await?;
    Ok(())
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

pub fn body(event: &Event) -> Vec<u8> {
    let b = Body {
        id: event.id,
        event: &event.event_name,
        workspace_id: event.workspace_id,
        timestamp: rfc3339(event.occurred_at),
        data: BodyData {
            event_id: event.id,
            event: &event.event_name,
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
            attribution: None,
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
    };
    body(&event)
}

/// A delivery a worker has claimed, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: DeliveryId,
    pub workspace_id: WorkspaceId,
    pub webhook_id: WebhookId,
    pub url: String,
    /// The attempt number this claim makes (also the fencing token for its result).
    pub attempt: i32,
    pub round_attempt: i32,
    pub secret: Option<String>,
    pub body: Arc<Vec<u8>>,
}

#[derive(QueryableByName)]
struct ClaimRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    workspace_id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    webhook_id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    event_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Int4)]
    attempts: i32,
    #[diesel(sql_type = Int4)]
    round_attempts: i32,
}

/// Claims up to `limit` due deliveries for `lease_secs`: another worker sees them again only if
/// this one has not recorded a result by then. Deliveries of a paused webhook are held instead.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    limit: i64,
    lease_secs: f64,
) -> DomainResult<Vec<Claimed>> {
    let rows: Vec<ClaimRow> = diesel::sql_query(
        r#"
        WITH due AS (
            SELECT id FROM deliveries
            WHERE status = 'pending' AND next_attempt_at <= now()
            ORDER BY next_attempt_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        )
        UPDATE deliveries d
        SET next_attempt_at = now() + make_interval(secs => $2),
            attempts = d.attempts + 1,
            round_attempts = d.round_attempts + 1
        FROM due WHERE d.id = due.id
        RETURNING d.id, d.workspace_id, d.webhook_id, d.event_id, d.url, d.attempts, d.round_attempts
        "#,
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .bind::<Float8, _>(lease_secs)
    .load(conn)
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let hook_ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.webhook_id).collect();
    let hooks: HashMap<uuid::Uuid, (Option<String>, String)> = webhooks::table
        .filter(webhooks::id.eq_any(&hook_ids))
        .select((webhooks::id, webhooks::secret, webhooks::status))
        .load::<(uuid::Uuid, Option<String>, String)>(conn)
        .await?
        .into_iter()
        .map(|(id, secret, status)| (id, (secret, status)))
        .collect();
    let event_ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.event_id).collect();
    // One index probe per claimed id (a plain `= ANY` let the planner scan the table).
    let bodies: HashMap<uuid::Uuid, Arc<Vec<u8>>> = diesel::sql_query(
        "SELECT e.* FROM unnest($1::uuid[]) AS x(id) JOIN events e ON e.id = x.id",
    )
    .bind::<Array<SqlUuid>, _>(&event_ids)
    .load::<Event>(conn)
    .await?
    .iter()
    .map(|e| (e.id.0, Arc::new(body(e))))
    .collect();
    let mut claimed = Vec::with_capacity(rows.len());
    let mut held: Vec<uuid::Uuid> = Vec::new();
    for r in rows {
        let hook = hooks.get(&r.webhook_id);
        match (hook, bodies.get(&r.event_id)) {
            (Some((secret, status)), Some(body)) if status == "active" => claimed.push(Claimed {
                id: DeliveryId(r.id),
                workspace_id: WorkspaceId(r.workspace_id),
                webhook_id: WebhookId(r.webhook_id),
                url: r.url,
                attempt: r.attempts,
                round_attempt: r.round_attempts,
                secret: secret.clone(),
                body: body.clone(),
            }),
            // Paused meanwhile: hold it (the claim does not count as an attempt). Webhook or
            // event deleted meanwhile: the cascade removes the row; nothing to send.
            (Some(_), Some(_)) => held.push(r.id),
            _ => {}
        }
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
    Ok(claimed)
}

/// When the earliest pending delivery falls due, if any.
pub async fn next_due(conn: &mut AsyncPgConnection) -> DomainResult<Option<DateTime<Utc>>> {
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
    pub webhook_id: WebhookId,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    /// "succeeded", "failed" (no attempts left) or "pending" (retry at `retry_at`).
    pub outcome: &'static str,
    pub retry_at: Option<DateTime<Utc>>,
}

/// Records a batch of attempts: the attempt log, each delivery's new state (only if its claim is
/// still the latest: a result that comes back after its lease ran out and another worker took
/// over is logged but does not overwrite), and each webhook's run of failures, pausing it at
/// [`AUTO_PAUSE_AFTER`].
pub async fn record(conn: &mut AsyncPgConnection, results: &[AttemptResult]) -> DomainResult<()> {
    if results.is_empty() {
        return Ok(());
    }
    use diesel_async::scoped_futures::ScopedFutureExt;
    use diesel_async::AsyncConnection;
    conn.transaction::<_, DomainError, _>(|conn| {
        async move {
            let rows: Vec<_> = results
                .iter()
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
                match r.outcome {
                    "succeeded" => {
                        runs.insert(r.webhook_id, (true, 0));
                    }
                    "failed" => runs.entry(r.webhook_id).or_insert((false, 0)).1 += 1,
                    _ => {}
                }
            }
            for (hook, (reset, failures)) in runs {
                diesel::sql_query(
                    r#"
                    UPDATE webhooks
                    SET consecutive_failures = n.count,
                        status = CASE WHEN n.count >= $4 THEN 'paused' ELSE status END,
                        paused_reason = CASE WHEN n.count >= $4 AND status = 'active'
                                             THEN 'Paused automatically after ' || $4 || ' consecutive failed deliveries'
                                             ELSE paused_reason END,
                        updated_at = CASE WHEN n.count >= $4 AND status = 'active' THEN now() ELSE updated_at END
                    FROM (SELECT CASE WHEN $2 THEN $3 ELSE consecutive_failures + $3 END AS count
                          FROM webhooks WHERE id = $1) n
                    WHERE id = $1 AND consecutive_failures IS DISTINCT FROM n.count
                    "#,
                )
                .bind::<SqlUuid, _>(hook.0)
                .bind::<Bool, _>(reset)
                .bind::<Int4, _>(failures)
                .bind::<Int4, _>(AUTO_PAUSE_AFTER)
                .execute(conn)
                .await?;
            }
            Ok(())
        }
        .scope_boxed()
    })
    .await
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
pub struct Delivery {
    pub id: DeliveryId,
    pub workspace_id: WorkspaceId,
    pub webhook_id: WebhookId,
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

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
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
    let active: bool = webhooks::table
        .filter(webhooks::workspace_id.eq(workspace_id))
        .filter(webhooks::id.eq(current.webhook_id))
        .select(webhooks::status.eq("active"))
        .first(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("webhook"))?;
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
