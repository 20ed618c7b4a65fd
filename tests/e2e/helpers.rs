//! The test harness: one PostgreSQL per test run (the server in `TEST_DATABASE_URL` /
//! `DATABASE_URL`, else a private cluster started here), a migrated template database, a fresh
//! database per test cloned from it, and the real server bound on port 0.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use postback::embedded_pg::EmbeddedPg;
use postback_domain::store::db::DbPool;
use postback_runtime::AppState;
use reqwest::StatusCode;
use serde_json::{json, Value};

enum Server {
    Url(url::Url),
    Embedded(Mutex<EmbeddedPg>, std::path::PathBuf),
}

struct Cluster {
    server: Server,
    template: String,
}

impl Cluster {
    fn url_for(&self, db: &str) -> String {
        match &self.server {
            Server::Url(u) => {
                let mut u = u.clone();
                u.set_path(&format!("/{db}"));
                u.to_string()
            }
            Server::Embedded(pg, _) => pg.lock().map(|p| p.url_for(db)).unwrap_or_default(),
        }
    }
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static CREATE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
static COUNTER: AtomicUsize = AtomicUsize::new(0);

#[expect(
    unsafe_code,
    reason = "atexit is the one hook that runs after the last test"
)]
fn register_cluster_stop() {
    extern "C" fn stop() {
        if let Some(Cluster {
            server: Server::Embedded(pg, dir),
            ..
        }) = CLUSTER.get()
        {
            if let Ok(mut pg) = pg.lock() {
                pg.stop();
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    // SAFETY: `stop` is a plain extern "C" fn with no arguments, as atexit requires.
    unsafe {
        libc::atexit(stop);
    }
}

fn block_on<F: std::future::Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    // Called from inside a test's runtime: run on a separate thread with its own runtime.
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(f)
        })
        .join()
        .expect("init thread")
    })
}

async fn admin_exec(admin_url: &str, sql: &str) {
    let mut conn = AsyncPgConnection::establish(admin_url)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test server: {e}"));
    diesel::sql_query(sql)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Drops databases left by earlier test runs whose process is gone.
async fn drop_stale(admin_url: &str) {
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        datname: String,
    }
    let Ok(mut conn) = AsyncPgConnection::establish(admin_url).await else {
        return;
    };
    let names: Vec<Name> = diesel::sql_query(
        "SELECT datname FROM pg_database WHERE datname LIKE 'pbtest\\_%' OR datname LIKE 'pbtpl\\_%'",
    )
    .load(&mut conn)
    .await
    .unwrap_or_default();
    for n in names {
        let pid = n.datname.split('_').nth(1).unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                n.datname
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let pid = std::process::id();
        let server = match std::env::var("TEST_DATABASE_URL")
            .or_else(|_| std::env::var("DATABASE_URL"))
        {
            Ok(raw) => Server::Url(url::Url::parse(&raw).expect("TEST_DATABASE_URL must be a URL")),
            Err(_) => {
                let dir = std::env::temp_dir().join(format!("postback-test-pg-{pid}"));
                let pg =
                    EmbeddedPg::start(&dir).unwrap_or_else(|e| panic!("private test cluster: {e}"));
                register_cluster_stop();
                Server::Embedded(Mutex::new(pg), dir)
            }
        };
        let mut cluster = Cluster {
            server,
            template: format!("pbtpl_{pid}"),
        };
        let admin = cluster.url_for("postgres");
        let template = cluster.template.clone();
        let template_url = cluster.url_for(&template);
        block_on(async {
            drop_stale(&admin).await;
            admin_exec(&admin, &format!("CREATE DATABASE {template}")).await;
            postback_domain::store::db::run_migrations(&template_url)
                .await
                .expect("migrating the template database");
        });
        cluster.template = template;
        cluster
    })
}

/// A fresh, migrated database for one test.
/// An HTTP client for the tests, as reqwest 0.13 needs one: with the process's TLS provider
/// installed first (the server does the same before its own clients).
pub fn http_client() -> reqwest::Client {
    http_builder().build().expect("the tests' HTTP client")
}

/// [`http_client`]'s builder, for tests that set options.
pub fn http_builder() -> reqwest::ClientBuilder {
    postback_runtime::tls::install_provider();
    reqwest::Client::builder()
}

