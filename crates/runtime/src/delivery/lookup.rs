//! The DNS lookup behind webhook targets: the save-time check and the delivery client's resolver
//! both ask it, so they see the same answers. Production uses the system resolver; code that
//! builds the state (tests) may hand in another one through `DeliveryConfig::lookup` to play DNS
//! that changes between save and send. No setting or request can change it.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use futures_util::future::BoxFuture;

type LookupFn = dyn Fn(&str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> + Send + Sync;

/// Resolves a host name to its addresses.
#[derive(Clone)]
pub struct Lookup(Arc<LookupFn>);

impl Lookup {
    /// A lookup answered by `resolve`.
    pub fn new(
        resolve: impl Fn(&str) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(resolve))
    }

    /// The operating system's resolver (`getaddrinfo`, through Tokio).
    pub fn system() -> Self {
        Self::new(|host| {
            let host = host.to_owned();
            Box::pin(async move {
                Ok(tokio::net::lookup_host((host.as_str(), 0))
                    .await?
                    .map(|a| a.ip())
                    .collect())
            })
        })
    }

    pub async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        (self.0)(host).await
    }
}

impl Default for Lookup {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lookup")
    }
}
