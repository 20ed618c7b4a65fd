//! Configuration from flags and environment. Each setting is documented once, here and in the
//! README's table:
//!
//! | setting | default | what |
//! |---|---|---|
//! | `DATABASE_URL` | unset: a private cluster under `$POSTBACK_DATA_DIR/postgres` | PostgreSQL to use; its `sslmode` and `sslrootcert` apply to every connection (`postback_domain::store::pg`) |
//! | `POSTBACK_LISTEN` | `127.0.0.1:8080` | address to bind |
//! | `POSTBACK_BASE_URL` | `http://<listen>` | public URL (links, cookie `Secure`, Origin check) |
//! | `POSTBACK_DATA_DIR` | `./data` | where the private cluster lives |
//! | `POSTBACK_WORKERS` | one per core | HTTP worker threads |
//! | `POSTBACK_DB_POOL_SIZE` | `16` | database connections per instance |
//! | `POSTBACK_DB_POOLER` | `session` | `transaction` behind PgBouncer in transaction pooling mode: every statement is parsed in the transaction that runs it, no session `SET`; `session` (or unset): direct or session pooling, statements prepared once per connection |
//! | `POSTBACK_LISTEN_DATABASE_URL` | `DATABASE_URL` | a direct (session) connection for the delivery worker's `LISTEN`; while it cannot connect, the worker polls for due deliveries every second instead |
//! | `POSTBACK_ALLOW_PRIVATE_TARGETS` | `false` | let webhooks reach loopback/private addresses (while false, deliveries use no proxy) |
//! | `POSTBACK_RETRY_SCHEDULE` | `2s,4s,8s` | waits before each retry of a failed delivery |
//! | `POSTBACK_DELIVERY_TIMEOUT` | `5s` | timeout of one delivery attempt |
//! | `POSTBACK_DELIVERY_LEASE` | timeout + `30s` | how long a claimed delivery is reserved for its worker; after a crash, attempts under way are retried when it runs out (must exceed the timeout) |
//! | `POSTBACK_PLATFORM_BATCH_WINDOW` | `20ms` | how long a platform delivery waits for others of its connection to share one request (`0`: each alone) |
//! | `POSTBACK_GOOGLEADS_DAILY_OPERATIONS` | `15000` | Google Ads API operations per connection in 24 hours (basic access); `0`: no quota |
//! | `POSTBACK_GOOGLE_CLIENT_ID`, `POSTBACK_GOOGLE_CLIENT_SECRET` | unset | Google OAuth app (access tokens from refresh tokens) |
//! | `POSTBACK_META_APP_ID`, `POSTBACK_META_APP_SECRET`, `POSTBACK_TIKTOK_APP_ID`, `POSTBACK_TIKTOK_APP_SECRET` | unset | the operators' Meta and TikTok apps (Connect Meta, Connect TikTok) |
//! | `POSTBACK_GOOGLEADS_URL`, `POSTBACK_GOOGLE_DATAMANAGER_URL`, `POSTBACK_GOOGLE_TOKEN_URL`, `POSTBACK_GOOGLE_AUTH_URL`, `POSTBACK_META_URL`, `POSTBACK_META_AUTH_URL`, `POSTBACK_TIKTOK_URL`, `POSTBACK_TIKTOK_AUTH_URL` | the platforms' own | endpoints, each declared by its platform's adapter (`postback_domain::platforms`) |
//! | `POSTBACK_GEOIP_CSV` | unset | IP ranges to countries (`first,last,CC` lines, e.g. DB-IP's lite CSV) for touches |
//! | `POSTBACK_RETENTION_INTERVAL` | `60m` | how often events and touches past the plan's retention are deleted |
//! | `POSTBACK_SECRET_KEY` | unset: a key file `$POSTBACK_DATA_DIR/secret.key`, created on first start | 32 bytes (base64 or hex) sealing webhook secrets and platform credentials at rest |
//! | `POSTBACK_SMTP_URL` | unset: mails are written to `$POSTBACK_DATA_DIR/outbox/*.eml` | SMTP server (`smtp://host:25`, `smtp://user:pass@host:587?tls=required`, `smtps://user:pass@host:465`) |
//! | `POSTBACK_MAIL_FROM` | `Postback <postback@localhost>` | the `From` of every mail |
//! | `RUST_LOG` | `info` | log filter |

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "postback",
    version,
    about = "Conversion events in, attributed conversions and signed webhooks out"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user with a workspace of their own (owner, Pulse plan).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, env = "POSTBACK_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// Make the user a platform admin.
        #[arg(long)]
        admin: bool,
        /// Name of the user's workspace (default: the email's domain).
        #[arg(long)]
        workspace_name: Option<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// PostgreSQL URL. Unset: a private cluster is started under the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// Address to listen on.
    #[arg(
        long,
        env = "POSTBACK_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: String,
    /// Public base URL; defaults to http://<listen>.
    #[arg(long, env = "POSTBACK_BASE_URL", global = true)]
    pub base_url: Option<String>,
    /// Directory for the private PostgreSQL cluster.
    #[arg(
        long,
        env = "POSTBACK_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "POSTBACK_WORKERS", default_value_t = default_workers(), global = true)]
    pub workers: usize,
    /// Database connections per instance.
    #[arg(
        long,
        env = "POSTBACK_DB_POOL_SIZE",
        default_value_t = 16,
        global = true
    )]
    pub db_pool_size: usize,
    /// How the database is reached: `session` (direct, or a pooler in session mode) or
    /// `transaction` (PgBouncer in transaction pooling mode: no prepared statement or session
    /// setting outlives a transaction; see `postback_domain::store::pooler`).
    #[arg(
        long,
        env = "POSTBACK_DB_POOLER",
        default_value = "session",
        value_parser = parse_pooler,
        global = true
    )]
    pub db_pooler: postback_domain::store::pooler::Pooler,
    /// PostgreSQL URL for the delivery worker's `LISTEN` connection, which needs a session (not
    /// a transaction pooler). Unset: `DATABASE_URL`.
    #[arg(
        long,
        env = "POSTBACK_LISTEN_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub listen_database_url: Option<String>,
    /// Let webhooks target loopback, private and link-local addresses (for tests and private
    /// networks).
    #[arg(
        long,
        env = "POSTBACK_ALLOW_PRIVATE_TARGETS",
        default_value_t = false,
        global = true,
        action = clap::ArgAction::Set
    )]
    pub allow_private_targets: bool,
    /// Waits before each retry of a failed delivery, e.g. `2s,4s,8s`.
    #[arg(
        long,
        env = "POSTBACK_RETRY_SCHEDULE",
        default_value = "2s,4s,8s",
        global = true
    )]
    pub retry_schedule: String,
    /// Timeout of one delivery attempt, e.g. `5s`.
    #[arg(
        long,
        env = "POSTBACK_DELIVERY_TIMEOUT",
        default_value = "5s",
        global = true
    )]
    pub delivery_timeout: String,
    /// How long a platform delivery waits for others of its connection to share one request,
    /// e.g. `20ms`; `0` sends each alone.
    #[arg(
        long,
        env = "POSTBACK_PLATFORM_BATCH_WINDOW",
        default_value = "20ms",
        global = true
    )]
    pub platform_batch_window: String,
    /// Google Ads API operations per connection in 24 hours (basic access: 15,000); `0` for no
    /// quota (standard access).
    #[arg(
        long,
        env = "POSTBACK_GOOGLEADS_DAILY_OPERATIONS",
        default_value_t = postback_domain::platforms::limits::GOOGLE_ADS_BASIC_DAILY_OPERATIONS,
        global = true
    )]
    pub googleads_daily_operations: u32,
    /// How long a claimed delivery is reserved for the worker that claimed it, e.g. `35s`; after
    /// a crash, the attempts that were under way are retried when it runs out. Default: the
    /// delivery timeout plus 30 s. Must be longer than the timeout.
    #[arg(long, env = "POSTBACK_DELIVERY_LEASE", global = true)]
    pub delivery_lease: Option<String>,
    /// How often the retention job deletes events and touches past the plan's retention.
    #[arg(
        long,
        env = "POSTBACK_RETENTION_INTERVAL",
        default_value = "60m",
        global = true
    )]
    pub retention_interval: String,
    /// Key sealing webhook secrets and platform credentials at rest: 32 bytes as base64 or 64 hex
    /// characters. Unset: `$POSTBACK_DATA_DIR/secret.key`, created on first start. Every instance
    /// sharing a database needs the same key.
    #[arg(
        long,
        env = "POSTBACK_SECRET_KEY",
        hide_env_values = true,
        global = true
    )]
    pub secret_key: Option<String>,
    /// Management API requests per minute allowed to each personal access token (then 429).
    #[arg(
        long,
        env = "POSTBACK_TOKEN_RATE_LIMIT",
        default_value_t = postback_runtime::state::TOKEN_REQUESTS_PER_MINUTE,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub token_rate_limit: u32,
    /// Proxies (CIDRs, comma-separated) whose `X-Forwarded-For` names the client; unset: none.
    #[arg(
        long,
        env = "POSTBACK_TRUSTED_PROXIES",
        default_value = "",
        value_parser = parse_trusted_proxies,
        global = true
    )]
    pub trusted_proxies: postback_runtime::client_addr::TrustedProxies,
    /// Requests per minute each client (IPv4 address or IPv6 /64) may make to the tracking
    /// reports, and separately to tracking links, across every instance.
    #[arg(
        long,
        env = "POSTBACK_CLIENT_RATE_LIMIT",
        default_value_t = postback_runtime::shared_limit::CLIENT_REQUESTS_PER_MINUTE,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub client_rate_limit: u32,
    /// Requests per minute each site may receive as tracking reports, and each link as clicks,
    /// across every instance.
    #[arg(
        long,
        env = "POSTBACK_SITE_RATE_LIMIT",
        default_value_t = postback_runtime::shared_limit::SITE_REQUESTS_PER_MINUTE,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub site_rate_limit: u32,
    /// Sign-ups per hour from one client, across every instance.
    #[arg(
        long,
        env = "POSTBACK_SIGNUP_RATE_LIMIT",
        default_value_t = postback_runtime::shared_limit::SIGNUPS_PER_HOUR,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub signup_rate_limit: u32,
    /// IP ranges to countries for touches: `first,last,CC` lines (DB-IP "IP to Country Lite").
    #[arg(long, env = "POSTBACK_GEOIP_CSV", global = true)]
    pub geoip_csv: Option<PathBuf>,
    /// SMTP server for mail, in lettre's URL form: `smtp://host:25`,
    /// `smtp://user:pass@host:587?tls=required`, `smtps://user:pass@host:465`. Unset: mails are
    /// written as `.eml` files under `$POSTBACK_DATA_DIR/outbox/`.
    #[arg(long, env = "POSTBACK_SMTP_URL", hide_env_values = true, global = true)]
    pub smtp_url: Option<String>,
    /// The `From` of every mail Postback sends.
    #[arg(
        long,
        env = "POSTBACK_MAIL_FROM",
        default_value = "Postback <postback@localhost>",
        global = true
    )]
    pub mail_from: String,
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn parse_trusted_proxies(
    raw: &str,
) -> Result<postback_runtime::client_addr::TrustedProxies, String> {
    raw.parse()
}

