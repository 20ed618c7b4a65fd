//! `/v1/auth/verify`, `/v1/auth/password/*`, `/v1/auth/email`, `/v1/auth/sessions/others` and
//! `/v1/me/*`: the account lifecycle behind the mailed links (verification, password reset,
//! change of address) and the signed-in user's own account settings.

use actix_web::{web, HttpRequest, HttpResponse};
use postback_domain::tenancy::account_links::{self, Verified};
use serde::{Deserialize, Serialize};

use crate::auth::{refuse_cross_site, Authenticated};
use crate::error::{ApiError, ApiResult};
use postback_runtime::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// The `token` of the mailed link.
    #[schema(min_length = 1, max_length = 128)]
    token: String,
}

/// The confirmed address.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedBody {
    email: String,
    /// True when the link changed the account's address to `email`.
    changed: bool,
}

#[utoipa::path(operation_id = "authVerify", post, path = "/v1/auth/verify", tag = "auth", request_body = TokenBody, responses((status = 200, description = "The address is confirmed (or the account's address changed to it)", body = VerifiedBody), (status = 400, description = "The token is invalid, used or expired", body = crate::schemas::ErrorBody)))]
pub async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<TokenBody>,
) -> ApiResult<HttpResponse> {
    refuse_cross_site(&req, &state)?;
    let mut conn = state.conn().await?;
    let done = account_links::verify(&mut conn, &body.token).await?;
    let (email, changed) = match done {
        Verified::Address(e) => (e, false),
        Verified::Changed(e) => (e, true),
    };
    Ok(HttpResponse::Ok().json(VerifiedBody { email, changed }))
}

fn throttled(wait: u64) -> ApiError {
    ApiError::RateLimited(
        format!(
            "Too many mails asked for: try again in {} minutes",
            wait.div_ceil(60)
        ),
        wait,
    )
}

