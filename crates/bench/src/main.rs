//! `postback-bench inbound`: drives `POST /__cc/inbound` with unique, realistic seed-000 events
//! over keep-alive connections, reports throughput and latency, then checks that the database
//! holds exactly the events that were answered 200.
//!
//! By default it starts its own `postback` (the release binary next to this one) on a fresh
//! database and removes both afterwards; `--url` targets a server that is already running.
//!
//! `--webhook` also measures outbound delivery: a receiver in this process (hyper, on a free
//! loopback port, answering 200 at once) and one webhook for every event pointing at it, created
//! before the warm-up. Each inbound 200's `eventId` and arrival instant are kept; after the load
//! the bench waits up to 60 s for every accepted event to reach the receiver, then reports
//! deliveries/s in the measured window, inbound-200-to-arrival latency (p50/p95/p99/max), the
//! time the queue took to drain after the load stopped, duplicate deliveries (requests minus
//! distinct `webhook-id`s), events never delivered, and the deliveries rows not `succeeded`.
//! Any event never delivered or any duplicate fails the run.
//!
//! `--platform` adds an ad platform: a second receiver playing Meta's Conversions API, the
//! server started with `POSTBACK_META_URL` pointing at it, and the domain's Meta connection, so
//! every event goes to the webhook (with `--webhook`) and to Meta; the same figures are reported
//! for it, and the requests it got per event (the worker batches a connection's events).
//!
//! `--slow-webhook-ms N` (with `--webhook`) adds a second tenant whose webhook points at a
//! receiver that answers N ms after each request, and a side load of `--slow-rate` events per
//! second for it over `--slow-connections` connections in the same seconds: the healthy
//! webhook's figures then show whether the slow one delays it (slow-receiver isolation).
//!
//! `postback-bench go`: the same load shape against a tracking link's redirect,
//! `GET /__cc/go/{slug}?utm_source=…&gclid=…` with a browser's User-Agent; reports redirects/s
//! and latency, and checks that the database holds exactly one touch per 302 (each click is
//! committed before its redirect is answered).
//!
//! `postback-bench retention`: one retention pass over N expired events on a fresh database
//! (see `retention.rs`): seconds, rows deleted, sizes before, after and after `VACUUM`, dead
//! tuples; fails if expired rows remain or recent ones were lost.

mod account;
mod cluster;
mod db;
mod http;
mod ids;
mod load;
mod prefill;
mod receiver;
mod report;
mod retention;
mod sample;
mod server;
mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use tokio::time::Instant;

use report::{Report, Verification};

/// Used with `--shared-server`.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Parser)]
#[command(name = "postback-bench", about = "Load benchmarks for Postback")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inbound events: accepted/s, latency percentiles, errors, server memory, and a check that
    /// the database holds exactly the events answered 200. Exits non-zero on a mismatch or on
    /// any error answer.
    Inbound(InboundArgs),
    /// Tracking-link redirects (`GET /__cc/go/{slug}`): redirects/s, latency percentiles,
    /// errors, server memory, and a check that the database holds exactly one click (touch) per
    /// 302 answered. Takes the same options as `inbound` except `--webhook`.
    Go(InboundArgs),
    /// One retention pass over N expired events (with a delivery and an attempt each) and
    /// N/10 expired touches, beside N/20 recent events that must survive, on a fresh migrated
    /// database: the pass's seconds, rows deleted, table and index sizes before, right after
    /// and after a plain VACUUM, dead tuples. Exits non-zero if expired rows remain or recent
    /// rows were lost.
    Retention(RetentionArgs),
}

