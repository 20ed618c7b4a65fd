//! `/v1/domains`: add, list, show and delete the workspace's websites.

use actix_web::{web, HttpResponse};
use postback_domain::ids::DomainId;
use postback_domain::store::paging::{Page, PageRequest};
use postback_domain::tenancy::domains::{self, Domain};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Authenticated;
use crate::error::ApiResult;
use postback_runtime::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListQuery {
    pub fn page(&self) -> ApiResult<PageRequest> {
        Ok(PageRequest::parse(self.limit, self.cursor.as_deref())?)
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewDomain)]
pub struct CreateBody {
    /// A domain name (a URL is accepted too; its host is kept).
    #[schema(
        example = "shop.example.com",
        max_length = 253,
        pattern = "^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}$"
    )]
    hostname: String,
}

#[utoipa::path(operation_id = "domainsCreate", post, path = "/v1/domains", tag = "domains", request_body = CreateBody, responses((status = 201, description = "Created", body = Domain), (status = 409, description = "The workspace has this hostname", body = crate::schemas::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    user: Authenticated,
    body: web::Json<CreateBody>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let domain = domains::create(&mut conn, user.0.workspace_id, &body.hostname).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "domain.create",
        &domain.hostname,
        json!({"id": domain.id}),
    )
    .await?;
    Ok(HttpResponse::Created().json(domain))
}

#[utoipa::path(operation_id = "domainsList", get, path = "/v1/domains", tag = "domains", params(ListQuery), responses((status = 200, description = "Domains, newest first", body = Page<Domain>)))]
pub async fn list(
    state: web::Data<AppState>,
    user: Authenticated,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let page = domains::list(&mut conn, user.0.workspace_id, query.page()?).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(operation_id = "domainsGet", get, path = "/v1/domains/{id}", tag = "domains", params(("id" = uuid::Uuid, Path, description = "Domain id")), responses((status = 200, description = "The domain", body = Domain)))]
pub async fn get(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<DomainId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let domain = domains::get(&mut conn, user.0.workspace_id, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(domain))
}

#[utoipa::path(operation_id = "domainsDelete", delete, path = "/v1/domains/{id}", tag = "domains", params(("id" = uuid::Uuid, Path, description = "Domain id")), responses((status = 204, description = "Deleted with its keys")))]
pub async fn delete(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<DomainId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let id = path.into_inner();
    domains::delete(&mut conn, user.0.workspace_id, id).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "domain.delete",
        &format!("domain {id}"),
        Value::Null,
    )
    .await?;
    state.clicks.forget_destinations();
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
#[schema(as = DomainChange)]
pub struct UpdateBody {
    /// 1 to 365 days.
    #[schema(minimum = 1, maximum = 365)]
    #[serde(default)]
    attribution_window_days: Option<i64>,
    /// ISO 3166-1 alpha-2 (e.g. `GB`, any case): phone numbers sent without their country code
    /// are completed with this country's calling code when the event names no country. `null`
    /// or `""` clears it; such numbers are then left out of platform requests.
    #[schema(value_type = Option<String>, example = "GB")]
    #[serde(default, deserialize_with = "present")]
    default_country: Option<Value>,
}

/// A field given as null reads as Some(Null), so it can clear a setting; absent stays None.
/// Its type is checked by the handler, whose error names the field.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// `PATCH /v1/domains/{id}` `{attributionWindowDays?, defaultCountry?}`.
#[utoipa::path(operation_id = "domainsUpdate", patch, path = "/v1/domains/{id}", tag = "domains", params(("id" = uuid::Uuid, Path, description = "Domain id")), request_body = UpdateBody, responses((status = 200, description = "Updated", body = Domain)))]
pub async fn update(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<DomainId>,
    body: web::Json<UpdateBody>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let id = path.into_inner();
    let country = match &body.default_country {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(raw)) => Some(
            postback_domain::platforms::normalize::default_country(raw)
                .map_err(postback_domain::error::DomainError::invalid)?,
        ),
        Some(_) => {
            return Err(postback_domain::error::DomainError::invalid(
                "defaultCountry must be a two-letter country code such as \"GB\", or null",
            )
            .into())
        }
    };
    if body.attribution_window_days.is_none() && country.is_none() {
        return Err(postback_domain::error::DomainError::invalid(
            "give attributionWindowDays or defaultCountry",
        )
        .into());
    }
    let mut conn = state.conn().await?;
    let mut changes = serde_json::Map::new();
    let mut domain = domains::get(&mut conn, user.0.workspace_id, id).await?;
    if let Some(days) = body.attribution_window_days {
        domain = domains::set_attribution_window(&mut conn, user.0.workspace_id, id, days).await?;
        changes.insert(
            "attributionWindowDays".into(),
            domain.attribution_window_days.into(),
        );
    }
    if let Some(country) = country {
        domain = domains::set_default_country(&mut conn, user.0.workspace_id, id, country).await?;
        changes.insert("defaultCountry".into(), json!(domain.default_country));
    }
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "domain.update",
        &domain.hostname,
        Value::Object(changes),
    )
    .await?;
    Ok(HttpResponse::Ok().json(domain))
}
