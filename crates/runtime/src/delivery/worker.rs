//! The delivery worker: claims due deliveries from PostgreSQL (`FOR UPDATE SKIP LOCKED`, so any
//! number of instances share the queue), sends them concurrently, and records the results in
//! batches. It sleeps until woken by `NOTIFY` (new deliveries, a resume, a redelivery) or until
//! the next retry falls due; it never polls in a loop.
//!
//! Isolation: no webhook has more than [`WEBHOOK_SHARE`] of this instance's attempts in flight,
//! so a receiver that hangs holds a quarter of the slots at most and every other webhook is sent
//! at once. Deliveries over the share stay in the queue (a delivery claimed at insert is handed
//! back) until one of the webhook's attempts finishes. Webhooks with a rate limit, a
//! concurrency cap or a tripped circuit breaker are claimed within those, counted in PostgreSQL
//! across every instance (see `postback_domain::delivery::queue::claim`).

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use chrono::Utc;
use futures_util::StreamExt;
use postback_domain::delivery::queue::{
    self as deliveries, AttemptResult, Claimed, Send, EXCERPT_BYTES,
};
use postback_domain::ids::{DeliveryId, WebhookId};
use postback_domain::platforms::{self, Answer};
use postback_domain::states::AttemptOutcome;
use postback_domain::store::db::DbPool;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::batcher::Batcher;
use super::client::{Client, Response};
use super::{signing, DeliveryConfig};
use crate::metrics::{DeliveryOutcome, Metrics};

/// Attempts in flight per instance.
const MAX_IN_FLIGHT: usize = 256;
/// The most attempts one webhook may have in flight in one instance: a quarter of its slots.
pub const WEBHOOK_SHARE: usize = MAX_IN_FLIGHT / 4;
/// Results sent or being sent and not written yet, per instance: an attempt starts only with a
/// place among them, given back once the recorder has written its result. Should writing stall
/// (a lock, a slow disk), sending slows to what is written instead of piling results up in
/// memory.
const MAX_UNWRITTEN: usize = 2048;
/// Deliveries claimed per query.
const CLAIM_BATCH: usize = 128;
/// How long the recorder collects results before writing them, while more are coming.
const RECORD_LINGER: Duration = Duration::from_millis(20);
/// The longest the recorder waits for its own connection before writing through the pool.
const RECORDER_CONNECT: Duration = Duration::from_secs(5);
/// A recorder batch or a claim slower than this is logged, and the queue's statistics are
/// refreshed.
const SLOW_RECORD: Duration = Duration::from_secs(1);
/// After a claim that found work, the longest wait for a wake-up before claiming again.
const BUSY_WAIT: Duration = Duration::from_millis(50);
/// Longest sleep without a notification (a safety net should a NOTIFY be lost on reconnect).
const IDLE_CHECK: Duration = Duration::from_secs(30);
/// How often the listener retries its connection, and the claimer polls while it has none.
const LISTEN_RETRY: Duration = Duration::from_secs(1);
/// A `Retry-After` longer than this is cut to it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// What follows a failed attempt (sent alone or in a batch): held for reconnecting
/// (`reconnect_needed`), the time the platform asked for (`late`), failed when not `retryable`,
/// else the next wait of the retry schedule (or the receiver's `Retry-After`, capped), failed
/// once the schedule is spent.
pub(super) fn after_failure(
    config: &DeliveryConfig,
    round_attempt: i32,
    retry_after: Option<Duration>,
    reconnect_needed: bool,
    late: Option<chrono::DateTime<Utc>>,
    retryable: bool,
) -> (AttemptOutcome, Option<chrono::DateTime<Utc>>) {
    if reconnect_needed {
        return (
            AttemptOutcome::Retry,
            Some(Utc::now() + platforms::holds::HOLD),
        );
    }
    if let Some(at) = late {
        return (AttemptOutcome::Retry, Some(at));
    }
    if !retryable {
        return (AttemptOutcome::Failed, None);
    }
    let round = usize::try_from(round_attempt.max(1)).unwrap_or(1);
    match config.retry_schedule.get(round - 1) {
        Some(wait) => {
            let wait = retry_after
                .map(|ra| ra.min(MAX_RETRY_AFTER))
                .unwrap_or(*wait);
            let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero());
            (AttemptOutcome::Retry, Some(Utc::now() + wait))
        }
        None => (AttemptOutcome::Failed, None),
    }
}

/// Deliveries this instance claimed as it stored them (see [`Direct`]).
pub type DirectSender = mpsc::UnboundedSender<Direct>;

