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
    /// A cap on what anonymous clients may store was reached (landings per visitor per day);
    /// answered 429 with an hour to wait.
    #[error("{0}")]
    TooMany(String),
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

    /// The same error again, for each of several requests it answers (a diesel error is kept
    /// as its text).
    pub fn replicate(&self) -> Self {
        match self {
            Self::NotFound(what) => Self::NotFound(what),
            Self::Invalid(m) => Self::Invalid(m.clone()),
            Self::Conflict(m) => Self::Conflict(m.clone()),
            Self::LimitReached(m) => Self::LimitReached(m.clone()),
            Self::Unauthorized(m) => Self::Unauthorized(m.clone()),
            Self::Suspended(m) => Self::Suspended(m.clone()),
            Self::Forbidden(m) => Self::Forbidden(m.clone()),
            Self::TooMany(m) => Self::TooMany(m.clone()),
            Self::Unavailable(m) => Self::Unavailable(m.clone()),
            Self::Database(e) => Self::Internal(format!("database error: {e}")),
            Self::Internal(m) => Self::Internal(m.clone()),
        }
    }
}

/// A lost connection (the server shut down, restarted or failed over, or the socket broke) makes
/// the database unavailable, and the request worth retrying; a NUL in text is the client's error;
/// any other error is the statement's.
impl From<diesel::result::Error> for DomainError {
    fn from(err: diesel::result::Error) -> Self {
        if is_connection_loss(&err) {
            return Self::Unavailable(err.to_string());
        }
        // PostgreSQL text cannot hold U+0000 (SQLSTATE 22021): whatever field brought one, it
        // came from a client, so it is that client's error, not the server's.
        if let diesel::result::Error::DatabaseError(_, info) = &err {
            if is_refused_text("", info.message()) {
                return Self::Invalid("text must not contain NUL (\\u0000) characters".into());
            }
        }
        Self::Database(err)
    }
}

/// What PostgreSQL and the drivers say when a connection is lost rather than a statement failed:
/// `57P01`-`57P05` (shutdown, crash, not accepting connections, idle timeouts, all "terminating
/// connection …" or "the database system is …"), and the drivers' closed-socket errors.
const LOST: &[&str] = &[
    "terminating connection",
    "the database system is",
    "server closed the connection",
    "connection closed",
    "error communicating with the server",
    "channel closed",
];

/// Whether a diesel error means the connection was lost (see [`LOST`]). diesel-async reports a
/// driver error without a SQLSTATE as `UnableToSendCommand`; it also does so for (de)serialising
/// failures, which are the statement's fault, hence the look at the message.
pub fn is_connection_loss(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match err {
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => true,
        Error::DatabaseError(_, info) => {
            let message = info.message();
            LOST.iter().any(|l| message.contains(l))
        }
        _ => false,
    }
}

/// [`is_connection_loss`] for errors of the raw `tokio_postgres` client: closed, an I/O error,
/// or SQLSTATE class 08 (connection exception) or 57P (operator intervention).
pub fn is_pg_connection_loss(err: &tokio_postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    if let Some(code) = err.code() {
        let code = code.code();
        return code.starts_with("08") || code.starts_with("57P");
    }
    let message = err.to_string();
    LOST.iter().any(|l| message.contains(l))
}

/// An error of the raw `tokio_postgres` client: unavailable when the connection was lost (the
/// server shutting down, say), else the statement's own fault, named by `what`.
pub fn pg_error(what: &str, e: tokio_postgres::Error) -> DomainError {
    if is_pg_connection_loss(&e) {
        DomainError::Unavailable(e.to_string())
    } else if e
        .as_db_error()
        .is_some_and(|db| is_refused_text(db.code().code(), db.message()))
    {
        DomainError::invalid("text must not contain NUL (\\u0000) characters")
    } else {
        DomainError::internal(format!("{what}: {e}"))
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for DomainError {
    fn from(err: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

pub type DomainResult<T> = Result<T, DomainError>;

/// SQLSTATE 22021 (`character_not_in_repertoire`: a NUL in text) and 22P05
/// (`untranslatable_character`: `\u0000` in jsonb).
pub fn is_refused_text(sqlstate: &str, message: &str) -> bool {
    sqlstate == "22021"
        || sqlstate == "22P05"
        || message.contains("invalid byte sequence for encoding \"UTF8\": 0x00")
        || message.contains("unsupported Unicode escape sequence")
}
