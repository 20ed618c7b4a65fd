//! Whether events reached their destinations: per webhook and per platform connection, the
//! attempts in a window, their success rate and p95 time, the last failure, and the state a
//! person may need to fix (paused, circuit open, disabled, reconnect needed).

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::error::DomainResult;
use crate::ids::{DomainId, WorkspaceId};

#[derive(Debug, Clone, Serialize, diesel::QueryableByName)]
#[serde(rename_all = "camelCase")]
pub struct TargetHealth {
    /// `webhook` or `connection`.
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = SqlUuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub domain_id: Option<uuid::Uuid>,
    /// The webhook's name (or URL) or the platform id.
    #[diesel(sql_type = Text)]
    pub name: String,
    /// `active`, `paused`, `circuit open`, `disabled` or `reconnect needed`.
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = BigInt)]
    pub attempts: i64,
    #[diesel(sql_type = BigInt)]
    pub succeeded: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub p95_ms: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_attempt_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_failure_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_failure: Option<String>,
}

impl TargetHealth {
    /// Percent of attempts that succeeded, when there were any.
    pub fn success_rate(&self) -> Option<f64> {
        (self.attempts > 0).then(|| self.succeeded as f64 * 100.0 / self.attempts as f64)
    }

    /// Whether a person should act: paused, disabled, reconnect needed, circuit open.
    pub fn needs_attention(&self) -> bool {
        self.state != "active"
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub targets: Vec<TargetHealth>,
}

/// An attempt succeeded when it got a 2xx and no error (a platform's refusal in a 200 is an
/// error).
const ATTEMPTS_SQL: &str = "
    SELECT count(*)::bigint AS attempts,
           count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299 AND a.error IS NULL)::bigint AS succeeded,
           (percentile_cont(0.95) WITHIN GROUP (ORDER BY a.duration_ms))::bigint AS p95_ms,
           max(a.started_at) AS last_attempt_at
    FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id
    WHERE d.{col} = {target}.id AND d.workspace_id = $1
      AND d.created_at >= $3 - interval '1 day' AND a.started_at >= $3 AND a.started_at < $4";

const FAILURE_SQL: &str = "
    SELECT a.started_at AS last_failure_at,
           coalesce(a.error, 'HTTP ' || a.status_code) AS last_failure,
           a.status_code AS last_failure_status
    FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id
    WHERE d.{col} = {target}.id AND d.workspace_id = $1
      AND d.created_at >= $3 - interval '1 day' AND a.started_at >= $3 AND a.started_at < $4
      AND NOT (a.status_code BETWEEN 200 AND 299 AND a.error IS NULL)
    ORDER BY a.started_at DESC LIMIT 1";

/// Every webhook (of the domain, or of every domain) and platform connection of the workspace,
/// with its attempts between `from` and `to`.
pub async fn health(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: Option<DomainId>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> DomainResult<Health> {
    let attempts = |col: &str, target: &str| {
        ATTEMPTS_SQL
            .replace("{col}", col)
            .replace("{target}", target)
    };
    let failure = |col: &str, target: &str| {
        FAILURE_SQL
            .replace("{col}", col)
            .replace("{target}", target)
    };
    let sql = format!(
        "SELECT 'webhook' AS kind, w.id, w.domain_id,
                CASE WHEN w.name <> '' THEN w.name ELSE w.url END AS name,
                CASE WHEN w.status = 'paused' THEN 'paused'
                     WHEN w.circuit_open_until > now() THEN 'circuit open'
                     ELSE 'active' END AS state,
                s.attempts, s.succeeded, s.p95_ms, s.last_attempt_at,
                f.last_failure_at, f.last_failure
         FROM webhooks w
         CROSS JOIN LATERAL ({wa}) s
         LEFT JOIN LATERAL ({wf}) f ON true
         WHERE w.workspace_id = $1 AND ($2::uuid IS NULL OR w.domain_id IS NULL OR w.domain_id = $2)
         UNION ALL
         SELECT 'connection', c.id, c.domain_id, c.platform,
                CASE WHEN NOT c.enabled THEN 'disabled'
                     WHEN f.last_failure_status IN (401, 403)
                          AND f.last_failure_at = s.last_attempt_at THEN 'reconnect needed'
                     ELSE 'active' END,
                s.attempts, s.succeeded, s.p95_ms, s.last_attempt_at,
                f.last_failure_at, f.last_failure
         FROM connections c
         CROSS JOIN LATERAL ({ca}) s
         LEFT JOIN LATERAL ({cf}) f ON true
         WHERE c.workspace_id = $1 AND ($2::uuid IS NULL OR c.domain_id = $2)
         ORDER BY 1 DESC, 4",
        wa = attempts("webhook_id", "w"),
        wf = failure("webhook_id", "w"),
        ca = attempts("connection_id", "c"),
        cf = failure("connection_id", "c"),
    );
    let targets = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(workspace_id.0)
        .bind::<Nullable<SqlUuid>, _>(domain_id.map(|d| d.0))
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(to)
        .load(conn)
        .await?;
    Ok(Health { targets })
}

/// A webhook's latest delivery and its attempts over the last 24 hours (the Webhooks list).
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct WebhookActivity {
    #[diesel(sql_type = SqlUuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// `pending`, `held`, `succeeded` or `failed`.
    #[diesel(sql_type = Nullable<Text>)]
    pub last_delivery_status: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub attempts: i64,
    #[diesel(sql_type = BigInt)]
    pub succeeded: i64,
}

impl WebhookActivity {
    pub fn success_rate(&self) -> Option<f64> {
        (self.attempts > 0).then(|| self.succeeded as f64 * 100.0 / self.attempts as f64)
    }
}

/// Every webhook of the workspace with its activity as of `now`.
pub async fn webhook_activity(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    now: DateTime<Utc>,
) -> DomainResult<Vec<WebhookActivity>> {
    let attempts = ATTEMPTS_SQL
        .replace("{col}", "webhook_id")
        .replace("{target}", "w")
        .replace("$3", "$2")
        .replace("$4", "$3");
    Ok(diesel::sql_query(format!(
        "SELECT w.id, l.created_at AS last_delivery_at, l.status AS last_delivery_status,
                s.attempts, s.succeeded
         FROM webhooks w
         LEFT JOIN LATERAL (SELECT d.created_at, d.status FROM deliveries d
                            WHERE d.webhook_id = w.id AND d.workspace_id = w.workspace_id
                            ORDER BY d.created_at DESC LIMIT 1) l ON true
         CROSS JOIN LATERAL ({attempts}) s
         WHERE w.workspace_id = $1"
    ))
    .bind::<SqlUuid, _>(workspace_id.0)
    .bind::<Timestamptz, _>(now - chrono::Duration::hours(24))
    .bind::<Timestamptz, _>(now)
    .load(conn)
    .await?)
}
