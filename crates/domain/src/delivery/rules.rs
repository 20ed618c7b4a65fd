//! Routing: which webhooks and platform connections an arriving event fires. The rules are
//! read once per batch, the deliveries planned before the batch commits and inserted in the same
//! statement or transaction as the event.

use std::collections::HashMap;
use std::sync::Arc;

use diesel::sql_types::{Array, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::conditions::{self, Condition, Facts};
use crate::delivery::webhooks::{expand_tokens, TokenValues};
use crate::error::DomainResult;
use crate::events::ParsedEvent;
use crate::ids::{ConnectionId, DeliveryId, EventId, WebhookId};
use crate::platforms::{self, Platform};
use crate::tracking::attribution::Attribution;
use crate::tracking::touches::Touch;

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
    /// Connections: the domain's default country (phone numbers without a country code).
    pub default_country: Option<String>,
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
///
/// Each distinct key is looked up once by the `key_hash` index, and its workspace's webhooks and
/// connections by their primary keys (`OFFSET 0` keeps each a probe per key). Joined directly,
/// the statement's generic plan scanned every tenant's keys and webhooks, so PostgreSQL planned
/// it afresh for every batch instead: 0.3 ms a batch with 1,000 keys and webhooks stored, a
/// tenth of the machine on the prefilled bench (`docs/performance.md`).
pub const RULES_SQL: &str = r#"
WITH keys AS MATERIALIZED (
    SELECT h.hash, k.workspace_id, k.domain_id
    FROM (SELECT DISTINCT unnest($1::bytea[]) AS hash) h
    CROSS JOIN LATERAL (
        SELECT k.workspace_id, k.domain_id FROM inbound_keys k
        WHERE k.key_hash = h.hash AND k.revoked_at IS NULL
        OFFSET 0
    ) k
)
SELECT k.hash AS key_hash, w.id, w.url, w.events, w.conditions, NULL::text AS platform,
       NULL::jsonb AS event_map, w.secret, NULL::jsonb AS settings, NULL::jsonb AS credentials,
       CASE WHEN w.previous_secret_until > now() THEN w.previous_secret END AS previous_secret,
       w.headers, NULL::text AS default_country
FROM keys k
CROSS JOIN LATERAL (
    SELECT w.* FROM webhooks w
    WHERE w.workspace_id = k.workspace_id AND (w.domain_id IS NULL OR w.domain_id = k.domain_id)
    OFFSET 0
) w
UNION ALL
SELECT k.hash, c.id, c.platform, '{}'::text[], '[]'::jsonb, c.platform, c.event_map,
       NULL::text, c.settings, c.credentials, NULL::text, NULL::text, c.default_country
FROM keys k
CROSS JOIN LATERAL (
    SELECT c.*, d.default_country FROM connections c
    JOIN domains d ON d.workspace_id = k.workspace_id AND d.id = k.domain_id
    WHERE c.workspace_id = k.workspace_id AND c.domain_id = k.domain_id AND c.enabled
    OFFSET 0
) c
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
        revenue: event.fields.value,
        transaction: event.fields.order_id.clone(),
        event: event.fields.event_name.clone(),
        currency: event.fields.currency.clone(),
        event_id: event_id.to_string(),
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
        event: &event.fields.event_name,
        revenue: event.fields.value,
        currency: &event.fields.currency,
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
                Target::Webhook(_) => {
                    (conditions::event_matches(&r.events, &event.fields.event_name)
                        && conditions::all_hold(&r.conditions, &facts))
                    .then(|| expand_tokens(&r.url, &tokens))
                }
                Target::Connection(_, platform) => {
                    platforms::platform_event_name(platform, &r.event_map, &event.fields.event_name)
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
            INSERT INTO delivery_queue (id, workspace_id, webhook_id, connection_id, event_id, url,
                                        status, event_received_at)
            SELECT d.id, e.workspace_id, w.id, c.id, e.id, d.url,
                   CASE WHEN w.status = 'paused' THEN 'held' ELSE 'pending' END, e.received_at
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