pub async fn fresh_database() -> String {
    let c = cluster();
    let name = format!(
        "pbtest_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let _guard = CREATE_LOCK.lock().await;
    admin_exec(
        &c.url_for("postgres"),
        &format!("CREATE DATABASE {name} TEMPLATE {}", c.template),
    )
    .await;
    c.url_for(&name)
}

pub struct TestApp {
    pub base: String,
    pub db_url: String,
    pub pool: DbPool,
    /// One client (one connection pool) for the app's helpers, built once: building a client
    /// per request costs enough CPU that, with a hundred built in one task, the first
    /// connections sat idle past the server's request timeout and were answered 408.
    client: reqwest::Client,
}

impl TestApp {
    pub async fn spawn() -> Self {
        let db_url = fresh_database().await;
        Self::spawn_on(&db_url).await
    }

    /// Another server instance on the same database (as behind a load balancer).
    pub async fn spawn_on(db_url: &str) -> Self {
        // Tests deliver to receivers on loopback, with short retries.
        Self::spawn_with(db_url, test_delivery()).await
    }

    /// A server whose ad platform adapters send to `platforms` (a local fake).
    pub async fn spawn_with_platforms(platforms: &str) -> Self {
        Self::spawn_with_platforms_and(platforms, |_| {}).await
    }

    /// [`TestApp::spawn_with_platforms`], its state adjusted before it starts.
    pub async fn spawn_with_platforms_and(
        platforms: &str,
        adjust: impl FnOnce(&mut AppState),
    ) -> Self {
        let db_url = fresh_database().await;
        let url = platforms.trim_end_matches('/').to_owned();
        let delivery = postback_runtime::delivery::DeliveryConfig {
            platform_urls: postback_domain::delivery::PlatformUrls::all_at(&url),
            ..test_delivery()
        };
        Self::spawn_state(&db_url, delivery, adjust).await
    }

    /// A server with production's refusal of private webhook targets.
    pub async fn spawn_strict() -> Self {
        let db_url = fresh_database().await;
        let delivery = postback_runtime::delivery::DeliveryConfig {
            allow_private_targets: false,
            ..test_delivery()
        };
        Self::spawn_with(&db_url, delivery).await
    }

    pub async fn spawn_with(
        db_url: &str,
        delivery: postback_runtime::delivery::DeliveryConfig,
    ) -> Self {
        Self::spawn_state(db_url, delivery, |_| {}).await
    }

    /// A server on `db_url` with its state adjusted (budgets, trusted proxies …) before it
    /// starts; a fresh database when `db_url` is `None`.
    pub async fn spawn_adjusted(db_url: Option<&str>, adjust: impl FnOnce(&mut AppState)) -> Self {
        let db_url = match db_url {
            Some(u) => u.to_owned(),
            None => fresh_database().await,
        };
        Self::spawn_state(&db_url, test_delivery(), adjust).await
    }

    /// A server where one client may make as many anonymous requests as it likes (tests that
    /// click or report thousands of times from loopback).
    pub async fn spawn_without_client_budget() -> Self {
        Self::spawn_adjusted(None, |s| {
            s.budgets.per_client = postback_runtime::shared_limit::Budget::per_minute(u32::MAX)
        })
        .await
    }

    /// A server whose public base URL (`POSTBACK_BASE_URL`) has this scheme, e.g. `https` as
    /// behind a TLS-terminating proxy; tests still reach it over plain http at `base`.
    pub async fn spawn_public(scheme: &str) -> Self {
        let db_url = fresh_database().await;
        Self::spawn_base(&db_url, scheme, test_delivery(), |_| {}).await
    }

    /// A server whose touches get their country from this GeoIP table.
    pub async fn spawn_with_geoip(geoip: postback_domain::tracking::geoip::GeoIp) -> Self {
        let db_url = fresh_database().await;
        let geoip = std::sync::Arc::new(geoip);
        Self::spawn_state(&db_url, test_delivery(), move |s| {
            s.geoip = Some(geoip);
            // The tests play the proxy in front, on loopback.
            s.trusted_proxies = std::sync::Arc::new("127.0.0.1/32, ::1".parse().expect("cidrs"));
        })
        .await
    }

    /// A server without the per-token rate limit, nor the budgets of one client (sign-ups,
    /// tracking), for the API conformance runs that send hundreds of requests from loopback.
    pub async fn spawn_unthrottled() -> Self {
        let db_url = fresh_database().await;
        Self::spawn_state(&db_url, test_delivery(), |s| {
            s.token_limiter = std::sync::Arc::new(postback_runtime::ratelimit::RateLimiter::new(
                u32::MAX,
                Duration::from_secs(60),
            ));
            s.budgets.per_client = postback_runtime::shared_limit::Budget::per_minute(u32::MAX);
            s.budgets.signups = postback_runtime::shared_limit::Budget::per_minute(u32::MAX);
        })
        .await
    }

    async fn spawn_state(
        db_url: &str,
        delivery: postback_runtime::delivery::DeliveryConfig,
        adjust: impl FnOnce(&mut AppState),
    ) -> Self {
        Self::spawn_base(db_url, "http", delivery, adjust).await
    }

    /// The server with its base URL (`POSTBACK_BASE_URL`) in `scheme` on the bound port.
    async fn spawn_base(
        db_url: &str,
        scheme: &str,
        delivery: postback_runtime::delivery::DeliveryConfig,
        adjust: impl FnOnce(&mut AppState),
    ) -> Self {
        // Every server in this test process seals secrets with the same key.
        postback_domain::secrets::seal::install(&[0x5e; 32]).expect("secret key");
        let pool = postback_domain::store::db::pool(db_url, 4).expect("pool");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let base = format!("http://127.0.0.1:{port}");
        let public = format!("{scheme}://127.0.0.1:{port}");
        let mut state = AppState::with_delivery(pool.clone(), db_url, &public, delivery);
        adjust(&mut state);
        postback_runtime::start(&state);
        let server = postback::server::build(listener, state, 1).expect("server");
        tokio::spawn(server);
        Self {
            base,
            db_url: db_url.to_owned(),
            pool,
            client: http_client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client that keeps cookies and does not follow redirects (tests look at them).
    pub fn browser(&self) -> reqwest::Client {
        crate::helpers::http_builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    pub async fn conn(&self) -> postback_domain::store::db::DbConn {
        postback_domain::store::db::conn(&self.pool)
            .await
            .expect("conn")
    }

    /// Signs a new user up through `/v1/auth/signup`; the returned client carries the session.
    pub async fn signup(&self, email: &str) -> User {
        let client = self.browser();
        let resp = client
            .post(self.url("/v1/auth/signup"))
            .json(&json!({ "email": email, "password": PASSWORD, "workspaceName": "Test Co" }))
            .send()
            .await
            .expect("signup");
        assert_eq!(resp.status(), StatusCode::CREATED, "signup of {email}");
        let body: Value = resp.json().await.expect("json");
        User {
            client,
            base: self.base.clone(),
            workspace_id: body["workspaceId"]
                .as_str()
                .expect("workspaceId")
                .to_owned(),
        }
    }

    /// Sends an inbound event with a key; returns status and body.
    pub async fn inbound(&self, key: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(self.url("/__cc/inbound"))
            .header("X-CC-Api-Key", key)
            .json(&body)
            .send()
            .await
            .expect("inbound");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Runs a statement on the test database (for plan changes the admin UI will make).
    pub async fn sql(&self, sql: &str) {
        let mut conn = self.conn().await;
        diesel::sql_query(sql).execute(&mut conn).await.expect(sql);
    }

    /// The number a `SELECT count(*) AS n …` query returns.
    pub async fn count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.conn().await;
        diesel::sql_query(sql)
            .get_result::<N>(&mut conn)
            .await
            .expect(sql)
            .n
    }
}

/// The password of every account `TestApp::signup` makes.
pub const PASSWORD: &str = "correct horse 1";

/// Retries after 200 ms each, a 2 s timeout, a 1 s breaker pause, loopback receivers allowed.
pub fn test_delivery() -> postback_runtime::delivery::DeliveryConfig {
    postback_runtime::delivery::DeliveryConfig {
        retry_schedule: vec![Duration::from_millis(200); 3],
        timeout: Duration::from_secs(2),
        lease: None,
        allow_private_targets: true,
        breaker_pause: Duration::from_secs(1),
        platform_urls: Default::default(),
        lookup: Default::default(),
        apps: Default::default(),
        tokens: Default::default(),
        listen_database_url: None,
        status_check_interval: Duration::from_millis(200),
        batch_window: postback_runtime::delivery::DEFAULT_BATCH_WINDOW,
        googleads_daily_operations: None,
    }
}

pub fn purchase() -> Value {
    json!({ "email": "customer@example.com", "event": "purchase", "value": 99.99, "currency": "USD" })
}

pub struct User {
    pub client: reqwest::Client,
    pub base: String,
    pub workspace_id: String,
}

impl User {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("page");
        (resp.status(), resp.text().await.unwrap_or_default())
    }

    pub async fn add_domain(&self, hostname: &str) -> String {
        let (status, body) = self
            .post("/v1/domains", json!({ "hostname": hostname }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Creates a webhook to `url` (every event, no conditions); its id.
    pub async fn add_webhook(&self, url: &str) -> String {
        let (status, body) = self
            .post("/v1/integrations/webhooks", json!({ "url": url }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Creates a key and returns (key id, full key).
    pub async fn add_key(&self, domain_id: &str, name: &str) -> (String, String) {
        let (status, body) = self
            .post(
                &format!("/v1/domains/{domain_id}/keys"),
                json!({ "name": name }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["id"].as_str().expect("id").to_owned(),
            body["key"].as_str().expect("key").to_owned(),
        )
    }
}

/// The CSRF token in a rendered page's first form.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("page has a csrf token") + marker.len();
    html[start..].split('"').next().expect("token").to_owned()
}
