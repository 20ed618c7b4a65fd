//! The `/v1` management API: JSON in camelCase, `{"error"}` on failure, newest-first cursor lists.

pub mod admin;
pub mod auth;
pub mod connections;
pub mod domains;
pub mod events;
pub mod keys;
pub mod team;
pub mod tokens;
pub mod webhooks;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .route("/auth/signup", web::post().to(auth::signup))
            .route("/auth/login", web::post().to(auth::login))
            .route("/auth/logout", web::post().to(auth::logout))
            .route("/me", web::get().to(auth::me))
            .route("/admin/workspaces", web::get().to(admin::workspaces))
            .route("/admin/workspaces/{id}", web::get().to(admin::workspace))
            .route(
                "/admin/workspaces/{id}",
                web::patch().to(admin::change_workspace),
            )
            .route("/admin/plans", web::get().to(admin::plans))
            .route("/admin/plans/{tier}", web::patch().to(admin::change_plan))
            .route("/admin/audit", web::get().to(admin::audit))
            .route("/audit", web::get().to(admin::own_audit))
            .route("/members", web::get().to(team::list))
            .route("/members", web::post().to(team::add))
            .route("/members/{id}", web::patch().to(team::set_role))
            .route("/members/{id}", web::delete().to(team::remove))
            .route(
                "/invitations/{id}",
                web::delete().to(team::cancel_invitation),
            )
            .route("/workspaces", web::get().to(team::workspaces))
            .route("/workspaces/{id}/switch", web::post().to(team::switch))
            .route("/tokens", web::get().to(tokens::list))
            .route("/tokens", web::post().to(tokens::create))
            .route("/tokens/{id}", web::delete().to(tokens::delete))
            .route("/domains", web::get().to(domains::list))
            .route("/domains", web::post().to(domains::create))
            .route("/domains/{id}", web::get().to(domains::get))
            .route("/domains/{id}", web::delete().to(domains::delete))
            .route("/domains/{id}", web::patch().to(domains::update))
            .route(
                "/domains/{id}/connections",
                web::get().to(connections::list),
            )
            .route(
                "/domains/{id}/connections/{platform}",
                web::get().to(connections::get),
            )
            .route(
                "/domains/{id}/connections/{platform}",
                web::put().to(connections::put),
            )
            .route(
                "/domains/{id}/connections/{platform}",
                web::delete().to(connections::delete),
            )
            .route(
                "/domains/{id}/connections/{platform}/test",
                web::post().to(connections::test),
            )
            .route("/domains/{id}/keys", web::get().to(keys::list))
            .route("/domains/{id}/keys", web::post().to(keys::create))
            .route("/keys/{id}/revoke", web::post().to(keys::revoke))
            .route("/keys/{id}/restore", web::post().to(keys::restore))
            .route("/keys/{id}", web::delete().to(keys::delete))
            .route("/events", web::get().to(events::list))
            .route("/events/{id}", web::get().to(events::get))
            .route("/integrations/webhooks", web::get().to(webhooks::list))
            .route("/integrations/webhooks", web::post().to(webhooks::create))
            .route("/integrations/webhooks/{id}", web::get().to(webhooks::get))
            .route(
                "/integrations/webhooks/{id}",
                web::patch().to(webhooks::update),
            )
            .route(
                "/integrations/webhooks/{id}",
                web::delete().to(webhooks::delete),
            )
            .route(
                "/integrations/webhooks/{id}/test",
                web::post().to(webhooks::test),
            )
            .route(
                "/integrations/webhooks/{id}/secret",
                web::get().to(webhooks::secret),
            )
            .route(
                "/integrations/webhooks/{id}/secret/rotate",
                web::post().to(webhooks::rotate_secret),
            )
            .route(
                "/integrations/webhooks/{id}/deliveries",
                web::get().to(webhooks::deliveries_of),
            )
            .route("/deliveries/{id}", web::get().to(webhooks::delivery))
            .route(
                "/deliveries/{id}/redeliver",
                web::post().to(webhooks::redeliver),
            )
            .route("/inbound", web::post().to(crate::inbound::receive))
            .default_service(web::to(crate::not_found)),
    );
}
