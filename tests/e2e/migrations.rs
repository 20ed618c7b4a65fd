//! Every migration can be reverted and applied again (so a bad deploy can be rolled back).

use diesel::Connection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::MigrationHarness;
use postback_domain::store::db::MIGRATIONS;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_down_and_up_again() {
    let url = crate::helpers::fresh_database().await;
    let (reverted, applied) = tokio::task::spawn_blocking(move || {
        let mut conn =
            AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).expect("connect");
        let reverted = conn.revert_all_migrations(MIGRATIONS).expect("down").len();
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .expect("up again")
            .len();
        (reverted, applied)
    })
    .await
    .expect("task");
    assert!(reverted >= 2);
    assert_eq!(reverted, applied);
}
