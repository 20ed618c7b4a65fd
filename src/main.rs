//! `postback`: serve (default), migrate, user create.

use std::net::TcpListener;
use std::process::ExitCode;

use clap::Parser;
use postback::config::{Cli, Command, Config, UserCommand};
use postback::embedded_pg::EmbeddedPg;
use postback_domain::tenancy::accounts::{self, NewAccount};
use postback_runtime::AppState;
use tracing_subscriber::EnvFilter;

// glibc malloc showed up as a fifth of the CPU under inbound load; mimalloc's per-thread heaps
// do not contend.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    let cli = Cli::parse();
    if let Err(e) = cli.config.validate() {
        eprintln!("postback: {e}");
        return ExitCode::from(2);
    }
    // Before any connection is opened: how connections treat session state.
    postback_domain::store::pg::set_pooler(cli.config.db_pooler);
    // The private cluster is started before the runtime and stopped after it, whatever happens.
    let mut embedded = None;
    let database_url = match &cli.config.database_url {
        Some(url) => url.clone(),
        None => match EmbeddedPg::start(&cli.config.data_dir) {
            Ok(pg) => {
                tracing::info!(dir = %pg.pg_dir().display(), "private PostgreSQL running (DATABASE_URL unset)");
                let url = pg.url();
                embedded = Some(pg);
                url
            }
            Err(e) => {
                eprintln!("postback: cannot start the private PostgreSQL cluster: {e}");
                return ExitCode::FAILURE;
            }
        },
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("postback: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, cli.config, database_url));
    drop(runtime);
    if let Some(mut pg) = embedded {
        pg.stop();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postback: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Option<Command>, config: Config, database_url: String) -> Result<(), String> {
    let applied = postback_domain::store::db::run_migrations(&database_url)
        .await
        .map_err(|e| format!("migrating the database: {e}"))?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "migrations applied");
    }
    match command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            println!(
                "database is up to date ({} migrations applied now)",
                applied.len()
            );
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    password,
                    admin,
                    workspace_name,
                },
        } => {
            let pool =
                postback_domain::store::db::pool(&database_url, 2).map_err(|e| e.to_string())?;
            let mut conn = postback_domain::store::db::conn(&pool)
                .await
                .map_err(|e| e.to_string())?;
            let workspace_name = workspace_name.unwrap_or_else(|| {
                email
                    .rsplit_once('@')
                    .map(|(_, d)| d.to_owned())
                    .unwrap_or_else(|| "My workspace".into())
            });
            let account = accounts::sign_up(
                &mut conn,
                NewAccount {
                    email,
                    password,
                    workspace_name,
                    admin,
                    verify_with: None,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            println!(
                "created user {} (workspace {}{})",
                account.user_id,
                account.workspace_id,
                if account.is_admin {
                    ", platform admin"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Command::Serve => serve(config, &database_url).await,
    }
}

async fn serve(config: Config, database_url: &str) -> Result<(), String> {
    postback_domain::secrets::seal::install(&config.secret_key()?)?;
    let pool = postback_domain::store::db::pool(database_url, config.db_pool_size)
        .map_err(|e| e.to_string())?;
    {
        let mut conn = postback_domain::store::db::conn(&pool)
            .await
            .map_err(|e| e.to_string())?;
        let sealed = postback_domain::secrets::seal::seal_legacy(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        if sealed > 0 {
            tracing::info!(
                sealed,
                "sealed secrets stored in clear by an earlier version"
            );
        }
    }
    let listener = TcpListener::bind(&config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let base_url = config.base_url(bound);
    let geoip = match &config.geoip_csv {
        Some(path) => {
            let g = postback_domain::tracking::geoip::GeoIp::load(path)?;
            tracing::info!(ranges = g.len(), "GeoIP ranges loaded");
            Some(std::sync::Arc::new(g))
        }
        None => None,
    };
    let mut state = AppState::with_delivery(pool, database_url, &base_url, config.delivery()?);
    state.geoip = geoip;
    state.budgets = config.budgets();
    state.trusted_proxies = std::sync::Arc::new(config.trusted_proxies.clone());
    state.token_limiter = std::sync::Arc::new(postback_runtime::ratelimit::RateLimiter::new(
        config.token_rate_limit,
        std::time::Duration::from_secs(60),
    ));
    // Building the state started nothing; the background work starts here.
    let runtime = postback_runtime::start(&state);
    postback_runtime::retention::start(
        state.pool.clone(),
        state.metrics.clone(),
        config.retention()?,
        std::time::Duration::from_secs(60),
    );
    postback_runtime::mail::start(state.pool.clone(), config.mail())?;
    let server =
        postback::server::build(listener, state, config.workers).map_err(|e| e.to_string())?;
    tracing::info!(listen = %bound, "Postback is running: open {base_url}/ for the dashboard");
    let served = server.await.map_err(|e| e.to_string());
    // Every request is answered: finish or hand back the deliveries this instance holds.
    runtime.shutdown().await;
    served?;
    tracing::info!("shut down cleanly");
    Ok(())
}
