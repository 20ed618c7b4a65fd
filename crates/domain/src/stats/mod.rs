//! The marketer's overview numbers (issue 22): events, conversions, revenue per currency,
//! refunds and ad-click share over a date range in the workspace's time zone, grouped by day,
//! source, medium, campaign, ad platform or tracking link, read from `event_rollups` (kept in
//! step with events by triggers) rather than from the events themselves. `/v1/stats` and the
//! overview page both call [`compute`].

mod health;
pub mod setup;
mod time_zone;

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use diesel::sql_types::{BigInt, Double, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

pub use health::{health, webhook_activity, Health, TargetHealth, WebhookActivity};
pub use time_zone::{day_bounds, set_time_zone, time_zone, today, valid_time_zone};

use crate::error::{DomainError, DomainResult};
use crate::ids::{DomainId, WorkspaceId};

/// Up to this many days, `groupBy=day` lists every day of the range; over it, only the days
/// with events (so any range answers with a size bounded by the data).
pub const MAX_DAYS: i64 = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Day,
    Source,
    Medium,
    Campaign,
    Platform,
    Link,
}

impl GroupBy {
    pub const ALL: [GroupBy; 6] = [
        GroupBy::Day,
        GroupBy::Source,
        GroupBy::Medium,
        GroupBy::Campaign,
        GroupBy::Platform,
        GroupBy::Link,
    ];

    pub fn parse(raw: &str) -> DomainResult<Self> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == raw)
            .ok_or_else(|| {
                DomainError::invalid(
                    "groupBy must be one of day, source, medium, campaign, platform, link",
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Source => "source",
            GroupBy::Medium => "medium",
            GroupBy::Campaign => "campaign",
            GroupBy::Platform => "platform",
            GroupBy::Link => "link",
        }
    }

    /// The rollup column (or expression) a group's key is read from.
    fn key_sql(self, touch: Touch) -> String {
        let t = touch.as_str();
        match self {
            GroupBy::Day => "to_char(hour AT TIME ZONE $5, 'YYYY-MM-DD')".to_owned(),
            GroupBy::Source => format!("{t}_source"),
            GroupBy::Medium => format!("{t}_medium"),
            GroupBy::Campaign => format!("{t}_campaign"),
            GroupBy::Platform => format!("{t}_click"),
            GroupBy::Link => format!("{t}_link_id::text"),
        }
    }
}

/// Which touch of the visitor an event is credited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Touch {
    First,
    #[default]
    Last,
}

impl Touch {
    pub fn parse(raw: &str) -> DomainResult<Self> {
        match raw {
            "first" => Ok(Touch::First),
            "last" => Ok(Touch::Last),
            _ => Err(DomainError::invalid("touch must be first or last")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Touch::First => "first",
            Touch::Last => "last",
        }
    }
}

/// What to count: a range of whole days (inclusive) in the workspace's time zone.
#[derive(Debug, Clone)]
pub struct StatsQuery {
    pub domain_id: Option<DomainId>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group_by: GroupBy,
    pub touch: Touch,
}

impl StatsQuery {
    /// Reads the query parameters as sent (each optional): `from`/`to` as `YYYY-MM-DD`
    /// (default: the 7 days ending `today`), `groupBy` (default `day`), `touch` (default `last`).
    pub fn parse(
        today: NaiveDate,
        domain_id: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        group_by: Option<&str>,
        touch: Option<&str>,
    ) -> DomainResult<Self> {
        let domain_id = match domain_id.filter(|d| !d.is_empty()) {
            Some(raw) => Some(
                raw.parse::<DomainId>()
                    .map_err(|_| DomainError::invalid("domainId must be a UUID"))?,
            ),
            None => None,
        };
        let date = |field: &str, raw: Option<&str>| parse_date(field, raw);
        let to = date("to", to)?.unwrap_or(today);
        let from = date("from", from)?.unwrap_or(to - Duration::days(6));
        let group_by = match group_by.filter(|g| !g.is_empty()) {
            Some(g) => GroupBy::parse(g)?,
            None => GroupBy::Day,
        };
        let touch = match touch.filter(|t| !t.is_empty()) {
            Some(t) => Touch::parse(t)?,
            None => Touch::Last,
        };
        Ok(Self {
            domain_id,
            from,
            to,
            group_by,
            touch,
        })
    }

    /// Number of days in the range (none when `from` is after `to`).
    pub fn days(&self) -> i64 {
        ((self.to - self.from).num_days() + 1).max(0)
    }

