//! "Connect Google Ads", "Connect Meta", "Connect TikTok" on a domain's Connections tab: the
//! OAuth authorization-code flow (`postback_domain::platforms::connect`; PKCE for Google;
//! Meta's and TikTok's steps in `platforms::meta_connect` / `platforms::tiktok_connect`). `GET /domains/{id}/connections/{platform}/connect`
//! answers 302 to the provider; the provider returns to `GET /oauth/{platform}/callback`, where
//! the code is exchanged for the token the connection stores (Google: a refresh token; Meta: a
//! long-lived token; TikTok: an advertiser access token) and the user picks what to send to from
//! lists fetched with it (Google: account › conversion action; Meta: ad account › pixel; TikTok:
//! advertiser › pixel); `POST /oauth/{platform}/pick` saves the connection.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use postback_domain::ids::DomainId;
use postback_domain::platforms::connections::{self, ConnectionInput};
use postback_domain::platforms::oauth::App;
use postback_domain::platforms::{
    connect, meta_connect, tiktok_connect, Platform, GOOGLE_ADS_API_VERSION,
};
use postback_domain::DomainError;
use postback_runtime::AppState;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{WebError, WebResult};
use crate::layout::{page, Chrome};
use crate::session::{redirect_with, verify_csrf, CurrentUser};

/// One account and conversion action the user may pick.
pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "connections/oauth.html")]
struct OAuthPage {
    chrome: Chrome,
    title: String,
    /// Why the flow stopped, when it did.
    message: Option<String>,
    back: String,
    platform: &'static str,
    flow: String,
    /// What the user picks, e.g. "the Google Ads account and the conversion action".
    what: &'static str,
    /// The list's legend, e.g. "Account › conversion action".
    legend: &'static str,
    choices: Vec<Choice>,
}

/// What is picked for each platform: (sentence, legend).
fn pick_words(p: Platform) -> (&'static str, &'static str) {
    match p {
        Platform::Meta => (
            "the Meta ad account and the pixel (dataset)",
            "Ad account › pixel",
        ),
        Platform::TikTok => ("the TikTok advertiser and the pixel", "Advertiser › pixel"),
        Platform::GoogleAds => (
            "the Google Ads account and the conversion action",
            "Account › conversion action",
        ),
    }
}

fn platform(raw: &str) -> WebResult<Platform> {
    Platform::parse(raw)
        .filter(|p| p.adapter().connect().is_some())
        .ok_or(WebError::from(DomainError::NotFound("connection")))
}

fn message_page(
    req: &HttpRequest,
    user: &CurrentUser,
    status: actix_web::http::StatusCode,
    title: String,
    message: String,
    back: String,
) -> WebResult<HttpResponse> {
    let chrome = Chrome::new(req, user, "domains");
    let had_flash = chrome.flash.is_some();
    let mut resp = page(
        &OAuthPage {
            chrome,
            title,
            message: Some(message),
            back,
            platform: "",
            flow: String::new(),
            what: "",
            legend: "",
            choices: Vec::new(),
        },
        had_flash,
    )?;
    *resp.status_mut() = status;
    Ok(resp)
}

fn redirect_uri(state: &AppState, p: Platform) -> String {
    format!("{}/oauth/{}/callback", state.base_url, p.as_str())
}

/// Starts the sign-in: 302 to the provider, or a page saying the operator has not set it up.
pub async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(DomainId, String)>,
) -> WebResult<HttpResponse> {
    let (domain_id, raw) = path.into_inner();
    let p = platform(&raw)?;
    let back = format!("/domains/{domain_id}/connections");
    let spec = p
        .adapter()
        .connect()
        .ok_or(WebError::from(DomainError::NotFound("connection")))?;
    let mut conn = state.conn().await?;
    postback_domain::tenancy::domains::get(&mut conn, user.ctx.workspace_id, domain_id).await?;
    let Some(app) = state.delivery.apps.get(p) else {
        let settings = p
            .adapter()
            .app()
            .map(|a| format!("{} and {}", a.id_env, a.secret_env))
            .unwrap_or_default();
        return message_page(
            &req,
            &user,
            actix_web::http::StatusCode::OK,
            format!("Connect {}", p.label()),
            format!(
                "{} is not configured by the operator of this server: it needs {settings} set (see README › Connect your ad platforms).",
                p.label()
            ),
            back,
        );
    };
    let authorize = state
        .delivery
        .platform_urls
        .endpoint(spec.authorize_env)
        .to_owned();
    let to = connect::start(
        &mut conn,
        user.ctx.workspace_id,
        user.ctx.session_id,
        domain_id,
        p,
        app,
        &authorize,
        &redirect_uri(&state, p),
        spec.scopes,
    )
    .await?;
    Ok(HttpResponse::Found()
        .insert_header(("Location", to))
        .insert_header(("Cache-Control", "no-store"))
        .finish())
}

