//! What a webhook receiver gets: the body of every delivery of an event (seed 003's shape),
//! built from the stored event so every attempt sends the same bytes, and the Test button's sample.

use chrono::Utc;
use serde::Serialize;

use crate::conditions::{self};
use crate::events::fields::rfc3339;
use crate::events::{Event, EventFields};
use crate::ids::{EventId, WorkspaceId};
use crate::tracking::touches::Touch;

/// The body every delivery of an event carries (seed 003's shape). Built from the stored event,
/// so every attempt sends the same bytes.
#[derive(Debug, Serialize)]
pub struct Body<'a> {
    pub id: EventId,
    pub event: &'a str,
    pub workspace_id: WorkspaceId,
    pub timestamp: String,
    pub data: BodyData<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BodyData<'a> {
    pub event_id: EventId,
    /// 1–10 for seed 002's custom events `event1` … `event10`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_number: Option<i64>,
    /// Every documented field (`event`, `email`, `value`, … `timestamp`, `products`).
    #[serde(flatten)]
    pub fields: &'a EventFields,
    pub domain_id: crate::ids::DomainId,
    pub received_at: String,
    /// Fields the sender added beyond the documented ones, as received.
    pub custom: &'a serde_json::Value,
    /// First and last touch once attribution finds the visitor; null without a match.
    pub attribution: Option<serde_json::Value>,
}

/// `data.attribution` of a delivery: the event's first and last touch, or null without a match.
fn attribution_json(first: Option<&Touch>, last: Option<&Touch>) -> Option<serde_json::Value> {
    if first.is_none() && last.is_none() {
        return None;
    }
    Some(serde_json::json!({ "firstTouch": first, "lastTouch": last }))
}

pub fn body(event: &Event, first: Option<&Touch>, last: Option<&Touch>) -> Vec<u8> {
    let b = Body {
        id: event.id,
        event: &event.fields.event_name,
        workspace_id: event.workspace_id,
        timestamp: rfc3339(&event.fields.occurred_at),
        data: BodyData {
            event_id: event.id,
            event_number: conditions::event_number(&event.fields.event_name),
            fields: &event.fields,
            domain_id: event.domain_id,
            received_at: rfc3339(&event.received_at),
            custom: &event.payload,
            attribution: attribution_json(first, last),
        },
    };
    serde_json::to_vec(&b).unwrap_or_default()
}

/// The body the Test button sends: a sample purchase, shaped like a real delivery.
pub fn sample_body(workspace_id: WorkspaceId, domain_id: Option<crate::ids::DomainId>) -> Vec<u8> {
    let now = Utc::now();
    let event = Event {
        id: EventId(uuid::Uuid::nil()),
        workspace_id,
        domain_id: domain_id.unwrap_or(crate::ids::DomainId(uuid::Uuid::nil())),
        key_id: None,
        fields: EventFields {
            event_name: "purchase".into(),
            email: "test.customer@example.com".into(),
            email_sha256: Vec::new(),
            value: Some(99.99),
            currency: "USD".into(),
            order_id: Some("TEST-ORDER-1001".into()),
            first_name: Some("Test".into()),
            last_name: Some("Customer".into()),
            phone: None,
            occurred_at: now,
            ip: None,
            city: None,
            country: None,
            country_code: None,
            state: None,
            state_code: None,
            guid: None,
            product_name: Some("Sample product".into()),
            product_link: None,
            product_image: None,
            products: serde_json::json!([]),
        },
        payload: serde_json::json!({ "test": true }),
        received_at: now,
        idempotency_key: None,
        first_touch_id: None,
        last_touch_id: None,
    };
    body(&event, None, None)
}
