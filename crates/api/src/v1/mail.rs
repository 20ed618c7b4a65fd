//! `/v1/admin/mail`: mails that keep failing, for platform admins.

use actix_web::{web, HttpResponse};
use postback_domain::mail::{self, FailingMail};

use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use crate::schemas::Items;
use postback_runtime::AppState;

#[utoipa::path(operation_id = "adminFailingMail", get, path = "/v1/admin/mail", tag = "admin", responses((status = 200, description = "Mails not sent after 3 attempts (still retried, or given up after 72 h), newest first", body = Items<FailingMail>)))]
pub async fn failing(state: web::Data<AppState>, user: Authenticated) -> ApiResult<HttpResponse> {
    if !user.0.is_admin {
        return Err(ApiError::NotFound("not found".into()));
    }
    let mut conn = state.conn().await?;
    let items = mail::failing(&mut conn, 100).await?;
    Ok(HttpResponse::Ok().json(Items { items }))
}
