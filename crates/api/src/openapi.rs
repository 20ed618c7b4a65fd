//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of every `/v1`, `/__cc` and health route,
//! generated from the handlers' `#[utoipa::path]` annotations and the types they answer with.
//!
//! The error answers every route shares (`{"error": "…"}` with 400, 401, 403, 404, 413, 415, 429
//! and 503) and the security requirements are added here, by route family, rather than repeated
//! on every handler.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::{health, inbound, metrics, tracking, v1};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Postback API",
        description = "Inbound conversions (`/__cc/inbound`, authenticated by an inbound integration key `cc_…`), the tracking snippet's endpoints (`/__cc`), and the management API (`/v1`, authenticated by a personal access token `pb_…` or the dashboard's session). Every error answers `{\"error\": \"…\"}`. Lists are newest first; pass `nextCursor` back as `cursor` for the next page.",
        license(name = "MIT")
    ),
    paths(
        health::healthz,
        health::readyz,
        metrics::scrape,
        inbound::receive,
        tracking::snippet,
        tracking::collect,
        tracking::preflight,
        tracking::identify,
        tracking::preflight_identify,
        v1::auth::signup,
        v1::auth::login,
        v1::auth::logout,
        v1::auth::me,
        v1::account::verify,
        v1::account::resend,
        v1::account::forgot,
        v1::account::reset,
        v1::account::change_password,
        v1::account::change_email,
        v1::account::sign_out_others,
        v1::account::delete_account,
        v1::account::set_notifications,
        v1::invitations::accept,
        v1::invitations::resend,
        v1::team::delete_workspace,
        v1::mail::failing,
        v1::admin::workspaces,
        v1::admin::workspace,
        v1::admin::change_workspace,
        v1::admin::plans,
        v1::admin::change_plan,
        v1::admin::audit,
        v1::admin::own_audit,
        v1::team::list,
        v1::team::add,
        v1::team::set_role,
        v1::team::remove,
        v1::team::cancel_invitation,
        v1::team::workspaces,
        v1::team::switch,
        v1::tokens::list,
        v1::tokens::create,
        v1::tokens::delete,
        v1::domains::list,
        v1::domains::create,
        v1::domains::get,
        v1::domains::delete,
        v1::domains::update,
        v1::connections::list,
        v1::connections::get,
        v1::connections::put,
        v1::connections::delete,
        v1::connections::test,
        v1::keys::list,
        v1::keys::create,
        v1::keys::revoke,
        v1::keys::restore,
        v1::keys::delete,
        v1::events::list,
        v1::events::get,
        v1::export::export,
        v1::stats::get,
        v1::workspace::get,
        v1::workspace::update,
        v1::webhooks::list,
        v1::webhooks::create,
        v1::webhooks::get,
        v1::webhooks::update,
        v1::webhooks::delete,
        v1::webhooks::test,
        v1::webhooks::secret,
        v1::webhooks::rotate_secret,
        v1::webhooks::end_overlap,
        v1::webhooks::recover,
        v1::webhooks::queue,
        v1::webhooks::deliveries_of,
        v1::webhooks::delivery,
        v1::webhooks::redeliver,
        v1::links::list,
        v1::links::create,
        v1::links::get,
        v1::links::update,
        v1::links::delete,
        tracking::go,
        inbound::receive_v1,
        document,
    ),
    components(schemas(crate::schemas::ErrorBody)),
    modifiers(&Conventions),
    tags(
        (name = "inbound", description = "Conversions pushed by the customer's backend"),
        (name = "tracking", description = "The tracking snippet and its endpoints"),
        (name = "auth", description = "Accounts and sessions"),
        (name = "domains", description = "Domains and their inbound integration keys"),
        (name = "connections", description = "Ad platform connections of a domain"),
        (name = "events", description = "Stored conversion events"),
        (name = "webhooks", description = "Outbound webhooks and their deliveries"),
        (name = "links", description = "Tracking links: weighted redirects that record the click"),
        (name = "team", description = "Members, invitations and workspaces"),
        (name = "tokens", description = "Personal access tokens"),
        (name = "admin", description = "Platform administration (platform admins only; 404 for anyone else)"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

crate::route_table!(ROUTES, configure, [
    get "/v1/openapi.json" => document,
]);

/// The document, built once.
pub fn spec() -> &'static utoipa::openapi::OpenApi {
    static SPEC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    SPEC.get_or_init(ApiDoc::openapi)
}

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(spec())
}

