//! Connections that keep no statement between transactions, for PgBouncer in transaction
//! pooling mode (`POSTBACK_DB_POOLER=transaction`).
//!
//! Such a pooler hands the client a different server connection after every transaction, and
//! an implicit transaction of the extended protocol ends at each `Sync`. PgBouncer before 1.21
//! (Debian 12 ships 1.18) does not follow prepared statements from one server to another, so a
//! statement prepared in one round trip (`Parse`, `Describe`, `Sync`) and run in the next
//! (`Bind`, `Execute`, `Sync`), as diesel-async and tokio-postgres always do, may be run on a
//! server that never saw it: "prepared statement "s4" does not exist", or worse, a statement of
//! the same name another client left there.
//!
//! [`Wire`] sits between tokio-postgres and the socket and rewrites what the client sends so
//! that no named statement ever exists on a server:
//! - `Parse` of a named statement becomes a `Parse` of the unnamed one (its text and parameter
//!   types are remembered under the name); `Describe` and `Close` of the name address the
//!   unnamed statement;
//! - a `Bind` of a statement that was not parsed earlier in the same round trip is preceded by
//!   its `Parse` again, so the statement is planned and run in one implicit transaction, on one
//!   server; the `ParseComplete` answering that added `Parse` is taken out of what the client
//!   reads.
//!
//! Every execution is therefore parsed again (planning included): the cost of the mode, which
//! `docs/performance.md` measures. Clients keep their statement caches (one round trip saved).
//! Named portals and pipelining of two prepared statements are not used by Postback.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How connections to PostgreSQL may use session state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pooler {
    /// Direct to PostgreSQL, or a pooler in session mode: statements are prepared once per
    /// connection and reused.
    #[default]
    Session,
    /// A pooler in transaction mode: nothing outlives a transaction (see the module's text).
    Transaction,
}

impl Pooler {
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            "" | "session" => Ok(Self::Session),
            "transaction" => Ok(Self::Transaction),
            other => Err(format!(
                "POSTBACK_DB_POOLER must be session or transaction, not {other:?}"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Transaction => "transaction",
        }
    }
}

/// Where the `ParseComplete` of a `Parse` goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// The client sent it and waits for the answer.
    Client,
    /// Added here before a `Bind`: its answer is dropped.
    Added,
}

/// The `Parse` messages of one round trip (up to `Sync` or a simple query), in order.
#[derive(Debug, Default)]
struct Trip {
    parses: VecDeque<Origin>,
    /// The client's round trip is complete (its `Sync` or `Query` was sent).
    closed: bool,
    /// The server answered an error: it skips the rest up to `Sync`, so no more answers.
    failed: bool,
}

/// The protocol rewriting of [`Wire`], apart from any I/O.
#[derive(Debug, Default)]
pub struct Rewriter {
    /// The startup message (no type byte) has been sent.
    started: bool,
    /// What the client wrote that is not yet a whole message.
    partial: Vec<u8>,
    /// Named statements: their `Parse` message, addressed to the unnamed statement.
    statements: HashMap<Vec<u8>, Vec<u8>>,
    /// The statement last parsed in the round trip being written (by the client's name).
    parsed: Option<Vec<u8>>,
    trips: VecDeque<Trip>,
    /// What the server sent that is not yet a whole message.
    incoming: Vec<u8>,
}

fn cstr(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = body.iter().position(|&b| b == 0)?;
    Some((&body[..end], &body[end + 1..]))
}

fn message(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = 4 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len + 1);
    out.push(tag);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

impl Rewriter {
    fn trip(&mut self) -> &mut Trip {
        if self.trips.back().is_none_or(|t| t.closed) {
            self.trips.push_back(Trip::default());
        }
        self.trips.back_mut().expect("pushed above")
    }

    fn note_parse(&mut self, origin: Origin) {
        let trip = self.trip();
        if !trip.failed {
            trip.parses.push_back(origin);
        }
    }

