//! `/v1/admin/*` for platform admins (anyone else gets 404): workspaces with usage, plan changes
//! and suspension, plan limits, and the audit log. `/v1/audit`: a workspace's own log, for owners.

use actix_web::{web, HttpResponse};
use postback_domain::admin::{self, PlanChange, WorkspaceChange};
use postback_domain::ids::WorkspaceId;
use postback_domain::plans;
use serde::Deserialize;
use serde_json::json;

use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Only platform admins see that these routes exist.
fn require_admin(user: &Authenticated) -> ApiResult<()> {
    if user.0.is_admin {
        Ok(())
    } else {
        Err(ApiError::NotFound("not found".into()))
    }
}

#[derive(Deserialize)]
pub struct SearchQuery {
    search: Option<String>,
    limit: Option<i64>,
}

pub async fn workspaces(
    state: web::Data<AppState>,
    user: Authenticated,
    query: web::Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    require_admin(&user)?;
    let mut conn = state.conn().await?;
    let items = admin::workspaces(
        &mut conn,
        query.search.as_deref(),
        query.limit.unwrap_or(100),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

pub async fn workspace(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WorkspaceId>,
) -> ApiResult<HttpResponse> {
    require_admin(&user)?;
    let mut conn = state.conn().await?;
    Ok(HttpResponse::Ok().json(admin::workspace(&mut conn, path.into_inner()).await?))
}

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

pub async fn plans(state: web::Data<AppState>, user: Authenticated) -> ApiResult<HttpResponse> {
    require_admin(&user)?;
    let mut conn = state.conn().await?;
    Ok(HttpResponse::Ok().json(json!({ "items": plans::list(&mut conn).await? })))
}

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

pub async fn audit(state: web::Data<AppState>, user: Authenticated) -> ApiResult<HttpResponse> {
    require_admin(&user)?;
    let mut conn = state.conn().await?;
    Ok(HttpResponse::Ok().json(json!({ "items": admin::audit(&mut conn, None, 200).await? })))
}

/// The caller's workspace's own audit log; owners only.
pub async fn own_audit(state: web::Data<AppState>, user: Authenticated) -> ApiResult<HttpResponse> {
    if !user.0.is_owner() {
        return Err(ApiError::NotFound("not found".into()));
    }
    let mut conn = state.conn().await?;
    let items = admin::audit(&mut conn, Some(user.0.workspace_id), 200).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}
