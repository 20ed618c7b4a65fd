//! `--sample-seconds N`: while the load runs, a line every N seconds with the success answers
//! per second in that interval, errors so far, the server's resident memory and (with database
//! access) the workspace's deliveries still pending. A soak run (`--seconds 600`) shows with it
//! whether memory stays flat and the queue keeps up, not only the averages at the end.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use tokio::time::Instant;

use crate::load::Progress;

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the load started (warm-up included).
    pub elapsed_s: f64,
    /// Success answers per second over the interval that ends here.
    pub ok_per_s: f64,
    /// Error answers and transport errors since the start.
    pub errors: u64,
    /// The server's VmRSS, when the bench started it.
    pub rss_mib: Option<f64>,
    /// The workspace's deliveries in status `pending`, with database access and `--webhook`.
    pub pending_deliveries: Option<u64>,
}

pub struct Sampler {
    pub every: Duration,
    pub progress: Arc<Progress>,
    pub pid: Option<u32>,
    /// (database URL, workspace id) when the queue should be read.
    pub queue: Option<(String, String)>,
}

impl Sampler {
    /// Samples until `until`, printing each line to stderr as it is taken.
    pub async fn run(self, until: Instant) -> Result<Vec<Sample>> {
        let start = Instant::now();
        let mut out = Vec::new();
        let mut last_ok = 0u64;
        let mut last_at = start;
        let mut next = start + self.every;
        eprintln!("sample: elapsed_s  ok/s  errors  rss_mib  pending_deliveries");
        while next <= until {
            tokio::time::sleep_until(next).await;
            let now = Instant::now();
            let ok = self.progress.ok.load(Ordering::Relaxed);
            let errors = self.progress.errors.load(Ordering::Relaxed);
            let interval = (now - last_at).as_secs_f64().max(1e-9);
            let rss_mib = self
                .pid
                .and_then(|pid| crate::server::memory_kib(pid).0)
                .map(|kib| kib as f64 / 1024.0);
            let pending_deliveries = match &self.queue {
                Some((url, workspace)) => Some(crate::db::count_pending(url, workspace).await?),
                None => None,
            };
            let sample = Sample {
                elapsed_s: (now - start).as_secs_f64(),
                ok_per_s: (ok - last_ok) as f64 / interval,
                errors,
                rss_mib,
                pending_deliveries,
            };
            eprintln!(
                "sample: {:>8.0}  {:>6.0}  {:>6}  {:>7}  {:>8}",
                sample.elapsed_s,
                sample.ok_per_s,
                sample.errors,
                sample.rss_mib.map_or("-".into(), |m| format!("{m:.1}")),
                sample
                    .pending_deliveries
                    .map_or("-".into(), |p| p.to_string()),
            );
            out.push(sample);
            last_ok = ok;
            last_at = now;
            next += self.every;
        }
        Ok(out)
    }
}

/// One line over all samples: the rate's range, RSS at the first and last sample and its
/// highest, and the longest pending queue.
pub fn summary(samples: &[Sample]) -> Option<String> {
    let first = samples.first()?;
    let last = samples.last()?;
    let rates = samples.iter().map(|s| s.ok_per_s);
    let min = rates.clone().fold(f64::INFINITY, f64::min);
    let max = rates.fold(0.0, f64::max);
    let mut out = format!(
        "{} over {:.0} s: {min:.0}–{max:.0} ok/s per interval",
        samples.len(),
        last.elapsed_s
    );
    if let (Some(a), Some(b)) = (first.rss_mib, last.rss_mib) {
        let peak = samples.iter().filter_map(|s| s.rss_mib).fold(0.0, f64::max);
        out += &format!(", RSS {a:.1} → {b:.1} MiB (highest {peak:.1})");
    }
    if let Some(longest) = samples.iter().filter_map(|s| s.pending_deliveries).max() {
        out += &format!(", longest pending queue {longest}");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(elapsed_s: f64, ok_per_s: f64, rss: f64, pending: u64) -> Sample {
        Sample {
            elapsed_s,
            ok_per_s,
            errors: 0,
            rss_mib: Some(rss),
            pending_deliveries: Some(pending),
        }
    }

    #[test]
    fn the_summary_gives_ranges_and_memory_at_both_ends() {
        assert_eq!(summary(&[]), None);
        let line = summary(&[
            sample(30.0, 4000.0, 40.0, 3),
            sample(60.0, 5000.0, 52.5, 17),
            sample(90.0, 4500.0, 41.0, 0),
        ])
        .expect("a summary");
        assert_eq!(
            line,
            "3 over 90 s: 4000–5000 ok/s per interval, RSS 40.0 → 41.0 MiB (highest 52.5), \
             longest pending queue 17"
        );
    }
}
