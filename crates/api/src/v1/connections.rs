//! `/v1/domains/{id}/connections[/{platform}]`: a domain's ad platform connections (Google Ads,
//! Meta, TikTok). Credentials are write-only; a test sends a sample conversion now.

use actix_web::{web, HttpResponse};
use postback_domain::ids::DomainId;
use postback_domain::platforms::connections::{self, Connection, ConnectionInput};
use postback_domain::platforms::{self, Answer, Platform};
use serde::Serialize;
use serde_json::json;

use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use postback_runtime::AppState;

fn platform(raw: &str) -> ApiResult<Platform> {
    // An unknown platform is a path that does not exist.
    Platform::parse(raw).ok_or_else(|| ApiError::NotFound("connection not found".into()))
}

#[utoipa::path(operation_id = "connectionsList", get, path = "/v1/domains/{id}/connections", tag = "connections", params(("id" = uuid::Uuid, Path, description = "Domain id")), responses((status = 200, description = "One entry per platform, connected or not", body = crate::schemas::Items<Connection>)))]
pub async fn list(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<DomainId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let items: Vec<Connection> =
        connections::list(&mut conn, user.0.workspace_id, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(crate::schemas::Items { items }))
}

#[utoipa::path(operation_id = "connectionsGet", get, path = "/v1/domains/{id}/connections/{platform}", tag = "connections", params(("id" = uuid::Uuid, Path, description = "Domain id"), ("platform" = Platform, Path, description = "googleads, meta or tiktok")), responses((status = 200, description = "The connection; credentials are never returned", body = Connection)))]
pub async fn get(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<(DomainId, String)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, raw) = path.into_inner();
    let p = platform(&raw)?;
    let mut conn = state.conn().await?;
    let c = connections::get(&mut conn, user.0.workspace_id, domain_id, p).await?;
    Ok(HttpResponse::Ok().json(c))
}

#[utoipa::path(operation_id = "connectionsPut", put, path = "/v1/domains/{id}/connections/{platform}", tag = "connections", params(("id" = uuid::Uuid, Path, description = "Domain id"), ("platform" = Platform, Path, description = "googleads, meta or tiktok")), request_body = ConnectionInput, responses((status = 200, description = "Saved; credentials left out keep the stored ones", body = Connection)))]
pub async fn put(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<(DomainId, String)>,
    body: web::Json<ConnectionInput>,
) -> ApiResult<HttpResponse> {
    let (domain_id, raw) = path.into_inner();
    let p = platform(&raw)?;
    let mut conn = state.conn().await?;
    let c = connections::put(
        &mut conn,
        user.0.workspace_id,
        domain_id,
        p,
        body.into_inner(),
    )
    .await?;
    let detail = json!({"domainId": domain_id, "enabled": c.enabled});
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "connection.save",
        p.as_str(),
        detail,
    )
    .await?;
    Ok(HttpResponse::Ok().json(c))
}

#[utoipa::path(operation_id = "connectionsDelete", delete, path = "/v1/domains/{id}/connections/{platform}", tag = "connections", params(("id" = uuid::Uuid, Path, description = "Domain id"), ("platform" = Platform, Path, description = "googleads, meta or tiktok")), responses((status = 204, description = "Disconnected")))]
pub async fn delete(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<(DomainId, String)>,
) -> ApiResult<HttpResponse> {
    let (domain_id, raw) = path.into_inner();
    let p = platform(&raw)?;
    let mut conn = state.conn().await?;
    connections::delete(&mut conn, user.0.workspace_id, domain_id, p).await?;
    let detail = json!({"domainId": domain_id});
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "connection.delete",
        p.as_str(),
        detail,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What the test button shows: the platform's answer, or why nothing could be sent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PlatformTestResult)]
pub struct TestResult {
    pub ok: bool,
    pub status: Option<u16>,
    pub body: Option<String>,
    pub duration_ms: u128,
    pub error: Option<String>,
    /// Nothing was sent: the platform would record a real conversion (no test event code is
    /// set), so the test waits for `confirmRealConversion`.
    pub needs_confirmation: bool,
    /// Google: the request was only validated (`validateOnly`), nothing was recorded.
    pub validate_only: bool,
}

/// The test button's options.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestInput {
    /// Send even though the platform will record it as a real conversion (Meta / TikTok
    /// without a test event code).
    #[serde(default)]
    pub confirm_real_conversion: bool,
}

