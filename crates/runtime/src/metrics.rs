//! The counters and histograms behind `GET /metrics`, and their Prometheus text exposition.
//!
//! Counters and histograms live in one [`Metrics`] per server (in [`crate::AppState`]), fed by
//! the API's HTTP middleware, the inbound handler, the delivery worker and the retention job.
//! The queue and pool gauges are read at scrape time, so they are never stale. Every label takes
//! a value from a short fixed set (routes are the matched patterns such as `/v1/domains/{id}`,
//! never raw paths), and no label carries tenant data, which is why the endpoint needs no
//! authentication.

use std::time::Duration;

use diesel::sql_types::{BigInt, Double, Text};
use diesel_async::RunQueryDsl;
use postback_domain::store::db::DbPool;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// What became of one `POST /__cc/inbound` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundOutcome {
    Accepted,
    Duplicate,
    InvalidKey,
    Suspended,
    Quota,
    /// A client error: malformed body, too large, wrong media type (400/413/415).
    BadRequest,
    /// 503: the database or the ingest queue is away.
    Unavailable,
    /// Anything else (500).
    Error,
}

impl InboundOutcome {
    pub const ALL: [InboundOutcome; 8] = [
        Self::Accepted,
        Self::Duplicate,
        Self::InvalidKey,
        Self::Suspended,
        Self::Quota,
        Self::BadRequest,
        Self::Unavailable,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::InvalidKey => "invalid_key",
            Self::Suspended => "suspended",
            Self::Quota => "quota",
            Self::BadRequest => "bad_request",
            Self::Unavailable => "unavailable",
            Self::Error => "error",
        }
    }
}

/// Delivery targets, the values of the `target` label: `webhook` and every registered platform.
pub fn delivery_targets() -> impl Iterator<Item = &'static str> {
    std::iter::once("webhook").chain(
        postback_domain::platforms::Platform::ALL
            .iter()
            .map(|p| p.as_str()),
    )
}

/// What became of one delivery attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Succeeded,
    /// Failed, another attempt is scheduled.
    Retry,
    /// Failed for good (refused, or the retry schedule is used up).
    Failed,
}

impl DeliveryOutcome {
    pub const ALL: [DeliveryOutcome; 3] = [Self::Succeeded, Self::Retry, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Retry => "retry",
            Self::Failed => "failed",
        }
    }
}

