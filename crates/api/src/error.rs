//! The API error: every failure becomes `{"error": "…"}` with the right status, in one place.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use postback_domain::DomainError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// A rate limit: 429 with `Retry-After` (seconds).
    #[error("{0}")]
    RateLimited(String, u64),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }
    pub fn invalid_api_key() -> Self {
        Self::Unauthorized("Invalid API key".into())
    }
    pub fn not_signed_in() -> Self {
        Self::Unauthorized("Not signed in".into())
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            DomainError::Invalid(m) => Self::BadRequest(m),
            DomainError::Conflict(m) => Self::Conflict(m),
            // A plan limit is a refusal of this request, not a conflict with a resource.
            DomainError::LimitReached(m) => Self::Forbidden(m),
            DomainError::Unauthorized(m) => Self::Unauthorized(m),
            DomainError::Suspended(m) | DomainError::Forbidden(m) => Self::Forbidden(m),
            DomainError::TooMany(m) => Self::RateLimited(m, 3600),
            DomainError::Unavailable(cause) => {
                tracing::error!(%cause, "database unavailable");
                Self::Unavailable("Service temporarily unavailable, retry shortly".into())
            }
            DomainError::Database(cause) => {
                tracing::error!(%cause, "database error");
                Self::Internal("Internal server error".into())
            }
            DomainError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Self::Internal("Internal server error".into())
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests(_) | Self::RateLimited(..) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if let Self::RateLimited(_, secs) = self {
            resp.insert_header(("Retry-After", secs.to_string()));
        }
        resp.json(json!({ "error": self.to_string() }))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Turns actix's JSON extractor failures into `{"error"}` answers that name the problem.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::ContentType => {
            ApiError::UnsupportedMediaType("Content-Type must be application/json".into())
        }
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge(format!("body is larger than {limit} bytes"))
        }
        E::Deserialize(e) => ApiError::BadRequest(format!("invalid JSON body: {e}")),
        other => ApiError::BadRequest(format!("invalid body: {other}")),
    };
    api.into()
}

/// Query-string extractor failures, same envelope.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query string: {err}")).into()
}