#[derive(clap::Args)]
struct RetentionArgs {
    /// Expired events to fill (40–100 days old, on the 30-day `pulse` plan).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    events: u64,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Which PostgreSQL server the bench's fresh database goes on.
#[derive(clap::Args)]
struct ClusterArgs {
    /// The PostgreSQL server on which a fresh database `postback_bench_<pid>` is created (and
    /// dropped afterwards). Unset: the bench initialises a private cluster with PostgreSQL's
    /// stock settings (autovacuum on) under /var/tmp from the installed binaries, and removes
    /// it at the end.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Without --database-url: use the server at postgres://postgres@127.0.0.1:5432/postgres
    /// instead of a private stock cluster.
    #[arg(long, conflicts_with = "database_url")]
    shared_server: bool,
    /// Keep the bench's own database afterwards (its name is printed); drop it yourself with
    /// `DROP DATABASE … WITH (FORCE)`.
    #[arg(long)]
    keep_database: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Inbound,
    Go,
}

#[derive(clap::Args)]
struct InboundArgs {
    /// Concurrent keep-alive connections, each sending one request at a time.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,
    /// Measured seconds.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=600))]
    warmup_seconds: u64,
    /// An already-running server (loopback only), e.g. http://127.0.0.1:8080. Without it the
    /// bench starts its own.
    #[arg(long)]
    url: Option<String>,
    /// Without --url: the PostgreSQL server on which a fresh database `postback_bench_<pid>` is
    /// created (and dropped afterwards). Unset: the bench initialises a private cluster with
    /// PostgreSQL's stock settings (autovacuum on) under /var/tmp from the installed binaries,
    /// and removes it at the end. With --url: that server's own database, used to lift the
    /// quota and verify the events; without it neither happens.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Without --database-url: use the server at postgres://postgres@127.0.0.1:5432/postgres
    /// instead of a private stock cluster.
    #[arg(long, conflicts_with_all = ["url", "database_url"])]
    shared_server: bool,
    /// Without --url: a PgBouncer in transaction pooling mode in front of the --database-url
    /// server that forwards any database name (`* = host=… port=…`), e.g.
    /// postgres://postgres@127.0.0.1:6432/postgres. The bench's server then reaches its
    /// database through it with POSTBACK_DB_POOLER=transaction, and its LISTEN connection
    /// directly (POSTBACK_LISTEN_DATABASE_URL); the report says so. To measure the pooler mode's
    /// cost against a run without it.
    #[arg(long, conflicts_with = "url", requires = "database_url")]
    pooler_url: Option<String>,
    /// The postback binary to start [default: `postback` next to this executable].
    #[arg(long, conflicts_with = "url")]
    binary: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Also measure outbound delivery: a receiver in this process on a free loopback port and
    /// one webhook (every event) pointing at it. Reports deliveries/s in the window,
    /// inbound-200-to-arrival latency percentiles, the time the queue took to drain after the
    /// load, duplicate deliveries (requests minus distinct webhook-ids), events never delivered
    /// (after waiting up to 60 s) and the deliveries rows not `succeeded`. The run fails on any
    /// event never delivered or any duplicate. Needs a server that allows loopback targets
    /// (the bench's own runs with POSTBACK_ALLOW_PRIVATE_TARGETS=true).
    #[arg(long)]
    webhook: bool,
    /// With --webhook: also a second tenant whose webhook's receiver answers this many
    /// milliseconds after each request, sent --slow-rate events per second during the load and
    /// its warm-up (its deliveries are not waited for).
    #[arg(long, default_value_t = 0, requires = "webhook", value_parser = clap::value_parser!(u64).range(0..=600_000))]
    slow_webhook_ms: u64,
    /// Events per second sent to the slow tenant.
    #[arg(long, default_value_t = 150, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    slow_rate: u64,
    /// Connections the slow tenant's events go over (each paced).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    slow_connections: u32,
    /// Also forward every event to an ad platform: a fake Meta Conversions API in this process
    /// (answering as Meta does), the server started with POSTBACK_META_URL pointing at it, and
    /// the domain's Meta connection. Reported like --webhook (the event id stands for the
    /// delivery id). Only with the bench's own server.
    #[arg(long, conflicts_with = "url")]
    platform: bool,
    /// Print a sample every N seconds while the load runs: success answers per second in the
    /// interval, errors so far, the server's RSS and (with database access and --webhook) the
    /// deliveries still pending. For soak runs, e.g. `--seconds 1800 --sample-seconds 30`: with
    /// 600 measured seconds or more the report ends with a soak summary (accepted/s and, with
    /// --webhook/--platform, arrivals/s in the first and last min(300 s, seconds/4), their
    /// ratio, RSS first/last/max, pending deliveries max/last).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=3600))]
    sample_seconds: u64,
    /// Before the load, fill the database with this many stored events spread over
    /// --prefill-domains domains (other tenants' and the bench's own), with --prefill-keys keys
    /// and --prefill-webhooks webhooks (and one succeeded delivery per other tenant's event),
    /// then VACUUM ANALYZE: to see how ingest and delivery cost grow with stored data. Needs
    /// database access.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    prefill_events: u64,
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(2..=100_000))]
    prefill_domains: u64,
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    prefill_keys: u64,
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    prefill_webhooks: u64,
    /// Keep the bench's own database afterwards (its name is printed), e.g. to look at query
    /// plans; drop it yourself with `DROP DATABASE … WITH (FORCE)`.
    #[arg(long, conflicts_with = "url")]
    keep_database: bool,
}

