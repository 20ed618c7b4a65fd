//! The dashboard: server-rendered pages for marketers, with server-side sessions, CSRF tokens on
//! every form and flash messages. Uses the same domain code as the `/v1` API.

mod account;
mod admin;
mod assets;
mod auth;
mod charts;
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
pub mod money;
mod overview;
mod plan;
mod platform_connect;
pub mod session;
mod settings;
mod time_zone;
mod webhooks;

use actix_web::middleware::{Compress, DefaultHeaders};
use actix_web::web;

pub use error::not_found;

/// `page_table!(LIST, mount, [get "/path" => handler, …])` defines `LIST` with every route as
/// (method, pattern), for tests that must cover them all, and `mount(scope)` that adds them to a
/// scope in this order (a literal segment before a `{name}` one, as actix matches in order).
macro_rules! page_table {
    ($list:ident, $mount:ident, [$($method:ident $path:literal => $handler:path),* $(,)?]) => {
        pub const $list: &[postback_api::routes::Registered] =
            &[$((stringify!($method), $path)),*];

        fn $mount(scope: actix_web::Scope) -> actix_web::Scope {
            scope $(.route($path, actix_web::web::$method().to($handler)))*
        }
    };
}

page_table!(ROUTES, mount, [
    get "/static/app.css" => assets::css,
    get "/static/app.js" => assets::js,
    get "/static/api-reference.js" => assets::api_reference_js,
    get "/static/vendor/swagger-ui/swagger-ui-bundle.js" => assets::swagger_ui_js,
    get "/static/vendor/swagger-ui/swagger-ui.css" => assets::swagger_ui_css,
    get "/" => overview::home,
    get "/signup" => auth::signup_form,
    post "/signup" => auth::signup,
    get "/login" => auth::login_form,
    post "/login" => auth::login,
    post "/logout" => auth::logout,
    get "/forgot-password" => account::forgot_form,
    post "/forgot-password" => account::forgot,
    get "/reset-password" => account::reset_form,
    post "/reset-password" => account::reset,
    get "/verify-email" => account::verify,
    post "/verify-email/resend" => account::resend_verification,
    get "/invitations/accept" => account::invitation,
    post "/invitations/accept" => account::accept_invitation,
    get "/settings/account" => account::settings,
    post "/settings/account/password" => account::change_password,
    post "/settings/account/email" => account::change_email,
    post "/settings/account/sessions" => account::sign_out_others,
    post "/settings/account/notifications" => account::set_notifications,
    post "/settings/account/delete" => account::delete_account,
    post "/settings/workspace/delete" => account::delete_workspace,
    get "/domains" => domains::list,
    post "/domains" => domains::add,
    get "/domains/{id}" => domains::show,
    get "/domains/{id}/delete" => domains::confirm_delete,
    post "/domains/{id}/delete" => domains::delete,
    get "/domains/{id}/keys" => keys::list,
    post "/domains/{id}/keys" => keys::create,
    get "/keys/{id}/revoke" => keys::confirm_revoke,
    post "/keys/{id}/revoke" => keys::revoke,
    post "/keys/{id}/restore" => keys::restore,
    get "/keys/{id}/delete" => keys::confirm_delete,
    post "/keys/{id}/delete" => keys::delete,
    get "/domains/{id}/events" => events::list,
    get "/domains/{id}/webhooks" => webhooks::domain_tab,
    get "/domains/{id}/tracking" => domains::tracking,
    post "/domains/{id}/links" => links::create,
    get "/links/{id}" => links::show,
    post "/links/{id}" => links::update,
    get "/links/{id}/delete" => links::confirm_delete,
    post "/links/{id}/delete" => links::delete,
    get "/domains/{id}/connections" => connections::list,
    post "/domains/{id}/attribution" => connections::set_window,
    post "/domains/{id}/default-country" => connections::set_country,
    post "/domains/{id}/connections/{platform}" => connections::save,
    post "/domains/{id}/connections/{platform}/test" => connections::test,
    get "/domains/{id}/connections/{platform}/delete" => connections::confirm_delete,
    post "/domains/{id}/connections/{platform}/delete" => connections::delete,
    get "/domains/{id}/connections/{platform}/connect" => platform_connect::start,
    get "/oauth/{platform}/callback" => platform_connect::callback,
    post "/oauth/{platform}/pick" => platform_connect::pick,
    get "/events/{id}" => events::show,
    get "/plan" => plan::show,
    get "/admin" => admin::index,
    get "/admin/plans" => admin::plans_page,
    post "/admin/plans/{tier}" => admin::change_plan,
    get "/admin/workspaces/{id}" => admin::workspace,
    post "/admin/workspaces/{id}" => admin::change_workspace,
    get "/help/quality" => help::quality,
    get "/api-reference" => help::api_reference,
    get "/settings" => settings::show,
    get "/settings/time-zone" => time_zone::show,
    post "/settings/time-zone" => time_zone::save,
    post "/settings/tokens" => settings::create,
    post "/settings/members" => settings::add_member,
    post "/settings/members/{id}/role" => settings::set_role,
    get "/settings/members/{id}/remove" => settings::confirm_remove,
    post "/settings/members/{id}/remove" => settings::remove_member,
    post "/settings/invitations/{id}/cancel" => settings::cancel_invitation,
    post "/settings/invitations/{id}/resend" => settings::resend_invitation,
    post "/settings/workspaces/{id}/switch" => settings::switch_workspace,
    get "/settings/tokens/{id}/revoke" => settings::confirm_revoke,
    post "/settings/tokens/{id}/revoke" => settings::revoke,
    get "/webhooks" => webhooks::list,
    post "/webhooks" => webhooks::create,
    get "/webhooks/new" => webhooks::new_form,
    get "/webhooks/{id}" => webhooks::show,
    post "/webhooks/{id}" => webhooks::update,
    post "/webhooks/{id}/test" => webhooks::test,
    post "/webhooks/{id}/reveal" => webhooks::reveal,
    post "/webhooks/{id}/rotate" => webhooks::rotate,
    post "/webhooks/{id}/end-overlap" => webhooks::end_overlap,
    post "/webhooks/{id}/delivery" => webhooks::save_delivery,
    post "/webhooks/{id}/recover" => webhooks::recover,
    post "/webhooks/{id}/status" => webhooks::set_status,
    get "/webhooks/{id}/delete" => webhooks::confirm_delete,
    post "/webhooks/{id}/delete" => webhooks::delete,
    post "/deliveries/{id}/redeliver" => webhooks::redeliver,
]);

/// Registers every dashboard route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        mount(web::scope(""))
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
            .default_service(web::to(not_found)),
    );
}
