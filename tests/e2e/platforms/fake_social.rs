//! A fake of Meta (Facebook Login's dialog, the Graph API's token exchanges, ad account and
//! pixel listings, the Conversions API) and TikTok for Business (the advertiser authorization
//! page, the code exchange, advertiser and pixel listings, the Events API), on one loopback
//! server so that `PlatformUrls::all_at` points both platforms at it. It refuses what the real
//! ones refuse; each rule names its source.

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

pub const META_APP_ID: &str = "4242424242";
pub const META_APP_SECRET: &str = "meta-app-secret";
pub const TIKTOK_APP_ID: &str = "7100000000000000001";
pub const TIKTOK_APP_SECRET: &str = "tiktok-app-secret";

/// The Meta user's ad account and its pixels, as the listings return them.
pub const META_ACCOUNT: (&str, &str) = ("1010", "Shop EU");
pub const META_PIXELS: &[(&str, &str)] = &[("5550001", "Main pixel"), ("5550002", "Staging")];
/// The TikTok advertiser that authorized the app, and its pixels.
pub const TIKTOK_ADVERTISER: (&str, &str) = ("6900000000000000001", "Shop Ads");
pub const TIKTOK_PIXELS: &[(&str, &str)] = &[("CSHOPPIXEL01", "Web"), ("CSHOPPIXEL02", "Outlet")];

#[derive(Default)]
struct State {
    /// Redirect URIs registered with the apps (Meta: "Valid OAuth Redirect URIs"; TikTok: the
    /// app's "Advertiser redirect URL").
    redirects: HashSet<String>,
    /// Meta codes issued: code → redirect_uri, until used.
    meta_codes: HashMap<String, String>,
    /// Meta short-lived user tokens (usable for the listings and the long-lived exchange).
    meta_short: HashSet<String>,
    /// Meta long-lived tokens.
    meta_long: HashSet<String>,
    /// TikTok auth codes issued, until used (valid 10 minutes).
    tiktok_codes: HashMap<String, Instant>,
    /// TikTok advertiser access tokens.
    tiktok_tokens: HashSet<String>,
    issued: u64,
    /// Meta token requests (query strings), TikTok token requests (bodies).
    meta_token_requests: Vec<HashMap<String, String>>,
    tiktok_token_requests: Vec<Value>,
    /// Accepted events: Meta (pixel, body), TikTok bodies.
    meta_events: Vec<(String, Value)>,
    tiktok_events: Vec<Value>,
    /// The authorization pages ask the user (a link back) instead of redirecting at once.
    consent_page: bool,
}

type Shared = web::Data<Arc<Mutex<State>>>;

#[derive(Clone)]
pub struct FakeSocial {
    pub base: String,
    state: Arc<Mutex<State>>,
}

/// The Graph API's error body (https://developers.facebook.com/docs/graph-api/guides/error-handling).
fn graph_error(status: u16, code: i64, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status")).json(
        json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "FAKE"}}),
    )
}

/// Graph API error 190 for a token that is not (or no longer) valid.
fn invalid_token() -> HttpResponse {
    graph_error(
        400,
        190,
        "Invalid OAuth access token - Cannot parse access token",
    )
}

/// TikTok answers HTTP 200 with `code` and `message`
/// (https://business-api.tiktok.com/portal/docs?id=1737172488964097).
fn tiktok_answer(code: i64, message: &str, data: Value) -> HttpResponse {
    HttpResponse::Ok()
        .json(json!({"code": code, "message": message, "data": data, "request_id": "fake"}))
}

fn bearer(req: &HttpRequest) -> String {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned()
}

/// A provider's consent page: the user clicks "Allow" to go back to `to`.
pub fn consent_page(provider: &str, to: &str) -> HttpResponse {
    let href = to
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html><head><title>{provider}: allow access</title></head><body>\
             <h1>Allow Postback to manage your ads?</h1><a href=\"{href}\">Allow</a></body></html>"
        ))
}

fn redirect_to(s: &State, provider: &str, uri: &str, pairs: &[(&str, &str)]) -> HttpResponse {
    let mut to = url::Url::parse(uri).expect("redirect_uri");
    to.query_pairs_mut().extend_pairs(pairs);
    if s.consent_page {
        return consent_page(provider, to.as_str());
    }
    HttpResponse::Found()
        .insert_header(("Location", to.to_string()))
        .finish()
}

