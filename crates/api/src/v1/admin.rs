//! `/v1/admin/*` for platform admins (anyone else gets 404): workspaces with usage, plan changes
//! and suspension, plan limits, and the audit log. `/v1/audit`: a workspace's own log, for owners.

use actix_web::{web, HttpResponse};
use postback_domain::admin::{self, PlanChange, WorkspaceChange};
use postback_domain::admin::{AuditEntry, WorkspaceRow};
use postback_domain::ids::WorkspaceId;
use postback_domain::store::paging::{Page, PageRequest};
use postback_domain::tenancy::plans;
use postback_domain::tenancy::plans::Plan;
use serde::Deserialize;

use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use crate::schemas::Items;
use crate::v1::domains::ListQuery;
use postback_runtime::AppState;

/// Only platform admins see that these routes exist.
fn require_admin(user: &Authenticated) -> ApiResult<()> {
    if user.0.is_admin {
        Ok(())
    } else {
        Err(ApiError::NotFound("not found".into()))
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Part of a workspace's name or its owner's email.
    search: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(operation_id = "adminWorkspaces", get, path = "/v1/admin/workspaces", tag = "admin", params(SearchQuery), responses((status = 200, description = "Workspaces with usage, newest first", body = Page<WorkspaceRow>)))]
pub async fn workspaces(
    state: web::Data<AppState>,
    user: Authenticated,
    query: web::Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    require_admin(&user)?;
    let mut conn = state.conn().await?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let listed: Page<WorkspaceRow> =
        admin::workspaces(&mut conn, query.search.as_deref(), page).await?;
    Ok(HttpResponse::Ok().json(listed))
}

#[utoipa::path(operation_id = "adminWorkspace", get, path = "/v1/admin/workspaces/{id}", tag = "admin", params(("id" = uuid::Uuid, Path, description = "Workspace id")), responses((status = 200, description = "A workspace with usage", body = WorkspaceRow)))]
pub async fn workspace(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WorkspaceId>,
) -> ApiResult<HttpResponse> {
    require_admin(&user)?;
    let mut conn = state.conn().await?;
    Ok(HttpResponse::Ok().json(admin::workspace(&mut conn, path.into_inner()).await?))
}

#[utoipa::path(operation_id = "adminChangeWorkspace", patch, path = "/v1/admin/workspaces/{id}", tag = "admin", params(("id" = uuid::Uuid, Path, description = "Workspace id")), request_body = WorkspaceChange, responses((status = 200, description = "Changed (audited)", body = WorkspaceRow)))]
pub async fn change_workspace(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WorkspaceId>,
    body: web::Json<WorkspaceChange>,
) -> ApiResult<HttpResponse> {
    require_admin(&user)?;
    let mut conn = state.conn().await?;
    let w =
        admin::change_workspace(&mut conn, &user.0, path.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(w))
}

#[utoipa::path(operation_id = "adminPlans", get, path = "/v1/admin/plans", tag = "admin", responses((status = 200, description = "Every plan and its limits", body = Items<Plan>)))]
pub async fn plans(state: web::Data<AppState>, user: Authenticated) -> ApiResult<HttpResponse> {
    require_admin(&user)?;
    let mut conn = state.conn().await?;
    let items: Vec<Plan> = plans::list(&mut conn).await?;
    Ok(HttpResponse::Ok().json(Items { items }))
}

#[utoipa::path(operation_id = "adminChangePlan", patch, path = "/v1/admin/plans/{tier}", tag = "admin", params(("tier" = String, Path, description = "Plan tier, e.g. `free`")), request_body = PlanChange, responses((status = 200, description = "New limits, applied at once", body = Plan)))]
pub async fn change_plan(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<String>,
    body: web::Json<PlanChange>,
) -> ApiResult<HttpResponse> {
    require_admin(&user)?;
    let mut conn = state.conn().await?;
    let p = admin::change_plan(&mut conn, &user.0, &path.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(p))
}

#[utoipa::path(operation_id = "adminAudit", get, path = "/v1/admin/audit", tag = "admin", params(ListQuery), responses((status = 200, description = "The audit log of every workspace, newest first", body = Page<AuditEntry>)))]
pub async fn audit(
    state: web::Data<AppState>,
    user: Authenticated,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    require_admin(&user)?;
    let mut conn = state.conn().await?;
    let listed: Page<AuditEntry> = admin::audit(&mut conn, None, query.page()?).await?;
    Ok(HttpResponse::Ok().json(listed))
}

/// The caller's workspace's own audit log; owners only.
#[utoipa::path(operation_id = "adminOwnAudit", get, path = "/v1/audit", tag = "team", params(ListQuery), responses((status = 200, description = "The workspace's own audit log, newest first (owners)", body = Page<AuditEntry>)))]
pub async fn own_audit(
    state: web::Data<AppState>,
    user: Authenticated,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    if !user.0.is_owner() {
        return Err(ApiError::NotFound("not found".into()));
    }
    let mut conn = state.conn().await?;
    let listed = admin::audit(&mut conn, Some(user.0.workspace_id), query.page()?).await?;
    Ok(HttpResponse::Ok().json(listed))
}
