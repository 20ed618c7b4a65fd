//! The signed-in user of a dashboard request, CSRF tokens for forms, and flash messages.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use postback_domain::secrets::{constant_time_eq, random_bytes};
use postback_domain::tenancy::sessions::{self, SessionContext, COOKIE_NAME};
use postback_runtime::AppState;

use crate::error::WebError;

/// Cookie holding the anonymous CSRF secret for the log-in and sign-up forms.
pub const PRE_SESSION_COOKIE: &str = "pb_csrf";
const FLASH_COOKIE: &str = "pb_flash";

/// A signed-in dashboard user. Without a session the request is redirected to the log-in page.
pub struct CurrentUser {
    pub ctx: SessionContext,
    pub csrf: String,
}

impl FromRequest for CurrentUser {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or(WebError::Internal)?
                .clone();
            let login = || WebError::Redirect("/login".into());
            let token = req
                .cookie(COOKIE_NAME)
                .map(|c| c.value().to_owned())
                .ok_or_else(login)?;
            let mut conn = state.conn().await?;
            let ctx = sessions::lookup(&mut conn, &token)
                .await?
                .ok_or_else(login)?;
            Ok(CurrentUser {
                ctx,
                csrf: sessions::csrf_token(&token),
            })
        })
    }
}

/// Checks a form's CSRF token against the session (or pre-session) cookie it was derived from.
pub fn verify_csrf(req: &HttpRequest, submitted: &str) -> Result<(), WebError> {
    let refused = || {
        WebError::Forbidden(
            "This form has expired or was sent from another site. Go back, reload the page and try again."
                .into(),
        )
    };
    let secret = req
        .cookie(COOKIE_NAME)
        .or_else(|| req.cookie(PRE_SESSION_COOKIE))
        .ok_or_else(refused)?;
    let expected = sessions::csrf_token(secret.value());
    if submitted.is_empty() || !constant_time_eq(expected.as_bytes(), submitted.as_bytes()) {
        return Err(refused());
    }
    Ok(())
}

/// The CSRF token for an anonymous form, and the cookie to set when there was none yet.
pub fn pre_session_csrf(req: &HttpRequest, secure: bool) -> (String, Option<Cookie<'static>>) {
    if let Some(c) = req
        .cookie(COOKIE_NAME)
        .or_else(|| req.cookie(PRE_SESSION_COOKIE))
    {
        return (sessions::csrf_token(c.value()), None);
    }
    let secret = hex::encode(random_bytes::<32>());
    let cookie = Cookie::build(PRE_SESSION_COOKIE, secret.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .finish();
    (sessions::csrf_token(&secret), Some(cookie))
}

#[derive(Debug, Clone)]
pub struct Flash {
    pub kind: String,
    pub message: String,
}

/// The flash travels form-encoded inside base64url: the cookie's value has no character a
/// cookie parser decodes (actix percent-decodes cookie values, which turned a form-encoded `+`,
/// sent as `%2B`, into a space).
pub fn flash_cookie(kind: &str, message: &str, secure: bool) -> Cookie<'static> {
    use base64::Engine;
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("k", kind)
        .append_pair("m", message)
        .finish();
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(form);
    Cookie::build(FLASH_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(actix_web::cookie::time::Duration::minutes(5))
        .finish()
}

/// Reads the pending flash, if any; the caller clears it with [`clear_flash`].
pub fn take_flash(req: &HttpRequest) -> Option<Flash> {
    use base64::Engine;
    let c = req.cookie(FLASH_COOKIE)?;
    let form = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.value())
        .ok()?;
    let mut kind = None;
    let mut message = None;
    for (k, v) in url::form_urlencoded::parse(&form) {
        match &*k {
            "k" if v == "success" || v == "error" => kind = Some(v.into_owned()),
            "m" => message = Some(v.chars().take(500).collect::<String>()),
            _ => {}
        }
    }
    Some(Flash {
        kind: kind?,
        message: message?,
    })
}

/// Expires the flash cookie. Without `Secure`, as the page does not know the scheme: a removal
/// needs none (a browser lets an https page expire a `Secure` cookie with it), and over http a
/// `Secure` one would be ignored.
pub fn clear_flash(resp: &mut HttpResponse) {
    let mut c = Cookie::build(FLASH_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish();
    c.make_removal();
    let _ = resp.add_cookie(&c);
}

/// A 303 to `to`, carrying a flash message.
pub fn redirect_with(to: &str, kind: &str, message: &str, secure: bool) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .cookie(flash_cookie(kind, message, secure))
        .finish()
}

pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}

#[cfg(test)]
mod flash_tests {
    use super::*;

    #[test]
    fn a_flash_reads_back_as_written_through_a_cookie_header() {
        let message = "Saved: +44 20 7946 0958 = 100% & more; naïve";
        let cookie = flash_cookie("success", message, false);
        let req = actix_web::test::TestRequest::default()
            .insert_header(("Cookie", format!("{FLASH_COOKIE}={}", cookie.value())))
            .to_http_request();
        let flash = take_flash(&req).expect("a flash");
        assert_eq!(flash.kind, "success");
        assert_eq!(flash.message, message);
    }
}
