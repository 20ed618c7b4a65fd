//! Settings: personal access tokens for the management API (created and shown once, listed with
//! when they were last used, revoked after a confirmation).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use postback_domain::ids::TokenId;
use postback_domain::ids::{UserId, WorkspaceId};
use postback_domain::store::paging::PageRequest;
use postback_domain::tenancy::team;
use postback_domain::tenancy::tokens::{self, ApiToken};
use postback_domain::DomainError;
use postback_runtime::AppState;
use serde::Deserialize;
use serde_json::json;

use crate::auth::CsrfOnly;
use crate::confirm::ConfirmPage;
use crate::error::{WebError, WebResult};
use crate::format::Zone;
use crate::layout::{page, Chrome};
use crate::session::{redirect_with, verify_csrf, CurrentUser};

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub created_title: String,
    pub last_used: String,
}

impl TokenRow {
    fn new(t: ApiToken, zone: Zone) -> Self {
        Self {
            id: t.id.to_string(),
            prefix: t.prefix,
            created: zone.relative(t.created_at),
            created_title: zone.absolute(t.created_at),
            last_used: t
                .last_used_at
                .map(|t| zone.relative(t))
                .unwrap_or_else(|| "Never".into()),
            name: t.name,
        }
    }
}

#[derive(Template)]
#[template(path = "settings/show.html")]
struct SettingsPage {
    chrome: Chrome,
    base_url: String,
    tokens: Vec<TokenRow>,
    /// (name, value) of a token created by this very request: its only showing.
    new_token: Option<(String, String)>,
    error: Option<String>,
    /// The workspace's audit log, for its owners.
    audit: Option<Vec<crate::admin::AuditRow>>,
    owner: bool,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    workspaces: Vec<team::WorkspaceChoice>,
}

pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub joined: String,
    pub me: bool,
}

pub struct InvitationRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub sent: String,
}

async fn render(
    req: &HttpRequest,
    state: &AppState,
    user: &CurrentUser,
    new_token: Option<(String, String)>,
    error: Option<String>,
) -> WebResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let listed = tokens::list(&mut conn, user.ctx.workspace_id, PageRequest::first(100)).await?;
    let members = team::members(&mut conn, user.ctx.workspace_id)
        .await?
        .into_iter()
        .map(|m| MemberRow {
            user_id: m.user_id.to_string(),
            me: m.user_id == user.ctx.user_id,
            joined: Zone::of(user).relative(m.joined_at),
            email: m.email,
            role: m.role,
        })
        .collect();
    let invitations = team::invitations(&mut conn, user.ctx.workspace_id)
        .await?
        .into_iter()
        .map(|i| InvitationRow {
            id: i.id.to_string(),
            sent: Zone::of(user).relative(i.created_at),
            email: i.email,
            role: i.role,
        })
        .collect();
    let workspaces = team::workspaces_of(&mut conn, &user.ctx).await?;
    let audit = if user.ctx.is_owner() {
        let entries = postback_domain::admin::audit(
            &mut conn,
            Some(user.ctx.workspace_id),
            postback_domain::store::paging::PageRequest::first(50),
        )
        .await?
        .items;
        Some(crate::admin::audit_rows(entries, Zone::of(user)))
    } else {
        None
    };
    let chrome = Chrome::new(req, user, "settings");
    let had_flash = chrome.flash.is_some();
    let mut resp = page(
        &SettingsPage {
            chrome,
            base_url: state.base_url.clone(),
            tokens: listed
                .items
                .into_iter()
                .map(|t| TokenRow::new(t, Zone::of(user)))
                .collect(),
            new_token,
            error,
            audit,
            owner: user.ctx.is_owner(),
            members,
            invitations,
            workspaces,
        },
        had_flash,
    )?;
    resp.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
) -> WebResult<HttpResponse> {
    render(&req, &state, &user, None, None).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    csrf_token: String,
    name: String,
}

/// Creates a token and shows its value in this response only (it is never stored in clear, put
/// in a cookie or shown again).
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<TokenForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let created = {
        let mut conn = state.conn().await?;
        let created = tokens::create(&mut conn, &user.ctx, &form.name).await;
        if let Ok(c) = &created {
            let detail = json!({"id": c.token.id, "prefix": c.token.prefix});
            postback_domain::tenancy::audit::record(
                &mut conn,
                &user.ctx,
                "token.create",
                &c.token.name,
                detail,
            )
            .await?;
        }
        created
    };
    match created {
        Ok(c) => {
            render(
                &req,
                &state,
                &user,
                Some((c.token.name, c.token_value)),
                None,
            )
            .await
        }
        Err(DomainError::Invalid(m)) => render(&req, &state, &user, None, Some(m)).await,
        Err(e) => Err(WebError::from(e)),
    }
}

