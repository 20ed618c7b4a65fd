//! Every connection to PostgreSQL is opened here, so that `sslmode` and `sslrootcert` in
//! `DATABASE_URL` apply to all of them: the pool, migrations, the inbound fast path, the click
//! store, the delivery worker's LISTEN connection and the bench.
//!
//! The two settings follow libpq (<https://www.postgresql.org/docs/current/libpq-ssl.html>):
//!
//! | `sslmode` | encrypted | server certificate checked |
//! | --- | --- | --- |
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers TLS | no |
//! | `require` | always | no; as `verify-ca` when `sslrootcert` is given |
//! | `verify-ca` | always | signed by a trusted root |
//! | `verify-full` | always | signed by a trusted root and issued for the host name (or IP) |
//!
//! `sslrootcert` is a PEM file of the trusted roots, or `system` for the operating system's
//! roots; without it the system roots are trusted. As with libpq, `sslmode` does not apply to
//! Unix-socket connections, which PostgreSQL never encrypts. TLS is rustls (ring), with SCRAM
//! channel binding (`tls-server-end-point`).
//!
//! With `POSTBACK_DB_POOLER=transaction` ([`set_pooler`]) every connection but the delivery
//! listener's goes through [`super::pooler::Wire`], which keeps no prepared statement on the
//! server between transactions (for PgBouncer in transaction pooling mode). That mode needs a
//! TCP host: tokio-postgres hands the stream to the rewriting only on the TLS hook, so it starts
//! TLS negotiation itself (`SSLRequest`, then TLS or plain text as `sslmode` allows).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use diesel_async::AsyncPgConnection;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::{Host, SslMode as WireMode};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use super::pooler::{Pooler, Wire};
use crate::error::{DomainError, DomainResult};

static POOLER: OnceLock<Pooler> = OnceLock::new();

/// Sets how every later connection treats session state (once per process, at start-up; the
/// server binary does it from `POSTBACK_DB_POOLER`). Unset: [`Pooler::Session`].
pub fn set_pooler(pooler: Pooler) {
    let _ = POOLER.set(pooler);
}

/// The process's pooler mode.
pub fn pooler() -> Pooler {
    POOLER.get().copied().unwrap_or_default()
}

/// The `sslmode` values Postback understands (libpq's, less `allow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            "allow" => {
                return Err("sslmode=allow is not supported; use prefer or disable".into());
            }
            other => {
                return Err(format!(
                "sslmode must be disable, prefer, require, verify-ca or verify-full, not {other:?}"
            ))
            }
        })
    }
}

/// A connection string taken apart: tokio-postgres's settings, and the TLS ones it does not know.
#[derive(Debug)]
pub struct Settings {
    pub config: tokio_postgres::Config,
    pub mode: SslMode,
    pub root_cert: Option<String>,
}

impl Settings {
    /// Where it connects, without user or password: for messages.
    pub fn describe(&self) -> String {
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{}:{port}", hosts.join(","))
    }

    fn unix_only(&self) -> bool {
        let hosts = self.config.get_hosts();
        !hosts.is_empty()
            && self.config.get_hostaddrs().is_empty()
            && hosts.iter().all(|h| !matches!(h, Host::Tcp(_)))
    }
}

/// Parses a `postgres://` URL or a `key=value` connection string, taking out `sslmode` and
/// `sslrootcert`. The error names the setting and never repeats the password.
pub fn settings(url: &str) -> Result<Settings, String> {
    let (rest, mode, root_cert) =
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            split_url(url)?
        } else {
            split_key_values(url)?
        };
    let mode = match mode {
        Some(m) => SslMode::parse(&m)?,
        None => SslMode::Prefer,
    };
    let mut config = tokio_postgres::Config::from_str(&rest)
        .map_err(|e| format!("the database URL is not valid: {e}"))?;
    config.ssl_mode(match mode {
        SslMode::Disable => WireMode::Disable,
        SslMode::Prefer => WireMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireMode::Require,
    });
    let mut settings = Settings {
        config,
        mode,
        root_cert: root_cert.filter(|r| !r.is_empty()),
    };
    if settings.unix_only() {
        settings.config.ssl_mode(WireMode::Disable);
    }
    Ok(settings)
}

type Split = (String, Option<String>, Option<String>);

/// `postgres://…?a=b&sslmode=…`: the URL without the TLS parameters, and their decoded values.
fn split_url(url: &str) -> Result<Split, String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None, None));
    };
    let (mut mode, mut root) = (None, None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|v| v.into_owned())
                .map_err(|_| "the database URL has a parameter that is not UTF-8".to_owned())
        };
        match decode(key)?.as_str() {
            "sslmode" => mode = Some(decode(value)?),
            "sslrootcert" => root = Some(decode(value)?),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, mode, root))
}

