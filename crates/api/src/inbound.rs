//! `POST /__cc/inbound` (alias `/v1/inbound`): conversion events from customers' backends,
//! authenticated by a domain's inbound integration key (seeds 000, 001, 004).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use futures_util::StreamExt;
use postback_domain::ids::EventId;
use postback_domain::ingest::parse as inbound;
use postback_domain::ingest::store::{Outcome, Submission};
use postback_domain::tenancy::keys;
use postback_domain::DomainError;
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use postback_runtime::metrics::InboundOutcome;
use postback_runtime::AppState;

pub const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The seed's success answer, fields in the seed's order.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    ok: bool,
    /// Present (true) only when the event was already stored.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    duplicate: bool,
    /// The webhooks' and platforms' kinds the event was queued to (`webhook`, `googleads`, …).
    dispatched: Vec<&'static str>,
    event_id: EventId,
}

/// The documented fields of an inbound conversion (seeds 000 and 004). `email` and `event` are
/// required (`event` may come as `?event=` instead); any other field is kept as sent. Forms use bracket notation
/// (`products[0][name]=…`). Read by `postback_domain::ingest::parse::parse`; a test keeps this list
/// equal to its `KNOWN_FIELDS`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct InboundEvent {
    #[schema(
        example = "jane@example.com",
        max_length = 254,
        pattern = "^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\\.[A-Za-z0-9-]{1,63})+$"
    )]
    email: String,
    /// `purchase`, `lead`, `refund`, `event1` … `event10`, or any name of yours.
    #[schema(example = "purchase", min_length = 1)]
    event: String,
    /// A number, or a number written as a string.
    #[schema(value_type = Option<f64>, example = 49.9)]
    value: Option<serde_json::Value>,
    /// Alias of `value`.
    #[schema(value_type = Option<f64>)]
    total: Option<serde_json::Value>,
    /// ISO 4217, e.g. `USD`.
    #[schema(max_length = 16)]
    currency: Option<String>,
    #[schema(rename = "orderId", max_length = 255)]
    order_id: Option<String>,
    #[schema(rename = "firstName", max_length = 200)]
    first_name: Option<String>,
    #[schema(rename = "lastName", max_length = 200)]
    last_name: Option<String>,
    #[schema(max_length = 64)]
    phone: Option<String>,
    /// RFC 3339 (or Unix seconds or milliseconds, as a number).
    #[schema(value_type = Option<String>, format = DateTime)]
    timestamp: Option<serde_json::Value>,
    #[schema(max_length = 64)]
    ip: Option<String>,
    #[schema(max_length = 200)]
    city: Option<String>,
    #[schema(max_length = 100)]
    country: Option<String>,
    #[schema(rename = "countryCode", max_length = 3)]
    country_code: Option<String>,
    #[schema(max_length = 100)]
    state: Option<String>,
    #[schema(rename = "stateCode", max_length = 10)]
    state_code: Option<String>,
    #[schema(max_length = 255)]
    guid: Option<String>,
    #[schema(rename = "productName", max_length = 1024)]
    product_name: Option<String>,
    #[schema(rename = "productLink", max_length = 2048)]
    product_link: Option<String>,
    #[schema(rename = "productImage", max_length = 2048)]
    product_image: Option<String>,
    products: Option<Vec<postback_domain::ingest::parse::Product>>,
}

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
                "body is larger than {} KiB",
                MAX_BODY_BYTES / 1024
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn query_event(req: &HttpRequest) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "event")
        .map(|(_, v)| v.into_owned())
}

fn media_type(req: &HttpRequest) -> String {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decodes and validates the request into a submission; every failure is a 4xx.
async fn submission(req: &HttpRequest, payload: web::Payload, key: &str) -> ApiResult<Submission> {
    let media = media_type(req);
    let is_json = media == "application/json" || media.ends_with("+json");
    let is_form = media == "application/x-www-form-urlencoded";
    if !is_json && !is_form {
        return Err(ApiError::UnsupportedMediaType(
            "Content-Type must be application/json or application/x-www-form-urlencoded".into(),
        ));
    }
    let idempotency_key = match req.headers().get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v
                .to_str()
                .map_err(|_| {
                    ApiError::bad_request("Idempotency-Key header must be printable ASCII")
                })?
                .trim();
            if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY {
                return Err(ApiError::bad_request(format!(
                    "Idempotency-Key header must be 1-{MAX_IDEMPOTENCY_KEY} characters"
                )));
            }
            Some(k.to_owned())
        }
    };
    let body = read_body(payload).await?;
    let value: Value = if is_json {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("body is not valid JSON: {e}")))?
    } else {
        inbound::form_to_json(&body)?
    };
    let event = inbound::parse(value, query_event(req).as_deref(), Utc::now())?;
    Ok(Submission {
        key_hash: keys::hash(key),
        idempotency_key,
        event,
    })
}