/// The provider's return: the state is checked, the code exchanged, the lists fetched.
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    query: web::Query<HashMap<String, String>>,
) -> WebResult<HttpResponse> {
    let p = platform(&path.into_inner())?;
    let title = format!("Connect {}", p.label());
    let refused = |message: String| {
        message_page(
            &req,
            &user,
            actix_web::http::StatusCode::BAD_REQUEST,
            title.clone(),
            message,
            "/domains".into(),
        )
    };
    let Some(flow_state) = query.get("state").filter(|s| !s.is_empty()) else {
        return refused("This page needs the state the sign-in started with; start again from the domain's Connections tab.".into());
    };
    let mut conn = state.conn().await?;
    let Some(flow) = connect::returned(
        &mut conn,
        user.ctx.workspace_id,
        user.ctx.session_id,
        p,
        flow_state,
    )
    .await?
    else {
        return refused(format!(
            "This {} sign-in is not valid: it was already used, it expired ({} minutes), or it was started in another session. Start again from the domain's Connections tab.",
            p.label(),
            connect::FLOW_MINUTES
        ));
    };
    let back = format!("/domains/{}/connections", flow.domain_id);
    let stop = |status, message: String| {
        message_page(&req, &user, status, title.clone(), message, back.clone())
    };
    if let Some(error) = query.get("error") {
        return stop(
            actix_web::http::StatusCode::BAD_REQUEST,
            format!("{} did not grant access ({error}).", p.label()),
        );
    }
    let Some(code) = query.get("code").filter(|c| !c.is_empty()) else {
        return stop(
            actix_web::http::StatusCode::BAD_REQUEST,
            format!("{} sent no authorization code.", p.label()),
        );
    };
    let Some(app) = state.delivery.apps.get(p) else {
        return stop(
            actix_web::http::StatusCode::OK,
            format!(
                "{} is not configured by the operator of this server.",
                p.label()
            ),
        );
    };
    let redirect = redirect_uri(&state, p);
    // (the token the connection keeps, the token the lists are fetched with)
    let exchanged = match p {
        Platform::GoogleAds => {
            google_exchange(&state, app, code, &flow.code_verifier, &redirect).await
        }
        Platform::Meta => meta_exchange(&state, app, code, &redirect)
            .await
            .map(|t| (t.clone(), t)),
        Platform::TikTok => {
            // TikTok sends the code as `auth_code` (and as `code`).
            let code = query
                .get("auth_code")
                .filter(|c| !c.is_empty())
                .map_or(code.as_str(), String::as_str);
            tiktok_exchange(&state, app, code)
                .await
                .map(|t| (t.clone(), t))
        }
    };
    let (kept, access) = match exchanged {
        Ok(t) => t,
        Err(why) => {
            return stop(
                actix_web::http::StatusCode::BAD_GATEWAY,
                format!("{} refused the sign-in: {why}", p.label()),
            )
        }
    };
    connect::keep(&mut conn, flow.id, &kept).await?;
    drop(conn);
    let listed = match p {
        Platform::GoogleAds => {
            google_choices(&state, app.developer_token.as_deref(), &access).await
        }
        Platform::Meta => meta_choices(&state, &access).await,
        Platform::TikTok => tiktok_choices(&state, app, &access).await,
    };
    let choices = match listed {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => {
            let none = match p {
                Platform::GoogleAds => "This Google account has no Google Ads account with an enabled conversion action to send to.",
                Platform::Meta => "This Facebook account reaches no ad account with a pixel (dataset) to send to: create one in Events Manager, then connect again.",
                Platform::TikTok => "The authorized TikTok advertisers have no pixel to send to: create one in Events Manager, then connect again.",
            };
            return stop(actix_web::http::StatusCode::OK, none.into());
        }
        Err(why) => return stop(actix_web::http::StatusCode::BAD_GATEWAY, why),
    };
    let (what, legend) = pick_words(p);
    let offered: Vec<String> = choices.iter().map(|c| c.value.clone()).collect();
    let mut conn = state.conn().await?;
    connect::offer(&mut conn, flow.id, &offered).await?;
    drop(conn);
    let chrome = Chrome::new(&req, &user, "domains");
    let had_flash = chrome.flash.is_some();
    page(
        &OAuthPage {
            chrome,
            title,
            message: None,
            back,
            platform: p.as_str(),
            flow: flow.id.to_string(),
            what,
            legend,
            choices,
        },
        had_flash,
    )
}

