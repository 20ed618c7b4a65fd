//! Group commit for tracking-link clicks: each `GET /__cc/go/{slug}` is answered only once its
//! touch is committed, and clicks arriving together share one multi-row insert and one commit
//! (one WAL flush) instead of paying for a commit each. A batch forms from what arrives while
//! the previous one commits, so a lone click waits for nothing.

use postback_domain::db::DbPool;
use postback_domain::links::{self, NewClick};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::error::ApiError;

const MAX_BATCH: usize = 256;
const QUEUE: usize = 4096;
/// Batches committing at once (each holds one pooled connection while it commits).
const COMMITTERS: usize = 2;

struct Job {
    click: NewClick,
    reply: oneshot::Sender<Result<(), ApiError>>,
}

#[derive(Clone)]
pub struct ClickWriter {
    tx: mpsc::Sender<Job>,
}

impl ClickWriter {
    /// Spawns the committers on the current Tokio runtime.
    pub fn start(pool: DbPool) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for _ in 0..COMMITTERS {
            tokio::spawn(committer(pool.clone(), rx.clone()));
        }
        Self { tx }
    }

    /// Queues a click's touch and waits until it is committed.
    pub async fn store(&self, click: NewClick) -> Result<(), ApiError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { click, reply })
            .await
            .map_err(|_| ApiError::Unavailable("Shutting down, retry shortly".into()))?;
        answer
            .await
            .map_err(|_| ApiError::Internal("Internal server error".into()))?
    }
}

async fn committer(pool: DbPool, rx: std::sync::Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
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
        let clicks: Vec<NewClick> = batch.iter().map(|j| j.click.clone()).collect();
        let result = match postback_domain::db::conn(&pool).await {
            Ok(mut conn) => links::store_clicks(&mut conn, &clicks).await,
            Err(e) => Err(e),
        };
        let outcome: Result<(), ApiError> = result.map_err(ApiError::from);
        for job in batch.drain(..) {
            let _ = job.reply.send(match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(ApiError::Unavailable(e.to_string())),
            });
        }
    }
}
