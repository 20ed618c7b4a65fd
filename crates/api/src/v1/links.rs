//! `/v1/domains/{id}/links` and `/v1/links/{id}`: a domain's tracking links (SPEC "Tracking
//! links and click quality"), each with its full URL ready to hand out.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use postback_domain::ids::{DomainId, LinkId, LinkTargetId};
use postback_domain::tracking::links::{self, Link, LinkInput, TargetInput};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use crate::v1::domains::ListQuery;
use postback_runtime::AppState;

/// A create (`name`, `slug`, `targets` required) or update (any of them) body.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkBody {
    #[schema(
        example = "Spring newsletter",
        min_length = 1,
        max_length = 100,
        pattern = "\\S"
    )]
    pub name: Option<String>,
    /// Lowercase letters, digits and `-`; unique across the installation.
    #[schema(example = "spring-sale", pattern = "^[a-z0-9-]{1,64}$")]
    pub slug: Option<String>,
    #[schema(min_items = 1, max_items = 20)]
    pub targets: Option<Vec<TargetBody>>,
}

/// A target: `id` (when editing) keeps an existing target and its click counts.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetBody {
    pub id: Option<LinkTargetId>,
    /// An absolute http:// or https:// URL.
    #[schema(
        example = "https://shop.example.com/spring",
        max_length = 2000,
        pattern = "^https?://[A-Za-z0-9.-]+(/.*)?$"
    )]
    pub url: String,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub weight: i64,
}

const FIELDS: &[&str] = &["name", "slug", "targets"];
const TARGET_FIELDS: &[&str] = &["id", "url", "weight"];

impl LinkBody {
    /// Reads a body field by field, so that every error names the field it is about (serde's
    /// own messages give a line and column instead).
    pub fn from_json(body: &Value) -> ApiResult<Self> {
        let Value::Object(map) = body else {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        };
        if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!(
                "unknown field \"{unknown}\"; a link has {}",
                FIELDS.join(", ")
            )));
        }
        let string = |field: &str| -> ApiResult<Option<String>> {
            match map.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ApiError::bad_request(format!("{field} must be a string"))),
            }
        };
        let targets = match map.get("targets") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, t)| TargetBody::from_json(t, i))
                    .collect::<ApiResult<Vec<_>>>()?,
            ),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "targets must be an array of {url, weight}",
                ))
            }
        };
        Ok(Self {
            name: string("name")?,
            slug: string("slug")?,
            targets,
        })
    }

    fn input(self) -> LinkInput {
        LinkInput {
            name: self.name,
            slug: self.slug,
            targets: self.targets.map(|ts| {
                ts.into_iter()
                    .map(|t| TargetInput {
                        id: t.id,
                        url: t.url,
                        weight: t.weight,
                    })
                    .collect()
            }),
        }
    }
}

impl TargetBody {
    fn from_json(v: &Value, i: usize) -> ApiResult<Self> {
        let at = format!("targets[{i}]");
        let Value::Object(map) = v else {
            return Err(ApiError::bad_request(format!(
                "{at} must be an object {{url, weight}}"
            )));
        };
        if let Some(unknown) = map.keys().find(|k| !TARGET_FIELDS.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!(
                "{at}: unknown field \"{unknown}\"; a target has {}",
                TARGET_FIELDS.join(", ")
            )));
        }
        let id = match map.get("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.parse::<LinkTargetId>().map_err(|_| {
                ApiError::bad_request(format!("{at}.id must be a target id (a UUID)"))
            })?),
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "{at}.id must be a target id (a UUID)"
                )))
            }
        };
        let url = match map.get("url") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => {
                return Err(ApiError::bad_request(format!("{at}.url is required")))
            }
            Some(_) => return Err(ApiError::bad_request(format!("{at}.url must be a string"))),
        };
        let weight = match map.get("weight") {
            None | Some(Value::Null) => 1,
            Some(Value::Number(n)) => n.as_i64().filter(|w| *w > 0).ok_or_else(|| {
                ApiError::bad_request(format!("{at}.weight must be a positive whole number"))
            })?,
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "{at}.weight must be a positive whole number"
                )))
            }
        };
        Ok(Self { id, url, weight })
    }
}

/// A link as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkView {
    pub id: LinkId,
    pub domain_id: DomainId,
    pub name: String,
    pub slug: String,
    /// The full link, ready to copy: `{base URL}/__cc/go/{slug}`.
    pub url: String,
    pub targets: Vec<TargetView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetView {
    pub id: LinkTargetId,
    pub url: String,
    pub weight: i32,
}

/// A page of links, newest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkList {
    pub items: Vec<LinkView>,
    pub next_cursor: Option<String>,
}

impl LinkView {
    pub fn new(link: Link, base_url: &str) -> Self {
        Self {
            url: link.url(base_url),
            id: link.row.id,
            domain_id: link.row.domain_id,
            name: link.row.name,
            slug: link.row.slug,
            targets: link
                .targets
                .into_iter()
                .map(|t| TargetView {
                    id: t.id,
                    url: t.url,
                    weight: t.weight,
                })
                .collect(),
            created_at: link.row.created_at,
            updated_at: link.row.updated_at,
        }
    }
}

