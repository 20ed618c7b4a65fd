//! `POST /__cc/inbound` (alias `/v1/inbound`): conversion events from customers' backends,
//! authenticated by a domain's inbound integration key.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use futures_util::StreamExt;
use postback_domain::accounts::normalize_email;
use postback_domain::events::{self, NewEvent};
use postback_domain::ids::EventId;
use postback_domain::keys;
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The seed's success answer, fields in the seed's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    ok: bool,
    dispatched: Vec<&'static str>,
    event_id: EventId,
}

pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The key from `X-CC-Api-Key`, or from `Authorization: Bearer cc_…`.
fn presented_key(req: &HttpRequest) -> Option<&str> {
    if let Some(v) = req.headers().get("x-cc-api-key") {
        return v.to_str().ok().map(str::trim);
    }
    let auth = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Reads the body, refusing it as soon as it passes the limit.
async fn read_body(mut payload: web::Payload) -> ApiResult<web::BytesMut> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("could not read body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge(format!(
                "body is larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub fn validate_event_name(raw: &str) -> ApiResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ApiError::bad_request("event is required"));
    }
    if name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
    {
        return Err(ApiError::bad_request(
            "event must be 1-64 characters of letters, digits, '_', '.', ':' or '-'",
        ));
    }
    Ok(name.to_owned())
}

fn query_event(req: &HttpRequest) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "event")
        .map(|(_, v)| v.into_owned())
}

pub async fn receive(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let presented = presented_key(&req).ok_or_else(ApiError::invalid_api_key)?;
    if !keys::is_well_formed(presented) {
        return Err(ApiError::invalid_api_key());
    }
    let mut conn = state.conn().await?;
    let key = keys::authenticate(&mut conn, presented)
        .await?
        .ok_or_else(ApiError::invalid_api_key)?;
    if key.workspace_status == "suspended" {
        return Err(ApiError::Forbidden(
            "This workspace is suspended; contact support to restore it".into(),
        ));
    }

    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if content_type != "application/json" {
        return Err(ApiError::UnsupportedMediaType(
            "Content-Type must be application/json".into(),
        ));
    }
    let body = read_body(payload).await?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("body is not valid JSON: {e}")))?;
    let Value::Object(fields) = &value else {
        return Err(ApiError::bad_request("body must be a JSON object"));
    };

    let email = match fields.get("email") {
        Some(Value::String(s)) => normalize_email("email", s)?,
        Some(Value::Null) | None => return Err(ApiError::bad_request("email is required")),
        Some(_) => return Err(ApiError::bad_request("email must be a string")),
    };
    let event_name = match fields.get("event") {
        Some(Value::String(s)) => validate_event_name(s)?,
        Some(Value::Null) | None => validate_event_name(&query_event(&req).unwrap_or_default())?,
        Some(_) => return Err(ApiError::bad_request("event must be a string")),
    };

    let event_id = events::insert(
        &mut conn,
        NewEvent {
            workspace_id: key.workspace_id,
            domain_id: key.domain_id,
            key_id: key.key_id,
            event_name,
            email,
            payload: value,
            occurred_at: Utc::now(),
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(Accepted {
        ok: true,
        dispatched: Vec::new(),
        event_id,
    }))
}
