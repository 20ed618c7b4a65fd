//! A fixed-window request counter per key (client IP, access token), in memory: each instance
//! limits on its own.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter<K> {
    windows: Mutex<HashMap<K, (Instant, u32)>>,
    limit: u32,
    window: Duration,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    /// Requests allowed per window.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            windows: Mutex::new(HashMap::new()),
            limit,
            window,
        }
    }

    /// Counts a request; Err with the seconds to wait when the key is over its limit.
    pub fn check(&self, key: K) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut windows) = self.windows.lock() else {
            return Ok(());
        };
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = windows.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > self.limit {
            Err((self.window - now.duration_since(entry.0)).as_secs().max(1))
        } else {
            Ok(())
        }
    }

    /// Seconds to wait when the key has already used its budget in the current window (does not
    /// count anything).
    pub fn exceeded(&self, key: K) -> Option<u64> {
        let now = Instant::now();
        let windows = self.windows.lock().ok()?;
        let (start, n) = windows.get(&key)?;
        let elapsed = now.duration_since(*start);
        (elapsed < self.window && *n >= self.limit)
            .then(|| (self.window - elapsed).as_secs().max(1))
    }

    /// Counts one use without checking (e.g. a failed log-in).
    pub fn record(&self, key: K) {
        let _ = self.check(key);
    }
}