#[utoipa::path(operation_id = "linksCreate", post, path = "/v1/domains/{id}/links", tag = "links", params(("id" = uuid::Uuid, Path, description = "Domain id")), request_body = LinkBody, responses((status = 201, description = "Created; `url` is the link to share", body = LinkView), (status = 409, description = "The slug is taken", body = crate::schemas::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<DomainId>,
    body: web::Json<Value>,
) -> ApiResult<HttpResponse> {
    let input = LinkBody::from_json(&body)?.input();
    let mut conn = state.conn().await?;
    let link = links::create(&mut conn, user.0.workspace_id, path.into_inner(), input).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "link.create",
        &link.row.slug,
        json!({"id": link.row.id}),
    )
    .await?;
    state.clicks.forget_destinations();
    Ok(HttpResponse::Created().json(LinkView::new(link, &state.base_url)))
}

#[utoipa::path(operation_id = "linksList", get, path = "/v1/domains/{id}/links", tag = "links", params(("id" = uuid::Uuid, Path, description = "Domain id"), ListQuery), responses((status = 200, description = "The domain's tracking links, newest first", body = LinkList)))]
pub async fn list(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<DomainId>,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let page = links::list(
        &mut conn,
        user.0.workspace_id,
        path.into_inner(),
        query.page()?,
    )
    .await?;
    Ok(HttpResponse::Ok().json(LinkList {
        items: page
            .items
            .into_iter()
            .map(|l| LinkView::new(l, &state.base_url))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(operation_id = "linksGet", get, path = "/v1/links/{id}", tag = "links", params(("id" = uuid::Uuid, Path, description = "Link id")), responses((status = 200, description = "The link", body = LinkView)))]
pub async fn get(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<LinkId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let link = links::get(&mut conn, user.0.workspace_id, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(LinkView::new(link, &state.base_url)))
}

#[utoipa::path(operation_id = "linksUpdate", patch, path = "/v1/links/{id}", tag = "links", params(("id" = uuid::Uuid, Path, description = "Link id")), request_body = LinkBody, responses((status = 200, description = "Updated; targets sent back with their id keep it", body = LinkView), (status = 409, description = "The slug is taken", body = crate::schemas::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<LinkId>,
    body: web::Json<Value>,
) -> ApiResult<HttpResponse> {
    let input = LinkBody::from_json(&body)?.input();
    let mut conn = state.conn().await?;
    let link = links::update(&mut conn, user.0.workspace_id, path.into_inner(), input).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "link.update",
        &link.row.slug,
        json!({"id": link.row.id}),
    )
    .await?;
    state.clicks.forget_destinations();
    Ok(HttpResponse::Ok().json(LinkView::new(link, &state.base_url)))
}

#[utoipa::path(operation_id = "linksDelete", delete, path = "/v1/links/{id}", tag = "links", params(("id" = uuid::Uuid, Path, description = "Link id")), responses((status = 204, description = "Deleted; its clicks stay attributed to it")))]
pub async fn delete(
    state: web::Data<AppState>,
    user: Authenticated,
    path: web::Path<LinkId>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    let id = path.into_inner();
    links::delete(&mut conn, user.0.workspace_id, id).await?;
    postback_domain::tenancy::audit::record(
        &mut conn,
        &user.0,
        "link.delete",
        &format!("link {id}"),
        Value::Null,
    )
    .await?;
    state.clicks.forget_destinations();
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        match LinkBody::from_json(&v) {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        assert!(err(json!({"name": 5})).starts_with("name"));
        assert!(err(json!({"slug": ["a"]})).starts_with("slug"));
        assert!(err(json!({"targets": "x"})).starts_with("targets"));
        assert!(
            err(json!({"targets": [{"url": "https://a.test/", "weight": "3"}]}))
                .starts_with("targets[0].weight")
        );
        assert!(
            err(json!({"targets": [{"url": "https://a.test/", "weight": 1.5}]}))
                .starts_with("targets[0].weight")
        );
        assert!(err(json!({"targets": [{"weight": 1}]})).starts_with("targets[0].url"));
        assert!(
            err(json!({"targets": [{"url": "https://a.test/", "id": "nope"}]}))
                .starts_with("targets[0].id")
        );
        assert!(err(json!({"nmae": "x"})).contains("\"nmae\""));
        let ok = LinkBody::from_json(&json!({
            "name": "Spring", "slug": "spring",
            "targets": [{"url": "https://a.test/", "weight": 3}]
        }))
        .expect("valid");
        assert_eq!(ok.targets.map(|t| t[0].weight), Some(3));
        // The same shape deserialises with serde, for the API description.
        let typed: LinkBody =
            serde_json::from_value(json!({"name": "n", "targets": [{"url": "u", "weight": 1}]}))
                .expect("serde");
        assert_eq!(typed.name.as_deref(), Some("n"));
    }
}
