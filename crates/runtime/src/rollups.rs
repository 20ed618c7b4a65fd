//! The rollups folder: folds stored events into the overview's rollups in the background
//! ([`postback_domain::stats::fold`]), so the insert statement no longer pays for them. Every
//! `interval` it folds each workspace with pending events; a workspace another instance (or a
//! deletion) holds is skipped until the next pass, and a pass that left a full batch behind is
//! followed by the next at once. Any number of instances may run it side by side.

use std::time::Duration;

use postback_domain::stats::fold::{self, Fold, FOLD_BATCH};
use postback_domain::store::db::DbPool;

/// Workspaces looked at per pass.
const WORKSPACES_PER_PASS: i64 = 1_000;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Events folded.
    pub folded: i64,
    /// Workspaces held by another session, left for the next pass.
    pub busy: usize,
    /// Workspaces whose fold failed (logged), left for the next pass.
    pub failed: usize,
    /// Whether work is known to be left (a full batch, or more workspaces than one pass takes).
    pub more: bool,
}

/// Starts the folder on the current Tokio runtime.
pub fn start(pool: DbPool, interval: Duration) {
    tokio::spawn(async move {
        loop {
            let pass = run_once(&pool).await;
            if !pass.more {
                tokio::time::sleep(interval).await;
            }
        }
    });
}

/// One pass over the workspaces with pending events; failures are logged and left for the
/// next pass.
pub async fn run_once(pool: &DbPool) -> Pass {
    let mut pass = Pass::default();
    let mut conn = match postback_domain::store::db::conn(pool).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "rollups folder: no connection; retrying");
            return pass;
        }
    };
    let workspaces = match fold::pending_workspaces(&mut conn, WORKSPACES_PER_PASS).await {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "rollups folder: listing pending workspaces failed");
            return pass;
        }
    };
    pass.more = workspaces.len() as i64 == WORKSPACES_PER_PASS;
    for ws in workspaces {
        match fold::fold_workspace(&mut conn, ws, FOLD_BATCH, false).await {
            Ok(Fold::Folded(n)) => {
                pass.folded += i64::from(n);
                pass.more |= n == FOLD_BATCH;
            }
            Ok(Fold::Busy) => pass.busy += 1,
            Err(e) => {
                pass.failed += 1;
                tracing::warn!(workspace = %ws.0, error = %e, "rollups folder: fold failed; retrying at the next pass");
            }
        }
    }
    pass
}
