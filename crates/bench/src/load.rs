//! The load: N tasks, each with its own keep-alive connection, sending one request at a time
//! until the deadline (a unique inbound event, or a tracking-link click). A request counts in the measured window when it *completes* inside
//! it, so the window is exactly `--seconds` long; no request starts after the deadline, and the
//! few still in flight then are waited for (their 200s count for the database check only).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::http;

/// How long a request still in flight at the deadline may take to finish.
const GRACE: Duration = Duration::from_secs(30);
/// Highest latency the histogram tracks (larger values are clamped), in microseconds.
const MAX_LATENCY_US: u64 = 120_000_000;

/// What each request is.
pub enum Request {
    /// `POST /__cc/inbound` with a unique purchase, under this key; 200 is success.
    Inbound { key: String },
    /// `GET` of this tracking-link path (with a query); 302 is success.
    Go { path: String },
}

pub struct Plan {
    pub addr: SocketAddr,
    pub host: String,
    pub request: Request,
    pub run_id: String,
    pub connections: usize,
    pub measure_from: Instant,
    pub deadline: Instant,
    /// Keep each 200's `eventId` and when it arrived (for `--webhook`'s end-to-end times).
    pub track_accepted: bool,
    /// Each connection sends at most one request per this interval (None: back to back).
    pub pace: Option<Duration>,
    /// Running counts, for `--sample-seconds`.
    pub progress: Arc<Progress>,
}

/// Answers so far, over the whole run, readable while the load runs.
#[derive(Default)]
pub struct Progress {
    /// Success answers (200, or 302 for `go`).
    pub ok: AtomicU64,
    /// Other answers and transport errors.
    pub errors: AtomicU64,
}

/// What the connections saw. Errors are counted over the whole run, warm-up included.
pub struct Tally {
    /// Latency in microseconds of every request completed in the measured window.
    pub latency_us: Histogram<u64>,
    /// 200 answers completed in the measured window.
    pub measured_ok: u64,
    /// All 200 answers, warm-up and stragglers included: what the database must hold.
    pub total_ok: u64,
    /// Non-200 answers by status.
    pub errors_by_status: BTreeMap<u16, u64>,
    /// Failed connects, broken connections, unreadable answers, timeouts.
    pub transport_errors: u64,
    /// Requests sent whose answer never came: the server may or may not have stored them.
    pub unknown_outcome: u64,
    /// (eventId, when its 200 arrived), with `track_accepted`.
    pub accepted_at: Vec<(u128, Instant)>,
    /// 200 answers whose body had no readable `eventId`, with `track_accepted` (should be none).
    pub ok_without_event_id: u64,
}

impl Tally {
    fn new() -> Result<Self> {
        Ok(Self {
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .context("latency histogram")?,
            measured_ok: 0,
            total_ok: 0,
            errors_by_status: BTreeMap::new(),
            transport_errors: 0,
            unknown_outcome: 0,
            accepted_at: Vec::new(),
            ok_without_event_id: 0,
        })
    }

    fn merge(&mut self, other: Tally) -> Result<()> {
        self.latency_us
            .add(&other.latency_us)
            .context("merging latency histograms")?;
        self.measured_ok += other.measured_ok;
        self.total_ok += other.total_ok;
        for (status, n) in other.errors_by_status {
            *self.errors_by_status.entry(status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        self.unknown_outcome += other.unknown_outcome;
        self.accepted_at.extend(other.accepted_at);
        self.ok_without_event_id += other.ok_without_event_id;
        Ok(())
    }
}

/// Runs the load and returns the merged tally.
pub async fn run(plan: Plan) -> Result<Tally> {
    let plan = Arc::new(plan);
    let tasks: Vec<_> = (0..plan.connections)
        .map(|i| tokio::spawn(connection(plan.clone(), i)))
        .collect();
    let mut all = Tally::new()?;
    for task in tasks {
        all.merge(task.await.context("a load task failed")??)?;
    }
    Ok(all)
}

/// A small xorshift generator: varied but reproducible bodies without a shared RNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const FIRST_NAMES: [&str; 8] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
];
const LAST_NAMES: [&str; 8] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
];

