//! Where people deploy it (issue 23): the real binary behind PgBouncer in transaction pooling
//! mode (Debian's 1.18, which keeps no prepared statement from one transaction to the next), and
//! two instances behind HAProxy with one killed (`SIGKILL`) under load. PgBouncer and HAProxy are
//! the Debian packages `.ci/run` installs; without them these tests fail and say how to install
//! them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::process::{Child, Command};

use crate::faults::{
    add_webhook, by_event, check_stored, count, drained, drive, pg, signup, stored_events, Binary,
};
use crate::helpers::fresh_database;
use crate::receiver::{Receiver, Reply};

/// A port free right now on loopback (for a process that binds it itself).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The program at `path`, or a failure saying how to get it (no skipping).
fn installed(path: &str, package: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.exists(),
        "{path} is not installed: run `apt-get install -y {package}` (.ci/run installs it)"
    );
    p
}

/// Waits until something accepts TCP connections on `port`.
async fn accepting(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start: {status:?}");
        }
        assert!(Instant::now() < deadline, "{what} did not start listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A config directory that a process switched to the `postgres` user can read.
fn readable_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn write_readable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write config");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
}

// ---------------------------------------------------------------------------------------------
// PgBouncer in transaction pooling mode.

struct PgBouncer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl PgBouncer {
    /// PgBouncer on a free port in front of `db_url`'s database: transaction pooling, at most
    /// `pool` server connections, trust authentication.
    async fn start(db_url: &str, pool: usize) -> Self {
        let bin = installed("/usr/sbin/pgbouncer", "pgbouncer");
        let Target {
            host,
            port,
            user,
            db,
        } = Target::of(db_url);
        let listen = free_port();
        let dir = readable_dir();
        let users = dir.path().join("users.txt");
        write_readable(&users, &format!("\"{user}\" \"\"\n"));
        let ini = dir.path().join("pgbouncer.ini");
        write_readable(
            &ini,
            &format!(
                "[databases]\n{db} = host={host} port={port} dbname={db}\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {listen}\n\
                 unix_socket_dir =\nauth_type = trust\nauth_file = {}\n\
                 pool_mode = transaction\ndefault_pool_size = {pool}\nmin_pool_size = 0\n\
                 reserve_pool_size = 0\nmax_client_conn = 1000\nserver_round_robin = 1\n",
                users.display()
            ),
        );
        let mut cmd = Command::new(bin);
        // PgBouncer refuses to run as root; it drops to `postgres` when told to.
        if is_root() {
            cmd.args(["-u", "postgres"]);
        }
        let mut child = cmd
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("run pgbouncer");
        accepting(listen, "pgbouncer", &mut child).await;
        Self {
            child,
            url: format!("postgres://{user}@127.0.0.1:{listen}/{db}"),
            _dir: dir,
        }
    }
}

/// Where a database URL points, in either form the tests get: `postgres://user@host:port/db`
/// (a server named by TEST_DATABASE_URL) or libpq's `host='/socket/dir' port=… user=… dbname=…`
/// (the private cluster the harness starts, reachable through its Unix socket only; PgBouncer
/// takes a socket directory as its host).
struct Target {
    host: String,
    port: u16,
    user: String,
    db: String,
}

