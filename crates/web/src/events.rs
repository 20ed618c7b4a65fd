//! The Events tab of a domain (newest first, filter by event and email) and an event's page.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use postback_domain::events::{self, Event};
use postback_domain::ids::{DomainId, EventId};
use postback_domain::ingest::parse::Product;
use postback_domain::store::paging::PageRequest;
use postback_domain::tenancy::domains;
use postback_domain::tracking::attribution::{self, human_duration};
use postback_domain::tracking::touches::Touch;
use postback_runtime::AppState;
use serde::Deserialize;

use crate::error::WebResult;
use crate::format::Zone;
use crate::layout::{page, Chrome};
use crate::session::CurrentUser;

pub struct EventRow {
    pub id: String,
    pub received: String,
    pub received_title: String,
    pub event: String,
    pub email: String,
    pub value: String,
    pub order_id: String,
    /// The last touch's source / medium (issue 22).
    pub source: String,
    /// "all sent", "1 failed", "2 waiting", "none".
    pub deliveries: String,
    pub deliveries_bad: bool,
}

fn trim_number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

impl EventRow {
    pub fn new(e: Event, zone: Zone) -> Self {
        Self {
            id: e.id.to_string(),
            received: zone.relative(e.received_at),
            received_title: zone.absolute(e.received_at),
            value: crate::money::maybe_money(e.fields.value, &e.fields.currency),
            order_id: e.fields.order_id.unwrap_or_else(|| "—".into()),
            source: String::new(),
            deliveries: String::new(),
            deliveries_bad: false,
            event: e.fields.event_name,
            email: e.fields.email,
        }
    }
}

#[derive(Template)]
#[template(path = "events/list.html")]
struct EventsPage {
    chrome: Chrome,
    domain_id: String,
    hostname: String,
    events: Vec<EventRow>,
    filter_event: String,
    filter_email: String,
    filter_from: String,
    filter_to: String,
    filter_error: Option<String>,
    time_zone: String,
    export_link: String,
    filtered: bool,
    next_link: Option<String>,
}

#[derive(Deserialize)]
pub struct EventsQuery {
    event: Option<String>,
    email: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<DomainId>,
    query: web::Query<EventsQuery>,
) -> WebResult<HttpResponse> {
    let ws = user.ctx.workspace_id;
    let mut conn = state.conn().await?;
    let domain = domains::get(&mut conn, ws, path.into_inner()).await?;
    let filter_event = query.event.clone().unwrap_or_default().trim().to_owned();
    let filter_email = query.email.clone().unwrap_or_default().trim().to_owned();
    let mut filter_from = query.from.clone().unwrap_or_default().trim().to_owned();
    let mut filter_to = query.to.clone().unwrap_or_default().trim().to_owned();
    let domain_param = domain.id.to_string();
    // The same filter as the CSV export (`/v1/events/export`), so the download is this list.
    let mut raw = postback_domain::export::RawFilter {
        domain_id: Some(&domain_param),
        from: Some(&filter_from),
        to: Some(&filter_to),
        event: Some(&filter_event),
        email: Some(&filter_email),
    };
    let first = postback_domain::export::filter(&mut conn, ws, &raw).await;
    raw.from = None;
    raw.to = None;
    let (filter, filter_error) = match first {
        Ok(f) => (f, None),
        Err(postback_domain::DomainError::Invalid(m)) => (
            postback_domain::export::filter(&mut conn, ws, &raw).await?,
            Some(m),
        ),
        Err(e) => return Err(e.into()),
    };
    if filter_error.is_some() {
        filter_from.clear();
        filter_to.clear();
    }
    let page_req =
        PageRequest::parse(Some(50), query.cursor.as_deref()).unwrap_or(PageRequest::first(50));
    let listed = events::list(&mut conn, ws, &filter, page_req).await?;
    let extras = postback_domain::export::extras(&mut conn, ws, &listed.items).await?;
    let time_zone = postback_domain::stats::time_zone(&mut conn, ws).await?;
    let zone = Zone::new(&time_zone);
    let pairs = |extra: Option<(&str, &str)>| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("event", filter_event.as_str()),
            ("email", filter_email.as_str()),
            ("from", filter_from.as_str()),
            ("to", filter_to.as_str()),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if let Some((k, v)) = extra {
            q.append_pair(k, v);
        }
        q.finish()
    };
    let next_link = listed.next_cursor.as_deref().map(|c| {
        format!(
            "/domains/{}/events?{}",
            domain.id,
            pairs(Some(("cursor", c)))
        )
    });
    let export_link = format!(
        "/v1/events/export?{}",
        pairs(Some(("domainId", &domain_param)))
    );
    let rows = listed
        .items
        .into_iter()
        .map(|e| {
            let x = extras.get(&e.id).cloned().unwrap_or_default();
            let has_touch = e.last_touch_id.is_some();
            let mut row = EventRow::new(e, zone);
            row.source = x.source_label(has_touch);
            row.deliveries = x.delivery_status();
            row.deliveries_bad = x.failed > 0;
            row
        })
        .collect();
    let chrome = Chrome::new(&req, &user, "domains");
    let had_flash = chrome.flash.is_some();
    let tpl = EventsPage {
        chrome,
        domain_id: domain.id.to_string(),
        hostname: domain.hostname,
        events: rows,
        filtered: filter.event_name.is_some()
            || filter.email.is_some()
            || filter.since.is_some()
            || filter.until.is_some(),
        filter_event,
        filter_email,
        filter_from,
        filter_to,
        filter_error,
        time_zone,
        export_link,
        next_link,
    };
    page(&tpl, had_flash)
}

