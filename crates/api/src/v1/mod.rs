//! The `/v1` management API: JSON in camelCase, `{"error"}` on failure, newest-first cursor lists.

pub mod account;
pub mod admin;
pub mod auth;
pub mod connections;
pub mod domains;
pub mod events;
pub mod export;
pub mod invitations;
pub mod keys;
pub mod links;
pub mod mail;
pub mod stats;
pub mod team;
pub mod tokens;
pub mod webhooks;
pub mod workspace;

crate::route_table!(ROUTES, configure, "/v1", [
    post "/auth/signup" => auth::signup,
    post "/auth/login" => auth::login,
    post "/auth/logout" => auth::logout,
    get "/me" => auth::me,
    post "/auth/verify" => account::verify,
    post "/auth/verify/resend" => account::resend,
    post "/auth/password/forgot" => account::forgot,
    post "/auth/password/reset" => account::reset,
    post "/auth/password" => account::change_password,
    post "/auth/email" => account::change_email,
    delete "/auth/sessions/others" => account::sign_out_others,
    post "/me/delete" => account::delete_account,
    put "/me/notifications" => account::set_notifications,
    post "/invitations/accept" => invitations::accept,
    post "/invitations/{id}/resend" => invitations::resend,
    post "/workspaces/{id}/delete" => team::delete_workspace,
    get "/admin/mail" => mail::failing,
    get "/admin/workspaces" => admin::workspaces,
    get "/admin/workspaces/{id}" => admin::workspace,
    patch "/admin/workspaces/{id}" => admin::change_workspace,
    get "/admin/plans" => admin::plans,
    patch "/admin/plans/{tier}" => admin::change_plan,
    get "/admin/audit" => admin::audit,
    get "/audit" => admin::own_audit,
    get "/members" => team::list,
    post "/members" => team::add,
    patch "/members/{id}" => team::set_role,
    delete "/members/{id}" => team::remove,
    delete "/invitations/{id}" => team::cancel_invitation,
    get "/workspaces" => team::workspaces,
    post "/workspaces/{id}/switch" => team::switch,
    get "/tokens" => tokens::list,
    post "/tokens" => tokens::create,
    delete "/tokens/{id}" => tokens::delete,
    get "/domains" => domains::list,
    post "/domains" => domains::create,
    get "/domains/{id}" => domains::get,
    delete "/domains/{id}" => domains::delete,
    patch "/domains/{id}" => domains::update,
    get "/domains/{id}/connections" => connections::list,
    get "/domains/{id}/connections/{platform}" => connections::get,
    put "/domains/{id}/connections/{platform}" => connections::put,
    delete "/domains/{id}/connections/{platform}" => connections::delete,
    post "/domains/{id}/connections/{platform}/test" => connections::test,
    get "/domains/{id}/keys" => keys::list,
    post "/domains/{id}/keys" => keys::create,
    post "/keys/{id}/revoke" => keys::revoke,
    post "/keys/{id}/restore" => keys::restore,
    delete "/keys/{id}" => keys::delete,
    get "/events" => events::list,
    get "/events/export" => export::export,
    get "/stats" => stats::get,
    get "/workspace/settings" => workspace::get,
    patch "/workspace/settings" => workspace::update,
    get "/events/{id}" => events::get,
    get "/integrations/webhooks" => webhooks::list,
    post "/integrations/webhooks" => webhooks::create,
    get "/integrations/webhooks/{id}" => webhooks::get,
    patch "/integrations/webhooks/{id}" => webhooks::update,
    delete "/integrations/webhooks/{id}" => webhooks::delete,
    post "/integrations/webhooks/{id}/test" => webhooks::test,
    get "/integrations/webhooks/{id}/secret" => webhooks::secret,
    post "/integrations/webhooks/{id}/secret/rotate" => webhooks::rotate_secret,
    delete "/integrations/webhooks/{id}/secret/previous" => webhooks::end_overlap,
    post "/integrations/webhooks/{id}/recover" => webhooks::recover,
    get "/integrations/webhooks/{id}/queue" => webhooks::queue,
    get "/integrations/webhooks/{id}/deliveries" => webhooks::deliveries_of,
    get "/deliveries/{id}" => webhooks::delivery,
    post "/deliveries/{id}/redeliver" => webhooks::redeliver,
    post "/inbound" => crate::inbound::receive_v1,
    get "/domains/{id}/links" => links::list,
    post "/domains/{id}/links" => links::create,
    get "/links/{id}" => links::get,
    patch "/links/{id}" => links::update,
    delete "/links/{id}" => links::delete,
]);
