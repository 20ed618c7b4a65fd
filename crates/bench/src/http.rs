//! A minimal keep-alive HTTP/1.1 client: the load generator shares the machine with the server,
//! so it does as little work per request as possible. It reads the status line and a
//! `Content-Length` body, which is what actix-web sends for JSON answers.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

    /// Sends one JSON POST and returns the status once the whole response is read.
    pub async fn post_json(
        &mut self,
        path: &str,
        host: &str,
        key: &str,
        body: &[u8],
    ) -> std::io::Result<u16> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nX-CC-Api-Key: {key}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut request = Vec::with_capacity(head.len() + body.len());
        request.extend_from_slice(head.as_bytes());
        request.extend_from_slice(body);
        self.stream.write_all(&request).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> std::io::Result<u16> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        let header_end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
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
        let mut have = self.buf.len() - header_end;
        while have < length {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(bad("connection closed mid-body"));
            }
            have += n;
        }
        Ok(status)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
