//! `/v1/invitations/*`: joining a workspace with the token of an invitation mail, and an owner
//! resending one.

use actix_web::{web, HttpResponse};
use postback_domain::tenancy::team::{self, Invitation, InvitationOffer};
use serde::Deserialize;

use crate::auth::Authenticated;
use crate::error::ApiResult;
use postback_runtime::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    /// The `token` of the invitation link.
    #[schema(min_length = 1, max_length = 128)]
    token: String,
}

#[utoipa::path(operation_id = "invitationAccept", post, path = "/v1/invitations/accept", tag = "team", request_body = AcceptBody, responses((status = 200, description = "The signed-in user joined the workspace (switch to it with /v1/workspaces/{id}/switch)", body = InvitationOffer), (status = 400, description = "The token is invalid, used, withdrawn or expired", body = crate::schemas::ErrorBody)))]
pub async fn accept(
    state: web::Data<AppState>,
    user: Authenticated,
    body: web::Json<AcceptBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let joined = team::accept(&mut conn, user.0.user_id, &user.0.email, &body.token).await?;
    Ok(HttpResponse::Ok().json(joined))
}

#[utoipa::path(operation_id = "invitationResend", post, path = "/v1/invitations/{id}/resend", tag = "team", params(("id" = uuid::Uuid, Path, description = "Invitation id")), responses((status = 200, description = "Mailed again with a new link, valid 7 days", body = Invitation)))]
pub async fn resend(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<uuid::Uuid>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let inv =
        team::resend_invitation(&mut conn, &user.0, &state.base_url, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(inv))
}
