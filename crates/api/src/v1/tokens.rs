//! `/v1/tokens`: personal access tokens for the management API (`Authorization: Bearer pb_…`).
//! The value is in the 201 only.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use postback_domain::ids::TokenId;
use postback_domain::store::paging::Page;
use postback_domain::tenancy::tokens;
use postback_domain::tenancy::tokens::ApiToken;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::v1::domains::ListQuery;
use postback_runtime::AppState;

/// A token just made: the only answer that holds its value.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewToken {
    id: TokenId,
    name: String,
    /// `pb_…`: send it as `Authorization: Bearer pb_…`. Shown once.
    token: String,
    prefix: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
#[schema(as = NewTokenRequest)]
pub struct CreateBody {
    #[schema(
        example = "CI deploys",
        min_length = 1,
        max_length = 100,
        pattern = "\\S"
    )]
    name: String,
}

#[utoipa::path(operation_id = "tokensCreate", post, path = "/v1/tokens", tag = "tokens", request_body = CreateBody, responses((status = 201, description = "Created; `token` is shown only in this answer", body = NewToken)))]
pub async fn create(
    state: web::Data<AppState>,
    user: Authenticated,
    body: web::Json<CreateBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let created = tokens::create(&mut conn, &user.0, &body.name).await?;
    let detail = json!({"id": created.token.id, "prefix": created.token.prefix});
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "token.create",
        &created.token.name,
        detail,
    )
    .await?;
    Ok(HttpResponse::Created().json(NewToken {
        id: created.token.id,
        name: created.token.name,
        token: created.token_value,
        prefix: created.token.prefix,
        created_at: created.token.created_at,
        last_used_at: created.token.last_used_at,
    }))
}

#[utoipa::path(operation_id = "tokensList", get, path = "/v1/tokens", tag = "tokens", params(ListQuery), responses((status = 200, description = "Tokens (never their values), newest first", body = Page<ApiToken>)))]
pub async fn list(
    state: web::Data<AppState>,
    user: Authenticated,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let page = tokens::list(&mut conn, user.0.workspace_id, query.page()?).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(operation_id = "tokensDelete", delete, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = uuid::Uuid, Path, description = "Token id")), responses((status = 204, description = "Revoked")))]
pub async fn delete(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<TokenId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let id = path.into_inner();
    tokens::revoke(&mut conn, user.0.workspace_id, id).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "token.revoke",
        &format!("token {id}"),
        Value::Null,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
