//! Batched platform sends (issue 19): claimed platform deliveries of one connection are gathered
//! for at most [`DeliveryConfig::batch_window`] (or until the API's maximum per request is
//! reached) and sent as one request; the answer is read back per event
//! (`postback_domain::platforms::batch`). A batch the platform refuses as a whole is split in
//! halves and sent again until the refused events stand alone, so one bad event fails alone.
//!
//! Before sending, the connection's allowance is reserved in PostgreSQL
//! (`postback_domain::platforms::limits`): a connection held by a throttling answer, or past
//! its daily quota, sends nothing; its deliveries go back to the queue, pending, until the next
//! allowed time. A throttling answer holds the connection for every instance.
//!
//! Each delivery keeps its own attempt and result, as when sent alone: the batch's status and
//! answer, and its own outcome.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use postback_domain::delivery::queue::{AttemptResult, Claimed, Send, EXCERPT_BYTES};
use postback_domain::platforms::{self, batch, limits, Answer, Platform, Request};
use postback_domain::states::AttemptOutcome;
use postback_domain::store::db::DbPool;
use tokio::sync::OwnedSemaphorePermit;

use super::client::{Client, Response};
use super::worker::Slot;
use super::DeliveryConfig;
use crate::metrics::{DeliveryOutcome, Metrics};

/// How much of a batch's answer is read (it carries every event's errors).
const ANSWER_BYTES: usize = 1 << 20;

/// Where a delivery's result goes, with its place among the results not written yet.
pub type Sink = Arc<dyn Fn(AttemptResult, OwnedSemaphorePermit) + std::marker::Send + Sync>;

/// A claimed platform delivery with its in-flight slot, given back once its result is queued,
/// and its place among the unwritten results, which goes with the result.
struct Item {
    claimed: Claimed,
    _in_flight: OwnedSemaphorePermit,
    unwritten: OwnedSemaphorePermit,
}

struct Group {
    id: u64,
    max: usize,
    items: Vec<Item>,
}

struct Shared {
    client: Client,
    config: Arc<DeliveryConfig>,
    metrics: Arc<Metrics>,
    pool: DbPool,
    sink: Sink,
    groups: Mutex<HashMap<String, Group>>,
    next_id: AtomicU64,
}

/// Gathers platform deliveries into batches and sends them.
#[derive(Clone)]
pub struct Batcher(Arc<Shared>);

impl Batcher {
    pub fn new(
        client: Client,
        config: Arc<DeliveryConfig>,
        metrics: Arc<Metrics>,
        pool: DbPool,
        sink: Sink,
    ) -> Self {
        Self(Arc::new(Shared {
            client,
            config,
            metrics,
            pool,
            sink,
            groups: Mutex::default(),
            next_id: AtomicU64::new(0),
        }))
    }

    /// Whether a claimed delivery is sent through a batcher (a platform request that could be
    /// built).
    pub fn takes(c: &Claimed) -> bool {
        matches!(&c.send, Send::Platform { request: Ok(_), .. })
    }

    /// Adds a delivery (see [`Batcher::takes`]): sent with its connection's others once the
    /// window ends or the batch is full.
    pub(super) fn add(&self, claimed: Claimed, slot: Slot) {
        let grouping = match &claimed.send {
            Send::Platform {
                platform,
                request: Ok(r),
            } => batch::group(*platform, r),
            _ => None,
        };
        let item = Item {
            claimed,
            _in_flight: slot.in_flight,
            unwritten: slot.unwritten,
        };
        let window = self.0.config.batch_window;
        let Some((key, max)) = grouping.filter(|_| !window.is_zero()) else {
            tokio::spawn(send_group(self.0.clone(), vec![item]));
            return;
        };
        let key = format!(
            "{}/{}/{key}",
            item.claimed.workspace_id.0,
            item.claimed
                .connection_id
                .map(|c| c.0.to_string())
                .unwrap_or_default()
        );
        let full = {
            let mut groups = self.0.groups.lock().unwrap_or_else(|e| e.into_inner());
            let group = groups.entry(key.clone()).or_insert_with(|| {
                let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
                let shared = self.0.clone();
                let key = key.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(window).await;
                    let due = {
                        let mut groups = shared.groups.lock().unwrap_or_else(|e| e.into_inner());
                        match groups.get(&key) {
                            Some(g) if g.id == id => groups.remove(&key),
                            _ => None,
                        }
                    };
                    if let Some(g) = due {
                        send_group(shared, g.items).await;
                    }
                });
                Group {
                    id,
                    max,
                    items: Vec::new(),
                }
            });
            group.items.push(item);
            if group.items.len() >= group.max {
                groups.remove(&key)
            } else {
                None
            }
        };
        if let Some(g) = full {
            tokio::spawn(send_group(self.0.clone(), g.items));
        }
    }
}

