//! Start-up of the `postback` binary: configuration, the embedded PostgreSQL default and the
//! HTTP server that composes the API and the dashboard. No business logic lives here.

pub mod config;
pub mod embedded_pg;
pub mod server;
