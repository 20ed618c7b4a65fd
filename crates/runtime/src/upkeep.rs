//! The upkeep job: keeps the tables that churn at the event rate small
//! ([`postback_domain::store::churn`]). Every `every` it reads their dead and live row counts and
//! VACUUMs each one past the threshold, instead of leaving them to autovacuum's once-a-minute
//! visit. When a VACUUM could remove nothing (a long transaction elsewhere still sees the dead
//! versions, or the role does not own the table), the job waits twice as long before the next
//! look, up to a minute, so it never spins on a table it cannot clean. Any number of instances
//! may run it: a VACUUM another one has under way is skipped, not waited for.

use std::time::Duration;

use postback_domain::store::churn;
use postback_domain::store::db::DbPool;

/// How often the churning tables are looked at, and the dead row versions that make one due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub every: Duration,
    pub dead: i64,
}

impl Default for Settings {
    /// Every second, from 10,000 dead versions (a second or two of deliveries at full speed;
    /// a few megabytes of queue).
    fn default() -> Self {
        Self {
            every: Duration::from_secs(1),
            dead: 10_000,
        }
    }
}

/// The longest wait between two looks, when vacuuming removes nothing.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// What one look did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// The tables vacuumed.
    pub vacuumed: Vec<String>,
    /// Of those, the ones still past the threshold right after: nothing could be removed.
    pub stuck: Vec<String>,
}

/// Looks in a row that left a table past the threshold before the job says so in the log. One
/// such look can be a false alarm: under load, other sessions report the deletes they made before
/// the VACUUM right after it.
const STUCK_LOOKS_LOGGED: u32 = 3;

/// Starts the job on the current Tokio runtime.
pub fn start(pool: DbPool, settings: Settings) {
    tokio::spawn(async move {
        let mut wait = settings.every;
        let mut stuck_looks = 0;
        loop {
            tokio::time::sleep(wait).await;
            let pass = run_once(&pool, settings.dead).await;
            match &pass {
                Some(p) if !p.stuck.is_empty() => {
                    stuck_looks += 1;
                    if stuck_looks == STUCK_LOOKS_LOGGED {
                        tracing::warn!(
                            tables = ?p.stuck,
                            "upkeep: VACUUM keeps leaving dead rows behind (a long-running \
                             transaction, or a role that does not own the table); looking less \
                             often until it can clean them"
                        );
                    }
                }
                Some(_) => stuck_looks = 0,
                None => {}
            }
            wait = next_wait(wait, settings.every, &pass);
        }
    });
}

/// The wait before the next look: back to `every` after a useful pass, twice the last wait (at
/// most [`MAX_WAIT`]) after one that left a table as dirty as it found it.
fn next_wait(last: Duration, every: Duration, pass: &Option<Pass>) -> Duration {
    match pass {
        Some(p) if !p.stuck.is_empty() => (last * 2).min(MAX_WAIT).max(every),
        _ => every,
    }
}

/// One look: VACUUMs each churning table with `dead` dead versions or more (plus a fifth of its
/// live rows). `None`: the look failed (logged).
pub async fn run_once(pool: &DbPool, dead: i64) -> Option<Pass> {
    let mut conn = match postback_domain::store::db::conn(pool).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "upkeep: no connection; retrying");
            return None;
        }
    };
    let due = match churn::due(&mut conn, dead).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "upkeep: reading the churning tables' counts failed");
            return None;
        }
    };
    let mut pass = Pass::default();
    for table in &due {
        let started = std::time::Instant::now();
        if let Err(e) = churn::vacuum(&mut conn, &table.table).await {
            tracing::warn!(table = %table.table, error = %e, "upkeep: VACUUM failed");
            return None;
        }
        tracing::debug!(
            table = %table.table,
            dead = table.dead,
            ms = started.elapsed().as_millis() as u64,
            "upkeep: vacuumed"
        );
        pass.vacuumed.push(table.table.clone());
    }
    if !pass.vacuumed.is_empty() {
        match churn::due(&mut conn, dead).await {
            Ok(still) => pass.stuck = still.into_iter().map(|c| c.table).collect(),
            Err(e) => tracing::warn!(error = %e, "upkeep: reading the counts again failed"),
        }
    }
    Some(pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_secs(1);

    fn pass(stuck: &[&str]) -> Option<Pass> {
        Some(Pass {
            vacuumed: vec!["delivery_queue".into()],
            stuck: stuck.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn the_job_backs_off_while_vacuum_removes_nothing_and_returns_after() {
        let mut wait = EVERY;
        let mut waits = vec![];
        for _ in 0..8 {
            wait = next_wait(wait, EVERY, &pass(&["delivery_queue"]));
            waits.push(wait.as_secs());
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(next_wait(wait, EVERY, &pass(&[])), EVERY);
        assert_eq!(next_wait(wait, EVERY, &None), EVERY);
        assert_eq!(next_wait(EVERY, EVERY, &Some(Pass::default())), EVERY);
    }
}
