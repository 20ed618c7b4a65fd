//! `/v1/auth/*` and `/v1/me`: sign-up, log-in, log-out and who am I.

use actix_web::{web, HttpRequest, HttpResponse};
use postback_domain::ids::{UserId, WorkspaceId};
use postback_domain::tenancy::accounts::{self, NewAccount};
use postback_domain::tenancy::plans;
use postback_domain::tenancy::plans::Plan;
use postback_domain::tenancy::sessions::{self, COOKIE_NAME};
use serde::{Deserialize, Serialize};

use crate::auth::{refuse_cross_site, removal_cookie, session_cookie, Authenticated};
use crate::error::{ApiError, ApiResult};
use postback_runtime::AppState;

/// A session was started (its cookie is in the answer).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionStarted {
    user_id: UserId,
    workspace_id: WorkspaceId,
}

/// The signed-in user.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    user_id: UserId,
    email: String,
    /// Whether the address was confirmed with the mailed link.
    email_verified: bool,
    is_admin: bool,
    /// `owner` or `member`.
    role: String,
    workspace: MeWorkspace,
    plan: Plan,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeWorkspace {
    id: WorkspaceId,
    name: String,
    plan: String,
    /// `active` or `suspended`.
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[derive(utoipa::ToSchema)]
pub struct SignupBody {
    #[schema(
        example = "jane@example.com",
        max_length = 254,
        pattern = "^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\\.[A-Za-z0-9-]{1,63})+$"
    )]
    email: String,
    /// At least 8 characters.
    #[schema(min_length = 8, max_length = 256)]
    password: String,
    #[schema(example = "Acme", min_length = 1, max_length = 100, pattern = "\\S")]
    workspace_name: String,
}

#[utoipa::path(operation_id = "authSignup", post, path = "/v1/auth/signup", tag = "auth", request_body = SignupBody, responses((status = 201, description = "Account and workspace created; the session cookie is set and a verification mail is on its way (joining another workspace takes an invitation's link)", body = SessionStarted), (status = 409, description = "An account with this email exists", body = crate::schemas::ErrorBody)))]
pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<SignupBody>,
) -> ApiResult<HttpResponse> {
    refuse_cross_site(&req, &state)?;
    if let Some(wait) = crate::auth::signup_blocked(&req, &state) {
        return Err(ApiError::RateLimited(
            crate::auth::signup_blocked_message(wait),
            wait,
        ));
    }
    let body = body.into_inner();
    let mut conn = state.conn().await?;
    let account = accounts::sign_up(
        &mut conn,
        NewAccount {
            email: body.email,
            password: body.password,
            workspace_name: body.workspace_name,
            admin: false,
            verify_with: Some(state.base_url.clone()),
        },
    )
    .await?;
    let token = sessions::create(&mut conn, account.user_id, account.workspace_id).await?;
    Ok(HttpResponse::Created()
        .cookie(session_cookie(&token, state.secure_cookies))
        .json(SessionStarted {
            user_id: account.user_id,
            workspace_id: account.workspace_id,
        }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    email: String,
    password: String,
}

#[utoipa::path(operation_id = "authLogin", post, path = "/v1/auth/login", tag = "auth", request_body = LoginBody, responses((status = 200, description = "Signed in; the session cookie is set", body = SessionStarted), (status = 401, description = "Incorrect email or password", body = crate::schemas::ErrorBody)))]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginBody>,
) -> ApiResult<HttpResponse> {
    refuse_cross_site(&req, &state)?;
    if let Some(wait) = crate::auth::login_blocked(&req, &state, &body.email) {
        return Err(ApiError::RateLimited(
            crate::auth::login_blocked_message(wait),
            wait,
        ));
    }
    let mut conn = state.conn().await?;
    let account = match accounts::log_in(&mut conn, &body.email, &body.password).await {
        Ok(a) => a,
        Err(e) => {
            if matches!(e, postback_domain::DomainError::Unauthorized(_)) {
                crate::auth::login_failed(&req, &state, &body.email);
            }
            return Err(e.into());
        }
    };
    crate::auth::login_succeeded(&req, &state, &body.email);
    // A fresh session id on every log-in; the old one, if any, stops working.
    if let Some(old) = req.cookie(COOKIE_NAME) {
        sessions::delete_by_token(&mut conn, old.value()).await?;
    }
    let token = sessions::create(&mut conn, account.user_id, account.workspace_id).await?;
    Ok(HttpResponse::Ok()
        .cookie(session_cookie(&token, state.secure_cookies))
        .json(SessionStarted {
            user_id: account.user_id,
            workspace_id: account.workspace_id,
        }))
}

#[utoipa::path(operation_id = "authLogout", post, path = "/v1/auth/logout", tag = "auth", responses((status = 204, description = "Signed out; the session cookie is removed")))]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    _user: Authenticated,
) -> ApiResult<HttpResponse> {
    if let Some(c) = req.cookie(COOKIE_NAME) {
        let mut conn = state.conn().await?;
        sessions::delete_by_token(&mut conn, c.value()).await?;
    }
    Ok(HttpResponse::NoContent()
        .cookie(removal_cookie(COOKIE_NAME, state.secure_cookies))
        .finish())
}

#[utoipa::path(operation_id = "authMe", get, path = "/v1/me", tag = "auth", responses((status = 200, description = "The signed-in user, workspace and plan", body = Me)))]
pub async fn me(state: web::Data<AppState>, user: Authenticated) -> ApiResult<HttpResponse> {
    let ctx = user.0;
    let mut conn = state.conn().await?;
    let plan = plans::get(&mut conn, &ctx.plan).await?;
    Ok(HttpResponse::Ok().json(Me {
        user_id: ctx.user_id,
        email: ctx.email,
        email_verified: ctx.email_verified,
        is_admin: ctx.is_admin,
        role: ctx.role,
        workspace: MeWorkspace {
            id: ctx.workspace_id,
            name: ctx.workspace_name,
            plan: ctx.plan,
            status: ctx.status,
        },
        plan,
    }))
}