/// Sends a sample purchase through the saved settings and credentials; nothing is queued or
/// logged. Google only validates it (`validateOnly`); Meta and TikTok send it with the
/// connection's test event code, or, without one, only when `confirm` says a real conversion
/// may be recorded.
pub async fn run_test(
    state: &AppState,
    workspace_id: postback_domain::ids::WorkspaceId,
    domain_id: DomainId,
    p: Platform,
    confirm: bool,
) -> postback_domain::DomainResult<TestResult> {
    let (settings, credentials) = {
        let mut conn = state.conn().await?;
        connections::secrets(&mut conn, workspace_id, domain_id, p).await?
    };
    let event_name = p.default_event_name("purchase").unwrap_or_default();
    let conversion = connections::sample_conversion(p, event_name);
    let failed = |why: String, needs_confirmation: bool| TestResult {
        ok: false,
        status: None,
        body: None,
        duration_ms: 0,
        error: Some(why),
        needs_confirmation,
        validate_only: false,
    };
    let mut request = match platforms::build_with(
        p,
        &state.delivery.platform_urls,
        &settings,
        &credentials,
        &conversion,
    ) {
        Ok(r) => r,
        Err(why) => return Ok(failed(why, false)),
    };
    let mode = platforms::test_mode(p, &mut request);
    if mode == platforms::TestMode::RealConversion && !confirm {
        return Ok(failed(
            format!(
                "No test event code is set, so {} would record this sample as a real 99.99 USD purchase. Set the test event code from Events Manager › Test events, or confirm to send a real conversion.",
                p.label()
            ),
            true,
        ));
    }
    let sent =
        postback_runtime::delivery::platform_send::send(&state.http, &state.delivery, p, &request)
            .await;
    let resp = sent.response;
    let (ok, error) = match sent.answer {
        Some(Answer::Accepted) => (true, None),
        Some(
            Answer::Retry(why)
            | Answer::Rejected(why)
            | Answer::RetryAt(_, why)
            | Answer::Unauthorized(why),
        ) => (false, Some(why)),
        None => (false, resp.error.clone()),
    };
    Ok(TestResult {
        ok,
        status: resp.status,
        body: resp.body,
        duration_ms: resp.duration.as_millis(),
        error,
        needs_confirmation: false,
        validate_only: mode == platforms::TestMode::ValidateOnly,
    })
}

#[utoipa::path(operation_id = "connectionsTest", post, path = "/v1/domains/{id}/connections/{platform}/test", tag = "connections", params(("id" = uuid::Uuid, Path, description = "Domain id"), ("platform" = Platform, Path, description = "googleads, meta or tiktok")), request_body(content = Option<TestInput>, description = "Optional: `{\"confirmRealConversion\": true}` to send to Meta / TikTok without a test event code"), responses((status = 200, description = "What the platform answered to a sample conversion", body = TestResult)))]
pub async fn test(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<(DomainId, String)>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let (domain_id, raw) = path.into_inner();
    let p = platform(&raw)?;
    // The body is optional: empty means no options.
    let input: TestInput = if body.iter().all(u8::is_ascii_whitespace) {
        TestInput::default()
    } else {
        serde_json::from_slice::<Option<TestInput>>(&body)
            .map(Option::unwrap_or_default)
            .map_err(|e| {
                ApiError::BadRequest(format!(
                    "body must be {{\"confirmRealConversion\": true|false}}: {e}"
                ))
            })?
    };
    let confirm = input.confirm_real_conversion;
    let result = run_test(&state, user.0.workspace_id, domain_id, p, confirm).await?;
    Ok(HttpResponse::Ok().json(result))
}
