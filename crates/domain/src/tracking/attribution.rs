//! Attribution (seed 000 "How Attribution Works"): when an event arrives, its email's hash finds
//! the visitor(s) that identified with it on the event's domain; the first and last of their
//! touches inside the domain's attribution window, up to the event's time, are the event's
//! first and last touch. Found once, for a whole batch, before the batch is stored, so that
//! webhook conditions on touch fields and the platform adapters see them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::error::DomainResult;
use crate::events::Event;
use crate::ids::{TouchId, WorkspaceId};
use crate::schema::touches;
use crate::tracking::touches::Touch;

/// What attribution found for one event.
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    pub first: Option<Touch>,
    pub last: Option<Touch>,
    /// The visitor's earlier conversions and events on the domain (by email), counted only when
    /// a webhook condition asks for them.
    pub conversion_count: i64,
    pub event_count: i64,
}

impl Attribution {
    pub fn first_id(&self) -> Option<uuid::Uuid> {
        self.first.as_ref().map(|t| t.id.0)
    }
    pub fn last_id(&self) -> Option<uuid::Uuid> {
        self.last.as_ref().map(|t| t.id.0)
    }
}

/// Per submission (`ord`): the first and last touch ids in the window and, when `counts` is set,
/// the earlier conversions and events of the same email on the domain. Inputs: ordinals, key
/// hashes, email hashes, event times, emails, whether to count. Submissions under an unknown
/// key, or without a match, come back with null ids.
///
/// Each lookup is an index probe on `visitor_emails` (domain, hash) and a range scan of
/// `touches` (visitor, time) from either end.
pub const ATTRIBUTION_SQL: &str = r#"
WITH input AS (
    SELECT * FROM unnest($1::int4[], $2::bytea[], $3::bytea[], $4::timestamptz[], $5::text[], $6::bool[])
        AS t(ord, key_hash, email_sha256, occurred_at, email, counts)
),
-- Each distinct key of the batch is looked up once, by the key_hash index, with its domain
-- (LIMIT keeps it a probe per key: joined to the input directly it was planned as a scan of
-- every tenant's keys).
keys AS MATERIALIZED (
    SELECT h.hash, d.*
    FROM (SELECT DISTINCT key_hash AS hash FROM input) h
    CROSS JOIN LATERAL (
        SELECT k.domain_id, d.attribution_window_days
        FROM inbound_keys k
        JOIN domains d ON d.workspace_id = k.workspace_id AND d.id = k.domain_id
        WHERE k.key_hash = h.hash AND k.revoked_at IS NULL
        LIMIT 1
    ) d
),
k AS (
    SELECT i.*, d.domain_id,
           i.occurred_at - make_interval(days => d.attribution_window_days) AS window_start
    FROM input i JOIN keys d ON d.hash = i.key_hash
)
SELECT k.ord, f.id AS first_id, l.id AS last_id,
       coalesce(c.conversions, 0) AS conversions, coalesce(c.events, 0) AS events
FROM k
LEFT JOIN LATERAL (
    SELECT t.id FROM visitor_emails ve
    JOIN touches t ON t.visitor_id = ve.visitor_id
    WHERE ve.domain_id = k.domain_id AND ve.email_sha256 = k.email_sha256
      AND t.occurred_at >= k.window_start AND t.occurred_at <= k.occurred_at
    ORDER BY t.occurred_at, t.id LIMIT 1
) f ON true
LEFT JOIN LATERAL (
    SELECT t.id FROM visitor_emails ve
    JOIN touches t ON t.visitor_id = ve.visitor_id
    WHERE f.id IS NOT NULL
      AND ve.domain_id = k.domain_id AND ve.email_sha256 = k.email_sha256
      AND t.occurred_at >= k.window_start AND t.occurred_at <= k.occurred_at
    ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1
) l ON true
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE e.event_name !~* '^(refund|chargeback)$'
                              AND e.event_name !~ '^event([1-9]|10)$') AS conversions,
           count(*) AS events
    FROM events e
    WHERE k.counts AND e.domain_id = k.domain_id AND e.email = k.email AND e.email <> ''
) c ON true
WHERE f.id IS NOT NULL OR k.counts
"#;

/// Loads touches by id (those that still exist).
pub async fn touches_by_id(
    conn: &mut AsyncPgConnection,
    ids: &[TouchId],
) -> DomainResult<HashMap<TouchId, Touch>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(touches::table
        .filter(touches::id.eq_any(ids))
        .select(Touch::as_select())
        .load::<Touch>(conn)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect())
}

/// An event's first and last touch, as the event page and the API show them.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventAttribution {
    pub first_touch: Option<Touch>,
    pub last_touch: Option<Touch>,
    /// Seconds from the first / last touch to the event.
    pub seconds_from_first_touch: Option<i64>,
    pub seconds_from_last_touch: Option<i64>,
    /// Touch ids the event recorded whose touches retention has since purged.
    pub purged: bool,
}

impl EventAttribution {
    pub fn new(occurred_at: DateTime<Utc>, first: Option<Touch>, last: Option<Touch>) -> Self {
        let secs = |t: &Option<Touch>| {
            t.as_ref()
                .map(|t| (occurred_at - t.occurred_at).num_seconds())
        };
        Self {
            seconds_from_first_touch: secs(&first),
            seconds_from_last_touch: secs(&last),
            first_touch: first,
            last_touch: last,
            purged: false,
        }
    }
}

/// Loads the touches an event recorded (workspace-scoped).
pub async fn for_event(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    event: &Event,
) -> DomainResult<EventAttribution> {
    let ids: Vec<TouchId> = [event.first_touch_id, event.last_touch_id]
        .into_iter()
        .flatten()
        .collect();
    if ids.is_empty() {
        return Ok(EventAttribution::default());
    }
    let found: HashMap<TouchId, Touch> = touches::table
        .filter(touches::workspace_id.eq(workspace_id))
        .filter(touches::id.eq_any(&ids))
        .select(Touch::as_select())
        .load::<Touch>(conn)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect();
    let get = |id: Option<TouchId>| id.and_then(|id| found.get(&id).cloned());
    let mut a = EventAttribution::new(
        event.fields.occurred_at,
        get(event.first_touch_id),
        get(event.last_touch_id),
    );
    a.purged = found.len() < ids.iter().collect::<std::collections::HashSet<_>>().len();
    Ok(a)
}

/// "3 d 4 h", "12 min", "40 s": the time from a click to the conversion.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min")
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        assert_eq!(human_duration(40), "40 s");
        assert_eq!(human_duration(12 * 60 + 5), "12 min");
        assert_eq!(human_duration(2 * 3600 + 60), "2 h 1 min");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600), "3 d 4 h");
        assert_eq!(human_duration(-5), "0 s");
    }
}
