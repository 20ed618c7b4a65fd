//! The account pages behind mailed links and Settings › Account: forgot / reset password,
//! address verification (and its banner's "resend"), accepting an invitation, and the account's
//! own settings (password, address, other sessions, notifications, deleting the account or the
//! workspace).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use postback_api::auth::session_cookie;
use postback_domain::tenancy::account_links::{self, Verified};
use postback_domain::tenancy::sessions;
use postback_domain::tenancy::team;
use postback_domain::DomainError;
use postback_runtime::AppState;
use serde::Deserialize;

use crate::auth::CsrfOnly;
use crate::error::{WebError, WebResult};
use crate::layout::{page, Chrome};
use crate::session::{pre_session_csrf, redirect_with, verify_csrf, CurrentUser};

#[derive(Template)]
#[template(path = "auth/forgot.html")]
struct ForgotPage {
    csrf: String,
    sent: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "auth/reset.html")]
struct ResetPage {
    csrf: String,
    token: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "auth/message.html")]
struct MessagePage {
    title: String,
    message: String,
    link: (String, String),
}

#[derive(Template)]
#[template(path = "auth/invitation.html")]
struct InvitationPage {
    csrf: String,
    token: String,
    offer: Option<team::InvitationOffer>,
    error: Option<String>,
    signed_in_as: Option<String>,
    next: String,
}

#[derive(Template)]
#[template(path = "settings/account.html")]
struct AccountPage {
    chrome: Chrome,
    notifications: bool,
    owner: bool,
}

fn with_cookie(
    mut resp: HttpResponse,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    if let Some(c) = cookie {
        let _ = resp.add_cookie(&c);
    }
    resp
}

fn status(mut resp: HttpResponse, code: actix_web::http::StatusCode) -> HttpResponse {
    *resp.status_mut() = code;
    resp
}

pub async fn forgot_form(req: HttpRequest, state: web::Data<AppState>) -> WebResult<HttpResponse> {
    let (csrf, cookie) = pre_session_csrf(&req, state.secure_cookies);
    let tpl = ForgotPage {
        csrf,
        sent: false,
        error: None,
    };
    Ok(with_cookie(page(&tpl, false)?, cookie))
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
}

