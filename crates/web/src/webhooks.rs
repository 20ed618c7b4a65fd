//! The Webhooks pages (seeds 002 and 003): list, create and edit with triggers, a conditions
//! builder and URL tokens; test, reveal or rotate the secret, pause and resume, delete; the
//! delivery log with redelivery.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use postback_api::v1::webhooks::{run_test, TestResult};
use postback_domain::conditions::{self, Kind, Source, FIELDS, OPERATORS, TRIGGERS};
use postback_domain::delivery::webhooks::{self, Changes, Webhook, TOKENS};
use postback_domain::delivery::{self as deliveries, DeliveryView};
use postback_domain::ids::{DeliveryId, DomainId, WebhookId};
use postback_domain::states::{DeliveryStatus, WebhookStatus};
use postback_domain::store::paging::PageRequest;
use postback_domain::tenancy::domains;
use postback_domain::DomainError;
use postback_runtime::AppState;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::CsrfOnly;
use crate::confirm::ConfirmPage;
use crate::error::{WebError, WebResult};
use crate::format::Zone;
use crate::layout::{page, Chrome};
use crate::session::{redirect_with, verify_csrf, CurrentUser};

pub struct FieldOption {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: &'static str,
    pub touch: bool,
}

pub struct CondRow {
    pub field: String,
    pub op: String,
    pub value: String,
    pub first: bool,
    pub error: Option<String>,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Everything the create/edit form shows, with what the user typed and the errors next to it.
pub struct FormView {
    pub action: String,
    pub is_new: bool,
    pub url: String,
    pub name: String,
    pub domains: Vec<Choice>,
    pub triggers: Vec<Choice>,
    pub custom_events: String,
    pub conditions: Vec<CondRow>,
    pub active: bool,
    pub own_secret: String,
    pub errors: Errors,
}

#[derive(Default)]
pub struct Errors {
    pub url: Option<String>,
    pub name: Option<String>,
    pub events: Option<String>,
    pub secret: Option<String>,
    pub domain: Option<String>,
    pub status: Option<String>,
    pub general: Option<String>,
}

fn field_options() -> Vec<FieldOption> {
    FIELDS
        .iter()
        .map(|f| FieldOption {
            name: f.name,
            label: f.label,
            kind: match f.kind {
                Kind::Text => "text",
                Kind::Number => "number",
                Kind::Bool => "bool",
            },
            touch: f.source == Source::Touch,
        })
        .collect()
}

fn operator_options() -> Vec<(&'static str, &'static str)> {
    OPERATORS.iter().map(|(_, n, l)| (*n, *l)).collect()
}

async fn domain_choices(
    conn: &mut postback_domain::store::db::DbConn,
    user: &CurrentUser,
    selected: Option<DomainId>,
) -> WebResult<Vec<Choice>> {
    let listed = domains::list(conn, user.ctx.workspace_id, PageRequest::first(200)).await?;
    Ok(listed
        .items
        .into_iter()
        .map(|d| Choice {
            selected: Some(d.id) == selected,
            value: d.id.to_string(),
            label: d.hostname,
        })
        .collect())
}

fn split_events(events: &[String]) -> (Vec<Choice>, String) {
    let triggers = TRIGGERS
        .iter()
        .map(|(v, l)| Choice {
            value: (*v).into(),
            label: (*l).into(),
            selected: events.iter().any(|e| e == v),
        })
        .collect();
    let custom: Vec<&str> = events
        .iter()
        .filter(|e| !TRIGGERS.iter().any(|(v, _)| v == e))
        .map(String::as_str)
        .collect();
    (triggers, custom.join(", "))
}

fn cond_rows(conditions: &Value) -> Vec<CondRow> {
    serde_json::from_value::<Vec<conditions::Condition>>(conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| CondRow {
            value: match &c.value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            },
            op: c.op.name().into(),
            first: c.touch == Some(conditions::TouchChoice::First),
            field: c.field,
            error: None,
        })
        .collect()
}

async fn form_for(
    conn: &mut postback_domain::store::db::DbConn,
    user: &CurrentUser,
    hook: Option<&Webhook>,
) -> WebResult<FormView> {
    let (triggers, custom_events) = split_events(hook.map_or(&[][..], |h| &h.events));
    Ok(FormView {
        action: hook.map_or_else(|| "/webhooks".into(), |h| format!("/webhooks/{}", h.id)),
        is_new: hook.is_none(),
        url: hook.map(|h| h.url.clone()).unwrap_or_default(),
        name: hook.map(|h| h.name.clone()).unwrap_or_default(),
        domains: domain_choices(conn, user, hook.and_then(|h| h.domain_id)).await?,
        triggers,
        custom_events,
        conditions: hook.map(|h| cond_rows(&h.conditions)).unwrap_or_default(),
        active: hook.is_none_or(Webhook::is_active),
        own_secret: String::new(),
        errors: Errors::default(),
    })
}