/// A delivery claimed by the inbound statement that stored it, handed to this instance's
/// worker straight after the commit. Its lease runs from the commit; one taken after
/// `send_before` is left for the lease to expire and a claim to pick it up, so it is never sent
/// by two workers at once.
pub struct Direct {
    pub claimed: Claimed,
    pub send_before: std::time::Instant,
}

/// The lease (seconds) a claim, or a claim at insert, gives a delivery: longer than the HTTP
/// timeout, so an attempt still running is never claimed again (configuration refuses a lease
/// that is not).
pub fn lease_secs(config: &DeliveryConfig) -> f64 {
    config
        .lease
        .map_or(config.timeout.as_secs_f64() + 30.0, |l| l.as_secs_f64())
}

/// How long after its commit a delivery claimed at insert may still be started: half of what its
/// lease leaves after one whole attempt, so the attempt ends, and its result is written, well
/// inside the lease (with the default lease, 15 s).
pub fn direct_window_secs(config: &DeliveryConfig) -> f64 {
    ((lease_secs(config) - config.timeout.as_secs_f64()) / 2.0).max(0.0)
}

/// Attempts in flight per webhook in this instance, against [`WEBHOOK_SHARE`].
#[derive(Clone)]
struct Shares {
    busy: Arc<std::sync::Mutex<HashMap<WebhookId, usize>>>,
    /// Woken when a webhook at its share finishes an attempt (its queue may move again).
    wake: Arc<Notify>,
}

/// One attempt's place in its webhook's share, given back when dropped.
struct ShareGuard {
    shares: Shares,
    webhook: WebhookId,
}

