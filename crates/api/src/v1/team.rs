//! `/v1/members`, `/v1/invitations` and `/v1/workspaces`: the workspace's team (owners manage
//! it) and switching between the workspaces one belongs to.

use actix_web::{web, HttpResponse};
use postback_domain::ids::{UserId, WorkspaceId};
use postback_domain::team;
use serde::Deserialize;
use serde_json::json;

use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub async fn list(state: web::Data<AppState>, user: Authenticated) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let members = team::members(&mut conn, user.0.workspace_id).await?;
    let invitations = team::invitations(&mut conn, user.0.workspace_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": members, "invitations": invitations })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    email: String,
    #[serde(default = "member_role")]
    role: String,
}

fn member_role() -> String {
    "member".into()
}

pub async fn add(
    state: web::Data<AppState>,
    user: Authenticated,
    body: web::Json<AddBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let added = team::add(&mut conn, &user.0, &body.email, &body.role).await?;
    Ok(HttpResponse::Created().json(added))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    role: String,
}

pub async fn set_role(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<UserId>,
    body: web::Json<RoleBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let m = team::set_role(&mut conn, &user.0, path.into_inner(), &body.role).await?;
    Ok(HttpResponse::Ok().json(m))
}

pub async fn remove(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<UserId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    team::remove(&mut conn, &user.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn cancel_invitation(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<uuid::Uuid>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    team::cancel_invitation(&mut conn, &user.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn workspaces(
    state: web::Data<AppState>,
    user: Authenticated,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let items = team::workspaces_of(&mut conn, &user.0).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// Moves the signed-in session to another of the user's workspaces. A token stays in the
/// workspace it was made in.
pub async fn switch(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WorkspaceId>,
) -> ApiResult<HttpResponse> {
    if user.0.session_id.0.is_nil() {
        return Err(ApiError::bad_request(
            "An access token belongs to the workspace it was made in; make one in the other workspace",
        ));
    }
    let mut conn = state.conn().await?;
    team::switch(&mut conn, &user.0, user.0.session_id, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
