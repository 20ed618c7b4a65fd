//! `/v1/events`: the workspace's stored inbound events, newest first.

use actix_web::{web, HttpResponse};
use postback_domain::delivery::DeliveryView;
use postback_domain::events::{self, Event};
use postback_domain::ids::{DomainId, EventId};
use postback_domain::store::paging::{Page, PageRequest};
use postback_domain::tracking::attribution::EventAttribution;
use serde::{Deserialize, Serialize};

use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use postback_runtime::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only this domain's events.
    #[param(value_type = Option<uuid::Uuid>)]
    domain_id: Option<String>,
    /// Only events with this name, e.g. `purchase`.
    event: Option<String>,
    /// Only this customer's events.
    email: Option<String>,
    /// First day (`YYYY-MM-DD`, workspace time zone) of the events' `timestamp`.
    #[param(value_type = Option<String>, format = Date)]
    from: Option<String>,
    /// Last day (inclusive).
    #[param(value_type = Option<String>, format = Date)]
    to: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// An event with what happened to it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    #[serde(flatten)]
    event: Event,
    attribution: EventAttribution,
    /// 1 to 10 for `event1` … `event10`.
    #[serde(skip_serializing_if = "Option::is_none")]
    event_number: Option<i64>,
    /// Every delivery of the event, to webhooks and ad platforms, with its attempts.
    deliveries: Vec<DeliveryView>,
}

#[utoipa::path(operation_id = "eventsList", get, path = "/v1/events", tag = "events", params(EventsQuery), responses((status = 200, description = "Events, newest first", body = Page<Event>)))]
pub async fn list(
    state: web::Data<AppState>,
    user: Authenticated,
    query: web::Query<EventsQuery>,
) -> ApiResult<HttpResponse> {
    if let Some(raw) = query.domain_id.as_deref() {
        raw.parse::<DomainId>()
            .map_err(|_| ApiError::bad_request("domainId must be a UUID"))?;
    }
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let mut conn = state.conn().await?;
    // The same filter as the CSV export (`/v1/events/export`).
    let filter = postback_domain::export::filter(
        &mut conn,
        user.0.workspace_id,
        &postback_domain::export::RawFilter {
            domain_id: query.domain_id.as_deref(),
            from: crate::v1::export::given("from", &query.from)?,
            to: crate::v1::export::given("to", &query.to)?,
            event: query.event.as_deref(),
            email: query.email.as_deref(),
        },
    )
    .await?;
    let events = events::list(&mut conn, user.0.workspace_id, &filter, page).await?;
    Ok(HttpResponse::Ok().json(events))
}

#[utoipa::path(operation_id = "eventsGet", get, path = "/v1/events/{id}", tag = "events", params(("id" = uuid::Uuid, Path, description = "Event id")), responses((status = 200, description = "The event with its attribution and deliveries", body = EventDetail)))]
pub async fn get(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<EventId>,
) -> ApiResult<HttpResponse> {
    let ws = user.0.workspace_id;
    let mut conn = state.conn().await?;
    let event = events::get(&mut conn, ws, path.into_inner()).await?;
    let deliveries = postback_domain::delivery::list_for_event(&mut conn, ws, event.id).await?;
    let attribution =
        postback_domain::tracking::attribution::for_event(&mut conn, ws, &event).await?;
    let event_number = postback_domain::conditions::event_number(&event.fields.event_name);
    Ok(HttpResponse::Ok().json(EventDetail {
        event,
        attribution,
        event_number,
        deliveries,
    }))
}
