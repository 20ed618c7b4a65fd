//! Inbound events: parsing a submission, and the batch commit that checks keys and quota,
//! recognises duplicates, stores events and plans their deliveries in one transaction.

pub mod parse;
pub mod store;
