//! `postback-bench inbound`: drives `POST /__cc/inbound` with unique, realistic seed-000 events
//! over keep-alive connections, reports throughput and latency, then checks that the database
//! holds exactly the events that were answered 200.

mod http;
mod server;

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde::Serialize;

#[derive(Parser)]
#[command(name = "postback-bench", about = "Load benchmarks for Postback")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inbound events: accepted/s, latency percentiles, errors, server memory.
    Inbound(InboundArgs),
}

#[derive(clap::Args, Clone)]
struct InboundArgs {
    /// Concurrent keep-alive connections, each sending one request at a time.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 3)]
    warmup_seconds: u64,
    /// PostgreSQL server on which a fresh benchmark database is created.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// The postback binary to start (default: next to this one; build with `cargo build --release`).
    #[arg(long)]
    binary: Option<std::path::PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    cores: usize,
    connections: usize,
    seconds: f64,
    accepted: u64,
    accepted_per_second: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors_by_status: std::collections::BTreeMap<u16, u64>,
    transport_errors: u64,
    server_rss_kib: Option<u64>,
    server_peak_rss_kib: Option<u64>,
    verified_events: i64,
    answered_200: u64,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    measured_ok: u64,
    total_ok: u64,
    errors: std::collections::BTreeMap<u16, u64>,
    transport_errors: u64,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

async fn connection_loop(
    addr: std::net::SocketAddr,
    key: String,
    conn_index: usize,
    nonce: u64,
    measure_from: Instant,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut client: Option<http::Connection> = None;
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        n += 1;
        let body = format!(
            r#"{{"email":"customer-{conn_index}-{n}@example.com","event":"purchase","value":{}.99,"currency":"USD","orderId":"ORD-{nonce}-{conn_index}-{n}","firstName":"Ada","lastName":"Lovelace"}}"#,
            50 + (n % 150)
        );
        let conn = match &mut client {
            Some(c) => c,
            None => match http::Connection::open(addr).await {
                Ok(c) => client.insert(c),
                Err(_) => {
                    tally.transport_errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let started = Instant::now();
        match conn.post_json("/__cc/inbound", &key, body.as_bytes()).await {
            Ok(status) => {
                let measured = started >= measure_from;
                if status == 200 {
                    tally.total_ok += 1;
                    if measured {
                        tally.measured_ok += 1;
                    }
                } else {
                    *tally.errors.entry(status).or_default() += 1;
                }
                if measured {
                    let us = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    tally.latencies_us.push(us);
                }
            }
            Err(_) => {
                tally.transport_errors += 1;
                client = None;
            }
        }
    }
    tally
}

async fn inbound(args: InboundArgs) -> Result<Report, String> {
    let server = server::Server::start(&args.database_url, args.binary.clone()).await?;
    let result = run_inbound(&args, &server).await;
    server.stop().await;
    result
}

async fn run_inbound(args: &InboundArgs, server: &server::Server) -> Result<Report, String> {
    let setup = server.setup_account().await?;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup_seconds);
    let deadline = measure_from + Duration::from_secs(args.seconds);
    let mut tasks = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        tasks.push(tokio::spawn(connection_loop(
            server.addr,
            setup.key.clone(),
            i,
            nonce,
            measure_from,
            deadline,
        )));
    }
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await.map_err(|e| format!("load task: {e}"))?;
        all.latencies_us.extend(t.latencies_us);
        all.measured_ok += t.measured_ok;
        all.total_ok += t.total_ok;
        all.transport_errors += t.transport_errors;
        for (s, n) in t.errors {
            *all.errors.entry(s).or_default() += n;
        }
    }
    let measured_secs = (Instant::now().min(deadline) - measure_from)
        .as_secs_f64()
        .max(0.001);
    let (rss, peak) = server.memory_kib();
    let stored = server.count_events(&setup.domain_id).await?;
    all.latencies_us.sort_unstable();
    Ok(Report {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        connections: args.connections,
        seconds: measured_secs,
        accepted: all.measured_ok,
        accepted_per_second: all.measured_ok as f64 / measured_secs,
        p50_ms: percentile(&all.latencies_us, 0.50),
        p95_ms: percentile(&all.latencies_us, 0.95),
        p99_ms: percentile(&all.latencies_us, 0.99),
        max_ms: all
            .latencies_us
            .last()
            .map_or(0.0, |v| f64::from(*v) / 1000.0),
        errors_by_status: all.errors,
        transport_errors: all.transport_errors,
        server_rss_kib: rss,
        server_peak_rss_kib: peak,
        verified_events: stored,
        answered_200: all.total_ok,
    })
}

fn print(report: &Report) {
    println!("machine: {} cores", report.cores);
    println!(
        "connections: {}, measured {:.1} s",
        report.connections, report.seconds
    );
    println!(
        "accepted: {} ({:.0}/s)",
        report.accepted, report.accepted_per_second
    );
    println!(
        "latency: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        report.p50_ms, report.p95_ms, report.p99_ms, report.max_ms
    );
    let errors: u64 = report.errors_by_status.values().sum();
    println!(
        "errors: {errors} by status {:?}, {} transport",
        report.errors_by_status, report.transport_errors
    );
    if let (Some(rss), Some(peak)) = (report.server_rss_kib, report.server_peak_rss_kib) {
        println!(
            "server memory: RSS {} MiB, peak {} MiB",
            rss / 1024,
            peak / 1024
        );
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let Command::Inbound(args) = cli.command;
    let json = args.json;
    match runtime.block_on(inbound(args)) {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print(&report);
            }
            let errors: u64 =
                report.errors_by_status.values().sum::<u64>() + report.transport_errors;
            if report.verified_events != report.answered_200 as i64 {
                eprintln!(
                    "MISMATCH: {} events answered 200 but the database holds {}",
                    report.answered_200, report.verified_events
                );
                return std::process::ExitCode::FAILURE;
            }
            println!(
                "verified: the database holds exactly the {} events that got a 200",
                report.verified_events
            );
            if errors > 0 {
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("postback-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
