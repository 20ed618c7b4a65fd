//! The domain error: what went wrong, in words a client can act on, or an opaque internal cause.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DomainError {
    /// The thing does not exist, or belongs to another workspace (the two are never told apart).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Client input that fails validation; the message names the field and the problem.
    #[error("{0}")]
    Invalid(String),
    /// A uniqueness rule (e.g. a hostname already added).
    #[error("{0}")]
    Conflict(String),
    /// A plan limit would be passed; the message names the plan and the limit.
    #[error("{0}")]
    LimitReached(String),
    /// Credentials that do not authenticate.
    #[error("{0}")]
    Unauthorized(String),
    /// The workspace is suspended.
    #[error("{0}")]
    Suspended(String),
    /// The user may not do this (a member managing members, say).
    #[error("{0}")]
    Forbidden(String),
    /// The database could not be reached (pool exhausted, server down).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(diesel::result::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }
}

impl From<diesel::result::Error> for DomainError {
    fn from(err: diesel::result::Error) -> Self {
        // PostgreSQL text cannot hold U+0000 (SQLSTATE 22021): whatever field brought one, it
        // came from a client, so it is that client's error, not the server's.
        if let diesel::result::Error::DatabaseError(_, info) = &err {
            if info
                .message()
                .contains("invalid byte sequence for encoding \"UTF8\": 0x00")
            {
                return Self::Invalid("text must not contain NUL (\\u0000) characters".into());
            }
        }
        Self::Database(err)
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for DomainError {
    fn from(err: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
