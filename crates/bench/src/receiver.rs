//! `--webhook`: a minimal HTTP/1.1 receiver on loopback that answers every delivery 200 at once
//! and records when each event first arrived (by the orderId the load gave it), and how many
//! arrivals were repeats.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// (load connection, request number) → first arrival.
pub type Arrivals = HashMap<(usize, u64), Instant>;

#[derive(Default)]
pub struct Seen {
    pub first: Arrivals,
    pub requests: u64,
    pub repeats: u64,
    /// Bodies without a bench orderId (should be none).
    pub unrecognised: u64,
}

pub struct Receiver {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
}

impl Receiver {
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .context("binding the webhook receiver")?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Ok(Self {
            url: format!("http://{addr}/bench-hook"),
            seen,
        })
    }

    pub fn snapshot(&self) -> (usize, u64, u64, u64) {
        let s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        (s.first.len(), s.requests, s.repeats, s.unrecognised)
    }
}

/// `"orderId":"ORD-<run>-<conn>-<n>"` → (conn, n).
fn order_key(body: &[u8]) -> Option<(usize, u64)> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("\"orderId\":\"")? + "\"orderId\":\"".len();
    let rest = &text[start..];
    let id = &rest[..rest.find('"')?];
    let mut parts = id.rsplitn(3, '-');
    let n = parts.next()?.parse().ok()?;
    let conn = parts.next()?.parse().ok()?;
    Some((conn, n))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> usize {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Seen>>) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        // One request: headers, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let total = head_end + content_length(&buf[..head_end]);
        while buf.len() < total {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let at = Instant::now();
        {
            let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
            s.requests += 1;
            match order_key(&buf[head_end..total]) {
                Some(key) => {
                    if s.first.insert(key, at).is_some() {
                        s.repeats += 1;
                    }
                }
                None => s.unrecognised += 1,
            }
        }
        buf.drain(..total);
        if stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn order_keys() {
        assert_eq!(
            super::order_key(br#"{"data":{"orderId":"ORD-123-1700000000000-7-42","x":1}}"#),
            Some((7, 42))
        );
        assert_eq!(super::order_key(b"{}"), None);
    }
}
