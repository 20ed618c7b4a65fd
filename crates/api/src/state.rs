//! Shared application state handed to every handler.

use postback_domain::db::{DbConn, DbPool};
use postback_domain::DomainResult;

use crate::ingest::Ingestor;

#[derive(Clone)]
pub struct AppState {
    pub pool: DbPool,
    /// The public base URL, e.g. `https://postback.example.com` (no trailing slash).
    pub base_url: String,
    /// Secure cookies when the base URL is https.
    pub secure_cookies: bool,
    /// Group-commit queue for inbound events.
    pub ingestor: Ingestor,
}

impl AppState {
    /// Builds the state and starts the inbound committers on the current Tokio runtime.
    pub fn new(pool: DbPool, database_url: &str, base_url: &str) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        Self {
            ingestor: Ingestor::start(pool.clone(), database_url),
            pool,
            secure_cookies: base_url.starts_with("https://"),
            base_url,
        }
    }

    pub async fn conn(&self) -> DomainResult<DbConn> {
        postback_domain::db::conn(&self.pool).await
    }
}