impl Shares {
    fn new(wake: Arc<Notify>) -> Self {
        Self {
            busy: Arc::default(),
            wake,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WebhookId, usize>> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place within the webhook's share, or None when it has its share in flight.
    fn try_take(&self, webhook: WebhookId) -> Option<ShareGuard> {
        let mut busy = self.lock();
        let n = busy.entry(webhook).or_insert(0);
        if *n >= WEBHOOK_SHARE {
            return None;
        }
        *n += 1;
        Some(ShareGuard {
            shares: self.clone(),
            webhook,
        })
    }

    /// A place for a delivery the claim already limited to the share.
    fn take(&self, webhook: WebhookId) -> ShareGuard {
        *self.lock().entry(webhook).or_insert(0) += 1;
        ShareGuard {
            shares: self.clone(),
            webhook,
        }
    }

    /// Attempts in flight per webhook, for the claim.
    fn snapshot(&self) -> Vec<(WebhookId, i64)> {
        self.lock()
            .iter()
            .map(|(w, n)| (*w, i64::try_from(*n).unwrap_or(i64::MAX)))
            .collect()
    }
}

impl Drop for ShareGuard {
    fn drop(&mut self) {
        let was_full = {
            let mut busy = self.shares.lock();
            let Some(n) = busy.get_mut(&self.webhook) else {
                return;
            };
            let was_full = *n >= WEBHOOK_SHARE;
            *n = n.saturating_sub(1);
            if *n == 0 {
                busy.remove(&self.webhook);
            }
            was_full
        };
        if was_full {
            self.shares.wake.notify_one();
        }
    }
}

/// Where attempts' results go to be written, counting those not written yet (so a shutdown can
/// wait for them) and remembering when each was queued (so the claimer can tell when writing
/// has fallen behind; see [`Results::oldest_unwritten`]).
#[derive(Clone)]
struct Results {
    tx: mpsc::UnboundedSender<(AttemptResult, OwnedSemaphorePermit)>,
    backlog: Backlog,
}

/// The results queued and not written yet, shared by their senders and the recorder.
#[derive(Clone)]
struct Backlog {
    unrecorded: Arc<AtomicUsize>,
    /// When each result not written yet was queued, oldest first (the recorder writes them in
    /// that order).
    queued: Arc<std::sync::Mutex<std::collections::VecDeque<std::time::Instant>>>,
    /// The places among the unwritten results ([`MAX_UNWRITTEN`]): an attempt holds one from
    /// its start until its result is written.
    places: Arc<Semaphore>,
}

impl Results {
    /// Queues a result with its place among the unwritten ones, given back once it is written
    /// (dropped only when the recorder is gone, i.e. the runtime is ending).
    fn send(&self, result: AttemptResult, unwritten: OwnedSemaphorePermit) {
        let backlog = &self.backlog;
        backlog.unrecorded.fetch_add(1, Ordering::SeqCst);
        let mut queued = backlog.queued.lock().unwrap_or_else(|e| e.into_inner());
        if self.tx.send((result, unwritten)).is_err() {
            backlog.unrecorded.fetch_sub(1, Ordering::SeqCst);
        } else {
            queued.push_back(std::time::Instant::now());
        }
    }

    /// How long the oldest result not written yet has waited (zero when all are written).
    fn oldest_unwritten(&self) -> Duration {
        self.backlog
            .queued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .front()
            .map_or(Duration::ZERO, std::time::Instant::elapsed)
    }
}

impl Backlog {
    /// Attempts started whose results are not written yet (under way, or queued).
    fn under_way(&self) -> usize {
        MAX_UNWRITTEN.saturating_sub(self.places.available_permits())
    }

    /// Marks the `n` oldest results written.
    fn written(&self, n: usize) {
        self.unrecorded.fetch_sub(n, Ordering::SeqCst);
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        let n = n.min(queued.len());
        queued.drain(..n);
    }
}

/// What an attempt holds: a place among the attempts in flight (given back once its result is
/// queued) and a place among the results not written yet (given back once it is written).
pub(super) struct Slot {
    pub(super) in_flight: OwnedSemaphorePermit,
    pub(super) unwritten: OwnedSemaphorePermit,
}

/// Both places of a [`Slot`], waiting for each (None once the semaphores are closed).
async fn take_slot(slots: &Arc<Semaphore>, unwritten: &Arc<Semaphore>) -> Option<Slot> {
    let unwritten = unwritten.clone().acquire_owned().await.ok()?;
    let in_flight = slots.clone().acquire_owned().await.ok()?;
    Some(Slot {
        in_flight,
        unwritten,
    })
}

/// This instance's worker: built idle by [`new`], its tasks spawned by [`start`], stopped by
/// [`Worker::shutdown`].
#[derive(Clone)]
pub struct Worker {
    stop: Arc<watch::Sender<bool>>,
    /// The claimer and the sender of deliveries claimed at insert.
    tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    /// Deliveries claimed at insert, until [`start`] hands them to the task that sends them.
    direct: Arc<std::sync::Mutex<Option<mpsc::UnboundedReceiver<Direct>>>>,
    slots: Arc<Semaphore>,
    /// Places among the results not written yet ([`MAX_UNWRITTEN`]).
    unwritten: Arc<Semaphore>,
    unrecorded: Arc<AtomicUsize>,
    timeout: Duration,
}

impl Worker {
    /// Stops the worker for a graceful shutdown, once the HTTP server has answered its last
    /// request: nothing new is claimed; deliveries claimed at insert and not started yet are
    /// handed back, due at once for any instance; the attempts under way finish (within the
    /// delivery timeout) and their results are written. Only what is still unfinished after that
    /// (a database that does not answer) is left to its lease.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + self.timeout + Duration::from_secs(2);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            let _ = tokio::time::timeout_at(deadline, task).await;
        }
        // Every attempt under way holds a slot until its result is queued.
        let all = u32::try_from(MAX_IN_FLIGHT).unwrap_or(u32::MAX);
        let finished = tokio::time::timeout_at(deadline, self.slots.acquire_many(all))
            .await
            .is_ok();
        let flushed = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.unrecorded.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < flushed {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let unrecorded = self.unrecorded.load(Ordering::SeqCst);
        if finished && unrecorded == 0 {
            tracing::info!("delivery worker stopped: attempts under way finished and recorded");
        } else {
            tracing::warn!(
                unrecorded,
                "delivery worker stopped with work unfinished; it is retried when its lease ends"
            );
        }
    }
}

/// Resolves once a shutdown has begun (never, should the worker's handle be gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The worker, idle until [`start`], and where to hand it deliveries claimed at insert (they
/// wait until it starts).
pub fn new(config: &DeliveryConfig) -> (DirectSender, Worker) {
    let (stop, _) = watch::channel(false);
    let (direct_tx, direct_rx) = mpsc::unbounded_channel();
    let worker = Worker {
        stop: Arc::new(stop),
        tasks: Arc::default(),
        direct: Arc::new(std::sync::Mutex::new(Some(direct_rx))),
        slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        unwritten: Arc::new(Semaphore::new(MAX_UNWRITTEN)),
        unrecorded: Arc::new(AtomicUsize::new(0)),
        timeout: config.timeout,
    };
    (direct_tx, worker)
}

/// Starts `worker`'s tasks on the current Tokio runtime; every attempt is counted in `metrics`.
/// A worker starts once: a second call does nothing.
pub fn start(
    worker: &Worker,
    pool: DbPool,
    database_url: &str,
    config: DeliveryConfig,
    metrics: Arc<Metrics>,
) {
    let Some(direct_rx) = worker
        .direct
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    else {
        return;
    };
    let wake = Arc::new(Notify::new());
    let listen_url = config
        .listen_database_url
        .as_deref()
        .unwrap_or(database_url);
    tokio::spawn(listen(listen_url.to_owned(), wake.clone()));
    let (results_tx, results_rx) = mpsc::unbounded_channel();
    let unrecorded = worker.unrecorded.clone();
    let backlog = Backlog {
        unrecorded,
        queued: Arc::default(),
        places: worker.unwritten.clone(),
    };
    let results_tx = Results {
        tx: results_tx,
        backlog: backlog.clone(),
    };
    let stats = StatsRefresh {
        pool: pool.clone(),
        under_way: Arc::default(),
    };
    tokio::spawn(recorder(
        pool.clone(),
        database_url.to_owned(),
        results_rx,
        wake.clone(),
        backlog,
        stats.clone(),
        deliveries::Breaker {
            after: deliveries::BREAKER_AFTER,
            pause: config.breaker_pause,
        },
    ));
    let client = Client::new(&config);
    let shares = Shares::new(wake.clone());
    let config = Arc::new(config);
    let batcher = {
        let results = results_tx.clone();
        Batcher::new(
            client.clone(),
            config.clone(),
            metrics.clone(),
            pool.clone(),
            Arc::new(move |r, unwritten| results.send(r, unwritten)),
        )
    };
    let (release_tx, release_rx) = mpsc::unbounded_channel();
    tokio::spawn(releaser(pool.clone(), release_rx));
    let slots = worker.slots.clone();
    let unwritten = worker.unwritten.clone();
    let stop_rx = worker.stop.subscribe();
    let direct_task = tokio::spawn(direct(
        direct_rx,
        client.clone(),
        slots.clone(),
        unwritten.clone(),
        shares.clone(),
        release_tx,
        config.clone(),
        results_tx.clone(),
        metrics.clone(),
        pool.clone(),
        batcher.clone(),
        stop_rx.clone(),
    ));
    let claimer_task = tokio::spawn(claimer(
        pool,
        config,
        wake,
        results_tx,
        metrics,
        client,
        slots.clone(),
        unwritten,
        shares,
        batcher,
        stats,
        stop_rx,
    ));
    worker
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend([direct_task, claimer_task]);
}

/// Sends deliveries claimed at insert, sharing the claimer's client and in-flight slots. When a
/// shutdown begins, hands back those not started.
#[expect(
    clippy::too_many_arguments,
    reason = "the worker's shared parts, passed once"
)]
async fn direct(
    mut rx: mpsc::UnboundedReceiver<Direct>,
    client: Client,
    slots: Arc<Semaphore>,
    unwritten: Arc<Semaphore>,
    shares: Shares,
    handback: mpsc::UnboundedSender<(DeliveryId, i32)>,
    config: Arc<DeliveryConfig>,
    results: Results,
    metrics: Arc<Metrics>,
    pool: DbPool,
    batcher: Batcher,
    mut stop: watch::Receiver<bool>,
) {
    let mut unstarted = Vec::new();
    loop {
        let d = tokio::select! {
            biased;
            () = stopping(&mut stop) => break,
            d = rx.recv() => match d {
                Some(d) => d,
                None => return,
            },
        };
        // A webhook with its share in flight: back to the queue, for the claim once one of its
        // attempts finishes.
        let share = match d.claimed.webhook_id() {
            Some(w) => match shares.try_take(w) {
                Some(g) => Some(g),
                None => {
                    let _ = handback.send((d.claimed.id, d.claimed.attempt));
                    continue;
                }
            },
            None => None,
        };
        let slot = tokio::select! {
            biased;
            () = stopping(&mut stop) => {
                unstarted.push(d);
                break;
            }
            s = take_slot(&slots, &unwritten) => match s {
                Some(s) => s,
                None => return,
            },
        };
        if std::time::Instant::now() > d.send_before {
            // Too late to finish inside its lease (all slots were busy, or writing results fell
            // behind): a claim will pick it up when the lease ends.
            continue;
        }
        if Batcher::takes(&d.claimed) {
            batcher.add(d.claimed, slot);
            continue;
        }
        let (client, results, config, metrics) = (
            client.clone(),
            results.clone(),
            config.clone(),
            metrics.clone(),
        );
        tokio::spawn(async move {
            let result = attempt(&client, &config, &metrics, d.claimed).await;
            results.send(result, slot.unwritten);
            drop(share);
            drop(slot.in_flight);
        });
    }
    while let Ok(d) = rx.try_recv() {
        unstarted.push(d);
    }
    release(&pool, unstarted).await;
}