    /// The range of the same length just before this one (not before the year 4000 BC, where
    /// PostgreSQL's timestamps end).
    pub fn previous(&self) -> (NaiveDate, NaiveDate) {
        let n = self.days();
        let floor = NaiveDate::from_ymd_opt(-4000, 1, 1).unwrap_or(NaiveDate::MIN);
        (
            (self.from - Duration::days(n)).max(floor),
            (self.from - Duration::days(1)).max(floor),
        )
    }
}

/// A `YYYY-MM-DD` date (years 0000 to 9999); empty is none.
pub fn parse_date(field: &str, raw: Option<&str>) -> DomainResult<Option<NaiveDate>> {
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => NaiveDate::parse_from_str(r, "%Y-%m-%d")
            .ok()
            .filter(|_| r.len() == 10 && r.as_bytes()[0].is_ascii_digit())
            .map(Some)
            .ok_or_else(|| DomainError::invalid(format!("{field} must be a date (YYYY-MM-DD)"))),
        None => Ok(None),
    }
}

/// An amount of money in one currency, in major units (`12.5` USD is $12.50).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    /// ISO 4217 code.
    pub currency: String,
    pub amount: f64,
}

/// Counts over a range (or one group of it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Every stored event.
    pub events: i64,
    /// Events that are neither refunds (`refund`, `chargeback`) nor custom events
    /// (`event1` … `event10`).
    pub conversions: i64,
    /// `refund` and `chargeback` events.
    pub refunds: i64,
    /// Conversions whose (first or last, per `touch`) touch came from an ad click
    /// (gclid, gbraid, wbraid, fbclid, ttclid or msclkid).
    pub ad_click_conversions: i64,
    /// The conversions' value per currency (never added across currencies), largest first.
    pub revenue: Vec<Money>,
    /// The refunds' value per currency.
    pub refunded: Vec<Money>,
}

/// One row of the grouping.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// The day (`YYYY-MM-DD`), the source / medium / campaign text, the ad platform
    /// (`googleads`, `meta`, `tiktok`) or the tracking link's id; `null` for
    /// events without one (no touch, no UTM, no click id).
    pub key: Option<String>,
    /// What the page shows for the key (a link's name, "(none)").
    pub label: String,
    #[serde(flatten)]
    pub counts: Counts,
    /// `groupBy=platform` only: deliveries to this platform's connections created in the
    /// range, by state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<DeliveryCounts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryCounts {
    pub sent: i64,
    pub failed: i64,
    /// Pending (including retries) or held.
    pub waiting: i64,
}

/// The numbers behind the overview.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// The workspace's time zone (IANA name) the days are counted in.
    pub time_zone: String,
    pub group_by: GroupBy,
    pub touch: Touch,
    pub totals: Counts,
    /// The same counts over the range of the same length just before.
    pub previous: Counts,
    /// `day`: every day of the range, oldest first (days without events have zeros; over 400
    /// days, only the days with events); otherwise the groups with events, most conversions
    /// first. Empty when `from` is after `to`.
    pub groups: Vec<Group>,
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Nullable<Text>)]
    key: Option<String>,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    events: i64,
    #[diesel(sql_type = BigInt)]
    clicked: i64,
    #[diesel(sql_type = Double)]
    amount: f64,
}

/// Event kinds as the webhook triggers define them (README "Outbound webhooks").
const KIND_SQL: &str = "CASE WHEN event_name ~* '^(refund|chargeback)$' THEN 'refund' \
     WHEN event_name ~ '^event([1-9]|10)$' THEN 'custom' ELSE 'conversion' END";

/// Which rollup a query reads: the narrow one (no touch columns) for totals and days, the wide
/// one for source, medium, campaign and link.
#[derive(Clone, Copy)]
enum Table {
    Totals,
    Rollups,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Totals => "event_totals",
            Table::Rollups => "event_rollups",
        }
    }

    fn for_group(g: GroupBy) -> Self {
        match g {
            GroupBy::Day | GroupBy::Platform => Table::Totals,
            _ => Table::Rollups,
        }
    }
}

/// What one rollup query reads: which table, grouped by which key.
struct Source<'a> {
    table: Table,
    key_sql: &'a str,
}

