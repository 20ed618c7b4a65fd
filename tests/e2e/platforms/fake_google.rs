//! A fake of Google's OAuth token endpoint, the Google Ads API's
//! `customers/{id}:uploadClickConversions` and the Data Manager API's `events:ingest` and
//! `requestStatus:retrieve`, refusing what Google refuses. Each rule names its
//! source.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

pub const CLIENT_ID: &str = "fake-client.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "fake-client-secret";

#[derive(Default)]
struct State {
    /// Refresh tokens the fake accepts.
    refresh_tokens: HashSet<String>,
    /// Access tokens issued: token → valid until.
    access: HashMap<String, Instant>,
    /// How long new access tokens last.
    lifetime: Duration,
    issued: u64,
    /// Token endpoint requests (form bodies).
    token_requests: Vec<HashMap<String, String>>,
    /// Upload requests that were authorized (bodies).
    uploads: Vec<Value>,
    /// Upload requests refused with 401.
    unauthorized: u64,
    /// The next uploads answer TOO_RECENT_EVENT.
    too_recent: u32,
    /// Order ids whose conversions Google does not find the click of (answered per conversion).
    clicks_not_found: HashSet<String>,
    /// Authorization codes issued: code → (PKCE challenge, redirect_uri), until used.
    codes: HashMap<String, (String, String)>,
    /// The authorization page asks the user (a link back, clicked in a browser) instead of
    /// redirecting at once.
    consent_page: bool,
    /// Data Manager requests ingested: request id → (its destination, status checks so far).
    requests: HashMap<String, (Value, u32)>,
    /// Status checks answered PROCESSING before the outcome is reported.
    processing_checks: u32,
    /// The reason the next ingested requests fail processing with (None: they succeed).
    fail_processing: Option<String>,
    /// Request ids whose processing fails.
    failing: HashSet<String>,
    /// requestStatus:retrieve requests (their requestId), in order.
    status_checks: Vec<String>,
}

#[derive(Clone)]
pub struct FakeGoogle {
    pub base: String,
    state: Arc<Mutex<State>>,
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn oauth_error(status: u16, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
        .json(json!({"error": error, "error_description": description}))
}

/// `POST /token`, as https://developers.google.com/identity/protocols/oauth2/web-server#offline
/// describes it: a form with client_id, client_secret, grant_type=refresh_token and
/// refresh_token; errors as RFC 6749 §5.2 (invalid_client 401, invalid_grant 400,
/// unsupported_grant_type 400, invalid_request 400).
async fn token(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(400, "invalid_request", "form body expected");
    }
    let f = form(&body);
    let mut s = state.lock().expect("lock");
    s.token_requests.push(f.clone());
    if f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || f.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return oauth_error(401, "invalid_client", "Unauthorized");
    }
    if f.get("grant_type").map(String::as_str) == Some("authorization_code") {
        // A code is used once, with the redirect_uri it was issued for, and (PKCE, RFC 7636
        // §4.6) a code_verifier whose S256 is the challenge the flow started with.
        let code = f.get("code").cloned().unwrap_or_default();
        let Some((challenge, redirect)) = s.codes.remove(&code) else {
            return oauth_error(400, "invalid_grant", "Malformed auth code.");
        };
        if f.get("redirect_uri") != Some(&redirect) {
            return oauth_error(400, "redirect_uri_mismatch", "Bad Request");
        }
        let verifier = f.get("code_verifier").cloned().unwrap_or_default();
        use base64::Engine;
        use sha2::Digest;
        let s256 = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        if s256 != challenge {
            return oauth_error(400, "invalid_grant", "Invalid code verifier.");
        }
        s.issued += 1;
        let refresh = format!("1//from-code-{}", s.issued);
        s.refresh_tokens.insert(refresh.clone());
        let access = format!("ya29.fake-{}", s.issued);
        let lifetime = s.lifetime;
        s.access.insert(access.clone(), Instant::now() + lifetime);
        return HttpResponse::Ok().json(json!({
            "access_token": access, "expires_in": lifetime.as_secs(), "refresh_token": refresh,
            "scope": "https://www.googleapis.com/auth/datamanager https://www.googleapis.com/auth/adwords",
            "token_type": "Bearer"
        }));
    }
    if f.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return oauth_error(400, "unsupported_grant_type", "Invalid grant_type");
    }
    let Some(rt) = f.get("refresh_token") else {
        return oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: refresh_token",
        );
    };
    if !s.refresh_tokens.contains(rt) {
        // Google's answer to a revoked or expired refresh token.
        return oauth_error(400, "invalid_grant", "Token has been expired or revoked.");
    }
    s.issued += 1;
    let token = format!("ya29.fake-{}", s.issued);
    let lifetime = s.lifetime;
    s.access.insert(token.clone(), Instant::now() + lifetime);
    HttpResponse::Ok().json(json!({
        "access_token": token,
        "expires_in": lifetime.as_secs(),
        "scope": "https://www.googleapis.com/auth/adwords",
        "token_type": "Bearer"
    }))
}

