//! The Connections tab of a domain (seed 000 "connected platforms"): Google Ads, Meta and
//! TikTok, each with its settings, write-only credentials, an on/off switch, the event-name
//! mapping and a button that sends a test event now.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use postback_domain::ids::DomainId;
use postback_domain::platforms::connections::{self, Connection, ConnectionInput};
use postback_domain::platforms::{Credentials, Platform, Settings};
use postback_domain::tenancy::domains::{self, Domain};
use postback_domain::DomainError;
use postback_runtime::AppState;
use serde::Deserialize;
use serde_json::json;

use crate::auth::CsrfOnly;
use crate::confirm::ConfirmPage;
use crate::error::{WebError, WebResult};
use crate::format::relative;
use crate::layout::{page, Chrome};
use crate::session::{redirect_with, verify_csrf, CurrentUser};

/// One form field of a platform's card.
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
    pub hint: &'static str,
    pub required: bool,
}

/// A write-only credential: an empty input, and whether one is saved.
pub struct Secret {
    pub name: &'static str,
    pub label: &'static str,
    pub saved: bool,
}

pub struct Card {
    pub platform: &'static str,
    pub label: &'static str,
    pub connected: bool,
    pub enabled: bool,
    pub updated: String,
    pub fields: Vec<Field>,
    pub secrets: Vec<Secret>,
    /// `purchase = Purchase` lines.
    pub event_map: String,
    pub mapping_hint: String,
    pub error: Option<String>,
}

fn field(name: &'static str, label: &'static str, value: &Option<String>) -> Field {
    Field {
        name,
        label,
        value: value.clone().unwrap_or_default(),
        hint: "",
        required: true,
    }
}

fn card(c: &Connection) -> Card {
    let s = &c.settings;
    let saved = |n: &str| c.credentials_saved.contains(&n);
    let (fields, secrets) = match c.platform {
        Platform::GoogleAds => (
            vec![
                Field {
                    hint: "10 digits, as shown at the top of Google Ads (dashes are fine).",
                    ..field("customer_id", "Customer ID", &s.customer_id)
                },
                Field {
                    hint: "Only when the account is managed through a manager account.",
                    required: false,
                    ..field(
                        "login_customer_id",
                        "Manager account ID",
                        &s.login_customer_id,
                    )
                },
                Field {
                    hint: "The id of the conversion action (Goals › Conversions) events are uploaded to.",
                    ..field(
                        "conversion_action",
                        "Conversion action ID",
                        &s.conversion_action,
                    )
                },
            ],
            vec![
                Secret {
                    name: "developer_token",
                    label: "Developer token",
                    saved: saved("developerToken"),
                },
                Secret {
                    name: "access_token",
                    label: "OAuth access token",
                    saved: saved("accessToken"),
                },
            ],
        ),
        Platform::Meta => (
            vec![
                field("pixel_id", "Pixel (dataset) ID", &s.pixel_id),
                Field {
                    hint: "From Events Manager › Test events; events then show up there only.",
                    required: false,
                    ..field("test_event_code", "Test event code", &s.test_event_code)
                },
            ],
            vec![Secret {
                name: "access_token",
                label: "Conversions API access token",
                saved: saved("accessToken"),
            }],
        ),
        Platform::TikTok => (
            vec![
                field("pixel_code", "Pixel code", &s.pixel_code),
                Field {
                    hint: "From Events Manager › Test events.",
                    required: false,
                    ..field("test_event_code", "Test event code", &s.test_event_code)
                },
            ],
            vec![Secret {
                name: "access_token",
                label: "Events API access token",
                saved: saved("accessToken"),
            }],
        ),
    };
    let example = |e: &str| c.maps(e).unwrap_or_else(|| "not sent".into());
    let mapping_hint = match c.platform {
        Platform::GoogleAds => "One per line: event = conversion action ID. Events not listed go to the default conversion action; refund and chargeback are not sent. An empty right side stops an event.".to_owned(),
        _ => format!(
            "One per line: event = {} event name. Not listed: purchase → {}, lead → {}, other names as they are; refund and chargeback are not sent. An empty right side stops an event.",
            c.label,
            example("purchase"),
            example("lead"),
        ),
    };
    Card {
        platform: c.platform.as_str(),
        label: c.label,
        connected: c.connected,
        enabled: c.enabled,
        updated: c.updated_at.map(relative).unwrap_or_default(),
        fields,
        secrets,
        event_map: c
            .event_map
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join("\n"),
        mapping_hint,
        error: None,
    }
}

#[derive(Template)]
#[template(path = "connections/list.html")]
struct ConnectionsPage {
    chrome: Chrome,
    domain_id: String,
    hostname: String,
    window_days: i32,
    cards: Vec<Card>,
}