/// Hands back, in batches, deliveries claimed at insert whose webhook had its share in flight:
/// due at once, for a claim once the webhook has room.
async fn releaser(pool: DbPool, mut rx: mpsc::UnboundedReceiver<(DeliveryId, i32)>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        let released = match postback_domain::store::db::conn(&pool).await {
            Ok(mut conn) => deliveries::release(&mut conn, &batch).await,
            Err(e) => Err(e),
        };
        if let Err(e) = released {
            tracing::warn!(error = %e, count = batch.len(), "handing back deliveries over a webhook's share failed; they are retried when their lease ends");
        }
        batch.clear();
    }
}

/// Hands back deliveries claimed at insert that this instance will not send (it is shutting
/// down): due at once, and every instance's worker is woken.
async fn release(pool: &DbPool, unstarted: Vec<Direct>) {
    if unstarted.is_empty() {
        return;
    }
    let claims: Vec<_> = unstarted
        .iter()
        .map(|d| (d.claimed.id, d.claimed.attempt))
        .collect();
    let released = match postback_domain::store::db::conn(pool).await {
        Ok(mut conn) => deliveries::release(&mut conn, &claims).await,
        Err(e) => Err(e),
    };
    match released {
        Ok(n) => tracing::info!(
            released = n,
            "shutting down: released deliveries claimed but not started"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            count = claims.len(),
            "shutting down: could not release deliveries; they are retried when their lease ends"
        ),
    }
}

