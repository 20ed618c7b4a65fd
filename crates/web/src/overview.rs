//! The signed-in home page (`/`, issue 22): for a domain or the whole workspace over a date
//! range in the workspace's time zone — tiles with the change against the previous period,
//! events and revenue per day as SVG bars (with the same numbers as a table), conversions by
//! source / medium / campaign (first or last touch), by ad platform and by tracking link,
//! the health of every webhook and platform connection, and each domain's setup. A workspace
//! without events sees the three steps to its first one. The numbers come from the same
//! function as `GET /v1/stats`.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Duration, NaiveDate, Utc};
use postback_domain::stats::{self, setup, Counts, GroupBy, Stats, StatsQuery};
use postback_domain::DomainError;
use postback_runtime::AppState;
use serde::Deserialize;

use crate::charts::{bars, BarChart};
use crate::error::{WebError, WebResult};
use crate::format::Zone;
use crate::layout::{page, Chrome};
use crate::money::{change, count, money};
use crate::session::CurrentUser;

/// The range picker's choices.
pub const RANGES: [(&str, &str); 5] = [
    ("today", "Today"),
    ("7", "Last 7 days"),
    ("30", "Last 30 days"),
    ("90", "Last 90 days"),
    ("custom", "Custom"),
];

/// Groupings of the attribution table.
pub const GROUPS: [(&str, &str); 3] = [
    ("source", "Source"),
    ("medium", "Medium"),
    ("campaign", "Campaign"),
];

#[derive(Deserialize, Default)]
pub struct OverviewQuery {
    domain: Option<String>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    touch: Option<String>,
    group: Option<String>,
}

pub struct Tile {
    pub id: &'static str,
    pub label: &'static str,
    /// One line per currency for money tiles.
    pub values: Vec<String>,
    pub change: String,
    /// "up", "down" or "flat", for the colour.
    pub trend: &'static str,
    pub previous: String,
}

pub struct DayRow {
    pub day: String,
    pub events: String,
    pub conversions: String,
    pub revenue: String,
}

pub struct GroupRow {
    pub label: String,
    pub conversions: String,
    pub events: String,
    pub revenue: String,
    pub sent: String,
    pub failed: String,
    pub waiting: String,
    pub link: Option<String>,
}

pub struct HealthRow {
    pub kind: &'static str,
    pub name: String,
    pub state: String,
    pub attention: bool,
    pub fix: String,
    pub fix_label: &'static str,
    pub attempts: String,
    pub success: String,
    pub p95: String,
    pub last_failure: String,
}

pub struct SetupRow {
    pub id: String,
    pub hostname: String,
    pub last_report: String,
    pub last_event: String,
    pub silent: bool,
}

pub struct SwitchLink {
    pub href: String,
    pub label: &'static str,
    pub current: bool,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "overview/show.html")]
struct OverviewPage {
    chrome: Chrome,
    base_url: String,
    /// No event stored yet: the three steps instead of empty charts.
    empty: bool,
    first_site_id: Option<String>,
    first_domain_id: Option<String>,
    domains: Vec<Choice>,
    ranges: Vec<Choice>,
    from: String,
    to: String,
    range_label: String,
    time_zone: String,
    error: Option<String>,
    tiles: Vec<Tile>,
    events_chart: BarChart,
    revenue_chart: BarChart,
    revenue_currency: String,
    days: Vec<DayRow>,
    touch: &'static str,
    group: &'static str,
    group_label: &'static str,
    group_links: Vec<SwitchLink>,
    touch_links: Vec<SwitchLink>,
    attribution: Vec<GroupRow>,
    platforms: Vec<GroupRow>,
    links: Vec<GroupRow>,
    health: Vec<HealthRow>,
    setup: Vec<SetupRow>,
    silent_domains: Vec<String>,
}

fn revenue_lines(list: &[stats::Money]) -> Vec<String> {
    if list.is_empty() {
        vec![money(0.0, "USD")]
    } else {
        list.iter().map(|m| money(m.amount, &m.currency)).collect()
    }
}

