//! The tracking-link redirect's hot path (`GET /__cc/go/{slug}`).
//!
//! - **Destinations are cached**: a slug's link and targets are read once and kept for
//!   [`DESTINATION_TTL`], unknown slugs too, so a burst of clicks costs no query each. This
//!   instance forgets them all whenever a link or domain is created, edited or deleted through it
//!   ([`ClickWriter::forget_destinations`]); another instance sees such a change within the TTL.
//! - **Clicks are group-committed**: each redirect is answered only once its touch is committed,
//!   and clicks arriving together share one prepared multi-row insert and one commit on a
//!   connection each committer keeps. A batch forms from what arrives while the previous one
//!   commits, so a lone click waits for nothing. The commit does not wait for the WAL flush
//!   (see [`ClickStore::connect`] for what that trades).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use postback_domain::error::DomainError;
use postback_domain::store::db::DbPool;
use postback_domain::tracking::links::{self, ClickStore, Destination, NewClick};
use tokio::sync::{mpsc, oneshot, Mutex};

const MAX_BATCH: usize = 256;
const QUEUE: usize = 4096;
/// Batches committing at once (each on its own connection).
const COMMITTERS: usize = 2;
/// How long a slug's destination (or its absence) is kept.
pub const DESTINATION_TTL: Duration = Duration::from_secs(2);
/// Slugs kept at most; past this the cache starts over, so random slugs cannot grow it.
const MAX_CACHED: usize = 10_000;

struct Job {
    click: NewClick,
    reply: oneshot::Sender<Result<(), DomainError>>,
}

type Cached = (Instant, Option<Arc<Destination>>);

#[derive(Clone)]
pub struct ClickWriter {
    tx: mpsc::Sender<Job>,
    /// The queue the committers take from (shared by them once [`ClickWriter::start`]ed).
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    pool: DbPool,
    destinations: Arc<RwLock<HashMap<String, Cached>>>,
}

impl ClickWriter {
    /// The queue and the destination cache, with no committer yet: clicks wait until
    /// [`ClickWriter::start`].
    pub fn new(pool: DbPool) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        Self {
            tx,
            rx: Arc::new(Mutex::new(rx)),
            pool,
            destinations: Arc::default(),
        }
    }

    /// Spawns the committers on the current Tokio runtime; each connects to `database_url` when
    /// its first batch arrives.
    pub fn start(&self, database_url: &str) {
        for _ in 0..COMMITTERS {
            tokio::spawn(committer(database_url.to_owned(), self.rx.clone()));
        }
    }

    /// The link and targets of `slug`, from the cache when read less than [`DESTINATION_TTL`]
    /// ago; `None` for an unknown slug.
    pub async fn destination(&self, slug: &str) -> Result<Option<Arc<Destination>>, DomainError> {
        let now = Instant::now();
        if let Some((read, dest)) = self.read_cache().get(slug) {
            if now.duration_since(*read) < DESTINATION_TTL {
                return Ok(dest.clone());
            }
        }
        let dest = {
            let mut conn = postback_domain::store::db::conn(&self.pool).await?;
            links::destination(&mut conn, slug).await?.map(Arc::new)
        };
        let mut cache = self
            .destinations
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(slug.to_owned(), (now, dest.clone()));
        Ok(dest)
    }

    /// Drops every cached destination: called after a link or domain changes, so this instance
    /// redirects by the change at once.
    pub fn forget_destinations(&self) {
        self.destinations
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Cached>> {
        self.destinations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a click's touch and waits until it is committed.
    pub async fn store(&self, click: NewClick) -> Result<(), DomainError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { click, reply })
            .await
            .map_err(|_| DomainError::Unavailable("shutting down".into()))?;
        answer
            .await
            .map_err(|_| DomainError::internal("a click committer dropped a click"))?
    }
}

async fn committer(database_url: String, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut clicks: Vec<NewClick> = Vec::with_capacity(MAX_BATCH);
    let mut store: Option<ClickStore> = None;
    loop {
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        clicks.extend(batch.iter().map(|j| j.click.clone()));
        let outcome = commit(&database_url, &mut store, &clicks).await;
        clicks.clear();
        match outcome {
            Ok(()) => {
                for job in batch.drain(..) {
                    let _ = job.reply.send(Ok(()));
                }
            }
            // One click the batch could not store must not fail its neighbours: each is
            // stored on its own, and only the one at fault is answered with its error.
            Err(e) if batch.len() > 1 && !matches!(e, DomainError::Unavailable(_)) => {
                store = None;
                tracing::warn!(cause = %e, size = batch.len(), "click batch refused; storing its clicks one by one");
                for job in batch.drain(..) {
                    let alone =
                        commit(&database_url, &mut store, std::slice::from_ref(&job.click)).await;
                    if alone.is_err() {
                        store = None;
                    }
                    let _ = job.reply.send(alone);
                }
            }
            Err(e) => {
                // A failed batch drops its connection; the next one reconnects.
                store = None;
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(e.replicate()));
                }
            }
        }
    }
}

async fn commit(
    database_url: &str,
    store: &mut Option<ClickStore>,
    clicks: &[NewClick],
) -> Result<(), DomainError> {
    if store.as_ref().is_some_and(ClickStore::is_closed) {
        *store = None;
    }
    let held = match store {
        Some(s) => s,
        None => store.insert(ClickStore::connect(database_url).await?),
    };
    held.insert(clicks).await
}
