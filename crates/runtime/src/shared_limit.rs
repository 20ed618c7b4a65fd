//! Request budgets shared by every instance, for the anonymous endpoints (`/__cc/collect`,
//! `/__cc/identify`, `/__cc/go`) and sign-up.
//!
//! Counting in PostgreSQL on every request would cost the hot paths a round trip, so each
//! instance counts locally and, every [`FLUSH`], adds what it counted to the shared counters
//! (`postback_domain::store::limits`) in one statement that returns every instance's total. A request is
//! refused when the total last learned plus what this instance counted since reaches the budget:
//! every instance sees the others' requests within one flush, so together they overshoot a budget
//! by at most what they receive in one flush interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use postback_domain::store::db::DbPool;
use postback_domain::store::limits::{self, Hits};

/// How often counts are shared.
pub const FLUSH: Duration = Duration::from_millis(250);
/// Buckets kept in memory at most; past this, ended windows are dropped at once.
const MAX_BUCKETS: usize = 200_000;

/// A budget: requests per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u32,
    pub window: Duration,
}

impl Budget {
    pub const fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug)]
struct Count {
    window_start: DateTime<Utc>,
    window: Duration,
    /// Every instance's hits, as of the last flush (this instance's flushed hits included).
    shared: i64,
    /// This instance's hits since its last flush.
    pending: i64,
}

#[derive(Clone)]
pub struct SharedLimiter {
    counts: Arc<Mutex<HashMap<String, Count>>>,
}

fn window_start(now: DateTime<Utc>, window: Duration) -> DateTime<Utc> {
    let w = window.as_millis().max(1) as i64;
    let ms = now.timestamp_millis();
    Utc.timestamp_millis_opt(ms - ms.rem_euclid(w))
        .single()
        .unwrap_or(now)
}

impl SharedLimiter {
    /// Starts sharing this limiter's counts through `pool`, every [`FLUSH`] (a task on the
    /// current Tokio runtime). Until then it counts in this process only.
    pub fn start(&self, pool: DbPool) {
        let flusher = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut rounds: u64 = 0;
            loop {
                tick.tick().await;
                rounds += 1;
                if let Err(e) = flusher.flush(&pool).await {
                    tracing::warn!(error = %e, "rate limits: could not share counts");
                }
                // Now and then, windows that ended long ago leave the table.
                if rounds.is_multiple_of(240) {
                    if let Ok(mut conn) = postback_domain::store::db::conn(&pool).await {
                        let before = Utc::now() - chrono::Duration::hours(2);
                        let _ = limits::forget_older_than(&mut conn, before, 10_000).await;
                    }
                }
            }
        });
    }

    /// A limiter that counts in this process only, until [`SharedLimiter::start`].
    pub fn local() -> Self {
        Self {
            counts: Arc::default(),
        }
    }

    /// Counts a request in each bucket; `Err(seconds to wait)` when any of them is spent (then
    /// nothing is counted).
    pub fn check(&self, buckets: &[(&str, Budget)]) -> Result<(), u64> {
        self.check_at(buckets, Utc::now())
    }

    fn check_at(&self, buckets: &[(&str, Budget)], now: DateTime<Utc>) -> Result<(), u64> {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if counts.len() > MAX_BUCKETS {
            counts.retain(|_, c| {
                c.window_start + chrono::Duration::from_std(c.window).unwrap_or_default() > now
            });
            // Still too many live buckets (a flood from countless addresses): start over rather
            // than grow; the shared totals stay in PostgreSQL and come back at the next flush.
            if counts.len() > MAX_BUCKETS {
                counts.clear();
            }
        }
        let mut wait: Option<u64> = None;
        for (bucket, budget) in buckets {
            let start = window_start(now, budget.window);
            let c = counts.entry((*bucket).to_owned()).or_insert(Count {
                window_start: start,
                window: budget.window,
                shared: 0,
                pending: 0,
            });
            if c.window_start != start {
                *c = Count {
                    window_start: start,
                    window: budget.window,
                    shared: 0,
                    pending: 0,
                };
            }
            if c.shared + c.pending >= i64::from(budget.limit) {
                let ends = start + chrono::Duration::from_std(budget.window).unwrap_or_default();
                let secs = (ends - now).num_milliseconds().max(0) as u64;
                let secs = secs.div_ceil(1000).max(1);
                wait = Some(wait.map_or(secs, |w| w.max(secs)));
            }
        }
        if let Some(w) = wait {
            return Err(w);
        }
        for (bucket, _) in buckets {
            if let Some(c) = counts.get_mut(*bucket) {
                c.pending += 1;
            }
        }
        Ok(())
    }

    /// Adds this instance's pending hits to the shared counters and learns the totals.
    pub async fn flush(&self, pool: &DbPool) -> postback_domain::DomainResult<()> {
        let hits: Vec<Hits> = {
            let mut counts = self
                .counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            counts
                .iter_mut()
                .filter(|(_, c)| c.pending > 0)
                .map(|(bucket, c)| {
                    let n = c.pending;
                    // Counted as shared at once, so the local view stays whole while the
                    // statement runs.
                    c.shared += n;
                    c.pending = 0;
                    Hits {
                        bucket: bucket.clone(),
                        window_start: c.window_start,
                        hits: i32::try_from(n).unwrap_or(i32::MAX),
                    }
                })
                .collect()
        };
        if hits.is_empty() {
            return Ok(());
        }
        let mut conn = postback_domain::store::db::conn(pool).await?;
        let totals = limits::add(&mut conn, &hits).await?;
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for t in totals {
            if let Some(c) = counts.get_mut(&t.bucket) {
                if c.window_start == t.window_start {
                    c.shared = c.shared.max(i64::from(t.hits));
                }
            }
        }
        Ok(())
    }
}