async fn rows(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    query: &StatsQuery,
    (from, to): (NaiveDate, NaiveDate),
    tz: &str,
    Source { table, key_sql }: Source<'_>,
) -> DomainResult<Vec<Row>> {
    let (domain_id, touch) = (query.domain_id, query.touch);
    // Day boundaries in the workspace's zone; rollups are per UTC hour, so a zone with a
    // whole-hour offset gets exact days.
    let sql = format!(
        "SELECT {key_sql} AS key, {KIND_SQL} AS kind, currency,
                sum(events)::bigint AS events,
                sum(CASE WHEN {t}_click IS NOT NULL THEN events ELSE 0 END)::bigint AS clicked,
                coalesce(sum(value_sum), 0)::float8 AS amount
         FROM {table}
         WHERE workspace_id = $1 AND ($2::uuid IS NULL OR domain_id = $2)
           AND hour >= ($3::date::timestamp AT TIME ZONE $5)
           AND hour < (($4::date + 1)::timestamp AT TIME ZONE $5)
         GROUP BY 1, 2, 3",
        t = touch.as_str(),
        table = table.name(),
    );
    Ok(diesel::sql_query(sql)
        .bind::<SqlUuid, _>(workspace_id.0)
        .bind::<Nullable<SqlUuid>, _>(domain_id.map(|d| d.0))
        .bind::<diesel::sql_types::Date, _>(from)
        .bind::<diesel::sql_types::Date, _>(to)
        .bind::<Text, _>(tz)
        .load(conn)
        .await?)
}

fn add_money(list: &mut Vec<Money>, currency: &str, amount: f64) {
    match list.iter_mut().find(|m| m.currency == currency) {
        Some(m) => m.amount += amount,
        None => list.push(Money {
            currency: currency.to_owned(),
            amount,
        }),
    }
}

fn add_row(c: &mut Counts, r: &Row) {
    c.events += r.events;
    match r.kind.as_str() {
        "conversion" => {
            c.conversions += r.events;
            c.ad_click_conversions += r.clicked;
            add_money(&mut c.revenue, &r.currency, r.amount);
        }
        "refund" => {
            c.refunds += r.events;
            add_money(&mut c.refunded, &r.currency, r.amount);
        }
        _ => {}
    }
}

fn finish(c: &mut Counts) {
    for list in [&mut c.revenue, &mut c.refunded] {
        // Sums of decimal values in binary floating point: cents, not 0.30000000000000004.
        for m in list.iter_mut() {
            m.amount = (m.amount * 1e6).round() / 1e6;
        }
        list.retain(|m| m.amount != 0.0);
        list.sort_by(|a, b| {
            b.amount
                .partial_cmp(&a.amount)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.currency.cmp(&b.currency))
        });
    }
}

