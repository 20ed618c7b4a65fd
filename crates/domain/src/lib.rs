//! Postback's domain: the schema, its models, and repositories that every query scopes by
//! workspace. Pure logic and SQL; nothing here knows about HTTP.

pub mod account_links;
pub mod accounts;
pub mod admin;
pub mod attribution;
pub mod audit;
pub mod conditions;
pub mod connections;
pub mod crypto;
pub mod db;
pub mod deliveries;
pub mod domains;
pub mod error;
pub mod events;
pub mod export;
pub mod geo;
pub mod geoip;
pub mod ids;
pub mod inbound;
pub mod keys;
pub mod limits;
pub mod links;
pub mod mail;
pub mod paging;
pub mod pg;
pub mod plans;
pub mod platforms;
pub mod retention;
pub mod schema;
pub mod secrets;
pub mod sessions;
pub mod stats;
pub mod team;
pub mod text;
pub mod tokens;
pub mod tracking;
pub mod webhooks;
pub mod workspace_deletion;

pub use error::{DomainError, DomainResult};
