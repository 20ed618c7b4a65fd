//! The HTTP client deliveries go through: a timeout, no redirects, names resolved through the
//! delivery lookup with refused addresses dropped (so a name that changes its DNS after the
//! webhook was saved is still caught) and, while private targets are refused, no proxy (which
//! would resolve names itself); responses are read only as far as the stored excerpt.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::lookup::Lookup;
use super::{ssrf, DeliveryConfig};

/// Resolves through the delivery [`Lookup`]; unless private targets are allowed, drops refused
/// addresses and fails when none is left.
struct GuardedResolver {
    lookup: Lookup,
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let lookup = self.lookup.clone();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = lookup
                .resolve(&host)
                .await?
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| allow_private || ssrf::refusal(a.ip()).is_none())
                .collect();
            if allowed.is_empty() {
                let why = addrs
                    .first()
                    .and_then(|a| ssrf::refusal(a.ip()).map(|w| format!("{} ({w})", a.ip())))
                    .unwrap_or_else(|| "no address".into());
                return Err(format!("refused: {host} resolves to {why}").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// What one request produced.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: Option<u16>,
    /// The first bytes of the body (lossy UTF-8).
    pub body: Option<String>,
    pub error: Option<String>,
    pub duration: Duration,
    pub retry_after: Option<Duration>,
}

impl Response {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl Client {
    /// A client with the configuration's timeout, private-target policy and lookup.
    pub fn new(config: &DeliveryConfig) -> Self {
        crate::tls::install_provider();
        let timeout = config.timeout;
        let allow_private = config.allow_private_targets;
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Postback-Webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64)
            .dns_resolver(Arc::new(GuardedResolver {
                lookup: config.lookup.clone(),
                allow_private,
            }));
        if !allow_private {
            // Through a proxy (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) the proxy would resolve
            // the target's name, out of the guard's sight, and could reach private addresses.
            builder = builder.no_proxy();
        }
        // Built once at start-up. Falling back to a default client would send deliveries without
        // the guard, the timeout or the redirect policy, so a failure here (the TLS back end
        // cannot start) stops the server instead: it fails closed.
        let http = builder
            .build()
            .unwrap_or_else(|e| panic!("the delivery HTTP client cannot be built: {e}"));
        Self {
            http,
            allow_private,
            timeout,
        }
    }

    /// POSTs a JSON body; never fails: every problem is described in the response.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(impl AsRef<str>, String)],
        body: Vec<u8>,
        excerpt_bytes: usize,
    ) -> Response {
        self.post_as("application/json", url, headers, body, excerpt_bytes)
            .await
    }

    /// [`Client::post`] with another content type (an OAuth token endpoint's form).
    pub async fn post_as(
        &self,
        content_type: &str,
        url: &str,
        headers: &[(impl AsRef<str>, String)],
        body: Vec<u8>,
        excerpt_bytes: usize,
    ) -> Response {
        self.send(
            reqwest::Method::POST,
            Some(content_type),
            url,
            headers,
            body,
            excerpt_bytes,
        )
        .await
    }

    /// A GET (an ad platform's account lists), with the same guard and limits.
    pub async fn get(
        &self,
        url: &str,
        headers: &[(impl AsRef<str>, String)],
        excerpt_bytes: usize,
    ) -> Response {
        self.send(
            reqwest::Method::GET,
            None,
            url,
            headers,
            Vec::new(),
            excerpt_bytes,
        )
        .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        content_type: Option<&str>,
        url: &str,
        headers: &[(impl AsRef<str>, String)],
        body: Vec<u8>,
        excerpt_bytes: usize,
    ) -> Response {
        let started = Instant::now();
        let failed = |error: String, started: Instant| Response {
            status: None,
            body: None,
            error: Some(error),
            duration: started.elapsed(),
            retry_after: None,
        };
        let parsed = match url::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return failed(format!("invalid URL: {e}"), started),
        };
        if !self.allow_private {
            let literal: Option<IpAddr> = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if let Some(ip) = literal {
                if let Some(why) = ssrf::refusal(ip) {
                    return failed(format!("refused: {ip} is {why}"), started);
                }
            }
        }
        let mut req = self.http.request(method, parsed);
        if let Some(content_type) = content_type {
            req = req.header("Content-Type", content_type).body(body);
        }
        // Content-Type is set once above, whatever the headers say.
        for (k, v) in headers
            .iter()
            .filter(|(k, _)| !k.as_ref().eq_ignore_ascii_case("content-type"))
        {
            req = req.header(k.as_ref(), v);
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return failed(self.describe(&e), started),
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut excerpt: Vec<u8> = Vec::new();
        let mut read_error = None;
        while excerpt.len() < excerpt_bytes {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = excerpt_bytes - excerpt.len();
                    excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(self.describe(&e));
                    break;
                }
            }
        }
        let error = if status.is_redirection() {
            Some(format!(
                "redirect ({}) to {} not followed",
                status.as_u16(),
                location.as_deref().unwrap_or("nowhere")
            ))
        } else if !status.is_success() {
            Some(format!("receiver answered {status}"))
        } else {
            read_error
        };
        Response {
            status: Some(status.as_u16()),
            body: Some(String::from_utf8_lossy(&excerpt).into_owned()),
            error,
            duration: started.elapsed(),
            retry_after,
        }
    }

    fn describe(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!("timed out after {} ms", self.timeout.as_millis());
        }
        // The innermost cause says what happened ("Connection refused", "refused: … resolves to …").
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        if e.is_connect() {
            format!("could not connect: {cause}")
        } else {
            format!("request failed: {cause}")
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
    let secs = (when.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs as u64))
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_after_forms() {
        assert_eq!(
            super::parse_retry_after("120"),
            Some(std::time::Duration::from_secs(120))
        );
        assert_eq!(
            super::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(std::time::Duration::from_secs(0))
        );
        assert_eq!(super::parse_retry_after("soon"), None);
    }
}