pub async fn confirm_revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<TokenId>,
) -> WebResult<HttpResponse> {
    let t = {
        let mut conn = state.conn().await?;
        tokens::get(&mut conn, user.ctx.workspace_id, path.into_inner()).await?
    };
    let chrome = Chrome::new(&req, &user, "settings");
    let had_flash = chrome.flash.is_some();
    page(
        &ConfirmPage {
            chrome,
            title: format!("Revoke \"{}\"?", t.name),
            message: format!(
                "Anything using {}… stops working at once. This cannot be undone.",
                t.prefix
            ),
            action: format!("/settings/tokens/{}/revoke", t.id),
            button: "Revoke token".into(),
            cancel: "/settings".into(),
            danger: true,
        },
        had_flash,
    )
}

pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<TokenId>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let t = tokens::revoke(&mut conn, user.ctx.workspace_id, path.into_inner()).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.ctx,
        "token.revoke",
        &t.name,
        json!({"id": t.id, "prefix": t.prefix}),
    )
    .await?;
    Ok(redirect_with(
        "/settings",
        "success",
        &format!("Revoked \"{}\". It no longer authenticates.", t.name),
        state.secure_cookies,
    ))
}

/// Where team actions return, with what happened.
fn back(state: &AppState, kind: &str, message: &str) -> HttpResponse {
    redirect_with("/settings#team", kind, message, state.secure_cookies)
}

fn outcome<T>(
    state: &AppState,
    result: postback_domain::DomainResult<T>,
    ok: impl FnOnce(T) -> String,
) -> WebResult<HttpResponse> {
    match result {
        Ok(v) => Ok(back(state, "success", &ok(v))),
        Err(DomainError::Invalid(m) | DomainError::Conflict(m) | DomainError::Forbidden(m)) => {
            Ok(back(state, "error", &m))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct MemberForm {
    csrf_token: String,
    email: String,
    role: String,
}

pub async fn add_member(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<MemberForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let added = team::add(
        &mut conn,
        &user.ctx,
        &state.base_url,
        &form.email,
        &form.role,
    )
    .await;
    outcome(&state, added, |a| match a {
        team::Added::Invitation(i) => format!(
            "Invited {}: they join as {} with the link in the invitation mail (valid 7 days).",
            i.email, i.role
        ),
    })
}

#[derive(Deserialize)]
pub struct RoleForm {
    csrf_token: String,
    role: String,
}

pub async fn set_role(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<UserId>,
    form: web::Form<RoleForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let changed = team::set_role(&mut conn, &user.ctx, path.into_inner(), &form.role).await;
    outcome(&state, changed, |m| {
        format!("{} is now {}.", m.email, m.role)
    })
}

pub async fn confirm_remove(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<UserId>,
) -> WebResult<HttpResponse> {
    let id = path.into_inner();
    let member = {
        let mut conn = state.conn().await?;
        team::members(&mut conn, user.ctx.workspace_id)
            .await?
            .into_iter()
            .find(|m| m.user_id == id)
            .ok_or(WebError::NotFound)?
    };
    let chrome = Chrome::new(&req, &user, "settings");
    let had_flash = chrome.flash.is_some();
    page(
        &ConfirmPage {
            chrome,
            title: format!("Remove {}?", member.email),
            message: format!(
                "{} loses access to {} at once. Their own account and workspaces stay.",
                member.email, user.ctx.workspace_name
            ),
            action: format!("/settings/members/{id}/remove"),
            button: "Remove member".into(),
            cancel: "/settings#team".into(),
            danger: true,
        },
        had_flash,
    )
}

pub async fn remove_member(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<UserId>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let removed = team::remove(&mut conn, &user.ctx, path.into_inner()).await;
    outcome(&state, removed, |_| {
        "Removed from the workspace.".to_owned()
    })
}

pub async fn cancel_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<uuid::Uuid>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let cancelled = team::cancel_invitation(&mut conn, &user.ctx, path.into_inner()).await;
    outcome(&state, cancelled, |_| "Invitation withdrawn.".to_owned())
}

pub async fn resend_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<uuid::Uuid>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let resent =
        team::resend_invitation(&mut conn, &user.ctx, &state.base_url, path.into_inner()).await;
    outcome(&state, resent, |i| {
        format!(
            "Invitation sent again to {}, with a new link valid 7 days.",
            i.email
        )
    })
}

pub async fn switch_workspace(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<WorkspaceId>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let to = path.into_inner();
    let mut conn = state.conn().await?;
    team::switch(&mut conn, &user.ctx, user.ctx.session_id, to).await?;
    let name = team::workspaces_of(&mut conn, &user.ctx)
        .await?
        .into_iter()
        .find(|w| w.id == to)
        .map(|w| w.name)
        .unwrap_or_default();
    Ok(redirect_with(
        "/domains",
        "success",
        &format!("Switched to {name}."),
        state.secure_cookies,
    ))
}
