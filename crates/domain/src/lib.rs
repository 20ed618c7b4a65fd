//! Postback's domain: the schema, its models, and repositories that every query scopes by
//! workspace. Pure logic and SQL; nothing here knows about HTTP.
//!
//! The capability folders, lowest first; a folder may use the ones above it in this list and
//! never one below it (`tests/e2e/architecture.rs` checks this):
//! - root leaves: [`error`], [`ids`], [`states`], [`schema`], [`text`], [`conditions`]
//! - [`store`]: connections to PostgreSQL, paging, shared counters, retention's deletes
//! - [`secrets`]: random tokens, hashes, sealing at rest
//! - [`mail`]: the durable outbox and the messages
//! - [`tenancy`]: accounts, sessions, tokens, teams, keys, domains, plans, audit
//! - [`events`]: the stored event and the queries that show it
//! - [`tracking`]: touches, visitors, tracking links, clicks, attribution
//! - [`platforms`]: ad-platform adapters and their connections
//! - [`delivery`]: webhooks, routing, the queue's claim and record, what a receiver gets
//! - [`ingest`]: inbound parsing and the batch commit that stores events and plans deliveries
//! - [`admin`]: the platform admin's cross-tenant views and actions
//! - [`stats`]: the overview's numbers (per-day rollups kept by triggers); [`export`]: CSV

pub mod conditions;
pub mod error;
pub mod ids;
pub mod schema;
pub mod states;
pub mod text;

pub mod admin;
pub mod delivery;
pub mod events;
pub mod export;
pub mod ingest;
pub mod mail;
pub mod platforms;
pub mod secrets;
pub mod stats;
pub mod store;
pub mod tenancy;
pub mod tracking;

pub use error::{DomainError, DomainResult};

#[cfg(test)]
mod layers;
