//! The workspace's Plan page: its tier, each limit, and usage against it.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use postback_domain::delivery::webhooks;
use postback_domain::ingest::store::count_this_month;
use postback_domain::store::paging::PageRequest;
use postback_domain::tenancy::{domains, keys, plans};
use postback_runtime::AppState;

use crate::error::WebResult;
use crate::layout::{page, Chrome};
use crate::session::CurrentUser;

pub struct LimitRow {
    pub label: &'static str,
    pub limit: String,
    pub usage: String,
    pub over: bool,
}

pub struct DomainKeys {
    pub hostname: String,
    pub usage: String,
}

#[derive(Template)]
#[template(path = "plan/show.html")]
struct PlanPage {
    chrome: Chrome,
    plan_name: String,
    rows: Vec<LimitRow>,
    domain_keys: Vec<DomainKeys>,
    retention: String,
}

fn limit_text(limit: Option<i64>) -> String {
    limit.map_or_else(|| "Unlimited".into(), crate::money::count)
}

fn row(label: &'static str, used: i64, limit: Option<i64>) -> LimitRow {
    LimitRow {
        label,
        limit: limit_text(limit),
        usage: plans::usage_label(used, limit),
        over: limit.is_some_and(|l| used > l),
    }
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
) -> WebResult<HttpResponse> {
    let ws = user.ctx.workspace_id;
    let mut conn = state.conn().await?;
    let plan = plans::get(&mut conn, &user.ctx.plan).await?;
    let all_domains = domains::list(&mut conn, ws, PageRequest::first(1000))
        .await?
        .items;
    let key_limit = plan.max_keys_per_domain.map(i64::from);
    let mut domain_keys = Vec::with_capacity(all_domains.len());
    let mut most_keys = 0;
    for d in &all_domains {
        let active = keys::count_active(&mut conn, ws, d.id).await?;
        most_keys = most_keys.max(active);
        domain_keys.push(DomainKeys {
            hostname: d.hostname.clone(),
            usage: plans::usage_label(active, key_limit),
        });
    }
    let events_this_month = count_this_month(&mut conn, ws).await?;
    let webhooks_used = webhooks::count(&mut conn, ws).await?;
    let rows = vec![
        row(
            "Domains",
            all_domains.len() as i64,
            plan.max_domains.map(i64::from),
        ),
        row(
            "Active inbound integration keys per domain",
            most_keys,
            key_limit,
        ),
        row(
            "Outbound webhooks",
            webhooks_used,
            plan.max_webhooks.map(i64::from),
        ),
        row(
            "Inbound events this month",
            events_this_month,
            plan.max_events_per_month,
        ),
    ];
    let chrome = Chrome::new(&req, &user, "plan");
    let had_flash = chrome.flash.is_some();
    let tpl = PlanPage {
        chrome,
        plan_name: plan.name.clone(),
        rows,
        domain_keys,
        retention: format!("{} days", plan.retention_days),
    };
    page(&tpl, had_flash)
}
