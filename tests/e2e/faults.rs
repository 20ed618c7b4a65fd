//! Fault tests (issue 8): `kill -9` of the real binary under load, PostgreSQL stopped and
//! restarted under load, receivers that fail at the TCP level (down, reset, endless bodies), and
//! two instances on one database with a graceful shutdown of one of them under load. Each is
//! bounded in time and stays on loopback; each prints its figures (`--nocapture`), which
//! `docs/faults.md` records.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{fresh_database, test_delivery, TestApp, User, PASSWORD};
use crate::receiver::{Receiver, Reply};

/// Every binary started here seals secrets with this key, so two instances (or a restart) read
/// each other's webhook secrets.
const SECRET_KEY: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

// ---------------------------------------------------------------------------------------------
// The real binary as a child process.

pub(crate) struct Binary {
    child: Child,
    pub(crate) base: String,
    output: Arc<Mutex<String>>,
}

impl Binary {
    pub(crate) async fn start(db_url: &str, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_postback"));
        cmd.current_dir(data_dir)
            .env("DATABASE_URL", db_url)
            .env("POSTBACK_DATA_DIR", data_dir)
            .env("POSTBACK_LISTEN", "127.0.0.1:0")
            .env("POSTBACK_ALLOW_PRIVATE_TARGETS", "true")
            .env("POSTBACK_SECRET_KEY", SECRET_KEY)
            .env("POSTBACK_WORKERS", "2")
            .env("POSTBACK_DB_POOL_SIZE", "8")
            .env(
                "RUST_LOG",
                "warn,postback=info,postback_api=info,postback_runtime=info",
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run postback");
        let output = Arc::new(Mutex::new(String::new()));
        let (base_tx, base_rx) = tokio::sync::oneshot::channel::<String>();
        let mut base_tx = Some(base_tx);
        let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut err = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let sink = output.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                if let Some(url) = line
                    .split("open ")
                    .nth(1)
                    .and_then(|r| r.split(" for the dashboard").next())
                {
                    if let Some(tx) = base_tx.take() {
                        let _ = tx.send(url.trim_end_matches('/').to_owned());
                    }
                }
                sink.lock().expect("lock").push_str(&(line + "\n"));
            }
        });
        let sink = output.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err.next_line().await {
                sink.lock().expect("lock").push_str(&(line + "\n"));
            }
        });
        let base = match tokio::time::timeout(Duration::from_secs(60), base_rx).await {
            Ok(Ok(base)) => base,
            _ => panic!("postback did not start:\n{}", output.lock().expect("lock")),
        };
        Self {
            child,
            base,
            output,
        }
    }

    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("pid").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    pub(crate) async fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "postback did not exit within {within:?}:\n{}",
                    self.output()
                )
            })
            .expect("wait")
    }

    pub(crate) fn output(&self) -> String {
        self.output.lock().expect("lock").clone()
    }
}

/// Signs up through `base`; the returned client carries the session.
pub(crate) async fn signup(base: &str, email: &str) -> User {
    let client = crate::helpers::http_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = client
        .post(format!("{base}/v1/auth/signup"))
        .json(&json!({ "email": email, "password": PASSWORD, "workspaceName": "Faults Co" }))
        .send()
        .await
        .expect("signup");
    assert_eq!(resp.status(), StatusCode::CREATED, "signup of {email}");
    let body: Value = resp.json().await.expect("json");
    User {
        client,
        base: base.to_owned(),
        workspace_id: body["workspaceId"].as_str().expect("id").to_owned(),
    }
}

/// The same account's session, sending its requests to another instance.
pub(crate) fn via(user: &User, base: &str) -> User {
    User {
        client: user.client.clone(),
        base: base.to_owned(),
        workspace_id: user.workspace_id.clone(),
    }
}

