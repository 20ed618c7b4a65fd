//! Composes the API and the dashboard into one actix server.

use std::net::TcpListener;

use actix_web::middleware::{DefaultHeaders, Logger};
use actix_web::{dev::Server, web, App, HttpServer};
use postback_api::http_metrics::HttpMetrics;
use postback_runtime::AppState;

/// Builds the server on an already-bound listener (tests bind port 0 first).
pub fn build(listener: TcpListener, state: AppState, workers: usize) -> std::io::Result<Server> {
    let metrics = state.metrics.clone();
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            // Text PostgreSQL cannot store is refused before any handler sees it.
            .wrap(actix_web::middleware::from_fn(
                postback_api::text_guard::text_guard,
            ))
            .wrap(
                DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "strict-origin-when-cross-origin")),
            )
            // Never the query string: it may carry tokens or emails.
            .wrap(
                Logger::new("%{METHOD}xi %U %s %Dms")
                    .custom_request_replace("METHOD", |req| req.method().to_string()),
            )
            // Outermost, so it times and counts everything, by route pattern (never the path).
            .wrap(HttpMetrics::new(metrics.clone()))
            .configure(postback_api::extractor_config)
            .configure(postback_api::configure)
            .configure(postback_web::configure)
    })
    .workers(workers.max(1))
    .listen(listener)?
    .shutdown_timeout(10)
    .run();
    Ok(server)
}