/// What one event's share of an exchange came to.
#[derive(Clone)]
struct Reply {
    response: Response,
    answer: Option<Answer>,
    /// The platform's rate limit or quota answered.
    throttled: bool,
}

/// Sends requests of one group as one, and reads the answer per event; a batch refused as a
/// whole is split in halves and each half sent again.
fn exchange<'a>(
    shared: &'a Shared,
    platform: Platform,
    requests: &'a [&'a Request],
) -> BoxFuture<'a, Vec<Reply>> {
    async move {
        let n = requests.len();
        let merged = batch::merge(platform, requests);
        let sent = super::platform_send::send_reading(
            &shared.client,
            &shared.config,
            platform,
            &merged,
            ANSWER_BYTES,
        )
        .await;
        let body = sent.response.body.as_deref().unwrap_or("");
        let throttled = sent
            .response
            .status
            .is_some_and(|s| batch::throttled(platform, s, body));
        let each = sent
            .response
            .status
            .filter(|_| !throttled)
            .and_then(|s| batch::interpret_each(platform, s, body, n));
        if let Some(each) = each {
            return each
                .into_iter()
                .map(|a| Reply {
                    response: sent.response.clone(),
                    answer: Some(a),
                    throttled: false,
                })
                .collect();
        }
        if n > 1 && !throttled && matches!(sent.answer, Some(Answer::Rejected(_))) {
            let (left, right) = requests.split_at(n / 2);
            let mut replies = exchange(shared, platform, left).await;
            replies.extend(exchange(shared, platform, right).await);
            return replies;
        }
        vec![
            Reply {
                response: sent.response,
                answer: sent.answer,
                throttled,
            };
            n
        ]
    }
    .boxed()
}