/// The same page whether or not the address has an account.
pub async fn forgot(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<ForgotForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    if let Err(wait) = state.mail_throttle.check(&req, &form.email) {
        let tpl = ForgotPage {
            csrf: form.csrf_token.clone(),
            sent: false,
            error: Some(format!(
                "Too many reset mails asked for: try again in {} minutes.",
                wait.div_ceil(60)
            )),
        };
        return Ok(status(
            page(&tpl, false)?,
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let email = form.email.clone();
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
    let tpl = ForgotPage {
        csrf: form.csrf_token.clone(),
        sent: true,
        error: None,
    };
    page(&tpl, false)
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

pub async fn reset_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<TokenQuery>,
) -> WebResult<HttpResponse> {
    let (csrf, cookie) = pre_session_csrf(&req, state.secure_cookies);
    let tpl = ResetPage {
        csrf,
        token: query.into_inner().token,
        error: None,
    };
    Ok(with_cookie(page(&tpl, false)?, cookie))
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

/// Sets the new password and signs in with it (every other session was signed out).
pub async fn reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<ResetForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    match account_links::reset_password(&mut conn, &form.token, &form.password).await {
        Ok((user_id, email)) => {
            account_links::audit(&mut conn, user_id, &email, "account.password_reset").await?;
            let account =
                postback_domain::tenancy::accounts::first_workspace(&mut conn, user_id).await?;
            let token = sessions::create(&mut conn, user_id, account).await?;
            Ok(HttpResponse::SeeOther()
                .insert_header(("Location", "/domains"))
                .cookie(session_cookie(&token, state.secure_cookies))
                .cookie(crate::session::flash_cookie(
                    "success",
                    "Your new password is set. Every other session was signed out.",
                    state.secure_cookies,
                ))
                .finish())
        }
        Err(DomainError::Invalid(m)) => {
            let tpl = ResetPage {
                csrf: form.csrf_token.clone(),
                token: form.token.clone(),
                error: Some(m),
            };
            Ok(status(
                page(&tpl, false)?,
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// The verification link: confirms the address (or the change of address) at once.
pub async fn verify(
    state: web::Data<AppState>,
    query: web::Query<TokenQuery>,
) -> WebResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let (title, message, code) = match account_links::verify(&mut conn, &query.token).await {
        Ok(Verified::Address(e)) => (
            "Address confirmed".to_owned(),
            format!("Thank you: {e} is confirmed."),
            actix_web::http::StatusCode::OK,
        ),
        Ok(Verified::Changed(e)) => (
            "Address changed".to_owned(),
            format!("Your account's address is now {e}."),
            actix_web::http::StatusCode::OK,
        ),
        Err(DomainError::Invalid(m) | DomainError::Conflict(m)) => (
            "This link does not work".to_owned(),
            crate::auth::capitalize(&m),
            actix_web::http::StatusCode::BAD_REQUEST,
        ),
        Err(e) => return Err(e.into()),
    };
    let tpl = MessagePage {
        title,
        message,
        link: ("/".into(), "Go to Postback".into()),
    };
    Ok(status(page(&tpl, false)?, code))
}

pub async fn resend_verification(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let back = req
        .headers()
        .get("Referer")
        .and_then(|r| r.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| crate::auth::destination(u.path()))
        .unwrap_or_else(|| "/domains".into());
    if state.mail_throttle.check(&req, &user.ctx.email).is_err() {
        return Ok(redirect_with(
            &back,
            "error",
            "Too many mails asked for: try again later.",
            state.secure_cookies,
        ));
    }
    let mut conn = state.conn().await?;
    match account_links::resend_verification(&mut conn, &state.base_url, &user.ctx).await {
        Ok(()) => {
            account_links::audit(
                &mut conn,
                user.ctx.user_id,
                &user.ctx.email,
                "account.verify_resend",
            )
            .await?;
            Ok(redirect_with(
                &back,
                "success",
                &format!(
                    "A new confirmation link is on its way to {}.",
                    user.ctx.email
                ),
                state.secure_cookies,
            ))
        }
        Err(DomainError::Conflict(m)) => {
            Ok(redirect_with(&back, "error", &m, state.secure_cookies))
        }
        Err(e) => Err(e.into()),
    }
}

/// The invitation link: who invites to what; a signed-in user joins with a click, anyone else
/// logs in or signs up first and comes back here.
pub async fn invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: Result<CurrentUser, WebError>,
    query: web::Query<TokenQuery>,
) -> WebResult<HttpResponse> {
    let token = query.into_inner().token;
    let (csrf, cookie) = match &user {
        Ok(u) => (u.csrf.clone(), None),
        Err(_) => pre_session_csrf(&req, state.secure_cookies),
    };
    let mut conn = state.conn().await?;
    let (offer, error) = match team::offer(&mut conn, &token).await {
        Ok(o) => (Some(o), None),
        Err(DomainError::Invalid(m)) => (None, Some(crate::auth::capitalize(&m))),
        Err(e) => return Err(e.into()),
    };
    let next = format!("/invitations/accept?token={token}");
    let tpl = InvitationPage {
        csrf,
        token,
        offer,
        error,
        signed_in_as: user.ok().map(|u| u.ctx.email),
        next: url::form_urlencoded::byte_serialize(next.as_bytes()).collect(),
    };
    Ok(with_cookie(page(&tpl, false)?, cookie))
}

#[derive(Deserialize)]
pub struct AcceptForm {
    csrf_token: String,
    #[serde(default)]
    token: String,
}

pub async fn accept_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<AcceptForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    match team::accept(&mut conn, user.ctx.user_id, &user.ctx.email, &form.token).await {
        Ok(joined) => {
            team::switch(
                &mut conn,
                &user.ctx,
                user.ctx.session_id,
                joined.workspace_id,
            )
            .await?;
            Ok(redirect_with(
                "/domains",
                "success",
                &format!("You joined {} as {}.", joined.workspace_name, joined.role),
                state.secure_cookies,
            ))
        }
        Err(DomainError::Invalid(m)) => Ok(redirect_with(
            "/domains",
            "error",
            &crate::auth::capitalize(&m),
            state.secure_cookies,
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn settings(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
) -> WebResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let notifications = account_links::notifications_enabled(&mut conn, user.ctx.user_id).await?;
    let chrome = Chrome::new(&req, &user, "settings");
    let had_flash = chrome.flash.is_some();
    page(
        &AccountPage {
            chrome,
            notifications,
            owner: user.ctx.is_owner(),
        },
        had_flash,
    )
}

fn back(state: &AppState, result: Result<String, DomainError>) -> WebResult<HttpResponse> {
    match result {
        Ok(m) => Ok(redirect_with(
            "/settings/account",
            "success",
            &m,
            state.secure_cookies,
        )),
        Err(DomainError::Invalid(m) | DomainError::Conflict(m) | DomainError::Forbidden(m)) => {
            Ok(redirect_with(
                "/settings/account",
                "error",
                &crate::auth::capitalize(&m),
                state.secure_cookies,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf_token: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<PasswordForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let r = account_links::change_password(
        &mut conn,
        &user.ctx,
        &form.current_password,
        &form.new_password,
    )
    .await;
    if r.is_ok() {
        account_links::audit(
            &mut conn,
            user.ctx.user_id,
            &user.ctx.email,
            "account.password_change",
        )
        .await?;
    }
    back(
        &state,
        r.map(|_| "Password changed. Your other sessions were signed out.".to_owned()),
    )
}

#[derive(Deserialize)]
pub struct EmailForm {
    csrf_token: String,
    #[serde(default)]
    new_email: String,
    #[serde(default)]
    password: String,
}

pub async fn change_email(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<EmailForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let r = account_links::request_email_change(
        &mut conn,
        &state.base_url,
        &user.ctx,
        &form.new_email,
        &form.password,
    )
    .await;
    if r.is_ok() {
        account_links::audit(
            &mut conn,
            user.ctx.user_id,
            &user.ctx.email,
            "account.email_change",
        )
        .await?;
    }
    back(
        &state,
        r.map(|e| format!("We sent a link to {e}: your address changes when you open it.")),
    )
}

pub async fn sign_out_others(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let r = account_links::sign_out_others(&mut conn, &user.ctx).await;
    if r.is_ok() {
        account_links::audit(
            &mut conn,
            user.ctx.user_id,
            &user.ctx.email,
            "account.sign_out_others",
        )
        .await?;
    }
    back(
        &state,
        r.map(|n| format!("Signed out {n} other session(s).")),
    )
}

#[derive(Deserialize)]
pub struct NotificationsForm {
    csrf_token: String,
    #[serde(default)]
    enabled: Option<String>,
}

pub async fn set_notifications(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<NotificationsForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let enabled = form.enabled.is_some();
    let mut conn = state.conn().await?;
    let r = account_links::set_notifications(&mut conn, &user.ctx, enabled).await;
    back(
        &state,
        r.map(|_| {
            if enabled {
                "Owner notifications are on.".to_owned()
            } else {
                "Owner notifications are off.".to_owned()
            }
        }),
    )
}

#[derive(Deserialize)]
pub struct DeleteAccountForm {
    csrf_token: String,
    #[serde(default)]
    password: String,
}

pub async fn delete_account(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<DeleteAccountForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    match account_links::delete_account(&mut conn, &state.base_url, &user.ctx, &form.password).await
    {
        Ok(()) => Ok(redirect_with(
            "/login",
            "success",
            "Your account was deleted.",
            state.secure_cookies,
        )),
        Err(e) => back(&state, Err(e)),
    }
}

#[derive(Deserialize)]
pub struct DeleteWorkspaceForm {
    csrf_token: String,
    #[serde(default)]
    name: String,
}

pub async fn delete_workspace(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<DeleteWorkspaceForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    match postback_domain::tenancy::workspace_deletion::request(
        &mut conn,
        &state.base_url,
        user.ctx.user_id,
        &user.ctx.email,
        user.ctx.workspace_id,
        &form.name,
    )
    .await
    {
        Ok(()) => Ok(redirect_with(
            "/login",
            "success",
            &format!(
                "The workspace {} was deleted; its members were told by mail.",
                user.ctx.workspace_name
            ),
            state.secure_cookies,
        )),
        Err(e) => back(&state, Err(e)),
    }
}