/// The submitted form, read in order so the repeated condition inputs line up by row.
struct Submitted {
    csrf: String,
    url: String,
    name: String,
    domain: String,
    triggers: Vec<String>,
    custom_events: String,
    fields: Vec<String>,
    ops: Vec<String>,
    values: Vec<String>,
    touches: Vec<String>,
    active: bool,
    secret_mode: String,
    own_secret: String,
}

fn parse_form(body: &[u8]) -> Submitted {
    let mut s = Submitted {
        csrf: String::new(),
        url: String::new(),
        name: String::new(),
        domain: String::new(),
        triggers: Vec::new(),
        custom_events: String::new(),
        fields: Vec::new(),
        ops: Vec::new(),
        values: Vec::new(),
        touches: Vec::new(),
        active: false,
        secret_mode: String::new(),
        own_secret: String::new(),
    };
    for (k, v) in url::form_urlencoded::parse(body) {
        let v = v.into_owned();
        match k.as_ref() {
            "csrf_token" => s.csrf = v,
            "url" => s.url = v,
            "name" => s.name = v,
            "domain_id" => s.domain = v,
            "trigger" => s.triggers.push(v),
            "custom_events" => s.custom_events = v,
            "cond_field" => s.fields.push(v),
            "cond_op" => s.ops.push(v),
            "cond_value" => s.values.push(v),
            "cond_touch" => s.touches.push(v),
            "active" => s.active = true,
            "secret_mode" => s.secret_mode = v,
            "own_secret" => s.own_secret = v,
            _ => {}
        }
    }
    s
}

impl Submitted {
    /// The conditions as the API takes them; blank rows are dropped, and the 1st/Last choice
    /// only travels with fields that have it.
    fn conditions(&self) -> (Value, Vec<usize>) {
        let mut rows = Vec::new();
        let mut kept = Vec::new();
        for (i, field) in self.fields.iter().enumerate() {
            if field.trim().is_empty() {
                continue;
            }
            let mut row = json!({
                "field": field,
                "op": self.ops.get(i).cloned().unwrap_or_default(),
                "value": self.values.get(i).cloned().unwrap_or_default(),
            });
            if conditions::find_field(field).is_some_and(|f| f.source == Source::Touch) {
                row["touch"] = json!(self
                    .touches
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| "last".into()));
            }
            rows.push(row);
            kept.push(i);
        }
        (Value::Array(rows), kept)
    }

    fn events(&self) -> Value {
        let mut events: Vec<Value> = self.triggers.iter().map(|t| json!(t)).collect();
        events.extend(
            self.custom_events
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| json!(s)),
        );
        Value::Array(events)
    }

    fn changes(&self, is_new: bool) -> Result<Changes, String> {
        let domain_id = if self.domain.is_empty() {
            None
        } else {
            Some(
                self.domain
                    .parse::<DomainId>()
                    .map_err(|_| "domainId must be a domain of this workspace".to_owned())?,
            )
        };
        let secret = if self.secret_mode == "own" || (!is_new && !self.own_secret.trim().is_empty())
        {
            if self.own_secret.trim().is_empty() {
                return Err("secret: enter your secret, or let Postback generate one".into());
            }
            Some(Some(self.own_secret.clone()))
        } else if is_new {
            Some(None)
        } else {
            None
        };
        Ok(Changes {
            url: Some(self.url.clone()),
            secret,
            events: Some(self.events()),
            conditions: Some(self.conditions().0),
            domain_id: Some(domain_id),
            status: Some(if self.active { "active" } else { "paused" }.into()),
            name: Some(self.name.clone()),
            // Set in the page's Delivery section (see `flow`).
            rate_limit: None,
            max_in_flight: None,
            headers: None,
        })
    }

    /// The form again, as typed, with `message` placed next to the field it names.
    fn redisplay(&self, mut form: FormView, message: &str) -> FormView {
        let (triggers, _) = split_events(&self.triggers);
        form.url = self.url.clone();
        form.name = self.name.clone();
        form.triggers = triggers;
        form.custom_events = self.custom_events.clone();
        form.active = self.active;
        form.own_secret = self.own_secret.clone();
        for d in &mut form.domains {
            d.selected = d.value == self.domain;
        }
        let (_, kept) = self.conditions();
        form.conditions = kept
            .iter()
            .map(|&i| CondRow {
                field: self.fields[i].clone(),
                op: self.ops.get(i).cloned().unwrap_or_default(),
                value: self.values.get(i).cloned().unwrap_or_default(),
                first: self.touches.get(i).is_some_and(|t| t == "first"),
                error: None,
            })
            .collect();
        let e = &mut form.errors;
        if let Some(rest) = message.strip_prefix("conditions[") {
            let row = rest.split(']').next().and_then(|n| n.parse::<usize>().ok());
            match row.and_then(|r| form.conditions.get_mut(r)) {
                Some(c) => c.error = Some(message.to_owned()),
                None => e.general = Some(message.to_owned()),
            }
        } else if message.starts_with("url") {
            e.url = Some(message.to_owned());
        } else if message.starts_with("events") {
            e.events = Some(message.to_owned());
        } else if message.starts_with("secret") {
            e.secret = Some(message.to_owned());
        } else if message.starts_with("domainId") {
            e.domain = Some(message.to_owned());
        } else if message.starts_with("name") {
            e.name = Some(message.to_owned());
        } else if message.starts_with("status") {
            e.status = Some(message.to_owned());
        } else {
            e.general = Some(message.to_owned());
        }
        form
    }
}

