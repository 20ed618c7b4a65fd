//! `--webhook`: the receiver deliveries go to, inside the bench process: a keep-alive HTTP/1.1
//! server on a free loopback port that answers every request 200 with an empty body as soon as
//! its body is read. Per request it records the arrival instant under the body's `"id"` (the
//! event id; the first arrival is kept) and counts requests and distinct `webhook-id`s (the
//! delivery id, the same on every retry), so a delivery sent twice shows as a duplicate.
//!
//! It is written on Tokio alone, like the load's client: hyper would need new entries in the
//! workspace's Cargo.lock, which the bench may not change. It reads `Content-Length` bodies
//! (what the delivery worker sends); a chunked request is counted as unrecognised and its
//! connection closed.
//!
//! `--platform` starts a second one that plays Meta's Conversions API: a request carries one
//! event or a batch of them in `data` (the worker batches a connection's events), each event id
//! read from `data[i].event_id` stands for its delivery id too (Meta deduplicates on it, and a
//! platform delivery carries no `webhook-id`), requests and events are counted apart (requests
//! per event), and every request is answered the way Meta answers accepted events.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::ids;

/// A request head longer than this closes the connection.
const MAX_HEAD: usize = 64 * 1024;
/// A body longer than this closes the connection (deliveries are a few KiB).
const MAX_BODY: usize = 16 * 1024 * 1024;
const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
const META_OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 61\r\n\r\n{\"events_received\":1,\"messages\":[],\"fbtrace_id\":\"AbenchXYZ1\"}";

/// What the receiver plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An outbound webhook endpoint (Standard Webhooks headers, `{"id": …}` bodies).
    Webhook,
    /// Meta's Conversions API (`{"data": [{"event_id": …}]}` bodies).
    Meta,
}

/// What the receiver has seen so far.
#[derive(Default)]
pub struct Seen {
    /// Event id → first arrival.
    pub first: HashMap<u128, Instant>,
    /// Every request, repeats included.
    pub requests: u64,
    /// Every event the requests carried, repeats included (one per request for webhooks).
    pub events: u64,
    /// Distinct `webhook-id` headers (delivery ids).
    pub webhook_ids: HashSet<u128>,
    /// Requests without a UUID `webhook-id` or a UUID `"id"` in the body (should be none).
    pub unrecognised: u64,
}

pub struct Receiver {
    /// Where the webhook points (`Kind::Webhook`), or the API's base URL (`Kind::Meta`).
    pub url: String,
    pub kind: Kind,
    seen: Arc<Mutex<Seen>>,
    accept: JoinHandle<()>,
}

impl Receiver {
    /// Binds 127.0.0.1:<free port> and serves until dropped, answering at once.
    pub async fn start(kind: Kind) -> Result<Self> {
        Self::start_slow(kind, std::time::Duration::ZERO).await
    }

    /// A receiver that answers each request `delay` after reading it (a slow or hanging
    /// receiver, for `--slow-webhook-ms`).
    pub async fn start_slow(kind: Kind, delay: std::time::Duration) -> Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .context("binding the webhook receiver")?;
        let addr = listener
            .local_addr()
            .context("the webhook receiver's address")?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let accept = tokio::spawn(accept(listener, seen.clone(), kind, delay));
        Ok(Self {
            url: match kind {
                Kind::Webhook => format!("http://{addr}/bench-hook"),
                Kind::Meta => format!("http://{addr}"),
            },
            kind,
            seen,
            accept,
        })
    }

    /// The tallies; hold the guard briefly, every delivery waits on it.
    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A handle that counts the events arrived so far, for the sampler.
    pub fn arrivals(&self) -> Arrivals {
        Arrivals(self.seen.clone())
    }
}

/// Reads how many distinct events a receiver has got, while it runs.
#[derive(Clone)]
pub struct Arrivals(Arc<Mutex<Seen>>);