/// The budgets of the anonymous endpoints (settings `POSTBACK_CLIENT_RATE_LIMIT`,
/// `POSTBACK_SITE_RATE_LIMIT`, `POSTBACK_SIGNUP_RATE_LIMIT`).
#[derive(Debug, Clone, Copy)]
pub struct AnonymousBudgets {
    /// Per client (an IPv4 address or an IPv6 /64), for the tracking reports together and for
    /// clicks.
    pub per_client: Budget,
    /// Per site (tracking reports) and per link (clicks).
    pub per_site: Budget,
    /// Sign-ups per client.
    pub signups: Budget,
}

pub const CLIENT_REQUESTS_PER_MINUTE: u32 = 600;
pub const SITE_REQUESTS_PER_MINUTE: u32 = 60_000;
pub const SIGNUPS_PER_HOUR: u32 = 10;

impl Default for AnonymousBudgets {
    fn default() -> Self {
        Self {
            per_client: Budget::per_minute(CLIENT_REQUESTS_PER_MINUTE),
            per_site: Budget::per_minute(SITE_REQUESTS_PER_MINUTE),
            signups: Budget {
                limit: SIGNUPS_PER_HOUR,
                window: Duration::from_secs(3600),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_bucket_refuses_until_its_window_ends_and_counts_nothing_else() {
        let l = SharedLimiter::local();
        let t0 = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 15).unwrap();
        let client = Budget::per_minute(3);
        let site = Budget::per_minute(100);
        for _ in 0..3 {
            assert!(l.check_at(&[("c", client), ("s", site)], t0).is_ok());
        }
        assert_eq!(l.check_at(&[("c", client), ("s", site)], t0), Err(45));
        // The refused request did not count against the site.
        assert_eq!(l.counts.lock().unwrap()["s"].pending, 3);
        // Another client of the same site is not affected.
        assert!(l.check_at(&[("d", client), ("s", site)], t0).is_ok());
        // The next window starts over.
        let t1 = t0 + chrono::Duration::seconds(45);
        assert!(l.check_at(&[("c", client), ("s", site)], t1).is_ok());
    }
}
