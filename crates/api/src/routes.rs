//! Every route of the API: the root and `/__cc` tables, their registration with the other
//! tables' (`/v1/openapi.json`, `/v1`), the list of them all, and the answer to a path parameter
//! that does not parse, which depends on that list.

use crate::{health, inbound, metrics, openapi, tracking, v1};

use crate::error::ApiError;
use crate::route_table::allowed_methods;
pub use crate::route_table::Registered;

crate::route_table!(ROOT_ROUTES, configure_root, [
    get "/healthz" => health::healthz,
    get "/readyz" => health::readyz,
    get "/metrics" => metrics::scrape,
]);

crate::route_table!(CC_ROUTES, configure_cc, "/__cc", [
    post "/inbound" => inbound::receive,
    get "/t.js" => tracking::snippet,
    post "/collect" => tracking::collect,
    options "/collect" => tracking::preflight,
    post "/identify" => tracking::identify,
    options "/identify" => tracking::preflight_identify,
    get "/go/{slug}" => tracking::go,
]);

/// Registers `/__cc`, `/v1`, `/healthz`, `/readyz` and `/metrics`.
pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    configure_root(cfg);
    configure_cc(cfg);
    // Before the `/v1` scope, which would otherwise take the path.
    openapi::configure(cfg);
    v1::configure(cfg);
}

/// Every route the API registers, across all scopes.
pub fn all() -> Vec<Registered> {
    [ROOT_ROUTES, CC_ROUTES, openapi::ROUTES, v1::ROUTES].concat()
}

/// Path extractor failures (an id that is not a UUID reads as not found).
pub fn path_error(
    err: actix_web::error::PathError,
    req: &actix_web::HttpRequest,
) -> actix_web::Error {
    // A literal path taken by a `{id}` route of another method (DELETE /v1/invitations/accept
    // reaching DELETE /v1/invitations/{id}): the path exists, the method does not.
    let allowed = allowed_methods(&all(), req.path());
    if !allowed.is_empty() && !allowed.contains(&req.method().as_str().to_owned()) {
        let allow = allowed.join(", ");
        let resp = actix_web::HttpResponse::MethodNotAllowed()
            .insert_header((actix_web::http::header::ALLOW, allow.clone()))
            .json(serde_json::json!({
                "error": format!("{} is not allowed on {}; use {allow}", req.method(), req.path())
            }));
        return actix_web::error::InternalError::from_response(err, resp).into();
    }
    ApiError::NotFound("not found".into()).into()
}

#[cfg(test)]
mod tests {
    use super::all;
    use crate::route_table::allowed_methods;

    #[test]
    fn allowed_methods_list_every_method_of_a_path() {
        let all = all();
        assert_eq!(
            allowed_methods(&all, "/v1/integrations/webhooks/x"),
            ["GET", "PATCH", "DELETE"]
        );
        assert_eq!(allowed_methods(&all, "/__cc/collect"), ["POST", "OPTIONS"]);
        assert_eq!(allowed_methods(&all, "/v1/invitations/accept"), ["POST"]);
        assert_eq!(allowed_methods(&all, "/v1/invitations/x"), ["DELETE"]);
        assert!(allowed_methods(&all, "/v1/nothing").is_empty());
    }
}
