//! `/v1/events`: the workspace's stored inbound events, newest first.

use actix_web::{web, HttpResponse};
use postback_domain::events::{self, EventFilter};
use postback_domain::ids::{DomainId, EventId};
use postback_domain::paging::PageRequest;
use serde::Deserialize;

use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsQuery {
    domain_id: Option<String>,
    event: Option<String>,
    email: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(
    state: web::Data<AppState>,
    user: Authenticated,
    query: web::Query<EventsQuery>,
) -> ApiResult<HttpResponse> {
    let domain_id = match query.domain_id.as_deref() {
        Some(raw) => Some(
            raw.parse::<DomainId>()
                .map_err(|_| ApiError::bad_request("domainId must be a UUID"))?,
        ),
        None => None,
    };
    let page = PageRequest::parse(query.limit, query.cursor.as_deref())?;
    let mut conn = state.conn().await?;
    let filter = EventFilter {
        domain_id,
        event_name: query.event.clone().filter(|e| !e.is_empty()),
        email: query.email.clone().filter(|e| !e.is_empty()),
    };
    let events = events::list(&mut conn, user.0.workspace_id, &filter, page).await?;
    Ok(HttpResponse::Ok().json(events))
}

pub async fn get(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<EventId>,
) -> ApiResult<HttpResponse> {
    let ws = user.0.workspace_id;
    let mut conn = state.conn().await?;
    let event = events::get(&mut conn, ws, path.into_inner()).await?;
    let deliveries = postback_domain::deliveries::list_for_event(&mut conn, ws, event.id).await?;
    let attribution = postback_domain::attribution::for_event(&mut conn, ws, &event).await?;
    let mut body = serde_json::to_value(&event).map_err(|e| ApiError::Internal(e.to_string()))?;
    body["attribution"] = serde_json::to_value(attribution).unwrap_or_default();
    if let Some(n) = postback_domain::conditions::event_number(&event.event_name) {
        body["eventNumber"] = n.into();
    }
    body["deliveries"] = serde_json::to_value(deliveries).unwrap_or_default();
    Ok(HttpResponse::Ok().json(body))
}
