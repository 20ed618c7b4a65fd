//! `/v1/integrations/webhooks` (seed 003) and `/v1/deliveries`: configure outbound webhooks,
//! test them, read their delivery log, redeliver.

use actix_web::{web, HttpResponse};
use postback_domain::delivery as deliveries;
use postback_domain::delivery::webhooks::{self, Changes, WebhookView};
use postback_domain::delivery::DeliveryView;
use postback_domain::ids::{DeliveryId, DomainId, WebhookId};
use postback_domain::store::paging::Page;
use serde_json::{json, Map, Value};

use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use crate::v1::domains::ListQuery;
use postback_runtime::delivery::ssrf;
use postback_runtime::AppState;

const FIELDS: &[&str] = &[
    "url",
    "secret",
    "events",
    "conditions",
    "domainId",
    "status",
    "name",
    "rateLimit",
    "maxInFlight",
    "headers",
];

/// A webhook's writable fields (seed 003). On create `url` is required; on update every field
/// left out stays as it is. `changes_from` reads them; a test keeps this list equal to `FIELDS`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct WebhookInput {
    /// https (or http) URL; `{{token}}` placeholders are filled per event.
    #[schema(example = "https://hooks.example.com/postback")]
    url: Option<String>,
    /// Signing secret (`whsec_…` or any string of 24+ characters); empty or null: generate one.
    secret: Option<String>,
    /// Event names that trigger it, e.g. `["purchase"]`; empty: every event.
    events: Option<Vec<String>>,
    /// Conditions that must all hold: `[{"field", "op", "value", "touch"}]`.
    conditions: Option<Vec<postback_domain::conditions::Condition>>,
    /// A domain id: only that domain's events; null or "": every domain of the workspace.
    #[schema(rename = "domainId")]
    domain_id: Option<String>,
    /// `active` or `paused`.
    #[schema(pattern = "^(active|paused)$")]
    status: Option<String>,
    name: Option<String>,
    /// Deliveries started per second at most, across every instance (1–10000); null: no limit.
    /// Deliveries over it wait in the queue.
    #[schema(rename = "rateLimit", minimum = 1, maximum = 10000)]
    rate_limit: Option<i32>,
    /// Attempts in flight at once at most, across every instance (1–1000); null: the worker's
    /// fair share.
    #[schema(rename = "maxInFlight", minimum = 1, maximum = 1000)]
    max_in_flight: Option<i32>,
    /// Custom request headers (at most 20), replacing the current list; not the signature
    /// headers, Content-Type, Host or User-Agent. A value sent back masked as shown keeps its
    /// stored value.
    headers: Option<Vec<webhooks::Header>>,
}

/// A webhook's signing secret.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Secret {
    secret: Option<String>,
}

/// A JSON number that is whole (`5` or `5.0`, as JSON Schema's `integer` allows).
fn whole(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// Reads a create or update body; absent fields stay unchanged, unknown ones are refused.
pub fn changes_from(body: &Map<String, Value>) -> ApiResult<Changes> {
    if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown field \"{unknown}\"; a webhook has {}",
            FIELDS.join(", ")
        )));
    }
    let string = |field: &str| -> ApiResult<Option<String>> {
        match body.get(field) {
            // null reads as "leave it as it is", like a field left out.
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::bad_request(format!("{field} must be a string"))),
        }
    };
    let secret = match body.get("secret") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.trim().is_empty() => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => return Err(ApiError::bad_request("secret must be a string")),
    };
    let domain_id = match body.get("domainId") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s.is_empty() => Some(None),
        Some(Value::String(s)) => {
            Some(Some(s.parse::<DomainId>().map_err(|_| {
                ApiError::bad_request("domainId must be a UUID")
            })?))
        }
        Some(_) => return Err(ApiError::bad_request("domainId must be a UUID string")),
    };
    let limit = |field: &str| -> ApiResult<Option<Option<i32>>> {
        match body.get(field) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v @ Value::Number(_)) => match whole(v).and_then(|n| i32::try_from(n).ok()) {
                Some(n) => Ok(Some(Some(n))),
                None => Err(ApiError::bad_request(format!(
                    "{field} must be a whole number, or null"
                ))),
            },
            Some(_) => Err(ApiError::bad_request(format!(
                "{field} must be a whole number, or null"
            ))),
        }
    };
    let headers = match body.get("headers") {
        None => None,
        Some(Value::Null) => Some(Vec::new()),
        Some(v) => Some(
            serde_json::from_value::<Vec<webhooks::Header>>(v.clone()).map_err(|_| {
                ApiError::bad_request(
                    "headers must be an array of {\"name\": string, \"value\": string} objects",
                )
            })?,
        ),
    };
    Ok(Changes {
        rate_limit: limit("rateLimit")?,
        max_in_flight: limit("maxInFlight")?,
        headers,
        url: string("url")?,
        secret,
        events: body.get("events").cloned(),
        conditions: body.get("conditions").cloned(),
        domain_id,
        status: string("status")?,
        name: string("name")?,
    })
}

