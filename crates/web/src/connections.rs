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
use crate::format::Zone;
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
    /// The event mapping box's example.
    pub map_placeholder: String,
    pub error: Option<String>,
    /// The platform refused the saved token: why, and since when.
    pub reconnect: Option<String>,
    /// The operator has not set up the platform's OAuth app, which sending needs: what to set.
    pub not_configured: Option<String>,
    /// Sign-in ("Connect Meta") is not set up by the operator, while a pasted token still
    /// works: what to set, as a hint rather than an error.
    pub sign_in_unavailable: Option<String>,
    /// The test button records a real conversion unless confirmed (no test event code).
    pub test_needs_confirm: bool,
    /// The platform connects by OAuth from here ("Connect Google Ads"), and the operator set
    /// its app up.
    pub can_connect: bool,
}

fn card(c: &Connection, apps: &postback_domain::platforms::oauth::Apps, zone: Zone) -> Card {
    let adapter = c.platform.adapter();
    let fields = adapter
        .fields()
        .iter()
        .map(|f| Field {
            name: f.name,
            label: f.label,
            value: (f.get)(&c.settings).clone().unwrap_or_default(),
            hint: f.hint,
            required: f.required,
        })
        .collect();
    let secrets = adapter
        .secrets()
        .iter()
        .map(|s| Secret {
            name: s.name,
            label: s.label,
            saved: c.credentials_saved.iter().any(|k| k == s.key),
        })
        .collect();
    let example = |e: &str| c.maps(e).unwrap_or_else(|| "not sent".into());
    let not_configured = match adapter.app() {
        Some(app) if adapter.app_required() && apps.get(c.platform).is_none() => Some(format!(
            "{} is not configured by the operator of this server: it needs {} and {} set (see README › Connect your ad platforms).",
            c.label, app.id_env, app.secret_env
        )),
        _ => None,
    };
    // Connecting by sign-in needs the operator's app; a pasted token still works.
    let sign_in_unavailable = match adapter.app() {
        Some(app)
            if not_configured.is_none()
                && adapter.connect().is_some()
                && apps.get(c.platform).is_none() =>
        {
            Some(format!(
                "Connect {} (sign-in) is not configured by the operator of this server: it needs {} and {} set (see README › Connect your ad platforms). An access token can be entered below instead.",
                c.label, app.id_env, app.secret_env
            ))
        }
        _ => None,
    };
    let has_test_code = adapter.fields().iter().any(|f| f.name == "test_event_code");
    Card {
        platform: c.platform.as_str(),
        label: c.label,
        connected: c.connected,
        enabled: c.enabled,
        updated: c.updated_at.map(|t| zone.relative(t)).unwrap_or_default(),
        fields,
        secrets,
        event_map: c
            .event_map
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join("\n"),
        mapping_hint: adapter.mapping_hint(&example),
        map_placeholder: format!(
            "purchase = {}",
            match c.maps("purchase").as_deref() {
                Some("") | None => "123456789".to_owned(),
                Some(name) => name.to_owned(),
            }
        ),
        error: None,
        reconnect: c.reconnect_needed.clone(),
        not_configured,
        sign_in_unavailable,
        test_needs_confirm: has_test_code && c.settings.shared.test_event_code.is_none(),
        can_connect: adapter.connect().is_some() && apps.get(c.platform).is_some(),
    }
}

