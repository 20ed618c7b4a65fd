//! The public tracking endpoints the snippet talks to: `GET /__cc/t.js`, `POST /__cc/collect`
//! (a landing) and `POST /__cc/identify` (an email); and `GET /__cc/go/{slug}`, the redirect of
//! a tracking link. Small bodies, CORS only for the domain's
//! hostname and its subdomains, and a per-IP rate limit.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use postback_domain::tenancy::domains::Domain;
use postback_domain::tracking::links;
use postback_domain::tracking::touches::{self as tracking, Landing};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use postback_runtime::AppState;

const SNIPPET: &str = include_str!("../../../static/t.js");
/// The snippet's reports are a URL and a referrer: a few KiB at most.
const MAX_BODY: usize = 8 * 1024;

/// Counts a request of an anonymous endpoint against its budgets (see `shared_limit`): the
/// client's, and the site's or link's once it is known. 429 with `Retry-After` when spent.
fn within_budget(
    state: &AppState,
    endpoint: &str,
    client: Option<&str>,
    site: Option<&str>,
) -> ApiResult<()> {
    let client_bucket = client.map(|c| format!("{endpoint}:client:{c}"));
    let site_bucket = site.map(|s| format!("{endpoint}:site:{s}"));
    let mut buckets = Vec::with_capacity(2);
    if let Some(b) = &client_bucket {
        buckets.push((b.as_str(), state.budgets.per_client));
    }
    if let Some(b) = &site_bucket {
        buckets.push((b.as_str(), state.budgets.per_site));
    }
    state.limits.check(&buckets).map_err(|wait| {
        let whose = match (client, site) {
            (None, Some(_)) => "for this site",
            (Some(_), None) => "from this address",
            _ => "from this address or for this link",
        };
        ApiError::RateLimited(
            format!("Too many requests {whose}; retry in {wait} s"),
            wait,
        )
    })
}

#[utoipa::path(operation_id = "trackingSnippet", get, path = "/__cc/t.js", tag = "tracking", responses((status = 200, description = "The tracking snippet", content_type = "application/javascript", body = String)))]
pub async fn snippet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(SNIPPET)
}

async fn read_body(mut payload: web::Payload) -> ApiResult<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad_request("the body could not be read"))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::PayloadTooLarge(format!(
                "the body must be at most {} KiB",
                MAX_BODY / 1024
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Rate limit, body, site and origin: what both reports check first.
async fn admit<T: for<'de> Deserialize<'de>>(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> ApiResult<(T, Domain, Option<String>)> {
    let client = postback_runtime::client_addr::client_bucket(req, &state.trusted_proxies);
    within_budget(state, "tracking", Some(&client), None)?;
    let body = read_body(payload).await?;
    let parsed = serde_json::from_slice::<T>(&body);
    let not_json = |e: serde_json::Error| {
        ApiError::bad_request(format!("the body is not valid JSON for this report: {e}"))
    };
    // Broken JSON is named as such; valid JSON without a site names the site first.
    let site = match site_of(&body) {
        Ok(site) => site,
        Err(missing) => {
            return Err(match parsed {
                Err(e) if !e.is_data() => not_json(e),
                _ => missing,
            })
        }
    };
    let parsed = parsed.map_err(not_json)?;
    let mut conn = state.conn().await?;
    let domain = tracking::domain_for_site(&mut conn, &site).await?;
    within_budget(state, "tracking", None, Some(&domain.id.0.to_string()))?;
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    if let Some(o) = &origin {
        if !tracking::origin_allowed(&domain.hostname, o) {
            return Err(ApiError::Forbidden(format!(
                "this site only accepts reports from {} and its subdomains",
                domain.hostname
            )));
        }
    }
    Ok((parsed, domain, origin))
}

fn site_of(body: &[u8]) -> ApiResult<String> {
    #[derive(Deserialize)]
    struct Site {
        site: Option<String>,
    }
    serde_json::from_slice::<Site>(body)
        .ok()
        .and_then(|s| s.site)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("site is required (the snippet's data-site)"))
}

fn accepted(origin: Option<String>) -> HttpResponse {
    let mut resp = HttpResponse::Ok();
    if let Some(o) = origin {
        resp.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, o))
            .insert_header((header::VARY, "Origin"));
    }
    resp.json(crate::schemas::Ok { ok: true })
}

/// A landing, as `t.js` reports it (sent as `text/plain` to avoid a CORS preflight).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CollectBody {
    /// The domain's site id (the snippet's `data-site`).
    #[allow(dead_code)] // read first, by `site_of`
    #[schema(min_length = 1)]
    site: String,
    /// The visitor id the snippet keeps in first-party storage.
    #[schema(min_length = 1)]
    vid: String,
    /// The landing page's URL, with its query (click ids, UTMs).
    #[schema(min_length = 1)]
    url: String,
    #[serde(default)]
    referrer: Option<String>,
    #[serde(default)]
    webdriver: bool,
    /// The `pb_click` of the landing page's URL, when it came through a tracking link.
    #[serde(default)]
    click: Option<String>,
}

/// The visitor's country from the GeoIP file, when one is configured. The address is the
/// client's as a proxy in front reports it (`Forwarded` / `X-Forwarded-For`), else the peer's:
/// a visitor can only misstate its own country this way.
fn visitor_country(req: &HttpRequest, state: &AppState) -> Option<String> {
    let geoip = state.geoip.as_ref()?;
    geoip.country(postback_runtime::client_addr::client_ip(
        req,
        &state.trusted_proxies,
    )?)
}