pub struct HookRow {
    pub id: String,
    pub name: String,
    pub url: String,
    pub scope: String,
    pub trigger: String,
    pub conditions: usize,
    pub active: bool,
    pub paused_reason: Option<String>,
    /// "3 minutes ago · succeeded", or "never".
    pub last_delivery: String,
    /// Attempts that succeeded over the last 24 hours, "—" without any.
    pub success_24h: String,
}

fn trigger_text(events: &[String]) -> String {
    if events.is_empty() {
        return "All events".into();
    }
    events
        .iter()
        .map(|e| {
            TRIGGERS
                .iter()
                .find(|(v, _)| v == e)
                .map_or_else(|| e.clone(), |(_, l)| (*l).to_owned())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Template)]
#[template(path = "webhooks/list.html")]
struct ListPage {
    chrome: Chrome,
    hooks: Vec<HookRow>,
    usage: String,
    at_limit: bool,
}

/// A domain's Webhooks tab: the webhooks its events go to (its own and the all-domain ones).
#[derive(Template)]
#[template(path = "webhooks/domain.html")]
struct DomainTab {
    chrome: Chrome,
    domain_id: String,
    hostname: String,
    hooks: Vec<HookRow>,
    usage: String,
    at_limit: bool,
}

/// The workspace's webhooks as rows (only those that apply to `domain`, when given), with the
/// plan usage line and whether the limit is reached.
async fn rows(
    conn: &mut postback_domain::store::db::DbConn,
    user: &CurrentUser,
    domain: Option<DomainId>,
) -> WebResult<(Vec<HookRow>, String, bool)> {
    let ws = user.ctx.workspace_id;
    let hooks = webhooks::list(conn, ws, PageRequest::first(200)).await?;
    let hostnames: std::collections::HashMap<DomainId, String> =
        domains::list(conn, ws, PageRequest::first(200))
            .await?
            .items
            .into_iter()
            .map(|d| (d.id, d.hostname))
            .collect();
    let plan = postback_domain::tenancy::plans::get(conn, &user.ctx.plan).await?;
    let used = webhooks::count(conn, ws).await?;
    let limit = plan.max_webhooks.map(i64::from);
    let activity: std::collections::HashMap<uuid::Uuid, postback_domain::stats::WebhookActivity> =
        postback_domain::stats::webhook_activity(conn, ws, chrono::Utc::now())
            .await?
            .into_iter()
            .map(|a| (a.id, a))
            .collect();
    let rows = hooks
        .items
        .into_iter()
        .filter(|h| domain.is_none() || h.domain_id.is_none() || h.domain_id == domain)
        .map(|h| HookRow {
            id: h.id.to_string(),
            scope: h.domain_id.map_or_else(
                || "All domains".into(),
                |d| hostnames.get(&d).cloned().unwrap_or_default(),
            ),
            trigger: trigger_text(&h.events),
            conditions: h.rules().len(),
            active: h.is_active(),
            paused_reason: h.paused_reason.clone(),
            last_delivery: activity
                .get(&h.id.0)
                .and_then(|a| {
                    a.last_delivery_at.map(|t| {
                        format!(
                            "{} · {}",
                            Zone::of(user).relative(t),
                            a.last_delivery_status.as_deref().unwrap_or("")
                        )
                    })
                })
                .unwrap_or_else(|| "never".to_owned()),
            success_24h: activity
                .get(&h.id.0)
                .and_then(|a| a.success_rate())
                .map_or_else(|| "—".to_owned(), |r| format!("{r:.1}%")),
            name: h.name,
            url: h.url,
        })
        .collect();
    Ok((
        rows,
        format!(
            "{} webhooks used",
            postback_domain::tenancy::plans::usage_label(used, limit)
        ),
        limit.is_some_and(|l| used >= l),
    ))
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
) -> WebResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let (hooks, usage, at_limit) = rows(&mut conn, &user, None).await?;
    let chrome = Chrome::new(&req, &user, "webhooks");
    let had_flash = chrome.flash.is_some();
    page(
        &ListPage {
            chrome,
            hooks,
            usage,
            at_limit,
        },
        had_flash,
    )
}

