//! Log-in throttling that slows guessing without locking the owner out.
//!
//! Failures are counted per (account, client) and per client (an IPv4 address or IPv6 /64; see
//! `client_addr`), and per account from clients that never signed in to it. Past a few failures
//! each further attempt must wait a delay that doubles with every failure, up to [`MAX_DELAY`].
//! The owner's own address is never slowed by anyone else's failures: the per-account count
//! only applies to clients that have not signed in to that account before, and a success from a
//! client clears its count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before delays start, per (account, client).
pub const FREE_FAILURES_PER_ACCOUNT_CLIENT: u32 = 5;
/// Failures allowed before delays start, per client over all accounts (credential stuffing).
pub const FREE_FAILURES_PER_CLIENT: u32 = 30;
/// Failures allowed before delays start, per account from clients it has never signed in from
/// (guessing spread over many addresses).
pub const FREE_FAILURES_PER_ACCOUNT: u32 = 20;
/// The longest delay.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Counts are forgotten after this long without a failure.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// How long a successful sign-in makes its client known to the account.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);
const MAX_ENTRIES: usize = 200_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

#[derive(Default)]
struct Tables {
    account_client: HashMap<(String, String), Failures>,
    client: HashMap<String, Failures>,
    account: HashMap<String, Failures>,
    known: HashMap<(String, String), Instant>,
}

#[derive(Default)]
pub struct LoginThrottle {
    tables: Mutex<Tables>,
}

/// The delay due after `count` failures of which `free` cost nothing: 1 s, 2 s, 4 s … up to
/// [`MAX_DELAY`].
pub fn delay_after(count: u32, free: u32) -> Duration {
    if count < free {
        return Duration::ZERO;
    }
    let doublings = (count - free).min(20);
    Duration::from_secs(1u64 << doublings).min(MAX_DELAY)
}

fn remaining(f: Option<&Failures>, free: u32, now: Instant) -> Option<Duration> {
    let f = f?;
    let until = f.last + delay_after(f.count, free);
    (until > now).then(|| until - now)
}

fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Failures>, key: K, now: Instant) {
    let f = map.entry(key).or_insert(Failures {
        count: 0,
        last: now,
    });
    if now.duration_since(f.last) > FORGET_AFTER {
        f.count = 0;
    }
    f.count += 1;
    f.last = now;
}

impl LoginThrottle {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long this client must wait before trying this account again, if at all.
    pub fn wait(&self, account: &str, client: &str) -> Option<Duration> {
        self.wait_at(account, client, Instant::now())
    }

    fn wait_at(&self, account: &str, client: &str, now: Instant) -> Option<Duration> {
        let t = self.tables();
        let pair = (account.to_owned(), client.to_owned());
        let known = t
            .known
            .get(&pair)
            .is_some_and(|at| now.duration_since(*at) < KNOWN_FOR);
        [
            remaining(
                t.account_client.get(&pair),
                FREE_FAILURES_PER_ACCOUNT_CLIENT,
                now,
            ),
            remaining(t.client.get(client), FREE_FAILURES_PER_CLIENT, now),
            if known {
                None
            } else {
                remaining(t.account.get(account), FREE_FAILURES_PER_ACCOUNT, now)
            },
        ]
        .into_iter()
        .flatten()
        .max()
    }

    /// Counts a failed log-in.
    pub fn failed(&self, account: &str, client: &str) {
        self.failed_at(account, client, Instant::now());
    }

    fn failed_at(&self, account: &str, client: &str, now: Instant) {
        let mut t = self.tables();
        if t.account_client.len() + t.client.len() + t.account.len() > MAX_ENTRIES {
            t.account_client
                .retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            t.client
                .retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            t.account
                .retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        }
        bump(
            &mut t.account_client,
            (account.to_owned(), client.to_owned()),
            now,
        );
        bump(&mut t.client, client.to_owned(), now);
        let known = t
            .known
            .get(&(account.to_owned(), client.to_owned()))
            .is_some_and(|at| now.duration_since(*at) < KNOWN_FOR);
        if !known {
            bump(&mut t.account, account.to_owned(), now);
        }
    }

    /// A successful log-in: this client's count for the account is cleared and the client is
    /// known to the account from now on.
    pub fn succeeded(&self, account: &str, client: &str) {
        self.succeeded_at(account, client, Instant::now());
    }

    fn succeeded_at(&self, account: &str, client: &str, now: Instant) {
        let mut t = self.tables();
        let pair = (account.to_owned(), client.to_owned());
        t.account_client.remove(&pair);
        if t.known.len() > MAX_ENTRIES {
            t.known.retain(|_, at| now.duration_since(*at) < KNOWN_FOR);
        }
        t.known.insert(pair, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_after_the_free_failures_up_to_the_cap() {
        assert_eq!(delay_after(4, 5), Duration::ZERO);
        assert_eq!(delay_after(5, 5), Duration::from_secs(1));
        assert_eq!(delay_after(6, 5), Duration::from_secs(2));
        assert_eq!(delay_after(9, 5), Duration::from_secs(16));
        assert_eq!(delay_after(40, 5), MAX_DELAY);
    }

    #[test]
    fn a_guesser_is_slowed_and_the_owner_from_their_own_address_is_not() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        t.succeeded_at("owner@x", "owner-home", now);
        for _ in 0..200 {
            t.failed_at("owner@x", "attacker", now);
        }
        assert_eq!(
            t.wait_at("owner@x", "attacker", now),
            Some(MAX_DELAY),
            "the guesser waits the longest delay"
        );
        assert_eq!(t.wait_at("owner@x", "owner-home", now), None);
        // Guesses spread over many addresses slow down new addresses, not known ones.
        for i in 0..100 {
            t.failed_at("owner@x", &format!("bot-{i}"), now);
        }
        assert!(t.wait_at("owner@x", "new-place", now).is_some());
        assert_eq!(t.wait_at("owner@x", "owner-home", now), None);
        // The owner's own typos slow only the owner's own address, and a success clears them.
        for _ in 0..6 {
            t.failed_at("owner@x", "owner-home", now);
        }
        assert_eq!(
            t.wait_at("owner@x", "owner-home", now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            t.wait_at("owner@x", "owner-home", now + Duration::from_secs(2)),
            None
        );
        t.succeeded_at("owner@x", "owner-home", now);
        assert_eq!(t.wait_at("owner@x", "owner-home", now), None);
    }
}