/// Which credentials a route takes.
enum Auth {
    /// No credentials.
    Public,
    /// An inbound integration key.
    Inbound,
    /// A personal access token or the dashboard session.
    Management,
}

/// `/v1` routes anyone may call: signing up and in, and the mailed links' endpoints.
const PUBLIC_V1: [&str; 6] = [
    "/v1/auth/signup",
    "/v1/auth/login",
    "/v1/auth/verify",
    "/v1/auth/password/forgot",
    "/v1/auth/password/reset",
    "/v1/openapi.json",
];

fn auth_of(path: &str) -> Auth {
    match path {
        "/__cc/inbound" | "/v1/inbound" => Auth::Inbound,
        p if PUBLIC_V1.contains(&p) => Auth::Public,
        p if p.starts_with("/v1/") => Auth::Management,
        _ => Auth::Public,
    }
}

/// The statuses every route of a family may answer with the error envelope, and why.
fn shared_errors(
    path: &str,
    auth: &Auth,
    method_has_body: bool,
) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if !(path.starts_with("/v1/") || path.starts_with("/__cc/")) {
        return out;
    }
    if path == "/v1/openapi.json" || path == "/__cc/t.js" {
        return out;
    }
    out.push((
        "400",
        "The request is invalid; `error` names the field and the problem",
    ));
    match auth {
        Auth::Management => {
            out.push(("401", "No valid token or session"));
            out.push((
                "403",
                "Not allowed: a cross-site request with a session, a plan limit, a suspended workspace or a role that may not do this",
            ));
            out.push(("404", "Not found, or owned by another workspace"));
            out.push(("429", "Over the token's rate limit; see `Retry-After`"));
        }
        Auth::Inbound => {
            out.push(("401", "Missing, unknown or revoked inbound integration key"));
            out.push((
                "403",
                "The workspace is suspended or over its monthly event quota",
            ));
            out.push(("429", "Too many requests; see `Retry-After`"));
        }
        Auth::Public => {
            out.push((
                "403",
                "Refused: a cross-site request, or an origin that is not the domain's",
            ));
            out.push(("404", "Unknown site"));
            out.push(("429", "Too many attempts; see `Retry-After`"));
        }
    }
    if method_has_body {
        out.push(("413", "The body is too large"));
        out.push(("415", "Unsupported Content-Type"));
    }
    out.push(("503", "The database is unavailable; retry later"));
    out
}

struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("pb_…")
                    .description(Some(
                        "A personal access token from Settings or `POST /v1/tokens`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                postback_domain::tenancy::sessions::COOKIE_NAME,
                "The dashboard's session cookie (same-site requests only)",
            ))),
        );
        components.add_security_scheme(
            "inboundKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CC-Api-Key",
                "A domain's inbound integration key (`cc_…`)",
            ))),
        );
        components.add_security_scheme(
            "inboundBearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("cc_…")
                    .description(Some("The inbound integration key as a bearer token"))
                    .build(),
            ),
        );

        let error = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let auth = auth_of(path);
            let ops: [(&mut Option<Operation>, bool); 6] = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.patch, true),
                (&mut item.delete, false),
                (&mut item.options, false),
            ];
            for (op, has_body) in ops {
                let Some(op) = op.as_mut() else { continue };
                op.security = Some(match auth {
                    Auth::Management => vec![
                        SecurityRequirement::new("token", Vec::<String>::new()),
                        SecurityRequirement::new("session", Vec::<String>::new()),
                    ],
                    Auth::Inbound => vec![
                        SecurityRequirement::new("inboundKey", Vec::<String>::new()),
                        SecurityRequirement::new("inboundBearer", Vec::<String>::new()),
                    ],
                    Auth::Public => vec![SecurityRequirement::default()],
                });
                for (status, why) in shared_errors(path, &auth, has_body) {
                    if op.responses.responses.contains_key(status) {
                        continue;
                    }
                    let mut resp = ResponseBuilder::new()
                        .description(why)
                        .content("application/json", error.clone());
                    if status == "429" {
                        resp = resp.header(
                            "Retry-After",
                            HeaderBuilder::new()
                                .schema(Some(<i64 as utoipa::PartialSchema>::schema()))
                                .description(Some("Seconds to wait before trying again"))
                                .build(),
                        );
                    }
                    op.responses
                        .responses
                        .insert(status.to_owned(), resp.build().into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::spec;

    fn documented() -> BTreeSet<(String, String)> {
        let doc = serde_json::to_value(spec()).unwrap();
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                out.insert((method.clone(), path.clone()));
            }
        }
        out
    }

    /// A route the server registers but the document leaves out fails here, and so does a
    /// documented operation the server does not have.
    #[test]
    fn the_document_covers_every_registered_route_and_no_other() {
        let registered: BTreeSet<(String, String)> = crate::routes::all()
            .into_iter()
            .map(|(m, p)| (m.to_owned(), p.to_owned()))
            .collect();
        let documented = documented();
        let missing: Vec<_> = registered.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "registered but not documented: {missing:?}"
        );
        let phantom: Vec<_> = documented.difference(&registered).collect();
        assert!(
            phantom.is_empty(),
            "documented but not registered: {phantom:?}"
        );
        assert!(registered.len() >= 60, "only {} routes", registered.len());
    }

    #[test]
    fn every_management_operation_takes_a_token_or_a_session_and_documents_errors() {
        let doc = serde_json::to_value(spec()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["token"]["scheme"], "bearer");
        assert_eq!(schemes["session"]["in"], "cookie");
        assert_eq!(schemes["inboundKey"]["name"], "X-CC-Api-Key");
        let mut ids = std::collections::HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let security = op["security"].to_string();
                let responses = op["responses"].as_object().unwrap();
                if path.starts_with("/v1/") && !path.starts_with("/v1/auth/sign") {
                    if path == "/v1/inbound" {
                        assert!(security.contains("inboundKey"), "{method} {path}");
                    } else if !super::PUBLIC_V1.contains(&path.as_str()) {
                        assert!(
                            security.contains("\"token\""),
                            "{method} {path}: {security}"
                        );
                        assert!(security.contains("\"session\""), "{method} {path}");
                        for status in ["400", "401", "404", "429"] {
                            let r = &responses[status];
                            assert_eq!(
                                r["content"]["application/json"]["schema"]["$ref"],
                                "#/components/schemas/ErrorBody",
                                "{method} {path} {status}"
                            );
                        }
                    }
                }
                assert!(
                    responses
                        .keys()
                        .any(|s| s.starts_with('2') || s.starts_with('3')),
                    "{method} {path} documents no success"
                );
                let id = op["operationId"].as_str().unwrap().to_owned();
                assert!(ids.insert(id), "{method} {path}: operationId used twice");
            }
        }
    }

    #[test]
    #[allow(clippy::print_stdout)]
    fn dump_when_asked() {
        // `POSTBACK_OPENAPI_OUT=path cargo test -p postback-api dump_when_asked` writes the
        // document, for reading it without a server.
        if let Ok(path) = std::env::var("POSTBACK_OPENAPI_OUT") {
            std::fs::write(path, serde_json::to_string_pretty(spec()).unwrap()).unwrap();
        }
    }
}
