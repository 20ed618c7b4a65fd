//! `/admin` for platform admins (anyone else gets the 404 page): workspaces with owner, plan,
//! status and usage, a workspace's page to change its plan or suspend it, the plan limits table
//! (editable; empty = unlimited) and the audit log.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use postback_domain::admin::{self, AuditEntry, PlanChange, WorkspaceChange, WorkspaceRow};
use postback_domain::ids::WorkspaceId;
use postback_domain::store::paging::PageRequest;
use postback_domain::tenancy::plans::{self, Plan};
use postback_domain::text::thousands;
use postback_domain::DomainError;
use postback_runtime::AppState;
use serde::Deserialize;

use crate::error::{WebError, WebResult};
use crate::format::Zone;
use crate::layout::{page, Chrome};
use crate::session::{redirect_with, verify_csrf, CurrentUser};

fn require_admin(user: &CurrentUser) -> WebResult<()> {
    if user.ctx.is_admin {
        Ok(())
    } else {
        Err(WebError::NotFound)
    }
}

pub struct Row {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub plan: String,
    pub suspended: bool,
    pub reason: String,
    pub domains: i64,
    pub keys: i64,
    pub webhooks: i64,
    pub events: String,
    pub created: String,
}

impl From<WorkspaceRow> for Row {
    fn from(w: WorkspaceRow) -> Self {
        Self {
            id: w.id.to_string(),
            owner: w.owner_email.unwrap_or_else(|| "—".into()),
            plan: w.plan_name,
            suspended: w.status == "suspended",
            reason: w.suspended_reason.unwrap_or_default(),
            domains: w.domains,
            keys: w.active_keys,
            webhooks: w.webhooks,
            events: match w.event_quota {
                Some(q) => format!("{} / {}", thousands(w.events_this_month), thousands(q)),
                None => format!("{} / unlimited", thousands(w.events_this_month)),
            },
            created: Zone::new("UTC").relative(w.created_at),
            name: w.name,
        }
    }
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub change: String,
}

pub(crate) fn audit_rows(entries: Vec<AuditEntry>, zone: Zone) -> Vec<AuditRow> {
    let show =
        |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    entries
        .into_iter()
        .map(|e| AuditRow {
            at: zone.absolute(e.created_at),
            // Actions without a "before" (a deletion, a reveal) show only what they name.
            change: match &e.before {
                Some(_) => format!("{} → {}", show(&e.before), show(&e.after)),
                None => show(&e.after),
            },
            actor: e.actor_email,
            action: e.action,
            target: e.target,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "admin/index.html")]
struct IndexPage {
    chrome: Chrome,
    search: String,
    rows: Vec<Row>,
    next_link: Option<String>,
    audit: Vec<AuditRow>,
    /// Mails that keep failing: (to, subject, attempts, status, last error, queued).
    failing_mail: Vec<(String, String, i32, String, String, String)>,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    cursor: Option<String>,
}

pub async fn index(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    query: web::Query<SearchQuery>,
) -> WebResult<HttpResponse> {
    require_admin(&user)?;
    let search = query.q.clone().unwrap_or_default();
    let mut conn = state.conn().await?;
    let page_req =
        PageRequest::parse(Some(100), query.cursor.as_deref()).unwrap_or(PageRequest::first(100));
    let listed = admin::workspaces(&mut conn, Some(&search), page_req).await?;
    let next_link = listed.next_cursor.map(|c| {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &search)
            .append_pair("cursor", &c)
            .finish();
        format!("/admin?{q}")
    });
    let audit = admin::audit(&mut conn, None, PageRequest::first(50))
        .await?
        .items;
    let failing_mail = postback_domain::mail::failing(&mut conn, 50)
        .await?
        .into_iter()
        .map(|m| {
            (
                m.to_address,
                m.subject,
                m.attempts,
                if m.status == "failed" {
                    "Given up".to_owned()
                } else {
                    "Retrying".to_owned()
                },
                m.last_error.unwrap_or_default(),
                Zone::of(&user).relative(m.created_at),
            )
        })
        .collect();
    let chrome = Chrome::new(&req, &user, "admin");
    let had_flash = chrome.flash.is_some();
    page(
        &IndexPage {
            chrome,
            search,
            rows: listed.items.into_iter().map(Row::from).collect(),
            next_link,
            audit: audit_rows(audit, Zone::of(&user)),
            failing_mail,
        },
        had_flash,
    )
}

#[derive(Template)]
#[template(path = "admin/workspace.html")]
struct WorkspacePage {
    chrome: Chrome,
    w: Row,
    plan_tier: String,
    plans: Vec<(String, String)>,
    audit: Vec<AuditRow>,
}

