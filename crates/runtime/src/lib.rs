//! Postback's runtime: the state every request handler shares and the background work behind
//! it — the inbound committers, the click writer, the delivery worker (with its client, signing
//! and SSRF guard), the retention job, the upkeep job (VACUUMs of the tables that churn), the
//! mail sender and the metrics registry. The API (`postback-api`) and the dashboard
//! (`postback-web`) both use it; neither owns it.
//!
//! Building an [`AppState`] starts nothing. The binary (and the tests' servers) call [`start`]
//! once the state is built, then [`retention::start`] and [`mail::start`] with their settings;
//! [`Handles::shutdown`] stops the delivery worker after the HTTP server has stopped.

pub mod clicks;
pub mod client_addr;
pub mod delivery;
pub mod ingest;
pub mod login_throttle;
pub mod mail;
pub mod metrics;
pub mod partitions;
pub mod platform_status;
pub mod ratelimit;
pub mod retention;
pub mod rollups;
pub mod shared_limit;
pub mod state;
pub mod tls;
pub mod upkeep;

pub use state::AppState;

/// The background work [`start`] began, for a graceful shutdown.
#[derive(Clone)]
pub struct Handles {
    worker: delivery::worker::Worker,
}

impl Handles {
    /// Once the HTTP server has answered its last request: finishes or hands back the
    /// deliveries this instance holds (see [`delivery::worker::Worker::shutdown`]).
    pub async fn shutdown(&self) {
        self.worker.shutdown().await;
    }
}

/// Starts, on the current Tokio runtime, what `state` feeds: the delivery worker, the inbound
/// committers (which claim deliveries at insert for this instance's worker), the click writer's
/// committers, the sharing of the anonymous endpoints' rate-limit counts, the keeper of the
/// monthly partitions ([`partitions`]) and the overview's
/// rollups folder ([`rollups`], unless `rollups_folding` is `None`). Call it once per
/// state, before serving.
pub fn start(state: &AppState) -> Handles {
    let handles = Handles {
        worker: state.worker.clone(),
    };
    if state
        .started
        .swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        tracing::warn!("the runtime of this state was started already");
        return handles;
    }
    let delivery = &state.delivery;
    delivery::worker::start(
        &state.worker,
        state.pool.clone(),
        &state.database_url,
        delivery.clone(),
        state.metrics.clone(),
    );
    state.ingestor.start(
        state.pool.clone(),
        &state.database_url,
        Some(ingest::Direct {
            sender: state.direct.clone(),
            lease: delivery::worker::lease_secs(delivery),
            window: delivery::worker::direct_window_secs(delivery),
            platform_urls: delivery.platform_urls.clone(),
        }),
    );
    platform_status::start(state.pool.clone(), state.http.clone(), delivery.clone());
    state.clicks.start(&state.database_url);
    state.limits.start(state.pool.clone());
    partitions::start(state.pool.clone(), partitions::INTERVAL);
    if let Some(interval) = state.rollups_folding {
        rollups::start(state.pool.clone(), interval);
    }
    if let Some(settings) = state.upkeep {
        upkeep::start(state.pool.clone(), settings);
    }
    handles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive() -> usize {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    }

    /// Building the state spawns no task; `start` spawns the background work, once.
    #[tokio::test]
    async fn building_the_state_starts_nothing_and_start_starts_it_once() {
        // The pool connects lazily; nothing here reaches a database.
        let url = "postgres://nobody@127.0.0.1:9/none";
        let pool = postback_domain::store::db::pool(url, 1).expect("pool");
        let before = alive();
        let state = AppState::new(pool, url, "http://127.0.0.1:9");
        assert_eq!(alive(), before, "building the state spawned tasks");
        let handles = start(&state);
        let started = alive();
        // The worker's five, two inbound committers, two click committers, the limits' flusher,
        // the platform request status checker, the partitions keeper, the rollups folder, the
        // upkeep job.
        assert_eq!(started, before + 14, "start spawned {}", started - before);
        let _again = start(&state.clone());
        assert_eq!(alive(), started, "a second start spawned more");
        drop(handles);
    }
}