/// `host=… sslmode=…` (libpq's key/value form, values optionally in single quotes with `\`
/// escapes): the string without the TLS settings, and their values.
fn split_key_values(s: &str) -> Result<Split, String> {
    let bytes = s.as_bytes();
    let (mut mode, mut root) = (None, None);
    let mut kept = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &s[start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            return Err(format!(
                "the database connection string has {key:?} without a value"
            ));
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = Vec::new();
        if i < bytes.len() && bytes[i] == b'\'' {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => {
                        return Err(format!(
                            "the database connection string has an unclosed quote in {key:?}"
                        ))
                    }
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < bytes.len() => {
                        value.push(bytes[i + 1]);
                        i += 2;
                    }
                    Some(&b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                value.push(bytes[i]);
                i += 1;
            }
        }
        let value = String::from_utf8_lossy(&value).into_owned();
        match key {
            "sslmode" => mode = Some(value),
            "sslrootcert" => root = Some(value),
            _ => kept.push(&s[start..i]),
        }
    }
    Ok((kept.join(" "), mode, root))
}

/// A raw connection's background half; drive it (spawn it) for the client to work.
pub type Connection = tokio_postgres::Connection<tokio_postgres::Socket, TlsStream>;

/// Opens one connection as `url` says, in the process's [`pooler`] mode. Errors say where to
/// and with which `sslmode`.
pub async fn connect(url: &str) -> DomainResult<(tokio_postgres::Client, Connection)> {
    connect_with(url, pooler()).await
}

/// Runs `work` on `client` inside a transaction opened by `begin` (`BEGIN`, and any `SET LOCAL`
/// that should hold for it), committing if it succeeds. Whatever fails, the connection is left
/// outside a transaction for its next user.
pub async fn in_transaction<T>(
    client: &tokio_postgres::Client,
    begin: &str,
    work: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    client.batch_execute(begin).await?;
    let done = async {
        let value = work.await?;
        client.batch_execute("COMMIT").await?;
        Ok(value)
    }
    .await;
    if done.is_err() && !client.is_closed() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    done
}

/// Opens one connection ([`connect`]) kept by one task, with its driver running on the current
/// Tokio runtime; should the connection close with an error, it is logged as `what`'s.
pub async fn connect_kept(url: &str, what: &'static str) -> DomainResult<tokio_postgres::Client> {
    let (client, connection) = connect(url).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "{what} connection closed");
        }
    });
    Ok(client)
}

/// Applies a session setting (`set`, a `SET …` statement) to a connection kept by one task,
/// unless connections go through a transaction pooler (`POSTBACK_DB_POOLER=transaction`), where
/// a session setting would land on a server connection other clients share. A failure is
/// reported as `what`'s.
pub async fn set_unless_pooled(
    client: &tokio_postgres::Client,
    set: &str,
    what: &str,
) -> DomainResult<()> {
    if pooler() == Pooler::Session {
        client
            .batch_execute(set)
            .await
            .map_err(|e| crate::error::pg_error(what, e))?;
    }
    Ok(())
}

/// Opens one connection that keeps its session: for `LISTEN`, which a transaction pooler cannot
/// carry (its notifications would go to whichever client holds that server connection).
pub async fn connect_session(url: &str) -> DomainResult<(tokio_postgres::Client, Connection)> {
    connect_with(url, Pooler::Session).await
}

/// Opens one connection in the given pooler mode, whatever the process's.
pub async fn connect_with(
    url: &str,
    pooler: Pooler,
) -> DomainResult<(tokio_postgres::Client, Connection)> {
    let mut settings =
        settings(url).map_err(|e| DomainError::Unavailable(format!("DATABASE_URL: {e}")))?;
    let mut tls = MakeTls::for_settings(&settings)
        .map_err(|e| DomainError::Unavailable(format!("DATABASE_URL: {e}")))?;
    if pooler == Pooler::Transaction {
        if settings.unix_only() {
            return Err(DomainError::Unavailable(
                "POSTBACK_DB_POOLER=transaction needs DATABASE_URL with a TCP host, not a Unix socket"
                    .into(),
            ));
        }
        // tokio-postgres then hands the bare socket to the TLS hook, which negotiates itself.
        tls.negotiate = Some(settings.mode);
        settings.config.ssl_mode(WireMode::Require);
        settings
            .config
            .ssl_negotiation(tokio_postgres::config::SslNegotiation::Direct);
    }
    settings.config.connect(tls).await.map_err(|e| {
        DomainError::Unavailable(format!(
            "connecting to PostgreSQL at {} (sslmode={}): {}",
            settings.describe(),
            settings.mode.as_str(),
            error_chain(&e)
        ))
    })
}

