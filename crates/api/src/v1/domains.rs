//! `/v1/domains`: add, list, show and delete the workspace's websites.

use actix_web::{web, HttpResponse};
use postback_domain::domains;
use postback_domain::ids::DomainId;
use postback_domain::paging::PageRequest;
use serde::Deserialize;

use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ListQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl ListQuery {
    pub fn page(&self) -> ApiResult<PageRequest> {
        Ok(PageRequest::parse(self.limit, self.cursor.as_deref())?)
    }
}

#[derive(Deserialize)]
pub struct CreateBody {
    hostname: String,
}

pub async fn create(
    state: web::Data<AppState>,
    user: Authenticated,
    body: web::Json<CreateBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let domain = domains::create(&mut conn, user.0.workspace_id, &body.hostname).await?;
    Ok(HttpResponse::Created().json(domain))
}

pub async fn list(
    state: web::Data<AppState>,
    user: Authenticated,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let page = domains::list(&mut conn, user.0.workspace_id, query.page()?).await?;
    Ok(HttpResponse::Ok().json(page))
}

pub async fn get(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<DomainId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let domain = domains::get(&mut conn, user.0.workspace_id, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(domain))
}

pub async fn delete(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<DomainId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    domains::delete(&mut conn, user.0.workspace_id, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateBody {
    attribution_window_days: i64,
}

/// `PATCH /v1/domains/{id}` `{attributionWindowDays}`.
pub async fn update(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<DomainId>,
    body: web::Json<UpdateBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let domain = domains::set_attribution_window(
        &mut conn,
        user.0.workspace_id,
        path.into_inner(),
        body.attribution_window_days,
    )
    .await?;
    Ok(HttpResponse::Ok().json(domain))
}
