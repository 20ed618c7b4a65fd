//! `--sample-seconds N`: while the load runs, a line every N seconds with the success answers
//! per second in that interval, errors so far, the server's resident memory and (with database
//! access) the workspace's deliveries still pending. A soak run (`--seconds 600`) shows with it
//! whether memory stays flat and the queue keeps up, not only the averages at the end. A run of
//! ten minutes or more also gets a soak summary ([`soak`]): the rates of its first and last
//! windows and their ratio, RSS and the pending queue over the run.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use tokio::time::Instant;

use crate::load::Progress;
use crate::receiver::Arrivals;

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
    /// Success answers since the load started.
    pub ok_total: u64,
    /// With `--webhook`: distinct events arrived at the receiver since the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_arrived_total: Option<u64>,
    /// With `--platform`: distinct events arrived at the fake Meta API since the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_arrived_total: Option<u64>,
}

pub struct Sampler {
    pub every: Duration,
    pub progress: Arc<Progress>,
    pub pid: Option<u32>,
    /// (database URL, workspace id) when the queue should be read.
    pub queue: Option<(String, String)>,
    /// The end of the warm-up: the counts are also read then, where the soak's first window
    /// starts.
    pub measure_from: Instant,
    pub webhook: Option<Arrivals>,
    pub platform: Option<Arrivals>,
}

/// What the sampler saw: the counts at the end of the warm-up, and the samples.
pub struct Sampled {
    pub baseline: Option<Sample>,
    pub samples: Vec<Sample>,
}

impl Sampler {
    /// The counts now, with `ok_per_s` over the interval since (`last_ok`, `last_at`).
    async fn take(&self, start: Instant, last_ok: u64, last_at: Instant) -> Result<Sample> {
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
        Ok(Sample {
            elapsed_s: (now - start).as_secs_f64(),
            ok_per_s: ok.saturating_sub(last_ok) as f64 / interval,
            errors,
            rss_mib,
            pending_deliveries,
            ok_total: ok,
            webhook_arrived_total: self.webhook.as_ref().map(Arrivals::count),
            platform_arrived_total: self.platform.as_ref().map(Arrivals::count),
        })
    }

    /// Samples until `until`, printing each line to stderr as it is taken.
    pub async fn run(self, until: Instant) -> Result<Sampled> {
        let start = Instant::now();
        let mut out = Vec::new();
        let mut baseline = None;
        let mut last_ok = 0u64;
        let mut last_at = start;
        let mut next = start + self.every;
        eprintln!("sample: elapsed_s  ok/s  errors  rss_mib  pending_deliveries");
        while next <= until {
            if baseline.is_none() && self.measure_from <= next {
                tokio::time::sleep_until(self.measure_from).await;
                baseline = Some(self.take(start, last_ok, last_at).await?);
            }
            tokio::time::sleep_until(next).await;
            let sample = self.take(start, last_ok, last_at).await?;
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
            last_ok = sample.ok_total;
            last_at = start + Duration::from_secs_f64(sample.elapsed_s);
            out.push(sample);
            next += self.every;
        }
        Ok(Sampled {
            baseline,
            samples: out,
        })
    }
}

/// Runs this long or longer get a soak summary.
pub const SOAK_MIN_SECONDS: u64 = 600;

/// The first and last windows of a long run, compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Soak {
    /// min(300 s, measured seconds / 4); the windows end at samples, so they are as close to
    /// this as the sample interval allows.
    pub window_seconds: f64,
    pub first: WindowRates,
    pub last: WindowRates,
    /// last / first.
    pub accepted_ratio: Option<f64>,
    pub webhook_ratio: Option<f64>,
    pub platform_ratio: Option<f64>,
    pub rss_mib_first: Option<f64>,
    pub rss_mib_last: Option<f64>,
    pub rss_mib_max: Option<f64>,
    pub pending_max: Option<u64>,
    pub pending_last: Option<u64>,
}

/// Rates over one window, in seconds since the load started.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowRates {
    pub from_s: f64,
    pub to_s: f64,
    pub accepted_per_s: f64,
    /// Events arrived at the webhook receiver per second.
    pub webhook_per_s: Option<f64>,
    /// Events arrived at the fake Meta API per second.
    pub platform_per_s: Option<f64>,
}

fn rates(a: &Sample, b: &Sample) -> WindowRates {
    let secs = (b.elapsed_s - a.elapsed_s).max(1e-9);
    let per_s = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (Some(x), Some(y)) => Some(y.saturating_sub(x) as f64 / secs),
        _ => None,
    };
    WindowRates {
        from_s: a.elapsed_s,
        to_s: b.elapsed_s,
        accepted_per_s: b.ok_total.saturating_sub(a.ok_total) as f64 / secs,
        webhook_per_s: per_s(a.webhook_arrived_total, b.webhook_arrived_total),
        platform_per_s: per_s(a.platform_arrived_total, b.platform_arrived_total),
    }
}

/// The point whose time is closest to `at`.
fn closest(points: &[&Sample], at: f64) -> usize {
    let mut best = 0;
    for (i, p) in points.iter().enumerate() {
        if (p.elapsed_s - at).abs() < (points[best].elapsed_s - at).abs() {
            best = i;
        }
    }
    best
}

