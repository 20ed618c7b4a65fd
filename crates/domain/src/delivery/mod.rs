//! Getting events to receivers: webhook endpoints and their settings, routing rules, the queue's
//! claim and record, the bodies receivers get, and the views of deliveries.

pub mod notify;
pub mod queue;
pub mod webhooks;