/// `GET /v26.0/dialog/oauth`, Facebook Login's dialog
/// (https://developers.facebook.com/docs/facebook-login/guides/advanced/manual-flow): requires
/// `client_id` and a `redirect_uri` listed in the app's Valid OAuth Redirect URIs ("URL Blocked"
/// otherwise); grants at once and returns with `code` and `state`.
async fn meta_dialog(query: web::Query<HashMap<String, String>>, state: Shared) -> HttpResponse {
    let q = query.into_inner();
    let mut s = state.lock().expect("lock");
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    if q.get("client_id").map(String::as_str) != Some(META_APP_ID) {
        return HttpResponse::BadRequest().body("Invalid App ID");
    }
    if !s.redirects.contains(&redirect) {
        return HttpResponse::BadRequest().body("URL Blocked: This redirect failed because the redirect URI is not whitelisted in the app's Client OAuth Settings.");
    }
    // The permissions the app asks for, comma or space separated.
    let scopes: Vec<&str> = q
        .get("scope")
        .map(|s| s.split([',', ' ']).collect())
        .unwrap_or_default();
    if !scopes.contains(&"ads_management") {
        return HttpResponse::BadRequest().body("ads_management is needed for the Conversions API");
    }
    let flow_state = q.get("state").cloned().unwrap_or_default();
    s.issued += 1;
    let code = format!("AQ-meta-code-{}", s.issued);
    s.meta_codes.insert(code.clone(), redirect.clone());
    redirect_to(
        &s,
        "Facebook",
        &redirect,
        &[("code", &code), ("state", &flow_state)],
    )
}

/// `GET /v26.0/oauth/access_token`: the code exchange (`client_id`, `redirect_uri` identical
/// to the dialog's, `client_secret`, `code`; a code works once) and the long-lived exchange
/// (`grant_type=fb_exchange_token`, `fb_exchange_token`)
/// (https://developers.facebook.com/docs/facebook-login/guides/advanced/manual-flow#confirm,
/// https://developers.facebook.com/docs/facebook-login/guides/access-tokens/get-long-lived).
async fn meta_token(query: web::Query<HashMap<String, String>>, state: Shared) -> HttpResponse {
    let q = query.into_inner();
    let mut s = state.lock().expect("lock");
    s.meta_token_requests.push(q.clone());
    if q.get("client_id").map(String::as_str) != Some(META_APP_ID)
        || q.get("client_secret").map(String::as_str) != Some(META_APP_SECRET)
    {
        return graph_error(400, 1, "Error validating client secret.");
    }
    s.issued += 1;
    let n = s.issued;
    if q.get("grant_type").map(String::as_str) == Some("fb_exchange_token") {
        let short = q.get("fb_exchange_token").cloned().unwrap_or_default();
        if !s.meta_short.contains(&short) {
            return invalid_token();
        }
        let long = format!("EAA-long-{n}");
        s.meta_long.insert(long.clone());
        return HttpResponse::Ok()
            .json(json!({"access_token": long, "token_type": "bearer", "expires_in": 5183944}));
    }
    let code = q.get("code").cloned().unwrap_or_default();
    let Some(redirect) = s.meta_codes.remove(&code) else {
        return graph_error(400, 100, "This authorization code has been used.");
    };
    if q.get("redirect_uri") != Some(&redirect) {
        return graph_error(400, 100, "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request");
    }
    let short = format!("EAA-short-{n}");
    s.meta_short.insert(short.clone());
    HttpResponse::Ok()
        .json(json!({"access_token": short, "token_type": "bearer", "expires_in": 5400}))
}

fn meta_user_token(req: &HttpRequest, s: &State) -> bool {
    let t = bearer(req);
    s.meta_short.contains(&t) || s.meta_long.contains(&t)
}

/// `GET /v26.0/me/adaccounts` (https://developers.facebook.com/docs/marketing-api/reference/user/adaccounts/).
async fn meta_accounts(req: HttpRequest, state: Shared) -> HttpResponse {
    let s = state.lock().expect("lock");
    if !meta_user_token(&req, &s) {
        return invalid_token();
    }
    let (id, name) = META_ACCOUNT;
    HttpResponse::Ok()
        .json(json!({"data": [{"account_id": id, "name": name, "id": format!("act_{id}")}]}))
}

/// `GET /v26.0/act_{id}/adspixels`
/// (https://developers.facebook.com/docs/marketing-api/reference/ad-account/adspixels/).
async fn meta_pixels(req: HttpRequest, path: web::Path<String>, state: Shared) -> HttpResponse {
    let s = state.lock().expect("lock");
    if !meta_user_token(&req, &s) {
        return invalid_token();
    }
    if path.into_inner() != format!("act_{}", META_ACCOUNT.0) {
        return graph_error(400, 100, "Unsupported get request. Object does not exist, cannot be loaded due to missing permissions, or does not support this operation.");
    }
    let data: Vec<Value> = META_PIXELS
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    HttpResponse::Ok().json(json!({"data": data}))
}

