//! Group commit for inbound events: concurrent requests are queued and committed together, one
//! transaction per batch, and each request is answered only after its batch has committed.
//! A batch forms naturally from what arrives while the previous one commits, so a lone request
//! waits for nothing.

use std::sync::Arc;

use postback_domain::ingest::store::{self as ingest, FastPath, Outcome, Prefetched, Submission};
use postback_domain::store::db::DbPool;
use postback_domain::DomainError;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, oneshot, Mutex};

use crate::delivery::worker::DirectSender;

const MAX_BATCH: usize = 512;
const QUEUE: usize = 8192;
/// Batches committing at once (each holds one connection while it commits).
const COMMITTERS: usize = 2;
/// The longest a batch waits for company.
const LINGER: std::time::Duration = std::time::Duration::from_micros(500);

struct Job {
    submission: Submission,
    reply: oneshot::Sender<Result<Outcome, DomainError>>,
}

/// Deliveries claimed at insert (see [`Ingestor::start`]).
#[derive(Clone)]
pub struct Direct {
    /// This instance's worker, which sends them.
    pub sender: DirectSender,
    /// The claim's lease, in seconds.
    pub lease: f64,
    /// How long after the commit an attempt may still start, in seconds.
    pub window: f64,
    pub platform_urls: postback_domain::delivery::queue::PlatformUrls,
}

#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Job>,
    /// The queue the committers take from (shared by them once [`Ingestor::start`]ed).
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    /// Submissions waiting for their answer, queued or committing.
    in_flight: Arc<AtomicUsize>,
}

impl Default for Ingestor {
    fn default() -> Self {
        Self::new()
    }
}

impl Ingestor {
    /// The queue, with no committer yet: submissions wait until [`Ingestor::start`].
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        Self {
            tx,
            rx: Arc::new(Mutex::new(rx)),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Spawns the committers on the current Tokio runtime. With `direct`, deliveries to active
    /// webhooks and enabled platform connections are claimed by the statement that stores their
    /// event (for `direct.lease` seconds), handed to this instance's worker after the commit,
    /// and started only within `direct.window` seconds of it.
    pub fn start(&self, pool: DbPool, database_url: &str, direct: Option<Direct>) {
        for shard in 0..COMMITTERS {
            tokio::spawn(committer(
                pool.clone(),
                database_url.to_owned(),
                self.rx.clone(),
                self.in_flight.clone(),
                shard as i16,
                direct.clone(),
            ));
        }
    }

    /// Queues a submission and waits until it is committed (or refused). A refusal because the
    /// database is away is [`DomainError::Unavailable`]: the event may or may not be stored.
    pub async fn submit(&self, submission: Submission) -> Result<Outcome, DomainError> {
        let (reply, answer) = oneshot::channel();
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _done = InFlight(&self.in_flight);
        self.tx
            .send(Job { submission, reply })
            .await
            .map_err(|_| DomainError::Unavailable("shutting down".into()))?;
        answer
            .await
            .map_err(|_| DomainError::internal("a committer dropped a submission"))?
    }
}

fn drain(rx: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Counts a submission out when its request finishes, however it finishes.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes what is queued after `first`, then, while more requests are in flight than this batch
/// holds, waits briefly for its share of them (in-flight / committers): under load that turns
/// many small commits into few larger ones; a lone request waits for nothing.
async fn fill_batch(rx: &mut mpsc::Receiver<Job>, first: Job, in_flight: &AtomicUsize) -> Vec<Job> {
    let mut batch = Vec::with_capacity(64);
    batch.push(first);
    drain(rx, &mut batch);
    let share = (in_flight.load(Ordering::Relaxed) / COMMITTERS).clamp(1, MAX_BATCH);
    if batch.len() < share {
        // Wait for company only while it keeps arriving: each wait ends as soon as a request
        // comes in, and the whole linger is capped.
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < share {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(job)) => {
                    batch.push(job);
                    drain(rx, &mut batch);
                }
                _ => break,
            }
        }
    }
    batch
}

/// A committer's own connection for the prepared fast-path insert, kept between batches (the
/// exact path and duplicate look-ups borrow from the pool). A failed batch drops it; the next
/// one reconnects.
struct Held {
    fast: FastPath,
}

