//! `--webhook` and `--platform` figures, one set per receiver: after the load, waits (bounded) until the receiver has seen every
//! accepted event, lets the worker record its last results, then reports deliveries/s in the
//! measured window, end-to-end latency (inbound 200 → arrival at the receiver), the time the
//! queue took to drain after the load stopped, duplicate deliveries (requests minus distinct
//! `webhook-id`s), events never delivered, and the deliveries rows not in status `succeeded`.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use crate::db;
use crate::load::Tally;
use crate::receiver::{Kind, Receiver};
use crate::report::Latency;

/// How long the queue may take to drain after the load before the rest counts as never delivered.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);
/// How long after the last arrival the worker may take to record the results as `succeeded`.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);
/// Highest latency the histogram tracks (larger values are clamped), in microseconds.
const MAX_LATENCY_US: u64 = 600_000_000;

/// The measured window and where to check the deliveries rows.
pub struct Window<'a> {
    pub from: Instant,
    pub deadline: Instant,
    /// The server's database and the bench workspace, if the database is reachable.
    pub db: Option<(&'a str, &'a str)>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    /// Which receiver: "webhook" or "meta".
    pub receiver: &'static str,
    /// Events whose first delivery arrived inside the measured window, per second.
    pub deliveries_per_second: f64,
    /// Inbound 200 → first arrival, for events accepted in the measured window.
    pub latency_ms: Latency,
    /// Events in the latency figures.
    pub latency_events: u64,
    /// From the end of the load until the last accepted event arrived (0 if none was late).
    pub drain_seconds: f64,
    /// Events answered 200 with an `eventId`, warm-up and stragglers included.
    pub accepted: u64,
    /// Of those, how many reached the receiver.
    pub delivered: u64,
    pub never_delivered: u64,
    /// Requests the receiver got, repeats included.
    pub requests: u64,
    /// Events those requests carried, repeats included (one per request for webhooks; a
    /// batched platform request carries many).
    pub events: u64,
    /// Requests per delivered event: 1 when each event has its own request.
    pub requests_per_event: f64,
    pub distinct_webhook_ids: u64,
    /// Events received minus distinct `webhook-id`s (Meta: event ids): the same delivery sent
    /// again.
    pub duplicates: u64,
    /// Requests without a `webhook-id` or an event id (should be none).
    pub unrecognised: u64,
    /// 200 answers without a readable `eventId` (should be none).
    pub ok_without_event_id: u64,
    /// The workspace's rows in `deliveries`, and those not `succeeded`, once settled.
    pub delivery_rows: Option<u64>,
    pub not_succeeded: Option<u64>,
}

