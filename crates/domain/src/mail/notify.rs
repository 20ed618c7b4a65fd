//! Owner notifications: a webhook paused itself, a platform connection needs reconnecting, 80 %
//! and 100 % of the monthly event quota, the workspace was suspended or restored. Each goes to
//! the workspace's owners who have not turned them off, at most once per cause per day.

use std::sync::OnceLock;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::DomainResult;
use crate::ids::WorkspaceId;
use crate::schema::{memberships, notifications_sent, users, workspaces};

static BASE_URL: OnceLock<String> = OnceLock::new();

/// The public base URL for links in notifications queued where no request is at hand (the
/// delivery worker). Set once at start; later calls keep the first.
pub fn install_base_url(base_url: &str) {
    let _ = BASE_URL.set(base_url.trim_end_matches('/').to_owned());
}

fn base_url() -> &'static str {
    BASE_URL.get().map(String::as_str).unwrap_or("")
}

/// Mails the owners of a workspace about `cause` unless they were told of it today. Returns how
/// many mails were queued.
pub async fn owners(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    cause: &str,
    kind: &'static str,
    subject: String,
    message: String,
    path: &str,
) -> DomainResult<usize> {
    let first_today = diesel::insert_into(notifications_sent::table)
        .values((
            notifications_sent::workspace_id.eq(workspace_id),
            notifications_sent::cause.eq(cause),
            notifications_sent::day.eq(chrono::Utc::now().date_naive()),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    if first_today == 0 {
        return Ok(0);
    }
    let to: Vec<String> = memberships::table
        .inner_join(users::table)
        .inner_join(workspaces::table)
        .filter(memberships::workspace_id.eq(workspace_id))
        .filter(memberships::role.eq("owner"))
        .filter(users::notifications_enabled.eq(true))
        .filter(workspaces::status.ne("deleting"))
        .select(users::email)
        .load(conn)
        .await?;
    for address in &to {
        let mail = super::messages::notification(
            base_url(),
            address,
            kind,
            subject.clone(),
            message.clone(),
            path,
        )?;
        super::queue(conn, &mail).await?;
    }
    Ok(to.len())
}

/// The workspace was suspended or restored by a platform admin.
pub async fn suspension(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    suspended: bool,
    reason: Option<&str>,
) -> DomainResult<()> {
    let (cause, subject, message) = if suspended {
        (
            "suspended",
            "Your Postback workspace was suspended".to_owned(),
            format!(
                "A platform admin suspended the workspace: {}. Inbound events are refused and nothing is sent until it is restored.",
                reason.unwrap_or("no reason given")
            ),
        )
    } else {
        (
            "restored",
            "Your Postback workspace was restored".to_owned(),
            "A platform admin restored the workspace: inbound events are accepted and deliveries resume.".to_owned(),
        )
    };
    owners(
        conn,
        workspace_id,
        cause,
        if suspended { "suspended" } else { "restored" },
        subject,
        message,
        "/plan",
    )
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct Usage {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    workspace_id: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    plan_name: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    used: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    quota: i64,
}

/// Workspaces at 80 % or 100 % of this month's event quota: their owners hear of it (once a day
/// per threshold). Run periodically by the mail worker. Returns how many workspaces it told.
pub async fn quota(conn: &mut AsyncPgConnection) -> DomainResult<usize> {
    let rows: Vec<Usage> = diesel::sql_query(
        "SELECT w.id AS workspace_id, p.name AS plan_name, u.used, p.max_events_per_month AS quota \
           FROM (SELECT workspace_id, sum(events)::int8 AS used FROM usage_counters \
                  WHERE month = date_trunc('month', now() AT TIME ZONE 'UTC')::date \
                  GROUP BY workspace_id) u \
           JOIN workspaces w ON w.id = u.workspace_id AND w.status <> 'deleting' \
           JOIN plans p ON p.tier = w.plan \
          WHERE p.max_events_per_month > 0 AND u.used * 5 >= p.max_events_per_month * 4",
    )
    .load(conn)
    .await?;
    let mut told = 0;
    for u in rows {
        let full = u.used >= u.quota;
        let (cause, subject, message) = if full {
            (
                "quota100",
                "Your Postback event quota is used up".to_owned(),
                format!(
                    "The workspace used all {} inbound events its {} plan allows this month: new events are refused until next month or a larger plan.",
                    u.quota, u.plan_name
                ),
            )
        } else {
            (
                "quota80",
                "80 % of your Postback event quota is used".to_owned(),
                format!(
                    "The workspace used {} of the {} inbound events its {} plan allows this month. At the limit, new events are refused.",
                    u.used, u.quota, u.plan_name
                ),
            )
        };
        told += owners(
            conn,
            WorkspaceId(u.workspace_id),
            cause,
            if full { "quota100" } else { "quota80" },
            subject,
            message,
            "/plan",
        )
        .await?
        .min(1);
    }
    Ok(told)
}