/// The committer's fast-path connection, reconnected when it was lost.
async fn connection<'a>(
    database_url: &str,
    held: &'a mut Option<Held>,
) -> Result<&'a mut Held, DomainError> {
    if held.as_ref().is_some_and(|h| h.fast.is_closed()) {
        *held = None;
    }
    Ok(match held {
        Some(h) => h,
        None => {
            let fast = FastPath::connect(database_url).await?;
            held.insert(Held { fast })
        }
    })
}

async fn commit(
    pool: &DbPool,
    database_url: &str,
    held: &mut Option<Held>,
    subs: &[Submission],
    shard: i16,
    prefetched: Option<Prefetched>,
    direct: Option<&Direct>,
) -> Result<Vec<Result<Outcome, DomainError>>, DomainError> {
    let h = connection(database_url, held).await?;
    let claim = direct.map(|d| ingest::ClaimAtInsert {
        lease: d.lease,
        platform_urls: &d.platform_urls,
    });
    let committed = std::time::Instant::now();
    match ingest::ingest_batch(pool, &h.fast, subs, shard, prefetched, claim.as_ref()).await {
        Ok((outcomes, claimed)) => {
            if let Some(d) = direct {
                // Leave the attempt its whole timeout inside the lease.
                let send_before = committed + std::time::Duration::from_secs_f64(d.window);
                for c in claimed {
                    let _ = d.sender.send(crate::delivery::worker::Direct {
                        claimed: c,
                        send_before,
                    });
                }
            }
            Ok(outcomes)
        }
        Err(e) => {
            *held = None;
            Err(e)
        }
    }
}

async fn committer(
    pool: DbPool,
    database_url: String,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    in_flight: Arc<AtomicUsize>,
    shard: i16,
    direct: Option<Direct>,
) {
    let mut held: Option<Held> = None;
    loop {
        let mut queue = rx.lock().await;
        let Some(first) = queue.recv().await else {
            break;
        };
        // The first request's webhook rules are fetched while the batch fills.
        let hash = first.submission.key_hash.clone();
        let (batch, prefetched) = match connection(&database_url, &mut held).await {
            Ok(h) => {
                let hashes = [hash.as_slice()];
                let (batch, book) = tokio::join!(
                    fill_batch(&mut queue, first, &in_flight),
                    h.fast.rules_for(&hashes)
                );
                let prefetched = book.ok().map(|book| Prefetched {
                    book,
                    covered: vec![hash],
                });
                (batch, prefetched)
            }
            Err(_) => (fill_batch(&mut queue, first, &in_flight).await, None),
        };
        drop(queue);
        let (subs, replies): (Vec<Submission>, Vec<_>) =
            batch.into_iter().map(|j| (j.submission, j.reply)).unzip();
        let results = match commit(
            &pool,
            &database_url,
            &mut held,
            &subs,
            shard,
            prefetched,
            direct.as_ref(),
        )
        .await
        {
            Ok(results) => results,
            // Nothing was stored: every submission fails with the same error.
            Err(err) => subs.iter().map(|_| Err(err.replicate())).collect(),
        };
        let failed = results.iter().filter(|r| r.is_err()).count();
        if failed > 0 {
            let cause = results.iter().find_map(|r| r.as_ref().err());
            tracing::warn!(
                cause = %cause.map(ToString::to_string).unwrap_or_default(),
                size = subs.len(),
                failed,
                "inbound batch: some submissions were not stored"
            );
        }
        for ((submission, reply), result) in subs.iter().zip(replies).zip(results) {
            let answer = match result {
                // One bad row must not fail its neighbours: a submission the batch did not store
                // is committed on its own (the stored ones are not retried, which would store
                // them twice).
                Err(ref e) if subs.len() > 1 && !matches!(e, DomainError::Unavailable(_)) => {
                    commit_alone(&pool, &database_url, &mut held, submission, shard, &direct).await
                }
                other => other,
            };
            let _ = reply.send(answer);
        }
    }
}

/// Commits one submission as a batch of its own.
async fn commit_alone(
    pool: &DbPool,
    database_url: &str,
    held: &mut Option<Held>,
    submission: &Submission,
    shard: i16,
    direct: &Option<Direct>,
) -> Result<Outcome, DomainError> {
    commit(
        pool,
        database_url,
        held,
        std::slice::from_ref(submission),
        shard,
        None,
        direct.as_ref(),
    )
    .await
    .and_then(|mut results| {
        results
            .pop()
            .unwrap_or_else(|| Err(DomainError::internal("submission left unanswered")))
    })
}
