//! `/v1/tokens`: personal access tokens for the management API (`Authorization: Bearer pb_…`).
//! The value is in the 201 only.

use actix_web::{web, HttpResponse};
use postback_domain::ids::TokenId;
use postback_domain::tokens;
use serde::Deserialize;
use serde_json::json;

use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::v1::domains::ListQuery;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
}

pub async fn create(
    state: web::Data<AppState>,
    user: Authenticated,
    body: web::Json<CreateBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let created = tokens::create(&mut conn, &user.0, &body.name).await?;
    Ok(HttpResponse::Created().json(json!({
        "id": created.token.id,
        "name": created.token.name,
        "token": created.token_value,
        "prefix": created.token.prefix,
        "createdAt": created.token.created_at,
        "lastUsedAt": created.token.last_used_at,
    })))
}

pub async fn list(
    state: web::Data<AppState>,
    user: Authenticated,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let page = tokens::list(&mut conn, user.0.workspace_id, query.page()?).await?;
    Ok(HttpResponse::Ok().json(page))
}

pub async fn delete(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<TokenId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    tokens::revoke(&mut conn, user.0.workspace_id, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