pub async fn domain_tab(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<DomainId>,
) -> WebResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let domain = domains::get(&mut conn, user.ctx.workspace_id, path.into_inner()).await?;
    let (hooks, usage, at_limit) = rows(&mut conn, &user, Some(domain.id)).await?;
    let chrome = Chrome::new(&req, &user, "domains");
    let had_flash = chrome.flash.is_some();
    page(
        &DomainTab {
            chrome,
            domain_id: domain.id.to_string(),
            hostname: domain.hostname,
            hooks,
            usage,
            at_limit,
        },
        had_flash,
    )
}

#[derive(Template)]
#[template(path = "webhooks/new.html")]
struct NewPage {
    chrome: Chrome,
    form: FormView,
    fields: Vec<FieldOption>,
    operators: Vec<(&'static str, &'static str)>,
    tokens: &'static [(&'static str, &'static str)],
}

#[derive(Deserialize)]
pub struct NewQuery {
    /// Preselects this domain (from a domain's Webhooks tab).
    domain: Option<String>,
}

pub async fn new_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    query: web::Query<NewQuery>,
) -> WebResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let mut form = form_for(&mut conn, &user, None).await?;
    if let Some(d) = query.domain.as_deref().filter(|d| !d.is_empty()) {
        for choice in &mut form.domains {
            choice.selected = choice.value == d;
        }
    }
    let chrome = Chrome::new(&req, &user, "webhooks");
    let had_flash = chrome.flash.is_some();
    page(
        &NewPage {
            chrome,
            form,
            fields: field_options(),
            operators: operator_options(),
            tokens: TOKENS,
        },
        had_flash,
    )
}

fn unprocessable(template: &impl Template) -> WebResult<HttpResponse> {
    let mut resp = page(template, false)?;
    *resp.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(resp)
}

async fn target_check(state: &AppState, url: &str) -> Result<(), String> {
    webhooks::validate_url(url).map_err(|e| e.to_string())?;
    postback_runtime::delivery::ssrf::check_target(url.trim(), &state.delivery).await
}

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    body: web::Bytes,
) -> WebResult<HttpResponse> {
    let sub = parse_form(&body);
    verify_csrf(&req, &sub.csrf)?;
    let ws = user.ctx.workspace_id;
    let mut conn = state.conn().await?;
    let result = match sub.changes(true) {
        Err(m) => Err(m),
        Ok(changes) => match target_check(&state, &sub.url).await {
            Err(m) => Err(m),
            Ok(()) => match webhooks::create(&mut conn, ws, changes).await {
                Ok(view) => Ok(view),
                Err(DomainError::Invalid(m) | DomainError::LimitReached(m)) => Err(m),
                Err(e) => return Err(e.into()),
            },
        },
    };
    if let Ok(view) = &result {
        postback_domain::tenancy::audit::record(
            &mut conn,
            &user.ctx,
            "webhook.create",
            &view.url,
            json!({"id": view.id}),
        )
        .await?;
    }
    match result {
        Ok(view) => Ok(redirect_with(
            &format!("/webhooks/{}", view.id),
            "success",
            "Webhook created. Press Test to send a sample event.",
            state.secure_cookies,
        )),
        Err(m) => {
            let blank = form_for(&mut conn, &user, None).await?;
            let form = sub.redisplay(blank, &m);
            let chrome = Chrome::new(&req, &user, "webhooks");
            unprocessable(&NewPage {
                chrome,
                form,
                fields: field_options(),
                operators: operator_options(),
                tokens: TOKENS,
            })
        }
    }
}

pub struct AttemptRow {
    pub number: i32,
    pub at: String,
    pub status: String,
    pub duration: String,
    pub body: String,
    pub error: String,
}

pub struct DeliveryRow {
    pub id: String,
    /// "Webhook" or the platform's name, and where it links to.
    pub target: String,
    pub target_href: String,
    pub event_id: String,
    pub created: String,
    pub created_title: String,
    pub status: String,
    pub attempts: i32,
    pub last: String,
    pub can_redeliver: bool,
    pub log: Vec<AttemptRow>,
    /// What the platform reported after accepting the request (Google Data Manager), e.g.
    /// "Processed by Google: Google Data Manager: SUCCESS, 1 event ingested"; empty when none.
    pub platform_status: String,
}

