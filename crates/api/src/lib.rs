//! Postback's HTTP API: the public `/__cc` endpoints, the `/v1` management API and health checks.

pub mod auth;
pub mod clicks;
pub mod client_addr;
pub mod delivery;
pub mod error;
pub mod health;
pub mod inbound;
pub mod ingest;
pub mod login_throttle;
pub mod mail;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod retention;
pub mod routes;
pub mod shared_limit;
pub mod state;
pub mod text_guard;
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

route_table!(ROOT_ROUTES, configure_root, [
    get "/healthz" => health::healthz,
    get "/readyz" => health::readyz,
    get "/metrics" => metrics::scrape,
]);

route_table!(CC_ROUTES, configure_cc, "/__cc", [
    post "/inbound" => inbound::receive,
    get "/t.js" => tracking::snippet,
    post "/collect" => tracking::collect,
    options "/collect" => tracking::preflight,
    post "/identify" => tracking::identify,
    options "/identify" => tracking::preflight_identify,
    get "/go/{slug}" => tracking::go,
]);

/// Registers `/__cc`, `/v1`, `/healthz`, `/readyz` and `/metrics`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    configure_root(cfg);
    configure_cc(cfg);
    v1::configure(cfg);
}