/// A diesel connection over [`connect`].
pub async fn establish(url: &str) -> DomainResult<AsyncPgConnection> {
    let (client, connection) = connect(url).await?;
    AsyncPgConnection::try_from_client_and_connection(client, connection)
        .await
        .map_err(|e| DomainError::Unavailable(e.to_string()))
}

/// The error with its causes (tokio-postgres keeps the TLS reason in the source).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The trusted roots: a PEM file, or the system's.
fn roots(root_cert: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match root_cert {
        Some(path) if path != "system" => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("sslrootcert {path}: {e}"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("sslrootcert {path}: {e}"))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("sslrootcert {path}: no certificate in the file"));
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(
                    "no system root certificates found; set sslrootcert to a PEM file".into(),
                );
            }
        }
    }
    Ok(store)
}

/// The rustls client settings of one (mode, roots) pair, built once per process.
fn client_config(mode: SslMode, root_cert: Option<&str>) -> Result<Arc<ClientConfig>, String> {
    type Key = (SslMode, Option<String>);
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<ClientConfig>>>> = OnceLock::new();
    let key = (mode, root_cert.map(str::to_owned));
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(found);
    }
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    // `require` with an explicit root file checks the chain, as libpq does.
    let check_chain = match mode {
        SslMode::VerifyCa | SslMode::VerifyFull => true,
        SslMode::Require => root_cert.is_some(),
        SslMode::Disable | SslMode::Prefer => false,
    };
    let config = if check_chain {
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots(root_cert)?), provider)
                .build()
                .map_err(|e| e.to_string())?;
        if mode == SslMode::VerifyFull {
            builder.with_webpki_verifier(verifier).with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
                .with_no_client_auth()
        }
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
            .with_no_client_auth()
    };
    let config = Arc::new(config);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, config.clone());
    }
    Ok(config)
}

/// `verify-ca`: the chain must lead to a trusted root; the name is not compared.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The name is compared only once the chain has been verified.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without roots: encrypted, certificate not checked (libpq's meaning).
/// The handshake signatures are still verified.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// tokio-postgres's TLS hook over rustls.
#[derive(Clone)]
pub struct MakeTls {
    config: Option<Arc<ClientConfig>>,
    /// Transaction pooler mode: the hook gets the bare socket, sends `SSLRequest` itself as this
    /// `sslmode` says, and rewrites the protocol ([`Wire`]).
    negotiate: Option<SslMode>,
}

impl MakeTls {
    fn for_settings(settings: &Settings) -> Result<Self, String> {
        let config = match settings.config.get_ssl_mode() {
            WireMode::Disable => None,
            _ => Some(client_config(settings.mode, settings.root_cert.as_deref())?),
        };
        Ok(Self {
            config,
            negotiate: None,
        })
    }
}

impl<S> MakeTlsConnect<S> for MakeTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = Connector;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Connector, io::Error> {
        // Called for Unix sockets too (with no name), where TLS is never started: the name is
        // checked only when a handshake begins.
        Ok(Connector {
            config: self.config.clone(),
            domain: domain.to_owned(),
            negotiate: self.negotiate,
        })
    }
}

pub struct Connector {
    config: Option<Arc<ClientConfig>>,
    domain: String,
    negotiate: Option<SslMode>,
}

impl<S> TlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsStream<S>>> + Send>>;

    fn connect(self, mut stream: S) -> Self::Future {
        Box::pin(async move {
            if let Some(mode) = self.negotiate {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                if mode == SslMode::Disable {
                    return Ok(TlsStream::plain(stream, Pooler::Transaction));
                }
                // SSLRequest: length 8, code 80877103.
                stream
                    .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
                    .await?;
                let mut answer = [0u8];
                stream.read_exact(&mut answer).await?;
                if answer[0] != b'S' {
                    if mode == SslMode::Prefer {
                        return Ok(TlsStream::plain(stream, Pooler::Transaction));
                    }
                    return Err(io::Error::other(format!(
                        "the server does not support TLS, which sslmode={} requires",
                        mode.as_str()
                    )));
                }
            }
            let pooler = if self.negotiate.is_some() {
                Pooler::Transaction
            } else {
                Pooler::Session
            };
            let config = self
                .config
                .ok_or_else(|| io::Error::other("TLS is disabled (sslmode=disable)"))?;
            let name = ServerName::try_from(self.domain.clone()).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{:?} is not a host name TLS can check", self.domain),
                )
            })?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await?;
            let end_point = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|cert| server_end_point(cert));
            Ok(TlsStream(
                Wire::new(Transport::Tls(Box::new(tls)), pooler),
                end_point,
            ))
        })
    }
}

/// A connection to PostgreSQL past the TLS hook, with its `tls-server-end-point` channel binding
/// data: encrypted, or in transaction pooler mode possibly plain (see [`MakeTls`]).
pub struct TlsStream<S = tokio_postgres::Socket>(Wire<Transport<S>>, Option<Vec<u8>>);