fn google_error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
        .json(json!({"error": {"code": status, "message": message, "status": code}}))
}

fn is_hash(v: &Value) -> bool {
    // Hashed identifiers: SHA-256 as lowercase hex, 64 characters
    // (https://developers.google.com/google-ads/api/docs/conversions/enhanced-conversions/leads#normalize-and-hash).
    v.as_str().is_some_and(|s| {
        s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Why Google would refuse one ClickConversion, by the field rules of
/// https://developers.google.com/google-ads/api/reference/rpc/latest/ClickConversion.
fn refuse(customer: &str, c: &Value) -> Option<String> {
    // "gclid, gbraid, wbraid … only one of them can be set" (the click identifiers are a oneof
    // in practice: Google answers ConversionUploadError.…_BOTH_GBRAID_AND_WBRAID / GCLID).
    let ids = ["gclid", "gbraid", "wbraid"]
        .iter()
        .filter(|k| c.get(**k).is_some())
        .count();
    if ids > 1 {
        return Some("only one of gclid, gbraid and wbraid may be set".into());
    }
    // conversion_action: "customers/{customer_id}/conversionActions/{conversion_action_id}".
    let action = c["conversionAction"].as_str().unwrap_or("");
    let prefix = format!("customers/{customer}/conversionActions/");
    if !action.starts_with(&prefix)
        || !action[prefix.len()..].bytes().all(|b| b.is_ascii_digit())
        || action.len() == prefix.len()
    {
        return Some(format!(
            "conversionAction {action:?} is not a resource name of this customer"
        ));
    }
    // conversion_date_time: "yyyy-mm-dd hh:mm:ss+|-hh:mm", e.g. "2019-01-01 12:32:45-08:00".
    let at = c["conversionDateTime"].as_str().unwrap_or("");
    if chrono::DateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S%:z").is_err() {
        return Some(format!(
            "conversionDateTime {at:?} is not yyyy-mm-dd hh:mm:ss+|-hh:mm"
        ));
    }
    // currency_code: ISO 4217 three-letter code.
    if let Some(cur) = c.get("currencyCode") {
        let ok = cur
            .as_str()
            .is_some_and(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()));
        if !ok {
            return Some(format!("currencyCode {cur} is not an ISO 4217 code"));
        }
    }
    for id in c["userIdentifiers"].as_array().into_iter().flatten() {
        for key in ["hashedEmail", "hashedPhoneNumber"] {
            if let Some(v) = id.get(key) {
                if !is_hash(v) {
                    return Some(format!("{key} {v} is not a lowercase hex SHA-256"));
                }
            }
        }
    }
    None
}

/// `POST /v26/customers/{id}:uploadClickConversions`.
async fn upload(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let mut s = state.lock().expect("lock");
    // Every request needs a current OAuth access token: "Request had invalid authentication
    // credentials" (401 UNAUTHENTICATED) otherwise.
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let valid = s
        .access
        .get(token)
        .is_some_and(|until| Instant::now() < *until);
    if !valid {
        s.unauthorized += 1;
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        );
    }
    if req.headers().get("developer-token").is_none() {
        return google_error(400, "INVALID_ARGUMENT", "developer-token header is missing");
    }
    let path = req.path();
    let customer = path
        .trim_start_matches("/v26/customers/")
        .trim_end_matches(":uploadClickConversions")
        .to_owned();
    let Ok(b) = serde_json::from_slice::<Value>(&body) else {
        return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    // "partial_failure … must be set to true" for conversion uploads
    // (UploadClickConversionsRequest, https://developers.google.com/google-ads/api/reference/rpc/latest/UploadClickConversionsRequest).
    if b["partialFailure"] != true {
        return google_error(400, "INVALID_ARGUMENT", "partialFailure must be true");
    }
    let conversions = b["conversions"].as_array().cloned().unwrap_or_default();
    // TOO_MANY_CONVERSIONS_IN_REQUEST: "Upload fewer than 2001 events in a single request".
    if conversions.is_empty() || conversions.len() > 2000 {
        return google_error(400, "INVALID_ARGUMENT", "1 to 2000 conversions per request");
    }
    for c in &conversions {
        if let Some(why) = refuse(&customer, c) {
            return google_error(400, "INVALID_ARGUMENT", &why);
        }
    }
    let validate_only = b["validateOnly"] == true;
    if !validate_only {
        s.uploads.push(b.clone());
    }
    if s.too_recent > 0 && !validate_only {
        s.too_recent -= 1;
        // A partial failure in a 200, as the API reports per-conversion errors.
        return HttpResponse::Ok().json(json!({
            "partialFailureError": {
                "code": 3,
                "message": "The click associated with the given identifier or iOS URL parameter occurred less than 6 hours ago, please retry after 6 hours have passed., at conversions[0]",
                "details": [{
                    "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                    "errors": [{
                        "errorCode": {"conversionUploadError": "TOO_RECENT_EVENT"},
                        "message": "The click associated with the given identifier or iOS URL parameter occurred less than 6 hours ago, please retry after 6 hours have passed."
                    }]
                }]
            },
            "results": [{}]
        }));
    }
    // In partial-failure mode each refused conversion is one `GoogleAdsError` whose location
    // names it (`conversions[i]`), the others are uploaded, and their results are empty objects
    // where a conversion failed
    // (https://developers.google.com/google-ads/api/docs/best-practices/partial-failures).
    let not_found: Vec<usize> = conversions
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c["orderId"]
                .as_str()
                .is_some_and(|o| s.clicks_not_found.contains(o))
        })
        .map(|(i, _)| i)
        .collect();
    let results: Vec<Value> = conversions
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if not_found.contains(&i) {
                json!({})
            } else {
                json!({"conversionAction": c["conversionAction"], "conversionDateTime": c["conversionDateTime"]})
            }
        })
        .collect();
    if !not_found.is_empty() {
        const NOT_FOUND: &str = "The click associated with the given identifier or iOS URL parameter was not found in the system. This can happen if the identifier or iOS URL parameter is invalid or is from a different advertiser.";
        let errors: Vec<Value> = not_found
            .iter()
            .map(|i| {
                json!({
                    "errorCode": {"conversionUploadError": "CLICK_NOT_FOUND"},
                    "message": NOT_FOUND,
                    "location": {"fieldPathElements": [{"fieldName": "conversions", "index": i}]}
                })
            })
            .collect();
        return HttpResponse::Ok().json(json!({
            "partialFailureError": {
                "code": 3,
                "message": format!("{NOT_FOUND}, at conversions[{}]", not_found[0]),
                "details": [{
                    "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                    "errors": errors
                }]
            },
            "results": results
        }));
    }
    HttpResponse::Ok().json(json!({"results": results}))
}

