//! `/healthz` (the process answers) and `/readyz` (the database answers too).

use actix_web::{web, HttpResponse};
use diesel_async::RunQueryDsl;
use serde::Serialize;

use postback_runtime::AppState;

/// The process's (or the database's) state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok`, `ready` or `unavailable`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

#[utoipa::path(operation_id = "healthz", get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is up", body = Status)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status {
        status: "ok",
        error: None,
    })
}

#[utoipa::path(operation_id = "readyz", get, path = "/readyz", tag = "operations", responses((status = 200, description = "The database answers", body = Status), (status = 503, description = "The database does not answer", body = Status)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let ready = match state.conn().await {
        Ok(mut conn) => diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .is_ok(),
        Err(_) => false,
    };
    if ready {
        HttpResponse::Ok().json(Status {
            status: "ready",
            error: None,
        })
    } else {
        HttpResponse::ServiceUnavailable().json(Status {
            status: "unavailable",
            error: Some("database unreachable"),
        })
    }
}
