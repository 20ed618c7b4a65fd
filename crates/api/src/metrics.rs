//! `GET /metrics`: the Prometheus text exposition of the server's [`Metrics`] registry (which
//! lives in `postback_runtime::metrics`), for the operators' scraper.
//!
//! [`Metrics`]: postback_runtime::metrics::Metrics

use actix_web::{web, HttpResponse};
use postback_runtime::AppState;

/// `GET /metrics`: unauthenticated, for the operators' scraper.
#[utoipa::path(operation_id = "scrape", get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    match state.metrics.render(&state.pool).await {
        Ok(body) => HttpResponse::Ok()
            .content_type(prometheus::TEXT_FORMAT)
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "metrics: encoding failed");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("metrics encoding failed\n")
        }
    }
}