/// The numbers for a workspace; a domain of another workspace is not found.
pub async fn compute(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    query: &StatsQuery,
) -> DomainResult<Stats> {
    if let Some(d) = query.domain_id {
        crate::tenancy::domains::get(conn, workspace_id, d).await?;
    }
    let tz = time_zone(conn, workspace_id).await?;
    let key_sql = query.group_by.key_sql(query.touch);
    let current = rows(
        conn,
        workspace_id,
        query,
        (query.from, query.to),
        &tz,
        Source {
            table: Table::for_group(query.group_by),
            key_sql: &key_sql,
        },
    )
    .await?;
    let previous_rows = rows(
        conn,
        workspace_id,
        query,
        query.previous(),
        &tz,
        Source {
            table: Table::Totals,
            key_sql: "NULL::text",
        },
    )
    .await?;

    let mut totals = Counts::default();
    let mut groups: BTreeMap<Option<String>, Counts> = BTreeMap::new();
    for r in &current {
        add_row(&mut totals, r);
        add_row(groups.entry(r.key.clone()).or_default(), r);
    }
    let mut previous = Counts::default();
    for r in &previous_rows {
        add_row(&mut previous, r);
    }
    finish(&mut totals);
    finish(&mut previous);

    let mut out: Vec<Group> = Vec::new();
    if query.group_by == GroupBy::Day && query.days() > MAX_DAYS {
        for (key, mut counts) in groups {
            finish(&mut counts);
            out.push(Group {
                label: key.clone().unwrap_or_default(),
                key,
                counts,
                deliveries: None,
            });
        }
    } else if query.group_by == GroupBy::Day {
        let mut day = query.from;
        while day <= query.to {
            let key = day.format("%Y-%m-%d").to_string();
            let mut counts = groups.remove(&Some(key.clone())).unwrap_or_default();
            finish(&mut counts);
            out.push(Group {
                label: key.clone(),
                key: Some(key),
                counts,
                deliveries: None,
            });
            day += Duration::days(1);
        }
    } else {
        let mut deliveries = if query.group_by == GroupBy::Platform {
            platform_deliveries(conn, workspace_id, query, &tz).await?
        } else {
            BTreeMap::new()
        };
        if query.group_by == GroupBy::Platform {
            // Platforms sent to, even with no conversion credited to their clicks.
            for k in deliveries.keys() {
                groups.entry(Some(k.clone())).or_default();
            }
        }
        let names = if query.group_by == GroupBy::Link {
            link_names(conn, workspace_id).await?
        } else {
            BTreeMap::new()
        };
        for (key, mut counts) in groups {
            finish(&mut counts);
            let label = match (&key, query.group_by) {
                (None, _) => "(none)".to_owned(),
                (Some(k), GroupBy::Link) => names.get(k).cloned().unwrap_or_else(|| k.clone()),
                (Some(k), GroupBy::Platform) => platform_label(k).to_owned(),
                (Some(k), _) => k.clone(),
            };
            let d = match (&key, query.group_by) {
                (Some(k), GroupBy::Platform) => Some(deliveries.remove(k).unwrap_or_default()),
                (None, GroupBy::Platform) => Some(DeliveryCounts::default()),
                _ => None,
            };
            out.push(Group {
                key,
                label,
                counts,
                deliveries: d,
            });
        }
        out.sort_by(|a, b| {
            b.counts
                .conversions
                .cmp(&a.counts.conversions)
                .then_with(|| b.counts.events.cmp(&a.counts.events))
                .then_with(|| a.key.is_none().cmp(&b.key.is_none()))
                .then_with(|| a.label.cmp(&b.label))
        });
    }
    Ok(Stats {
        from: query.from,
        to: query.to,
        time_zone: tz,
        group_by: query.group_by,
        touch: query.touch,
        totals,
        previous,
        groups: out,
    })
}

/// A platform id as people read it (the registered platform's label; anything else as given).
pub fn platform_label(id: &str) -> &str {
    crate::platforms::Platform::parse(id).map_or(id, |p| p.label())
}

#[derive(diesel::QueryableByName)]
struct DeliveryRow {
    #[diesel(sql_type = Text)]
    platform: String,
    #[diesel(sql_type = BigInt)]
    sent: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
    #[diesel(sql_type = BigInt)]
    waiting: i64,
}

async fn platform_deliveries(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    query: &StatsQuery,
    tz: &str,
) -> DomainResult<BTreeMap<String, DeliveryCounts>> {
    let rows: Vec<DeliveryRow> = diesel::sql_query(
        "SELECT c.platform,
                count(*) FILTER (WHERE d.status = 'succeeded') AS sent,
                count(*) FILTER (WHERE d.status = 'failed') AS failed,
                count(*) FILTER (WHERE d.status IN ('pending', 'held')) AS waiting
         FROM connections c
         JOIN deliveries d ON d.connection_id = c.id AND d.workspace_id = c.workspace_id
         WHERE c.workspace_id = $1 AND ($2::uuid IS NULL OR c.domain_id = $2)
           AND d.created_at >= ($3::date::timestamp AT TIME ZONE $5)
           AND d.created_at < (($4::date + 1)::timestamp AT TIME ZONE $5)
         GROUP BY c.platform",
    )
    .bind::<SqlUuid, _>(workspace_id.0)
    .bind::<Nullable<SqlUuid>, _>(query.domain_id.map(|d| d.0))
    .bind::<diesel::sql_types::Date, _>(query.from)
    .bind::<diesel::sql_types::Date, _>(query.to)
    .bind::<Text, _>(tz)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.platform,
                DeliveryCounts {
                    sent: r.sent,
                    failed: r.failed,
                    waiting: r.waiting,
                },
            )
        })
        .collect())
}

#[derive(diesel::QueryableByName)]
struct LinkName {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    name: String,
}

async fn link_names(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
) -> DomainResult<BTreeMap<String, String>> {
    let rows: Vec<LinkName> =
        diesel::sql_query("SELECT id::text AS id, name FROM links WHERE workspace_id = $1")
            .bind::<SqlUuid, _>(workspace_id.0)
            .load(conn)
            .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.name)).collect())
}