pub async fn workspace(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<WorkspaceId>,
) -> WebResult<HttpResponse> {
    require_admin(&user)?;
    let id = path.into_inner();
    let mut conn = state.conn().await?;
    let w = admin::workspace(&mut conn, id).await?;
    let all = plans::list(&mut conn).await?;
    let audit = admin::audit(&mut conn, Some(id), PageRequest::first(50))
        .await?
        .items;
    let chrome = Chrome::new(&req, &user, "admin");
    let had_flash = chrome.flash.is_some();
    page(
        &WorkspacePage {
            chrome,
            plan_tier: w.plan.clone(),
            w: Row::from(w),
            plans: all.into_iter().map(|p| (p.tier, p.name)).collect(),
            audit: audit_rows(audit, Zone::of(&user)),
        },
        had_flash,
    )
}

#[derive(Deserialize)]
pub struct WorkspaceForm {
    csrf_token: String,
    plan: Option<String>,
    status: Option<String>,
    reason: Option<String>,
}

pub async fn change_workspace(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<WorkspaceId>,
    form: web::Form<WorkspaceForm>,
) -> WebResult<HttpResponse> {
    require_admin(&user)?;
    verify_csrf(&req, &form.csrf_token)?;
    let id = path.into_inner();
    let back = format!("/admin/workspaces/{id}");
    let form = form.into_inner();
    let change = WorkspaceChange {
        plan: form.plan,
        status: form.status,
        reason: form.reason,
    };
    let mut conn = state.conn().await?;
    match admin::change_workspace(&mut conn, &user.ctx, id, change).await {
        Ok(w) => Ok(redirect_with(
            &back,
            "success",
            &format!(
                "{} is {} on the {} plan.",
                w.name,
                if w.status == "suspended" {
                    "suspended"
                } else {
                    "active"
                },
                w.plan_name
            ),
            state.secure_cookies,
        )),
        Err(DomainError::Invalid(m)) => Ok(redirect_with(&back, "error", &m, state.secure_cookies)),
        Err(e) => Err(e.into()),
    }
}

pub struct PlanRow {
    pub tier: String,
    pub name: String,
    pub keys: String,
    pub domains: String,
    pub webhooks: String,
    pub events: String,
    pub retention: i32,
}

fn limit(v: Option<i64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

impl From<Plan> for PlanRow {
    fn from(p: Plan) -> Self {
        Self {
            keys: limit(p.max_keys_per_domain.map(i64::from)),
            domains: limit(p.max_domains.map(i64::from)),
            webhooks: limit(p.max_webhooks.map(i64::from)),
            events: limit(p.max_events_per_month),
            retention: p.retention_days,
            tier: p.tier,
            name: p.name,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/plans.html")]
struct PlansPage {
    chrome: Chrome,
    plans: Vec<PlanRow>,
}

pub async fn plans_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
) -> WebResult<HttpResponse> {
    require_admin(&user)?;
    let mut conn = state.conn().await?;
    let all = plans::list(&mut conn).await?;
    let chrome = Chrome::new(&req, &user, "admin");
    let had_flash = chrome.flash.is_some();
    page(
        &PlansPage {
            chrome,
            plans: all.into_iter().map(PlanRow::from).collect(),
        },
        had_flash,
    )
}

#[derive(Deserialize)]
pub struct PlanForm {
    csrf_token: String,
    max_keys_per_domain: String,
    max_domains: String,
    max_webhooks: String,
    max_events_per_month: String,
    retention_days: String,
}

/// An input box: empty is unlimited, anything else must be a whole number.
fn parse_limit(label: &str, raw: &str) -> Result<Option<i64>, String> {
    let raw = raw.trim().replace(',', "");
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<i64>()
        .map(Some)
        .map_err(|_| format!("{label} must be a whole number, or empty for unlimited"))
}

pub async fn change_plan(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<PlanForm>,
) -> WebResult<HttpResponse> {
    require_admin(&user)?;
    verify_csrf(&req, &form.csrf_token)?;
    let tier = path.into_inner();
    let back = "/admin/plans";
    let parsed = (|| -> Result<PlanChange, String> {
        Ok(PlanChange {
            max_keys_per_domain: Some(parse_limit("Keys per domain", &form.max_keys_per_domain)?),
            max_domains: Some(parse_limit("Domains", &form.max_domains)?),
            max_webhooks: Some(parse_limit("Webhooks", &form.max_webhooks)?),
            max_events_per_month: Some(parse_limit(
                "Events per month",
                &form.max_events_per_month,
            )?),
            retention_days: Some(
                form.retention_days
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| "Retention must be a whole number of days".to_owned())?,
            ),
        })
    })();
    let change = match parsed {
        Ok(c) => c,
        Err(m) => return Ok(redirect_with(back, "error", &m, state.secure_cookies)),
    };
    let mut conn = state.conn().await?;
    match admin::change_plan(&mut conn, &user.ctx, &tier, change).await {
        Ok(p) => Ok(redirect_with(
            back,
            "success",
            &format!("{} limits saved; they apply at once.", p.name),
            state.secure_cookies,
        )),
        Err(DomainError::Invalid(m)) => Ok(redirect_with(back, "error", &m, state.secure_cookies)),
        Err(e) => Err(e.into()),
    }
}