/// A seed-000 purchase: a customer from a pool of 50,000 (so some buy again), a price between
/// 5.00 and 499.99, and an orderId nobody else uses.
fn event_body(rng: &mut Rng, run_id: &str, conn: usize, n: u64) -> String {
    let customer = rng.next() % 50_000;
    let cents = 500 + rng.next() % 49_500;
    let first = FIRST_NAMES[(customer % 8) as usize];
    let last = LAST_NAMES[(customer / 8 % 8) as usize];
    format!(
        r#"{{"email":"customer-{customer}@example.com","event":"purchase","value":{}.{:02},"currency":"USD","orderId":"ORD-{run_id}-{conn}-{n}","firstName":"{first}","lastName":"{last}"}}"#,
        cents / 100,
        cents % 100
    )
}

async fn connection(plan: Arc<Plan>, index: usize) -> Result<Tally> {
    let mut tally = Tally::new()?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((index as u64 + 1) << 20));
    let mut conn: Option<http::Connection> = None;
    let mut n: u64 = 0;
    let mut next_send = Instant::now();
    while Instant::now() < plan.deadline {
        if let Some(pace) = plan.pace {
            tokio::time::sleep_until(next_send.min(plan.deadline)).await;
            next_send += pace;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match tokio::time::timeout_at(plan.deadline, http::Connection::open(plan.addr))
                .await
            {
                Ok(Ok(c)) => conn.insert(c),
                Ok(Err(_)) => {
                    plan.progress.errors.fetch_add(1, Ordering::Relaxed);
                    tally.transport_errors += 1;
                    let pause = Instant::now() + Duration::from_millis(10);
                    tokio::time::sleep_until(pause.min(plan.deadline)).await;
                    continue;
                }
                Err(_) => break,
            },
        };
        n += 1;
        let (answer, ok_status) = match &plan.request {
            Request::Inbound { key } => {
                let body = event_body(&mut rng, &plan.run_id, index, n);
                let sent = Instant::now();
                let answer = tokio::time::timeout_at(
                    plan.deadline.max(sent) + GRACE,
                    c.post_json(
                        "/__cc/inbound",
                        &plan.host,
                        key,
                        body.as_bytes(),
                        plan.track_accepted,
                    ),
                )
                .await;
                ((answer, sent), 200)
            }
            Request::Go { path } => {
                let sent = Instant::now();
                let answer = tokio::time::timeout_at(
                    plan.deadline.max(sent) + GRACE,
                    c.get(path, &plan.host),
                )
                .await;
                ((answer, sent), 302)
            }
        };
        let (answer, sent) = answer;
        let done = Instant::now();
        let in_window = done >= plan.measure_from && done <= plan.deadline;
        match answer {
            Ok(Ok(http::Answer { status, event_id })) => {
                if in_window {
                    let us = u64::try_from((done - sent).as_micros()).unwrap_or(u64::MAX);
                    tally.latency_us.saturating_record(us.max(1));
                }
                if status == ok_status {
                    plan.progress.ok.fetch_add(1, Ordering::Relaxed);
                    tally.total_ok += 1;
                    if plan.track_accepted {
                        match event_id {
                            Some(id) => tally.accepted_at.push((id, done)),
                            None => tally.ok_without_event_id += 1,
                        }
                    }
                    if in_window {
                        tally.measured_ok += 1;
                    }
                } else {
                    plan.progress.errors.fetch_add(1, Ordering::Relaxed);
                    *tally.errors_by_status.entry(status).or_default() += 1;
                }
            }
            Ok(Err(_)) | Err(_) => {
                plan.progress.errors.fetch_add(1, Ordering::Relaxed);
                tally.transport_errors += 1;
                tally.unknown_outcome += 1;
                conn = None;
            }
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_with_unique_order_ids() {
        let mut rng = Rng(42);
        let a: serde_json::Value =
            serde_json::from_str(&event_body(&mut rng, "r", 3, 1)).expect("valid JSON");
        let b: serde_json::Value =
            serde_json::from_str(&event_body(&mut rng, "r", 3, 2)).expect("valid JSON");
        assert_ne!(a["orderId"], b["orderId"]);
        assert_eq!(a["event"], "purchase");
        let value = a["value"].as_f64().expect("a number");
        assert!((5.0..500.0).contains(&value));
    }
}