async fn check_target(state: &AppState, url: Option<&str>) -> ApiResult<()> {
    if let Some(url) = url {
        webhooks::validate_url(url)?;
        ssrf::check_target(url.trim(), &state.delivery)
            .await
            .map_err(ApiError::BadRequest)?;
    }
    Ok(())
}

#[utoipa::path(operation_id = "webhooksCreate", post, path = "/v1/integrations/webhooks", tag = "webhooks", request_body = WebhookInput, responses((status = 201, description = "Created; `secret` is shown in this answer", body = WebhookView)))]
pub async fn create(
    state: web::Data<AppState>,
    user: Authenticated,
    body: web::Json<Map<String, Value>>,
) -> ApiResult<HttpResponse> {
    let changes = changes_from(&body)?;
    check_target(&state, Some(changes.url.as_deref().unwrap_or(""))).await?;
    let mut conn = state.conn().await?;
    let view = webhooks::create(&mut conn, user.0.workspace_id, changes).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "webhook.create",
        &view.url,
        json!({"id": view.id}),
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}

#[utoipa::path(operation_id = "webhooksList", get, path = "/v1/integrations/webhooks", tag = "webhooks", params(ListQuery), responses((status = 200, description = "Webhooks, newest first", body = Page<WebhookView>)))]
pub async fn list(
    state: web::Data<AppState>,
    user: Authenticated,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let page = webhooks::list(&mut conn, user.0.workspace_id, query.page()?).await?;
    Ok(HttpResponse::Ok().json(page.map(WebhookView::from)))
}

#[utoipa::path(operation_id = "webhooksGet", get, path = "/v1/integrations/webhooks/{id}", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "Webhook id")), responses((status = 200, description = "The webhook", body = WebhookView)))]
pub async fn get(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WebhookId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let hook = webhooks::get(&mut conn, user.0.workspace_id, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(WebhookView::from(hook)))
}

#[utoipa::path(operation_id = "webhooksUpdate", patch, path = "/v1/integrations/webhooks/{id}", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "Webhook id")), request_body = WebhookInput, responses((status = 200, description = "Updated; fields left out stay", body = WebhookView)))]
pub async fn update(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WebhookId>,
    body: web::Json<Map<String, Value>>,
) -> ApiResult<HttpResponse> {
    let changes = changes_from(&body)?;
    check_target(&state, changes.url.as_deref()).await?;
    let mut conn = state.conn().await?;
    let view = webhooks::update(&mut conn, user.0.workspace_id, path.into_inner(), changes).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "webhook.update",
        &view.url,
        json!({"id": view.id}),
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}

