//! The filtered events list beyond its columns: the filter as sent in a query string (domain,
//! date range in the workspace's time zone, event name, email), each event's last-touch source
//! and delivery status, and the CSV form of an event (`GET /v1/events/export`, the Events tab's
//! download). Columns are listed in README ("CSV export").

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::sql_types::{Array, BigInt, Date, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::{DomainError, DomainResult};
use crate::events::{Event, EventFilter};
use crate::ids::{DomainId, EventId, WorkspaceId};

/// The query parameters of a filtered list, as sent.
#[derive(Debug, Clone, Default)]
pub struct RawFilter<'a> {
    pub domain_id: Option<&'a str>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub event: Option<&'a str>,
    pub email: Option<&'a str>,
}

fn date(field: &str, raw: Option<&str>) -> DomainResult<Option<NaiveDate>> {
    crate::stats::parse_date(field, raw)
}

#[derive(diesel::QueryableByName)]
struct Bounds {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    since: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    until: Option<DateTime<Utc>>,
}

/// Checks the filter and turns it into an [`EventFilter`]: `from`/`to` are whole days
/// (inclusive) in the workspace's time zone. A domain of another workspace is not looked up
/// here (the list is scoped by workspace, so it is simply empty); see [`check_domain`].
pub async fn filter(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    raw: &RawFilter<'_>,
) -> DomainResult<EventFilter> {
    let domain_id = match raw.domain_id.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => {
            let id = d
                .parse::<DomainId>()
                .map_err(|_| DomainError::invalid("domainId must be a UUID"))?;
            Some(id)
        }
        None => None,
    };
    let from = date("from", raw.from)?;
    let to = date("to", raw.to)?;
    // `from` after `to` is an empty range, not an error.
    let (since, until) = if from.is_some() || to.is_some() {
        let tz = crate::stats::time_zone(conn, workspace_id).await?;
        let b: Bounds = diesel::sql_query(
            "SELECT ($1::date::timestamp AT TIME ZONE $3) AS since,
                    (($2::date + 1)::timestamp AT TIME ZONE $3) AS until",
        )
        .bind::<Nullable<Date>, _>(from)
        .bind::<Nullable<Date>, _>(to)
        .bind::<Text, _>(&tz)
        .get_result(conn)
        .await?;
        (b.since, b.until)
    } else {
        (None, None)
    };
    let text = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    Ok(EventFilter {
        domain_id,
        event_name: text(raw.event),
        email: text(raw.email),
        since,
        until,
    })
}

/// Not found unless the filter's domain (if any) is the workspace's.
pub async fn check_domain(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    filter: &EventFilter,
) -> DomainResult<()> {
    if let Some(d) = filter.domain_id {
        crate::tenancy::domains::get(conn, workspace_id, d).await?;
    }
    Ok(())
}

/// What the list shows beside an event's own fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extras {
    pub last_source: Option<String>,
    pub last_medium: Option<String>,
    pub last_campaign: Option<String>,
    pub sent: i64,
    pub failed: i64,
    pub waiting: i64,
}

impl Extras {
    /// "all sent", "2 failed", "1 waiting", or "none" (no webhook or platform took it).
    pub fn delivery_status(&self) -> String {
        if self.failed > 0 {
            format!("{} failed", self.failed)
        } else if self.waiting > 0 {
            format!("{} waiting", self.waiting)
        } else if self.sent > 0 {
            "all sent".to_owned()
        } else {
            "none".to_owned()
        }
    }

    /// `google / cpc`, or the source alone, or "direct" for an event with a touch without UTMs,
    /// or "—" without a touch.
    pub fn source_label(&self, has_touch: bool) -> String {
        match (&self.last_source, &self.last_medium) {
            (Some(s), Some(m)) => format!("{s} / {m}"),
            (Some(s), None) => s.clone(),
            (None, _) if has_touch => "direct".to_owned(),
            _ => "—".to_owned(),
        }
    }
}

#[derive(diesel::QueryableByName)]
struct TouchRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    utm_source: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    utm_medium: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    utm_campaign: Option<String>,
}

#[derive(diesel::QueryableByName)]
struct DeliveryRow {
    #[diesel(sql_type = SqlUuid)]
    event_id: uuid::Uuid,
    #[diesel(sql_type = BigInt)]
    sent: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
    #[diesel(sql_type = BigInt)]
    waiting: i64,
}

