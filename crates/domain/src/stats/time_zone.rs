//! The workspace's time zone (an IANA name, default `UTC`), in which the overview counts days.

use chrono::NaiveDate;
use diesel::sql_types::{Bool, Date, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::{DomainError, DomainResult};
use crate::ids::WorkspaceId;

#[derive(diesel::QueryableByName)]
struct Zone {
    #[diesel(sql_type = Text)]
    time_zone: String,
}

pub async fn time_zone(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
) -> DomainResult<String> {
    let zone: Option<Zone> = diesel::sql_query("SELECT time_zone FROM workspaces WHERE id = $1")
        .bind::<SqlUuid, _>(workspace_id.0)
        .get_result(conn)
        .await
        .map(Some)
        .or_else(|e| match e {
            diesel::result::Error::NotFound => Ok(None),
            e => Err(e),
        })?;
    Ok(zone
        .map(|z| z.time_zone)
        .unwrap_or_else(|| "UTC".to_owned()))
}

#[derive(diesel::QueryableByName)]
struct Known {
    #[diesel(sql_type = Bool)]
    known: bool,
}

/// Whether PostgreSQL knows the zone by this name (`Europe/Berlin`, `UTC` …).
pub async fn valid_time_zone(conn: &mut AsyncPgConnection, name: &str) -> DomainResult<bool> {
    if name.is_empty() || name.len() > 64 {
        return Ok(false);
    }
    let k: Known = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1) AS known",
    )
    .bind::<Text, _>(name)
    .get_result(conn)
    .await?;
    Ok(k.known)
}

pub async fn set_time_zone(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    name: &str,
) -> DomainResult<()> {
    let name = name.trim();
    if !valid_time_zone(conn, name).await? {
        return Err(DomainError::invalid(
            "timeZone must be an IANA time zone name such as Europe/Berlin or UTC",
        ));
    }
    diesel::sql_query("UPDATE workspaces SET time_zone = $2 WHERE id = $1")
        .bind::<SqlUuid, _>(workspace_id.0)
        .bind::<Text, _>(name)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Today {
    #[diesel(sql_type = Date)]
    today: NaiveDate,
}

/// Today's date in the zone.
pub async fn today(conn: &mut AsyncPgConnection, time_zone: &str) -> DomainResult<NaiveDate> {
    let t: Today = diesel::sql_query("SELECT (now() AT TIME ZONE $1)::date AS today")
        .bind::<Text, _>(time_zone)
        .get_result(conn)
        .await?;
    Ok(t.today)
}

#[derive(diesel::QueryableByName)]
struct Bounds {
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    since: chrono::DateTime<chrono::Utc>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    until: chrono::DateTime<chrono::Utc>,
}

/// The instants a range of whole days (inclusive) in the zone starts and ends at.
pub async fn day_bounds(
    conn: &mut AsyncPgConnection,
    time_zone: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> DomainResult<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    let b: Bounds = diesel::sql_query(
        "SELECT ($1::date::timestamp AT TIME ZONE $3) AS since,
                (($2::date + 1)::timestamp AT TIME ZONE $3) AS until",
    )
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .bind::<Text, _>(time_zone)
    .get_result(conn)
    .await?;
    Ok((b.since, b.until))
}
