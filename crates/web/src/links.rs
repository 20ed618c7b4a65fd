//! Tracking links in the dashboard: the Links section of a domain's Tracking tab (list, create),
//! and a link's page (clicks per day as a small SVG chart and table, clicks per target,
//! conversions and revenue by first and last touch; edit; delete after a confirmation).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;
use postback_domain::ids::{DomainId, LinkId, LinkTargetId};
use postback_domain::store::paging::PageRequest;
use postback_domain::tenancy::domains::{self, Domain};
use postback_domain::tenancy::plans;
use postback_domain::tracking::links::{self, Attributed, Link, LinkInput, TargetInput};
use postback_domain::DomainError;
use postback_runtime::AppState;
use serde_json::json;

use crate::auth::CsrfOnly;
use crate::confirm::ConfirmPage;
use crate::error::{WebError, WebResult};
use crate::format::Zone;
use crate::layout::{page, Chrome};
use crate::session::{redirect_with, verify_csrf, CurrentUser};

/// A link as the Tracking tab lists it.
pub struct LinkListRow {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub url: String,
    pub targets: String,
    pub created: String,
}

/// One row of the targets editor.
pub struct TargetForm {
    pub id: String,
    pub url: String,
    pub weight: String,
}

impl TargetForm {
    fn blank(weight: &str) -> Self {
        Self {
            id: String::new(),
            url: String::new(),
            weight: weight.into(),
        }
    }
}

/// The Links section of the Tracking tab.
pub struct LinksSection {
    pub links: Vec<LinkListRow>,
    pub usage: String,
    pub at_limit: bool,
    pub new_targets: Vec<TargetForm>,
}