/// Holds a LISTEN connection and turns notifications into wake-ups; reconnects on loss. The
/// connection keeps its session (`POSTBACK_LISTEN_DATABASE_URL` points it past a transaction
/// pooler). While there is none (it cannot connect, or `LISTEN` fails), it wakes the claimer
/// every [`LISTEN_RETRY`] instead: polling, so deliveries wait at most about that long.
async fn listen(database_url: String, wake: Arc<Notify>) {
    // Said once per outage, not at every retry.
    let mut down = false;
    loop {
        match postback_domain::store::pg::connect_session(&database_url).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = mpsc::unbounded_channel();
                let pump = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(msg) = messages.next().await {
                        match msg {
                            Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                                let _ = tx.send(());
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "delivery listener connection lost");
                                break;
                            }
                        }
                    }
                });
                if let Err(e) = client
                    .batch_execute(&format!("LISTEN {}", deliveries::CHANNEL))
                    .await
                {
                    if !down {
                        tracing::warn!(error = %e, "LISTEN failed; polling for deliveries every second");
                    }
                    down = true;
                    wake.notify_one();
                } else {
                    if down {
                        tracing::info!("delivery listener connected");
                    }
                    down = false;
                    // Anything queued while we were not listening.
                    wake.notify_one();
                    while rx.recv().await.is_some() {
                        wake.notify_one();
                    }
                }
                pump.abort();
            }
            Err(e) => {
                if !down {
                    tracing::warn!(error = %e, "delivery listener cannot connect; polling for deliveries every second");
                }
                down = true;
                wake.notify_one();
            }
        }
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the worker's shared parts, passed once"
)]
async fn claimer(
    pool: DbPool,
    config: Arc<DeliveryConfig>,
    wake: Arc<Notify>,
    results: Results,
    metrics: Arc<Metrics>,
    client: Client,
    slots: Arc<Semaphore>,
    unwritten: Arc<Semaphore>,
    shares: Shares,
    batcher: Batcher,
    stats: StatsRefresh,
    mut stop: watch::Receiver<bool>,
) {
    let lease = lease_secs(&config);
    // See `writing_behind`: half the window, as a margin for the claim's own time.
    let behind_after = Duration::from_secs_f64(direct_window_secs(&config) / 2.0);
    loop {
        if *stop.borrow() {
            return;
        }
        if writing_behind(results.oldest_unwritten(), behind_after) {
            tokio::select! {
                biased;
                () = stopping(&mut stop) => return,
                () = tokio::time::sleep(BUSY_WAIT) => {}
            }
            continue;
        }
        let free = slots
            .available_permits()
            .min(unwritten.available_permits())
            .min(CLAIM_BATCH);
        if free == 0 {
            // Wait for one attempt to finish (or one result to be written), then claim what fits.
            tokio::select! {
                biased;
                () = stopping(&mut stop) => return,
                s = take_slot(&slots, &unwritten) => drop(s),
            }
            continue;
        }
        let busy = shares.snapshot();
        let limits = deliveries::ClaimLimits {
            limit: free as i64,
            lease_secs: lease,
            share: WEBHOOK_SHARE as i64,
            busy: &busy,
            platform_urls: &config.platform_urls,
        };
        let claim_started = std::time::Instant::now();
        let claimed = match postback_domain::store::db::conn(&pool).await {
            Ok(mut conn) => deliveries::claim(&mut conn, &limits).await,
            Err(e) => Err(e),
        };
        if claim_started.elapsed() > SLOW_RECORD && claimed.is_ok() {
            tracing::warn!(
                ms = claim_started.elapsed().as_millis() as u64,
                "claiming deliveries was slow; refreshing the queue's statistics"
            );
            stats.request();
        }
        let (claimed, recheck_at) = match claimed {
            Ok(c) => (c.claimed, c.recheck_at),
            Err(e) => {
                tracing::warn!(error = %e, "claiming deliveries failed; retrying");
                tokio::select! {
                    biased;
                    () = stopping(&mut stop) => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
        };
        let full = claimed.len() == free;
        let busy = !claimed.is_empty();
        for c in claimed {
            let Some(slot) = take_slot(&slots, &unwritten).await else {
                return;
            };
            if Batcher::takes(&c) {
                batcher.add(c, slot);
                continue;
            }
            let share = c.webhook_id().map(|w| shares.take(w));
            let client = client.clone();
            let results = results.clone();
            let config = config.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let result = attempt(&client, &config, &metrics, c).await;
                results.send(result, slot.unwritten);
                drop(share);
                drop(slot.in_flight);
            });
        }
        if full {
            continue;
        }
        if busy {
            // Under load more is on its way: wait briefly for the next wake-up rather than asking
            // the database when the next retry is due (an empty claim does that below).
            tokio::select! {
                biased;
                () = stopping(&mut stop) => return,
                _ = tokio::time::timeout(BUSY_WAIT, wake.notified()) => {}
            }
            continue;
        }
        // Nothing more due now: sleep until woken or until the next retry is due.
        let until_due = match postback_domain::store::db::conn(&pool).await {
            Ok(mut conn) => match deliveries::next_due(&mut conn).await {
                Ok(next) => match next.into_iter().chain(recheck_at).min() {
                    Some(at) => (at - Utc::now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(IDLE_CHECK),
                    None => IDLE_CHECK,
                },
                Err(_) => Duration::from_secs(1),
            },
            Err(_) => Duration::from_secs(1),
        };
        // Something is due yet was not claimed (its webhook has its share in flight, a rate
        // limit or an open breaker holds it back, or another worker's claim has it locked): look
        // again shortly, or when woken, rather than at once in a loop.
        let until_due = until_due.max(BUSY_WAIT);
        tokio::select! {
            biased;
            () = stopping(&mut stop) => return,
            _ = tokio::time::timeout(until_due, wake.notified()) => {}
        }
    }
}

/// Sends one claimed delivery and decides what comes next.
async fn attempt(
    client: &Client,
    config: &DeliveryConfig,
    metrics: &Metrics,
    c: Claimed,
) -> AttemptResult {
    let started_at = Utc::now();
    let webhook_id = c.webhook_id();
    let target = match &c.send {
        Send::Webhook { .. } => "webhook",
        Send::Platform { platform, .. } => platform.as_str(),
    };
    // Nothing is sent when a platform request cannot be built.
    let sent = !matches!(
        &c.send,
        Send::Platform {
            request: Err(_),
            ..
        }
    );
    // A platform that asks to be sent again at a given time; one that refused the
    // connection's authorization (the delivery is held until it is reconnected).
    let mut late = None;
    let mut reconnect = None;
    // (response, whether a failure is worth retrying, the platform's own error message)
    let (resp, retryable, rejection) = match c.send {
        Send::Webhook {
            url,
            secret,
            previous_secret,
            headers: custom,
            body,
            ..
        } => {
            let id = c.id.to_string();
            let headers = webhook_headers(
                &custom,
                secret.as_deref(),
                previous_secret.as_deref(),
                &id,
                started_at.timestamp(),
                &body,
            );
            let resp = client
                .post(&url, &headers, body.as_ref().clone(), EXCERPT_BYTES)
                .await;
            (resp, true, None)
        }
        Send::Platform {
            platform,
            request: Ok(request),
        } => {
            let sent = super::platform_send::send(client, config, platform, &request).await;
            match sent.answer {
                Some(Answer::Accepted) => (sent.response, true, None),
                Some(Answer::Retry(why)) => (sent.response, true, Some(why)),
                Some(Answer::RetryAt(at, why)) => {
                    late = Some(at);
                    let when = at.format("%Y-%m-%d %H:%M UTC");
                    (
                        sent.response,
                        true,
                        Some(format!("Waiting until {when}: {why}")),
                    )
                }
                Some(Answer::Unauthorized(why)) => {
                    let held = platforms::holds::held_error(platform.label(), &why);
                    reconnect = Some(why);
                    (sent.response, true, Some(held))
                }
                Some(Answer::Rejected(why)) => (sent.response, false, Some(why)),
                // Could not connect, timed out: worth another try.
                None => (sent.response, true, None),
            }
        }
        Send::Platform {
            request: Err(why), ..
        } => (
            Response {
                status: None,
                body: None,
                error: Some(why),
                duration: std::time::Duration::ZERO,
                retry_after: None,
            },
            false,
            None,
        ),
    };
    let succeeded = resp.succeeded() && rejection.is_none();
    let timed_out = resp.status.is_none()
        && resp
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("timed out"));
    let (outcome, retry_at) = if succeeded {
        (AttemptOutcome::Succeeded, None)
    } else {
        after_failure(
            config,
            c.round_attempt,
            resp.retry_after,
            reconnect.is_some(),
            late,
            retryable,
        )
    };
    metrics.delivery(
        target,
        match outcome {
            AttemptOutcome::Succeeded => DeliveryOutcome::Succeeded,
            AttemptOutcome::Retry => DeliveryOutcome::Retry,
            AttemptOutcome::Failed => DeliveryOutcome::Failed,
        },
        sent.then_some(resp.duration),
    );
    AttemptResult {
        delivery_id: c.id,
        workspace_id: c.workspace_id,
        webhook_id,
        attempt: c.attempt,
        started_at,
        duration_ms: i32::try_from(resp.duration.as_millis()).unwrap_or(i32::MAX),
        status_code: resp.status.map(i32::from),
        response_body: resp.body,
        error: rejection.or(resp.error),
        outcome,
        retry_at,
        timed_out,
        slotted: c.slotted,
        reconnect,
    }
}