pub fn delivery_row(d: DeliveryView, zone: Zone) -> DeliveryRow {
    DeliveryRow {
        id: d.id.to_string(),
        target: match d
            .platform
            .and_then(postback_domain::platforms::Platform::parse)
        {
            Some(p) => p.label().to_owned(),
            None => "Webhook".to_owned(),
        },
        target_href: match (d.webhook_id, d.connection_id) {
            (Some(hook), _) => format!("/webhooks/{hook}"),
            _ => format!("/events/{}", d.event_id),
        },
        event_id: d.event_id.to_string(),
        created: zone.relative(d.created_at),
        created_title: zone.absolute(d.created_at),
        can_redeliver: matches!(d.status, DeliveryStatus::Succeeded | DeliveryStatus::Failed),
        last: match (d.rate_limited_until, d.last_status_code, &d.last_error) {
            (Some(until), _, Some(e)) => {
                format!("rate-limited, next send at {} ({e})", zone.clock(until))
            }
            (_, _, Some(e)) => e.clone(),
            (_, Some(c), None) => c.to_string(),
            (_, None, None) => "—".into(),
        },
        platform_status: match &d.platform_status {
            None => String::new(),
            Some(p) => match (p.status.as_str(), &p.detail) {
                ("processing", _) => format!(
                    "Accepted by the platform, processing (request {}).",
                    p.request_id
                ),
                (status, Some(detail)) => {
                    format!("Processing {}: {detail}", status.replace('_', " "))
                }
                (status, None) => format!("Processing {}", status.replace('_', " ")),
            },
        },
        status: d.status.to_string(),
        attempts: d.attempts,
        log: d
            .attempt_log
            .into_iter()
            .map(|a| AttemptRow {
                number: a.attempt,
                at: zone.absolute(a.started_at),
                status: a.status_code.map_or_else(|| "—".into(), |c| c.to_string()),
                duration: format!("{} ms", a.duration_ms),
                body: a.response_body.unwrap_or_default(),
                error: a.error.unwrap_or_default(),
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "webhooks/show.html")]
struct ShowPage {
    chrome: Chrome,
    id: String,
    title: String,
    active: bool,
    paused_reason: Option<String>,
    failures: i32,
    form: FormView,
    fields: Vec<FieldOption>,
    operators: Vec<(&'static str, &'static str)>,
    tokens: &'static [(&'static str, &'static str)],
    secret: Option<String>,
    has_secret: bool,
    test: Option<TestResult>,
    deliveries: Vec<DeliveryRow>,
    next_cursor: Option<String>,
    flow: FlowView,
}

/// The page's Delivery section: the rotation's overlap, limits, headers, the breaker, the
/// backlog and the latest bulk recovery.
pub struct FlowView {
    /// Until when the previous secret still signs (in the workspace's zone).
    pub overlap_until: Option<String>,
    pub rate_limit: String,
    pub max_in_flight: String,
    /// `Name: value` lines, credentials masked.
    pub headers: String,
    pub backlog: i64,
    pub breaker_until: Option<String>,
    pub timeouts: i32,
    pub recovery: Option<RecoveryRow>,
    pub error: Option<String>,
}

pub struct RecoveryRow {
    pub since: String,
    pub queued: i32,
    pub succeeded: i64,
    pub waiting: i64,
    pub failed: i64,
}

fn header_lines(hook: &Webhook) -> String {
    postback_domain::delivery::webhooks::WebhookView::from(hook.clone())
        .headers
        .iter()
        .map(|h| format!("{}: {}", h.name, h.value))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn flow_view(
    conn: &mut postback_domain::store::db::DbConn,
    hook: &Webhook,
    error: Option<String>,
    zone: Zone,
) -> WebResult<FlowView> {
    let ws = hook.workspace_id;
    Ok(FlowView {
        overlap_until: hook.overlap_until().map(|t| zone.absolute(t)),
        rate_limit: hook.rate_limit.map(|n| n.to_string()).unwrap_or_default(),
        max_in_flight: hook
            .max_in_flight
            .map(|n| n.to_string())
            .unwrap_or_default(),
        headers: header_lines(hook),
        backlog: webhooks::backlog(conn, ws, hook.id).await?,
        breaker_until: hook.circuit_open_until.map(|t| zone.absolute(t)),
        timeouts: hook.consecutive_timeouts,
        recovery: webhooks::latest_recovery(conn, ws, hook.id)
            .await?
            .map(|r| RecoveryRow {
                since: zone.absolute(r.since),
                queued: r.queued,
                succeeded: r.succeeded,
                waiting: r.waiting,
                failed: r.failed,
            }),
        error,
    })
}

#[derive(serde::Deserialize)]
pub struct LogQuery {
    cursor: Option<String>,
}

struct Extras {
    secret: Option<String>,
    test: Option<TestResult>,
    form: Option<FormView>,
    cursor: Option<String>,
    /// A refusal from the Delivery section's forms.
    flow_error: Option<String>,
    /// What was typed in the Delivery form: rate limit, cap, headers.
    flow_typed: Option<(String, String, String)>,
}

async fn show_page(
    req: &HttpRequest,
    state: &AppState,
    user: &CurrentUser,
    id: WebhookId,
    extras: Extras,
) -> WebResult<ShowPage> {
    let ws = user.ctx.workspace_id;
    let mut conn = state.conn().await?;
    let hook = webhooks::get(&mut conn, ws, id).await?;
    let form = match extras.form {
        Some(f) => f,
        None => form_for(&mut conn, user, Some(&hook)).await?,
    };
    let page_req =
        PageRequest::parse(Some(50), extras.cursor.as_deref()).unwrap_or(PageRequest::first(50));
    let log = deliveries::list_for_webhook(&mut conn, ws, id, page_req).await?;
    let mut flow = flow_view(&mut conn, &hook, extras.flow_error, Zone::of(user)).await?;
    if let Some((rate, cap, headers)) = extras.flow_typed {
        flow.rate_limit = rate;
        flow.max_in_flight = cap;
        flow.headers = headers;
    }
    Ok(ShowPage {
        flow,
        chrome: Chrome::new(req, user, "webhooks"),
        id: hook.id.to_string(),
        title: if hook.name.is_empty() {
            hook.url.clone()
        } else {
            hook.name.clone()
        },
        active: hook.is_active(),
        paused_reason: hook.paused_reason.clone(),
        failures: hook.consecutive_failures,
        form,
        fields: field_options(),
        operators: operator_options(),
        tokens: TOKENS,
        secret: extras.secret,
        has_secret: hook.secret.is_some(),
        test: extras.test,
        deliveries: log
            .items
            .into_iter()
            .map(|d| delivery_row(d, Zone::of(user)))
            .collect(),
        next_cursor: log.next_cursor,
    })
}

/// The webhook's page with what an action produced (a test result, a revealed secret).
async fn render(
    req: &HttpRequest,
    state: &AppState,
    user: &CurrentUser,
    id: WebhookId,
    extras: Extras,
) -> WebResult<HttpResponse> {
    let tpl = show_page(req, state, user, id, extras).await?;
    page(&tpl, false)
}

fn no_extras() -> Extras {
    Extras {
        secret: None,
        test: None,
        form: None,
        cursor: None,
        flow_error: None,
        flow_typed: None,
    }
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<WebhookId>,
    query: web::Query<LogQuery>,
) -> WebResult<HttpResponse> {
    let extras = Extras {
        cursor: query.into_inner().cursor,
        ..no_extras()
    };
    let tpl = show_page(&req, &state, &user, path.into_inner(), extras).await?;
    let had_flash = tpl.chrome.flash.is_some();
    page(&tpl, had_flash)
}

pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<WebhookId>,
    body: web::Bytes,
) -> WebResult<HttpResponse> {
    let sub = parse_form(&body);
    verify_csrf(&req, &sub.csrf)?;
    let id = path.into_inner();
    let ws = user.ctx.workspace_id;
    let mut conn = state.conn().await?;
    let hook = webhooks::get(&mut conn, ws, id).await?;
    let result = match sub.changes(false) {
        Err(m) => Err(m),
        Ok(changes) => match target_check(&state, &sub.url).await {
            Err(m) => Err(m),
            Ok(()) => match webhooks::update(&mut conn, ws, id, changes).await {
                Ok(_) => Ok(()),
                Err(DomainError::Invalid(m)) => Err(m),
                Err(e) => return Err(e.into()),
            },
        },
    };
    if result.is_ok() {
        postback_domain::tenancy::audit::record(
            &mut conn,
            &user.ctx,
            "webhook.update",
            &hook.url,
            json!({"id": id}),
        )
        .await?;
    }
    match result {
        Ok(()) => Ok(redirect_with(
            &format!("/webhooks/{id}"),
            "success",
            "Webhook saved.",
            state.secure_cookies,
        )),
        Err(m) => {
            let base = form_for(&mut conn, &user, Some(&hook)).await?;
            drop(conn);
            let extras = Extras {
                form: Some(sub.redisplay(base, &m)),
                ..no_extras()
            };
            let tpl = show_page(&req, &state, &user, id, extras).await?;
            unprocessable(&tpl)
        }
    }
}

/// Test button: sends a sample now and shows what came back, on the webhook's page.
pub async fn test(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<WebhookId>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let id = path.into_inner();
    let hook = {
        let mut conn = state.conn().await?;
        webhooks::get(&mut conn, user.ctx.workspace_id, id).await?
    };
    let result = run_test(&state, &hook).await;
    let extras = Extras {
        test: Some(result),
        ..no_extras()
    };
    render(&req, &state, &user, id, extras).await
}

pub async fn reveal(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<WebhookId>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let id = path.into_inner();
    let secret = {
        let mut conn = state.conn().await?;
        let secret = webhooks::secret(&mut conn, user.ctx.workspace_id, id).await?;
        postback_domain::tenancy::audit::record(
            &mut conn,
            &user.ctx,
            "webhook.secret.reveal",
            &format!("webhook {id}"),
            Value::Null,
        )
        .await?;
        secret
    };
    let extras = Extras {
        secret,
        ..no_extras()
    };
    render(&req, &state, &user, id, extras).await
}

#[derive(serde::Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    csrf_token: String,
    /// Seconds the previous secret keeps signing; blank: 24 h.
    #[serde(default)]
    overlap: String,
}

/// Rotate: a new secret, shown once; the previous one keeps signing for the chosen overlap.
pub async fn rotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<WebhookId>,
    form: web::Form<RotateForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let id = path.into_inner();
    let overlap = match form.overlap.trim() {
        "" => webhooks::DEFAULT_OVERLAP_SECS,
        v => v.parse::<i64>().unwrap_or(-1),
    };
    let mut conn = state.conn().await?;
    let view = match webhooks::rotate(&mut conn, user.ctx.workspace_id, id, None, overlap).await {
        Ok(v) => v,
        Err(DomainError::Invalid(m)) => {
            drop(conn);
            let extras = Extras {
                flow_error: Some(m),
                ..no_extras()
            };
            let tpl = show_page(&req, &state, &user, id, extras).await?;
            return unprocessable(&tpl);
        }
        Err(e) => return Err(e.into()),
    };
    webhooks::audit(
        &mut conn,
        &user.ctx,
        "webhook.secret_rotated",
        id,
        json!({ "overlapSeconds": overlap }),
    )
    .await?;
    drop(conn);
    let extras = Extras {
        secret: view.secret,
        ..no_extras()
    };
    render(&req, &state, &user, id, extras).await
}