#[derive(Template)]
#[template(path = "connections/list.html")]
struct ConnectionsPage {
    chrome: Chrome,
    domain_id: String,
    hostname: String,
    window_days: i32,
    /// The domain's default country for phone numbers ("" when none).
    default_country: String,
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
        .map(|c| card(c, &state.delivery.apps, Zone::of(user)))
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
        default_country: domain.default_country.clone().unwrap_or_default(),
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

/// The connection form: `csrf_token`, `enabled`, `event_map` and each platform's own fields
/// and secrets (by their form names).
pub type ConnectionForm = std::collections::HashMap<String, String>;

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
    let form = form.into_inner();
    verify_csrf(&req, form.get("csrf_token").map_or("", String::as_str))?;
    let (domain_id, raw) = path.into_inner();
    let p = platform(&raw)?;
    let ws = user.ctx.workspace_id;
    let domain = {
        let mut conn = state.conn().await?;
        domains::get(&mut conn, ws, domain_id).await?
    };
    let adapter = p.adapter();
    let value = |name: &str| form.get(name).cloned();
    let mut settings = Settings::default();
    for f in adapter.fields() {
        (f.set)(&mut settings, value(f.name));
    }
    let mut credentials = Credentials::default();
    for secret in adapter.secrets() {
        (secret.set)(&mut credentials, value(secret.name));
    }
    let enabled = form.contains_key("enabled");
    let raw_map = value("event_map").unwrap_or_default();
    let failed = |message: String| Card {
        platform: p.as_str(),
        label: p.label(),
        connected: false,
        enabled,
        updated: String::new(),
        fields: adapter
            .fields()
            .iter()
            .map(|f| Field {
                name: f.name,
                label: "",
                value: value(f.name).unwrap_or_default(),
                hint: "",
                required: f.required,
            })
            .collect(),
        secrets: Vec::new(),
        event_map: raw_map.clone(),
        mapping_hint: String::new(),
        map_placeholder: String::new(),
        error: Some(message),
        reconnect: None,
        not_configured: None,
        sign_in_unavailable: None,
        test_needs_confirm: false,
        can_connect: false,
    };
    let event_map = match parse_event_map(&raw_map) {
        Ok(m) => m,
        Err(message) => return render(&req, &state, &user, domain, Some(failed(message))).await,
    };
    let input = ConnectionInput {
        enabled: Some(enabled),
        settings,
        credentials,
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

#[derive(Deserialize)]
pub struct TestForm {
    csrf_token: String,
    /// The "record a real conversion" box (platforms without a test event code set).
    #[serde(default)]
    confirm: Option<String>,
}

pub async fn test(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(DomainId, String)>,
    form: web::Form<TestForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let (domain_id, raw) = path.into_inner();
    let p = platform(&raw)?;
    let confirm = form.confirm.is_some();
    let result = postback_api::v1::connections::run_test(
        &state,
        user.ctx.workspace_id,
        domain_id,
        p,
        confirm,
    )
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
                "{}: {} answered {} in {} ms{}",
                if result.validate_only {
                    "Test request validated (validateOnly, nothing recorded)"
                } else {
                    "Test event sent"
                },
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

#[derive(Deserialize)]
pub struct CountryForm {
    csrf_token: String,
    country: String,
}

/// Sets the domain's default country for phone numbers from the Connections tab.
pub async fn set_country(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<DomainId>,
    form: web::Form<CountryForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let domain_id = path.into_inner();
    let back = connections_path(domain_id);
    let country = match postback_domain::platforms::normalize::default_country(&form.country) {
        Ok(c) => c,
        Err(why) => {
            let why = why.replacen("defaultCountry", "Default country", 1);
            return Ok(redirect_with(&back, "error", &why, state.secure_cookies));
        }
    };
    let mut conn = state.conn().await?;
    let d =
        domains::set_default_country(&mut conn, user.ctx.workspace_id, domain_id, country).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.ctx,
        "domain.update",
        &d.hostname,
        json!({"defaultCountry": d.default_country}),
    )
    .await?;
    let message = match &d.default_country {
        Some(c) => format!(
            "Default country set to {c}: phone numbers without a country code get its calling code, {}.",
            postback_domain::platforms::normalize::calling_code(c).unwrap_or_default()
        ),
        None => "Default country cleared: phone numbers without a country code are left out of platform requests unless the event names its country.".to_owned(),
    };
    Ok(redirect_with(
        &back,
        "success",
        &message,
        state.secure_cookies,
    ))
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
