//! Help pages: how click quality is scored.

use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use postback_domain::tracking::QUALITY_RULES;

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