fn targets_summary(link: &Link) -> String {
    let total: i64 = link.targets.iter().map(|t| i64::from(t.weight)).sum();
    link.targets
        .iter()
        .map(|t| {
            if link.targets.len() == 1 {
                t.url.clone()
            } else {
                format!("{} ({}%)", t.url, i64::from(t.weight) * 100 / total.max(1))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the Tracking tab shows of a domain's links.
pub async fn section(
    state: &AppState,
    user: &CurrentUser,
    domain: &Domain,
) -> WebResult<LinksSection> {
    let ws = user.ctx.workspace_id;
    let mut conn = state.conn().await?;
    let listed = links::list(&mut conn, ws, domain.id, PageRequest::first(200)).await?;
    let plan = plans::get(&mut conn, &user.ctx.plan).await?;
    let used = links::count(&mut conn, ws, domain.id).await?;
    let limit = plan.max_webhooks.map(i64::from);
    Ok(LinksSection {
        links: listed
            .items
            .into_iter()
            .map(|l| LinkListRow {
                id: l.row.id.to_string(),
                url: l.url(&state.base_url),
                targets: targets_summary(&l),
                name: l.row.name,
                slug: l.row.slug,
                created: Zone::of(user).relative(l.row.created_at),
            })
            .collect(),
        usage: format!(
            "{} tracking links used on this domain",
            plans::usage_label(used, limit)
        ),
        at_limit: limit.is_some_and(|max| used >= max),
        new_targets: vec![TargetForm::blank("1"), TargetForm::blank("")],
    })
}

/// The link form as posted: name, slug and target rows (`target_id`, `target_url`,
/// `target_weight` repeated, one of each per row; rows left empty are skipped).
struct Submitted {
    csrf: String,
    input: LinkInput,
}

fn parse_form(body: &[u8]) -> Submitted {
    let mut csrf = String::new();
    let (mut name, mut slug) = (None, None);
    let (mut ids, mut urls, mut weights) = (Vec::new(), Vec::new(), Vec::new());
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "csrf_token" => csrf = v.into_owned(),
            "name" => name = Some(v.into_owned()),
            "slug" => slug = Some(v.into_owned()),
            "target_id" => ids.push(v.into_owned()),
            "target_url" => urls.push(v.into_owned()),
            "target_weight" => weights.push(v.into_owned()),
            _ => {}
        }
    }
    let targets = urls
        .iter()
        .enumerate()
        .filter_map(|(i, url)| {
            let id = ids.get(i).map(|s| s.trim()).unwrap_or("");
            let weight = weights.get(i).map(|s| s.trim()).unwrap_or("");
            if url.trim().is_empty() && id.is_empty() {
                return None;
            }
            Some(TargetInput {
                id: id.parse::<LinkTargetId>().ok(),
                url: url.clone(),
                // Empty means 1; anything else that is not a whole number fails validation.
                weight: if weight.is_empty() {
                    1
                } else {
                    weight.parse().unwrap_or(0)
                },
            })
        })
        .collect();
    Submitted {
        csrf,
        input: LinkInput {
            name,
            slug: slug.map(|s| s.trim().to_ascii_lowercase()),
            targets: Some(targets),
        },
    }
}

/// "targets[1].weight must …" reads as "Target 2: weight must …" on a page.
fn readable(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("targets[") {
        if let Some((n, tail)) = rest.split_once(']') {
            if let Ok(i) = n.parse::<usize>() {
                let tail = tail.trim_start_matches('.');
                return format!("Target {}: {tail}", i + 1);
            }
        }
    }
    message.to_owned()
}

fn refused(to: &str, err: DomainError, secure: bool) -> WebResult<HttpResponse> {
    match err {
        DomainError::Invalid(m) | DomainError::Conflict(m) | DomainError::LimitReached(m) => {
            Ok(redirect_with(to, "error", &readable(&m), secure))
        }
        e => Err(e.into()),
    }
}

fn tracking_path(domain_id: DomainId) -> String {
    format!("/domains/{domain_id}/tracking")
}

/// `POST /domains/{id}/links`: creates a link from the Tracking tab's form.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<DomainId>,
    body: web::Bytes,
) -> WebResult<HttpResponse> {
    let form = parse_form(&body);
    verify_csrf(&req, &form.csrf)?;
    let domain_id = path.into_inner();
    let back = tracking_path(domain_id);
    let mut conn = state.conn().await?;
    let created = links::create(&mut conn, user.ctx.workspace_id, domain_id, form.input).await;
    state.clicks.forget_destinations();
    if let Ok(l) = &created {
        postback_domain::tenancy::audit::record(
            &mut conn,
            &user.ctx,
            "link.create",
            &l.row.slug,
            json!({"id": l.row.id}),
        )
        .await?;
    }
    match created {
        Ok(l) => Ok(redirect_with(
            &back,
            "success",
            &format!("Created link {}: {}", l.row.name, l.url(&state.base_url)),
            state.secure_cookies,
        )),
        Err(e) => refused(&back, e, state.secure_cookies),
    }
}

/// One bar of the clicks chart (SVG user units).
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub title: String,
}

pub struct DayRow {
    pub day: String,
    /// With thousands separators.
    pub clicks: String,
}

pub struct TargetStatsRow {
    pub index: usize,
    pub url: String,
    pub weight: String,
    pub clicks: String,
    pub share: String,
}

pub struct AttributedRow {
    pub which: &'static str,
    pub label: &'static str,
    pub conversions: String,
    pub revenue: String,
}

#[derive(Template)]
#[template(path = "links/show.html")]
struct LinkPage {
    chrome: Chrome,
    domain_id: String,
    hostname: String,
    id: String,
    name: String,
    slug: String,
    url: String,
    targets: Vec<TargetForm>,
    bars: Vec<Bar>,
    chart_max: i64,
    first_day: String,
    last_day: String,
    days: Vec<DayRow>,
    clicks_in_days: String,
    total_clicks: String,
    per_target: Vec<TargetStatsRow>,
    attributed: Vec<AttributedRow>,
}

pub const CHART_WIDTH: u32 = 600;
pub const CHART_HEIGHT: u32 = 120;

