//! Keeps the monthly partitions of the partitioned tables ([`postback_domain::store::partitions`])
//! created ahead of time: at start and then every `interval`, the current month and the next
//! [`MONTHS_AHEAD`](postback_domain::store::partitions::MONTHS_AHEAD) exist, so rows never land
//! in a default partition for want of their month. Any number of instances may run it: creating
//! a partition that exists is a no-op.

use std::time::Duration;

use postback_domain::store::db::DbPool;
use postback_domain::store::partitions;

/// How often partitions are checked.
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// Starts the job on the current Tokio runtime.
pub fn start(pool: DbPool, interval: Duration) {
    tokio::spawn(async move {
        loop {
            run_once(&pool).await;
            tokio::time::sleep(interval).await;
        }
    });
}

/// One check; returns how many partitions it created (`None`: it failed, logged, retried at the
/// next interval).
pub async fn run_once(pool: &DbPool) -> Option<i32> {
    let now = chrono::Utc::now();
    let result = match postback_domain::store::db::conn(pool).await {
        Ok(mut conn) => partitions::ensure(&mut conn, now, now).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(created) => {
            if created > 0 {
                tracing::info!(created, "monthly partitions created ahead");
            }
            Some(created)
        }
        Err(e) => {
            tracing::warn!(error = %e, "creating monthly partitions failed; retrying later");
            None
        }
    }
}
