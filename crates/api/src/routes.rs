//! One table per scope registers the routes and lists them, so the OpenAPI document can be
//! checked against what the server actually answers.

use actix_web::http::Method;
use actix_web::{web, Route};

/// A route as registered: HTTP method (lower case) and full path pattern (`{name}` segments).
pub type Registered = (&'static str, &'static str);

pub fn get() -> Route {
    web::get()
}

pub fn post() -> Route {
    web::post()
}

pub fn put() -> Route {
    web::put()
}

pub fn patch() -> Route {
    web::patch()
}

pub fn delete() -> Route {
    web::delete()
}

pub fn options() -> Route {
    web::method(Method::OPTIONS)
}

/// `route_table!(LIST, register, "/prefix", [get "/path" => handler, …])` defines
/// `LIST: &[Registered]` with the full paths and `register(&mut ServiceConfig)` that mounts
/// every entry under `/prefix` (an empty prefix mounts at the root) with `default` for misses.
#[macro_export]
macro_rules! route_table {
    ($list:ident, $register:ident, $prefix:literal, default = $default:path,
     [$($method:ident $path:literal => $handler:path),* $(,)?]) => {
        pub const $list: &[$crate::routes::Registered] =
            &[$((stringify!($method), concat!($prefix, $path))),*];

        pub fn $register(cfg: &mut actix_web::web::ServiceConfig) {
            cfg.service(
                actix_web::web::scope($prefix)
                    $(.route($path, $crate::routes::$method().to($handler)))*
                    .default_service(actix_web::web::to($default)),
            );
        }
    };
    ($list:ident, $register:ident, [$($method:ident $path:literal => $handler:path),* $(,)?]) => {
        pub const $list: &[$crate::routes::Registered] = &[$((stringify!($method), $path)),*];

        pub fn $register(cfg: &mut actix_web::web::ServiceConfig) {
            $(cfg.route($path, $crate::routes::$method().to($handler));)*
        }
    };
}

/// Every route the API registers, across all scopes.
pub fn all() -> Vec<Registered> {
    [crate::ROOT_ROUTES, crate::CC_ROUTES, crate::v1::ROUTES].concat()
}