/// The extras of a page of events, in two queries.
pub async fn extras(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    events: &[Event],
) -> DomainResult<HashMap<EventId, Extras>> {
    let mut out: HashMap<EventId, Extras> = HashMap::new();
    if events.is_empty() {
        return Ok(out);
    }
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id.0).collect();
    let touch_ids: Vec<uuid::Uuid> = events
        .iter()
        .filter_map(|e| e.last_touch_id.map(|t| t.0))
        .collect();
    let touches: Vec<TouchRow> = if touch_ids.is_empty() {
        Vec::new()
    } else {
        diesel::sql_query(
            "SELECT id, utm_source, utm_medium, utm_campaign FROM touches
             WHERE workspace_id = $1 AND id = ANY($2)",
        )
        .bind::<SqlUuid, _>(workspace_id.0)
        .bind::<Array<SqlUuid>, _>(&touch_ids)
        .load(conn)
        .await?
    };
    let touches: HashMap<uuid::Uuid, TouchRow> = touches.into_iter().map(|t| (t.id, t)).collect();
    let deliveries: Vec<DeliveryRow> = diesel::sql_query(
        "SELECT event_id,
                count(*) FILTER (WHERE status = 'succeeded') AS sent,
                count(*) FILTER (WHERE status = 'failed') AS failed,
                count(*) FILTER (WHERE status IN ('pending', 'held')) AS waiting
         FROM deliveries WHERE workspace_id = $1 AND event_id = ANY($2)
         GROUP BY event_id",
    )
    .bind::<SqlUuid, _>(workspace_id.0)
    .bind::<Array<SqlUuid>, _>(&ids)
    .load(conn)
    .await?;
    let deliveries: HashMap<uuid::Uuid, DeliveryRow> =
        deliveries.into_iter().map(|d| (d.event_id, d)).collect();
    for e in events {
        let mut x = Extras::default();
        if let Some(t) = e.last_touch_id.and_then(|t| touches.get(&t.0)) {
            x.last_source = t.utm_source.clone();
            x.last_medium = t.utm_medium.clone();
            x.last_campaign = t.utm_campaign.clone();
        }
        if let Some(d) = deliveries.get(&e.id.0) {
            x.sent = d.sent;
            x.failed = d.failed;
            x.waiting = d.waiting;
        }
        out.insert(e.id, x);
    }
    Ok(out)
}

/// The CSV columns, in order (README "CSV export").
pub const COLUMNS: [&str; 20] = [
    "id",
    "receivedAt",
    "timestamp",
    "event",
    "email",
    "value",
    "currency",
    "orderId",
    "firstName",
    "lastName",
    "phone",
    "city",
    "country",
    "countryCode",
    "productName",
    "domainId",
    "lastTouchSource",
    "lastTouchMedium",
    "lastTouchCampaign",
    "deliveries",
];

/// The header line, with CRLF as RFC 4180 has it.
pub fn csv_header() -> String {
    let mut s = COLUMNS.join(",");
    s.push_str("\r\n");
    s
}

/// One field, quoted when it holds a comma, quote or line break (RFC 4180 section 2). Text
/// that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a leading
/// `'` (OWASP "CSV Injection").
fn field(out: &mut String, value: &str, text: bool) {
    let guarded;
    let value = if text && value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{value}");
        guarded.as_str()
    } else {
        value
    };
    if value.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// An event as one CSV line (times in UTC, RFC 3339).
pub fn csv_line(e: &Event, x: &Extras) -> String {
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let value = e.fields.value.map(|v| v.to_string()).unwrap_or_default();
    let cells: [(&str, bool); 20] = [
        (&e.id.to_string(), false),
        (&rfc(e.received_at), false),
        (&rfc(e.fields.occurred_at), false),
        (&e.fields.event_name, true),
        (&e.fields.email, true),
        (&value, false),
        (&e.fields.currency, true),
        (e.fields.order_id.as_deref().unwrap_or(""), true),
        (e.fields.first_name.as_deref().unwrap_or(""), true),
        (e.fields.last_name.as_deref().unwrap_or(""), true),
        (e.fields.phone.as_deref().unwrap_or(""), true),
        (e.fields.city.as_deref().unwrap_or(""), true),
        (e.fields.country.as_deref().unwrap_or(""), true),
        (e.fields.country_code.as_deref().unwrap_or(""), true),
        (e.fields.product_name.as_deref().unwrap_or(""), true),
        (&e.domain_id.to_string(), false),
        (x.last_source.as_deref().unwrap_or(""), true),
        (x.last_medium.as_deref().unwrap_or(""), true),
        (x.last_campaign.as_deref().unwrap_or(""), true),
        (&x.delivery_status(), false),
    ];
    let mut out = String::new();
    for (i, (v, text)) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(&mut out, v, *text);
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        let mut s = String::new();
        field(&mut s, "a,b \"c\"", true);
        assert_eq!(s, "\"a,b \"\"c\"\"\"");
        let mut s = String::new();
        field(&mut s, "=HYPERLINK(1)", true);
        assert_eq!(s, "'=HYPERLINK(1)");
        let mut s = String::new();
        field(&mut s, "-5", false);
        assert_eq!(s, "-5");
    }
}
