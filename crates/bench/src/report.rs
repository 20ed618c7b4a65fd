//! The result of a run, for people (plain text) and for scripts (`--json`).

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::load::Tally;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `inbound` or `go`.
    pub mode: &'static str,
    /// `nproc`: cores this process may use.
    pub cores: usize,
    pub memory_total_mib: Option<u64>,
    pub connections: u32,
    pub warmup_seconds: u64,
    pub seconds: u64,
    /// 200 answers completed in the measured window.
    pub accepted: u64,
    pub accepted_per_second: f64,
    /// Requests (any answer) completed in the measured window.
    pub requests_measured: u64,
    pub latency_ms: Latency,
    /// Non-200 answers by status, over the whole run.
    pub errors_by_status: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    /// Server memory at the end of the load, when the bench started the server.
    pub server: Option<ServerMemory>,
    pub verification: Verification,
    /// With `--webhook`: what the receiver got.
    pub webhook: Option<crate::webhook::Figures>,
    /// With `--platform`: what the fake Meta API got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<crate::webhook::Figures>,
    /// With `--sample-seconds`: the samples taken during the load.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<crate::sample::Sample>,
    /// With `--sample-seconds` and 600 measured seconds or more: the first and last windows
    /// compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<crate::sample::Soak>,
    /// The PostgreSQL the run used and its settings, when the bench could ask it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<crate::db::ServerSettings>,
    /// How the bench's server reached PostgreSQL: `direct`, or through the pooler with
    /// `--pooler-url`. None with `--url` (not known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pooler: Option<&'static str>,
}

#[derive(Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerMemory {
    pub rss_kib: Option<u64>,
    pub peak_rss_kib: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum Verification {
    /// The database holds exactly the events answered 200 (warm-up included).
    Exact { stored: u64 },
    Mismatch {
        stored: u64,
        answered_200: u64,
        /// Requests whose answer never arrived: they may or may not be stored.
        unknown_outcome: u64,
    },
    /// No access to the server's database.
    Skipped,
}

fn total_memory_mib() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Report {
    pub fn new(
        mode: &'static str,
        connections: u32,
        warmup_seconds: u64,
        seconds: u64,
        tally: &Tally,
        memory: Option<(Option<u64>, Option<u64>)>,
        verification: Verification,
    ) -> Self {
        let h = &tally.latency_us;
        Self {
            mode,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_total_mib: total_memory_mib(),
            connections,
            warmup_seconds,
            seconds,
            accepted: tally.measured_ok,
            accepted_per_second: tally.measured_ok as f64 / seconds as f64,
            requests_measured: h.len(),
            latency_ms: Latency {
                p50: ms(h.value_at_quantile(0.50)),
                p95: ms(h.value_at_quantile(0.95)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
            },
            errors_by_status: tally.errors_by_status.clone(),
            transport_errors: tally.transport_errors,
            server: memory.map(|(rss_kib, peak_rss_kib)| ServerMemory {
                rss_kib,
                peak_rss_kib,
            }),
            verification,
            webhook: None,
            platform: None,
            samples: Vec::new(),
            soak: None,
            database: None,
            pooler: None,
        }
    }

    /// What the database check counts, and the status each of them must have got.
    fn stored_and_status(&self) -> (&'static str, u16) {
        if self.mode == "go" {
            ("clicks (touches)", 302)
        } else {
            ("events", 200)
        }
    }

    fn errors(&self) -> u64 {
        self.errors_by_status.values().sum::<u64>() + self.transport_errors
    }

    pub fn print(&self) {
        let memory = self
            .memory_total_mib
            .map(|m| format!(", {:.1} GiB RAM", m as f64 / 1024.0))
            .unwrap_or_default();
        println!("machine:      {} cores (nproc){memory}", self.cores);
        if let Some(db) = &self.database {
            println!("postgresql:   {} ({})", db.version, db.server);
            let settings: Vec<String> = db
                .settings
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            println!("settings:     {}", settings.join(", "));
        }
        if let Some(database) = self.pooler {
            println!("pooler:       {database}");
        }
        println!(
            "load:         {} connection(s), {} s warm-up, {} s measured",
            self.connections, self.warmup_seconds, self.seconds
        );
        println!(
            "{}{} in {} s = {:.0}/s",
            if self.mode == "go" {
                "redirects:    "
            } else {
                "accepted:     "
            },
            self.accepted,
            self.seconds,
            self.accepted_per_second
        );
        let l = &self.latency_ms;
        println!(
            "latency:      p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} requests)",
            l.p50, l.p95, l.p99, l.max, self.requests_measured
        );
        let by_status: Vec<String> = self
            .errors_by_status
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        println!(
            "errors:       {} ({} by status{}{}, {} transport)",
            self.errors(),
            self.errors_by_status.values().sum::<u64>(),
            if by_status.is_empty() { "" } else { " — " },
            by_status.join(", "),
            self.transport_errors
        );
        if let Some(summary) = crate::sample::summary(&self.samples) {
            println!("samples:      {summary}");
        }
        if let Some(m) = &self.server {
            let mib =
                |k: Option<u64>| k.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
            println!(
                "server RSS:   {} (peak {})",
                mib(m.rss_kib),
                mib(m.peak_rss_kib)
            );
        }
        match &self.verification {
            Verification::Exact { stored } => {
                let (what, status) = self.stored_and_status();
                println!("verified: database holds exactly {stored} {what} that got a {status}");
            }
            Verification::Mismatch {
                stored,
                answered_200,
                unknown_outcome,
            } => {
                let (what, status) = self.stored_and_status();
                println!(
                    "!!! MISMATCH: {answered_200} requests got a {status} but the database holds {stored} {what} ({unknown_outcome} requests got no answer) !!!"
                );
            }
            Verification::Skipped => {
                println!("not verified: no access to the server's database");
            }
        }
        for w in self.webhook.iter().chain(&self.platform) {
            w.print();
        }
        for line in self.soak.iter().flat_map(crate::sample::Soak::lines) {
            println!("{line}");
        }
    }

    /// Fails the run on a verification mismatch or on any error.
    pub fn check(&self) -> Result<()> {
        if let Verification::Mismatch {
            stored,
            answered_200,
            ..
        } = self.verification
        {
            let (what, status) = self.stored_and_status();
            bail!("MISMATCH: {answered_200} requests got a {status}, the database holds {stored} {what}");
        }
        if self.errors() > 0 {
            bail!("{} requests failed", self.errors());
        }
        for w in self.webhook.iter().chain(&self.platform) {
            w.check()?;
        }
        Ok(())
    }
}