/// `POST /v26.0/{pixel}/events`, the Conversions API
/// (https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api): the
/// `access_token` must be valid (error 190 otherwise) and the pixel one it may send to.
async fn meta_events(path: web::Path<String>, body: web::Bytes, state: Shared) -> HttpResponse {
    let mut s = state.lock().expect("lock");
    let Ok(b) = serde_json::from_slice::<Value>(&body) else {
        return graph_error(400, 100, "Invalid JSON");
    };
    let token = b["access_token"].as_str().unwrap_or("");
    if !s.meta_long.contains(token) && !s.meta_short.contains(token) {
        return invalid_token();
    }
    let pixel = path.into_inner();
    if !META_PIXELS.iter().any(|(id, _)| *id == pixel) {
        return graph_error(
            400,
            100,
            "Unsupported post request. Object with ID does not exist.",
        );
    }
    let n = b["data"].as_array().map_or(0, Vec::len);
    s.meta_events.push((pixel, b));
    HttpResponse::Ok().json(json!({"events_received": n, "messages": [], "fbtrace_id": "FAKE"}))
}

/// `GET /portal/auth`, TikTok for Business's advertiser authorization page
/// (https://business-api.tiktok.com/portal/docs?id=1738373141733378): `app_id`, `state`, and a
/// `redirect_uri` registered with the app; returns with `auth_code` (and `code`) and `state`.
async fn tiktok_auth(query: web::Query<HashMap<String, String>>, state: Shared) -> HttpResponse {
    let q = query.into_inner();
    let mut s = state.lock().expect("lock");
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    if q.get("app_id").map(String::as_str) != Some(TIKTOK_APP_ID)
        || !s.redirects.contains(&redirect)
    {
        return HttpResponse::BadRequest().body("The app or its redirect URL is not valid");
    }
    let flow_state = q.get("state").cloned().unwrap_or_default();
    s.issued += 1;
    let code = format!("tt-auth-code-{}", s.issued);
    s.tiktok_codes.insert(code.clone(), Instant::now());
    redirect_to(
        &s,
        "TikTok for Business",
        &redirect,
        &[
            ("auth_code", &code),
            ("code", &code),
            ("state", &flow_state),
        ],
    )
}

/// `POST /open_api/v1.3/oauth2/access_token/` with the JSON body `{app_id, secret, auth_code}`
/// (https://business-api.tiktok.com/portal/docs?id=1739965703387137): the app's id and secret
/// must match (40001 otherwise: no permission), and the auth code is valid once, for 10 minutes
/// (40002, the invalid-parameter code, otherwise; the code values are TikTok's return codes,
/// https://business-api.tiktok.com/portal/docs?id=1737172488964097).
async fn tiktok_token(req: HttpRequest, body: web::Bytes, state: Shared) -> HttpResponse {
    let mut s = state.lock().expect("lock");
    let is_json = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    let b: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.tiktok_token_requests.push(b.clone());
    if !is_json {
        return tiktok_answer(40002, "Content-Type must be application/json", Value::Null);
    }
    if b["app_id"] != TIKTOK_APP_ID || b["secret"] != TIKTOK_APP_SECRET {
        return tiktok_answer(40001, "The app_id or secret is not valid", Value::Null);
    }
    let code = b["auth_code"].as_str().unwrap_or("");
    let fresh = s
        .tiktok_codes
        .remove(code)
        .is_some_and(|at| at.elapsed() < Duration::from_secs(600));
    if !fresh {
        return tiktok_answer(40002, "auth_code is invalid or has been used", Value::Null);
    }
    s.issued += 1;
    let token = format!("tt-access-{}", s.issued);
    s.tiktok_tokens.insert(token.clone());
    tiktok_answer(
        0,
        "OK",
        json!({"access_token": token, "advertiser_ids": [TIKTOK_ADVERTISER.0], "scope": [4, 12]}),
    )
}

