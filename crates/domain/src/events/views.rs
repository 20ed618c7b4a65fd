//! The events list and one event, as the dashboard and the management API show them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::Event;
use crate::error::{DomainError, DomainResult};
use crate::ids::{DomainId, EventId, WorkspaceId};
use crate::schema::events;
use crate::store::paging::{Cursor, Page, PageRequest};

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub domain_id: Option<DomainId>,
    pub event_name: Option<String>,
    pub email: Option<String>,
    /// Only events that happened (`timestamp`) at or after this instant, and before `until`.
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    filter: &EventFilter,
    page: PageRequest,
) -> DomainResult<Page<Event>> {
    let mut q = crate::after_cursor!(
        events::table
            .filter(events::workspace_id.eq(workspace_id))
            .select(Event::as_select()),
        page,
        events::received_at,
        events::id
    );
    if let Some(d) = filter.domain_id {
        q = q.filter(events::domain_id.eq(d));
    }
    if let Some(n) = &filter.event_name {
        q = q.filter(events::event_name.eq(n.clone()));
    }
    if let Some(e) = &filter.email {
        q = q.filter(events::email.eq(e.trim().to_lowercase()));
    }
    if let Some(t) = filter.since {
        q = q.filter(events::occurred_at.ge(t));
    }
    if let Some(t) = filter.until {
        q = q.filter(events::occurred_at.lt(t));
    }
    let rows = q.load(conn).await?;
    Ok(Page::from_rows(rows, page.limit, |e: &Event| Cursor {
        at: e.received_at,
        id: e.id.0,
    }))
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: EventId,
) -> DomainResult<Event> {
    events::table
        .filter(events::workspace_id.eq(workspace_id))
        .filter(events::id.eq(id))
        .select(Event::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("event"))
}