/// Where the load goes.
struct Target {
    addr: SocketAddr,
    /// `host:port`, for the `Host` header.
    host: String,
    /// The server's database, if we can reach it.
    db_url: Option<String>,
    /// The server's process, if we started it.
    pid: Option<u32>,
    /// Which PostgreSQL that is, for the report.
    db_label: String,
}

/// `http://host:port` → a loopback socket address; anything else is refused.
async fn resolve_loopback(url: &str) -> Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("--url {url}: only http:// is supported"))?;
    let host = rest.split('/').next().unwrap_or(rest);
    let host = if host.contains(':') && !host.ends_with(']') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&host)
        .await
        .with_context(|| format!("resolving {host}"))?
        .collect();
    let addr = addrs
        .iter()
        .find(|a| a.ip().is_loopback())
        .copied()
        .with_context(|| {
            format!("--url {url} is not a loopback address: the bench only loads this machine")
        })?;
    Ok((addr, host))
}

fn run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{}-{millis}", std::process::id())
}

/// Sets up the account, runs the load, reads the server's memory and verifies the events.
async fn measure(
    mode: Mode,
    args: &InboundArgs,
    target: &Target,
    platform: Option<&receiver::Receiver>,
) -> Result<Report> {
    let base = format!("http://{}", target.host);
    let run_id = run_id();
    let receiver = match args.webhook {
        true => Some(receiver::Receiver::start(receiver::Kind::Webhook).await?),
        false => None,
    };
    let slow = match args.slow_webhook_ms {
        0 => None,
        ms => {
            let r =
                receiver::Receiver::start_slow(receiver::Kind::Webhook, Duration::from_millis(ms))
                    .await?;
            let acct = account::create(&base, &format!("{run_id}-slow"), Some(&r.url), None, false)
                .await
                .context("setting up the slow tenant")?;
            if let Some(url) = &target.db_url {
                db::lift_quota(url, &acct.workspace_id).await?;
            }
            Some((r, acct))
        }
    };
    let slug = format!("bench-{run_id}");
    let account = account::create(
        &base,
        &run_id,
        receiver.as_ref().map(|r| r.url.as_str()),
        (mode == Mode::Go).then_some(slug.as_str()),
        platform.is_some(),
    )
    .await
    .context("setting up the bench account")?;
    if args.prefill_events > 0 {
        let url = target
            .db_url
            .as_deref()
            .context("--prefill-events needs database access (--database-url)")?;
        let fill = prefill::Fill {
            events: args.prefill_events,
            domains: args.prefill_domains,
            keys: args.prefill_keys,
            webhooks: args.prefill_webhooks,
        };
        prefill::run(url, &fill, &account.workspace_id, &account.domain_id).await?;
    }
    // Events the prefill gave the bench's domain, which the load's verification leaves out.
    let prefilled = match (&target.db_url, args.prefill_events > 0) {
        (Some(url), true) => db::count_events(url, &account.domain_id).await?,
        _ => 0,
    };
    match &target.db_url {
        Some(url) => db::lift_quota(url, &account.workspace_id).await?,
        None => eprintln!(
            "warning: no database access (pass --database-url with the server's database): the \
             workspace stays on its plan, so the monthly quota may cut the run short, and the \
             events cannot be verified"
        ),
    }

    eprintln!(
        "load: {} connection(s), {} s warm-up + {} s measured against {}",
        args.connections, args.warmup_seconds, args.seconds, target.addr
    );
    let measure_from = Instant::now() + Duration::from_secs(args.warmup_seconds);
    let deadline = measure_from + Duration::from_secs(args.seconds);
    let progress = std::sync::Arc::new(load::Progress::default());
    let sampler = (args.sample_seconds > 0).then(|| {
        let sampler = sample::Sampler {
            every: Duration::from_secs(args.sample_seconds),
            progress: progress.clone(),
            pid: target.pid,
            queue: target
                .db_url
                .clone()
                .filter(|_| args.webhook || args.platform)
                .map(|url| (url, account.workspace_id.clone())),
            measure_from,
            webhook: receiver.as_ref().map(receiver::Receiver::arrivals),
            platform: platform.map(receiver::Receiver::arrivals),
        };
        tokio::spawn(sampler.run(deadline))
    });
    let slow_load = slow.as_ref().map(|(_, acct)| {
        let connections = args.slow_connections as usize;
        load::run(load::Plan {
            progress: std::sync::Arc::new(load::Progress::default()),
            addr: target.addr,
            host: target.host.clone(),
            request: load::Request::Inbound {
                key: acct.key.clone(),
            },
            run_id: format!("{run_id}-slow"),
            connections,
            measure_from,
            deadline,
            track_accepted: false,
            pace: Some(Duration::from_secs_f64(
                connections as f64 / args.slow_rate as f64,
            )),
        })
    });
    let main_load = load::run(load::Plan {
        progress,
        addr: target.addr,
        host: target.host.clone(),
        request: match mode {
            Mode::Inbound => load::Request::Inbound { key: account.key },
            Mode::Go => load::Request::Go {
                path: format!(
                    "/__cc/go/{slug}?utm_source=bench&utm_medium=cpc&gclid=bench-{run_id}"
                ),
            },
        },
        run_id,
        connections: args.connections as usize,
        measure_from,
        deadline,
        track_accepted: receiver.is_some() || platform.is_some(),
        pace: None,
    });
    let tally = match slow_load {
        Some(slow_load) => {
            let (tally, slow_tally) = tokio::join!(main_load, slow_load);
            let slow_tally = slow_tally?;
            let requests = slow.as_ref().map_or(0, |(r, _)| r.seen().requests);
            eprintln!(
                "slow tenant: {} events accepted, {} errors; its receiver ({} ms) got {} requests by the end of the load",
                slow_tally.total_ok,
                slow_tally.transport_errors + slow_tally.errors_by_status.values().sum::<u64>(),
                args.slow_webhook_ms,
                requests
            );
            tally?
        }
        None => main_load.await?,
    };
    let mut delivered = Vec::new();
    for r in receiver.iter().chain(platform) {
        eprintln!("{:?}: waiting for the deliveries", r.kind);
        let window = webhook::Window {
            from: measure_from,
            deadline,
            db: target
                .db_url
                .as_deref()
                .map(|url| (url, account.workspace_id.as_str())),
        };
        delivered.push(webhook::collect(r, &tally, window).await?);
    }
    let platform_figures = match platform {
        Some(_) => delivered.pop(),
        None => None,
    };
    let webhook = delivered.pop();

    let memory = target.pid.map(server::memory_kib);
    let verification = match &target.db_url {
        Some(url) => {
            let stored = match &account.link_id {
                Some(link) => db::count_clicks(url, link).await?,
                None => db::count_events(url, &account.domain_id)
                    .await?
                    .saturating_sub(prefilled),
            };
            if stored == tally.total_ok {
                Verification::Exact { stored }
            } else {
                Verification::Mismatch {
                    stored,
                    answered_200: tally.total_ok,
                    unknown_outcome: tally.unknown_outcome,
                }
            }
        }
        None => Verification::Skipped,
    };
    let mut report = Report::new(
        match mode {
            Mode::Inbound => "inbound",
            Mode::Go => "go",
        },
        args.connections,
        args.warmup_seconds,
        args.seconds,
        &tally,
        memory,
        verification,
    );
    report.webhook = webhook;
    report.platform = platform_figures;
    if let Some(url) = &target.db_url {
        match db::settings(url, target.db_label.clone()).await {
            Ok(settings) => report.database = Some(settings),
            Err(e) => eprintln!("postback-bench: {e:#}"),
        }
    }
    if let Some(sampler) = sampler {
        let sampled = sampler.await.context("the sampler failed")??;
        report.soak = sample::soak(sampled.baseline.as_ref(), &sampled.samples, args.seconds);
        report.samples = sampled.samples;
    }
    Ok(report)
}