/// A webhook request's headers: the custom ones, then the signatures (a custom header never
/// has a signature header's name; saving refuses it).
pub fn webhook_headers(
    custom: &[(String, String)],
    secret: Option<&str>,
    previous: Option<&str>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    custom
        .iter()
        .cloned()
        .chain(
            signing::headers(secret, previous, id, timestamp, body)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v)),
        )
        .collect()
}

/// Writes results in batches; keeps them and retries while the database is away (the lease
/// makes any attempt whose result is never written due again, so nothing is lost). Each
/// result's place among the unwritten ones is given back once it is written.
async fn recorder(
    pool: DbPool,
    database_url: String,
    mut rx: mpsc::UnboundedReceiver<(AttemptResult, OwnedSemaphorePermit)>,
    wake: Arc<Notify>,
    backlog: Backlog,
    stats: StatsRefresh,
    breaker: deliveries::Breaker,
) {
    const MAX: usize = 512;
    let mut batch: Vec<AttemptResult> = Vec::with_capacity(MAX);
    let mut places: Vec<OwnedSemaphorePermit> = Vec::with_capacity(MAX);
    let mut prepared: Option<deliveries::RecordPath> = None;
    let mut pace = Pace::new();
    while let Some((first, place)) = rx.recv().await {
        batch.push(first);
        places.push(place);
        // While more results are coming (more attempts under way than the batch holds, or
        // results arriving fast enough to fill more of it within the wait), collect them for a
        // moment, so a busy instance writes a few large batches rather than many small ones. A
        // lone result (nothing else under way, none arriving) is written at once.
        let deadline = tokio::time::Instant::now() + RECORD_LINGER;
        let expected = pace.expected(RECORD_LINGER).min(MAX);
        while batch.len() < MAX {
            let next = match rx.try_recv() {
                Ok(next) => next,
                Err(_) if backlog.under_way() <= batch.len() && batch.len() >= expected => break,
                Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(next)) => next,
                    _ => break,
                },
            };
            batch.push(next.0);
            places.push(next.1);
        }
        let took = loop {
            let started = std::time::Instant::now();
            if prepared.as_ref().is_none_or(|p| p.is_closed()) {
                // Without it (PostgreSQL away, or too slow to answer), the batch goes through
                // the pool as it is.
                let connecting = deliveries::RecordPath::connect(&database_url);
                prepared = tokio::time::timeout(RECORDER_CONNECT, connecting)
                    .await
                    .ok()
                    .and_then(Result::ok);
            }
            let written = match postback_domain::store::db::conn(&pool).await {
                Ok(mut conn) => {
                    deliveries::record(&mut conn, &batch, breaker, prepared.as_ref()).await
                }
                Err(e) => Err(e),
            };
            match written {
                Ok(()) => {
                    backlog.written(batch.len());
                    pace.written(batch.len());
                    break started.elapsed();
                }
                Err(e) => {
                    tracing::warn!(error = %e, size = batch.len(), "recording delivery attempts failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        if took > SLOW_RECORD {
            tracing::warn!(
                ms = took.as_millis() as u64,
                size = batch.len(),
                waiting = backlog.unrecorded.load(Ordering::SeqCst),
                "recording delivery attempts was slow; refreshing the queue's statistics"
            );
            stats.request();
        }
        if batch.iter().any(|r| r.retry_at.is_some() || r.slotted) {
            // A retry may now be the earliest thing due, or a capped webhook has room again.
            wake.notify_one();
        }
        batch.clear();
        places.clear();
    }
}

/// How fast results reach the recorder: the results written per second between its last two
/// writes, from which it reckons how many more will come while a batch waits.
struct Pace {
    last_write: std::time::Instant,
    per_second: f64,
}

impl Pace {
    fn new() -> Self {
        Self {
            last_write: std::time::Instant::now(),
            per_second: 0.0,
        }
    }

    /// `n` results were just written: they came in since the write before.
    fn written(&mut self, n: usize) {
        let now = std::time::Instant::now();
        let since = now.duration_since(self.last_write).as_secs_f64();
        self.per_second = if since > 0.0 { n as f64 / since } else { 0.0 };
        self.last_write = now;
    }

    /// The results expected to arrive within `wait` at the last pace (0 when they trickle).
    fn expected(&self, wait: Duration) -> usize {
        let n = self.per_second * wait.as_secs_f64();
        if n.is_finite() && n >= 2.0 {
            n as usize
        } else {
            0
        }
    }
}

/// This worker's refreshes of the queue's statistics ([`deliveries::refresh_queue_statistics`]),
/// asked for by the recorder and the claimer, one at a time.
#[derive(Clone)]
struct StatsRefresh {
    pool: DbPool,
    under_way: Arc<std::sync::atomic::AtomicBool>,
}

impl StatsRefresh {
    /// Starts a refresh in the background (it may wait for an autovacuum of the queue, which the
    /// caller must not), unless one is under way already. A failure is logged and changes
    /// nothing else.
    fn request(&self) {
        if self.under_way.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let refreshed = match postback_domain::store::db::conn(&this.pool).await {
                Ok(mut conn) => deliveries::refresh_queue_statistics(&mut conn).await,
                Err(e) => Err(e),
            };
            if let Err(e) = refreshed {
                tracing::warn!(error = %e, "could not refresh the delivery queue's statistics");
            }
            this.under_way.store(false, Ordering::SeqCst);
        });
    }
}

/// Whether writing results has fallen so far behind that the claimer must wait. A lease
/// outlasts the attempt's timeout and twice the window for sending a delivery claimed at insert
/// ([`direct_window_secs`]), so while every unwritten result has waited less than that window
/// (the claimer uses half of it), none belongs to a delivery whose lease has run out, and a
/// claim cannot send one of them a second time.
fn writing_behind(oldest_unwritten: Duration, window: Duration) -> bool {
    oldest_unwritten > window
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorder_waits_for_company_only_at_a_pace_that_brings_it() {
        let wait = Duration::from_millis(20);
        let mut pace = Pace::new();
        // Nothing written yet: a first result is written at once.
        assert_eq!(pace.expected(wait), 0);
        // 8,000 results a second: up to 160 arrive within the wait (fewer only if this test
        // was held up between the two lines below for a good part of 100 ms).
        pace.last_write = std::time::Instant::now() - Duration::from_millis(100);
        pace.written(800);
        let busy = pace.expected(wait);
        assert!((80..=160).contains(&busy), "{busy}");
        // One result after a quiet second: the next one is written at once again.
        pace.last_write = std::time::Instant::now() - Duration::from_secs(1);
        pace.written(1);
        assert_eq!(pace.expected(wait), 0);
    }
}
