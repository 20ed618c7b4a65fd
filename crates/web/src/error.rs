//! How dashboard failures reach the browser: a redirect, a 403/404 page, or an opaque 500.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use postback_domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("redirect to {0}")]
    Redirect(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadForm(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl From<DomainError> for WebError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::NotFound(_) => Self::NotFound,
            // Client mistakes a page did not catch itself still read as a 400 with the message.
            DomainError::Invalid(m) | DomainError::Conflict(m) | DomainError::LimitReached(m) => {
                Self::BadForm(m)
            }
            DomainError::Suspended(m)
            | DomainError::Unauthorized(m)
            | DomainError::Forbidden(m) => Self::Forbidden(m),
            DomainError::Unavailable(cause) => {
                tracing::error!(%cause, "database unavailable");
                Self::Unavailable
            }
            other => {
                tracing::error!(cause = %other, "dashboard error");
                Self::Internal
            }
        }
    }
}

impl From<askama::Error> for WebError {
    fn from(err: askama::Error) -> Self {
        tracing::error!(cause = %err, "template error");
        Self::Internal
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let body = ErrorPage { title, message }
        .render()
        .unwrap_or_else(|_| title.to_owned());
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Redirect(_) => StatusCode::SEE_OTHER,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadForm(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Redirect(to) => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to.as_str()))
                .finish(),
            Self::NotFound => error_page(
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing here. It may have been deleted, or the link is wrong.",
            ),
            Self::BadForm(m) => error_page(StatusCode::BAD_REQUEST, "That could not be done", m),
            Self::Forbidden(m) => error_page(StatusCode::FORBIDDEN, "Not allowed", m),
            Self::Unavailable => error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "The database is not answering. Try again in a moment.",
            ),
            Self::Internal => error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The error has been logged. Try again in a moment.",
            ),
        }
    }
}

pub type WebResult<T> = Result<T, WebError>;

pub async fn not_found() -> HttpResponse {
    WebError::NotFound.error_response()
}