    /// Takes bytes the client wrote; appends what the server should get to `out`.
    pub fn outgoing(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.partial.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            let rest = &self.partial[at..];
            let (head, tagged) = if self.started { (5, true) } else { (4, false) };
            if rest.len() < head {
                break;
            }
            let len_at = usize::from(tagged);
            let len = u32::from_be_bytes([
                rest[len_at],
                rest[len_at + 1],
                rest[len_at + 2],
                rest[len_at + 3],
            ]) as usize;
            if len < 4 {
                return Err(io::Error::other("malformed PostgreSQL message"));
            }
            let total = len + usize::from(tagged);
            if rest.len() < total {
                break;
            }
            let msg = rest[..total].to_vec();
            at += total;
            if tagged {
                self.rewrite(&msg, out)?;
            } else {
                self.started = true;
                out.extend_from_slice(&msg);
            }
        }
        self.partial.drain(..at);
        Ok(())
    }

    fn rewrite(&mut self, msg: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let bad = || io::Error::other("malformed PostgreSQL message");
        let body = &msg[5..];
        match msg[0] {
            b'P' => {
                let (name, rest) = cstr(body).ok_or_else(bad)?;
                let unnamed = message(b'P', &[&[0], rest]);
                if !name.is_empty() {
                    self.statements.insert(name.to_vec(), unnamed.clone());
                }
                self.parsed = Some(name.to_vec());
                self.note_parse(Origin::Client);
                out.extend_from_slice(&unnamed);
            }
            b'B' => {
                let (portal, rest) = cstr(body).ok_or_else(bad)?;
                let (name, rest) = cstr(rest).ok_or_else(bad)?;
                if self.parsed.as_deref() != Some(name) {
                    if let Some(parse) = self.statements.get(name) {
                        out.extend_from_slice(parse);
                        self.parsed = Some(name.to_vec());
                        self.note_parse(Origin::Added);
                    }
                }
                self.trip();
                out.extend_from_slice(&message(b'B', &[portal, &[0], &[0], rest]));
            }
            kind @ (b'D' | b'C') if body.first() == Some(&b'S') => {
                let (name, _) = cstr(&body[1..]).ok_or_else(bad)?;
                if kind == b'C' {
                    self.statements.remove(name);
                }
                self.trip();
                out.extend_from_slice(&message(kind, &[b"S", &[0]]));
            }
            b'S' | b'Q' => {
                self.trip().closed = true;
                self.parsed = None;
                out.extend_from_slice(msg);
            }
            // Password and SASL messages belong to the startup; Terminate ends everything.
            b'p' | b'X' => out.extend_from_slice(msg),
            _ => {
                self.trip();
                out.extend_from_slice(msg);
            }
        }
        Ok(())
    }

    /// Takes bytes the server sent; appends what the client should read to `out`.
    pub fn incoming(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.incoming.extend_from_slice(bytes);
        let mut at = 0;
        while self.incoming.len() - at >= 5 {
            let rest = &self.incoming[at..];
            let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            if len < 4 {
                return Err(io::Error::other("malformed PostgreSQL message"));
            }
            if rest.len() < len + 1 {
                break;
            }
            let msg = &rest[..len + 1];
            let keep = match msg[0] {
                b'1' => match self.trips.front_mut() {
                    Some(trip) => trip.parses.pop_front() != Some(Origin::Added),
                    None => true,
                },
                b'E' => {
                    if let Some(trip) = self.trips.front_mut() {
                        trip.failed = true;
                        trip.parses.clear();
                    }
                    true
                }
                b'Z' => {
                    if self.trips.front().is_some_and(|t| t.closed) {
                        self.trips.pop_front();
                    }
                    true
                }
                _ => true,
            };
            if keep {
                out.extend_from_slice(msg);
            }
            at += len + 1;
        }
        self.incoming.drain(..at);
        Ok(())
    }
}

/// A stream rewritten by a [`Rewriter`] when one is given, else passed through untouched.
pub struct Wire<S> {
    inner: S,
    rewriter: Option<Box<Rewriter>>,
    /// Rewritten bytes not yet written to `inner`.
    to_server: Vec<u8>,
    /// Rewritten bytes not yet read by the client.
    to_client: Vec<u8>,
    to_client_at: usize,
}