async fn render(
    req: &HttpRequest,
    state: &AppState,
    user: &CurrentUser,
    domain: Domain,
    replace: Option<Card>,
) -> WebResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let list = connections::list(&mut conn, user.ctx.workspace_id, domain.id).await?;
    let cards = list
        .iter()
        .map(card)
        .map(|c| match &replace {
            // The form as the user sent it (secrets aside), with the reason it was refused.
            Some(r) if r.platform == c.platform => Card {
                enabled: r.enabled,
                fields: c
                    .fields
                    .into_iter()
                    .map(|f| Field {
                        value: r
                            .fields
                            .iter()
                            .find(|e| e.name == f.name)
                            .map(|e| e.value.clone())
                            .unwrap_or_default(),
                        ..f
                    })
                    .collect(),
                event_map: r.event_map.clone(),
                error: r.error.clone(),
                ..c
            },
            _ => c,
        })
        .collect();
    let chrome = Chrome::new(req, user, "domains");
    let had_flash = chrome.flash.is_some();
    let tpl = ConnectionsPage {
        chrome,
        domain_id: domain.id.to_string(),
        hostname: domain.hostname,
        window_days: domain.attribution_window_days,
        cards,
    };
    page(&tpl, had_flash)
}

fn platform(raw: &str) -> WebResult<Platform> {
    Platform::parse(raw).ok_or(WebError::from(DomainError::NotFound("connection")))
}

fn connections_path(domain_id: DomainId) -> String {
    format!("/domains/{domain_id}/connections")
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<DomainId>,
) -> WebResult<HttpResponse> {
    let domain = {
        let mut conn = state.conn().await?;
        domains::get(&mut conn, user.ctx.workspace_id, path.into_inner()).await?
    };
    render(&req, &state, &user, domain, None).await
}

#[derive(Deserialize)]
pub struct ConnectionForm {
    csrf_token: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    customer_id: Option<String>,
    #[serde(default)]
    login_customer_id: Option<String>,
    #[serde(default)]
    conversion_action: Option<String>,
    #[serde(default)]
    pixel_id: Option<String>,
    #[serde(default)]
    pixel_code: Option<String>,
    #[serde(default)]
    test_event_code: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    developer_token: Option<String>,
    #[serde(default)]
    event_map: Option<String>,
}

/// `purchase = Purchase` lines into a map; a line without `=` is refused with its number.
fn parse_event_map(raw: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in raw.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!(
                "Event mapping line {}: write it as event = platform name",
                i + 1
            ));
        };
        out.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(out)
}