#[utoipa::path(operation_id = "webhooksDelete", delete, path = "/v1/integrations/webhooks/{id}", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "Webhook id")), responses((status = 204, description = "Deleted")))]
pub async fn delete(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WebhookId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let id = path.into_inner();
    webhooks::delete(&mut conn, user.0.workspace_id, id).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "webhook.delete",
        &format!("webhook {id}"),
        Value::Null,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET …/secret`: the signing secret, for the reveal button.
#[utoipa::path(operation_id = "webhooksSecret", get, path = "/v1/integrations/webhooks/{id}/secret", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "Webhook id")), responses((status = 200, description = "The signing secret", body = Secret)))]
pub async fn secret(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WebhookId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let id = path.into_inner();
    let secret = webhooks::secret(&mut conn, user.0.workspace_id, id).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "webhook.secret.reveal",
        &format!("webhook {id}"),
        Value::Null,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Secret { secret }))
}

/// What a rotation may ask for (optional).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
pub struct RotateInput {
    /// How long the previous secret keeps signing deliveries too, in seconds: 0 to 604800
    /// (7 days); default 86400 (24 h).
    #[schema(rename = "overlapSeconds", minimum = 0, maximum = 604800)]
    overlap_seconds: Option<i64>,
}

const ROTATE_FIELDS: &[&str] = &["overlapSeconds"];

/// `POST …/secret/rotate`: a new secret, signing from the next attempt; the previous one keeps
/// signing too during the overlap (default 24 h), so receivers can move over without failures.
#[utoipa::path(operation_id = "webhooksRotateSecret", post, path = "/v1/integrations/webhooks/{id}/secret/rotate", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "Webhook id")), request_body(content = Option<RotateInput>, description = "Optional; an empty body rotates with a 24 h overlap to a generated secret"), responses((status = 200, description = "The new secret, with the webhook (`previousSecretExpiresAt`: until when the previous secret still signs)", body = WebhookView)))]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WebhookId>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let input: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            Ok(Value::Null) => Map::new(),
            _ => {
                return Err(ApiError::bad_request(
                    "the body must be a JSON object (or empty)",
                ))
            }
        }
    };
    if let Some(unknown) = input.keys().find(|k| !ROTATE_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown field \"{unknown}\"; a rotation takes {}",
            ROTATE_FIELDS.join(", ")
        )));
    }
    let overlap = match input.get("overlapSeconds") {
        None | Some(Value::Null) => webhooks::DEFAULT_OVERLAP_SECS,
        Some(v) => whole(v).ok_or_else(|| {
            ApiError::bad_request("overlapSeconds must be a whole number of seconds (0 to 604800)")
        })?,
    };
    let id = path.into_inner();
    let mut conn = state.conn().await?;
    let view = webhooks::rotate(&mut conn, user.0.workspace_id, id, None, overlap).await?;
    webhooks::audit(
        &mut conn,
        &user.0,
        "webhook.secret_rotated",
        id,
        serde_json::json!({ "overlapSeconds": overlap, "previousSecretExpiresAt": view.previous_secret_expires_at }),
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}

/// `DELETE …/secret/previous`: ends a rotation's overlap now.
#[utoipa::path(operation_id = "webhooksEndOverlap", delete, path = "/v1/integrations/webhooks/{id}/secret/previous", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "Webhook id")), responses((status = 200, description = "Only the current secret signs from the next attempt", body = WebhookView)))]
pub async fn end_overlap(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WebhookId>,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let mut conn = state.conn().await?;
    let view = webhooks::end_overlap(&mut conn, user.0.workspace_id, id).await?;
    webhooks::audit(
        &mut conn,
        &user.0,
        "webhook.secret_overlap_ended",
        id,
        serde_json::json!({}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A bulk recovery request.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverInput {
    /// RFC 3339: failed deliveries created at or after this time are sent again.
    #[schema(example = "2026-12-04T08:00:00Z", format = DateTime)]
    pub since: String,
    /// RFC 3339, optional: … and before this time (a window that ends before it starts holds
    /// nothing).
    #[schema(format = DateTime)]
    pub until: Option<String>,
}

fn instant(field: &str, raw: &str) -> ApiResult<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{field} must be an RFC 3339 time, e.g. 2026-12-04T08:00:00Z"
            ))
        })
}

/// `POST …/recover`: every failed delivery in the window gets a new round of attempts, sent at
/// the pace the webhook's rate limit allows; each keeps its id.
#[utoipa::path(operation_id = "webhooksRecover", post, path = "/v1/integrations/webhooks/{id}/recover", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "Webhook id")), request_body = RecoverInput, responses((status = 202, description = "Queued; the counts show the progress", body = webhooks::Recovery)))]
pub async fn recover(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WebhookId>,
    body: web::Json<Value>,
) -> ApiResult<HttpResponse> {
    let input: RecoverInput = serde_json::from_value(body.into_inner()).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be {{\"since\": RFC 3339, \"until\"?: RFC 3339}} ({e})"
        ))
    })?;
    let since = instant("since", &input.since)?;
    let until = input
        .until
        .as_deref()
        .map(|u| instant("until", u))
        .transpose()?;
    let id = path.into_inner();
    let mut conn = state.conn().await?;
    let recovery = webhooks::recover(&mut conn, user.0.workspace_id, id, since, until).await?;
    webhooks::audit(
        &mut conn,
        &user.0,
        "webhook.recovered",
        id,
        serde_json::json!({ "since": since, "until": until, "queued": recovery.queued }),
    )
    .await?;
    Ok(HttpResponse::Accepted().json(recovery))
}

/// A webhook's queue: what waits, and the latest bulk recovery's progress.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct QueueState {
    /// Deliveries waiting to be sent (due, retrying, over the rate limit, or held).
    backlog: i64,
    recovery: Option<webhooks::Recovery>,
}

#[utoipa::path(operation_id = "webhooksQueue", get, path = "/v1/integrations/webhooks/{id}/queue", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "Webhook id")), responses((status = 200, description = "The backlog and the latest recovery's progress", body = QueueState)))]
pub async fn queue(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WebhookId>,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let ws = user.0.workspace_id;
    let mut conn = state.conn().await?;
    webhooks::get(&mut conn, ws, id).await?;
    Ok(HttpResponse::Ok().json(QueueState {
        backlog: webhooks::backlog(&mut conn, ws, id).await?,
        recovery: webhooks::latest_recovery(&mut conn, ws, id).await?,
    }))
}

/// The Test button's answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WebhookTestResult)]
pub struct TestResult {
    pub url: String,
    pub status: Option<u16>,
    pub body: Option<String>,
    pub duration_ms: u128,
    pub error: Option<String>,
    pub ok: bool,
}

/// Sends a sample event to a webhook now, tokens filled with sample values, signed as a real
/// delivery; nothing is queued or logged.
pub async fn run_test(state: &AppState, hook: &webhooks::Webhook) -> TestResult {
    let url = webhooks::expand_tokens(&hook.url, &webhooks::TokenValues::sample());
    let body = deliveries::sample_body(hook.workspace_id, hook.domain_id);
    let id = format!("test_{}", uuid::Uuid::new_v4().simple());
    let headers = postback_runtime::delivery::worker::webhook_headers(
        &hook
            .custom_headers()
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect::<Vec<_>>(),
        hook.secret.as_deref(),
        hook.overlap_until().and(hook.previous_secret.as_deref()),
        &id,
        chrono::Utc::now().timestamp(),
        &body,
    );
    let resp = state
        .http
        .post(&url, &headers, body, deliveries::EXCERPT_BYTES)
        .await;
    TestResult {
        ok: resp.succeeded(),
        url,
        status: resp.status,
        body: resp.body,
        duration_ms: resp.duration.as_millis(),
        error: resp.error,
    }
}

#[utoipa::path(operation_id = "webhooksTest", post, path = "/v1/integrations/webhooks/{id}/test", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "Webhook id")), responses((status = 200, description = "What the receiver answered to a signed sample event", body = TestResult)))]
pub async fn test(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WebhookId>,
) -> ApiResult<HttpResponse> {
    let hook = {
        let mut conn = state.conn().await?;
        webhooks::get(&mut conn, user.0.workspace_id, path.into_inner()).await?
    };
    Ok(HttpResponse::Ok().json(run_test(&state, &hook).await))
}

#[utoipa::path(operation_id = "webhooksDeliveriesOf", get, path = "/v1/integrations/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "Webhook id"), ListQuery), responses((status = 200, description = "The webhook's deliveries with their attempts, newest first", body = Page<DeliveryView>)))]
pub async fn deliveries_of(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<WebhookId>,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let page = deliveries::list_for_webhook(
        &mut conn,
        user.0.workspace_id,
        path.into_inner(),
        query.page()?,
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(operation_id = "webhooksDelivery", get, path = "/v1/deliveries/{id}", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "Delivery id")), responses((status = 200, description = "A delivery (to a webhook or an ad platform) with its attempts", body = DeliveryView)))]
pub async fn delivery(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<DeliveryId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let d = deliveries::get(&mut conn, user.0.workspace_id, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(d))
}

#[utoipa::path(operation_id = "webhooksRedeliver", post, path = "/v1/deliveries/{id}/redeliver", tag = "webhooks", params(("id" = uuid::Uuid, Path, description = "Delivery id")), responses((status = 202, description = "Queued again", body = DeliveryView)))]
pub async fn redeliver(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<DeliveryId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let d = deliveries::redeliver(&mut conn, user.0.workspace_id, path.into_inner()).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "delivery.redeliver",
        &d.url,
        json!({"id": d.id}),
    )
    .await?;
    Ok(HttpResponse::Accepted().json(d))
}

#[cfg(test)]
mod tests {
    /// The document lists exactly the fields a body may have.
    #[test]
    fn input_schema_lists_the_accepted_fields() {
        assert_eq!(
            crate::schemas::property_names::<super::WebhookInput>(),
            crate::schemas::sorted(super::FIELDS)
        );
        assert_eq!(
            crate::schemas::property_names::<super::RotateInput>(),
            crate::schemas::sorted(super::ROTATE_FIELDS)
        );
    }
}
