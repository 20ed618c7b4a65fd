//! Settings → Time zone: the IANA zone the overview and `/v1/stats` count days in (default UTC).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use postback_domain::stats;
use postback_domain::DomainError;
use postback_runtime::AppState;
use serde::Deserialize;
use serde_json::json;

use crate::error::WebResult;
use crate::layout::{page, Chrome};
use crate::session::{redirect_with, verify_csrf, CurrentUser};

#[derive(Template)]
#[template(path = "settings/time_zone.html")]
struct TimeZonePage {
    chrome: Chrome,
    current: String,
    value: String,
    error: Option<String>,
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
) -> WebResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let current = stats::time_zone(&mut conn, user.ctx.workspace_id).await?;
    let chrome = Chrome::new(&req, &user, "settings");
    let had_flash = chrome.flash.is_some();
    page(
        &TimeZonePage {
            chrome,
            value: current.clone(),
            current,
            error: None,
        },
        had_flash,
    )
}

#[derive(Deserialize)]
pub struct TimeZoneForm {
    csrf_token: String,
    #[serde(default)]
    time_zone: String,
}

pub async fn save(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
    form: web::Form<TimeZoneForm>,
) -> WebResult<HttpResponse> {
    verify_csrf(&req, &form.csrf_token)?;
    let mut conn = state.conn().await?;
    let ws = user.ctx.workspace_id;
    let name = form.time_zone.trim().to_owned();
    match stats::set_time_zone(&mut conn, ws, &name).await {
        Ok(()) => {
            postback_domain::tenancy::audit::record(
                &mut conn,
                &user.ctx,
                "workspace.time_zone",
                &name,
                json!({"timeZone": name}),
            )
            .await?;
            Ok(redirect_with(
                "/settings/time-zone",
                "success",
                &format!("Days are now counted in {name}."),
                state.secure_cookies,
            ))
        }
        Err(DomainError::Invalid(m)) => {
            let current = stats::time_zone(&mut conn, ws).await?;
            let chrome = Chrome::new(&req, &user, "settings");
            let had_flash = chrome.flash.is_some();
            let mut resp = page(
                &TimeZonePage {
                    chrome,
                    current,
                    value: name,
                    error: Some(m),
                },
                had_flash,
            )?;
            *resp.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}