#[utoipa::path(operation_id = "trackingCollect", post, path = "/__cc/collect", tag = "tracking", request_body(content((CollectBody = "text/plain"), (CollectBody = "application/json")), description = "A page view, sent by t.js"), responses((status = 200, description = "Recorded", body = crate::schemas::Ok)))]
pub async fn collect(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (body, domain, origin) = admit::<CollectBody>(&req, &state, payload).await?;
    let landing = Landing {
        url: body.url,
        referrer: body.referrer,
        webdriver: body.webdriver,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        country: visitor_country(&req, &state),
        click: body.click,
    };
    let mut conn = state.conn().await?;
    tracking::record_landing(&mut conn, &domain, &body.vid, &landing).await?;
    Ok(accepted(origin))
}

/// An email the visitor typed, as `t.js` reports it.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct IdentifyBody {
    /// The domain's site id (the snippet's `data-site`).
    #[allow(dead_code)] // read first, by `site_of`
    #[schema(min_length = 1)]
    site: String,
    #[schema(min_length = 1)]
    vid: String,
    email: String,
}

#[utoipa::path(operation_id = "trackingIdentify", post, path = "/__cc/identify", tag = "tracking", request_body(content((IdentifyBody = "text/plain"), (IdentifyBody = "application/json")), description = "An email the visitor entered, sent by t.js"), responses((status = 200, description = "Recorded", body = crate::schemas::Ok)))]
pub async fn identify(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (body, domain, origin) = admit::<IdentifyBody>(&req, &state, payload).await?;
    let mut conn = state.conn().await?;
    tracking::identify(&mut conn, &domain, &body.vid, &body.email).await?;
    Ok(accepted(origin))
}

/// CORS preflight for `fetch` with other than simple headers; the snippet itself avoids it.
#[utoipa::path(operation_id = "preflight", options, path = "/__cc/collect", tag = "tracking", responses((status = 204, description = "CORS preflight answer")))]
pub async fn preflight(req: HttpRequest) -> HttpResponse {
    let mut resp = HttpResponse::NoContent();
    if let Some(o) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    {
        resp.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, o.to_owned()))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
            .insert_header((header::VARY, "Origin"));
    }
    resp.finish()
}

#[utoipa::path(operation_id = "preflightIdentify", options, path = "/__cc/identify", tag = "tracking", responses((status = 204, description = "CORS preflight answer")))]
pub async fn preflight_identify(req: HttpRequest) -> HttpResponse {
    preflight(req).await
}

const UNKNOWN_LINK: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Link not found</title></head><body><h1>Link not found</h1>\
<p>This link does not exist or is no longer active.</p></body></html>\n";

/// `GET /__cc/go/{slug}`: a tracking-link click. 302 to a target picked by weight, with the
/// click's query string and `pb_click` added, once the click's touch is committed; a plain 404
/// page for an unknown slug. The touch is committed with other clicks arriving at the same
/// time (see `clicks`), before the answer. Each client (and each link) has a budget of clicks per
/// minute shared by every instance (`POSTBACK_CLIENT_RATE_LIMIT`, `POSTBACK_SITE_RATE_LIMIT`):
/// past it, 429 with `Retry-After`, so no one can grow the touches table without bound. A click
/// carrying text PostgreSQL cannot store is redirected and stored without it.
#[utoipa::path(operation_id = "trackingGo", get, path = "/__cc/go/{slug}", tag = "tracking", params(("slug" = String, Path, description = "The link's slug")), responses((status = 302, description = "To a target picked by weight, with the query string and `pb_click` added", headers(("Location" = String, description = "The target URL"))), (status = 404, description = "No such link: a plain HTML page", content_type = "text/html", body = String)))]
pub async fn go(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let header_str = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let click = links::Click {
        query: req.query_string().to_owned(),
        referrer: header_str(header::REFERER),
        user_agent: header_str(header::USER_AGENT).unwrap_or_default(),
        country: visitor_country(&req, &state),
    };
    // A slug PostgreSQL could not even compare is no link's.
    let dest = if postback_domain::text::is_storable(&path) {
        state.clicks.destination(&path).await?
    } else {
        None
    };
    match dest {
        Some(dest) => {
            let client = postback_runtime::client_addr::client_bucket(&req, &state.trusted_proxies);
            within_budget(&state, "go", Some(&client), Some(&path))?;
            let (r, touch) = links::route_click(&dest, &click)?;
            match state.clicks.store(touch).await.map_err(ApiError::from) {
                Ok(()) => {}
                // The visitor still goes where the link points when only this click could not
                // be recorded; an outage answers 503 so the browser retries and nothing is lost.
                Err(ApiError::Unavailable(cause)) => return Err(ApiError::Unavailable(cause)),
                Err(e) => tracing::warn!(error = %e, "a click could not be recorded"),
            }
            Ok(HttpResponse::Found()
                .insert_header((header::LOCATION, r.location))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header(("X-Robots-Tag", "noindex"))
                .finish())
        }
        None => Ok(HttpResponse::NotFound()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(UNKNOWN_LINK)),
    }
}