/// The answer's JSON, or null.
fn json_of(resp: &postback_runtime::delivery::client::Response) -> Value {
    resp.body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null)
}

/// Google's token endpoint: the code (with the PKCE verifier) for (refresh token, access token).
async fn google_exchange(
    state: &AppState,
    app: &App,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> Result<(String, String), String> {
    let (url, body) = connect::code_request(app, code, verifier, redirect);
    let no_headers: [(&str, String); 0] = [];
    let resp = state
        .http
        .post_as(
            "application/x-www-form-urlencoded",
            &url,
            &no_headers,
            body,
            64 * 1024,
        )
        .await;
    let answer = json_of(&resp);
    let text = |k: &str| answer.get(k).and_then(Value::as_str).map(str::to_owned);
    match (text("access_token"), text("refresh_token")) {
        (Some(access), Some(refresh)) => Ok((refresh, access)),
        _ => Err(match (text("error"), text("error_description")) {
            (Some(e), Some(d)) => format!("{e}: {d}"),
            (Some(e), None) => e,
            _ => resp
                .error
                .clone()
                .unwrap_or_else(|| "no refresh token in the answer".into()),
        }),
    }
}

/// A GET with the token in a header; (status, body) or why it could not be made.
async fn get_with(
    state: &AppState,
    url: &str,
    header: (&str, &str),
) -> Result<(u16, String), String> {
    let headers = vec![(header.0.to_owned(), header.1.to_owned())];
    let resp = state.http.get(url, &headers, 256 * 1024).await;
    match resp.status {
        Some(status) => Ok((status, resp.body.unwrap_or_default())),
        None => Err(resp.error.unwrap_or_else(|| "no answer".into())),
    }
}

/// Meta: the code for a short-lived user token, that for a long-lived one.
async fn meta_exchange(
    state: &AppState,
    app: &App,
    code: &str,
    redirect: &str,
) -> Result<String, String> {
    let graph = state.delivery.platform_urls.get(Platform::Meta).to_owned();
    let no_headers: [(&str, String); 0] = [];
    let short = state
        .http
        .get(
            &meta_connect::code_url(&graph, app, code, redirect),
            &no_headers,
            64 * 1024,
        )
        .await;
    let short = meta_connect::read_token(
        short.status.unwrap_or(0),
        short.body.as_deref().unwrap_or(""),
    )?;
    let long = state
        .http
        .get(
            &meta_connect::long_lived_url(&graph, app, &short),
            &no_headers,
            64 * 1024,
        )
        .await;
    meta_connect::read_token(long.status.unwrap_or(0), long.body.as_deref().unwrap_or(""))
}

/// Meta: the user's ad accounts and each one's pixels.
async fn meta_choices(state: &AppState, token: &str) -> Result<Vec<Choice>, String> {
    let graph = state.delivery.platform_urls.get(Platform::Meta).to_owned();
    let bearer = format!("Bearer {token}");
    let (status, body) = get_with(
        state,
        &meta_connect::ad_accounts_url(&graph),
        ("Authorization", &bearer),
    )
    .await?;
    let accounts = meta_connect::read_list(status, &body, "account_id")
        .map_err(|why| format!("Meta did not list the ad accounts: {why}"))?;
    let mut choices = Vec::new();
    for (account, account_name) in accounts.into_iter().take(meta_connect::MAX_ACCOUNTS) {
        let (status, body) = get_with(
            state,
            &meta_connect::pixels_url(&graph, &account),
            ("Authorization", &bearer),
        )
        .await?;
        let pixels = meta_connect::read_list(status, &body, "id")
            .map_err(|why| format!("Meta did not list the pixels of {account_name}: {why}"))?;
        for (pixel, pixel_name) in pixels {
            choices.push(Choice {
                value: format!("{account}:{pixel}"),
                label: format!("{account_name} ({account}) › {pixel_name} ({pixel})"),
            });
        }
    }
    Ok(choices)
}

/// TikTok: the code for an advertiser access token.
async fn tiktok_exchange(state: &AppState, app: &App, code: &str) -> Result<String, String> {
    let api = state
        .delivery
        .platform_urls
        .get(Platform::TikTok)
        .to_owned();
    let (url, body) = tiktok_connect::token_request(&api, app, code);
    let no_headers: [(&str, String); 0] = [];
    let resp = state.http.post(&url, &no_headers, body, 64 * 1024).await;
    match resp.status {
        Some(status) => tiktok_connect::read_token(status, resp.body.as_deref().unwrap_or("")),
        None => Err(resp.error.unwrap_or_else(|| "no answer".into())),
    }
}

/// TikTok: the advertisers that authorized the app and each one's pixels.
async fn tiktok_choices(state: &AppState, app: &App, token: &str) -> Result<Vec<Choice>, String> {
    let api = state
        .delivery
        .platform_urls
        .get(Platform::TikTok)
        .to_owned();
    let (status, body) = get_with(
        state,
        &tiktok_connect::advertisers_url(&api, app),
        ("Access-Token", token),
    )
    .await?;
    let advertisers = tiktok_connect::read_advertisers(status, &body)
        .map_err(|why| format!("TikTok did not list the advertisers: {why}"))?;
    let mut choices = Vec::new();
    for (advertiser, advertiser_name) in advertisers {
        let (status, body) = get_with(
            state,
            &tiktok_connect::pixels_url(&api, &advertiser),
            ("Access-Token", token),
        )
        .await?;
        let pixels = tiktok_connect::read_pixels(status, &body)
            .map_err(|why| format!("TikTok did not list the pixels of {advertiser_name}: {why}"))?;
        for (pixel, pixel_name) in pixels {
            choices.push(Choice {
                value: format!("{advertiser}:{pixel}"),
                label: format!("{advertiser_name} ({advertiser}) › {pixel_name} ({pixel})"),
            });
        }
    }
    Ok(choices)
}

/// The accounts the token reaches and their enabled conversion actions, from the Google Ads
/// API: `GET /{version}/customers:listAccessibleCustomers`
/// (https://developers.google.com/google-ads/api/reference/rpc/latest/CustomerService) and, per
/// account, `POST /{version}/customers/{id}/googleAds:search` with a GAQL query on
/// `conversion_action` (https://developers.google.com/google-ads/api/fields/latest/conversion_action).
async fn google_choices(
    state: &AppState,
    developer_token: Option<&str>,
    access: &str,
) -> Result<Vec<Choice>, String> {
    let Some(developer_token) = developer_token else {
        return Err("Listing Google Ads accounts needs the operator's developer token (POSTBACK_GOOGLE_DEVELOPER_TOKEN).".into());
    };
    let base = state
        .delivery
        .platform_urls
        .get(Platform::GoogleAds)
        .to_owned();
    let headers = vec![
        ("Authorization".to_owned(), format!("Bearer {access}")),
        ("developer-token".to_owned(), developer_token.to_owned()),
    ];
    let listed = state
        .http
        .get(
            &format!("{base}/{GOOGLE_ADS_API_VERSION}/customers:listAccessibleCustomers"),
            &headers,
            256 * 1024,
        )
        .await;
    let json: Value = listed
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    if listed.status != Some(200) {
        return Err(format!(
            "Google Ads did not list the accounts: {}",
            json.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or(listed.error)
                .unwrap_or_default()
        ));
    }
    let customers: Vec<String> = json["resourceNames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|r| r.strip_prefix("customers/"))
        .map(str::to_owned)
        .take(20)
        .collect();
    let mut choices = Vec::new();
    for customer in customers {
        let query = json!({"query": "SELECT conversion_action.id, conversion_action.name FROM conversion_action WHERE conversion_action.status = 'ENABLED'"});
        let resp = state
            .http
            .post(
                &format!("{base}/{GOOGLE_ADS_API_VERSION}/customers/{customer}/googleAds:search"),
                &headers,
                serde_json::to_vec(&query).unwrap_or_default(),
                256 * 1024,
            )
            .await;
        let found: Value = resp
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        for row in found["results"].as_array().into_iter().flatten() {
            let action = &row["conversionAction"];
            let id = action["id"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| action["id"].as_i64().map(|n| n.to_string()));
            let Some(id) = id else { continue };
            let name = action["name"].as_str().unwrap_or("(unnamed)");
            let shown = if customer.len() == 10 {
                format!("{}-{}-{}", &customer[..3], &customer[3..6], &customer[6..])
            } else {
                customer.clone()
            };
            choices.push(Choice {
                value: format!("{customer}:{id}"),
                label: format!("{shown} › {name} ({id})"),
            });
        }
    }
    Ok(choices)
}

#[derive(Deserialize)]
pub struct PickForm {
    csrf_token: String,
    flow: String,
    #[serde(default)]
    choice: String,
}

/// Saves the connection with the picked account and conversion action.
pub async fn pick(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<PickForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let p = platform(&path.into_inner())?;
    let title = format!("Connect {}", p.label());
    let Some((customer, action)) = form.choice.trim().split_once(':') else {
        return message_page(
            &req,
            &user,
            actix_web::http::StatusCode::BAD_REQUEST,
            title,
            "Pick one of the listed choices.".into(),
            "/domains".into(),
        );
    };
    let flow = uuid::Uuid::parse_str(form.flow.trim()).unwrap_or_default();
    let mut conn = state.conn().await?;
    let pending = match connect::take_pending(
        &mut conn,
        user.ctx.workspace_id,
        user.ctx.session_id,
        p,
        flow,
        form.choice.trim(),
    )
    .await
    {
        Ok(pending) => pending,
        Err(DomainError::Invalid(why)) => {
            return message_page(
                &req,
                &user,
                actix_web::http::StatusCode::BAD_REQUEST,
                title,
                format!("{why}: go back and pick one of them."),
                "/domains".into(),
            )
        }
        Err(e) => return Err(e.into()),
    };
    let Some((domain_id, refresh)) = pending else {
        return message_page(
            &req,
            &user,
            actix_web::http::StatusCode::BAD_REQUEST,
            title,
            "This sign-in is no longer waiting for a choice: start again from the domain's Connections tab.".into(),
            "/domains".into(),
        );
    };
    // The platform's module says what the pick sets (its settings, the token).
    let stored = connections::get(&mut conn, user.ctx.workspace_id, domain_id, p)
        .await?
        .settings;
    let (settings, credentials) = p.adapter().picked(stored, customer, action, refresh);
    let input = ConnectionInput {
        enabled: Some(true),
        settings,
        credentials,
        event_map: None,
    };
    let back = format!("/domains/{domain_id}/connections");
    match connections::put(&mut conn, user.ctx.workspace_id, domain_id, p, input).await {
        Ok(c) => {
            let detail = json!({"domainId": domain_id, "enabled": c.enabled, "via": "oauth"});
            postback_domain::tenancy::audit::record(
                &mut conn,
                &user.ctx,
                "connection.save",
                p.as_str(),
                detail,
            )
            .await?;
            Ok(redirect_with(
                &back,
                "success",
                &format!("{} connected: new events are sent to it.", p.label()),
                state.secure_cookies,
            ))
        }
        Err(DomainError::Invalid(why)) => message_page(
            &req,
            &user,
            actix_web::http::StatusCode::BAD_REQUEST,
            title,
            why,
            back,
        ),
        Err(e) => Err(e.into()),
    }
}