/// End overlap now: only the current secret signs from the next attempt.
pub async fn end_overlap(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<WebhookId>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let id = path.into_inner();
    let mut conn = state.conn().await?;
    webhooks::end_overlap(&mut conn, user.ctx.workspace_id, id).await?;
    webhooks::audit(
        &mut conn,
        &user.ctx,
        "webhook.secret_overlap_ended",
        id,
        json!({}),
    )
    .await?;
    Ok(redirect_with(
        &format!("/webhooks/{id}"),
        "success",
        "Overlap ended: only the current secret signs deliveries now.",
        state.secure_cookies,
    ))
}

#[derive(serde::Deserialize)]
pub struct DeliveryForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    rate_limit: String,
    #[serde(default)]
    max_in_flight: String,
    #[serde(default)]
    headers: String,
}

/// Re-renders the page with a refusal next to the Delivery section's forms.
async fn flow_refused(
    req: &HttpRequest,
    state: &AppState,
    user: &CurrentUser,
    id: WebhookId,
    message: String,
    typed: Option<&DeliveryForm>,
) -> WebResult<HttpResponse> {
    let extras = Extras {
        flow_error: Some(message),
        flow_typed: typed.map(|f| {
            (
                f.rate_limit.clone(),
                f.max_in_flight.clone(),
                f.headers.clone(),
            )
        }),
        ..no_extras()
    };
    let tpl = show_page(req, state, user, id, extras).await?;
    unprocessable(&tpl)
}