/// `GET /o/oauth2/v2/auth`: Google's authorization page, which here grants at once and sends the user back
/// to `redirect_uri` with `code` and `state` (https://developers.google.com/identity/protocols/oauth2/web-server#handlingresponse).
async fn authorize(
    query: web::Query<HashMap<String, String>>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let q = query.into_inner();
    let need = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let (Some(redirect), Some(flow_state), Some(challenge)) =
        (need("redirect_uri"), need("state"), need("code_challenge"))
    else {
        return HttpResponse::BadRequest().body("Error 400: invalid_request");
    };
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || q.get("response_type").map(String::as_str) != Some("code")
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
        || q.get("access_type").map(String::as_str) != Some("offline")
        || !q.get("scope").is_some_and(|s| {
            s.split(' ')
                .any(|s| s == "https://www.googleapis.com/auth/datamanager")
        })
    {
        return HttpResponse::BadRequest().body("Error 400: invalid_request");
    }
    let mut s = state.lock().expect("lock");
    let code = format!("4/code-{}", s.codes.len() + 1);
    s.codes.insert(code.clone(), (challenge, redirect.clone()));
    let mut to = url::Url::parse(&redirect).expect("redirect_uri");
    to.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &flow_state);
    if s.consent_page {
        return super::fake_social::consent_page("Google", to.as_str());
    }
    HttpResponse::Found()
        .insert_header(("Location", to.to_string()))
        .finish()
}