#[utoipa::path(operation_id = "authVerifyResend", post, path = "/v1/auth/verify/resend", tag = "auth", responses((status = 202, description = "A new verification mail is on its way"), (status = 409, description = "The address is already confirmed", body = crate::schemas::ErrorBody)))]
pub async fn resend(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: Authenticated,
) -> ApiResult<HttpResponse> {
    state
        .mail_throttle
        .check(&req, &user.0.email)
        .map_err(throttled)?;
    let mut conn = state.conn().await?;
    account_links::resend_verification(&mut conn, &state.base_url, &user.0).await?;
    account_links::audit(
        &mut conn,
        user.0.user_id,
        &user.0.email,
        "account.verify_resend",
    )
    .await?;
    Ok(HttpResponse::Accepted().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotBody {
    #[schema(example = "jane@example.com", max_length = 254)]
    email: String,
}

/// Always 202, after the same work whether or not the address has an account: the mail (if any)
/// is queued by a task of its own.
#[utoipa::path(operation_id = "authPasswordForgot", post, path = "/v1/auth/password/forgot", tag = "auth", request_body = ForgotBody, responses((status = 202, description = "If the address has an account, a reset link is on its way"), (status = 429, description = "Too many requests for this address or from this client", body = crate::schemas::ErrorBody)))]
pub async fn forgot(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ForgotBody>,
) -> ApiResult<HttpResponse> {
    refuse_cross_site(&req, &state)?;
    if body.email.chars().count() > 254 {
        return Err(ApiError::from(postback_domain::DomainError::invalid(
            "email must be at most 254 characters",
        )));
    }
    state
        .mail_throttle
        .check(&req, &body.email)
        .map_err(throttled)?;
    let email = body.into_inner().email;
    let pool = state.pool.clone();
    let base_url = state.base_url.clone();
    tokio::spawn(async move {
        let result = match postback_domain::store::db::conn(&pool).await {
            Ok(mut conn) => account_links::forgot_password(&mut conn, &base_url, &email).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "password reset mail not queued");
        }
    });
    Ok(HttpResponse::Accepted().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    #[schema(min_length = 1, max_length = 128)]
    token: String,
    /// The new password, at least 8 characters.
    #[schema(min_length = 8, max_length = 256)]
    password: String,
}

#[utoipa::path(operation_id = "authPasswordReset", post, path = "/v1/auth/password/reset", tag = "auth", request_body = ResetBody, responses((status = 204, description = "The new password is set; every session of the account is signed out"), (status = 400, description = "The token is invalid, used or expired, or the password too short", body = crate::schemas::ErrorBody)))]
pub async fn reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ResetBody>,
) -> ApiResult<HttpResponse> {
    refuse_cross_site(&req, &state)?;
    let mut conn = state.conn().await?;
    let (user_id, email) =
        account_links::reset_password(&mut conn, &body.token, &body.password).await?;
    account_links::audit(&mut conn, user_id, &email, "account.password_reset").await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangePasswordBody {
    #[schema(max_length = 256)]
    current_password: String,
    #[schema(min_length = 8, max_length = 256)]
    new_password: String,
}

#[utoipa::path(operation_id = "authPasswordChange", post, path = "/v1/auth/password", tag = "auth", request_body = ChangePasswordBody, responses((status = 204, description = "Password changed; the other sessions are signed out"), (status = 400, description = "Wrong current password or too short a new one", body = crate::schemas::ErrorBody)))]
pub async fn change_password(
    state: web::Data<AppState>,
    user: Authenticated,
    body: web::Json<ChangePasswordBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    account_links::change_password(
        &mut conn,
        &user.0,
        &body.current_password,
        &body.new_password,
    )
    .await?;
    account_links::audit(
        &mut conn,
        user.0.user_id,
        &user.0.email,
        "account.password_change",
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangeEmailBody {
    #[schema(example = "jane@new.example", max_length = 254)]
    new_email: String,
    /// The current password.
    #[schema(max_length = 256)]
    password: String,
}

#[utoipa::path(operation_id = "authEmailChange", post, path = "/v1/auth/email", tag = "auth", request_body = ChangeEmailBody, responses((status = 202, description = "A confirmation link went to the new address (the change takes effect when it is used) and a notice to the current one"), (status = 400, description = "Invalid address or wrong password", body = crate::schemas::ErrorBody)))]
pub async fn change_email(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: Authenticated,
    body: web::Json<ChangeEmailBody>,
) -> ApiResult<HttpResponse> {
    state
        .mail_throttle
        .check(&req, &body.new_email)
        .map_err(throttled)?;
    let mut conn = state.conn().await?;
    account_links::request_email_change(
        &mut conn,
        &state.base_url,
        &user.0,
        &body.new_email,
        &body.password,
    )
    .await?;
    account_links::audit(
        &mut conn,
        user.0.user_id,
        &user.0.email,
        "account.email_change",
    )
    .await?;
    Ok(HttpResponse::Accepted().finish())
}

/// How many sessions ended.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Ended {
    ended: usize,
}

#[utoipa::path(operation_id = "authSignOutOthers", delete, path = "/v1/auth/sessions/others", tag = "auth", responses((status = 200, description = "Every other session of the user is signed out", body = Ended)))]
pub async fn sign_out_others(
    state: web::Data<AppState>,
    user: Authenticated,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let ended = account_links::sign_out_others(&mut conn, &user.0).await?;
    account_links::audit(
        &mut conn,
        user.0.user_id,
        &user.0.email,
        "account.sign_out_others",
    )
    .await?;
    Ok(HttpResponse::Ok().json(Ended { ended }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// The current password.
    #[schema(max_length = 256)]
    password: String,
}

#[utoipa::path(operation_id = "authDeleteAccount", post, path = "/v1/me/delete", tag = "auth", request_body = PasswordBody, responses((status = 204, description = "The account is deleted"), (status = 409, description = "The user is the last owner of a workspace with other members (the message names it and what to do); a workspace the user is alone in goes with the account", body = crate::schemas::ErrorBody)))]
pub async fn delete_account(
    state: web::Data<AppState>,
    user: Authenticated,
    body: web::Json<PasswordBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    account_links::delete_account(&mut conn, &state.base_url, &user.0, &body.password).await?;
    Ok(HttpResponse::NoContent()
        .cookie(crate::auth::removal_cookie(
            postback_domain::tenancy::sessions::COOKIE_NAME,
            state.secure_cookies,
        ))
        .finish())
}

#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationsBody {
    /// Owner notifications by mail (webhook paused, reconnect needed, quota, suspension).
    enabled: bool,
}

#[utoipa::path(operation_id = "authNotifications", put, path = "/v1/me/notifications", tag = "auth", request_body = NotificationsBody, responses((status = 200, description = "The setting as saved", body = NotificationsBody)))]
pub async fn set_notifications(
    state: web::Data<AppState>,
    user: Authenticated,
    body: web::Json<NotificationsBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    account_links::set_notifications(&mut conn, &user.0, body.enabled).await?;
    Ok(HttpResponse::Ok().json(NotificationsBody {
        enabled: body.enabled,
    }))
}