impl Target {
    fn of(db_url: &str) -> Self {
        if db_url.contains("://") {
            let url = url::Url::parse(db_url).expect("database url");
            return Self {
                host: url.host_str().expect("host").to_owned(),
                port: url.port().unwrap_or(5432),
                user: url.username().to_owned(),
                db: url.path().trim_start_matches('/').to_owned(),
            };
        }
        let mut t = Self {
            host: "localhost".into(),
            port: 5432,
            user: "postgres".into(),
            db: "postgres".into(),
        };
        for part in db_url.split_whitespace() {
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim_matches('\'').to_owned();
            match key {
                "host" => t.host = value,
                "port" => t.port = value.parse().expect("port"),
                "user" => t.user = value,
                "dbname" => t.db = value,
                _ => {}
            }
        }
        t
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Server connections PostgreSQL has open to `db` for clients (PgBouncer's and ours).
async fn backends(db: &tokio_postgres::Client) -> i64 {
    count(
        db,
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND backend_type = 'client backend'",
    )
    .await
}

/// Inbound on both paths (a quota: the exact path; none: the single-statement fast path),
/// webhook delivery, the dashboard and the API, with every connection of the pool, the inbound
/// committers and the delivery worker going through PgBouncer (4 server connections) and only
/// the `LISTEN` connection direct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_in_transaction_mode_carries_inbound_delivery_and_the_dashboard() {
    let started = Instant::now();
    let db_url = fresh_database().await;
    let bouncer = PgBouncer::start(&db_url, 4).await;
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("POSTBACK_DB_POOLER", "transaction"),
        ("POSTBACK_LISTEN_DATABASE_URL", db_url.as_str()),
        ("POSTBACK_DB_POOL_SIZE", "12"),
        ("POSTBACK_RETRY_SCHEDULE", "200ms,200ms,200ms"),
    ];
    let mut app = Binary::start(&bouncer.url, dir.path(), &env).await;

    // Signed up through the API: the Pulse plan, with a monthly quota (the exact path).
    let exact = signup(&app.base, "pooled.exact@example.com").await;
    let exact_domain = exact.add_domain("exact.example.com").await;
    let (_, exact_key) = exact.add_key(&exact_domain, "Backend").await;
    add_webhook(&exact, &receiver.url("/exact")).await;
    // Command has no quota: the fast path.
    let fast = signup(&app.base, "pooled.fast@example.com").await;
    let db = pg(&db_url).await;
    db.execute(
        "UPDATE workspaces SET plan = 'command' WHERE id = $1::text::uuid",
        &[&fast.workspace_id],
    )
    .await
    .expect("plan");
    let fast_domain = fast.add_domain("fast.example.com").await;
    let (_, fast_key) = fast.add_key(&fast_domain, "Backend").await;
    add_webhook(&fast, &receiver.url("/fast")).await;

    // Concurrent load on both keys: far more client connections than PgBouncer's 4.
    let stop = Arc::new(AtomicBool::new(false));
    let loads = [
        tokio::spawn(drive(
            vec![app.base.clone()],
            exact_key.clone(),
            8,
            stop.clone(),
            false,
            "px",
        )),
        tokio::spawn(drive(
            vec![app.base.clone()],
            fast_key.clone(),
            8,
            stop.clone(),
            false,
            "pf",
        )),
    ];
    // Meanwhile the dashboard and the API, as the owner of each workspace.
    let mut pages = 0;
    let dashboard_until = Instant::now() + Duration::from_secs(4);
    let mut peak_backends = 0;
    while Instant::now() < dashboard_until {
        for (user, domain, host) in [
            (&exact, &exact_domain, "exact.example.com"),
            (&fast, &fast_domain, "fast.example.com"),
        ] {
            let (status, html) = user.page("/domains").await;
            assert_eq!(status, StatusCode::OK, "{html}");
            assert!(html.contains(host), "the domains page lists {host}");
            let (status, html) = user.page(&format!("/domains/{domain}/events")).await;
            assert_eq!(status, StatusCode::OK, "{html}");
            let (status, body) = user.get(&format!("/v1/domains/{domain}/keys")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            pages += 3;
        }
        peak_backends = peak_backends.max(backends(&db).await);
    }
    stop.store(true, Ordering::Relaxed);
    let mut load = Vec::new();
    for l in loads {
        load.push(l.await.expect("load"));
    }
    for (l, path) in load.iter().zip(["exact", "fast"]) {
        assert!(
            l.bad.is_empty() && l.broken.is_empty() && l.unavailable.is_empty(),
            "{path} path: statuses {:?}, errors {:?}\n{}",
            l.statuses,
            l.bad,
            app.output()
        );
        assert!(l.ok.len() >= 20, "{path}: too little load {:?}", l.statuses);
    }

    // Every 200 is stored once, and delivered, by the worker whose connections are pooled too.
    let drain = drained(&db, Duration::from_secs(30)).await;
    let stored = stored_events(&db).await;
    let mut all = crate::faults::Load::default();
    for l in load {
        all.ok.extend(l.ok);
    }
    assert_eq!(check_stored(&all, &stored), 0);
    assert_eq!(stored.len(), all.ok.len());
    let seen = by_event(&receiver);
    for (order, (id, _)) in &stored {
        assert_eq!(seen.get(id), Some(&1), "{order} ({id}) delivered once");
    }
    let by_path: HashMap<&str, usize> =
        receiver.received().iter().fold(HashMap::new(), |mut m, r| {
            *m.entry(if r.path == "/exact" { "exact" } else { "fast" })
                .or_default() += 1;
            m
        });
    // The server connections were shared: at most PgBouncer's 4, the listener and ours.
    assert!(
        peak_backends <= 6,
        "{peak_backends} server connections for a pool of 4"
    );
    // The listener's connection is the direct one: it is in a session that LISTENs.
    let listening = count(
        &db,
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .await;
    assert_eq!(listening, 1, "one direct LISTEN connection");
    // A click, stored by the click store's own connection (no session SET behind the pooler).
    let (status, link) = exact
        .post(
            &format!("/v1/domains/{exact_domain}/links"),
            json!({"name": "Pooled", "slug": "pooled",
                   "targets": [{"url": "https://exact.example.com/landing", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36")
        .build()
        .expect("client")
        .get(format!("{}/__cc/go/pooled", app.base))
        .send()
        .await
        .expect("click");
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM touches WHERE link_id IS NOT NULL"
        )
        .await,
        1,
        "the click is stored before its redirect"
    );
    println!(
        "pgbouncer (transaction, pool 4): {} events answered 200 and stored once ({} exact path, \
         {} fast path), each delivered once ({by_path:?}), queue drained {drain:?} after the load; \
         {pages} dashboard and API requests; at most {peak_backends} PostgreSQL connections; test {:?}",
        stored.len(),
        stored.keys().filter(|o| o.starts_with("px")).count(),
        stored.keys().filter(|o| o.starts_with("pf")).count(),
        started.elapsed()
    );
    app.signal("-TERM");
    app.wait(Duration::from_secs(30)).await;
    drop(bouncer.child);
}

// ---------------------------------------------------------------------------------------------
// Two instances behind HAProxy.

struct Proxy {
    _child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// HAProxy on a free port, round robin over `backends` (ports), health-checked every 200 ms,
    /// retrying refused connections on the other instance.
    async fn start(backends: &[u16]) -> Self {
        let bin = installed("/usr/sbin/haproxy", "haproxy");
        let port = free_port();
        let dir = readable_dir();
        let cfg = dir.path().join("haproxy.cfg");
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, p)| format!("  server pb{i} 127.0.0.1:{p} check inter 200ms fall 1 rise 2\n"))
            .collect();
        write_readable(
            &cfg,
            &format!(
                "global\n  maxconn 2000\n\
                 defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  \
                 timeout server 30s\n  retries 3\n  option redispatch 1\n  option forwardfor\n\
                 frontend web\n  bind 127.0.0.1:{port}\n  default_backend postback\n\
                 backend postback\n  balance roundrobin\n  option httpchk GET /healthz\n  \
                 http-response set-header X-Served-By %s\n{servers}"
            ),
        );
        let mut child = Command::new(bin)
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("run haproxy");
        accepting(port, "haproxy", &mut child).await;
        Self {
            _child: child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

/// Which instances (HAProxy's server names) answered `n` requests through the proxy.
async fn served_by(base: &str, n: usize) -> HashSet<String> {
    let mut names = HashSet::new();
    for _ in 0..n {
        let resp = crate::helpers::http_client()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("healthz through the proxy");
        assert_eq!(resp.status(), StatusCode::OK);
        let name = resp
            .headers()
            .get("x-served-by")
            .and_then(|v| v.to_str().ok())
            .expect("X-Served-By")
            .to_owned();
        names.insert(name);
    }
    names
}

/// Two stateless instances on one database behind HAProxy; one is killed with `SIGKILL` under
/// load. Every event answered 200 is stored once and delivered (a delivery whose attempt was in
/// flight at the kill is retried under the same `webhook-id`, and only those), requests after
/// the kill are served by the other instance, and the dashboard session made through the proxy
/// keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behind_haproxy_survive_a_kill() {
    let started = Instant::now();
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok().delay(Duration::from_millis(100)));
    let db_url = fresh_database().await;
    let (port_a, port_b) = (free_port(), free_port());
    let proxy = Proxy::start(&[port_a, port_b]).await;
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let env = |port: u16| {
        [
            ("POSTBACK_LISTEN", format!("127.0.0.1:{port}")),
            ("POSTBACK_BASE_URL", proxy.base.clone()),
            ("POSTBACK_TRUSTED_PROXIES", "127.0.0.1/32".to_owned()),
            ("POSTBACK_DELIVERY_TIMEOUT", "1s".to_owned()),
            ("POSTBACK_DELIVERY_LEASE", "3s".to_owned()),
            (
                "POSTBACK_RETRY_SCHEDULE",
                "200ms,200ms,200ms,200ms".to_owned(),
            ),
        ]
    };
    let (env_a, env_b) = (env(port_a), env(port_b));
    let refs_a: Vec<(&str, &str)> = env_a.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refs_b: Vec<(&str, &str)> = env_b.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut a = Binary::start(&db_url, dir_a.path(), &refs_a).await;
    let mut b = Binary::start(&db_url, dir_b.path(), &refs_b).await;
    // Both healthy in HAProxy's eyes before the load: two passed checks each (`rise 2`), which
    // takes longer on a loaded machine; bounded.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut names = HashSet::new();
        for _ in 0..4 {
            if let Ok(resp) = crate::helpers::http_client()
                .get(format!("{}/healthz", proxy.base))
                .send()
                .await
            {
                if let Some(name) = resp.headers().get("x-served-by") {
                    names.insert(name.to_str().unwrap_or_default().to_owned());
                }
            }
        }
        if names.len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "HAProxy never saw both instances healthy (saw {names:?})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert_eq!(
        served_by(&proxy.base, 4).await,
        HashSet::from(["pb0".to_owned(), "pb1".to_owned()]),
        "round robin over both instances"
    );
    // Everything through the proxy: the signup's session cookie is the proxy's.
    let owner = signup(&proxy.base, "behind.proxy@example.com").await;
    let domain = owner.add_domain("shop.example.com").await;
    let (_, key) = owner.add_key(&domain, "Backend").await;
    add_webhook(&owner, &receiver.url("/proxied")).await;

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(drive(
        vec![proxy.base.clone()],
        key.clone(),
        8,
        stop.clone(),
        false,
        "hp",
    ));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Both instances took requests before the kill.
    let db = pg(&db_url).await;
    let served_before = receiver.received().len();
    a.signal("-KILL");
    let exit = a.wait(Duration::from_secs(10)).await;
    assert!(!exit.success(), "killed: {exit:?}");
    let killed_at = Instant::now();
    // What the kill left: attempts the receiver got whose result was never written.
    let unrecorded: HashSet<String> = db
        .query(
            "SELECT d.event_id::text FROM deliveries d
             WHERE d.status = 'pending' AND d.attempts > 0
               AND NOT EXISTS (SELECT 1 FROM delivery_attempts x
                               WHERE x.delivery_id = d.id AND x.attempt = d.attempts)",
            &[],
        )
        .await
        .expect("unrecorded")
        .iter()
        .map(|r| r.get(0))
        .collect();
    // The load goes on through the proxy, served by the instance left.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    let load = load.await.expect("load");
    assert!(load.bad.is_empty(), "unexpected answers: {:?}", load.bad);
    assert!(load.ok.len() >= 50, "too little load: {:?}", load.statuses);

    // Requests after the kill succeed through the proxy, served by the instance left.
    assert_eq!(
        served_by(&proxy.base, 4).await,
        HashSet::from(["pb1".to_owned()]),
        "after the kill"
    );
    let (status, answer) = {
        let resp = reqwest::Client::new()
            .post(format!("{}/__cc/inbound", proxy.base))
            .header("X-CC-Api-Key", &key)
            .json(
                &json!({"email": "after@example.com", "event": "purchase", "orderId": "hp-after"}),
            )
            .send()
            .await
            .expect("after the kill");
        (
            resp.status(),
            resp.json::<serde_json::Value>().await.expect("json"),
        )
    };
    assert_eq!(status, StatusCode::OK, "{answer}");
    // The session made through the proxy before the kill: pages and a change still work.
    let (status, html) = owner.page("/domains").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("shop.example.com"),
        "signed in after the kill"
    );
    let (status, body) = owner.get("/v1/domains").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    owner.add_key(&domain, "Made after the kill").await;
    let (status, html) = owner.page(&format!("/domains/{domain}/keys")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Made after the kill"), "{html}");

    // Nothing lost, nothing stored twice, everything delivered; a second send only for what was
    // in flight at the kill, under the same webhook-id.
    let drain = drained(&db, Duration::from_secs(30)).await;
    let stored = stored_events(&db).await;
    let mut all = load;
    all.ok.insert(
        "hp-after".into(),
        answer["eventId"].as_str().expect("id").into(),
    );
    let unanswered_stored = check_stored(&all, &stored);
    let seen = by_event(&receiver);
    for (order, (id, _)) in &stored {
        assert!(seen.contains_key(id), "{order} ({id}) was never delivered");
    }
    let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
    for r in receiver.received() {
        let event = r.json()["id"].as_str().expect("id").to_owned();
        ids.entry(event)
            .or_default()
            .insert(r.header("webhook-id").expect("webhook-id").to_owned());
    }
    for (event, hooks) in &ids {
        assert_eq!(hooks.len(), 1, "{event} came under several webhook-ids");
    }
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    for id in &twice {
        assert!(
            unrecorded.contains(*id),
            "{id} was sent twice though its attempt was not in flight at the kill"
        );
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM deliveries").await,
        count(&db, "SELECT count(*) FROM events").await,
        "one delivery per event"
    );
    println!(
        "haproxy, 2 instances, one killed: {} answered 200 ({} deliveries received before the kill), {:?} \
         statuses, {} unanswered at the kill ({} of them stored), {} events stored exactly once and \
         delivered; {} attempts in flight at the kill resent under the same webhook-id, {} events \
         received twice (all in flight at the kill); drained {drain:?} after the load, {:?} after \
         the kill; session kept; test {:?}",
        all.ok.len(),
        served_before,
        all.statuses,
        all.broken.len(),
        unanswered_stored,
        stored.len(),
        unrecorded.len(),
        twice.len(),
        killed_at.elapsed(),
        started.elapsed()
    );
    b.signal("-TERM");
    b.wait(Duration::from_secs(30)).await;
}

/// The documented fallback when the `LISTEN` connection cannot be made
/// (`POSTBACK_LISTEN_DATABASE_URL` unreachable): the worker polls every second instead, so an
/// event of a workspace with a quota (stored without being claimed, announced by `NOTIFY`) and a
/// redelivery (announced the same way) still arrive within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_listen_connection_deliveries_still_arrive_by_polling() {
    let receiver = Receiver::start().await;
    let db_url = fresh_database().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let unreachable = format!("postgres://postgres@127.0.0.1:{}/nowhere", free_port());
    let env = [
        ("POSTBACK_LISTEN_DATABASE_URL", unreachable.as_str()),
        ("POSTBACK_RETRY_SCHEDULE", "100ms"),
    ];
    let mut app = Binary::start(&db_url, dir.path(), &env).await;
    let owner = signup(&app.base, "no.listen@example.com").await;
    let domain = owner.add_domain("shop.example.com").await;
    let (_, key) = owner.add_key(&domain, "Backend").await;
    add_webhook(&owner, &receiver.url("/nolisten")).await;

    // Refused twice (one attempt, one retry): the delivery fails.
    receiver.always(Reply::status(500));
    let sent = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("{}/__cc/inbound", app.base))
        .header("X-CC-Api-Key", &key)
        .json(&json!({"email": "a@example.com", "event": "purchase", "orderId": "nl-1"}))
        .send()
        .await
        .expect("inbound");
    assert_eq!(resp.status(), StatusCode::OK);
    let db = pg(&db_url).await;
    let deadline = sent + Duration::from_secs(10);
    while receiver.received().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the receiver got {} attempts; deliveries {:?}:\n{}",
            receiver.received().len(),
            db.query("SELECT status, attempts FROM deliveries", &[])
                .await
                .expect("deliveries")
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, i32>(1)))
                .collect::<Vec<_>>(),
            app.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let delivery: String = loop {
        let rows = db
            .query(
                "SELECT id::text FROM deliveries WHERE status = 'failed'",
                &[],
            )
            .await
            .expect("deliveries");
        if let Some(r) = rows.first() {
            break r.get(0);
        }
        assert!(Instant::now() < deadline, "the delivery did not fail");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        app.output()
            .contains("delivery listener cannot connect; polling for deliveries every second"),
        "{}",
        app.output()
    );

    // Redelivered by hand: no notification reaches the worker, its periodic look finds it.
    receiver.always(Reply::ok());
    let asked = Instant::now();
    let (status, body) = owner
        .post(&format!("/v1/deliveries/{delivery}/redeliver"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let first_attempt = receiver.received()[0].at - sent;
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    let arrived = asked.elapsed();
    assert_eq!(got[2].header("webhook-id"), got[0].header("webhook-id"));
    drained(&db, Duration::from_secs(10)).await;
    println!(
        "no LISTEN connection: first attempt {first_attempt:?} after the inbound request, \
         the redelivery {arrived:?} after it was asked for"
    );
    app.signal("-TERM");
    app.wait(Duration::from_secs(30)).await;
}