impl Arrivals {
    /// Distinct events arrived so far (first arrivals; repeats are not counted).
    pub fn count(&self) -> u64 {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.first.len() as u64
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept(
    listener: TcpListener,
    seen: Arc<Mutex<Seen>>,
    kind: Kind,
    delay: std::time::Duration,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, seen.clone(), kind, delay));
            }
            // Out of file descriptors or similar: try again shortly rather than stop receiving.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

/// What the receiver needs from a request head.
struct Head {
    content_length: usize,
    chunked: bool,
    close: bool,
    webhook_id: Option<u128>,
}

fn parse_head(head: &[u8]) -> Head {
    let mut h = Head {
        content_length: 0,
        chunked: false,
        close: false,
        webhook_id: None,
    };
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            h.content_length = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            h.chunked = value.eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            h.close = value.eq_ignore_ascii_case(b"close");
        } else if name.eq_ignore_ascii_case(b"webhook-id") {
            h.webhook_id = ids::parse_uuid(value);
        }
    }
    h
}

/// The part of a delivery's body the receiver reads: the top-level event id.
#[derive(serde::Deserialize)]
struct DeliveryBody<'a> {
    #[serde(borrow)]
    id: &'a str,
}

/// The part of a Meta request the receiver reads: its events' ids.
#[derive(serde::Deserialize)]
struct MetaBody<'a> {
    #[serde(borrow)]
    data: Vec<MetaEvent<'a>>,
}

#[derive(serde::Deserialize)]
struct MetaEvent<'a> {
    #[serde(borrow)]
    event_id: &'a str,
}

fn record(seen: &Mutex<Seen>, kind: Kind, webhook_id: Option<u128>, body: &[u8], at: Instant) {
    // (delivery id, event id) per event the request carries; None: not recognised.
    let pairs: Option<Vec<(u128, u128)>> = match kind {
        Kind::Webhook => serde_json::from_slice::<DeliveryBody>(body)
            .ok()
            .and_then(|b| ids::parse_uuid(b.id.as_bytes()))
            .zip(webhook_id)
            .map(|(event, delivery)| vec![(delivery, event)]),
        Kind::Meta => serde_json::from_slice::<MetaBody>(body)
            .ok()
            .filter(|b| !b.data.is_empty())
            .and_then(|b| {
                b.data
                    .iter()
                    .map(|e| ids::parse_uuid(e.event_id.as_bytes()).map(|id| (id, id)))
                    .collect()
            }),
    };
    let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
    s.requests += 1;
    match pairs {
        Some(pairs) => {
            s.events += pairs.len() as u64;
            for (delivery, event) in pairs {
                s.webhook_ids.insert(delivery);
                s.first.entry(event).or_insert(at);
            }
        }
        None => s.unrecognised += 1,
    }
}

