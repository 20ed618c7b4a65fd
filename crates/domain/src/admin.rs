//! Platform administration: every workspace with its owner, plan, status and usage; plan changes,
//! suspension, editable plan limits; and the audit log of who changed what.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{DomainError, DomainResult};
use crate::ids::WorkspaceId;
use crate::schema::{audit_log, delivery_queue, plans as plans_table, workspaces};
use crate::store::paging::{Cursor, Page, PageRequest};
use crate::tenancy::plans::{self, Plan};
use crate::tenancy::sessions::SessionContext;

/// A workspace as the admin list shows it.
#[derive(Debug, Clone, QueryableByName, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub owner_email: Option<String>,
    #[diesel(sql_type = Text)]
    pub plan: String,
    #[diesel(sql_type = Text)]
    pub plan_name: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub suspended_reason: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub domains: i64,
    #[diesel(sql_type = BigInt)]
    pub active_keys: i64,
    #[diesel(sql_type = BigInt)]
    pub webhooks: i64,
    #[diesel(sql_type = BigInt)]
    pub events_this_month: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub event_quota: Option<i64>,
}

const WORKSPACES_SQL: &str = r#"
SELECT w.id, w.name,
       (SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id
        WHERE m.workspace_id = w.id AND m.role = 'owner' ORDER BY m.created_at LIMIT 1) AS owner_email,
       w.plan, p.name AS plan_name, w.status, w.suspended_reason, w.created_at,
       (SELECT count(*) FROM domains d WHERE d.workspace_id = w.id) AS domains,
       (SELECT count(*) FROM inbound_keys k WHERE k.workspace_id = w.id AND k.revoked_at IS NULL) AS active_keys,
       (SELECT count(*) FROM webhooks h WHERE h.workspace_id = w.id) AS webhooks,
       (SELECT coalesce(sum(c.events), 0)::bigint FROM usage_counters c
        WHERE c.workspace_id = w.id AND c.month = date_trunc('month', now() AT TIME ZONE 'UTC')::date) AS events_this_month,
       p.max_events_per_month AS event_quota
FROM workspaces w
JOIN plans p ON p.tier = w.plan
"#;

