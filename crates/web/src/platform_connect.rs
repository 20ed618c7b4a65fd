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
use postback_domain::platforms::signin::{Call, Choice, Context, Http, Reply};
use postback_domain::platforms::{connect, Platform};
use postback_domain::DomainError;
use postback_runtime::AppState;
use serde::Deserialize;
use serde_json::json;

use crate::error::{WebError, WebResult};
use crate::layout::{page, Chrome};
use crate::session::{redirect_with, verify_csrf, CurrentUser};

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
    let spec = p
        .adapter()
        .connect()
        .ok_or(WebError::from(DomainError::NotFound("connection")))?;
    let api = state.delivery.platform_urls.get(p).to_owned();
    let http = Client(&state);
    let cx = Context {
        http: &http,
        app,
        api: &api,
    };
    // TikTok sends the code as `auth_code` (and as `code`).
    let code = query
        .get("auth_code")
        .filter(|c| !c.is_empty())
        .map_or(code.as_str(), String::as_str);
    // (the token the connection keeps, the token the lists are fetched with)
    let exchanged = (spec.exchange)(&cx, code, &flow.code_verifier, &redirect).await;
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
    let listed = (spec.lists)(&cx, &access).await;
    let choices = match listed {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => return stop(actix_web::http::StatusCode::OK, spec.none_found.into()),
        Err(why) => return stop(actix_web::http::StatusCode::BAD_GATEWAY, why),
    };
    let (what, legend) = (spec.what, spec.legend);
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

/// The sign-in's requests, sent by the runtime's HTTP client.
struct Client<'a>(&'a AppState);

impl Http for Client<'_> {
    fn send<'a>(&'a self, call: Call) -> futures_util::future::BoxFuture<'a, Reply> {
        Box::pin(async move {
            let resp = match call.post {
                Some((content_type, body)) => {
                    self.0
                        .http
                        .post_as(content_type, &call.url, &call.headers, body, call.limit)
                        .await
                }
                None => self.0.http.get(&call.url, &call.headers, call.limit).await,
            };
            Reply {
                status: resp.status,
                body: resp.body.unwrap_or_default(),
                error: resp.error,
            }
        })
    }
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
