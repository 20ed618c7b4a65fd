//! Help pages: how click quality is scored, and the API reference.

use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use postback_domain::tracking::touches::QUALITY_RULES;

use crate::error::WebResult;
use crate::layout::{page, Chrome};
use crate::session::CurrentUser;

#[derive(Template)]
#[template(path = "help/quality.html")]
struct QualityPage {
    chrome: Chrome,
    rules: Vec<(i32, &'static str)>,
}

pub async fn quality(req: HttpRequest, user: CurrentUser) -> WebResult<HttpResponse> {
    let chrome = Chrome::new(&req, &user, "domains");
    let had_flash = chrome.flash.is_some();
    page(
        &QualityPage {
            chrome,
            rules: QUALITY_RULES.to_vec(),
        },
        had_flash,
    )
}

#[derive(Template)]
#[template(path = "help/api_reference.html")]
struct ApiReferencePage {
    chrome: Chrome,
}

/// The management API's reference, rendered from `/v1/openapi.json` by the vendored Swagger UI.
pub async fn api_reference(req: HttpRequest, user: CurrentUser) -> WebResult<HttpResponse> {
    let chrome = Chrome::new(&req, &user, "api");
    let had_flash = chrome.flash.is_some();
    page(&ApiReferencePage { chrome }, had_flash)
}
