//! `/v1/auth/*` and `/v1/me`: sign-up, log-in, log-out and who am I.

use actix_web::{web, HttpRequest, HttpResponse};
use postback_domain::accounts::{self, NewAccount};
use postback_domain::plans;
use postback_domain::sessions::{self, COOKIE_NAME};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{refuse_cross_site, removal_cookie, session_cookie, Authenticated};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignupBody {
    email: String,
    password: String,
    workspace_name: String,
}

pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<SignupBody>,
) -> ApiResult<HttpResponse> {
    refuse_cross_site(&req, &state)?;
    let body = body.into_inner();
    let mut conn = state.conn().await?;
    let account = accounts::sign_up(
        &mut conn,
        NewAccount {
            email: body.email,
            password: body.password,
            workspace_name: body.workspace_name,
            admin: false,
        },
    )
    .await?;
    let token = sessions::create(&mut conn, account.user_id, account.workspace_id).await?;
    Ok(HttpResponse::Created()
        .cookie(session_cookie(&token, state.secure_cookies))
        .json(json!({ "userId": account.user_id, "workspaceId": account.workspace_id })))
}

#[derive(Deserialize)]
pub struct LoginBody {
    email: String,
    password: String,
}

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
    // A fresh session id on every log-in; the old one, if any, stops working.
    if let Some(old) = req.cookie(COOKIE_NAME) {
        sessions::delete_by_token(&mut conn, old.value()).await?;
    }
    let token = sessions::create(&mut conn, account.user_id, account.workspace_id).await?;
    Ok(HttpResponse::Ok()
        .cookie(session_cookie(&token, state.secure_cookies))
        .json(json!({ "userId": account.user_id, "workspaceId": account.workspace_id })))
}

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

pub async fn me(state: web::Data<AppState>, user: Authenticated) -> ApiResult<HttpResponse> {
    let ctx = user.0;
    let mut conn = state.conn().await?;
    let plan = plans::get(&mut conn, &ctx.plan).await?;
    Ok(HttpResponse::Ok().json(json!({
        "userId": ctx.user_id,
        "email": ctx.email,
        "isAdmin": ctx.is_admin,
        "role": ctx.role,
        "workspace": {
            "id": ctx.workspace_id,
            "name": ctx.workspace_name,
            "plan": ctx.plan,
            "status": ctx.status,
        },
        "plan": plan,
    })))
}