/// Workspaces, newest first; `search` matches the name or the owner's email (case-insensitive).
pub async fn workspaces(
    conn: &mut AsyncPgConnection,
    search: Option<&str>,
    page: PageRequest,
) -> DomainResult<Page<WorkspaceRow>> {
    let pattern = search.map(str::trim).filter(|s| !s.is_empty()).map(|s| {
        format!(
            "%{}%",
            s.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let rows = diesel::sql_query(format!(
        "SELECT * FROM ({WORKSPACES_SQL}) x
         WHERE ($1::text IS NULL OR x.name ILIKE $1 OR x.owner_email ILIKE $1)
           AND ($3::timestamptz IS NULL OR (x.created_at, x.id) < ($3, $4))
         ORDER BY x.created_at DESC, x.id DESC LIMIT $2"
    ))
    .bind::<Nullable<Text>, _>(pattern)
    .bind::<BigInt, _>(page.limit + 1)
    .bind::<Nullable<Timestamptz>, _>(page.after.map(|c| c.at))
    .bind::<Nullable<SqlUuid>, _>(page.after.map(|c| c.id))
    .load(conn)
    .await?;
    Ok(Page::from_rows(rows, page.limit, |w: &WorkspaceRow| {
        Cursor {
            at: w.created_at,
            id: w.id,
        }
    }))
}

pub async fn workspace(
    conn: &mut AsyncPgConnection,
    id: WorkspaceId,
) -> DomainResult<WorkspaceRow> {
    diesel::sql_query(format!(
        "SELECT * FROM ({WORKSPACES_SQL}) x WHERE x.id = $1"
    ))
    .bind::<SqlUuid, _>(id.0)
    .get_result(conn)
    .await
    .optional()?
    .ok_or(DomainError::NotFound("workspace"))
}

/// A change an admin makes to a workspace.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceChange {
    /// A plan tier.
    #[schema(pattern = "^(pulse|signal|clarity|command)$")]
    pub plan: Option<String>,
    /// `active` or `suspended`.
    #[schema(pattern = "^(active|suspended)$")]
    pub status: Option<String>,
    /// Why it is suspended; required when suspending.
    pub reason: Option<String>,
}

async fn record(
    conn: &mut AsyncPgConnection,
    actor: &SessionContext,
    workspace_id: Option<WorkspaceId>,
    action: &str,
    target: &str,
    before: Value,
    after: Value,
) -> DomainResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::id.eq(uuid::Uuid::now_v7()),
            audit_log::workspace_id.eq(workspace_id.map(|w| w.0)),
            audit_log::actor_id.eq(Some(actor.user_id.0)),
            audit_log::actor_email.eq(&actor.email),
            audit_log::action.eq(action),
            audit_log::target.eq(target),
            audit_log::before.eq(Some(before)),
            audit_log::after.eq(Some(after)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Changes a workspace's plan and/or status, in one transaction with its audit entries. A
/// downgrade deletes nothing. Suspending holds its queued deliveries; restoring sends them
/// (except those of paused webhooks).
pub async fn change_workspace(
    conn: &mut AsyncPgConnection,
    actor: &SessionContext,
    id: WorkspaceId,
    change: WorkspaceChange,
) -> DomainResult<WorkspaceRow> {
    let current = workspace(conn, id).await?;
    // Being deleted: nothing to change (restoring it would bring back an emptied workspace).
    if current.status == "deleting" {
        return Err(DomainError::NotFound("workspace"));
    }
    if let Some(tier) = &change.plan {
        if !plans::TIERS.contains(&tier.as_str()) {
            return Err(DomainError::invalid(format!(
                "plan must be one of {}",
                plans::TIERS.join(", ")
            )));
        }
    }
    let status = match change.status.as_deref() {
        None => None,
        Some(s @ ("active" | "suspended")) => Some(s.to_owned()),
        Some(_) => return Err(DomainError::invalid("status must be active or suspended")),
    };
    let reason = change
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    if status.as_deref() == Some("suspended") && current.status != "suspended" && reason.is_none() {
        return Err(DomainError::invalid(
            "reason is required when suspending a workspace (it is shown to its members)",
        ));
    }
    let actor = actor.clone();
    conn.transaction::<_, DomainError, _>(async move |conn| {
        if let Some(tier) = change.plan.filter(|t| *t != current.plan) {
            diesel::update(workspaces::table.find(id))
                .set(workspaces::plan.eq(&tier))
                .execute(conn)
                .await?;
            record(
                conn,
                &actor,
                Some(id),
                "workspace.plan",
                &current.name,
                json!({ "plan": current.plan }),
                json!({ "plan": tier }),
            )
            .await?;
        }
        if let Some(status) = status.filter(|s| *s != current.status) {
            let suspending = status == "suspended";
            diesel::update(workspaces::table.find(id))
                .set((
                    workspaces::status.eq(&status),
                    workspaces::suspended_reason.eq(if suspending { reason.clone() } else { None }),
                ))
                .execute(conn)
                .await?;
            crate::mail::notify::suspension(conn, id, suspending, reason.as_deref()).await?;
            if suspending {
                diesel::update(
                    delivery_queue::table
                        .filter(delivery_queue::workspace_id.eq(id))
                        .filter(delivery_queue::status.eq("pending")),
                )
                .set((
                    delivery_queue::status.eq("held"),
                    delivery_queue::round_attempts.eq(0),
                ))
                .execute(conn)
                .await?;
            } else {
                // Held for the suspension: everything but the deliveries of paused webhooks.
                diesel::sql_query(
                    r#"
                        UPDATE delivery_queue d SET status = 'pending', next_attempt_at = now()
                        WHERE d.workspace_id = $1 AND d.status = 'held'
                          AND NOT EXISTS (SELECT 1 FROM webhooks w
                                          WHERE w.id = d.webhook_id AND w.status = 'paused')
                        "#,
                )
                .bind::<SqlUuid, _>(id.0)
                .execute(conn)
                .await?;
                crate::delivery::queue::wake_workers(conn).await?;
            }
            record(
                conn,
                &actor,
                Some(id),
                if suspending {
                    "workspace.suspend"
                } else {
                    "workspace.restore"
                },
                &current.name,
                json!({ "status": current.status, "reason": current.suspended_reason }),
                json!({ "status": status, "reason": if suspending { reason } else { None } }),
            )
            .await?;
        }
        Ok(())
    })
    .await?;
    workspace(conn, id).await
}

/// A field that is present (a value or `null`) becomes `Some`; an absent one stays `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// New limits for a plan: each present field replaces the limit; `null` means unlimited.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanChange {
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub max_keys_per_domain: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub max_domains: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub max_webhooks: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 0)]
    pub max_events_per_month: Option<Option<i64>>,
    #[schema(minimum = 1, maximum = 3650)]
    pub retention_days: Option<i64>,
}

