//! Folding stored events into the overview's rollups (migration 000090). Storing an event only
//! notes it in `event_rollup_pending`; the runtime's folder calls [`fold_workspace`] for the
//! workspaces [`pending_workspaces`] lists, in the background and without waiting, and every
//! read of the overview calls [`fold_pending`] first, which waits for a folder at work on the
//! workspace, so the numbers shown count every event stored before the read.
//!
//! A workspace's rollups change only under its advisory lock (taken by `event_rollups_fold` and
//! by the events' delete and update triggers), so two folders, or a folder and a deletion, never
//! count an event twice.

use diesel::sql_types::{Bool, Integer, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::DomainResult;
use crate::ids::WorkspaceId;

/// Events folded per statement: a backlog is folded in bounded transactions.
pub const FOLD_BATCH: i32 = 20_000;

#[derive(diesel::QueryableByName)]
struct Folded {
    #[diesel(sql_type = Integer)]
    n: i32,
}

#[derive(diesel::QueryableByName)]
struct Pending {
    #[diesel(sql_type = SqlUuid)]
    workspace_id: uuid::Uuid,
}

/// What one [`fold_workspace`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// This many events were folded (0: nothing was pending).
    Folded(i32),
    /// Another session holds the workspace (a folder or a deletion); nothing was done.
    Busy,
}

/// Up to `limit` workspaces with events waiting to be folded.
pub async fn pending_workspaces(
    conn: &mut AsyncPgConnection,
    limit: i64,
) -> DomainResult<Vec<WorkspaceId>> {
    let rows: Vec<Pending> =
        diesel::sql_query("SELECT DISTINCT workspace_id FROM event_rollup_pending LIMIT $1")
            .bind::<diesel::sql_types::BigInt, _>(limit)
            .load(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|r| WorkspaceId(r.workspace_id))
        .collect())
}

/// Folds up to `max_events` of the workspace's pending events in one transaction. With `wait`
/// false it returns [`Fold::Busy`] at once when another session holds the workspace, and gives
/// up (an error) on a row lock held longer than 500 ms, so a deletion it meets goes first.
pub async fn fold_workspace(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    max_events: i32,
    wait: bool,
) -> DomainResult<Fold> {
    let f: Folded = diesel::sql_query("SELECT event_rollups_fold($1, $2, $3) AS n")
        .bind::<SqlUuid, _>(workspace_id.0)
        .bind::<Integer, _>(max_events)
        .bind::<Bool, _>(wait)
        .get_result(conn)
        .await?;
    Ok(if f.n < 0 {
        Fold::Busy
    } else {
        Fold::Folded(f.n)
    })
}

/// Before a read of the workspace's rollups: folds every event of the workspace still pending
/// (waiting for a folder at work on it), so the read counts every event stored before it. Costs
/// one index-free look at the small pending table when nothing is pending.
pub async fn fold_pending(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
) -> DomainResult<()> {
    loop {
        let f: Folded = diesel::sql_query(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM event_rollup_pending WHERE workspace_id = $1)
                         THEN event_rollups_fold($1, $2, true) ELSE 0 END AS n",
        )
        .bind::<SqlUuid, _>(workspace_id.0)
        .bind::<Integer, _>(FOLD_BATCH)
        .get_result(conn)
        .await?;
        if f.n < FOLD_BATCH {
            return Ok(());
        }
    }
}
