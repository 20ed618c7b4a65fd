//! The `/v1` management API: JSON in camelCase, `{"error"}` on failure, newest-first cursor lists.

pub mod auth;
pub mod domains;
pub mod events;
pub mod keys;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .route("/auth/signup", web::post().to(auth::signup))
            .route("/auth/login", web::post().to(auth::login))
            .route("/auth/logout", web::post().to(auth::logout))
            .route("/me", web::get().to(auth::me))
            .route("/domains", web::get().to(domains::list))
            .route("/domains", web::post().to(domains::create))
            .route("/domains/{id}", web::get().to(domains::get))
            .route("/domains/{id}", web::delete().to(domains::delete))
            .route("/domains/{id}/keys", web::get().to(keys::list))
            .route("/domains/{id}/keys", web::post().to(keys::create))
            .route("/keys/{id}/revoke", web::post().to(keys::revoke))
            .route("/keys/{id}/restore", web::post().to(keys::restore))
            .route("/keys/{id}", web::delete().to(keys::delete))
            .route("/events", web::get().to(events::list))
            .route("/events/{id}", web::get().to(events::get))
            .route("/inbound", web::post().to(crate::inbound::receive))
            .default_service(web::to(crate::not_found)),
    );
}
