//! Domains pages: list, add, delete (with a confirmation step).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use postback_domain::ids::DomainId;
use postback_domain::store::paging::PageRequest;
use postback_domain::tenancy::domains::{self, Domain};
use postback_domain::tenancy::plans;
use postback_domain::DomainError;
use postback_runtime::AppState;
use serde::Deserialize;
use serde_json::json;

use crate::auth::CsrfOnly;
use crate::confirm::ConfirmPage;
use crate::error::WebResult;
use crate::format::Zone;
use crate::layout::{page, Chrome};
use crate::session::{redirect_with, verify_csrf, CurrentUser};

pub struct DomainRow {
    pub id: String,
    pub hostname: String,
    pub site_id: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "domains/list.html")]
struct DomainsPage {
    chrome: Chrome,
    domains: Vec<DomainRow>,
    usage: String,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    pub cursor: Option<String>,
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    query: web::Query<PageQuery>,
) -> WebResult<HttpResponse> {
    let ws = user.ctx.workspace_id;
    let mut conn = state.conn().await?;
    let page_req =
        PageRequest::parse(Some(100), query.cursor.as_deref()).unwrap_or(PageRequest::first(100));
    let listed = domains::list(&mut conn, ws, page_req).await?;
    let plan = plans::get(&mut conn, &user.ctx.plan).await?;
    let used = domains::count(&mut conn, ws).await?;
    let chrome = Chrome::new(&req, &user, "domains");
    let had_flash = chrome.flash.is_some();
    let tpl = DomainsPage {
        chrome,
        domains: listed
            .items
            .into_iter()
            .map(|d: Domain| DomainRow {
                id: d.id.to_string(),
                hostname: d.hostname,
                site_id: d.site_id,
                created: Zone::of(&user).relative(d.created_at),
            })
            .collect(),
        usage: format!(
            "{} domains used",
            plans::usage_label(used, plan.max_domains.map(i64::from))
        ),
        next_cursor: listed.next_cursor,
    };
    page(&tpl, had_flash)
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    hostname: String,
}

pub async fn add(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<AddForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let secure = state.secure_cookies;
    let mut conn = state.conn().await?;
    let created = domains::create(&mut conn, user.ctx.workspace_id, &form.hostname).await;
    if let Ok(d) = &created {
        postback_domain::tenancy::audit::record(
            &mut conn,
            &user.ctx,
            "domain.create",
            &d.hostname,
            json!({"id": d.id}),
        )
        .await?;
    }
    match created {
        Ok(d) => Ok(redirect_with(
            &format!("/domains/{}/keys", d.id),
            "success",
            &format!(
                "Added {}. Create an inbound integration key to start sending events.",
                d.hostname
            ),
            secure,
        )),
        Err(DomainError::Invalid(m) | DomainError::Conflict(m) | DomainError::LimitReached(m)) => {
            Ok(redirect_with("/domains", "error", &m, secure))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn show(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<DomainId>,
) -> WebResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let d = domains::get(&mut conn, user.ctx.workspace_id, path.into_inner()).await?;
    Ok(crate::session::redirect(&format!("/domains/{}/keys", d.id)))
}

pub async fn confirm_delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<DomainId>,
) -> WebResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let d = domains::get(&mut conn, user.ctx.workspace_id, path.into_inner()).await?;
    let chrome = Chrome::new(&req, &user, "domains");
    let tpl = ConfirmPage {
        chrome,
        title: format!("Delete {}?", d.hostname),
        message: "The domain, its inbound integration keys and its events are deleted for good. \
                  Systems sending events with its keys will get authentication errors."
            .into(),
        action: format!("/domains/{}/delete", d.id),
        button: "Delete domain".into(),
        cancel: "/domains".into(),
        danger: true,
    };
    page(&tpl, false)
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<DomainId>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let d = domains::get(&mut conn, user.ctx.workspace_id, path.into_inner()).await?;
    domains::delete(&mut conn, user.ctx.workspace_id, d.id).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.ctx,
        "domain.delete",
        &d.hostname,
        json!({"id": d.id}),
    )
    .await?;
    state.clicks.forget_destinations();
    Ok(redirect_with(
        "/domains",
        "success",
        &format!("Deleted {}.", d.hostname),
        state.secure_cookies,
    ))
}

#[derive(Template)]
#[template(path = "domains/tracking.html")]
struct TrackingTab {
    chrome: Chrome,
    domain_id: String,
    hostname: String,
    site_id: String,
    /// The tag for this domain's pages, ready to copy.
    snippet: String,
    /// `{base}/__cc/go`, what every link starts with.
    go_base: String,
    links: crate::links::LinksSection,
    /// Setup status (issue 22): whether the tag has reported, when, from which page, and what
    /// it reported in the last 24 hours.
    tag_installed: bool,
    tag_last_report: String,
    tag_last_page: String,
    tag_visitors: String,
    tag_emails: String,
}

/// A domain's Tracking tab: the snippet tag to put on its pages, and its tracking links.
pub async fn tracking(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<DomainId>,
) -> WebResult<HttpResponse> {
    let (domain, tag) = {
        let mut conn = state.conn().await?;
        let domain = domains::get(&mut conn, user.ctx.workspace_id, path.into_inner()).await?;
        let tag =
            postback_domain::stats::setup::tag_status(&mut conn, user.ctx.workspace_id, domain.id)
                .await?;
        (domain, tag)
    };
    let links = crate::links::section(&state, &user, &domain).await?;
    let chrome = Chrome::new(&req, &user, "domains");
    let had_flash = chrome.flash.is_some();
    page(
        &TrackingTab {
            chrome,
            links,
            tag_installed: tag.last_report_at.is_some(),
            tag_last_report: tag
                .last_report_at
                .map_or_else(|| "never".to_owned(), |t| Zone::of(&user).relative(t)),
            tag_last_page: tag.last_page.unwrap_or_default(),
            tag_visitors: crate::money::count(tag.visitors_24h),
            tag_emails: crate::money::count(tag.emails_24h),
            go_base: format!("{}/__cc/go", state.base_url),
            snippet: format!(
                r#"<script async src="{}/__cc/t.js" data-site="{}"></script>"#,
                state.base_url, domain.site_id
            ),
            domain_id: domain.id.to_string(),
            hostname: domain.hostname,
            site_id: domain.site_id,
        },
        had_flash,
    )
}