fn small_limit(field: &str, v: Option<i64>) -> DomainResult<Option<i32>> {
    match v {
        None => Ok(None),
        Some(n) if (0..=1_000_000).contains(&n) => Ok(Some(n as i32)),
        Some(_) => Err(DomainError::invalid(format!(
            "{field} must be a whole number from 0 to 1000000, or null for unlimited"
        ))),
    }
}

/// Changes a plan's limits; every instance reads them from the table, so they apply at once.
pub async fn change_plan(
    conn: &mut AsyncPgConnection,
    actor: &SessionContext,
    tier: &str,
    change: PlanChange,
) -> DomainResult<Plan> {
    let before = plans::get(conn, tier).await?;
    let mut after = before.clone();
    if let Some(v) = change.max_keys_per_domain {
        after.max_keys_per_domain = small_limit("maxKeysPerDomain", v)?;
    }
    if let Some(v) = change.max_domains {
        after.max_domains = small_limit("maxDomains", v)?;
    }
    if let Some(v) = change.max_webhooks {
        after.max_webhooks = small_limit("maxWebhooks", v)?;
    }
    if let Some(v) = change.max_events_per_month {
        after.max_events_per_month = match v {
            None => None,
            Some(n) if n >= 0 => Some(n),
            Some(_) => {
                return Err(DomainError::invalid(
                    "maxEventsPerMonth must be a whole number from 0, or null for unlimited",
                ))
            }
        };
    }
    if let Some(days) = change.retention_days {
        if !(1..=3650).contains(&days) {
            return Err(DomainError::invalid(
                "retentionDays must be a whole number of days from 1 to 3650",
            ));
        }
        after.retention_days = days as i32;
    }
    diesel::update(plans_table::table.find(tier))
        .set((
            plans_table::max_keys_per_domain.eq(after.max_keys_per_domain),
            plans_table::max_domains.eq(after.max_domains),
            plans_table::max_webhooks.eq(after.max_webhooks),
            plans_table::max_events_per_month.eq(after.max_events_per_month),
            plans_table::retention_days.eq(after.retention_days),
            plans_table::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    record(
        conn,
        actor,
        None,
        "plan.limits",
        &before.name,
        serde_json::to_value(&before).unwrap_or_default(),
        serde_json::to_value(&after).unwrap_or_default(),
    )
    .await?;
    plans::get(conn, tier).await
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = audit_log)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: uuid::Uuid,
    pub workspace_id: Option<uuid::Uuid>,
    pub actor_email: String,
    pub action: String,
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub created_at: DateTime<Utc>,
}

/// The newest audit entries: all of them, or one workspace's.
pub async fn audit(
    conn: &mut AsyncPgConnection,
    workspace_id: Option<WorkspaceId>,
    page: PageRequest,
) -> DomainResult<Page<AuditEntry>> {
    let mut q = crate::after_cursor!(
        audit_log::table.select(AuditEntry::as_select()),
        page,
        audit_log::created_at,
        audit_log::id
    );
    if let Some(w) = workspace_id {
        q = q.filter(audit_log::workspace_id.eq(w.0));
    }
    let rows = q.load(conn).await?;
    Ok(Page::from_rows(rows, page.limit, |e: &AuditEntry| Cursor {
        at: e.created_at,
        id: e.id,
    }))
}