fn bearer_ok(req: &HttpRequest, s: &State) -> bool {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    s.access
        .get(token)
        .is_some_and(|until| Instant::now() < *until)
        && req.headers().get("developer-token").is_some()
}

/// `GET /v26/customers:listAccessibleCustomers`.
async fn list_customers(req: HttpRequest, state: web::Data<Arc<Mutex<State>>>) -> HttpResponse {
    if !bearer_ok(&req, &state.lock().expect("lock")) {
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        );
    }
    HttpResponse::Ok().json(json!({"resourceNames": ["customers/1234567890"]}))
}

/// `POST /v26/customers/{id}/googleAds:search` for conversion actions.
async fn search(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    if !bearer_ok(&req, &state.lock().expect("lock")) {
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        );
    }
    let q: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !q["query"]
        .as_str()
        .is_some_and(|q| q.contains("FROM conversion_action"))
    {
        return google_error(400, "INVALID_ARGUMENT", "query is required");
    }
    HttpResponse::Ok().json(json!({"results": [
        {"conversionAction": {"resourceName": "customers/1234567890/conversionActions/555111", "id": "555111", "name": "Purchase"}},
        {"conversionAction": {"resourceName": "customers/1234567890/conversionActions/555222", "id": "555222", "name": "Lead"}}
    ]}))
}