fn tiktok_token_ok(req: &HttpRequest, s: &State) -> bool {
    let t = req
        .headers()
        .get("access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    s.tiktok_tokens.contains(t)
}

fn revoked() -> HttpResponse {
    tiktok_answer(
        40105,
        "Access token is incorrect or has been revoked.",
        Value::Null,
    )
}

/// `GET /open_api/v1.3/oauth2/advertiser/get/?app_id&secret` with `Access-Token`
/// (https://business-api.tiktok.com/portal/docs?id=1738455508553729).
async fn tiktok_advertisers(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    state: Shared,
) -> HttpResponse {
    let s = state.lock().expect("lock");
    if !tiktok_token_ok(&req, &s) {
        return revoked();
    }
    if query.get("app_id").map(String::as_str) != Some(TIKTOK_APP_ID)
        || query.get("secret").map(String::as_str) != Some(TIKTOK_APP_SECRET)
    {
        return tiktok_answer(40001, "The app_id or secret is not valid", Value::Null);
    }
    let (id, name) = TIKTOK_ADVERTISER;
    tiktok_answer(
        0,
        "OK",
        json!({"list": [{"advertiser_id": id, "advertiser_name": name}]}),
    )
}

/// `GET /open_api/v1.3/pixel/list/?advertiser_id` with `Access-Token` (the official SDK,
/// github.com/tiktok/tiktok-business-api-sdk `js_sdk/docs/PixelApi.md`).
async fn tiktok_pixels(
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
    state: Shared,
) -> HttpResponse {
    let s = state.lock().expect("lock");
    if !tiktok_token_ok(&req, &s) {
        return revoked();
    }
    if query.get("advertiser_id").map(String::as_str) != Some(TIKTOK_ADVERTISER.0) {
        return tiktok_answer(40001, "No permission to operate advertiser", Value::Null);
    }
    let pixels: Vec<Value> = TIKTOK_PIXELS
        .iter()
        .enumerate()
        .map(|(i, (code, name))| json!({"pixel_code": code, "pixel_name": name, "pixel_id": format!("7{i}")}))
        .collect();
    tiktok_answer(0, "OK", json!({"pixels": pixels}))
}

/// `POST /open_api/v1.3/event/track/` with `Access-Token` (Events API 2.0,
/// https://business-api.tiktok.com/portal/docs?id=1771101303285761): 40105 for a token that is
/// incorrect or revoked; the `event_source_id` must be a pixel of the authorized advertiser.
async fn tiktok_track(req: HttpRequest, body: web::Bytes, state: Shared) -> HttpResponse {
    let mut s = state.lock().expect("lock");
    if !tiktok_token_ok(&req, &s) {
        return revoked();
    }
    let b: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let pixel = b["event_source_id"].as_str().unwrap_or("");
    if !TIKTOK_PIXELS.iter().any(|(code, _)| *code == pixel) {
        return tiktok_answer(40002, "Invalid event_source_id", Value::Null);
    }
    s.tiktok_events.push(b);
    tiktok_answer(0, "OK", json!({}))
}

impl FakeSocial {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake social");
        let port = listener.local_addr().expect("addr").port();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/v26.0/dialog/oauth", web::get().to(meta_dialog))
                .route("/v26.0/oauth/access_token", web::get().to(meta_token))
                .route("/v26.0/me/adaccounts", web::get().to(meta_accounts))
                .route("/v26.0/{account}/adspixels", web::get().to(meta_pixels))
                .route("/v26.0/{pixel}/events", web::post().to(meta_events))
                .route("/portal/auth", web::get().to(tiktok_auth))
                .route(
                    "/open_api/v1.3/oauth2/access_token/",
                    web::post().to(tiktok_token),
                )
                .route(
                    "/open_api/v1.3/oauth2/advertiser/get/",
                    web::get().to(tiktok_advertisers),
                )
                .route("/open_api/v1.3/pixel/list/", web::get().to(tiktok_pixels))
                .route("/open_api/v1.3/event/track/", web::post().to(tiktok_track))
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

    /// Registers a redirect URI with both apps.
    pub fn allow_redirect(&self, uri: &str) {
        self.state
            .lock()
            .expect("lock")
            .redirects
            .insert(uri.to_owned());
    }

    /// The authorization pages show an "Allow" link back instead of redirecting at once (a
    /// browser then returns from the provider's page, a cross-site navigation).
    pub fn show_consent_page(&self) {
        self.state.lock().expect("lock").consent_page = true;
    }

    /// The user removed the app: every Meta and TikTok token stops working.
    pub fn revoke_all(&self) {
        let mut s = self.state.lock().expect("lock");
        s.meta_short.clear();
        s.meta_long.clear();
        s.tiktok_tokens.clear();
    }

    pub fn meta_token_requests(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().expect("lock").meta_token_requests.clone()
    }

    pub fn tiktok_token_requests(&self) -> Vec<Value> {
        self.state
            .lock()
            .expect("lock")
            .tiktok_token_requests
            .clone()
    }

    pub fn meta_events(&self) -> Vec<(String, Value)> {
        self.state.lock().expect("lock").meta_events.clone()
    }

    pub fn tiktok_events(&self) -> Vec<Value> {
        self.state.lock().expect("lock").tiktok_events.clone()
    }
}
