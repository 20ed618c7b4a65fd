//! The stored event: its documented fields (defined once, in [`fields`]), the row as stored, and
//! the queries that show events to their workspace. Storing events is [`crate::ingest`]'s job.

pub mod fields;
mod views;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::ids::{DomainId, EventId, KeyId, TouchId, WorkspaceId};
use crate::schema::events;

pub use fields::{EventFields, ParsedEvent, Product};
pub use views::{get, list, EventFilter};

/// An event as stored: who sent it and when, the fields, and what attribution found.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = events)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: EventId,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub domain_id: DomainId,
    #[serde(skip)]
    pub key_id: Option<KeyId>,
    #[serde(flatten)]
    #[diesel(embed)]
    pub fields: EventFields,
    /// The body's fields beyond the documented ones, as received.
    pub payload: serde_json::Value,
    pub received_at: DateTime<Utc>,
    #[serde(skip)]
    pub idempotency_key: Option<String>,
    #[serde(skip)]
    pub first_touch_id: Option<TouchId>,
    #[serde(skip)]
    pub last_touch_id: Option<TouchId>,
}
