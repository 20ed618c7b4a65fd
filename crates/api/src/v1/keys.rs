//! `/v1/domains/{id}/keys` and `/v1/keys/{id}/…`: the inbound integration key lifecycle.

use actix_web::{web, HttpResponse};
use postback_domain::ids::{DomainId, KeyId};
use postback_domain::store::paging::Page;
use postback_domain::tenancy::domains;
use postback_domain::tenancy::keys::{self, KeyView};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::v1::domains::ListQuery;
use postback_runtime::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewKey)]
pub struct CreateBody {
    #[schema(
        example = "Production backend",
        min_length = 1,
        max_length = 100,
        pattern = "\\S"
    )]
    name: String,
}

#[utoipa::path(operation_id = "keysCreate", post, path = "/v1/domains/{id}/keys", tag = "domains", params(("id" = uuid::Uuid, Path, description = "Domain id")), request_body = CreateBody, responses((status = 201, description = "Created; `key` is shown only in this answer", body = KeyView)))]
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
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "key.create",
        &key.name,
        json!({"id": key.id, "prefix": key.prefix}),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(key))
}

#[utoipa::path(operation_id = "keysList", get, path = "/v1/domains/{id}/keys", tag = "domains", params(("id" = uuid::Uuid, Path, description = "Domain id"), ListQuery), responses((status = 200, description = "The domain's inbound integration keys, masked, newest first", body = Page<KeyView>)))]
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
    let ids: Vec<_> = page.items.iter().map(|k| k.id).collect();
    let last = keys::last_events(&mut conn, ws, &ids).await?;
    Ok(HttpResponse::Ok().json(page.map(|k| {
        let at = last.get(&k.id).copied();
        KeyView {
            last_event_at: at,
            ..KeyView::from(k)
        }
    })))
}

#[utoipa::path(operation_id = "keysRevoke", post, path = "/v1/keys/{id}/revoke", tag = "domains", params(("id" = uuid::Uuid, Path, description = "Key id")), responses((status = 200, description = "Revoked: inbound with it answers 401 at once", body = KeyView)))]
pub async fn revoke(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<KeyId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let key = keys::revoke(&mut conn, user.0.workspace_id, path.into_inner()).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "key.revoke",
        &key.name,
        json!({"id": key.id, "prefix": key.prefix}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(KeyView::from(key)))
}

#[utoipa::path(operation_id = "keysRestore", post, path = "/v1/keys/{id}/restore", tag = "domains", params(("id" = uuid::Uuid, Path, description = "Key id")), responses((status = 200, description = "Active again", body = KeyView)))]
pub async fn restore(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<KeyId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let key = keys::restore(&mut conn, user.0.workspace_id, path.into_inner()).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "key.restore",
        &key.name,
        json!({"id": key.id, "prefix": key.prefix}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(KeyView::from(key)))
}

#[utoipa::path(operation_id = "keysDelete", delete, path = "/v1/keys/{id}", tag = "domains", params(("id" = uuid::Uuid, Path, description = "Key id")), responses((status = 204, description = "Deleted")))]
pub async fn delete(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<KeyId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let id = path.into_inner();
    keys::delete(&mut conn, user.0.workspace_id, id).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "key.delete",
        &format!("key {id}"),
        Value::Null,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