impl<S> Wire<S> {
    pub fn new(inner: S, pooler: Pooler) -> Self {
        Self {
            inner,
            rewriter: (pooler == Pooler::Transaction).then(Box::default),
            to_server: Vec::new(),
            to_client: Vec::new(),
            to_client_at: 0,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// Writes `pending` to `inner` until it is empty or the socket is full.
fn drain<S: AsyncWrite + Unpin>(
    inner: &mut S,
    pending: &mut Vec<u8>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while !pending.is_empty() {
        let n = std::task::ready!(Pin::new(&mut *inner).poll_write(cx, pending))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        pending.drain(..n);
    }
    Poll::Ready(Ok(()))
}

impl<S: AsyncRead + Unpin> AsyncRead for Wire<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(rewriter) = this.rewriter.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        loop {
            if this.to_client_at < this.to_client.len() {
                let n = buf
                    .remaining()
                    .min(this.to_client.len() - this.to_client_at);
                buf.put_slice(&this.to_client[this.to_client_at..this.to_client_at + n]);
                this.to_client_at += n;
                if this.to_client_at == this.to_client.len() {
                    this.to_client.clear();
                    this.to_client_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut raw = [0u8; 16 * 1024];
            let mut read = ReadBuf::new(&mut raw);
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
            rewriter.incoming(read.filled(), &mut this.to_client)?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Wire<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(rewriter) = this.rewriter.as_mut() else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        if this.to_server.len() >= 64 * 1024 {
            std::task::ready!(drain(&mut this.inner, &mut this.to_server, cx))?;
        }
        rewriter.outgoing(buf, &mut this.to_server)?;
        // Written as far as the socket takes it now; the rest on flush.
        if let Poll::Ready(Err(e)) = drain(&mut this.inner, &mut this.to_server, cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(drain(&mut this.inner, &mut this.to_server, cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(drain(&mut this.inner, &mut this.to_server, cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, sql: &str) -> Vec<u8> {
        let mut body = name.as_bytes().to_vec();
        body.push(0);
        body.extend_from_slice(sql.as_bytes());
        body.extend_from_slice(&[0, 0, 0]);
        message(b'P', &[&body])
    }

    fn bind(name: &str) -> Vec<u8> {
        let mut body = vec![0];
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0]);
        message(b'B', &[&body])
    }

    fn startup() -> Vec<u8> {
        let mut m = 9u32.to_be_bytes().to_vec();
        m.extend_from_slice(&196608u32.to_be_bytes());
        m.push(0);
        m
    }

    fn tags(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            out.push(bytes[at]);
            let len =
                u32::from_be_bytes([bytes[at + 1], bytes[at + 2], bytes[at + 3], bytes[at + 4]])
                    as usize;
            at += len + 1;
        }
        out
    }

    #[test]
    fn a_prepared_statement_is_parsed_again_in_the_round_trip_that_runs_it() {
        let mut r = Rewriter::default();
        let mut out = Vec::new();
        r.outgoing(&startup(), &mut out).unwrap();
        assert_eq!(out, startup());
        out.clear();
        // Prepare: Parse s1, Describe s1, Sync — sent under the unnamed statement.
        let mut prepare = parse("s1", "SELECT 1");
        prepare.extend(message(b'D', &[b"Ss1\0"]));
        prepare.extend(message(b'S', &[]));
        r.outgoing(&prepare, &mut out).unwrap();
        assert_eq!(tags(&out), b"PDS");
        assert_eq!(&out[5..7], b"\0S", "Parse names the unnamed statement");
        out.clear();
        // Run it, split across two writes: Bind s1, Execute, Sync.
        let mut run = bind("s1");
        run.extend(message(b'E', &[b"\0\0\0\0\0"]));
        run.extend(message(b'S', &[]));
        r.outgoing(&run[..3], &mut out).unwrap();
        assert!(out.is_empty());
        r.outgoing(&run[3..], &mut out).unwrap();
        assert_eq!(
            tags(&out),
            b"PBES",
            "the Parse is sent again before the Bind"
        );
        assert!(!String::from_utf8_lossy(&out).contains("s1"));
        // The server's answers: the client sees one ParseComplete for its own Parse only.
        let mut seen = Vec::new();
        let mut answers = Vec::new();
        for tag in [b'1', b't', b'n', b'Z', b'1', b'2', b'C', b'Z'] {
            answers.extend(message(tag, &[]));
        }
        r.incoming(&answers, &mut seen).unwrap();
        assert_eq!(tags(&seen), b"1tnZ2CZ");
    }

    #[test]
    fn an_error_in_the_added_parse_reaches_the_client_and_the_count_stays_right() {
        let mut r = Rewriter::default();
        let mut out = Vec::new();
        r.outgoing(&startup(), &mut out).unwrap();
        let mut prepare = parse("s1", "SELECT 1");
        prepare.extend(message(b'S', &[]));
        let mut run = bind("s1");
        run.extend(message(b'S', &[]));
        r.outgoing(&prepare, &mut out).unwrap();
        r.outgoing(&run, &mut out).unwrap();
        r.outgoing(&run, &mut out).unwrap();
        let mut seen = Vec::new();
        let mut answers = Vec::new();
        // Prepared; the first run's added Parse fails; the second runs.
        for tag in [b'1', b'Z', b'E', b'Z', b'1', b'2', b'C', b'Z'] {
            answers.extend(message(tag, &[]));
        }
        r.incoming(&answers, &mut seen).unwrap();
        assert_eq!(tags(&seen), b"1ZEZ2CZ");
    }

    #[test]
    fn session_mode_is_not_rewritten() {
        assert!(Wire::new((), Pooler::Session).rewriter.is_none());
        assert_eq!(Pooler::parse("").unwrap(), Pooler::Session);
        assert_eq!(Pooler::parse("transaction").unwrap(), Pooler::Transaction);
        assert!(Pooler::parse("statement")
            .unwrap_err()
            .contains("session or transaction"));
    }
}
