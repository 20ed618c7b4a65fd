//! Plan tiers and their limits, read from the `plans` table so admins can change them.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::error::{DomainError, DomainResult};
use crate::schema::plans;
use crate::text::thousands;

pub const TIERS: [&str; 4] = ["pulse", "signal", "clarity", "command"];
pub const DEFAULT_TIER: &str = "pulse";

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = plans)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub tier: String,
    pub name: String,
    #[serde(skip)]
    pub position: i32,
    pub max_keys_per_domain: Option<i32>,
    pub max_domains: Option<i32>,
    pub max_webhooks: Option<i32>,
    pub max_events_per_month: Option<i64>,
    pub retention_days: i32,
    #[serde(skip)]
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

pub async fn list(conn: &mut AsyncPgConnection) -> DomainResult<Vec<Plan>> {
    Ok(plans::table
        .order(plans::position.asc())
        .select(Plan::as_select())
        .load(conn)
        .await?)
}

pub async fn get(conn: &mut AsyncPgConnection, tier: &str) -> DomainResult<Plan> {
    plans::table
        .find(tier)
        .select(Plan::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("plan"))
}

/// A limit's noun phrase, singular and plural: ("domain per workspace", "domains per workspace").
pub type LimitNoun = (&'static str, &'static str);

/// Refuses when `used` has already reached `limit` (None = unlimited), with a message that names
/// the plan and the limit: "The Pulse plan allows 2 active inbound integration keys per domain".
pub fn ensure_below(
    plan: &Plan,
    limit: Option<i64>,
    used: i64,
    what: LimitNoun,
) -> DomainResult<()> {
    match limit {
        Some(max) if used >= max => Err(DomainError::LimitReached(format!(
            "The {} plan allows {} {}",
            plan.name,
            max,
            if max == 1 { what.0 } else { what.1 }
        ))),
        _ => Ok(()),
    }
}

/// "2 of 5", or "3 of unlimited".
pub fn usage_label(used: i64, limit: Option<i64>) -> String {
    match limit {
        Some(max) => format!("{} of {}", thousands(used), thousands(max)),
        None => format!("{} of unlimited", thousands(used)),
    }
}
