//! Whether each domain is set up: when its tag last reported a landing, and whether the
//! workspace has received any event at all (the overview's empty state).

use chrono::{DateTime, Utc};
use diesel::sql_types::{Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::DomainResult;
use crate::ids::WorkspaceId;

#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct DomainSetup {
    #[diesel(sql_type = SqlUuid)]
    pub id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    pub hostname: String,
    #[diesel(sql_type = Text)]
    pub site_id: String,
    /// The newest touch (a landing reported by the tag, or a tracking link's click).
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_report_at: Option<DateTime<Utc>>,
    /// The newest event.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_event_at: Option<DateTime<Utc>>,
}

impl DomainSetup {
    /// No report from the tag for 24 hours (or ever).
    pub fn silent(&self, now: DateTime<Utc>) -> bool {
        self.last_report_at
            .is_none_or(|t| now - t > chrono::Duration::hours(24))
    }
}

/// Every domain of the workspace, oldest first, with its last report and event.
pub async fn domains(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
) -> DomainResult<Vec<DomainSetup>> {
    Ok(diesel::sql_query(
        "SELECT d.id, d.hostname, d.site_id,
                (SELECT max(t.occurred_at) FROM touches t WHERE t.domain_id = d.id) AS last_report_at,
                (SELECT max(e.received_at) FROM events e WHERE e.domain_id = d.id) AS last_event_at
         FROM domains d WHERE d.workspace_id = $1
         ORDER BY d.created_at, d.id",
    )
    .bind::<SqlUuid, _>(workspace_id.0)
    .load(conn)
    .await?)
}

#[derive(diesel::QueryableByName)]
struct Any {
    #[diesel(sql_type = Bool)]
    any: bool,
}

/// Whether the workspace has ever stored an event (that is still kept).
pub async fn has_events(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
) -> DomainResult<bool> {
    super::fold::fold_pending(conn, workspace_id).await?;
    let a: Any = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM event_totals WHERE workspace_id = $1 AND events > 0) AS any",
    )
    .bind::<SqlUuid, _>(workspace_id.0)
    .get_result(conn)
    .await?;
    Ok(a.any)
}

/// Whether a domain's tag is installed: its last landing report (not a tracking link's click)
/// and how many visitors and identified emails it reported in the last 24 hours.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct TagStatus {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_report_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_page: Option<String>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub visitors_24h: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub emails_24h: i64,
}

pub async fn tag_status(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: crate::ids::DomainId,
) -> DomainResult<TagStatus> {
    Ok(diesel::sql_query(
        "SELECT l.occurred_at AS last_report_at, l.landing_page AS last_page,
                (SELECT count(*) FROM visitors v
                 WHERE v.domain_id = $2 AND v.workspace_id = $1
                   AND v.last_seen_at > now() - interval '24 hours') AS visitors_24h,
                (SELECT count(*) FROM visitor_emails ve
                 WHERE ve.domain_id = $2 AND ve.workspace_id = $1
                   AND ve.created_at > now() - interval '24 hours') AS emails_24h
         FROM (SELECT 1) one
         LEFT JOIN LATERAL (SELECT t.occurred_at, t.landing_page FROM touches t
                            WHERE t.domain_id = $2 AND t.workspace_id = $1 AND t.link_id IS NULL
                            ORDER BY t.occurred_at DESC LIMIT 1) l ON true",
    )
    .bind::<SqlUuid, _>(workspace_id.0)
    .bind::<SqlUuid, _>(domain_id.0)
    .get_result(conn)
    .await?)
}
