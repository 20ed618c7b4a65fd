//! The machinery of the route tables: one table per scope registers the routes and lists them,
//! so the OpenAPI document can be checked against what the server actually answers (every
//! table together is `routes::all`).

use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse, Route};
use serde_json::json;

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
/// every entry under `/prefix`; without a prefix each path is its own resource at the root.
/// A request no entry takes gets [`unmatched`] with this table: 405 with `Allow`, or 404.
#[macro_export]
macro_rules! route_table {
    ($list:ident, $register:ident, $prefix:literal,
     [$($method:ident $path:literal => $handler:path),* $(,)?]) => {
        pub const $list: &[$crate::route_table::Registered] =
            &[$((stringify!($method), concat!($prefix, $path))),*];

        pub fn $register(cfg: &mut actix_web::web::ServiceConfig) {
            cfg.service(
                actix_web::web::scope($prefix)
                    $(.route($path, $crate::route_table::$method().to($handler)))*
                    .default_service(actix_web::web::to(|req: actix_web::HttpRequest| {
                        $crate::route_table::unmatched(req, $list)
                    })),
            );
        }
    };
    ($list:ident, $register:ident, [$($method:ident $path:literal => $handler:path),* $(,)?]) => {
        pub const $list: &[$crate::route_table::Registered] = &[$((stringify!($method), $path)),*];

        pub fn $register(cfg: &mut actix_web::web::ServiceConfig) {
            $(cfg.service(
                actix_web::web::resource($path)
                    .route($crate::route_table::$method().to($handler))
                    .default_service(actix_web::web::to(|req: actix_web::HttpRequest| {
                        $crate::route_table::unmatched(req, $list)
                    })),
            );)*
        }
    };
}

/// Whether a request path matches a registered pattern (`{name}` stands for one segment).
fn matches(pattern: &str, path: &str) -> bool {
    let (mut want, mut got) = (pattern.split('/'), path.split('/'));
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// The methods `table` answers on a path, upper case, in table order. When patterns of
/// different specificity match (`/v1/invitations/accept` and `/v1/invitations/{id}`), only the
/// ones with the most literal segments count.
pub fn allowed_methods(table: &[Registered], path: &str) -> Vec<String> {
    let literal = |p: &str| p.split('/').filter(|s| !s.starts_with('{')).count();
    let matching: Vec<(&str, &str)> = table
        .iter()
        .copied()
        .filter(|(_, pattern)| matches(pattern, path))
        .collect();
    let best = matching.iter().map(|(_, p)| literal(p)).max().unwrap_or(0);
    let mut out: Vec<String> = Vec::new();
    for (method, pattern) in matching {
        let m = method.to_ascii_uppercase();
        if literal(pattern) == best && !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

/// What a request no route of `table` took gets: 405 with `Allow` when the path exists in it
/// under another method, else 404; both in the `{"error"}` envelope. (A table is a scope or a
/// path of its own, so no other table has a route on a path that reaches this one.)
pub async fn unmatched(req: HttpRequest, table: &'static [Registered]) -> HttpResponse {
    let allowed = allowed_methods(table, req.path());
    if allowed.is_empty() {
        return not_found().await;
    }
    let allow = allowed.join(", ");
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow.clone()))
        .json(json!({
            "error": format!("{} is not allowed on {}; use {allow}", req.method(), req.path())
        }))
}

/// The `{"error": "not found"}` answer.
pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({ "error": "not found" }))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_one_segment_per_name() {
        assert!(matches("/v1/keys/{id}/revoke", "/v1/keys/abc/revoke"));
        assert!(!matches("/v1/keys/{id}/revoke", "/v1/keys//revoke"));
        assert!(!matches("/v1/keys/{id}", "/v1/keys/abc/revoke"));
        assert!(!matches("/v1/keys/{id}", "/v1/keys"));
    }
}
