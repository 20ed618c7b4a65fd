//! `--webhook`: the receiver deliveries go to, inside the bench process: hyper's HTTP/1.1 server
//! on a free loopback port, answering every request 200 with an empty body as soon as its body
//! is read. Per request it records the arrival instant under the body's `"id"` (the event id;
//! the first arrival is kept), and counts requests and distinct `webhook-id`s (the delivery id,
//! the same on every retry), so repeated sends of one delivery show as duplicates.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::ids;

/// What the receiver has seen so far.
#[derive(Default)]
pub struct Seen {
    /// Event id → first arrival.
    pub first: HashMap<u128, Instant>,
    /// Every request, repeats included.
    pub requests: u64,
    /// Distinct `webhook-id` headers (delivery ids).
    pub webhook_ids: HashSet<u128>,
    /// Requests without a UUID `webhook-id` or a UUID `"id"` in the body (should be none).
    pub unrecognised: u64,
}

pub struct Receiver {
    /// Where the webhook points.
    pub url: String,
    seen: Arc<Mutex<Seen>>,
    accept: JoinHandle<()>,
}

impl Receiver {
    /// Binds 127.0.0.1:<free port> and serves until dropped.
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .context("binding the webhook receiver")?;
        let addr = listener
            .local_addr()
            .context("the webhook receiver's address")?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let accept = tokio::spawn(accept(listener, seen.clone()));
        Ok(Self {
            url: format!("http://{addr}/bench-hook"),
            seen,
            accept,
        })
    }

    /// The tallies; hold the guard briefly, every delivery waits on it.
    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept(listener: TcpListener, seen: Arc<Mutex<Seen>>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors or similar: try again shortly rather than stop receiving.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let seen = seen.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, seen.clone()));
            // A connection the worker drops mid-request only ends that connection.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The part of a delivery's body the receiver reads: the top-level event id.
#[derive(serde::Deserialize)]
struct DeliveryBody<'a> {
    #[serde(borrow)]
    id: &'a str,
}

async fn handle(
    req: Request<Incoming>,
    seen: Arc<Mutex<Seen>>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let webhook_id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| ids::parse_uuid(v.as_bytes()));
    // A body that breaks off is still counted (as unrecognised); the answer is 200 regardless.
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let at = Instant::now();
    let event_id = serde_json::from_slice::<DeliveryBody>(&body)
        .ok()
        .and_then(|b| ids::parse_uuid(b.id.as_bytes()));
    {
        let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
        s.requests += 1;
        match (webhook_id, event_id) {
            (Some(delivery), Some(event)) => {
                s.webhook_ids.insert(delivery);
                s.first.entry(event).or_insert(at);
            }
            _ => s.unrecognised += 1,
        }
    }
    Ok(Response::new(Empty::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_arrivals_and_duplicates() {
        let r = Receiver::start().await.expect("receiver");
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
}