/// One connection: requests one after another (keep-alive), each answered 200 once read.
async fn serve(
    mut stream: TcpStream,
    seen: Arc<Mutex<Seen>>,
    kind: Kind,
    delay: std::time::Duration,
) {
    let ok = match kind {
        Kind::Webhook => OK,
        Kind::Meta => META_OK,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let mut searched = 0;
        let head_end = loop {
            if let Some(i) = ids::find(&buf[searched..], b"\r\n\r\n") {
                break searched + i + 4;
            }
            if buf.len() > MAX_HEAD {
                return;
            }
            searched = buf.len().saturating_sub(3);
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = parse_head(&buf[..head_end]);
        if head.chunked || head.content_length > MAX_BODY {
            seen.lock().unwrap_or_else(|e| e.into_inner()).unrecognised += 1;
            let _ = stream.write_all(ok).await;
            return;
        }
        let end = head_end + head.content_length;
        while buf.len() < end {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        record(
            &seen,
            kind,
            head.webhook_id,
            &buf[head_end..end],
            Instant::now(),
        );
        buf.drain(..end);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if stream.write_all(ok).await.is_err() || head.close {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let h = parse_head(
            b"POST /bench-hook HTTP/1.1\r\nContent-Length: 12\r\nwebhook-id: 0190f5c2-0000-7000-8000-000000000001\r\n\r\n",
        );
        assert_eq!(h.content_length, 12);
        assert_eq!(
            h.webhook_id,
            Some(0x0190_f5c2_0000_7000_8000_0000_0000_0001)
        );
        assert!(!h.chunked && !h.close);
        let h = parse_head(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        );
        assert!(h.chunked && h.close);
    }

    #[tokio::test]
    async fn records_arrivals_and_duplicates() {
        let r = Receiver::start(Kind::Webhook).await.expect("receiver");
        postback_runtime::tls::install_provider();
        let http = reqwest::Client::new();
        let body =
            r#"{"id":"0190f5c2-7d3e-7a41-9b1c-3f2e4d5c6b7a","event":"purchase","data":{"id":"x"}}"#;
        for delivery in [
            "0190f5c2-0000-7000-8000-000000000001",
            "0190f5c2-0000-7000-8000-000000000001",
            "0190f5c2-0000-7000-8000-000000000002",
        ] {
            let resp = http
                .post(&r.url)
                .header("webhook-id", delivery)
                .body(body)
                .send()
                .await
                .expect("sent");
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.bytes().await.expect("body").len(), 0);
        }
        let resp = http.post(&r.url).body("{}").send().await.expect("sent");
        assert_eq!(resp.status(), 200);
        let s = r.seen();
        assert_eq!(s.requests, 4);
        assert_eq!(s.webhook_ids.len(), 2);
        assert_eq!(s.unrecognised, 1);
        assert!(s
            .first
            .contains_key(&0x0190_f5c2_7d3e_7a41_9b1c_3f2e_4d5c_6b7a));
        assert_eq!(s.first.len(), 1);
    }

    #[tokio::test]
    async fn plays_meta_keyed_by_event_id() {
        let r = Receiver::start(Kind::Meta).await.expect("receiver");
        postback_runtime::tls::install_provider();
        let http = reqwest::Client::new();
        let url = format!("{}/v26.0/1234/events", r.url);
        let body = r#"{"data":[{"event_name":"Purchase","event_id":"0190f5c2-7d3e-7a41-9b1c-3f2e4d5c6b7a","action_source":"website"}],"access_token":"t"}"#;
        for _ in 0..2 {
            let resp = http.post(&url).body(body).send().await.expect("sent");
            assert_eq!(resp.status(), 200);
            let answer: serde_json::Value = resp.json().await.expect("json");
            assert_eq!(answer["events_received"], 1);
        }
        let resp = http
            .post(&url)
            .body(r#"{"data":[]}"#)
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), 200);
        let s = r.seen();
        assert_eq!(s.requests, 3);
        assert_eq!(
            s.webhook_ids.len(),
            1,
            "the event id stands for the delivery"
        );
        assert_eq!(s.unrecognised, 1);
        assert_eq!(s.first.len(), 1);
        assert_eq!(s.events, 2);
    }

    #[tokio::test]
    async fn counts_a_batched_meta_request_per_event() {
        let r = Receiver::start(Kind::Meta).await.expect("receiver");
        postback_runtime::tls::install_provider();
        let http = reqwest::Client::new();
        let url = format!("{}/v26.0/1234/events", r.url);
        let body = r#"{"data":[{"event_id":"0190f5c2-7d3e-7a41-9b1c-3f2e4d5c6b7a"},{"event_id":"0190f5c2-7d3e-7a41-9b1c-3f2e4d5c6b7b"},{"event_id":"0190f5c2-7d3e-7a41-9b1c-3f2e4d5c6b7c"}],"access_token":"t"}"#;
        let resp = http.post(&url).body(body).send().await.expect("sent");
        assert_eq!(resp.status(), 200);
        let s = r.seen();
        assert_eq!(s.requests, 1);
        assert_eq!(s.events, 3);
        assert_eq!(s.first.len(), 3);
        assert_eq!(s.webhook_ids.len(), 3);
        assert_eq!(s.unrecognised, 0);
    }
}