/// Why the Data Manager API would refuse an `events:ingest` request, by
/// https://developers.google.com/data-manager/api/reference/rest/v1/events/ingest and
/// https://developers.google.com/data-manager/api/devguides/concepts/formatting.
fn refuse_ingest(b: &Value) -> Option<String> {
    let destinations = b["destinations"].as_array().cloned().unwrap_or_default();
    // destinations[]: Required.
    if destinations.is_empty() {
        return Some("destinations is required".into());
    }
    for d in &destinations {
        // operatingAccount {accountType, accountId}; accountType one of the AccountType enum.
        let kind = d["operatingAccount"]["accountType"].as_str().unwrap_or("");
        if ![
            "GOOGLE_ADS",
            "DISPLAY_VIDEO_ADVERTISER",
            "DISPLAY_VIDEO_PARTNER",
            "DATA_PARTNER",
        ]
        .contains(&kind)
        {
            return Some(format!(
                "operatingAccount.accountType {kind:?} is not valid"
            ));
        }
        let id = d["operatingAccount"]["accountId"].as_str().unwrap_or("");
        if id.is_empty() || !id.bytes().all(|c| c.is_ascii_digit()) {
            return Some(format!(
                "operatingAccount.accountId {id:?} must be digits, no dashes"
            ));
        }
        if d["productDestinationId"].as_str().unwrap_or("").is_empty() {
            return Some("productDestinationId is required for conversions".into());
        }
    }
    let events = b["events"].as_array().cloned().unwrap_or_default();
    // events[]: Required; "a maximum of 2000 Event resources can be sent in a single request".
    if events.is_empty() || events.len() > 2000 {
        return Some("1 to 2000 events per request".into());
    }
    for e in &events {
        // eventTimestamp: Required, RFC 3339.
        let at = e["eventTimestamp"].as_str().unwrap_or("");
        if chrono::DateTime::parse_from_rfc3339(at).is_err() {
            return Some(format!(
                "eventTimestamp {at:?} is not an RFC 3339 timestamp"
            ));
        }
        if e["adIdentifiers"].as_object().is_some_and(|a| {
            ["gclid", "gbraid", "wbraid"]
                .iter()
                .filter(|k| a.contains_key(**k))
                .count()
                > 1
        }) {
            return Some("only one of gclid, gbraid and wbraid may be set".into());
        }
        let ids = e["userData"]["userIdentifiers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        // encoding: "Required for UserData uploads."
        if !ids.is_empty() && b["encoding"] != "HEX" && b["encoding"] != "BASE64" {
            return Some("encoding is required with user data".into());
        }
        for id in &ids {
            for key in ["emailAddress", "phoneNumber"] {
                if let Some(v) = id.get(key) {
                    if !is_hash(v) {
                        return Some(format!("{key} {v} is not a hex SHA-256"));
                    }
                }
            }
        }
        for key in ["adUserData", "adPersonalization"] {
            if let Some(v) = e["consent"].get(key) {
                if v != "CONSENT_GRANTED" && v != "CONSENT_DENIED" {
                    return Some(format!("consent.{key} {v} is not a ConsentStatus"));
                }
            }
        }
        if let Some(cur) = e.get("currency") {
            if !cur
                .as_str()
                .is_some_and(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()))
            {
                return Some(format!("currency {cur} is not an ISO 4217 code"));
            }
        }
    }
    None
}

/// `POST /v1/events:ingest`.
async fn ingest(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let mut s = state.lock().expect("lock");
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let valid = s
        .access
        .get(token)
        .is_some_and(|until| Instant::now() < *until);
    if !valid {
        s.unauthorized += 1;
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        );
    }
    let Ok(b) = serde_json::from_slice::<Value>(&body) else {
        return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    if let Some(why) = refuse_ingest(&b) {
        return google_error(400, "INVALID_ARGUMENT", &why);
    }
    if b["validateOnly"] == true {
        return HttpResponse::Ok().json(json!({}));
    }
    let destination = b["destinations"][0].clone();
    s.uploads.push(b);
    let n = s.uploads.len();
    let id = format!("req-{n}");
    s.requests.insert(id.clone(), (destination, 0));
    if s.fail_processing.is_some() {
        s.failing.insert(id.clone());
    }
    HttpResponse::Ok().json(json!({ "requestId": id }))
}

/// `GET /v1/requestStatus:retrieve?requestId=…`
/// (https://developers.google.com/data-manager/api/reference/rest/v1/requestStatus/retrieve):
/// `requestId` required; an OAuth access token as for ingest; the answer is
/// `RetrieveRequestStatusResponse {requestStatusPerDestination: [{destination, requestStatus,
/// errorInfo {errorCounts [{recordCount, reason}]}, eventsIngestionStatus {recordCount}}]}`,
/// `recordCount` an int64 written as a string. PROCESSING until the events are processed.
async fn request_status(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let mut s = state.lock().expect("lock");
    if !bearer_valid(&req, &s) {
        s.unauthorized += 1;
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        );
    }
    let Some(id) = query.get("requestId").filter(|id| !id.is_empty()).cloned() else {
        return google_error(400, "INVALID_ARGUMENT", "requestId is required");
    };
    s.status_checks.push(id.clone());
    let processing_checks = s.processing_checks;
    let failing = s.failing.contains(&id);
    let reason = s.fail_processing.clone().unwrap_or_default();
    let Some((destination, checks)) = s.requests.get_mut(&id) else {
        return google_error(404, "NOT_FOUND", "Request not found.");
    };
    *checks += 1;
    let status = if *checks <= processing_checks {
        json!({"destination": destination, "requestStatus": "PROCESSING"})
    } else if failing {
        json!({"destination": destination, "requestStatus": "FAILED",
               "errorInfo": {"errorCounts": [{"recordCount": "1", "reason": reason}]}})
    } else {
        json!({"destination": destination, "requestStatus": "SUCCESS",
               "eventsIngestionStatus": {"recordCount": "1"}})
    };
    HttpResponse::Ok().json(json!({ "requestStatusPerDestination": [status] }))
}

