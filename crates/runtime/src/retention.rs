//! The retention job: every `interval`, one pass of [`postback_domain::store::retention::purge`], with
//! a short pause between batches so inbound traffic is never held up. Each pass is logged.

use std::sync::Arc;
use std::time::Duration;

use postback_domain::store::db::DbPool;
use postback_domain::store::retention;

use crate::metrics::Metrics;

/// Pause between two delete batches.
const BETWEEN_BATCHES: Duration = Duration::from_millis(50);

/// Starts the job on the current Tokio runtime; the first pass runs after `first_after`. Each
/// pass is counted in `metrics`.
pub fn start(pool: DbPool, metrics: Arc<Metrics>, interval: Duration, first_after: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(first_after).await;
        loop {
            metrics.retention(run_once(&pool).await);
            tokio::time::sleep(interval).await;
        }
    });
}

/// One logged pass; failures are logged and retried at the next interval.
pub async fn run_once(pool: &DbPool) -> Option<retention::Purged> {
    let started = std::time::Instant::now();
    let result = match postback_domain::store::db::conn(pool).await {
        Ok(mut conn) => {
            retention::purge(&mut conn, chrono::Utc::now(), || {
                Box::pin(tokio::time::sleep(BETWEEN_BATCHES))
            })
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(purged) => {
            tracing::info!(
                events = purged.events,
                touches = purged.touches,
                visitors = purged.visitors,
                partitions = purged.partitions,
                partitions_left = purged.partitions_left,
                ms = started.elapsed().as_millis() as u64,
                "retention pass"
            );
            Some(purged)
        }
        Err(e) => {
            tracing::warn!(error = %e, "retention pass failed; retrying at the next interval");
            None
        }
    }
}