pub struct ProductRow {
    pub name: String,
    pub id: String,
    pub price: String,
    pub quantity: String,
    pub link: String,
}

#[derive(Template)]
#[template(path = "events/show.html")]
struct EventPage {
    chrome: Chrome,
    domain_id: String,
    hostname: String,
    event_name: String,
    received: String,
    fields: Vec<(&'static str, String)>,
    products: Vec<ProductRow>,
    has_other: bool,
    payload: String,
    deliveries: Vec<crate::webhooks::DeliveryRow>,
    /// First and last touch, side by side (none without a match).
    touches: Vec<TouchCard>,
    purged: bool,
    window_days: i32,
}

/// One touch, as the event page shows it next to the other.
pub struct TouchCard {
    pub which: &'static str,
    pub title: String,
    pub at: String,
    pub before: String,
    pub fields: Vec<(&'static str, String)>,
}

fn touch_card(
    which: &'static str,
    title: &str,
    t: &Touch,
    seconds: Option<i64>,
    link_names: &std::collections::HashMap<postback_domain::ids::LinkId, String>,
    zone: Zone,
) -> TouchCard {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let platforms = t.platforms();
    TouchCard {
        which,
        title: title.to_owned(),
        at: zone.absolute(t.occurred_at),
        before: human_duration(seconds.unwrap_or(0)),
        fields: vec![
            ("Source", opt(&t.utm_source)),
            ("Medium", opt(&t.utm_medium)),
            ("Campaign", opt(&t.utm_campaign)),
            ("Content", opt(&t.utm_content)),
            ("Term", opt(&t.utm_term)),
            (
                "Ad click from",
                if platforms.is_empty() {
                    "—".into()
                } else {
                    platforms.join(", ")
                },
            ),
            ("gclid", opt(&t.gclid)),
            ("gbraid", opt(&t.gbraid)),
            ("wbraid", opt(&t.wbraid)),
            ("fbclid", opt(&t.fbclid)),
            ("ttclid", opt(&t.ttclid)),
            ("msclkid", opt(&t.msclkid)),
            ("Landing page", opt(&t.landing_page)),
            ("Referrer", opt(&t.referrer)),
            ("Device", t.device_type.clone()),
            ("Country", opt(&t.country)),
            (
                "Tracking link",
                match t.link_id {
                    Some(id) => link_names
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| "a deleted link".into()),
                    None => "—".into(),
                },
            ),
            (
                "linkId",
                t.link_id.map_or_else(|| "—".into(), |id| id.to_string()),
            ),
            (
                "targetId",
                t.target_id.map_or_else(|| "—".into(), |id| id.to_string()),
            ),
            (
                "Quality",
                if t.quality_reasons.is_empty() {
                    t.quality_score.to_string()
                } else {
                    format!("{} ({})", t.quality_score, t.quality_reasons.join("; "))
                },
            ),
        ],
    }
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<EventId>,
) -> WebResult<HttpResponse> {
    let ws = user.ctx.workspace_id;
    let mut conn = state.conn().await?;
    let e = events::get(&mut conn, ws, path.into_inner()).await?;
    let zone = Zone::of(&user);
    let domain = domains::get(&mut conn, ws, e.domain_id).await?;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    let fields = vec![
        ("Event ID", e.id.to_string()),
        (
            "Event",
            match postback_domain::conditions::event_number(&e.fields.event_name) {
                Some(n) => format!("{} (custom event {n})", e.fields.event_name),
                None => e.fields.event_name.clone(),
            },
        ),
        ("Email", e.fields.email.clone()),
        (
            "Value",
            crate::money::maybe_money(e.fields.value, &e.fields.currency),
        ),
        ("Order ID", opt(&e.fields.order_id)),
        ("Occurred", zone.absolute(e.fields.occurred_at)),
        ("Received", zone.absolute(e.received_at)),
        ("First name", opt(&e.fields.first_name)),
        ("Last name", opt(&e.fields.last_name)),
        ("Phone", opt(&e.fields.phone)),
        ("IP", opt(&e.fields.ip)),
        ("City", opt(&e.fields.city)),
        (
            "Country",
            match (&e.fields.country, &e.fields.country_code) {
                (Some(n), Some(c)) => format!("{n} ({c})"),
                (n, c) => n
                    .clone()
                    .or_else(|| c.clone())
                    .unwrap_or_else(|| "—".into()),
            },
        ),
        (
            "State",
            match (&e.fields.state, &e.fields.state_code) {
                (Some(n), Some(c)) => format!("{n} ({c})"),
                (n, c) => n
                    .clone()
                    .or_else(|| c.clone())
                    .unwrap_or_else(|| "—".into()),
            },
        ),
        ("GUID", opt(&e.fields.guid)),
        ("Product", opt(&e.fields.product_name)),
        ("Product link", opt(&e.fields.product_link)),
        ("Product image", opt(&e.fields.product_image)),
    ];
    let products: Vec<Product> = e.fields.products();
    let chrome = Chrome::new(&req, &user, "domains");
    let had_flash = chrome.flash.is_some();
    let deliveries = postback_domain::delivery::list_for_event(&mut conn, ws, e.id)
        .await?
        .into_iter()
        .map(|d| crate::webhooks::delivery_row(d, zone))
        .collect();
    let found = attribution::for_event(&mut conn, ws, &e).await?;
    let link_ids: Vec<_> = [&found.first_touch, &found.last_touch]
        .into_iter()
        .flatten()
        .filter_map(|t| t.link_id)
        .collect();
    let link_names = postback_domain::tracking::links::names(&mut conn, ws, &link_ids).await?;
    let tpl = EventPage {
        deliveries,
        touches: [
            found.first_touch.as_ref().map(|t| {
                touch_card(
                    "first",
                    "First touch",
                    t,
                    found.seconds_from_first_touch,
                    &link_names,
                    zone,
                )
            }),
            found.last_touch.as_ref().map(|t| {
                touch_card(
                    "last",
                    "Last touch",
                    t,
                    found.seconds_from_last_touch,
                    &link_names,
                    zone,
                )
            }),
        ]
        .into_iter()
        .flatten()
        .collect(),
        purged: found.purged,
        window_days: domain.attribution_window_days,
        chrome,
        domain_id: domain.id.to_string(),
        hostname: domain.hostname,
        received: zone.relative(e.received_at),
        event_name: e.fields.event_name.clone(),
        fields,
        products: products
            .into_iter()
            .map(|p| ProductRow {
                price: crate::money::maybe_money(p.price, &e.fields.currency),
                quantity: trim_number(p.quantity),
                id: p.id.unwrap_or_else(|| "—".into()),
                name: p.name,
                link: p.link,
            })
            .collect(),
        has_other: e.payload.as_object().is_some_and(|o| !o.is_empty()),
        payload: serde_json::to_string_pretty(&e.payload).unwrap_or_default(),
    };
    page(&tpl, had_flash)
}