/// Sends one group (same connection and platform): within the connection's allowance, then
/// one result per delivery.
async fn send_group(shared: Arc<Shared>, mut items: Vec<Item>) {
    let Some(first) = items.first() else {
        return;
    };
    let Send::Platform { platform, .. } = &first.claimed.send else {
        return;
    };
    let platform = *platform;
    let workspace_id = first.claimed.workspace_id;
    let connection_id = first.claimed.connection_id;
    let started_at = Utc::now();

    // The connection's allowance: a throttled connection, or one past its quota, waits.
    if let Some(connection_id) = connection_id {
        let daily = daily_quota(&shared.config, platform, &items);
        let allowance = match postback_domain::store::db::conn(&shared.pool).await {
            Ok(mut conn) => {
                limits::reserve(&mut conn, workspace_id, connection_id, items.len(), daily).await
            }
            Err(e) => Err(e),
        };
        match allowance {
            Ok(a) => {
                if let Some((until, why)) = a.held {
                    let rest = items.split_off(a.granted.min(items.len()));
                    let claims: Vec<_> = rest
                        .iter()
                        .map(|i| (i.claimed.id, i.claimed.attempt))
                        .collect();
                    let error = limits::rate_limited_error(platform.label(), &why, until);
                    let postponed = match postback_domain::store::db::conn(&shared.pool).await {
                        Ok(mut conn) => {
                            if a.granted == 0 {
                                // Its other pending deliveries wait too, and say so.
                                let _ = limits::hold(
                                    &mut conn,
                                    workspace_id,
                                    connection_id,
                                    until,
                                    &why,
                                    &error,
                                )
                                .await;
                            }
                            limits::postpone(&mut conn, &claims, until, &error).await
                        }
                        Err(e) => Err(e),
                    };
                    if let Err(e) = postponed {
                        tracing::warn!(error = %e, count = claims.len(), "could not postpone rate-limited deliveries; they are retried when their lease ends");
                    }
                    drop(rest);
                }
            }
            Err(e) => {
                // Sending without the check beats not sending: the platform's own limit answers.
                tracing::warn!(error = %e, "could not read the connection's allowance; sending");
            }
        }
    }
    if items.is_empty() {
        return;
    }

    let requests: Vec<&Request> = items
        .iter()
        .filter_map(|i| match &i.claimed.send {
            Send::Platform { request: Ok(r), .. } => Some(r),
            _ => None,
        })
        .collect();
    if requests.len() != items.len() {
        return;
    }
    let replies = exchange(&shared, platform, &requests).await;

    // A throttling answer holds the connection (every instance) until the platform's time.
    let throttle = replies.iter().find(|r| r.throttled).map(|r| {
        let wait = r
            .response
            .retry_after
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .unwrap_or(limits::DEFAULT_HOLD)
            .min(limits::MAX_HOLD);
        let why = match &r.answer {
            Some(Answer::Retry(m)) | Some(Answer::Rejected(m)) => m.clone(),
            _ => format!("HTTP {}", r.response.status.unwrap_or(0)),
        };
        let until = Utc::now() + wait;
        (until, why)
    });
    if let (Some((until, why)), Some(connection_id)) = (&throttle, connection_id) {
        let error = limits::rate_limited_error(platform.label(), why, *until);
        let held = match postback_domain::store::db::conn(&shared.pool).await {
            Ok(mut conn) => {
                limits::hold(&mut conn, workspace_id, connection_id, *until, why, &error).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = held {
            tracing::warn!(error = %e, "could not hold a throttled connection");
        }
    }

    for (item, reply) in items.into_iter().zip(replies) {
        let result = outcome(
            &shared.config,
            &shared.metrics,
            platform,
            &item.claimed,
            started_at,
            reply,
            throttle.as_ref().map(|(until, _)| *until),
        );
        (shared.sink)(result, item.unwritten);
    }
}

/// The daily operations quota that applies to a group: Google Ads API uploads (each
/// conversion one operation), when the operator set one.
fn daily_quota(config: &DeliveryConfig, platform: Platform, items: &[Item]) -> Option<u32> {
    if platform != Platform::GoogleAds {
        return None;
    }
    let ads_api = items.iter().any(|i| {
        matches!(&i.claimed.send, Send::Platform { request: Ok(r), .. } if r.body.get("conversions").is_some())
    });
    ads_api
        .then_some(config.googleads_daily_operations)
        .flatten()
}

/// A delivery's result from its share of an exchange.
fn outcome(
    config: &DeliveryConfig,
    metrics: &Metrics,
    platform: Platform,
    c: &Claimed,
    started_at: chrono::DateTime<Utc>,
    reply: Reply,
    throttled_until: Option<chrono::DateTime<Utc>>,
) -> AttemptResult {
    let Reply {
        mut response,
        answer,
        throttled,
    } = reply;
    let mut late = None;
    let mut reconnect = None;
    let mut held = None;
    let (retryable, rejection) = match answer {
        Some(Answer::Retry(why)) if throttled => {
            held = Some(why.clone());
            (true, Some(why))
        }
        Some(Answer::Accepted) => (true, None),
        Some(Answer::Retry(why)) => (true, Some(why)),
        Some(Answer::RetryAt(at, why)) => {
            late = Some(at);
            let when = at.format("%Y-%m-%d %H:%M UTC");
            (true, Some(format!("Waiting until {when}: {why}")))
        }
        Some(Answer::Unauthorized(why)) => {
            let held = platforms::holds::held_error(platform.label(), &why);
            reconnect = Some(why);
            (true, Some(held))
        }
        Some(Answer::Rejected(why)) if throttled => {
            held = Some(why.clone());
            (true, Some(why))
        }
        Some(Answer::Rejected(why)) => (false, Some(why)),
        None if throttled => (true, None),
        // Could not connect, timed out: worth another try.
        None => (true, None),
    };
    let mut rejection = rejection;
    let succeeded = response.succeeded() && rejection.is_none() && !throttled;
    let timed_out = response.status.is_none()
        && response
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("timed out"));
    let (outcome, retry_at) = if succeeded {
        (AttemptOutcome::Succeeded, None)
    } else if throttled {
        let until = throttled_until.unwrap_or_else(|| Utc::now() + limits::DEFAULT_HOLD);
        let why = held.unwrap_or_else(|| format!("HTTP {}", response.status.unwrap_or(0)));
        rejection = Some(limits::rate_limited_error(platform.label(), &why, until));
        (AttemptOutcome::Retry, Some(until))
    } else {
        super::worker::after_failure(
            config,
            c.round_attempt,
            response.retry_after,
            reconnect.is_some(),
            late,
            retryable,
        )
    };
    metrics.delivery(
        platform.as_str(),
        match outcome {
            AttemptOutcome::Succeeded => DeliveryOutcome::Succeeded,
            AttemptOutcome::Retry => DeliveryOutcome::Retry,
            AttemptOutcome::Failed => DeliveryOutcome::Failed,
        },
        Some(response.duration),
    );
    if let Some(body) = response.body.as_mut() {
        cut(body, EXCERPT_BYTES);
    }
    let error = rejection.or(response.error);
    AttemptResult {
        delivery_id: c.id,
        workspace_id: c.workspace_id,
        webhook_id: None,
        attempt: c.attempt,
        started_at,
        duration_ms: i32::try_from(response.duration.as_millis()).unwrap_or(i32::MAX),
        status_code: response.status.map(i32::from),
        response_body: response.body,
        error,
        outcome,
        retry_at,
        timed_out,
        slotted: c.slotted,
        reconnect,
    }
}

/// Cuts `s` to at most `max` bytes, on a character boundary.
fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}
