//! Stored inbound events. The full inbound contract builds on this table.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::error::{DomainError, DomainResult};
use crate::ids::{DomainId, EventId, KeyId, WorkspaceId};
use crate::paging::{Cursor, Page, PageRequest};
use crate::schema::events;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = events)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: EventId,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub domain_id: DomainId,
    #[serde(skip)]
    pub key_id: Option<KeyId>,
    #[serde(rename = "event")]
    pub event_name: String,
    pub email: String,
    pub payload: serde_json::Value,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub workspace_id: WorkspaceId,
    pub domain_id: DomainId,
    pub key_id: KeyId,
    pub event_name: String,
    pub email: String,
    pub payload: serde_json::Value,
    pub occurred_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: NewEvent) -> DomainResult<EventId> {
    let id = EventId::new();
    diesel::insert_into(events::table)
        .values((
            events::id.eq(id),
            events::workspace_id.eq(new.workspace_id),
            events::domain_id.eq(new.domain_id),
            events::key_id.eq(Some(new.key_id)),
            events::event_name.eq(new.event_name),
            events::email.eq(new.email),
            events::payload.eq(new.payload),
            events::occurred_at.eq(new.occurred_at),
        ))
        .execute(conn)
        .await?;
    Ok(id)
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: Option<DomainId>,
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
    if let Some(d) = domain_id {
        q = q.filter(events::domain_id.eq(d));
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

/// Events received this calendar month (UTC) by a workspace.
pub async fn count_this_month(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
) -> DomainResult<i64> {
    Ok(events::table
        .filter(events::workspace_id.eq(workspace_id))
        .filter(
            events::received_at.ge(diesel::dsl::sql::<diesel::sql_types::Timestamptz>(
                "date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
            )),
        )
        .count()
        .get_result(conn)
        .await?)
}
