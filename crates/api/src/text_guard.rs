//! Refuses, before any handler runs, management-API and dashboard requests whose path, query or
//! body holds text PostgreSQL cannot store (see `postback_domain::text`), with a 400 that names
//! the field. One place for every route, present and future, whatever extractor it uses.
//!
//! The public `/__cc` endpoints (and `/v1/inbound`) apply their own rules: inbound refuses with
//! the field's name in its `{"error"}`, the tracking endpoints clean what visitors' browsers send.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{Error, HttpResponse, ResponseError};
use futures_util::StreamExt;
use postback_domain::text;

use crate::error::ApiError;

/// Bodies read to check them: more than any form or JSON body a route accepts (their own
/// extractors then refuse what is over their limit).
const MAX_CHECKED_BODY: usize = 1024 * 1024;

enum Kind {
    Json,
    Form,
}

fn kind(req: &ServiceRequest) -> Option<Kind> {
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())?
        .split(';')
        .next()?
        .trim()
        .to_ascii_lowercase();
    if media == "application/json" || media.ends_with("+json") {
        Some(Kind::Json)
    } else if media == "application/x-www-form-urlencoded" {
        Some(Kind::Form)
    } else {
        None
    }
}

fn guarded(path: &str) -> bool {
    !(path.starts_with("/__cc/") || path == "/v1/inbound")
}

/// Whether the percent-encoded `raw` holds an encoded NUL.
fn has_encoded_nul(raw: &str) -> bool {
    raw.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

fn check_head(req: &ServiceRequest) -> Result<(), ApiError> {
    if has_encoded_nul(req.path()) {
        return Err(ApiError::bad_request(
            "the path must not contain NUL (\\u0000) characters",
        ));
    }
    text::check_pairs(
        "query parameter",
        url::form_urlencoded::parse(req.query_string().as_bytes()),
    )?;
    Ok(())
}

fn check_body(kind: &Kind, body: &[u8]) -> Result<(), ApiError> {
    match kind {
        Kind::Form => text::check_pairs("field", url::form_urlencoded::parse(body))?,
        // Only a body that mentions the escape is parsed here; broken JSON is left to the
        // route's own extractor, which names the problem.
        Kind::Json if contains_nul_escape(body) => {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
                text::check_json(&v)?;
            }
        }
        Kind::Json => {}
    }
    Ok(())
}

fn contains_nul_escape(body: &[u8]) -> bool {
    body.windows(6)
        .any(|w| w[0] == b'\\' && (w[1] == b'u' || w[1] == b'U') && &w[2..] == b"0000")
}

async fn read(payload: &mut Payload) -> Result<Option<Bytes>, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("could not read body: {e}")))?;
        if body.len() + chunk.len() > MAX_CHECKED_BODY {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// The middleware (`actix_web::middleware::from_fn(text_guard)`).
pub async fn text_guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if !guarded(req.path()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let refusal = match check_head(&req) {
        Err(e) => Some(e),
        Ok(()) => match (req.method(), kind(&req)) {
            (&Method::GET | &Method::HEAD | &Method::OPTIONS, _) | (_, None) => None,
            (_, Some(kind)) => {
                let mut payload = actix_web::HttpMessage::take_payload(&mut req);
                match read(&mut payload).await {
                    Ok(Some(body)) => {
                        let checked = check_body(&kind, &body);
                        req.set_payload(Payload::from(body));
                        checked.err()
                    }
                    Ok(None) => Some(ApiError::PayloadTooLarge(format!(
                        "body is larger than {} KiB",
                        MAX_CHECKED_BODY / 1024
                    ))),
                    Err(e) => Some(e),
                }
            }
        },
    };
    match refusal {
        None => Ok(next.call(req).await?.map_into_left_body()),
        Some(e) => {
            let response = if req.path().starts_with("/v1/") {
                e.error_response()
            } else {
                page(&e)
            };
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// The dashboard's answer: a small page saying what to fix.
fn page(e: &ApiError) -> HttpResponse {
    let message: String = e
        .to_string()
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect();
    HttpResponse::build(e.status_code())
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not saved</title>\
             </head><body><h1>Not saved</h1><p>{message}</p><p>Go back, correct it and try again.</p>\
             </body></html>\n"
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_nuls_are_found_and_escaped_backslashes_are_not_nuls() {
        assert!(has_encoded_nul("/v1/domains/%00"));
        assert!(!has_encoded_nul("/v1/domains/%0A"));
        assert!(contains_nul_escape(br#"{"a":"\u0000"}"#));
        assert!(check_body(&Kind::Json, br#"{"name":"x\u0000"}"#).is_err());
        // `\\u0000` is a backslash followed by the text u0000: storable.
        assert!(check_body(&Kind::Json, br#"{"name":"x\\u0000"}"#).is_ok());
        assert_eq!(
            check_body(&Kind::Form, b"hostname=a%00b")
                .unwrap_err()
                .to_string(),
            "field hostname must not contain NUL (\\u0000) characters"
        );
    }
}
