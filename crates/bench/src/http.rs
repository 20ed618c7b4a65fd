//! A minimal keep-alive HTTP/1.1 client: the load generator shares the machine with the server,
//! so it does as little work per request as possible. It reads the status line and a
//! `Content-Length` body, which is what actix-web sends for JSON answers, and picks the
//! `eventId` out of a 200's body (a byte search, no JSON parse) for `--webhook`.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::ids;

/// The User-Agent of the `go` load: a person's browser, so clicks are scored as people's.
const BROWSER: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

/// What one request got back.
pub struct Answer {
    pub status: u16,
    /// The `eventId` of a 200 answer, when `post_json` was asked for it and the body has one.
    pub event_id: Option<u128>,
}

pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends one JSON POST and returns the status once the whole response is read; with
    /// `want_event_id`, also the `eventId` of a 200 answer.
    pub async fn post_json(
        &mut self,
        path: &str,
        host: &str,
        key: &str,
        body: &[u8],
        want_event_id: bool,
    ) -> std::io::Result<Answer> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nX-CC-Api-Key: {key}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut request = Vec::with_capacity(head.len() + body.len());
        request.extend_from_slice(head.as_bytes());
        request.extend_from_slice(body);
        self.stream.write_all(&request).await?;
        self.read_response(want_event_id).await
    }

    /// Sends one GET as a browser would (a desktop Chrome User-Agent) and returns the status
    /// once the whole response is read.
    pub async fn get(&mut self, path: &str, host: &str) -> std::io::Result<Answer> {
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {BROWSER}\r\nAccept: text/html\r\n\r\n"
        );
        self.stream.write_all(head.as_bytes()).await?;
        self.read_response(false).await
    }

    async fn read_response(&mut self, want_event_id: bool) -> std::io::Result<Answer> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        let header_end = loop {
            if let Some(pos) = ids::find(&self.buf, b"\r\n\r\n") {
                break pos + 4;
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(bad("connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&self.buf[..header_end]).map_err(|_| bad("head"))?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("status"))?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .ok_or_else(|| bad("content-length"))?;
        while self.buf.len() - header_end < length {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(bad("connection closed mid-body"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let event_id = if want_event_id && status == 200 {
            ids::json_uuid_field(&self.buf[header_end..header_end + length], "eventId")
        } else {
            None
        };
        Ok(Answer { status, event_id })
    }
}