pub async fn save(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(DomainId, String)>,
    form: web::Form<ConnectionForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let (domain_id, raw) = path.into_inner();
    let p = platform(&raw)?;
    let ws = user.ctx.workspace_id;
    let domain = {
        let mut conn = state.conn().await?;
        domains::get(&mut conn, ws, domain_id).await?
    };
    let form = form.into_inner();
    let settings = Settings {
        customer_id: form.customer_id.clone(),
        login_customer_id: form.login_customer_id.clone(),
        conversion_action: form.conversion_action.clone(),
        pixel_id: form.pixel_id.clone(),
        pixel_code: form.pixel_code.clone(),
        test_event_code: form.test_event_code.clone(),
    };
    let enabled = form.enabled.is_some();
    let raw_map = form.event_map.clone().unwrap_or_default();
    let failed = |message: String| Card {
        platform: p.as_str(),
        label: p.label(),
        connected: false,
        enabled,
        updated: String::new(),
        fields: [
            ("customer_id", &form.customer_id),
            ("login_customer_id", &form.login_customer_id),
            ("conversion_action", &form.conversion_action),
            ("pixel_id", &form.pixel_id),
            ("pixel_code", &form.pixel_code),
            ("test_event_code", &form.test_event_code),
        ]
        .into_iter()
        .map(|(name, v)| field(name, "", v))
        .collect(),
        secrets: Vec::new(),
        event_map: raw_map.clone(),
        mapping_hint: String::new(),
        error: Some(message),
    };
    let event_map = match parse_event_map(&raw_map) {
        Ok(m) => m,
        Err(message) => return render(&req, &state, &user, domain, Some(failed(message))).await,
    };
    let input = ConnectionInput {
        enabled: Some(enabled),
        settings,
        credentials: Credentials {
            access_token: form.access_token.clone(),
            developer_token: form.developer_token.clone(),
        },
        event_map: Some(event_map),
    };
    let saved = {
        let mut conn = state.conn().await?;
        connections::put(&mut conn, ws, domain_id, p, input).await
    };
    if let Ok(c) = &saved {
        let detail = json!({"domainId": domain_id, "enabled": c.enabled});
        let mut conn = state.conn().await?;
        postback_domain::tenancy::audit::record(
            &mut conn,
            &user.ctx,
            "connection.save",
            p.as_str(),
            detail,
        )
        .await?;
    }
    match saved {
        Ok(c) => Ok(redirect_with(
            &connections_path(domain_id),
            "success",
            &format!(
                "{} saved{}.",
                c.label,
                if c.enabled {
                    ": new events are sent to it"
                } else {
                    " and turned off"
                }
            ),
            state.secure_cookies,
        )),
        Err(DomainError::Invalid(message)) => {
            render(&req, &state, &user, domain, Some(failed(message))).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn test(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(DomainId, String)>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let (domain_id, raw) = path.into_inner();
    let p = platform(&raw)?;
    let result =
        postback_api::v1::connections::run_test(&state, user.ctx.workspace_id, domain_id, p)
            .await?;
    let excerpt = |b: &Option<String>| {
        let b = b.as_deref().unwrap_or("").trim();
        let cut: String = b.chars().take(200).collect();
        if cut.is_empty() {
            String::new()
        } else {
            format!(" · {cut}")
        }
    };
    let (kind, message) = if result.ok {
        (
            "success",
            format!(
                "Test event sent: {} answered {} in {} ms{}",
                p.label(),
                result.status.unwrap_or(0),
                result.duration_ms,
                excerpt(&result.body)
            ),
        )
    } else {
        (
            "error",
            format!(
                "Test event failed: {}{}",
                result
                    .error
                    .unwrap_or_else(|| format!("{} refused it", p.label())),
                match result.status {
                    Some(s) => format!(" (HTTP {s}){}", excerpt(&result.body)),
                    None => String::new(),
                }
            ),
        )
    };
    Ok(redirect_with(
        &connections_path(domain_id),
        kind,
        &message,
        state.secure_cookies,
    ))
}

pub async fn confirm_delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(DomainId, String)>,
) -> WebResult<HttpResponse> {
    let (domain_id, raw) = path.into_inner();
    let p = platform(&raw)?;
    let domain = {
        let mut conn = state.conn().await?;
        domains::get(&mut conn, user.ctx.workspace_id, domain_id).await?
    };
    let chrome = Chrome::new(&req, &user, "domains");
    let had_flash = chrome.flash.is_some();
    page(
        &ConfirmPage {
            chrome,
            title: format!("Disconnect {}?", p.label()),
            message: format!(
                "Events of {} will no longer be sent to {}, and its saved credentials and delivery log are deleted. Events already stored stay.",
                domain.hostname,
                p.label()
            ),
            action: format!("{}/{}/delete", connections_path(domain_id), p.as_str()),
            button: format!("Disconnect {}", p.label()),
            cancel: connections_path(domain_id),
            danger: true,
        },
        had_flash,
    )
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(DomainId, String)>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let (domain_id, raw) = path.into_inner();
    let p = platform(&raw)?;
    let mut conn = state.conn().await?;
    connections::delete(&mut conn, user.ctx.workspace_id, domain_id, p).await?;
    let detail = json!({"domainId": domain_id});
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.ctx,
        "connection.delete",
        p.as_str(),
        detail,
    )
    .await?;
    Ok(redirect_with(
        &connections_path(domain_id),
        "success",
        &format!("{} disconnected.", p.label()),
        state.secure_cookies,
    ))
}

#[derive(Deserialize)]
pub struct WindowForm {
    csrf_token: String,
    days: String,
}

/// Sets the domain's attribution window from the Connections tab.
pub async fn set_window(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<DomainId>,
    form: web::Form<WindowForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let domain_id = path.into_inner();
    let back = connections_path(domain_id);
    let Ok(days) = form.days.trim().parse::<i64>() else {
        return Ok(redirect_with(
            &back,
            "error",
            "Attribution window must be a whole number of days from 1 to 365.",
            state.secure_cookies,
        ));
    };
    let mut conn = state.conn().await?;
    let set =
        domains::set_attribution_window(&mut conn, user.ctx.workspace_id, domain_id, days).await;
    if let Ok(d) = &set {
        let window = json!({"attributionWindowDays": d.attribution_window_days});
        postback_domain::tenancy::audit::record(
            &mut conn,
            &user.ctx,
            "domain.update",
            &d.hostname,
            window,
        )
        .await?;
    }
    match set {
        Ok(d) => Ok(redirect_with(
            &back,
            "success",
            &format!(
                "Attribution window set to {} days: new events look back that far for the visit that brought the customer.",
                d.attribution_window_days
            ),
            state.secure_cookies,
        )),
        Err(DomainError::Invalid(_)) => Ok(redirect_with(
            &back,
            "error",
            "Attribution window must be a whole number of days from 1 to 365.",
            state.secure_cookies,
        )),
        Err(e) => Err(e.into()),
    }
}
