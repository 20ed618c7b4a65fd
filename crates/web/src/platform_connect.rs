//! "Connect Google Ads" on a domain's Connections tab: the OAuth authorization-code flow with
//! PKCE (`postback_domain::platforms::connect`). `GET /domains/{id}/connections/{platform}/connect`
//! answers 302 to the provider; the provider returns to `GET /oauth/{platform}/callback`, where
//! the code is exchanged for a refresh token and the user picks the account and conversion action
//! from lists fetched with the new token; `POST /oauth/{platform}/pick` saves the connection.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use postback_domain::ids::DomainId;
use postback_domain::platforms::connections::{self, ConnectionInput};
use postback_domain::platforms::{
    connect, Credentials, GoogleAdsCredentials, GoogleAdsSettings, Platform, Settings,
    GOOGLE_ADS_API_VERSION,
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
    choices: Vec<Choice>,
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
    let (url, body) =
        connect::code_request(app, code, &flow.code_verifier, &redirect_uri(&state, p));
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
    let answer: Value = resp
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    let text = |k: &str| answer.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(access), Some(refresh)) = (text("access_token"), text("refresh_token")) else {
        let why = match (text("error"), text("error_description")) {
            (Some(e), Some(d)) => format!("{e}: {d}"),
            (Some(e), None) => e,
            _ => resp
                .error
                .clone()
                .unwrap_or_else(|| "no refresh token in the answer".into()),
        };
        return stop(
            actix_web::http::StatusCode::BAD_GATEWAY,
            format!("{} refused the sign-in: {why}", p.label()),
        );
    };
    connect::keep(&mut conn, flow.id, &refresh).await?;
    drop(conn);
    let choices = match google_choices(&state, app.developer_token.as_deref(), &access).await {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => {
            return stop(
                actix_web::http::StatusCode::OK,
                "This Google account has no Google Ads account with an enabled conversion action to send to.".into(),
            )
        }
        Err(why) => return stop(actix_web::http::StatusCode::BAD_GATEWAY, why),
    };
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
            choices,
        },
        had_flash,
    )
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
    let Some((customer, action)) = form.choice.split_once(':') else {
        return message_page(
            &req,
            &user,
            actix_web::http::StatusCode::BAD_REQUEST,
            title,
            "Pick an account and conversion action.".into(),
            "/domains".into(),
        );
    };
    let flow = uuid::Uuid::parse_str(form.flow.trim()).unwrap_or_default();
    let mut conn = state.conn().await?;
    let Some((domain_id, refresh)) = connect::take_pending(
        &mut conn,
        user.ctx.workspace_id,
        user.ctx.session_id,
        p,
        flow,
    )
    .await?
    else {
        return message_page(
            &req,
            &user,
            actix_web::http::StatusCode::BAD_REQUEST,
            title,
            "This sign-in is no longer waiting for a choice: start again from the domain's Connections tab.".into(),
            "/domains".into(),
        );
    };
    let input = ConnectionInput {
        enabled: Some(true),
        settings: Settings {
            googleads: GoogleAdsSettings {
                customer_id: Some(customer.to_owned()),
                conversion_action: Some(action.to_owned()),
                transport: Some("datamanager".into()),
                ..GoogleAdsSettings::default()
            },
            ..Settings::default()
        },
        credentials: Credentials {
            googleads: GoogleAdsCredentials {
                refresh_token: Some(refresh),
                ..GoogleAdsCredentials::default()
            },
            ..Credentials::default()
        },
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
