//! `/v1/stats`: the overview's numbers (issue 22) — counts, conversions, revenue per currency
//! over a date range in the workspace's time zone, grouped by day, source, medium, campaign, ad
//! platform or tracking link. The dashboard's overview page calls the same domain function.

use actix_web::{web, HttpResponse};
use postback_domain::stats::{self, Stats, StatsQuery};
use serde::Deserialize;

use crate::auth::Authenticated;
use crate::error::ApiResult;
use crate::v1::export::given;
use postback_runtime::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Only this domain (default: every domain of the workspace).
    #[param(value_type = Option<uuid::Uuid>)]
    domain_id: Option<String>,
    /// First day, `YYYY-MM-DD`, in the workspace's time zone (default: six days before `to`).
    #[param(value_type = Option<String>, format = Date)]
    from: Option<String>,
    /// Last day (inclusive), `YYYY-MM-DD` (default: today). A `from` after `to` is an empty
    /// range.
    #[param(value_type = Option<String>, format = Date)]
    to: Option<String>,
    /// `day` (default), `source`, `medium`, `campaign`, `platform` or `link`.
    #[param(value_type = Option<String>, pattern = "^(day|source|medium|campaign|platform|link)$")]
    group_by: Option<String>,
    /// Credit the visitor's `first` or `last` (default) touch.
    #[param(value_type = Option<String>, pattern = "^(first|last)$")]
    touch: Option<String>,
}

#[utoipa::path(operation_id = "statsGet", get, path = "/v1/stats", tag = "events", params(StatsParams), responses((status = 200, description = "Totals, the previous period's totals and the groups", body = Stats)))]
pub async fn get(
    state: web::Data<AppState>,
    user: Authenticated,
    query: web::Query<StatsParams>,
) -> ApiResult<HttpResponse> {
    let ws = user.0.workspace_id;
    let mut conn = state.conn().await?;
    let tz = stats::time_zone(&mut conn, ws).await?;
    let today = stats::today(&mut conn, &tz).await?;
    let q = StatsQuery::parse(
        today,
        given("domainId", &query.domain_id)?,
        given("from", &query.from)?,
        given("to", &query.to)?,
        given("groupBy", &query.group_by)?,
        given("touch", &query.touch)?,
    )?;
    let stats = stats::compute(&mut conn, ws, &q).await?;
    Ok(HttpResponse::Ok().json(stats))
}
