//! Connection pool and embedded migrations.

use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::{DomainError, DomainResult};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

pub type DbPool = Pool<AsyncPgConnection>;
pub type DbConn = Object<AsyncPgConnection>;

/// Builds the pool. Connections are opened lazily, so this never blocks.
pub fn pool(database_url: &str, max_size: usize) -> DomainResult<DbPool> {
    // Every pooled connection is opened by crate::store::pg, which honours `sslmode`.
    let mut setup = ManagerConfig::default();
    setup.custom_setup = Box::new(|url| {
        let url = url.to_owned();
        Box::pin(async move {
            crate::store::pg::establish(&url)
                .await
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
        })
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, setup);
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(std::time::Duration::from_secs(5)))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| DomainError::internal(format!("building the pool: {e}")))
}

/// Applies every pending migration. Runs the synchronous harness on a blocking thread.
pub async fn run_migrations(database_url: &str) -> DomainResult<Vec<String>> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        // Opened on the runtime (crate::store::pg, for `sslmode`), then driven synchronously here.
        let conn = tokio::runtime::Handle::current().block_on(crate::store::pg::establish(&url))?;
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| DomainError::internal(format!("migrations failed: {e}")))?;
        Ok(applied.iter().map(|v| v.to_string()).collect())
    })
    .await
    .map_err(|e| DomainError::internal(format!("migration task: {e}")))?
}

pub async fn conn(pool: &DbPool) -> DomainResult<DbConn> {
    Ok(pool.get().await?)
}