impl<S> TlsStream<S> {
    fn plain(stream: S, pooler: Pooler) -> Self {
        Self(Wire::new(Transport::Plain(stream), pooler), None)
    }

    /// Whether the bytes are encrypted.
    pub fn is_encrypted(&self) -> bool {
        matches!(self.0.get_ref(), Transport::Tls(_))
    }
}

/// The stream under [`Wire`].
pub enum Transport<S> {
    Tls(Box<tokio_rustls::client::TlsStream<S>>),
    Plain(S),
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Transport<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Transport<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// RFC 5929's `tls-server-end-point`: the hash of the server's certificate with the hash of its
/// signature algorithm (SHA-256 for MD5 and SHA-1). SCRAM then binds the password exchange to
/// this TLS session (`SCRAM-SHA-256-PLUS`), so a man in the middle cannot relay it. None for an
/// algorithm the RFC leaves undefined (RSASSA-PSS, EdDSA): SCRAM runs without binding.
fn server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { OID, … }, … }
    let (_, certificate, _) = der(cert, 0x30)?;
    let (_, _, rest) = der(certificate, 0x30)?;
    let (_, algorithm, _) = der(rest, 0x30)?;
    let (_, oid, _) = der(algorithm, 0x06)?;
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    let bits = match oid {
        [rsa @ .., n] if rsa == RSA => match n {
            4 | 5 | 11 => 256,
            12 => 384,
            13 => 512,
            _ => return None,
        },
        [ecdsa @ .., n] if ecdsa == ECDSA_SHA2 => match n {
            2 => 256,
            3 => 384,
            4 => 512,
            _ => return None,
        },
        o if o == ECDSA_SHA1 => 256,
        _ => return None,
    };
    Some(match bits {
        256 => sha2::Sha256::digest(cert).to_vec(),
        384 => sha2::Sha384::digest(cert).to_vec(),
        _ => sha2::Sha512::digest(cert).to_vec(),
    })
}

/// One DER element of `tag` at the start of `input`: (tag, content, what follows).
fn der(input: &[u8], tag: u8) -> Option<(u8, &[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((found, &rest[..len], &rest[len..]))
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for TlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        match &self.1 {
            Some(hash) => ChannelBinding::tls_server_end_point(hash.clone()),
            None => ChannelBinding::none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_everything_but_the_tls_settings() {
        let s = settings(
            "postgres://u:p%40ss@db.example:6543/app?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        )
        .expect("valid");
        assert_eq!(s.mode, SslMode::VerifyFull);
        assert_eq!(s.root_cert.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(s.config.get_application_name(), Some("x"));
        assert_eq!(s.config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(s.config.get_ssl_mode(), WireMode::Require);
        assert_eq!(s.describe(), "db.example:6543");
    }

    #[test]
    fn the_default_is_prefer_and_sockets_are_never_encrypted() {
        let s = settings("postgres://u@localhost/app").expect("valid");
        assert_eq!(
            (s.mode, s.config.get_ssl_mode()),
            (SslMode::Prefer, WireMode::Prefer)
        );
        let s = settings("host='/var/run/post gres' port=5432 user=postgres sslmode=verify-full")
            .expect("valid");
        assert_eq!(s.mode, SslMode::VerifyFull);
        assert_eq!(s.config.get_ssl_mode(), WireMode::Disable);
        assert_eq!(
            s.config.get_hosts(),
            &[Host::Unix("/var/run/post gres".into())]
        );
    }

    #[test]
    fn key_value_strings_take_quoted_values() {
        let s = settings("host=db.example sslrootcert='/etc/my ca.pem' sslmode = require dbname=x")
            .expect("valid");
        assert_eq!(s.mode, SslMode::Require);
        assert_eq!(s.root_cert.as_deref(), Some("/etc/my ca.pem"));
        assert_eq!(s.config.get_dbname(), Some("x"));
    }

    #[test]
    fn bad_modes_are_named() {
        let e = settings("postgres://h/db?sslmode=strict").expect_err("refused");
        assert!(
            e.contains("sslmode must be disable, prefer, require, verify-ca or verify-full"),
            "{e}"
        );
        let e = settings("postgres://h/db?sslmode=allow").expect_err("refused");
        assert!(e.contains("allow is not supported"), "{e}");
        let e = settings("postgres://u:secret@h/db?nosuch=1").expect_err("refused");
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn a_missing_root_file_is_named() {
        let e =
            client_config(SslMode::VerifyFull, Some("/nonexistent/ca.pem")).expect_err("refused");
        assert!(e.contains("sslrootcert /nonexistent/ca.pem"), "{e}");
    }
}