#[utoipa::path(operation_id = "receive", post, path = "/__cc/inbound", tag = "inbound", params(("event" = Option<String>, Query, description = "The event name, when the body has none"), ("Idempotency-Key" = Option<String>, Header, description = "Repeats with the same key answer the first event", min_length = 1, max_length = 255)), request_body(content((InboundEvent = "application/json")), description = "A conversion (seeds 000 and 004); fields not listed are kept as sent. The same fields are accepted as `application/x-www-form-urlencoded`, nested with brackets (`products[0][name]=…`)."), responses((status = 200, description = "Stored (committed) and queued for delivery; `duplicate` when the idempotency key or order was seen", body = Accepted)))]
pub async fn receive(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (outcome, answer) = match ingest(&req, &state, payload).await {
        Ok(Outcome::Accepted(event_id, dispatched)) => (
            InboundOutcome::Accepted,
            Ok(HttpResponse::Ok().json(Accepted {
                ok: true,
                duplicate: false,
                dispatched,
                event_id,
            })),
        ),
        Ok(Outcome::Duplicate(event_id)) => (
            InboundOutcome::Duplicate,
            Ok(HttpResponse::Ok().json(Accepted {
                ok: true,
                duplicate: true,
                dispatched: Vec::new(),
                event_id,
            })),
        ),
        Ok(Outcome::InvalidKey) => (InboundOutcome::InvalidKey, Err(ApiError::invalid_api_key())),
        Ok(Outcome::Suspended) => (
            InboundOutcome::Suspended,
            Err(ApiError::Forbidden(
                "This workspace is suspended: events are refused until it is restored".into(),
            )),
        ),
        Ok(Outcome::QuotaExceeded(message)) => (
            InboundOutcome::Quota,
            Err(ApiError::RateLimited(message, until_next_month(Utc::now()))),
        ),
        Err(ApiError::Unavailable(_)) => (InboundOutcome::Unavailable, Err(unavailable())),
        Err(e) => (outcome_of_error(&e), Err(e)),
    };
    state.metrics.inbound(outcome);
    answer
}

/// The outcome of a refusal, from the status of the error the handler answers with.
fn outcome_of_error(err: &ApiError) -> InboundOutcome {
    match actix_web::ResponseError::status_code(err) {
        StatusCode::UNAUTHORIZED => InboundOutcome::InvalidKey,
        StatusCode::FORBIDDEN => InboundOutcome::Suspended,
        StatusCode::TOO_MANY_REQUESTS => InboundOutcome::Quota,
        StatusCode::BAD_REQUEST
        | StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::UNSUPPORTED_MEDIA_TYPE => InboundOutcome::BadRequest,
        StatusCode::SERVICE_UNAVAILABLE => InboundOutcome::Unavailable,
        _ => InboundOutcome::Error,
    }
}

/// Seconds until the next calendar month (UTC) starts: when a used-up monthly quota renews.
fn until_next_month(now: chrono::DateTime<Utc>) -> u64 {
    use chrono::{Datelike, TimeZone};
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .map_or(3600, |next| (next - now).num_seconds().max(1) as u64)
}

/// The 503 of inbound: the database failed at a moment when the event may or may not have been
/// committed, so the client retries with what makes a retry safe.
pub fn unavailable() -> ApiError {
    ApiError::Unavailable(
        "Database unavailable: the event may not have been stored. Retry with the same orderId \
         or Idempotency-Key; a retry of an event that was stored answers its first result"
            .into(),
    )
}

/// Checks the key, decodes the body and submits the event; the ingestor's outcome, or the
/// refusal that came first.
async fn ingest(req: &HttpRequest, state: &AppState, payload: web::Payload) -> ApiResult<Outcome> {
    let key = presented_key(req)
        .filter(|k| keys::is_well_formed(k))
        .ok_or_else(ApiError::invalid_api_key)?
        .to_owned();
    let submission = match submission(req, payload, &key).await {
        Ok(s) => s,
        Err(client_error) => {
            // An unknown key is told first, whatever is wrong with the body.
            let mut conn = state.conn().await?;
            if keys::authenticate(&mut conn, &key).await?.is_none() {
                return Err(ApiError::invalid_api_key());
            }
            return Err(client_error);
        }
    };
    state
        .ingestor
        .submit(submission)
        .await
        .map_err(|e| match e {
            DomainError::Unavailable(_) => unavailable(),
            e => ApiError::from(e),
        })
}

/// `POST /v1/inbound`: the same endpoint under the management API's prefix.
#[utoipa::path(operation_id = "receiveV1", post, path = "/v1/inbound", tag = "inbound", params(("event" = Option<String>, Query, description = "The event name, when the body has none"), ("Idempotency-Key" = Option<String>, Header, description = "Repeats with the same key answer the first event", min_length = 1, max_length = 255)), request_body(content((InboundEvent = "application/json")), description = "A conversion (seeds 000 and 004); also accepted as `application/x-www-form-urlencoded`"), responses((status = 200, description = "Stored (committed) and queued for delivery", body = Accepted)))]
pub async fn receive_v1(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    receive(req, state, payload).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_spent_quota_renews_at_the_next_month() {
        use chrono::TimeZone;
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 59, 0)
            .unwrap();
        assert_eq!(super::until_next_month(at), 60);
        let at = chrono::Utc.with_ymd_and_hms(2026, 2, 28, 0, 0, 0).unwrap();
        assert_eq!(super::until_next_month(at), 86_400);
    }

    /// The document lists exactly the fields the parser knows.
    #[test]
    fn inbound_schema_lists_the_known_fields() {
        assert_eq!(
            crate::schemas::property_names::<super::InboundEvent>(),
            crate::schemas::sorted(&postback_domain::ingest::parse::KNOWN_FIELDS)
        );
    }
}