impl Config {
    /// The budgets of the anonymous endpoints and sign-up.
    pub fn budgets(&self) -> postback_runtime::shared_limit::AnonymousBudgets {
        use postback_runtime::shared_limit::{AnonymousBudgets, Budget};
        AnonymousBudgets {
            per_client: Budget::per_minute(self.client_rate_limit),
            per_site: Budget::per_minute(self.site_rate_limit),
            signups: Budget {
                limit: self.signup_rate_limit,
                window: std::time::Duration::from_secs(3600),
            },
        }
    }

    pub fn base_url(&self, bound: std::net::SocketAddr) -> String {
        match &self.base_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => {
                let host = match bound.ip() {
                    ip if ip.is_unspecified() => "localhost".to_owned(),
                    std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                    ip => ip.to_string(),
                };
                format!("http://{host}:{}", bound.port())
            }
        }
    }

    /// Checks what can be checked before anything starts.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(u) = &self.base_url {
            let parsed = url::Url::parse(u)
                .map_err(|e| format!("POSTBACK_BASE_URL {u:?} is not a URL: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err("POSTBACK_BASE_URL must start with http:// or https://".into());
            }
        }
        if let Some(url) = &self.database_url {
            // A bad sslmode or connection string is named before anything starts.
            postback_domain::store::pg::settings(url).map_err(|e| format!("DATABASE_URL: {e}"))?;
        }
        if let Some(url) = &self.listen_database_url {
            postback_domain::store::pg::settings(url)
                .map_err(|e| format!("POSTBACK_LISTEN_DATABASE_URL: {e}"))?;
        }
        if self.db_pool_size == 0 {
            return Err("POSTBACK_DB_POOL_SIZE must be at least 1".into());
        }
        self.delivery()?;
        self.retention()?;
        self.mail().validate()?;
        Ok(())
    }

    /// Where mail goes.
    pub fn mail(&self) -> postback_runtime::mail::MailConfig {
        postback_runtime::mail::MailConfig {
            smtp_url: self.smtp_url.clone().filter(|u| !u.trim().is_empty()),
            from: self.mail_from.clone(),
            outbox_dir: self.data_dir.join("outbox"),
            poll: std::time::Duration::from_secs(1),
            quota_every: std::time::Duration::from_secs(60),
        }
    }

    /// The key that seals secrets at rest: from `POSTBACK_SECRET_KEY`, else from the key file in
    /// the data directory (created, readable by this user only, when absent).
    pub fn secret_key(&self) -> Result<[u8; 32], String> {
        use postback_domain::secrets::seal::{generate_key, parse_key};
        if let Some(raw) = &self.secret_key {
            return parse_key(raw).map_err(|e| format!("POSTBACK_SECRET_KEY {e}"));
        }
        let path = self.data_dir.join("secret.key");
        if !path.exists() {
            std::fs::create_dir_all(&self.data_dir)
                .map_err(|e| format!("cannot create {}: {e}", self.data_dir.display()))?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            use std::io::Write;
            match options.open(&path) {
                Ok(mut f) => f
                    .write_all(generate_key().as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
                // Another instance created it meanwhile: read that one.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
            }
            tracing::info!(path = %path.display(), "created the key that seals secrets at rest");
        }
        let raw = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        parse_key(&raw).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// How often the retention job runs.
    pub fn retention(&self) -> Result<std::time::Duration, String> {
        let every = postback_runtime::delivery::parse_duration(&self.retention_interval)
            .map_err(|e| format!("POSTBACK_RETENTION_INTERVAL: {e}"))?;
        if every < std::time::Duration::from_secs(1) {
            return Err("POSTBACK_RETENTION_INTERVAL must be at least 1s".into());
        }
        Ok(every)
    }

    /// The delivery settings, parsed.
    pub fn delivery(&self) -> Result<postback_runtime::delivery::DeliveryConfig, String> {
        let retry_schedule = postback_runtime::delivery::parse_schedule(&self.retry_schedule)
            .map_err(|e| format!("POSTBACK_RETRY_SCHEDULE: {e}"))?;
        let timeout = postback_runtime::delivery::parse_duration(&self.delivery_timeout)
            .map_err(|e| format!("POSTBACK_DELIVERY_TIMEOUT: {e}"))?;
        if timeout.is_zero() {
            return Err("POSTBACK_DELIVERY_TIMEOUT must be more than 0".into());
        }
        let lease = match &self.delivery_lease {
            None => None,
            Some(raw) => {
                let lease = postback_runtime::delivery::parse_duration(raw)
                    .map_err(|e| format!("POSTBACK_DELIVERY_LEASE: {e}"))?;
                if lease <= timeout {
                    return Err(format!(
                        "POSTBACK_DELIVERY_LEASE ({raw}) must be longer than POSTBACK_DELIVERY_TIMEOUT ({})",
                        self.delivery_timeout
                    ));
                }
                Some(lease)
            }
        };
        let batch_window = postback_runtime::delivery::parse_duration(&self.platform_batch_window)
            .map_err(|e| format!("POSTBACK_PLATFORM_BATCH_WINDOW: {e}"))?;
        if batch_window > std::time::Duration::from_secs(1) {
            return Err("POSTBACK_PLATFORM_BATCH_WINDOW must be at most 1s".into());
        }
        // Every platform endpoint (`POSTBACK_GOOGLEADS_URL`, `POSTBACK_GOOGLE_TOKEN_URL`, …) and
        // OAuth app (`POSTBACK_GOOGLE_CLIENT_ID`, …), as each platform's adapter declares them.
        let env = |k: &str| std::env::var(k).ok();
        let platform_urls = postback_domain::platforms::PlatformUrls::from_settings(env)?;
        let apps = postback_domain::platforms::oauth::Apps::from_settings(env, &platform_urls);
        Ok(postback_runtime::delivery::DeliveryConfig {
            retry_schedule,
            timeout,
            lease,
            allow_private_targets: self.allow_private_targets,
            platform_urls,
            apps,
            lookup: postback_runtime::delivery::lookup::Lookup::system(),
            listen_database_url: self.listen_database_url.clone(),
            batch_window,
            googleads_daily_operations: (self.googleads_daily_operations > 0)
                .then_some(self.googleads_daily_operations),
            ..Default::default()
        })
    }
}

fn parse_pooler(raw: &str) -> Result<postback_domain::store::pooler::Pooler, String> {
    postback_domain::store::pooler::Pooler::parse(raw)
}