fn revenue_text(list: &[stats::Money]) -> String {
    if list.is_empty() {
        "—".to_owned()
    } else {
        list.iter()
            .map(|m| money(m.amount, &m.currency))
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

fn trend(now: f64, before: f64) -> &'static str {
    if now > before {
        "up"
    } else if now < before {
        "down"
    } else {
        "flat"
    }
}

fn main_amount(list: &[stats::Money], currency: &str) -> f64 {
    list.iter()
        .find(|m| m.currency == currency)
        .map_or(0.0, |m| m.amount)
}

fn tiles(now: &Counts, before: &Counts) -> Vec<Tile> {
    let currency = now
        .revenue
        .first()
        .or(before.revenue.first())
        .map_or("USD".to_owned(), |m| m.currency.clone());
    let share = |c: &Counts| {
        if c.conversions == 0 {
            0.0
        } else {
            c.ad_click_conversions as f64 * 100.0 / c.conversions as f64
        }
    };
    let counted = |id, label, n: i64, b: i64| Tile {
        id,
        label,
        values: vec![count(n)],
        change: change(n as f64, b as f64),
        trend: trend(n as f64, b as f64),
        previous: count(b),
    };
    let rev_now = main_amount(&now.revenue, &currency);
    let rev_before = main_amount(&before.revenue, &currency);
    vec![
        counted("tile-events", "Events", now.events, before.events),
        counted(
            "tile-conversions",
            "Conversions",
            now.conversions,
            before.conversions,
        ),
        Tile {
            id: "tile-revenue",
            label: "Revenue",
            values: revenue_lines(&now.revenue),
            change: change(rev_now, rev_before),
            trend: trend(rev_now, rev_before),
            previous: revenue_text(&before.revenue),
        },
        Tile {
            id: "tile-refunds",
            label: "Refunds",
            values: std::iter::once(count(now.refunds))
                .chain(now.refunded.iter().map(|m| money(m.amount, &m.currency)))
                .collect(),
            change: change(now.refunds as f64, before.refunds as f64),
            trend: trend(now.refunds as f64, before.refunds as f64),
            previous: count(before.refunds),
        },
        Tile {
            id: "tile-ad-share",
            label: "From an ad click",
            values: vec![format!("{:.0}%", share(now))],
            change: {
                let d = (share(now) - share(before)).round() as i64;
                match d {
                    0 => "±0 pts".to_owned(),
                    d if d > 0 => format!("+{d} pts"),
                    d => format!("−{} pts", -d),
                }
            },
            trend: trend(share(now), share(before)),
            previous: format!("{:.0}%", share(before)),
        },
    ]
}

fn group_rows(s: &Stats, link_base: Option<&str>) -> Vec<GroupRow> {
    s.groups
        .iter()
        .map(|g| GroupRow {
            label: g.label.clone(),
            conversions: count(g.counts.conversions),
            events: count(g.counts.events),
            revenue: revenue_text(&g.counts.revenue),
            sent: g
                .deliveries
                .as_ref()
                .map_or(String::new(), |d| count(d.sent)),
            failed: g
                .deliveries
                .as_ref()
                .map_or(String::new(), |d| count(d.failed)),
            waiting: g
                .deliveries
                .as_ref()
                .map_or(String::new(), |d| count(d.waiting)),
            link: match (link_base, &g.key) {
                (Some(base), Some(k)) => Some(format!("{base}{k}")),
                _ => None,
            },
        })
        .collect()
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    query: web::Query<OverviewQuery>,
) -> WebResult<HttpResponse> {
    let ws = user.ctx.workspace_id;
    let mut conn = state.conn().await?;
    let tz = stats::time_zone(&mut conn, ws).await?;
    let zone = Zone::new(&tz);
    let today = stats::today(&mut conn, &tz).await?;
    let setup_rows = setup::domains(&mut conn, ws).await?;

    let mut error = None;
    let range = query.range.as_deref().unwrap_or("7");
    let range = if RANGES.iter().any(|(v, _)| *v == range) {
        range
    } else {
        "7"
    };
    let (mut from, mut to) = match range {
        "today" => (today, today),
        "30" => (today - Duration::days(29), today),
        "90" => (today - Duration::days(89), today),
        _ => (today - Duration::days(6), today),
    };
    if range == "custom" {
        let parse = |raw: &Option<String>| {
            raw.as_deref()
                .and_then(|r| NaiveDate::parse_from_str(r, "%Y-%m-%d").ok())
        };
        match (parse(&query.from), parse(&query.to)) {
            (Some(f), Some(t)) => {
                from = f;
                to = t;
            }
            _ => error = Some("Choose both dates of the custom range.".to_owned()),
        }
    }
    let domain_param = query.domain.clone().unwrap_or_default();
    let touch_raw = query.touch.as_deref().unwrap_or("last");
    let group_raw = query.group.as_deref().unwrap_or("source");
    let group = GROUPS
        .iter()
        .find(|(v, _)| *v == group_raw)
        .copied()
        .unwrap_or(GROUPS[0]);
    let parsed = StatsQuery::parse(
        today,
        Some(&domain_param),
        Some(&from.to_string()),
        Some(&to.to_string()),
        Some("day"),
        Some(touch_raw),
    );
    let q = match parsed {
        Ok(q) => q,
        Err(DomainError::Invalid(m)) => {
            error = Some(m);
            StatsQuery::parse(today, None, None, None, None, None)?
        }
        Err(e) => return Err(e.into()),
    };
    let by_day = match stats::compute(&mut conn, ws, &q).await {
        Ok(s) => s,
        Err(DomainError::NotFound(_)) => return Err(WebError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let grouped = |g: GroupBy| {
        let mut q = q.clone();
        q.group_by = g;
        q
    };
    let attribution_q = grouped(GroupBy::parse(group.0)?);
    let platform_q = grouped(GroupBy::Platform);
    let link_q = grouped(GroupBy::Link);
    let attribution = stats::compute(&mut conn, ws, &attribution_q).await?;
    let platforms = stats::compute(&mut conn, ws, &platform_q).await?;
    let links = stats::compute(&mut conn, ws, &link_q).await?;
    let (since, until) = stats::day_bounds(&mut conn, &tz, q.from, q.to).await?;
    let health = stats::health(&mut conn, ws, q.domain_id, since, until).await?;
    let empty = !setup::has_events(&mut conn, ws).await?;

    let revenue_currency = by_day
        .totals
        .revenue
        .first()
        .map_or("USD".to_owned(), |m| m.currency.clone());
    let per_day: Vec<(String, f64, String)> = by_day
        .groups
        .iter()
        .map(|g| {
            let label = g.label.clone();
            let n = g.counts.events;
            (
                label.clone(),
                n as f64,
                format!("{label}: {} events", count(n)),
            )
        })
        .collect();
    let rev_per_day: Vec<(String, f64, String)> = by_day
        .groups
        .iter()
        .map(|g| {
            let a = main_amount(&g.counts.revenue, &revenue_currency);
            (
                g.label.clone(),
                a,
                format!("{}: {}", g.label, money(a, &revenue_currency)),
            )
        })
        .collect();
    let cur = revenue_currency.clone();
    let events_chart = bars(&per_day, |m| count(m.round() as i64));
    let revenue_chart = bars(&rev_per_day, move |m| money(m, &cur));
    let days = by_day
        .groups
        .iter()
        .map(|g| DayRow {
            day: g.label.clone(),
            events: count(g.counts.events),
            conversions: count(g.counts.conversions),
            revenue: revenue_text(&g.counts.revenue),
        })
        .collect();

    let touch = q.touch.as_str();
    let from_s = q.from.to_string();
    let to_s = q.to.to_string();
    let base_pairs = |touch: &str, group: &str| {
        format!(
            "/?{}#attribution",
            query_string(&[
                ("domain", &domain_param),
                ("range", range),
                ("from", if range == "custom" { &from_s } else { "" }),
                ("to", if range == "custom" { &to_s } else { "" }),
                ("touch", touch),
                ("group", group),
            ])
        )
    };
    let group_links = GROUPS
        .iter()
        .map(|(v, l)| SwitchLink {
            href: base_pairs(touch, v),
            label: l,
            current: *v == group.0,
        })
        .collect();
    let touch_links = [("first", "First touch"), ("last", "Last touch")]
        .into_iter()
        .map(|(v, l)| SwitchLink {
            href: base_pairs(v, group.0),
            label: l,
            current: v == touch,
        })
        .collect();

    let now = Utc::now();
    let health_rows = health
        .targets
        .iter()
        .map(|t| {
            let (fix, fix_label) = if t.kind == "webhook" {
                (format!("/webhooks/{}", t.id), "Open webhook")
            } else {
                (
                    format!(
                        "/domains/{}/connections",
                        t.domain_id.map(|d| d.to_string()).unwrap_or_default()
                    ),
                    "Open connection",
                )
            };
            HealthRow {
                kind: if t.kind == "webhook" {
                    "Webhook"
                } else {
                    "Ad platform"
                },
                name: if t.kind == "webhook" {
                    t.name.clone()
                } else {
                    stats::platform_label(&t.name).to_owned()
                },
                state: t.state.clone(),
                attention: t.needs_attention(),
                fix,
                fix_label,
                attempts: count(t.attempts),
                success: t
                    .success_rate()
                    .map_or("—".to_owned(), |r| format!("{r:.1}%")),
                p95: t
                    .p95_ms
                    .map_or("—".to_owned(), |p| format!("{} ms", count(p))),
                last_failure: match (&t.last_failure_at, &t.last_failure) {
                    (Some(at), Some(what)) => format!("{} — {what}", zone.relative(*at)),
                    _ => "none".to_owned(),
                },
            }
        })
        .collect();
    let setup: Vec<SetupRow> = setup_rows
        .iter()
        .map(|d| SetupRow {
            id: d.id.to_string(),
            hostname: d.hostname.clone(),
            last_report: d
                .last_report_at
                .map_or("never".to_owned(), |t| zone.relative(t)),
            last_event: d
                .last_event_at
                .map_or("never".to_owned(), |t| zone.relative(t)),
            silent: d.silent(now),
        })
        .collect();
    let silent_domains = setup
        .iter()
        .filter(|d| d.silent)
        .map(|d| d.hostname.clone())
        .collect();
    let domains = std::iter::once(Choice {
        value: String::new(),
        label: "All domains".to_owned(),
        selected: q.domain_id.is_none(),
    })
    .chain(setup_rows.iter().map(|d| Choice {
        value: d.id.to_string(),
        label: d.hostname.clone(),
        selected: q.domain_id.map(|x| x.0) == Some(d.id),
    }))
    .collect();
    let ranges = RANGES
        .iter()
        .map(|(v, l)| Choice {
            value: (*v).to_owned(),
            label: (*l).to_owned(),
            selected: *v == range,
        })
        .collect();
    let range_label = if q.from == q.to {
        q.from.format("%b %-d, %Y").to_string()
    } else {
        format!(
            "{} – {}",
            q.from.format("%b %-d, %Y"),
            q.to.format("%b %-d, %Y")
        )
    };

    let chrome = Chrome::new(&req, &user, "overview");
    let had_flash = chrome.flash.is_some();
    let tpl = OverviewPage {
        chrome,
        base_url: state.base_url.clone(),
        empty,
        first_site_id: setup_rows.first().map(|d| d.site_id.clone()),
        first_domain_id: setup_rows.first().map(|d| d.id.to_string()),
        domains,
        ranges,
        from: from_s.clone(),
        to: to_s.clone(),
        range_label,
        time_zone: tz,
        error,
        tiles: tiles(&by_day.totals, &by_day.previous),
        events_chart,
        revenue_chart,
        revenue_currency,
        days,
        touch,
        group: group.0,
        group_label: group.1,
        group_links,
        touch_links,
        attribution: group_rows(&attribution, None),
        platforms: group_rows(&platforms, None),
        links: group_rows(&links, Some("/links/")),
        health: health_rows,
        setup,
        silent_domains,
    };
    page(&tpl, had_flash)
}

/// `/`: the overview when signed in, else the log-in page.
pub async fn home(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: Result<CurrentUser, WebError>,
    query: web::Query<OverviewQuery>,
) -> WebResult<HttpResponse> {
    match user {
        Ok(user) => show(req, state, user, query).await,
        Err(_) => Ok(crate::session::redirect("/login")),
    }
}
