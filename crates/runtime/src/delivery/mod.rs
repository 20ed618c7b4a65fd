//! Outbound delivery: the HTTP client that refuses private targets, request signing, and the
//! worker that drains the queue in PostgreSQL.

pub mod batcher;
pub mod client;
pub mod lookup;
pub mod platform_send;
pub mod signing;
pub mod ssrf;
pub mod worker;

use std::time::Duration;

/// How deliveries are sent; from configuration (`POSTBACK_RETRY_SCHEDULE`,
/// `POSTBACK_DELIVERY_TIMEOUT`, `POSTBACK_ALLOW_PRIVATE_TARGETS`).
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Waits before the 2nd, 3rd, … attempt of a round; a round has one attempt more.
    pub retry_schedule: Vec<Duration>,
    pub timeout: Duration,
    /// How long a claimed delivery stays reserved for the worker that claimed it before another
    /// worker may try it again (`POSTBACK_DELIVERY_LEASE`); None: the timeout plus 30 s. After a
    /// crash, the attempts that were under way are retried once their lease runs out.
    pub lease: Option<Duration>,
    pub allow_private_targets: bool,
    /// How long the circuit breaker stops sending to a webhook whose last
    /// [`postback_domain::delivery::queue::BREAKER_AFTER`] attempts timed out, before probing it.
    pub breaker_pause: Duration,
    /// Where the ad platforms' APIs live.
    pub platform_urls: postback_domain::delivery::queue::PlatformUrls,
    /// How webhook host names are resolved, when a target is saved and when it is sent: the
    /// system resolver (tests hand in a fake; no setting changes it).
    pub lookup: lookup::Lookup,
    /// The operator's OAuth apps at the platforms (`POSTBACK_GOOGLE_CLIENT_ID`, …).
    pub apps: postback_domain::platforms::oauth::Apps,
    /// Access tokens obtained with connections' refresh tokens, shared by every sender.
    pub tokens: std::sync::Arc<platform_send::TokenCache>,
    /// Where the worker's `LISTEN` connection goes (`POSTBACK_LISTEN_DATABASE_URL`): a session
    /// connection past any transaction pooler. None: the database URL.
    pub listen_database_url: Option<String>,
    /// How often platform requests processed later (Google Data Manager) are asked for their
    /// outcome; a request still processing is asked again after twice as long each time.
    pub status_check_interval: Duration,
    /// How long a platform delivery waits for others of its connection to share its request
    /// (`POSTBACK_PLATFORM_BATCH_WINDOW`); zero sends each alone.
    pub batch_window: Duration,
    /// Google Ads API operations per connection and 24 hours (`POSTBACK_GOOGLEADS_DAILY_OPERATIONS`;
    /// basic access allows 15,000); None: no quota (standard access).
    pub googleads_daily_operations: Option<u32>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            retry_schedule: vec![
                Duration::from_secs(2),
                Duration::from_secs(4),
                Duration::from_secs(8),
            ],
            timeout: Duration::from_secs(5),
            lease: None,
            allow_private_targets: false,
            breaker_pause: Duration::from_secs(30),
            platform_urls: Default::default(),
            lookup: lookup::Lookup::system(),
            apps: Default::default(),
            tokens: Default::default(),
            listen_database_url: None,
            status_check_interval: Duration::from_secs(30),
            batch_window: DEFAULT_BATCH_WINDOW,
            googleads_daily_operations: Some(
                postback_domain::platforms::limits::GOOGLE_ADS_BASIC_DAILY_OPERATIONS,
            ),
        }
    }
}

/// How long a platform delivery waits for others of its connection by default.
pub const DEFAULT_BATCH_WINDOW: Duration = Duration::from_millis(20);

/// Parses `2s,4s,8s` / `500ms` / `1m`: a list of durations.
pub fn parse_schedule(raw: &str) -> Result<Vec<Duration>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_duration)
        .collect()
}

/// `5s`, `250ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    let bad = || format!("\"{s}\" is not a duration (e.g. 5s, 250ms, 2m)");
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(
            parse_schedule("2s,4s,8s").expect("ok"),
            vec![
                Duration::from_secs(2),
                Duration::from_secs(4),
                Duration::from_secs(8)
            ]
        );
        assert_eq!(
            parse_schedule("100ms, 1m").expect("ok"),
            vec![Duration::from_millis(100), Duration::from_secs(60)]
        );
        assert!(parse_schedule("2x").is_err());
        assert_eq!(parse_duration("5").expect("ok"), Duration::from_secs(5));
    }
}