/// The PostgreSQL server to create the fresh database on: the given one, the shared one, or a
/// private stock cluster started here (returned, to be stopped at the end). Also its label for
/// the report.
async fn database_server(
    database_url: Option<&String>,
    shared_server: bool,
    keep: bool,
) -> Result<(Option<cluster::PrivateCluster>, String, String)> {
    // Without a server named, a private cluster with PostgreSQL's stock settings (autovacuum
    // on), as people run it; it is removed at the end.
    Ok(match (database_url, shared_server) {
        (Some(url), _) => (None, url.clone(), format!("{}, given", db::redact(url))),
        (None, true) => (
            None,
            DEFAULT_DATABASE_URL.to_owned(),
            format!("{}, --shared-server", db::redact(DEFAULT_DATABASE_URL)),
        ),
        (None, false) => {
            let c = cluster::PrivateCluster::start(keep).await?;
            let url = c.admin_url();
            let label = format!("private stock cluster at {}", c.dir().display());
            (Some(c), url, label)
        }
    })
}

/// Resolves the target (starting a server if needed), measures, and always cleans up.
async fn run(mode: Mode, args: &InboundArgs) -> Result<Report> {
    if mode == Mode::Go && (args.webhook || args.platform) {
        return Err(anyhow!(
            "--webhook and --platform measure inbound deliveries; `go` has none"
        ));
    }
    if let Some(url) = &args.url {
        let (addr, host) = resolve_loopback(url).await?;
        let target = Target {
            addr,
            host,
            db_url: args.database_url.clone(),
            pid: None,
            db_label: "the server given with --database-url".into(),
        };
        return tokio::select! {
            r = measure(mode, args, &target, None) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        };
    }

    let binary = server::locate_binary(args.binary.clone())?;
    let (mut cluster, admin_url, db_label) = database_server(
        args.database_url.as_ref(),
        args.shared_server,
        args.keep_database,
    )
    .await?;
    let mut server = server::ManagedServer::new(&admin_url)?;
    let run = async {
        let platform = match args.platform {
            true => Some(receiver::Receiver::start(receiver::Kind::Meta).await?),
            false => None,
        };
        let mut env: Vec<(&str, &str)> = platform
            .iter()
            .map(|p| ("POSTBACK_META_URL", p.url.as_str()))
            .collect();
        let direct = server.db_url.clone();
        let pooled = match &args.pooler_url {
            Some(pooler) => Some(db::with_database(pooler, server.db_name())?),
            None => None,
        };
        if let Some(pooled) = &pooled {
            env.extend([
                ("DATABASE_URL", pooled.as_str()),
                ("POSTBACK_DB_POOLER", "transaction"),
                ("POSTBACK_LISTEN_DATABASE_URL", direct.as_str()),
            ]);
            eprintln!(
                "starting {} on a fresh database, through the pooler at {}",
                binary.display(),
                db::redact(pooled)
            );
        } else {
            eprintln!("starting {} on a fresh database", binary.display());
        }
        let addr = server.start(&binary, &env).await?;
        let target = Target {
            addr,
            host: addr.to_string(),
            db_url: Some(server.db_url.clone()),
            pid: server.pid(),
            db_label: db_label.clone(),
        };
        let mut report = measure(mode, args, &target, platform.as_ref()).await?;
        report.pooler = Some(match pooled {
            Some(_) => "through --pooler-url, POSTBACK_DB_POOLER=transaction",
            None => "direct",
        });
        Ok(report)
    };
    let result = tokio::select! {
        r = run => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    if args.keep_database {
        server.keep_database();
    }
    server.stop().await;
    if let Some(c) = cluster.take() {
        c.stop().await;
    }
    result
}

/// `retention`: a fresh database on the chosen server, migrated by the domain crate, filled,
/// one pass measured; the database (and a private cluster) removed at the end.
async fn run_retention(args: &RetentionArgs) -> Result<retention::Report> {
    let c = &args.cluster;
    let (mut cluster, admin_url, db_label) =
        database_server(c.database_url.as_ref(), c.shared_server, c.keep_database).await?;
    let mut server = server::ManagedServer::new(&admin_url)?;
    let run = async {
        server.create_database().await?;
        postback_domain::store::db::run_migrations(&server.db_url)
            .await
            .map_err(|e| anyhow!("migrating the bench database: {e}"))?;
        let mut report = retention::measure(&server.db_url, args.events).await?;
        match db::settings(&server.db_url, db_label.clone()).await {
            Ok(settings) => report.database = Some(settings),
            Err(e) => eprintln!("postback-bench: {e:#}"),
        }
        Ok(report)
    };
    let result = tokio::select! {
        r = run => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    if c.keep_database {
        server.keep_database();
    }
    server.stop().await;
    if let Some(c) = cluster.take() {
        c.stop().await;
    }
    result
}

/// Runs `fut` on a fresh multi-threaded runtime.
fn block_on<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(fut)
}

fn main() -> ExitCode {
    postback_runtime::tls::install_provider();
    let outcome = match Cli::parse().command {
        Command::Inbound(args) => run_load(Mode::Inbound, &args),
        Command::Go(args) => run_load(Mode::Go, &args),
        Command::Retention(args) => block_on(run_retention(&args)).and_then(|report| {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                report.print();
            }
            report.check()
        }),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postback-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_load(mode: Mode, args: &InboundArgs) -> Result<()> {
    let report = block_on(run(mode, args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print();
    }
    report.check()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_loopback_targets() {
        let (addr, host) = resolve_loopback("http://127.0.0.1:8080/")
            .await
            .expect("loopback");
        assert_eq!(addr.port(), 8080);
        assert_eq!(host, "127.0.0.1:8080");
        assert!(resolve_loopback("http://192.0.2.1:80").await.is_err());
        assert!(resolve_loopback("https://127.0.0.1:443").await.is_err());
    }
}
