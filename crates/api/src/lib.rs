//! Postback's HTTP API: the public `/__cc` endpoints, the `/v1` management API and health checks.

pub mod auth;
pub mod delivery;
pub mod error;
pub mod health;
pub mod inbound;
pub mod ingest;
pub mod metrics;
pub mod ratelimit;
pub mod retention;
pub mod state;
pub mod tracking;
pub mod v1;

use actix_web::{web, HttpResponse};
use serde_json::json;

pub use error::{ApiError, ApiResult};
pub use state::AppState;

pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({ "error": "not found" }))
}

/// Extractor settings that keep every client error in the `{"error"}` envelope.
pub fn extractor_config(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(inbound::MAX_BODY_BYTES)
            .error_handler(error::json_error),
    )
    .app_data(web::QueryConfig::default().error_handler(error::query_error))
    .app_data(web::PathConfig::default().error_handler(error::path_error));
}

/// Registers `/__cc`, `/v1`, `/healthz`, `/readyz` and `/metrics`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(metrics::scrape))
        .service(
            web::scope("/__cc")
                .route("/inbound", web::post().to(inbound::receive))
                .route("/t.js", web::get().to(tracking::snippet))
                .route("/collect", web::post().to(tracking::collect))
                .route(
                    "/collect",
                    web::method(actix_web::http::Method::OPTIONS).to(tracking::preflight),
                )
                .route("/identify", web::post().to(tracking::identify))
                .route(
                    "/identify",
                    web::method(actix_web::http::Method::OPTIONS).to(tracking::preflight),
                )
                .default_service(web::to(not_found)),
        );
    v1::configure(cfg);
}
