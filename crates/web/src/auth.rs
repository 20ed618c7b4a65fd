//! Sign-up, log-in and log-out pages.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use postback_api::auth::{removal_cookie, session_cookie};
use postback_domain::tenancy::accounts::{self, NewAccount};
use postback_domain::tenancy::sessions::{self, COOKIE_NAME};
use postback_domain::DomainError;
use postback_runtime::AppState;
use serde::Deserialize;

use crate::error::WebResult;
use crate::layout::page;
use crate::session::{pre_session_csrf, verify_csrf, PRE_SESSION_COOKIE};

#[derive(Template)]
#[template(path = "auth/signup.html")]
struct SignupPage {
    csrf: String,
    next: String,
    error: Option<String>,
    email: String,
    workspace_name: String,
}

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    /// What happened before landing here (account or workspace deleted).
    flash: Option<crate::session::Flash>,
    error: Option<String>,
    email: String,
}

fn with_csrf_cookie(
    mut resp: HttpResponse,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    if let Some(c) = cookie {
        let _ = resp.add_cookie(&c);
    }
    resp
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

pub async fn signup_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> WebResult<HttpResponse> {
    let (csrf, cookie) = pre_session_csrf(&req, state.secure_cookies);
    let tpl = SignupPage {
        csrf,
        next: query.into_inner().next,
        error: None,
        email: String::new(),
        workspace_name: String::new(),
    };
    Ok(with_csrf_cookie(page(&tpl, false)?, cookie))
}

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    workspace_name: String,
    #[serde(default)]
    next: String,
}

/// Starts a fresh session for the account (rotating any old one) and goes to the dashboard.
async fn start_session(
    req: &HttpRequest,
    state: &AppState,
    account: accounts::Account,
    next: &str,
) -> WebResult<HttpResponse> {
    let mut conn = state.conn().await?;
    if let Some(old) = req.cookie(COOKIE_NAME) {
        sessions::delete_by_token(&mut conn, old.value()).await?;
    }
    let token = sessions::create(&mut conn, account.user_id, account.workspace_id).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", destination(next)))
        .cookie(session_cookie(&token, state.secure_cookies))
        .cookie(removal_cookie(PRE_SESSION_COOKIE, state.secure_cookies))
        .finish())
}

pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignupForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let form = form.into_inner();
    if let Some(wait) = postback_api::auth::signup_blocked(&req, &state) {
        let tpl = SignupPage {
            csrf: form.csrf_token,
            next: form.next,
            error: Some(postback_api::auth::signup_blocked_message(wait)),
            email: form.email,
            workspace_name: form.workspace_name,
        };
        return too_many(page(&tpl, false)?, wait);
    }
    let mut conn = state.conn().await?;
    let result = accounts::sign_up(
        &mut conn,
        NewAccount {
            email: form.email.clone(),
            password: form.password,
            workspace_name: form.workspace_name.clone(),
            admin: false,
            verify_with: Some(state.base_url.clone()),
        },
    )
    .await;
    match result {
        Ok(account) => start_session(&req, &state, account, &form.next).await,
        Err(DomainError::Invalid(m) | DomainError::Conflict(m)) => {
            let tpl = SignupPage {
                csrf: form.csrf_token,
                next: form.next,
                error: Some(humanize(&m)),
                email: form.email,
                workspace_name: form.workspace_name,
            };
            let mut resp = page(&tpl, false)?;
            *resp.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

/// A page answered 429, with `Retry-After` (seconds) as every 429 of Postback has.
fn too_many(mut resp: HttpResponse, wait: u64) -> WebResult<HttpResponse> {
    *resp.status_mut() = actix_web::http::StatusCode::TOO_MANY_REQUESTS;
    resp.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(wait),
    );
    Ok(resp)
}

/// A message with its first letter capitalised.
pub fn capitalize(m: &str) -> String {
    let mut chars = m.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
        None => m.to_owned(),
    }
}

/// Where to go after log-in or sign-up: a local path given as `next`, else the dashboard.
pub(crate) fn destination(next: &str) -> String {
    // Only a path on this site: not `//host` (nor what a browser reads as it: a backslash, or
    // a tab or newline it drops).
    if next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
    {
        next.to_owned()
    } else {
        // The overview is the signed-in home (issue 22).
        "/".to_owned()
    }
}

/// Field names in domain messages are the API's; the form labels them differently.
fn humanize(message: &str) -> String {
    let m = message.replacen("workspaceName", "Workspace name", 1);
    let mut chars = m.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
        None => m,
    }
}

pub async fn login_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> WebResult<HttpResponse> {
    let (csrf, cookie) = pre_session_csrf(&req, state.secure_cookies);
    let flash = crate::session::take_flash(&req);
    let had_flash = flash.is_some();
    let tpl = LoginPage {
        csrf,
        flash,
        next: query.into_inner().next,
        error: None,
        email: String::new(),
    };
    Ok(with_csrf_cookie(page(&tpl, had_flash)?, cookie))
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let refused =
        |message: String, status: actix_web::http::StatusCode| -> WebResult<HttpResponse> {
            let tpl = LoginPage {
                flash: None,
                csrf: form.csrf_token.clone(),
                next: form.next.clone(),
                error: Some(message),
                email: form.email.clone(),
            };
            let mut resp = page(&tpl, false)?;
            *resp.status_mut() = status;
            Ok(resp)
        };
    if let Some(wait) = postback_api::auth::login_blocked(&req, &state, &form.email) {
        let resp = refused(
            postback_api::auth::login_blocked_message(wait),
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        )?;
        return too_many(resp, wait);
    }
    let mut conn = state.conn().await?;
    match accounts::log_in(&mut conn, &form.email, &form.password).await {
        Ok(account) => {
            postback_api::auth::login_succeeded(&req, &state, &form.email);
            start_session(&req, &state, account, &form.next).await
        }
        Err(DomainError::Unauthorized(m)) => {
            postback_api::auth::login_failed(&req, &state, &form.email);
            refused(m, actix_web::http::StatusCode::UNAUTHORIZED)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf_token: String,
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    if let Some(c) = req.cookie(COOKIE_NAME) {
        let mut conn = state.conn().await?;
        sessions::delete_by_token(&mut conn, c.value()).await?;
    }
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", "/login"))
        .cookie(removal_cookie(COOKIE_NAME, state.secure_cookies))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::destination;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            destination("/invitations/accept?token=abc"),
            "/invitations/accept?token=abc"
        );
        for away in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "/\t/evil.example",
            "",
        ] {
            assert_eq!(destination(away), "/", "{away:?}");
        }
    }
}