pub(crate) async fn add_webhook(user: &User, url: &str) -> String {
    let (status, hook) = user
        .post("/v1/integrations/webhooks", json!({ "url": url }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    hook["id"].as_str().expect("id").to_owned()
}

// ---------------------------------------------------------------------------------------------
// Inbound load: concurrent clients, every answer classified.

#[derive(Default, Debug)]
pub(crate) struct Load {
    /// orderId → eventId of every 200.
    pub(crate) ok: HashMap<String, String>,
    /// Never reached a server (connection refused): certainly not stored.
    pub(crate) refused: HashSet<String>,
    /// Sent, but no answer came (the server died, or the connection broke): may be stored.
    pub(crate) broken: HashSet<String>,
    /// orderIds answered 503.
    pub(crate) unavailable: HashSet<String>,
    pub(crate) statuses: BTreeMap<u16, usize>,
    /// Answers that are neither 200 nor 503 (with their bodies), and 503s without an error.
    pub(crate) bad: Vec<String>,
    pub(crate) slowest: Duration,
}

impl Load {
    fn merge(&mut self, other: Load) {
        self.ok.extend(other.ok);
        self.refused.extend(other.refused);
        self.broken.extend(other.broken);
        self.unavailable.extend(other.unavailable);
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.bad.extend(other.bad);
        self.slowest = self.slowest.max(other.slowest);
    }
}

/// `clients` concurrent clients, client `i` sending to `targets[i % len]` one request after
/// another until `stop` is set (or, with `stop_on_error`, until its first transport error). Each
/// request has a unique `orderId` starting with `tag`.
pub(crate) async fn drive(
    targets: Vec<String>,
    key: String,
    clients: usize,
    stop: Arc<AtomicBool>,
    stop_on_error: bool,
    tag: &'static str,
) -> Load {
    let mut tasks = Vec::new();
    for i in 0..clients {
        let target = format!("{}/__cc/inbound", targets[i % targets.len()]);
        let key = key.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let http = crate::helpers::http_builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client");
            let mut load = Load::default();
            let mut n = 0;
            let until = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                n += 1;
                let order = format!("{tag}-{i}-{n}");
                let started = Instant::now();
                let sent = http
                    .post(&target)
                    .header("X-CC-Api-Key", &key)
                    .json(
                        &json!({"email": format!("load{i}@example.com"), "event": "purchase",
                                  "value": 1.5, "orderId": order}),
                    )
                    .send()
                    .await;
                let resp = match sent {
                    Ok(r) => r,
                    Err(e) => {
                        if e.is_connect() {
                            load.refused.insert(order);
                        } else {
                            load.broken.insert(order);
                        }
                        if stop_on_error {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let status = resp.status().as_u16();
                let body: Value = match resp.json().await {
                    Ok(b) => b,
                    Err(_) => {
                        load.broken.insert(order);
                        continue;
                    }
                };
                load.slowest = load.slowest.max(started.elapsed());
                *load.statuses.entry(status).or_default() += 1;
                match status {
                    200 => {
                        let id = body["eventId"].as_str().expect("eventId").to_owned();
                        load.ok.insert(order, id);
                    }
                    503 => {
                        if body["error"].as_str().is_none_or(str::is_empty) {
                            load.bad.push(format!("503 without an error: {body}"));
                        }
                        load.unavailable.insert(order);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    _ => {
                        load.bad.push(format!("{status} {body}"));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            load
        }));
    }
    let mut all = Load::default();
    for t in tasks {
        all.merge(t.await.expect("client task"));
    }
    all
}

// ---------------------------------------------------------------------------------------------
// Reading the database directly.

pub(crate) async fn pg(db_url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(db_url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
}

pub(crate) async fn count(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.expect(sql).get(0)
}

/// Stored events: orderId → (event id, how many rows carry that orderId).
pub(crate) async fn stored_events(db: &tokio_postgres::Client) -> HashMap<String, (String, i64)> {
    let mut out: HashMap<String, (String, i64)> = HashMap::new();
    for row in db
        .query(
            "SELECT order_id, id::text FROM events WHERE order_id IS NOT NULL",
            &[],
        )
        .await
        .expect("events")
    {
        let order: String = row.get(0);
        let id: String = row.get(1);
        out.entry(order).or_insert((id, 0)).1 += 1;
    }
    out
}

/// Waits until no delivery is left unfinished; returns how long that took.
pub(crate) async fn drained(db: &tokio_postgres::Client, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let left = count(
            db,
            "SELECT count(*) FROM deliveries WHERE status <> 'succeeded'",
        )
        .await;
        if left == 0 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{left} deliveries still unfinished after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many times the receiver got each event (the payload's `id`).
pub(crate) fn by_event(receiver: &Receiver) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in receiver.received() {
        let id = r.json()["id"].as_str().expect("id").to_owned();
        *seen.entry(id).or_default() += 1;
    }
    seen
}

/// Every event answered 200 is stored exactly once under its orderId; anything else stored was
/// sent without an answer. Returns how many unanswered requests were nevertheless stored.
pub(crate) fn check_stored(load: &Load, stored: &HashMap<String, (String, i64)>) -> usize {
    for (order, id) in &load.ok {
        let (stored_id, n) = stored
            .get(order)
            .unwrap_or_else(|| panic!("{order} was answered 200 ({id}) but is not stored"));
        assert_eq!(stored_id, id, "{order}: another event id is stored");
        assert_eq!(*n, 1, "{order} is stored {n} times");
    }
    let mut unanswered_stored = 0;
    for (order, (_, n)) in stored {
        assert_eq!(*n, 1, "{order} is stored {n} times");
        if load.ok.contains_key(order) {
            continue;
        }
        assert!(
            !load.refused.contains(order),
            "{order} is stored though its connection was refused"
        );
        assert!(
            load.broken.contains(order) || load.unavailable.contains(order),
            "{order} is stored but was never sent"
        );
        unanswered_stored += 1;
    }
    unanswered_stored
}

// ---------------------------------------------------------------------------------------------
// 1. kill -9 under load.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_and_retries_what_was_in_flight() {
    let test_started = Instant::now();
    let receiver = Receiver::start().await;
    // Slow enough that many attempts are under way when the server dies.
    receiver.always(Reply::ok().delay(Duration::from_millis(300)));
    let db_url = fresh_database().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("POSTBACK_DELIVERY_TIMEOUT", "1s"),
        ("POSTBACK_DELIVERY_LEASE", "3s"),
        ("POSTBACK_RETRY_SCHEDULE", "200ms,200ms,200ms,200ms,200ms"),
    ];
    let mut first = Binary::start(&db_url, dir.path(), &env).await;
    let user = signup(&first.base, "kill9@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    add_webhook(&user, &receiver.url("/kill")).await;

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(drive(
        vec![first.base.clone()],
        key.clone(),
        8,
        stop.clone(),
        true,
        "k9",
    ));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    first.signal("-KILL");
    let exit = first.wait(Duration::from_secs(10)).await;
    assert!(!exit.success(), "killed: {exit:?}");
    stop.store(true, Ordering::Relaxed);
    let load = load.await.expect("load");
    assert!(load.bad.is_empty(), "unexpected answers: {:?}", load.bad);
    assert!(load.ok.len() >= 50, "too little load: {:?}", load.statuses);

    // The queue as the crash left it: attempts the receiver got whose result was never written.
    let db = pg(&db_url).await;
    let unrecorded: HashSet<String> = db
        .query(
            "SELECT d.event_id::text FROM deliveries d
             WHERE d.status = 'pending' AND d.attempts > 0
               AND NOT EXISTS (SELECT 1 FROM delivery_attempts a
                               WHERE a.delivery_id = d.id AND a.attempt = d.attempts)",
            &[],
        )
        .await
        .expect("unrecorded")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let got_before: HashSet<String> = by_event(&receiver).into_keys().collect();
    let in_flight: HashSet<&String> = unrecorded.intersection(&got_before).collect();
    let pending_at_kill = count(
        &db,
        "SELECT count(*) FROM deliveries WHERE status <> 'succeeded'",
    )
    .await;

    let restart = Instant::now();
    let mut second = Binary::start(&db_url, dir.path(), &env).await;
    let restarted_in = restart.elapsed();
    let drain = drained(&db, Duration::from_secs(30)).await + restarted_in;

    let stored = stored_events(&db).await;
    let unanswered_stored = check_stored(&load, &stored);
    // Every stored event was delivered, each by one delivery that succeeded.
    let seen = by_event(&receiver);
    let events = count(&db, "SELECT count(*) FROM events").await;
    let deliveries = count(&db, "SELECT count(*) FROM deliveries").await;
    assert_eq!(deliveries, events, "one delivery per event");
    for (order, (id, _)) in &stored {
        assert!(seen.contains_key(id), "{order} ({id}) was never delivered");
    }
    // What was in flight at the kill was sent again after the restart, and the log shows it.
    assert!(
        !in_flight.is_empty(),
        "no attempt was in flight at the kill"
    );
    for id in &in_flight {
        assert!(seen[*id] >= 2, "{id} was in flight and not retried");
        let row = db
            .query_one(
                "SELECT d.attempts, (SELECT max(a.attempt) FROM delivery_attempts a
                                     WHERE a.delivery_id = d.id AND a.status_code = 200)
                 FROM deliveries d WHERE d.event_id = $1::text::uuid",
                &[id],
            )
            .await
            .expect("delivery");
        let attempts: i32 = row.get(0);
        let succeeded_on: Option<i32> = row.get(1);
        assert!(attempts >= 2, "{id}: {attempts} attempts");
        assert!(
            succeeded_on.is_some_and(|a| a >= 2),
            "{id}: {succeeded_on:?}"
        );
    }
    // Only attempts whose result the crash lost were sent twice.
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    for id in &twice {
        assert!(
            unrecorded.contains(*id),
            "{id} was sent twice without a crash in between"
        );
    }
    println!(
        "kill -9: {} answered 200, {} refused after the kill, {} without an answer ({} of them stored), \
         {} events stored exactly once; {} deliveries unfinished at the kill, {} attempts in flight \
         (received, result lost), all retried; {} sent twice (all of them in flight at the kill); \
         restart {:?}, queue drained {:?} after the restart; test {:?}",
        load.ok.len(),
        load.refused.len(),
        load.broken.len(),
        unanswered_stored,
        stored.len(),
        pending_at_kill,
        in_flight.len(),
        twice.len(),
        restarted_in,
        drain,
        test_started.elapsed()
    );
    second.signal("-TERM");
    second.wait(Duration::from_secs(30)).await;
}

// ---------------------------------------------------------------------------------------------
// 2. PostgreSQL stopped and restarted under load.

/// A private cluster of this test's own that it can stop and start.
struct OwnCluster {
    dir: std::path::PathBuf,
    pg: Option<postback::embedded_pg::EmbeddedPg>,
}

impl OwnCluster {
    async fn start(dir: std::path::PathBuf) -> Self {
        let d = dir.clone();
        let pg = tokio::task::spawn_blocking(move || postback::embedded_pg::EmbeddedPg::start(&d))
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("private cluster: {e}"));
        Self { dir, pg: Some(pg) }
    }

    async fn stop(&mut self) {
        if let Some(mut pg) = self.pg.take() {
            tokio::task::spawn_blocking(move || pg.stop())
                .await
                .expect("join");
        }
    }

    async fn restart(&mut self) {
        let d = self.dir.clone();
        let pg = tokio::task::spawn_blocking(move || postback::embedded_pg::EmbeddedPg::start(&d))
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("restarting the private cluster: {e}"));
        self.pg = Some(pg);
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        if let Some(mut pg) = self.pg.take() {
            pg.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn ready(http: &reqwest::Client, base: &str) -> (u16, Duration) {
    let started = Instant::now();
    let status = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (status, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_restarted_under_load() {
    let test_started = Instant::now();
    // Reachable by the postgres user when run as root (a tempdir is 0700).
    let dir = std::env::temp_dir().join(format!("postback-faults-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cluster = OwnCluster::start(dir).await;
    let db_url = cluster.pg.as_ref().expect("running").url();
    postback_domain::store::db::run_migrations(&db_url)
        .await
        .expect("migrations");
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok().delay(Duration::from_millis(50)));
    let app = TestApp::spawn_with(&db_url, test_delivery()).await;
    let user = app.signup("pgdown@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    add_webhook(&user, &receiver.url("/pg")).await;
    let http = crate::helpers::http_builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    assert_eq!(ready(&http, &app.base).await.0, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(drive(
        vec![app.base.clone()],
        key.clone(),
        8,
        stop.clone(),
        false,
        "pg",
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopping = Instant::now();
    cluster.stop().await;
    let stopped_in = stopping.elapsed();

    // Down: /readyz is red, inbound answers 503 with a clear error, quickly.
    let down = Instant::now();
    let (status, readyz_took) = ready(&http, &app.base).await;
    assert_eq!(status, 503, "/readyz while PostgreSQL is down");
    let started = Instant::now();
    let resp = http
        .post(app.url("/__cc/inbound"))
        .header("X-CC-Api-Key", &key)
        .json(&json!({"email": "down@example.com", "event": "purchase", "orderId": "while-down"}))
        .send()
        .await
        .expect("inbound while down");
    let inbound_took = started.elapsed();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.expect("json");
    let message = body["error"].as_str().expect("error").to_owned();
    // It may or may not be stored: the answer says how to retry safely.
    assert!(
        message.contains("may not have been stored")
            && message.contains("same orderId or Idempotency-Key"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, _) = ready(&http, &app.base).await;
    assert_eq!(status, 503, "/readyz still red");

    let restarting = Instant::now();
    cluster.restart().await;
    let down_for = down.elapsed();
    let restarted_in = restarting.elapsed();
    // Up again: /readyz turns green and inbound answers 200 by itself, without a restart.
    let green = Instant::now();
    loop {
        if ready(&http, &app.base).await.0 == 200 {
            break;
        }
        assert!(
            green.elapsed() < Duration::from_secs(15),
            "/readyz stays red"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let green_in = green.elapsed();
    let first_ok = Instant::now();
    loop {
        let (status, _) = app
            .inbound(
                &key,
                json!({"email": "back@example.com", "event": "purchase"}),
            )
            .await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            first_ok.elapsed() < Duration::from_secs(15),
            "inbound stays down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first_ok_in = first_ok.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let load = load.await.expect("load");

    assert!(
        load.bad.is_empty(),
        "only 200 and 503 are acceptable: {:?}",
        &load.bad[..load.bad.len().min(10)]
    );
    assert!(
        !load.unavailable.is_empty(),
        "no request met the outage: {:?}",
        load.statuses
    );
    assert!(
        load.slowest < Duration::from_secs(8),
        "an answer took {:?}",
        load.slowest
    );
    let db = pg(&db_url).await;
    let stored = stored_events(&db).await;
    let unanswered_stored = check_stored(&load, &stored);
    let drain = drained(&db, Duration::from_secs(30)).await;
    let seen = by_event(&receiver);
    for (order, (id, _)) in &stored {
        assert!(seen.contains_key(id), "{order} ({id}) was never delivered");
    }
    println!(
        "postgres down: statuses {:?}, {} stored exactly once, {} answered 503 or unanswered yet stored; \
         slowest answer {:?}; pg_ctl stop {:?}, down {:?} (restart took {:?}); while down /readyz answered in {:?} \
         and inbound 503 in {:?} (\"{message}\"); after the restart /readyz green in {:?}, first inbound 200 \
         {:?} later; queue drained {:?} after the load; {} deliveries received; test {:?}",
        load.statuses,
        stored.len(),
        unanswered_stored,
        load.slowest,
        stopped_in,
        down_for,
        restarted_in,
        readyz_took,
        inbound_took,
        green_in,
        first_ok_in,
        drain,
        seen.values().sum::<usize>(),
        test_started.elapsed()
    );
    drop(app);
}

/// Connections cut by the server (what a fast shutdown, a failover or a proxy restart does to
/// the queries under way: `57P01 terminating connection due to administrator command`), again
/// and again under load: every answer is a 200 that was committed or a 503, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_under_load_answer_503_never_500() {
    let test_started = Instant::now();
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let app = TestApp::spawn().await;
    let user = app.signup("cut@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    add_webhook(&user, &receiver.url("/cut")).await;
    let db = pg(&app.db_url).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(drive(
        vec![app.base.clone()],
        key.clone(),
        8,
        stop.clone(),
        false,
        "cut",
    ));
    let mut cuts = 0;
    let mut terminated = 0;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let n = count(
            &db,
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()) t",
        )
        .await;
        cuts += 1;
        terminated += n;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let load = load.await.expect("load");
    assert!(
        load.bad.is_empty(),
        "only 200 and 503 are acceptable: {} of them, e.g. {:?}",
        load.bad.len(),
        &load.bad[..load.bad.len().min(5)]
    );
    let stored = stored_events(&db).await;
    let unanswered_stored = check_stored(&load, &stored);
    // Nothing waits for its lease (32 s here): a claim cut half way is rolled back.
    let drain = drained(&db, Duration::from_secs(15)).await;
    let seen = by_event(&receiver);
    for (order, (id, _)) in &stored {
        assert!(seen.contains_key(id), "{order} ({id}) was never delivered");
    }
    println!(
        "connections cut: {cuts} rounds terminated {terminated} backends; statuses {:?}; {} stored exactly \
         once, {unanswered_stored} answered 503 yet stored; slowest answer {:?}; drained {:?} after the \
         load; test {:?}",
        load.statuses,
        stored.len(),
        load.slowest,
        drain,
        test_started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Receivers that fail at the TCP level. (Slow past the timeout, 500 / 503, 429 with
// Retry-After, redirects and huge 200 bodies are covered in `webhooks.rs`.)

#[derive(Debug, Clone, Copy)]
enum Act {
    /// 200 with a short body.
    Ok,
    /// Reads the request, then resets the connection before answering.
    ResetBeforeAnswer,
    /// Sends `200` and part of the body, then resets the connection.
    ResetMidBody,
    /// Answers with this status and a body that never ends.
    EndlessBody(u16),
}

/// A receiver written on raw TCP, one request per connection, acting as scripted; keeps the
/// request bodies.
struct Raw {
    got: Arc<Mutex<Vec<Vec<u8>>>>,
    script: Arc<Mutex<VecDeque<Act>>>,
}

impl Raw {
    async fn start_on(port: u16) -> (Self, u16) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind raw receiver");
        let port = listener.local_addr().expect("addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let (g, s) = (got.clone(), script.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_raw(stream, g.clone(), s.clone()));
            }
        });
        (Self { got, script }, port)
    }

    fn script(&self, acts: impl IntoIterator<Item = Act>) {
        self.script.lock().expect("lock").extend(acts);
    }

    fn count(&self) -> usize {
        self.got.lock().expect("lock").len()
    }
}

async fn serve_raw(
    mut stream: tokio::net::TcpStream,
    got: Arc<Mutex<Vec<Vec<u8>>>>,
    script: Arc<Mutex<VecDeque<Act>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    got.lock().expect("lock").push(buf[header_end..].to_vec());
    let act = script.lock().expect("lock").pop_front().unwrap_or(Act::Ok);
    match act {
        Act::Ok => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                .await;
            let _ = stream.shutdown().await;
        }
        Act::ResetBeforeAnswer => {
            reset(stream);
        }
        Act::ResetMidBody => {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\npartial",
                )
                .await;
            let _ = stream.flush().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            reset(stream);
        }
        Act::EndlessBody(status) => {
            let head = format!("HTTP/1.1 {status} Oops\r\nConnection: close\r\n\r\n");
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![b'z'; 64 * 1024];
            let until = Instant::now() + Duration::from_secs(20);
            // Until the client hangs up.
            while Instant::now() < until && stream.write_all(&block).await.is_ok() {}
        }
    }
}

/// Closes with an RST rather than a FIN (SO_LINGER 0, which does not block on drop).
#[expect(deprecated, reason = "a zero linger is the way to send a reset")]
fn reset(stream: tokio::net::TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// A server whose retries come 500 ms apart (seven attempts), so a test can act in between.
async fn patient_app() -> TestApp {
    let db_url = fresh_database().await;
    let delivery = postback_runtime::delivery::DeliveryConfig {
        retry_schedule: vec![Duration::from_millis(500); 6],
        ..test_delivery()
    };
    TestApp::spawn_with(&db_url, delivery).await
}

/// The attempt log of the webhook's newest delivery once it reaches `status`.
async fn settled(user: &User, hook: &str, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (_, page) = user
            .get(&format!("/v1/integrations/webhooks/{hook}/deliveries"))
            .await;
        if let Some(d) = page["items"]
            .as_array()
            .and_then(|items| items.first())
            .filter(|d| d["status"] == status)
        {
            return d.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no delivery reached {status}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_delivery_when_it_comes_back() {
    let app = patient_app().await;
    let user = app.signup("down.receiver@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let hook = add_webhook(&user, &format!("http://127.0.0.1:{port}/down")).await;
    let (status, _) = app
        .inbound(&key, json!({"email": "d@example.com", "event": "purchase"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Two refused attempts, then the receiver comes up on that port.
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let (_, page) = user
            .get(&format!("/v1/integrations/webhooks/{hook}/deliveries"))
            .await;
        let d = page["items"][0].clone();
        if d["attemptLog"].as_array().is_some_and(|l| l.len() >= 2) {
            break d;
        }
        assert!(Instant::now() < deadline, "no two attempts: {page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (raw, _) = Raw::start_on(port).await;
    let d = settled(&user, &hook, "succeeded", Duration::from_secs(10)).await;
    for a in log["attemptLog"].as_array().expect("log").iter().take(2) {
        let error = a["error"].as_str().expect("error");
        assert!(error.contains("could not connect"), "{a}");
        assert_eq!(a["statusCode"], Value::Null);
        assert!(
            a["durationMs"].as_i64().expect("ms") < 1000,
            "refused at once: {a}"
        );
    }
    let attempts = d["attemptLog"].as_array().expect("log");
    assert_eq!(attempts.last().expect("last")["statusCode"], 200, "{d}");
    assert_eq!(raw.count(), 1, "delivered once when it came back");
    println!(
        "receiver down: {} refused attempts (each took at most {} ms), delivered on attempt {}",
        attempts.len() - 1,
        attempts
            .iter()
            .filter_map(|a| a["durationMs"].as_i64())
            .take(attempts.len() - 1)
            .max()
            .unwrap_or(0),
        attempts.len()
    );
}

#[tokio::test]
async fn resets_and_endless_bodies_are_cut_short_and_retried() {
    let app = patient_app().await;
    let user = app.signup("reset.receiver@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    let (raw, port) = Raw::start_on(0).await;
    let hook = add_webhook(&user, &format!("http://127.0.0.1:{port}/raw")).await;

    // Reset before any answer: no status, an error, retried until it gets through.
    raw.script([Act::ResetBeforeAnswer, Act::ResetBeforeAnswer, Act::Ok]);
    let (status, _) = app
        .inbound(
            &key,
            json!({"email": "r@example.com", "event": "purchase", "orderId": "R-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let d = settled(&user, &hook, "succeeded", Duration::from_secs(10)).await;
    let log = d["attemptLog"].as_array().expect("log").clone();
    assert_eq!(log.len(), 3, "{d}");
    for a in &log[..2] {
        assert_eq!(a["statusCode"], Value::Null, "{a}");
        assert!(a["error"].as_str().is_some_and(|e| !e.is_empty()), "{a}");
    }
    assert_eq!(log[2]["statusCode"], 200);
    assert_eq!(raw.count(), 3);
    let reset_error = log[0]["error"].as_str().unwrap_or("").to_owned();

    // A 500 with a body that never ends: the excerpt is read and the connection dropped at
    // once (not at the timeout), and the delivery is retried.
    raw.script([Act::EndlessBody(500), Act::Ok]);
    let (status, _) = app
        .inbound(
            &key,
            json!({"email": "r@example.com", "event": "purchase", "orderId": "R-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    let d = loop {
        let d = settled(&user, &hook, "succeeded", Duration::from_secs(10)).await;
        if d["attemptLog"].as_array().is_some_and(|l| l.len() == 2) {
            break d;
        }
        assert!(Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = d["attemptLog"].as_array().expect("log").clone();
    assert_eq!(log[0]["statusCode"], 500, "{d}");
    assert_eq!(
        log[0]["responseBody"].as_str().expect("excerpt").len(),
        4096
    );
    let endless_ms = log[0]["durationMs"].as_i64().expect("ms");
    assert!(
        endless_ms < 1500,
        "cut short, not read to the 2 s timeout: {endless_ms} ms"
    );
    assert_eq!(log[1]["statusCode"], 200);
    assert_eq!(raw.count(), 5);

    // 200 then a reset in the middle of the body: the receiver answered 2xx, so the delivery
    // succeeded; the broken body is noted in the log, and it is not sent again.
    raw.script([Act::ResetMidBody]);
    let (status, _) = app
        .inbound(
            &key,
            json!({"email": "r@example.com", "event": "purchase", "orderId": "R-3"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    while raw.count() < 6 {
        assert!(Instant::now() < deadline, "third delivery never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = loop {
        let d = settled(&user, &hook, "succeeded", Duration::from_secs(10)).await;
        if d["attemptLog"].as_array().is_some_and(|l| l.len() == 1) {
            break d;
        }
        assert!(Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let a = &d["attemptLog"][0];
    assert_eq!(a["statusCode"], 200, "{d}");
    assert_eq!(a["responseBody"], "partial");
    assert!(a["error"].as_str().is_some_and(|e| !e.is_empty()), "{a}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(raw.count(), 6, "a 2xx is not sent again");
    println!(
        "receivers: reset before answering → retried (\"{reset_error}\"), delivered on attempt 3; \
         endless 500 body cut at 4096 bytes after {endless_ms} ms and retried; 200 then reset → \
         succeeded, noted (\"{}\")",
        a["error"].as_str().unwrap_or("")
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Two instances on one database under load; one of them is shut down gracefully.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_under_load_share_the_queue_and_a_graceful_shutdown_releases_its_work() {
    let test_started = Instant::now();
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok().delay(Duration::from_millis(150)));
    let db_url = fresh_database().await;
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    // The default timeout (5 s) and lease (35 s): a delivery left to its lease would show.
    let env = [("POSTBACK_RETRY_SCHEDULE", "200ms,200ms,200ms")];
    let mut a = Binary::start(&db_url, dir_a.path(), &env).await;
    let mut b = Binary::start(&db_url, dir_b.path(), &env).await;
    let admin = signup(&a.base, "twins.admin@example.com").await;
    let owner = signup(&a.base, "twins.load@example.com").await;
    let domain = owner.add_domain("shop.example.com").await;
    let (_, key) = owner.add_key(&domain, "Backend").await;
    add_webhook(&owner, &receiver.url("/twins")).await;
    // A second tenant, for revocation and plan changes while the first one's load runs.
    let other_a = signup(&a.base, "twins.other@example.com").await;
    let other_b = via(&other_a, &b.base);
    let other_domain = other_a.add_domain("other.example.com").await;
    let (key1_id, key1) = other_a.add_key(&other_domain, "One").await;
    other_a.add_key(&other_domain, "Two").await;

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(drive(
        vec![a.base.clone(), b.base.clone()],
        key.clone(),
        8,
        stop.clone(),
        true,
        "tw",
    ));
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let inbound = |base: &str, key: &str| {
        let (base, key) = (base.to_owned(), key.to_owned());
        async move {
            let resp = crate::helpers::http_client()
                .post(format!("{base}/__cc/inbound"))
                .header("X-CC-Api-Key", key)
                .json(&json!({"email": "o@example.com", "event": "purchase"}))
                .send()
                .await
                .expect("inbound");
            resp.status()
        }
    };
    // Revoked on A: refused by B on the very next request; restored on B: accepted by A.
    assert_eq!(inbound(&a.base, &key1).await, StatusCode::OK);
    assert_eq!(inbound(&b.base, &key1).await, StatusCode::OK);
    let (status, _) = other_a
        .post(&format!("/v1/keys/{key1_id}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(inbound(&b.base, &key1).await, StatusCode::UNAUTHORIZED);
    let (status, _) = other_b
        .post(&format!("/v1/keys/{key1_id}/restore"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(inbound(&a.base, &key1).await, StatusCode::OK);
    // The plan changed on A is the plan on B at once: Pulse allows 2 keys per domain, Signal 5.
    let keys = format!("/v1/domains/{other_domain}/keys");
    let (status, e) = other_b.post(&keys, json!({"name": "Three"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert!(e["error"].as_str().expect("error").contains("Pulse"), "{e}");
    let ws = format!("/v1/admin/workspaces/{}", other_a.workspace_id);
    let (status, w) = admin.patch(&ws, json!({"plan": "signal"})).await;
    assert_eq!(status, StatusCode::OK, "{w}");
    let (status, e) = other_b.post(&keys, json!({"name": "Three"})).await;
    assert_eq!(status, StatusCode::CREATED, "{e}");
    // Suspended through B: A refuses the workspace's events at once.
    let admin_b = via(&admin, &b.base);
    let (status, w) = admin_b
        .patch(&ws, json!({"status": "suspended", "reason": "Fault test"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{w}");
    assert_eq!(inbound(&a.base, &key1).await, StatusCode::FORBIDDEN);
    let (status, _) = admin.patch(&ws, json!({"status": "active"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(inbound(&b.base, &key1).await, StatusCode::OK);

    // SIGTERM to A in the middle of the load: it finishes what it has started and hands back
    // what it claimed but did not start, so B delivers it without waiting for the lease.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let db = pg(&db_url).await;
    let term = Instant::now();
    a.signal("-TERM");
    let exit = a.wait(Duration::from_secs(30)).await;
    let shutdown_took = term.elapsed();
    assert!(exit.success(), "clean exit: {exit:?}\n{}", a.output());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let load = load.await.expect("load");
    assert!(load.bad.is_empty(), "unexpected answers: {:?}", load.bad);
    assert!(load.ok.len() >= 100, "too little load: {:?}", load.statuses);
    let drain = drained(&db, Duration::from_secs(60)).await;
    let after_exit = term.elapsed() - shutdown_took;

    let stored = stored_events(&db).await;
    let unanswered_stored = check_stored(&load, &stored);
    let seen = by_event(&receiver);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    for (order, (id, _)) in &stored {
        assert!(seen.contains_key(id), "{order} ({id}) was never delivered");
    }
    let released = a
        .output()
        .lines()
        .filter(|l| l.contains("released") || l.contains("delivery worker stopped"))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert!(
        after_exit < Duration::from_secs(10),
        "deliveries of the stopped instance waited for their lease: {after_exit:?}"
    );
    println!(
        "two instances: {} answered 200 ({} refused by the stopped instance, {} unanswered, {} of those \
         stored); {} events delivered exactly once, none twice; SIGTERM to exit {:?}; every delivery \
         done {:?} after the exit (lease 35 s), {:?} after the load stopped; shutdown log: {:?}; test {:?}",
        load.ok.len(),
        load.refused.len(),
        load.broken.len(),
        unanswered_stored,
        seen.len(),
        shutdown_took,
        after_exit,
        drain,
        released,
        test_started.elapsed()
    );
    b.signal("-TERM");
    b.wait(Duration::from_secs(30)).await;
}

/// A batch can be stored in two parts: the unlimited plans' events in one statement, then the
/// quota-checked ones in a transaction. When the second part fails after the first committed,
/// only its own submissions may fail: the stored ones are answered 200 and never retried (a
/// retry would store them twice).
#[tokio::test]
async fn a_batch_stored_in_part_answers_each_submission_for_itself() {
    let app = TestApp::spawn().await;
    let db = pg(&app.db_url).await;
    let fast = app.signup("fast-path@batch.test").await;
    let fast_domain = fast.add_domain("fast.batch.test").await;
    let (_, fast_key) = fast.add_key(&fast_domain, "Backend").await;
    // Command has no monthly quota: its events take the single-statement path.
    app.sql(&format!(
        "UPDATE workspaces SET plan = 'command' WHERE id = '{}'",
        fast.workspace_id
    ))
    .await;
    // Pulse does: its events take the exact path, which this trigger makes slow and then fail.
    let exact = app.signup("exact-path@batch.test").await;
    let exact_domain = exact.add_domain("exact.batch.test").await;
    let (_, exact_key) = exact.add_key(&exact_domain, "Backend").await;
    db.batch_execute(&format!(
        "CREATE FUNCTION refuse_event() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_sleep(0.4); RAISE EXCEPTION 'refused by the test'; END $$;
         CREATE TRIGGER refuse_event BEFORE INSERT ON events FOR EACH ROW
         WHEN (NEW.workspace_id = '{}') EXECUTE FUNCTION refuse_event();",
        exact.workspace_id
    ))
    .await
    .expect("trigger");

    let post = |key: String, n: usize| {
        let url = app.url("/__cc/inbound");
        tokio::spawn(async move {
            let resp = crate::helpers::http_client()
                .post(url)
                .header("X-CC-Api-Key", key)
                .json(&json!({"email": format!("buyer{n}@batch.test"), "event": "purchase", "value": n}))
                .send()
                .await
                .expect("inbound");
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    // Both committers busy with a slow exact-path batch...
    let busy = [post(exact_key.clone(), 0), {
        tokio::time::sleep(Duration::from_millis(60)).await;
        post(exact_key.clone(), 1)
    }];
    tokio::time::sleep(Duration::from_millis(60)).await;
    // ...so these queue up and are committed together: 20 fast-path events and one that fails.
    let mut mixed: Vec<_> = (0..20).map(|n| post(fast_key.clone(), 100 + n)).collect();
    mixed.push(post(exact_key.clone(), 2));
    let refused = mixed.pop().expect("exact").await.expect("task");

    let mut ids = HashSet::new();
    for task in mixed {
        let (status, answer) = task.await.expect("task");
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["duplicate"], Value::Null, "{answer}");
        ids.insert(answer["eventId"].as_str().expect("eventId").to_owned());
    }
    assert_eq!(ids.len(), 20);
    let stored = count(
        &db,
        &format!(
            "SELECT count(*) FROM events WHERE workspace_id = '{}'",
            fast.workspace_id
        ),
    )
    .await;
    assert_eq!(stored, 20, "each event answered 200 is stored once");
    let answered: i64 = db
        .query_one(
            "SELECT count(*) FROM events WHERE id::text = ANY($1)",
            &[&ids.iter().cloned().collect::<Vec<String>>()],
        )
        .await
        .expect("ids")
        .get(0);
    assert_eq!(answered, 20, "the ids answered are the ids stored");

    for task in busy {
        let (status, answer) = task.await.expect("task");
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    }
    assert_eq!(
        refused.0,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        refused.1
    );
    assert!(refused.1["error"].is_string(), "{}", refused.1);
    let none = count(
        &db,
        &format!(
            "SELECT count(*) FROM events WHERE workspace_id = '{}'",
            exact.workspace_id
        ),
    )
    .await;
    assert_eq!(none, 0);
}

/// A delivery removed while its attempt is under way (its domain deleted, say, which takes the
/// events with it): the attempt's result has no row left to be recorded against. Other results
/// must still be recorded. (With the foreign key the attempt log had until migration 000013, the
/// worker retried such a batch of results for ever, and every later result waited behind it.)
#[tokio::test]
async fn a_delivery_deleted_during_its_attempt_does_not_hold_up_other_results() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::ok().delay(Duration::from_millis(1500))]);
    receiver.always(Reply::ok());
    let app = TestApp::spawn().await;
    let db = pg(&app.db_url).await;
    let user = app.signup("deleted-mid-attempt@faults.test").await;
    app.sql(&format!(
        "UPDATE workspaces SET plan = 'signal' WHERE id = '{}'",
        user.workspace_id
    ))
    .await;
    let gone = user.add_domain("gone.faults.test").await;
    let (_, gone_key) = user.add_key(&gone, "Backend").await;
    let kept = user.add_domain("kept.faults.test").await;
    let (_, kept_key) = user.add_key(&kept, "Backend").await;
    let (status, hook) = user
        .post(
            "/v1/integrations/webhooks",
            json!({"url": receiver.url("/hook")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");

    assert_eq!(
        app.inbound(&gone_key, purchase_of("a")).await.0,
        StatusCode::OK
    );
    // Its attempt is under way (the receiver answers after 1.5 s): delete the domain.
    receiver.wait_for(1, Duration::from_secs(5)).await;
    let (status, _) = user.delete(&format!("/v1/domains/{gone}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(1700)).await;

    let (status, kept_event) = app.inbound(&kept_key, purchase_of("b")).await;
    assert_eq!(status, StatusCode::OK);
    let event_id = kept_event["eventId"].as_str().expect("eventId").to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let done = count(
            &db,
            &format!(
                "SELECT count(*) FROM deliveries WHERE event_id = '{event_id}' AND status = 'succeeded'"
            ),
        )
        .await;
        if done == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the kept domain's delivery was not recorded as succeeded within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receiver.received().len(), 2, "each delivery sent once");
    assert_eq!(
        count(&db, "SELECT count(*) FROM delivery_attempts").await,
        1,
        "only the kept delivery's attempt is logged"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM deliveries").await, 1);
}

/// Writing results stalls for longer than a lease (here a lock on the attempt log, as a long
/// lock or a slow disk would) while deliveries keep being sent: leases of deliveries already
/// sent run out before their results are written. None of them may be claimed and sent again
/// meanwhile; once writing resumes every result is written and each event arrived once. (Before
/// the claimer waited for writing to catch up, every delivery here was sent a second time when
/// its lease ran out: the 30-minute soak of issue 23 sent 93,100 webhook requests twice.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_written_late_are_not_sent_again_when_their_lease_runs_out() {
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let db_url = fresh_database().await;
    let delivery = postback_runtime::delivery::DeliveryConfig {
        timeout: Duration::from_secs(1),
        lease: Some(Duration::from_secs(3)),
        ..test_delivery()
    };
    let app = TestApp::spawn_with(&db_url, delivery).await;
    let db = pg(&db_url).await;
    let user = app.signup("late-results@faults.test").await;
    let domain = user.add_domain("late.faults.test").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    add_webhook(&user, &receiver.url("/late")).await;

    // The attempt log refuses writes until this transaction ends; nothing else waits for it.
    let (mut locker, connection) = tokio_postgres::connect(&db_url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let lock = locker.transaction().await.expect("begin");
    lock.batch_execute("LOCK TABLE delivery_attempts IN SHARE MODE")
        .await
        .expect("lock the attempt log");

    const EVENTS: usize = 60;
    for n in 0..EVENTS {
        let (status, body) = app
            .inbound(
                &key,
                json!({"email": "late@faults.test", "event": "purchase", "orderId": format!("late-{n}")}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    receiver.wait_for(1, Duration::from_secs(10)).await;
    // Three leases long: each delivery sent has its lease run out with its result unwritten.
    // (Once the oldest unwritten result is half a sending window old, nothing more is claimed
    // until writing resumes, so not every event arrives in this time.)
    tokio::time::sleep(Duration::from_secs(9)).await;
    let during = receiver.received().len();
    assert_eq!(
        count(&db, "SELECT count(*) FROM delivery_attempts").await,
        0,
        "results are written only after the lock"
    );
    let twice: Vec<_> = by_event(&receiver)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(
        twice.is_empty(),
        "sent again while their results waited ({during} requests): {twice:?}"
    );
    lock.rollback().await.expect("unlock");

    drained(&db, Duration::from_secs(20)).await;
    let seen = by_event(&receiver);
    assert_eq!(seen.len(), EVENTS, "every event delivered");
    assert!(seen.values().all(|n| *n == 1), "each once: {seen:?}");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM delivery_attempts WHERE attempt = 1 AND status_code = 200"
        )
        .await,
        EVENTS as i64,
        "one attempt written per delivery"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM delivery_queue").await,
        0,
        "the queue is empty"
    );
}

fn purchase_of(who: &str) -> Value {
    json!({"email": format!("{who}@faults.test"), "event": "purchase", "value": 10})
}
