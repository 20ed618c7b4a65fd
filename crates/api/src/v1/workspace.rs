//! `/v1/workspace/settings`: the workspace's settings a script may read and change — today its
//! time zone (an IANA name), in which the overview and `/v1/stats` count days and the dashboard
//! shows times.

use actix_web::{web, HttpResponse};
use postback_domain::stats;
use postback_runtime::AppState;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Authenticated;
use crate::error::ApiResult;

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSettings {
    /// IANA time zone name, `UTC` unless set.
    #[schema(example = "Europe/Berlin")]
    time_zone: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = WorkspaceSettingsChange)]
pub struct SettingsBody {
    /// An IANA time zone name PostgreSQL knows (`Europe/Berlin`, `America/New_York`, `UTC`);
    /// any other answers 400.
    #[schema(example = "Europe/Berlin", min_length = 1, max_length = 64)]
    time_zone: String,
}

/// `GET /v1/workspace/settings`.
#[utoipa::path(operation_id = "workspaceSettingsGet", get, path = "/v1/workspace/settings", tag = "team", responses((status = 200, description = "The workspace's settings", body = WorkspaceSettings)))]
pub async fn get(state: web::Data<AppState>, user: Authenticated) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let time_zone = stats::time_zone(&mut conn, user.0.workspace_id).await?;
    Ok(HttpResponse::Ok().json(WorkspaceSettings { time_zone }))
}

/// `PATCH /v1/workspace/settings` `{timeZone}`: 400 naming `timeZone` for a zone PostgreSQL
/// does not know.
#[utoipa::path(operation_id = "workspaceSettingsUpdate", patch, path = "/v1/workspace/settings", tag = "team", request_body = SettingsBody, responses((status = 200, description = "Updated", body = WorkspaceSettings), (status = 400, description = "Unknown time zone", body = crate::schemas::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    user: Authenticated,
    body: web::Json<SettingsBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let ws = user.0.workspace_id;
    let name = body.time_zone.trim();
    stats::set_time_zone(&mut conn, ws, name).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "workspace.time_zone",
        name,
        json!({"timeZone": name}),
    )
    .await?;
    let time_zone = stats::time_zone(&mut conn, ws).await?;
    Ok(HttpResponse::Ok().json(WorkspaceSettings { time_zone }))
}