/// The process's counters and histograms (one per server, so tests' servers never share them).
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    inbound_events: IntCounterVec,
    deliveries: IntCounterVec,
    delivery_duration: HistogramVec,
    retention_passes: IntCounterVec,
    retention_deleted: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let http_requests = IntCounterVec::new(
            Opts::new(
                "postback_http_requests_total",
                "HTTP requests answered, by method, matched route pattern and status.",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "postback_http_request_duration_seconds",
                "Time to produce the response, by method and matched route pattern.",
            ),
            &["method", "route"],
        )
        .expect("valid metric");
        let inbound_events = IntCounterVec::new(
            Opts::new(
                "postback_inbound_events_total",
                "Inbound conversion events, by outcome (accepted, duplicate or the refusal).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let deliveries = IntCounterVec::new(
            Opts::new(
                "postback_deliveries_total",
                "Delivery attempts, by target and outcome (succeeded, retry, failed).",
            ),
            &["target", "outcome"],
        )
        .expect("valid metric");
        let delivery_duration = HistogramVec::new(
            HistogramOpts::new(
                "postback_delivery_duration_seconds",
                "HTTP time of a delivery attempt, by target.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["target"],
        )
        .expect("valid metric");

        let retention_passes = IntCounterVec::new(
            Opts::new(
                "postback_retention_passes_total",
                "Retention passes, by result (ok, failed).",
            ),
            &["result"],
        )
        .expect("valid metric");
        let retention_deleted = IntCounterVec::new(
            Opts::new(
                "postback_retention_deleted_total",
                "Rows the retention job deleted, by kind (events, touches).",
            ),
            &["kind"],
        )
        .expect("valid metric");
        for r in ["ok", "failed"] {
            retention_passes.with_label_values(&[r]);
        }
        for k in ["events", "touches"] {
            retention_deleted.with_label_values(&[k]);
        }

        // Every known series exists from the start, at zero, so rates work from the first scrape.
        for outcome in InboundOutcome::ALL {
            inbound_events.with_label_values(&[outcome.as_str()]);
        }
        for target in delivery_targets() {
            for outcome in DeliveryOutcome::ALL {
                deliveries.with_label_values(&[target, outcome.as_str()]);
            }
        }

        let registry = Registry::new();
        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(inbound_events.clone()),
            Box::new(deliveries.clone()),
            Box::new(delivery_duration.clone()),
            Box::new(retention_passes.clone()),
            Box::new(retention_deleted.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Self {
            registry,
            http_requests,
            http_duration,
            inbound_events,
            deliveries,
            delivery_duration,
            retention_passes,
            retention_deleted,
        }
    }

    /// One retention pass: what it deleted, or None when it failed.
    pub fn retention(&self, purged: Option<postback_domain::store::retention::Purged>) {
        match purged {
            Some(p) => {
                self.retention_passes.with_label_values(&["ok"]).inc();
                self.retention_deleted
                    .with_label_values(&["events"])
                    .inc_by(p.events);
                self.retention_deleted
                    .with_label_values(&["touches"])
                    .inc_by(p.touches);
                self.retention_deleted
                    .with_label_values(&["visitors"])
                    .inc_by(p.visitors);
            }
            None => self.retention_passes.with_label_values(&["failed"]).inc(),
        }
    }

    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        self.http_requests
            .with_label_values(&[method, route, status.as_str()])
            .inc();
        self.http_duration
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    pub fn inbound(&self, outcome: InboundOutcome) {
        self.inbound_events
            .with_label_values(&[outcome.as_str()])
            .inc();
    }

    /// One delivery attempt; `http_time` is `None` when nothing was sent.
    pub fn delivery(
        &self,
        target: &'static str,
        outcome: DeliveryOutcome,
        http_time: Option<Duration>,
    ) {
        self.deliveries
            .with_label_values(&[target, outcome.as_str()])
            .inc();
        if let Some(t) = http_time {
            self.delivery_duration
                .with_label_values(&[target])
                .observe(t.as_secs_f64());
        }
    }

    /// The exposition: the counters, then the gauges read now from the pool and the database.
    /// Should the database not answer, the queue gauges are left out rather than shown stale.
    pub async fn render(&self, pool: &DbPool) -> Result<String, prometheus::Error> {
        let mut families = self.registry.gather();
        let scrape = Registry::new();

        let status = pool.status();
        let connections = IntGaugeVec::new(
            Opts::new(
                "postback_db_pool_connections",
                "Database pool connections: in_use, idle, and the pool's max size.",
            ),
            &["state"],
        )?;
        let in_use = status.size.saturating_sub(status.available);
        connections
            .with_label_values(&["in_use"])
            .set(gauge_value(in_use));
        connections
            .with_label_values(&["idle"])
            .set(gauge_value(status.available));
        connections
            .with_label_values(&["max"])
            .set(gauge_value(status.max_size));
        scrape.register(Box::new(connections))?;

        match queue_stats(pool).await {
            Ok(stats) => {
                let depth = IntGaugeVec::new(
                    Opts::new(
                        "postback_delivery_queue_depth",
                        "Deliveries waiting: pending (due or scheduled) and held (paused webhook).",
                    ),
                    &["status"],
                )?;
                depth.with_label_values(&["pending"]).set(stats.pending);
                depth.with_label_values(&["held"]).set(stats.held);
                scrape.register(Box::new(depth))?;
                let oldest = Gauge::new(
                    "postback_delivery_oldest_due_seconds",
                    "How long the longest-waiting due pending delivery has been due (0 when none).",
                )?;
                oldest.set(stats.oldest_due_seconds);
                scrape.register(Box::new(oldest))?;
            }
            Err(e) => tracing::warn!(error = %e, "metrics: reading the delivery queue failed"),
        }

        families.extend(scrape.gather());
        let mut out = Vec::new();
        TextEncoder::new().encode(&families, &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

struct QueueStats {
    pending: i64,
    held: i64,
    oldest_due_seconds: f64,
}

#[derive(diesel::QueryableByName)]
struct StatusCount {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct OldestDue {
    #[diesel(sql_type = Double)]
    seconds: f64,
}

async fn queue_stats(pool: &DbPool) -> postback_domain::DomainResult<QueueStats> {
    let mut conn = postback_domain::store::db::conn(pool).await?;
    let counts: Vec<StatusCount> =
        diesel::sql_query("SELECT status, count(*) AS n FROM delivery_queue GROUP BY status")
            .load(&mut conn)
            .await
            .map_err(postback_domain::DomainError::from)?;
    // Rows in flight (leased) are not waiting.
    let oldest: OldestDue = diesel::sql_query(format!(
        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(d.next_attempt_at)), 0)::float8 AS seconds \
         FROM delivery_queue d WHERE d.status = 'pending' AND d.next_attempt_at <= now() \
           AND {}",
        postback_domain::delivery::queue::UNLEASED
    ))
    .get_result(&mut conn)
    .await
    .map_err(postback_domain::DomainError::from)?;
    let count = |s: &str| {
        counts
            .iter()
            .find(|c| c.status == s)
            .map(|c| c.n)
            .unwrap_or(0)
    };
    Ok(QueueStats {
        pending: count("pending"),
        held: count("held"),
        oldest_due_seconds: oldest.seconds.max(0.0),
    })
}