/// The soak summary of a run of `seconds` measured seconds (None when shorter than
/// [`SOAK_MIN_SECONDS`] or without samples). The first window starts at the end of the warm-up
/// (`baseline`), the last one ends at the last sample.
pub fn soak(baseline: Option<&Sample>, samples: &[Sample], seconds: u64) -> Option<Soak> {
    if seconds < SOAK_MIN_SECONDS {
        return None;
    }
    let baseline = baseline?;
    let points: Vec<&Sample> = std::iter::once(baseline)
        .chain(samples.iter().filter(|s| s.elapsed_s > baseline.elapsed_s))
        .collect();
    if points.len() < 3 {
        return None;
    }
    let window = (seconds as f64 / 4.0).min(300.0);
    let first_end = 1 + closest(&points[1..], baseline.elapsed_s + window);
    let last = points.len() - 1;
    let last_start = closest(&points[..last], points[last].elapsed_s - window);
    let first = rates(points[0], points[first_end]);
    let last_rates = rates(points[last_start], points[last]);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a),
        _ => None,
    };
    let rss: Vec<f64> = samples.iter().filter_map(|s| s.rss_mib).collect();
    Some(Soak {
        window_seconds: window,
        accepted_ratio: ratio(Some(first.accepted_per_s), Some(last_rates.accepted_per_s)),
        webhook_ratio: ratio(first.webhook_per_s, last_rates.webhook_per_s),
        platform_ratio: ratio(first.platform_per_s, last_rates.platform_per_s),
        first,
        last: last_rates,
        rss_mib_first: rss.first().copied(),
        rss_mib_last: rss.last().copied(),
        rss_mib_max: rss.iter().copied().reduce(f64::max),
        pending_max: samples.iter().filter_map(|s| s.pending_deliveries).max(),
        pending_last: samples.last().and_then(|s| s.pending_deliveries),
    })
}

impl Soak {
    /// Lines for the plain-text report.
    pub fn lines(&self) -> Vec<String> {
        let f1 = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
        let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1} %", v * 100.0));
        let mib = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        let window = |w: &WindowRates| {
            format!(
                "{:.0}–{:.0} s: accepted {:.0}/s, webhook arrived {}/s, platform arrived {}/s",
                w.from_s,
                w.to_s,
                w.accepted_per_s,
                f1(w.webhook_per_s),
                f1(w.platform_per_s)
            )
        };
        vec![
            format!("soak:         windows of {:.0} s", self.window_seconds),
            format!("  first       {}", window(&self.first)),
            format!("  last        {}", window(&self.last)),
            format!(
                "  last/first  accepted {}, webhook {}, platform {}",
                pct(self.accepted_ratio),
                pct(self.webhook_ratio),
                pct(self.platform_ratio)
            ),
            format!(
                "  RSS MiB     first {}, last {}, max {}",
                mib(self.rss_mib_first),
                mib(self.rss_mib_last),
                mib(self.rss_mib_max)
            ),
            format!(
                "  pending     max {}, last {}",
                self.pending_max.map_or("-".into(), |p| p.to_string()),
                self.pending_last.map_or("-".into(), |p| p.to_string())
            ),
        ]
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
            ok_total: 0,
            webhook_arrived_total: None,
            platform_arrived_total: None,
        }
    }

    /// A sample at `t` s with cumulative counts.
    fn at(t: f64, ok: u64, hook: u64, rss: f64, pending: u64) -> Sample {
        Sample {
            ok_total: ok,
            webhook_arrived_total: Some(hook),
            ..sample(t, 0.0, rss, pending)
        }
    }

    #[test]
    fn the_soak_compares_the_first_and_last_windows() {
        // 1,800 s measured after a 3 s warm-up, sampled every 30 s: accepted 1,000/s steady
        // while deliveries slow from 1,000/s to 900/s after 1,500 s.
        let baseline = at(3.0, 3_000, 2_900, 40.0, 0);
        let samples: Vec<Sample> = (1..=60)
            .map(|i| {
                let t = 30.0 * i as f64;
                let hook = if t <= 1500.0 {
                    (t * 1000.0) as u64 - 100
                } else {
                    1_500_000 - 100 + ((t - 1500.0) * 900.0) as u64
                };
                at(t, (t * 1000.0) as u64, hook, 40.0 + i as f64 / 10.0, i % 7)
            })
            .collect();
        assert_eq!(soak(Some(&baseline), &samples, 599), None);
        let s = soak(Some(&baseline), &samples, 1800).expect("a soak summary");
        assert_eq!(s.window_seconds, 300.0);
        assert_eq!((s.first.from_s, s.first.to_s), (3.0, 300.0));
        assert_eq!((s.last.from_s, s.last.to_s), (1500.0, 1800.0));
        assert!((s.first.accepted_per_s - 1000.0).abs() < 1e-9);
        assert!((s.first.webhook_per_s.expect("webhook") - 1000.0).abs() < 1e-9);
        assert!((s.last.webhook_per_s.expect("webhook") - 900.0).abs() < 1e-9);
        assert!((s.accepted_ratio.expect("ratio") - 1.0).abs() < 1e-9);
        assert!((s.webhook_ratio.expect("ratio") - 0.9).abs() < 1e-9);
        assert_eq!(s.platform_ratio, None);
        assert_eq!(
            (s.rss_mib_first, s.rss_mib_last, s.rss_mib_max),
            (Some(40.1), Some(46.0), Some(46.0))
        );
        assert_eq!((s.pending_max, s.pending_last), (Some(6), Some(4)));
    }

    #[test]
    fn a_short_soak_uses_a_quarter_of_its_seconds() {
        let baseline = at(3.0, 0, 0, 40.0, 0);
        let samples: Vec<Sample> = (1..=20)
            .map(|i| at(30.0 * i as f64, 30 * i, 30 * i, 40.0, 0))
            .collect();
        let s = soak(Some(&baseline), &samples, 600).expect("a soak summary");
        assert_eq!(s.window_seconds, 150.0);
        assert_eq!((s.first.from_s, s.first.to_s), (3.0, 150.0));
        assert_eq!((s.last.from_s, s.last.to_s), (450.0, 600.0));
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