fn optional_number(field: &str, raw: &str) -> Result<Option<Option<i32>>, String> {
    match raw.trim() {
        "" => Ok(Some(None)),
        v => v
            .parse::<i32>()
            .map(|n| Some(Some(n)))
            .map_err(|_| format!("{field} must be a whole number, or empty")),
    }
}

/// The Delivery section's save: rate limit, concurrency cap, custom headers (`Name: value`
/// lines; a value left masked as shown stays).
pub async fn save_delivery(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<WebhookId>,
    form: web::Form<DeliveryForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let id = path.into_inner();
    let parsed = (|| {
        let rate_limit = optional_number("rateLimit", &form.rate_limit)?;
        let max_in_flight = optional_number("maxInFlight", &form.max_in_flight)?;
        let mut headers = Vec::new();
        for line in form
            .headers
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("headers: \"{line}\" is not \"Name: value\""))?;
            headers.push(webhooks::Header {
                name: name.trim().to_owned(),
                value: value.trim().to_owned(),
            });
        }
        Ok::<_, String>(Changes {
            rate_limit,
            max_in_flight,
            headers: Some(headers),
            ..Changes::default()
        })
    })();
    let changes = match parsed {
        Ok(c) => c,
        Err(m) => return flow_refused(&req, &state, &user, id, m, Some(&form)).await,
    };
    let mut conn = state.conn().await?;
    match webhooks::update(&mut conn, user.ctx.workspace_id, id, changes).await {
        Ok(view) => {
            // Header names only: values may be credentials.
            let names: Vec<&str> = view.headers.iter().map(|h| h.name.as_str()).collect();
            webhooks::audit(
                &mut conn,
                &user.ctx,
                "webhook.delivery_settings_changed",
                id,
                json!({ "rateLimit": view.rate_limit, "maxInFlight": view.max_in_flight, "headers": names }),
            )
            .await?;
            Ok(redirect_with(
                &format!("/webhooks/{id}"),
                "success",
                "Delivery settings saved.",
                state.secure_cookies,
            ))
        }
        Err(DomainError::Invalid(m)) => {
            drop(conn);
            flow_refused(&req, &state, &user, id, m, Some(&form)).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Deserialize)]
