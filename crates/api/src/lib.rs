//! Postback's HTTP API: the public `/__cc` endpoints, the `/v1` management API and health checks.
//! The state it serves from and the background work behind it are `postback_runtime`'s.

pub mod auth;
pub mod error;
pub mod health;
pub mod http_metrics;
pub mod inbound;
pub mod metrics;
pub mod openapi;
pub mod route_table;
pub mod routes;
pub mod schemas;
pub mod text_guard;
pub mod tracking;
pub mod v1;

use actix_web::web;

pub use error::{ApiError, ApiResult};
pub use routes::{configure, CC_ROUTES, ROOT_ROUTES};

/// Extractor settings that keep every client error in the `{"error"}` envelope.
pub fn extractor_config(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(inbound::MAX_BODY_BYTES)
            .error_handler(error::json_error),
    )
    .app_data(web::QueryConfig::default().error_handler(error::query_error))
    .app_data(web::PathConfig::default().error_handler(routes::path_error));
}
