//! Session-cookie authentication for `/v1`, with the cross-site check that keeps a foreign page
//! from acting for a signed-in user.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use postback_domain::tenancy::sessions::{self, SessionContext, COOKIE_NAME};
use postback_domain::tenancy::tokens;

use crate::error::ApiError;
use postback_runtime::AppState;

/// The account a log-in attempt names (its normalised email) and the client's bucket.
fn login_keys(req: &HttpRequest, state: &AppState, email: &str) -> (String, String) {
    (
        email.trim().to_lowercase(),
        postback_runtime::client_addr::client_bucket(req, &state.trusted_proxies),
    )
}

/// Seconds to wait before this client may try this account again (see `login_throttle`).
pub fn login_blocked(req: &HttpRequest, state: &AppState, email: &str) -> Option<u64> {
    let (account, client) = login_keys(req, state, email);
    state
        .login_throttle
        .wait(&account, &client)
        .map(|d| d.as_millis().div_ceil(1000).max(1) as u64)
}

/// Counts a failed log-in.
pub fn login_failed(req: &HttpRequest, state: &AppState, email: &str) {
    let (account, client) = login_keys(req, state, email);
    state.login_throttle.failed(&account, &client);
}

/// A successful log-in: this client's failures for the account are forgotten, and the client
/// is known to the account (guesses from elsewhere no longer slow it).
pub fn login_succeeded(req: &HttpRequest, state: &AppState, email: &str) {
    let (account, client) = login_keys(req, state, email);
    state.login_throttle.succeeded(&account, &client);
}

/// The message a throttled log-in gets.
pub fn login_blocked_message(wait: u64) -> String {
    if wait < 90 {
        format!("Too many failed log-ins from here: try again in {wait} s")
    } else {
        format!(
            "Too many failed log-ins from here: try again in {} minutes",
            wait.div_ceil(60)
        )
    }
}

/// Seconds to wait when this client has signed up too often lately; otherwise counts the
/// sign-up against the client's budget (shared by every instance).
pub fn signup_blocked(req: &HttpRequest, state: &AppState) -> Option<u64> {
    let bucket = format!(
        "signup:client:{}",
        postback_runtime::client_addr::client_bucket(req, &state.trusted_proxies)
    );
    state
        .limits
        .check(&[(bucket.as_str(), state.budgets.signups)])
        .err()
}

/// The message a throttled sign-up gets.
pub fn signup_blocked_message(wait: u64) -> String {
    format!(
        "Too many sign-ups from this address: try again in {} minutes",
        wait.div_ceil(60)
    )
}

/// The `auth_token` cookie: HttpOnly, SameSite=Lax, Secure when the base URL is https.
pub fn session_cookie(token: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(COOKIE_NAME, token.to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(actix_web::cookie::time::Duration::days(
            sessions::SESSION_DAYS,
        ))
        .finish()
}

pub fn removal_cookie(name: &'static str, secure: bool) -> Cookie<'static> {
    let mut c = Cookie::build(name, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish();
    c.make_removal();
    c
}

/// Scheme, host and port of a URL, as an `Origin` header would spell them.
fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(u.origin().ascii_serialization())
}

/// True when the request visibly comes from a page of another site. Requests without `Origin`
/// and `Sec-Fetch-Site` (curl, servers) pass: they carry no ambient browser credentials.
pub fn is_cross_site(req: &HttpRequest, base_url: &str) -> bool {
    if let Some(site) = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        if !matches!(site, "same-origin" | "none") {
            return true;
        }
    }
    let Some(origin) = req.headers().get("origin") else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    if origin_of(base_url).as_deref() == Some(origin) {
        return false;
    }
    // Behind a proxy the base URL may be unset; accept the origin the request was sent to.
    let info = req.connection_info();
    let same_host = format!("{}://{}", info.scheme(), info.host());
    origin != same_host
}

pub fn refuse_cross_site(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    if is_cross_site(req, &state.base_url) {
        return Err(ApiError::Forbidden(
            "Cross-site request refused: this request came from another site".into(),
        ));
    }
    Ok(())
}

/// A signed-in user: from a personal access token (`Authorization: Bearer pb_…`, rate limited
/// per token) or from the session cookie. Answers 401 when there is neither (or the token is not
/// valid), 403 when a cookie request comes from another site, 429 over the token's limit.
pub struct Authenticated(pub SessionContext);

impl FromRequest for Authenticated {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::Internal("state missing".into()))?
                .clone();
            if let Some(bearer) = req
                .headers()
                .get(actix_web::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
            {
                let mut conn = state.conn().await.map_err(ApiError::from)?;
                let (id, ctx) = tokens::authenticate(&mut conn, bearer.trim())
                    .await
                    .map_err(ApiError::from)?
                    .ok_or_else(|| {
                        ApiError::Unauthorized(
                            "Invalid access token: it is unknown or was revoked".into(),
                        )
                    })?;
                if let Err(wait) = state.token_limiter.check(id) {
                    return Err(ApiError::RateLimited(
                        format!(
                            "Too many requests with this token ({} per minute); retry in {wait} s",
                            state.token_limiter.limit()
                        ),
                        wait,
                    )
                    .into());
                }
                return Ok(Authenticated(ctx));
            }
            let token = req
                .cookie(COOKIE_NAME)
                .map(|c| c.value().to_owned())
                .ok_or_else(ApiError::not_signed_in)?;
            refuse_cross_site(&req, &state)?;
            let mut conn = state.conn().await.map_err(ApiError::from)?;
            let ctx = sessions::lookup(&mut conn, &token)
                .await
                .map_err(ApiError::from)?
                .ok_or_else(ApiError::not_signed_in)?;
            Ok(Authenticated(ctx))
        })
    }
}