pub struct RecoverForm {
    #[serde(default)]
    csrf_token: String,
    /// `datetime-local` (UTC).
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

/// A `datetime-local` value read as UTC.
fn local_utc(field: &str, raw: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let raw = raw.trim();
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(raw, f).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{field}: enter a date and time (UTC)"))
}

/// "Resend failed since …": a new round for every failed delivery in the window.
pub async fn recover(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<WebhookId>,
    form: web::Form<RecoverForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let id = path.into_inner();
    let window = (|| {
        let since = local_utc("since", &form.since)?;
        let until = match form.until.trim() {
            "" => None,
            u => Some(local_utc("until", u)?),
        };
        Ok::<_, String>((since, until))
    })();
    let (since, until) = match window {
        Ok(w) => w,
        Err(m) => return flow_refused(&req, &state, &user, id, m, None).await,
    };
    let mut conn = state.conn().await?;
    let recovery = match webhooks::recover(&mut conn, user.ctx.workspace_id, id, since, until).await
    {
        Ok(r) => r,
        Err(DomainError::Invalid(m)) => {
            drop(conn);
            return flow_refused(&req, &state, &user, id, m, None).await;
        }
        Err(e) => return Err(e.into()),
    };
    webhooks::audit(
        &mut conn,
        &user.ctx,
        "webhook.recovered",
        id,
        json!({ "since": since, "until": until, "queued": recovery.queued }),
    )
    .await?;
    Ok(redirect_with(
        &format!("/webhooks/{id}"),
        "success",
        &format!(
            "{} failed deliveries queued again; progress below.",
            recovery.queued
        ),
        state.secure_cookies,
    ))
}

#[derive(serde::Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    status: String,
}

/// Pause or Resume; resuming resets the failure counter and sends what was held.
pub async fn set_status(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<WebhookId>,
    form: web::Form<StatusForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let id = path.into_inner();
    let mut conn = state.conn().await?;
    let changes = Changes {
        status: Some(form.status.clone()),
        ..Changes::default()
    };
    let view = webhooks::update(&mut conn, user.ctx.workspace_id, id, changes).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.ctx,
        "webhook.status",
        &view.url,
        json!({"status": view.status}),
    )
    .await?;
    let message = if view.status == WebhookStatus::Active {
        "Webhook resumed: held deliveries are being sent."
    } else {
        "Webhook paused: new deliveries are held until you resume it."
    };
    Ok(redirect_with(
        &format!("/webhooks/{id}"),
        "success",
        message,
        state.secure_cookies,
    ))
}

pub async fn confirm_delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<WebhookId>,
) -> WebResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let hook = webhooks::get(&mut conn, user.ctx.workspace_id, path.into_inner()).await?;
    let tpl = ConfirmPage {
        chrome: Chrome::new(&req, &user, "webhooks"),
        title: "Delete this webhook?".into(),
        message: format!(
            "Nothing more will be sent to {}, and its delivery log is deleted with it. This cannot be undone.",
            hook.url
        ),
        action: format!("/webhooks/{}/delete", hook.id),
        button: "Delete webhook".into(),
        cancel: format!("/webhooks/{}", hook.id),
        danger: true,
    };
    page(&tpl, false)
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<WebhookId>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let id = path.into_inner();
    webhooks::delete(&mut conn, user.ctx.workspace_id, id).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.ctx,
        "webhook.delete",
        &format!("webhook {id}"),
        Value::Null,
    )
    .await?;
    Ok(redirect_with(
        "/webhooks",
        "success",
        "Webhook deleted.",
        state.secure_cookies,
    ))
}

pub async fn redeliver(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<DeliveryId>,
    form: web::Form<CsrfOnly>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let ws = user.ctx.workspace_id;
    let mut conn = state.conn().await?;
    let id = path.into_inner();
    let current = deliveries::get(&mut conn, ws, id).await?;
    let back = match current.webhook_id {
        Some(hook) => format!("/webhooks/{hook}"),
        None => format!("/events/{}", current.event_id),
    };
    let queued = deliveries::redeliver(&mut conn, ws, id).await;
    if let Ok(d) = &queued {
        postback_domain::tenancy::audit::record(
            &mut conn,
            &user.ctx,
            "delivery.redeliver",
            &d.url,
            json!({"id": d.id}),
        )
        .await?;
    }
    match queued {
        Ok(d) if d.status == DeliveryStatus::Held => Ok(redirect_with(
            &back,
            "success",
            "Queued again, and held: the webhook is paused. Resume it to send.",
            state.secure_cookies,
        )),
        Ok(_) => Ok(redirect_with(
            &back,
            "success",
            "Queued for redelivery.",
            state.secure_cookies,
        )),
        Err(DomainError::Conflict(m)) => {
            Ok(redirect_with(&back, "error", &m, state.secure_cookies))
        }
        Err(e) => Err(WebError::from(e)),
    }
}
