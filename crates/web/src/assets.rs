//! Our own CSS and JS, compiled into the binary so it serves the same files from any directory.

use actix_web::HttpResponse;

const APP_CSS: &str = include_str!("../../../static/app.css");
const APP_JS: &str = include_str!("../../../static/app.js");
const API_REFERENCE_JS: &str = include_str!("../../../static/api-reference.js");
/// Swagger UI from npm (`scripts/vendor-swagger-ui`), for the API reference page.
const SWAGGER_UI_JS: &str = include_str!("../../../static/vendor/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_UI_CSS: &str = include_str!("../../../static/vendor/swagger-ui/swagger-ui.css");

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

pub async fn api_reference_js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", API_REFERENCE_JS)
}

pub async fn swagger_ui_js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SWAGGER_UI_JS)
}

pub async fn swagger_ui_css() -> HttpResponse {
    asset("text/css; charset=utf-8", SWAGGER_UI_CSS)
}
