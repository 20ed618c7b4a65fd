//! `GET /v1/events/export`: every event matching the filter as CSV, streamed page by page (a
//! bounded channel between the query task and the response), so memory stays the same whatever
//! the number of rows.

use actix_web::{web, HttpResponse};
use postback_domain::events;
use postback_domain::export::{self, RawFilter};
use postback_domain::store::paging::{Cursor, PageRequest};
use serde::Deserialize;

use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use postback_runtime::AppState;

/// A query parameter sent empty (`?to=`) is refused like any other value out of its format;
/// one not sent is `None`.
pub(crate) fn given<'a>(
    field: &str,
    value: &'a Option<String>,
) -> Result<Option<&'a str>, ApiError> {
    match value.as_deref() {
        Some("") => Err(ApiError::bad_request(format!("{field} must not be empty"))),
        v => Ok(v),
    }
}

/// Rows fetched per query.
const BATCH: i64 = 500;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Only this domain's events.
    #[param(value_type = Option<uuid::Uuid>)]
    domain_id: Option<String>,
    /// First day (`YYYY-MM-DD`, workspace time zone) of the events' `timestamp`.
    #[param(value_type = Option<String>, format = Date)]
    from: Option<String>,
    /// Last day (inclusive).
    #[param(value_type = Option<String>, format = Date)]
    to: Option<String>,
    /// Only events with this name.
    event: Option<String>,
    /// Only this customer's events.
    email: Option<String>,
}

#[utoipa::path(operation_id = "eventsExport", get, path = "/v1/events/export", tag = "events", params(ExportParams), responses((status = 200, description = "Every matching event, newest first, as CSV (columns in README)", content_type = "text/csv", body = String)))]
pub async fn export(
    state: web::Data<AppState>,
    user: Authenticated,
    query: web::Query<ExportParams>,
) -> ApiResult<HttpResponse> {
    let ws = user.0.workspace_id;
    let mut conn = state.conn().await?;
    let filter = export::filter(
        &mut conn,
        ws,
        &RawFilter {
            domain_id: given("domainId", &query.domain_id)?,
            from: given("from", &query.from)?,
            to: given("to", &query.to)?,
            event: query.event.as_deref(),
            email: query.email.as_deref(),
        },
    )
    .await?;
    export::check_domain(&mut conn, ws, &filter).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<web::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        if tx
            .send(Ok(web::Bytes::from(export::csv_header())))
            .await
            .is_err()
        {
            return;
        }
        let mut after: Option<Cursor> = None;
        loop {
            let page = PageRequest {
                limit: BATCH,
                after,
            };
            let listed = match events::list(&mut conn, ws, &filter, page).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "events export stopped");
                    let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
                    return;
                }
            };
            let extras = export::extras(&mut conn, ws, &listed.items)
                .await
                .unwrap_or_default();
            let mut chunk = String::new();
            for e in &listed.items {
                let x = extras.get(&e.id).cloned().unwrap_or_default();
                chunk.push_str(&export::csv_line(e, &x));
            }
            after = listed.items.last().map(|e| Cursor {
                at: e.received_at,
                id: e.id.0,
            });
            if !chunk.is_empty() && tx.send(Ok(web::Bytes::from(chunk))).await.is_err() {
                return;
            }
            if listed.next_cursor.is_none() {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"postback-events.csv\"",
        ))
        .insert_header(("Cache-Control", "no-store"))
        .streaming(stream))
}
