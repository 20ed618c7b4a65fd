//! `/v1/domains/{id}/keys` and `/v1/keys/{id}/…`: the inbound integration key lifecycle.

use actix_web::{web, HttpResponse};
use postback_domain::domains;
use postback_domain::ids::{DomainId, KeyId};
use postback_domain::keys::{self, KeyView};
use serde::Deserialize;

use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::v1::domains::ListQuery;

#[derive(Deserialize)]
pub struct CreateBody {
    name: String,
}

pub async fn create(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<DomainId>,
    body: web::Json<CreateBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let key = keys::create(
        &mut conn,
        user.0.workspace_id,
        path.into_inner(),
        &body.name,
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(key))
}

pub async fn list(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<DomainId>,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let ws = user.0.workspace_id;
    let mut conn = state.conn().await?;
    let domain = domains::get(&mut conn, ws, path.into_inner()).await?;
    let page = keys::list(&mut conn, ws, domain.id, query.page()?).await?;
    Ok(HttpResponse::Ok().json(page.map(KeyView::from)))
}

pub async fn revoke(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<KeyId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let key = keys::revoke(&mut conn, user.0.workspace_id, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(KeyView::from(key)))
}

pub async fn restore(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<KeyId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let key = keys::restore(&mut conn, user.0.workspace_id, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(KeyView::from(key)))
}

pub async fn delete(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<KeyId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    keys::delete(&mut conn, user.0.workspace_id, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
