//! `--webhook` figures: after the load, waits (bounded) for every accepted event to reach the
//! receiver, then reports delivery throughput, end-to-end latency (inbound 200 → arrival), drain
//! time, and lost or repeated deliveries.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use crate::load::Tally;
use crate::receiver::Receiver;

/// How long the queue may take to drain after the load before the rest counts as lost.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// Deliveries that arrived inside the measured window, per second.
    pub delivered_per_second: f64,
    /// Inbound 200 → arrival, for events accepted in the measured window (ms).
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// From the end of the load until the last delivery arrived.
    pub drain_seconds: f64,
    pub accepted: u64,
    pub delivered: u64,
    pub lost: u64,
    pub repeated: u64,
    pub unrecognised: u64,
}

pub async fn collect(
    r: &Receiver,
    tally: &Tally,
    from: Instant,
    deadline: Instant,
) -> Result<Figures> {
    let wanted = tally.accepted_at.len();
    let limit = Instant::now() + DRAIN_LIMIT;
    while r.snapshot().0 < wanted && Instant::now() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = r.seen.lock().unwrap_or_else(|e| e.into_inner());
    let mut latency: Histogram<u64> =
        Histogram::new_with_bounds(1, 600_000_000, 3).context("latency histogram")?;
    let mut last_arrival = deadline;
    let mut in_window = 0u64;
    for at in seen.first.values() {
        if *at >= from && *at <= deadline {
            in_window += 1;
        }
        last_arrival = last_arrival.max(*at);
    }
    let mut delivered = 0u64;
    for (conn, n, ok_at) in &tally.accepted_at {
        if let Some(arrived) = seen.first.get(&(*conn, *n)) {
            delivered += 1;
            if *ok_at >= from && *ok_at <= deadline {
                let us = arrived.saturating_duration_since(*ok_at).as_micros();
                latency.saturating_record(u64::try_from(us).unwrap_or(u64::MAX).max(1));
            }
        }
    }
    let window = deadline
        .saturating_duration_since(from)
        .as_secs_f64()
        .max(1e-9);
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(Figures {
        delivered_per_second: in_window as f64 / window,
        p50_ms: ms(latency.value_at_quantile(0.50)),
        p95_ms: ms(latency.value_at_quantile(0.95)),
        p99_ms: ms(latency.value_at_quantile(0.99)),
        max_ms: ms(latency.max()),
        drain_seconds: last_arrival
            .saturating_duration_since(deadline)
            .as_secs_f64(),
        accepted: wanted as u64,
        delivered,
        lost: wanted as u64 - delivered,
        repeated: seen.repeats,
        unrecognised: seen.unrecognised,
    })
}

impl Figures {
    pub fn print(&self) {
        println!(
            "webhook:      {:.0} deliveries/s in the window; inbound 200 → arrival p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.delivered_per_second, self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms
        );
        println!(
            "              {} of {} accepted events delivered, {} lost, {} repeated; queue drained {:.2} s after the load",
            self.delivered, self.accepted, self.lost, self.repeated, self.drain_seconds
        );
    }

    pub fn check(&self) -> Result<()> {
        if self.lost > 0 || self.repeated > 0 || self.unrecognised > 0 {
            bail!(
                "webhook: {} lost, {} repeated, {} unrecognised deliveries",
                self.lost,
                self.repeated,
                self.unrecognised
            );
        }
        Ok(())
    }
}
