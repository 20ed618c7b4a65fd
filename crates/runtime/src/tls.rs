//! The process's TLS crypto provider for outgoing HTTPS (webhooks, ad platforms, OAuth token
//! endpoints): ring, the back end the PostgreSQL connections use too. reqwest is built without a
//! provider of its own (`rustls-no-provider`) and takes the process default, so this runs
//! before any client is built; certificates are checked against the system's trust store
//! (rustls-platform-verifier).

/// Installs ring as the process default. Idempotent: a provider installed before is kept.
pub fn install_provider() {
    // An `Err` says a provider is already installed, which is what this wants.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
