//! Getting events to receivers: webhook endpoints and their settings ([`webhooks`]), routing
//! ([`rules`]), the queue's claim and record ([`queue`]), what a receiver gets ([`payload`]), the
//! views of deliveries ([`views`]) and the owners' notifications about them ([`notify`]).

pub mod holds;
pub mod notify;
pub mod payload;
pub mod platform_status;
pub mod queue;
pub mod rules;
pub mod views;
pub mod webhooks;

pub use payload::*;
pub use queue::*;
pub use rules::*;
pub use views::*;