fn bearer_valid(req: &HttpRequest, s: &State) -> bool {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    s.access
        .get(token)
        .is_some_and(|until| Instant::now() < *until)
}

impl FakeGoogle {
    /// A fake that accepts `refresh_token` and issues access tokens lasting `lifetime`.
    pub async fn start(refresh_token: &str, lifetime: Duration) -> Self {
        let state = Arc::new(Mutex::new(State {
            lifetime,
            ..State::default()
        }));
        state
            .lock()
            .expect("lock")
            .refresh_tokens
            .insert(refresh_token.to_owned());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake google");
        let port = listener.local_addr().expect("addr").port();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/token", web::post().to(token))
                .route("/v1/events:ingest", web::post().to(ingest))
                .route("/v1/requestStatus:retrieve", web::get().to(request_status))
                .route("/o/oauth2/v2/auth", web::get().to(authorize))
                .route(
                    "/v26/customers:listAccessibleCustomers",
                    web::get().to(list_customers),
                )
                .route(
                    "/v26/customers/{id}/googleAds:search",
                    web::post().to(search),
                )
                .default_service(web::post().to(upload))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Self {
            base: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    /// The authorization page shows an "Allow" link back instead of redirecting at once (a
    /// browser then returns from the provider's page, a cross-site navigation).
    pub fn show_consent_page(&self) {
        self.state.lock().expect("lock").consent_page = true;
    }

    pub fn token_requests(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().expect("lock").token_requests.clone()
    }

    pub fn uploads(&self) -> Vec<Value> {
        self.state.lock().expect("lock").uploads.clone()
    }

    pub fn unauthorized(&self) -> u64 {
        self.state.lock().expect("lock").unauthorized
    }

    /// The user revoked access: the refresh token and every access token stop working.
    pub fn revoke(&self, refresh_token: &str) {
        let mut s = self.state.lock().expect("lock");
        s.refresh_tokens.remove(refresh_token);
        s.access.clear();
    }

    /// Access tokens issued so far stop working (before their expiry); the refresh token still
    /// works.
    pub fn invalidate_access_tokens(&self) {
        self.state.lock().expect("lock").access.clear();
    }

    pub fn accept_refresh_token(&self, refresh_token: &str) {
        self.state
            .lock()
            .expect("lock")
            .refresh_tokens
            .insert(refresh_token.to_owned());
    }

    /// Status checks answer PROCESSING `n` times per request before the outcome.
    pub fn processing_for(&self, n: u32) {
        self.state.lock().expect("lock").processing_checks = n;
    }

    /// Requests ingested from now on fail processing with `reason` (None: they succeed).
    pub fn fail_processing(&self, reason: Option<&str>) {
        self.state.lock().expect("lock").fail_processing = reason.map(str::to_owned);
    }

    /// The request ids asked for with requestStatus:retrieve, in order.
    pub fn status_checks(&self) -> Vec<String> {
        self.state.lock().expect("lock").status_checks.clone()
    }

    /// Conversions with this order id answer CLICK_NOT_FOUND, each on its own.
    pub fn click_not_found(&self, order_id: &str) {
        self.state
            .lock()
            .expect("lock")
            .clicks_not_found
            .insert(order_id.to_owned());
    }

    /// The next `n` uploads answer TOO_RECENT_EVENT.
    pub fn too_recent(&self, n: u32) {
        self.state.lock().expect("lock").too_recent = n;
    }

    pub async fn wait_uploads(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.uploads();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "fake Google got {} of {n} uploads within {within:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
