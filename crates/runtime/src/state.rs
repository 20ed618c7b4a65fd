//! Shared application state handed to every handler of the API and the dashboard. Building it
//! starts nothing: the background work it feeds is started by [`crate::start`].

use postback_domain::store::db::{DbConn, DbPool};
use postback_domain::DomainResult;

use crate::delivery::client::Client;
use crate::delivery::{worker, DeliveryConfig};
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
    /// Group-commit queue for tracking-link clicks.
    pub clicks: crate::clicks::ClickWriter,
    pub delivery: DeliveryConfig,
    /// The delivery client, for the Test button (the worker has its own).
    pub http: Client,
    /// Budgets of the anonymous endpoints and sign-up, shared by every instance.
    pub limits: crate::shared_limit::SharedLimiter,
    pub budgets: crate::shared_limit::AnonymousBudgets,
    /// Proxies whose `X-Forwarded-For` names the client (`POSTBACK_TRUSTED_PROXIES`).
    pub trusted_proxies: std::sync::Arc<crate::client_addr::TrustedProxies>,
    /// Per-token limit on `/v1` requests made with a personal access token.
    pub token_limiter: std::sync::Arc<crate::ratelimit::RateLimiter<postback_domain::ids::TokenId>>,
    /// Failed log-ins (see `login_throttle`).
    pub login_throttle: std::sync::Arc<crate::login_throttle::LoginThrottle>,
    /// Throttles of password-reset and verification mails asked for.
    pub mail_throttle: crate::mail::SharedThrottle,
    /// Countries of visitors' addresses, when a GeoIP file is configured.
    pub geoip: Option<std::sync::Arc<postback_domain::tracking::geoip::GeoIp>>,
    /// The delivery worker (started by [`crate::start`], stopped by its handles' shutdown).
    pub worker: worker::Worker,
    /// Counters and histograms for `GET /metrics` (shared with the delivery worker).
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// How often the rollups folder ([`crate::rollups`]) looks for stored events to fold into
    /// the overview's rollups; `None` starts no folder (reads of the overview still fold).
    pub rollups_folding: Option<std::time::Duration>,
    /// The upkeep job's settings ([`crate::upkeep`]: VACUUMs the delivery queue and the rollups'
    /// pending list as they churn); `None` starts no job (autovacuum alone cleans them).
    pub upkeep: Option<crate::upkeep::Settings>,
    /// Where deliveries claimed at insert go: this instance's worker.
    pub(crate) direct: worker::DirectSender,
    /// For the background work's own connections (see [`crate::start`]).
    pub(crate) database_url: String,
    /// Set by the first [`crate::start`], so a second one starts nothing twice.
    pub(crate) started: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Requests per minute one personal access token may make (429 with `Retry-After` beyond).
pub const TOKEN_REQUESTS_PER_MINUTE: u32 = 600;

/// The rollups folder's pause between passes.
pub const ROLLUPS_FOLDING: std::time::Duration = std::time::Duration::from_secs(1);

impl AppState {
    /// Builds the state with the default delivery settings; see [`AppState::with_delivery`].
    pub fn new(pool: DbPool, database_url: &str, base_url: &str) -> Self {
        Self::with_delivery(pool, database_url, base_url, DeliveryConfig::default())
    }

    /// Builds the state; nothing runs until [`crate::start`] (inbound events and clicks wait in
    /// their queues until then).
    pub fn with_delivery(
        pool: DbPool,
        database_url: &str,
        base_url: &str,
        delivery: DeliveryConfig,
    ) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        postback_domain::mail::notify::install_base_url(&base_url);
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
        let (direct, worker) = worker::new(&delivery);
        Self {
            worker,
            direct,
            database_url: database_url.to_owned(),
            started: std::sync::Arc::default(),
            metrics,
            http: Client::new(&delivery),
            limits: crate::shared_limit::SharedLimiter::local(),
            budgets: crate::shared_limit::AnonymousBudgets::default(),
            trusted_proxies: std::sync::Arc::default(),
            token_limiter: std::sync::Arc::new(crate::ratelimit::RateLimiter::new(
                TOKEN_REQUESTS_PER_MINUTE,
                std::time::Duration::from_secs(60),
            )),
            geoip: None,
            rollups_folding: Some(ROLLUPS_FOLDING),
            upkeep: Some(crate::upkeep::Settings::default()),
            login_throttle: std::sync::Arc::default(),
            mail_throttle: Default::default(),
            delivery,
            clicks: crate::clicks::ClickWriter::new(pool.clone()),
            ingestor: Ingestor::new(),
            pool,
            // The scheme as a URL parser reads it: `HTTPS://…` is https too.
            secure_cookies: url::Url::parse(&base_url).is_ok_and(|u| u.scheme() == "https"),
            base_url,
        }
    }

    pub async fn conn(&self) -> DomainResult<DbConn> {
        postback_domain::store::db::conn(&self.pool).await
    }
}