/// Waits until every accepted event has arrived (or [`DRAIN_LIMIT`] passed), then until the
/// deliveries rows are all `succeeded` (or [`SETTLE_LIMIT`] passed), and computes the figures.
pub async fn collect(r: &Receiver, tally: &Tally, window: Window<'_>) -> Result<Figures> {
    let limit = Instant::now() + DRAIN_LIMIT;
    loop {
        // The cheap count first; the full check only once it could pass.
        let done = {
            let seen = r.seen();
            seen.first.len() >= tally.accepted_at.len()
                && tally
                    .accepted_at
                    .iter()
                    .all(|(id, _)| seen.first.contains_key(id))
        };
        if done || Instant::now() >= limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut rows = None;
    if let Some((url, workspace_id)) = window.db {
        let settle = Instant::now() + SETTLE_LIMIT;
        loop {
            let counts = db::count_deliveries(url, workspace_id).await?;
            rows = Some(counts);
            if counts.1 == 0 || Instant::now() >= settle {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let seen = r.seen();
    let mut latency: Histogram<u64> =
        Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).context("latency histogram")?;
    let in_window = |at: Instant| at >= window.from && at <= window.deadline;
    let arrived_in_window = seen.first.values().filter(|at| in_window(**at)).count();
    let mut delivered = 0u64;
    let mut last_arrival = window.deadline;
    for (id, ok_at) in &tally.accepted_at {
        let Some(arrived) = seen.first.get(id) else {
            continue;
        };
        delivered += 1;
        last_arrival = last_arrival.max(*arrived);
        if in_window(*ok_at) {
            // A delivery can arrive before the bench has read its 200: that counts as 0.
            let us = arrived.saturating_duration_since(*ok_at).as_micros();
            latency.saturating_record(u64::try_from(us).unwrap_or(u64::MAX).max(1));
        }
    }
    let seconds = window
        .deadline
        .saturating_duration_since(window.from)
        .as_secs_f64()
        .max(1e-9);
    let ms = |us: u64| us as f64 / 1000.0;
    let accepted = tally.accepted_at.len() as u64;
    let distinct_webhook_ids = seen.webhook_ids.len() as u64;
    Ok(Figures {
        receiver: match r.kind {
            Kind::Webhook => "webhook",
            Kind::Meta => "meta",
        },
        deliveries_per_second: arrived_in_window as f64 / seconds,
        latency_ms: Latency {
            p50: ms(latency.value_at_quantile(0.50)),
            p95: ms(latency.value_at_quantile(0.95)),
            p99: ms(latency.value_at_quantile(0.99)),
            max: ms(latency.max()),
        },
        latency_events: latency.len(),
        drain_seconds: last_arrival
            .saturating_duration_since(window.deadline)
            .as_secs_f64(),
        accepted,
        delivered,
        never_delivered: accepted - delivered,
        requests: seen.requests,
        events: seen.events,
        requests_per_event: seen.requests as f64 / (seen.events.max(1) as f64),
        distinct_webhook_ids,
        duplicates: seen.events.saturating_sub(distinct_webhook_ids),
        unrecognised: seen.unrecognised,
        ok_without_event_id: tally.ok_without_event_id,
        delivery_rows: rows.map(|(total, _)| total),
        not_succeeded: rows.map(|(_, n)| n),
    })
}

impl Figures {
    pub fn print(&self) {
        println!(
            "{:<13} {:.0} deliveries/s in the window",
            format!("{}:", self.receiver),
            self.deliveries_per_second
        );
        let l = &self.latency_ms;
        println!(
            "end to end:   inbound 200 → arrival p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} events)",
            l.p50, l.p95, l.p99, l.max, self.latency_events
        );
        println!(
            "drain:        {:.2} s after the load stopped",
            self.drain_seconds
        );
        println!(
            "delivered:    {} of {} accepted events, {} never delivered, {} duplicates ({} requests, {} distinct delivery ids), {} unrecognised",
            self.delivered,
            self.accepted,
            self.never_delivered,
            self.duplicates,
            self.requests,
            self.distinct_webhook_ids,
            self.unrecognised
        );
        println!(
            "requests:     {} carrying {} events: {:.3} requests per event",
            self.requests, self.events, self.requests_per_event
        );
        if self.ok_without_event_id > 0 {
            println!(
                "!!! {} answers 200 had no eventId !!!",
                self.ok_without_event_id
            );
        }
        match (self.delivery_rows, self.not_succeeded) {
            (Some(rows), Some(n)) => {
                println!("deliveries:   {rows} rows in the database, {n} not succeeded")
            }
            _ => println!("deliveries:   not checked: no access to the server's database"),
        }
    }

    /// Fails on any accepted event never delivered, any duplicate delivery, or anything the
    /// bench could not match.
    pub fn check(&self) -> Result<()> {
        if self.never_delivered > 0
            || self.duplicates > 0
            || self.unrecognised > 0
            || self.ok_without_event_id > 0
        {
            bail!(
                "{}: {} accepted events never delivered, {} duplicate deliveries, {} unrecognised deliveries, {} answers 200 without an eventId",
                self.receiver,
                self.never_delivered,
                self.duplicates,
                self.unrecognised,
                self.ok_without_event_id
            );
        }
        Ok(())
    }
}
