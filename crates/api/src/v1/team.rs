//! `/v1/members`, `/v1/invitations` and `/v1/workspaces`: the workspace's team (owners manage
//! it) and switching between the workspaces one belongs to.

use actix_web::{web, HttpResponse};
use postback_domain::ids::{UserId, WorkspaceId};
use postback_domain::tenancy::team;
use postback_domain::tenancy::team::{Added, Invitation, Member, WorkspaceChoice};
use serde::{Deserialize, Serialize};

use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use crate::schemas::Items;
use postback_runtime::AppState;

/// The workspace's members and pending invitations.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Team {
    items: Vec<Member>,
    invitations: Vec<Invitation>,
}

#[utoipa::path(operation_id = "teamList", get, path = "/v1/members", tag = "team", responses((status = 200, description = "Members and pending invitations", body = Team)))]
pub async fn list(state: web::Data<AppState>, user: Authenticated) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let members = team::members(&mut conn, user.0.workspace_id).await?;
    let invitations = team::invitations(&mut conn, user.0.workspace_id).await?;
    Ok(HttpResponse::Ok().json(Team {
        items: members,
        invitations,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct AddBody {
    #[schema(
        example = "teammate@example.com",
        max_length = 254,
        pattern = "^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\\.[A-Za-z0-9-]{1,63})+$"
    )]
    email: String,
    #[serde(default = "member_role")]
    #[schema(pattern = "^(owner|member)$")]
    role: String,
}

fn member_role() -> String {
    "member".into()
}

#[utoipa::path(operation_id = "teamAdd", post, path = "/v1/members", tag = "team", request_body = AddBody, responses((status = 201, description = "An invitation mail with a joining link is on its way (the same answer whether or not the address has an account)", body = Added), (status = 409, description = "Already a member or invited", body = crate::schemas::ErrorBody)))]
pub async fn add(
    state: web::Data<AppState>,
    user: Authenticated,
    body: web::Json<AddBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let added = team::add(&mut conn, &user.0, &state.base_url, &body.email, &body.role).await?;
    Ok(HttpResponse::Created().json(added))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct RoleBody {
    /// `owner` or `member`.
    #[schema(pattern = "^(owner|member)$")]
    role: String,
}

#[utoipa::path(operation_id = "teamSetRole", patch, path = "/v1/members/{id}", tag = "team", params(("id" = uuid::Uuid, Path, description = "User id")), request_body = RoleBody, responses((status = 200, description = "Role changed", body = Member)))]
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

#[utoipa::path(operation_id = "teamRemove", delete, path = "/v1/members/{id}", tag = "team", params(("id" = uuid::Uuid, Path, description = "User id")), responses((status = 204, description = "Removed from the workspace")))]
pub async fn remove(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<UserId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    team::remove(&mut conn, &user.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(operation_id = "teamCancelInvitation", delete, path = "/v1/invitations/{id}", tag = "team", params(("id" = uuid::Uuid, Path, description = "Invitation id")), responses((status = 204, description = "Invitation cancelled")))]
pub async fn cancel_invitation(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<uuid::Uuid>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    team::cancel_invitation(&mut conn, &user.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(operation_id = "teamWorkspaces", get, path = "/v1/workspaces", tag = "team", responses((status = 200, description = "The workspaces the user belongs to", body = Items<WorkspaceChoice>)))]
pub async fn workspaces(
    state: web::Data<AppState>,
    user: Authenticated,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let items: Vec<WorkspaceChoice> = team::workspaces_of(&mut conn, &user.0).await?;
    Ok(HttpResponse::Ok().json(Items { items }))
}

/// Moves the signed-in session to another of the user's workspaces. A token stays in the
/// workspace it was made in.
#[utoipa::path(operation_id = "teamSwitch", post, path = "/v1/workspaces/{id}/switch", tag = "team", params(("id" = uuid::Uuid, Path, description = "Workspace id")), responses((status = 204, description = "The session now works in that workspace")))]
pub async fn switch(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WorkspaceId>,
) -> ApiResult<HttpResponse> {
    if user.0.session_id.0.is_nil() {
        return Err(ApiError::Forbidden(
            "An access token belongs to the workspace it was made in; make one in the other workspace"
                .into(),
        ));
    }
    let mut conn = state.conn().await?;
    team::switch(&mut conn, &user.0, user.0.session_id, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteWorkspaceBody {
    /// The workspace's name, typed to confirm.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
}

/// Deletes a workspace (owners only): it disappears at once for every member (who is told by
/// mail), and its data is removed in the background.
#[utoipa::path(operation_id = "teamDeleteWorkspace", post, path = "/v1/workspaces/{id}/delete", tag = "team", params(("id" = uuid::Uuid, Path, description = "Workspace id")), request_body = DeleteWorkspaceBody, responses((status = 202, description = "The workspace is gone for its members; its data is being removed"), (status = 400, description = "The name does not match", body = crate::schemas::ErrorBody)))]
pub async fn delete_workspace(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WorkspaceId>,
    body: web::Json<DeleteWorkspaceBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    postback_domain::tenancy::workspace_deletion::request(
        &mut conn,
        &state.base_url,
        user.0.user_id,
        &user.0.email,
        path.into_inner(),
        &body.name,
    )
    .await?;
    Ok(HttpResponse::Accepted().finish())
}
