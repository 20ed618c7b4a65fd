//! The dashboard: server-rendered pages for marketers, with server-side sessions, CSRF tokens on
//! every form and flash messages. Uses the same domain code as the `/v1` API.

mod admin;
mod assets;
mod auth;
mod confirm;
mod connections;
mod domains;
pub mod error;
mod events;
pub mod format;
mod help;
mod keys;
mod layout;
mod links;
mod plan;
pub mod session;
mod settings;
mod webhooks;

use actix_web::middleware::{Compress, DefaultHeaders};
use actix_web::web;

pub use error::not_found;

/// Registers every dashboard route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            // Pages compress well; the API's small JSON answers are not worth the work.
            .wrap(Compress::default())
            .wrap(DefaultHeaders::new().add((
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                 frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            )))
            .app_data(
                web::PathConfig::default().error_handler(|_, _| error::WebError::NotFound.into()),
            )
            .app_data(
                web::FormConfig::default()
                    .limit(16 * 1024)
                    .error_handler(|e, _| error::WebError::BadForm(e.to_string()).into()),
            )
            .route("/static/app.css", web::get().to(assets::css))
            .route("/static/app.js", web::get().to(assets::js))
            .route(
                "/static/api-reference.js",
                web::get().to(assets::api_reference_js),
            )
            .route(
                "/static/vendor/swagger-ui/swagger-ui-bundle.js",
                web::get().to(assets::swagger_ui_js),
            )
            .route(
                "/static/vendor/swagger-ui/swagger-ui.css",
                web::get().to(assets::swagger_ui_css),
            )
            .route("/", web::get().to(auth::home))
            .route("/signup", web::get().to(auth::signup_form))
            .route("/signup", web::post().to(auth::signup))
            .route("/login", web::get().to(auth::login_form))
            .route("/login", web::post().to(auth::login))
            .route("/logout", web::post().to(auth::logout))
            .route("/domains", web::get().to(domains::list))
            .route("/domains", web::post().to(domains::add))
            .route("/domains/{id}", web::get().to(domains::show))
            .route(
                "/domains/{id}/delete",
                web::get().to(domains::confirm_delete),
            )
            .route("/domains/{id}/delete", web::post().to(domains::delete))
            .route("/domains/{id}/keys", web::get().to(keys::list))
            .route("/domains/{id}/keys", web::post().to(keys::create))
            .route("/keys/{id}/revoke", web::get().to(keys::confirm_revoke))
            .route("/keys/{id}/revoke", web::post().to(keys::revoke))
            .route("/keys/{id}/restore", web::post().to(keys::restore))
            .route("/keys/{id}/delete", web::get().to(keys::confirm_delete))
            .route("/keys/{id}/delete", web::post().to(keys::delete))
            .route("/domains/{id}/events", web::get().to(events::list))
            .route(
                "/domains/{id}/webhooks",
                web::get().to(webhooks::domain_tab),
            )
            .route("/domains/{id}/tracking", web::get().to(domains::tracking))
            .route("/domains/{id}/links", web::post().to(links::create))
            .route("/links/{id}", web::get().to(links::show))
            .route("/links/{id}", web::post().to(links::update))
            .route("/links/{id}/delete", web::get().to(links::confirm_delete))
            .route("/links/{id}/delete", web::post().to(links::delete))
            .route(
                "/domains/{id}/connections",
                web::get().to(connections::list),
            )
            .route(
                "/domains/{id}/attribution",
                web::post().to(connections::set_window),
            )
            .route(
                "/domains/{id}/connections/{platform}",
                web::post().to(connections::save),
            )
            .route(
                "/domains/{id}/connections/{platform}/test",
                web::post().to(connections::test),
            )
            .route(
                "/domains/{id}/connections/{platform}/delete",
                web::get().to(connections::confirm_delete),
            )
            .route(
                "/domains/{id}/connections/{platform}/delete",
                web::post().to(connections::delete),
            )
            .route("/events/{id}", web::get().to(events::show))
            .route("/plan", web::get().to(plan::show))
            .route("/admin", web::get().to(admin::index))
            .route("/admin/plans", web::get().to(admin::plans_page))
            .route("/admin/plans/{tier}", web::post().to(admin::change_plan))
            .route("/admin/workspaces/{id}", web::get().to(admin::workspace))
            .route(
                "/admin/workspaces/{id}",
                web::post().to(admin::change_workspace),
            )
            .route("/help/quality", web::get().to(help::quality))
            .route("/api-reference", web::get().to(help::api_reference))
            .route("/settings", web::get().to(settings::show))
            .route("/settings/tokens", web::post().to(settings::create))
            .route("/settings/members", web::post().to(settings::add_member))
            .route(
                "/settings/members/{id}/role",
                web::post().to(settings::set_role),
            )
            .route(
                "/settings/members/{id}/remove",
                web::get().to(settings::confirm_remove),
            )
            .route(
                "/settings/members/{id}/remove",
                web::post().to(settings::remove_member),
            )
            .route(
                "/settings/invitations/{id}/cancel",
                web::post().to(settings::cancel_invitation),
            )
            .route(
                "/settings/workspaces/{id}/switch",
                web::post().to(settings::switch_workspace),
            )
            .route(
                "/settings/tokens/{id}/revoke",
                web::get().to(settings::confirm_revoke),
            )
            .route(
                "/settings/tokens/{id}/revoke",
                web::post().to(settings::revoke),
            )
            .route("/webhooks", web::get().to(webhooks::list))
            .route("/webhooks", web::post().to(webhooks::create))
            .route("/webhooks/new", web::get().to(webhooks::new_form))
            .route("/webhooks/{id}", web::get().to(webhooks::show))
            .route("/webhooks/{id}", web::post().to(webhooks::update))
            .route("/webhooks/{id}/test", web::post().to(webhooks::test))
            .route("/webhooks/{id}/reveal", web::post().to(webhooks::reveal))
            .route("/webhooks/{id}/rotate", web::post().to(webhooks::rotate))
            .route(
                "/webhooks/{id}/status",
                web::post().to(webhooks::set_status),
            )
            .route(
                "/webhooks/{id}/delete",
                web::get().to(webhooks::confirm_delete),
            )
            .route("/webhooks/{id}/delete", web::post().to(webhooks::delete))
            .route(
                "/deliveries/{id}/redeliver",
                web::post().to(webhooks::redeliver),
            )
            .default_service(web::to(not_found)),
    );
}
