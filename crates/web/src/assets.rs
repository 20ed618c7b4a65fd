//! Our own CSS and JS, compiled into the binary so it serves the same files from any directory.

use actix_web::HttpResponse;

const APP_CSS: &str = include_str!("../../../static/app.css");
const APP_JS: &str = include_str!("../../../static/app.js");

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(body)
}

pub async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", APP_CSS)
}

pub async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}