/// Bars for counts, scaled so the highest fills the chart's height (a day without clicks gets
/// a 1-unit sliver so the axis reads as days).
pub fn bars(days: &[(String, i64)]) -> Vec<Bar> {
    let n = u32::try_from(days.len().max(1)).unwrap_or(1);
    let slot = CHART_WIDTH / n;
    let max = days.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    days.iter()
        .enumerate()
        .map(|(i, (day, clicks))| {
            let scaled = (*clicks).max(0) * i64::from(CHART_HEIGHT) / max;
            let height = u32::try_from(scaled).unwrap_or(CHART_HEIGHT).max(1);
            Bar {
                x: u32::try_from(i).unwrap_or(0) * slot + 1,
                y: CHART_HEIGHT - height,
                width: slot.saturating_sub(2).max(1),
                height,
                title: format!(
                    "{day}: {clicks} click{}",
                    if *clicks == 1 { "" } else { "s" }
                ),
            }
        })
        .collect()
}

/// "40 EUR, 10.5 USD", or "—".
fn revenue(a: &Attributed) -> String {
    if a.revenue.is_empty() {
        return "—".into();
    }
    a.revenue
        .iter()
        .map(|r| crate::money::money(r.amount, &r.currency))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GET /links/{id}`: the link's numbers and its edit form.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<LinkId>,
) -> WebResult<HttpResponse> {
    let ws = user.ctx.workspace_id;
    let mut conn = state.conn().await?;
    let link = links::get(&mut conn, ws, path.into_inner()).await?;
    let domain = domains::get(&mut conn, ws, link.row.domain_id).await?;
    let stats = links::stats(&mut conn, ws, &link, Utc::now()).await?;
    let days: Vec<(String, i64)> = stats
        .days
        .iter()
        .map(|d| (d.day.format("%Y-%m-%d").to_string(), d.clicks))
        .collect();
    let total_weight: i64 = link.targets.iter().map(|t| i64::from(t.weight)).sum();
    let chrome = Chrome::new(&req, &user, "domains");
    let had_flash = chrome.flash.is_some();
    let tpl = LinkPage {
        chrome,
        domain_id: domain.id.to_string(),
        hostname: domain.hostname,
        id: link.row.id.to_string(),
        url: link.url(&state.base_url),
        name: link.row.name.clone(),
        slug: link.row.slug.clone(),
        targets: link
            .targets
            .iter()
            .map(|t| TargetForm {
                id: t.id.to_string(),
                url: t.url.clone(),
                weight: t.weight.to_string(),
            })
            .chain([TargetForm::blank("")])
            .collect(),
        bars: bars(&days),
        chart_max: days.iter().map(|d| d.1).max().unwrap_or(0),
        first_day: days.first().map(|d| d.0.clone()).unwrap_or_default(),
        last_day: days.last().map(|d| d.0.clone()).unwrap_or_default(),
        days: days
            .into_iter()
            .rev()
            .map(|(day, clicks)| DayRow {
                day,
                clicks: crate::money::count(clicks),
            })
            .collect(),
        clicks_in_days: crate::money::count(stats.clicks_in_days),
        total_clicks: crate::money::count(stats.total_clicks),
        per_target: stats
            .per_target
            .iter()
            .enumerate()
            .map(|(index, t)| {
                let weight = link
                    .targets
                    .iter()
                    .find(|lt| lt.id == t.target_id)
                    .map(|lt| i64::from(lt.weight));
                TargetStatsRow {
                    index,
                    url: t
                        .url
                        .clone()
                        .unwrap_or_else(|| format!("Removed target {}", t.target_id)),
                    weight: weight.map_or_else(
                        || "—".into(),
                        |w| format!("{w} ({}%)", w * 100 / total_weight.max(1)),
                    ),
                    clicks: crate::money::count(t.clicks),
                    share: if stats.total_clicks > 0 {
                        format!("{}%", t.clicks * 100 / stats.total_clicks)
                    } else {
                        "—".into()
                    },
                }
            })
            .collect(),
        attributed: vec![
            AttributedRow {
                which: "first",
                label: "First touch",
                conversions: crate::money::count(stats.first_touch.conversions),
                revenue: revenue(&stats.first_touch),
            },
            AttributedRow {
                which: "last",
                label: "Last touch",
                conversions: crate::money::count(stats.last_touch.conversions),
                revenue: revenue(&stats.last_touch),
            },
        ],
    };
    page(&tpl, had_flash)
}

/// `POST /links/{id}`: saves the edit form.
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<LinkId>,
    body: web::Bytes,
) -> WebResult<HttpResponse> {
    let form = parse_form(&body);
    verify_csrf(&req, &form.csrf)?;
    let id = path.into_inner();
    let back = format!("/links/{id}");
    let mut conn = state.conn().await?;
    let updated = links::update(&mut conn, user.ctx.workspace_id, id, form.input).await;
    state.clicks.forget_destinations();
    if let Ok(l) = &updated {
        postback_domain::tenancy::audit::record(
            &mut conn,
            &user.ctx,
            "link.update",
            &l.row.slug,
            json!({"id": l.row.id}),
        )
        .await?;
    }
    match updated {
        Ok(l) => Ok(redirect_with(
            &back,
            "success",
            &format!("Saved link {}.", l.row.name),
            state.secure_cookies,
        )),
        Err(DomainError::NotFound(_)) => Err(WebError::NotFound),
        Err(e) => refused(&back, e, state.secure_cookies),
    }
}

/// `GET /links/{id}/delete`: asks first.
pub async fn confirm_delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<LinkId>,
) -> WebResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let link = links::get(&mut conn, user.ctx.workspace_id, path.into_inner()).await?;
    let chrome = Chrome::new(&req, &user, "domains");
    let tpl = ConfirmPage {
        chrome,
        title: format!("Delete link {}?", link.row.name),
        message: format!(
            "{} will answer \"Link not found\" from now on, wherever it was shared. Clicks \
             already recorded stay on the touches and events they belong to.",
            link.url(&state.base_url)
        ),
        action: format!("/links/{}/delete", link.row.id),
        button: "Delete link".into(),
        cancel: format!("/links/{}", link.row.id),
        danger: true,
    };
    page(&tpl, false)
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<LinkId>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let link = links::delete(&mut conn, user.ctx.workspace_id, path.into_inner()).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.ctx,
        "link.delete",
        &link.row.slug,
        json!({"id": link.row.id}),
    )
    .await?;
    state.clicks.forget_destinations();
    Ok(redirect_with(
        &tracking_path(link.row.domain_id),
        "success",
        &format!("Deleted link {}.", link.row.name),
        state.secure_cookies,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_keeps_target_rows_in_order_and_skips_empty_ones() {
        let id = LinkTargetId::new();
        let body = format!(
            "csrf_token=t&name=Spring&slug=Spring-Sale&target_id={id}&target_url=https%3A%2F%2Fa.test%2F&target_weight=3\
             &target_id=&target_url=&target_weight=\
             &target_id=&target_url=https%3A%2F%2Fb.test%2F&target_weight="
        );
        let s = parse_form(body.as_bytes());
        assert_eq!(s.csrf, "t");
        assert_eq!(s.input.slug.as_deref(), Some("spring-sale"));
        let targets = s.input.targets.expect("targets");
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].id, Some(id));
        assert_eq!(targets[0].weight, 3);
        assert_eq!(targets[1].url, "https://b.test/");
        assert_eq!(targets[1].weight, 1);
        assert_eq!(
            readable("targets[1].weight must be a whole number"),
            "Target 2: weight must be a whole number"
        );
    }

    #[test]
    fn bars_scale_to_the_busiest_day() {
        let b = bars(&[("a".into(), 0), ("b".into(), 5), ("c".into(), 10)]);
        assert_eq!(b.len(), 3);
        assert_eq!(b[2].height, CHART_HEIGHT);
        assert_eq!(b[1].height, CHART_HEIGHT / 2);
        assert_eq!(b[0].height, 1);
        assert_eq!(b[1].y, CHART_HEIGHT / 2);
        assert_eq!(b[2].title, "c: 10 clicks");
        assert!(b[1].x > b[0].x);
    }
}
