//! Domains: the websites of a workspace, each with a public site id for the tracking snippet.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::error::{DomainError, DomainResult};
use crate::ids::{DomainId, WorkspaceId};
use crate::schema::{domains, workspaces};
use crate::secrets::random_bytes;
use crate::store::paging::{Cursor, Page, PageRequest};
use crate::tenancy::plans::{self, ensure_below};

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = domains)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    pub id: DomainId,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub hostname: String,
    pub site_id: String,
    pub attribution_window_days: i32,
    pub created_at: DateTime<Utc>,
    /// ISO 3166-1 alpha-2: phone numbers written without a country code are completed with
    /// this country's calling code when the event names no country; null: they are left out.
    #[schema(example = "GB", pattern = "^[A-Z]{2}$")]
    pub default_country: Option<String>,
}

/// Accepts a hostname or a URL and returns the bare lowercase hostname:
/// `https://Shop.Example.com/` becomes `shop.example.com`.
pub fn normalize_hostname(raw: &str) -> DomainResult<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid("hostname is required"));
    }
    if trimmed.len() > 300 {
        return Err(DomainError::invalid("hostname is too long"));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let bad = || {
        DomainError::invalid(format!(
            "hostname \"{trimmed}\" is not a valid domain name such as shop.example.com"
        ))
    };
    let url = url::Url::parse(&with_scheme).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad());
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
        _ => return Err(bad()),
    };
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let tld_ok = labels
        .last()
        .is_some_and(|t| t.chars().any(|c| c.is_ascii_alphabetic()));
    if host.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) || !tld_ok {
        return Err(bad());
    }
    Ok(host)
}

fn new_site_id() -> String {
    hex::encode(random_bytes::<8>())
}

pub async fn create(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    raw_hostname: &str,
) -> DomainResult<Domain> {
    let hostname = normalize_hostname(raw_hostname)?;
    conn.transaction::<_, DomainError, _>(async move |conn| {
        // Locking the workspace row serialises concurrent creates against the plan limit.
        let plan_tier: String = workspaces::table
            .find(workspace_id)
            .select(workspaces::plan)
            .for_update()
            .first(conn)
            .await
            .optional()?
            .ok_or(DomainError::NotFound("workspace"))?;
        let plan = plans::get(conn, &plan_tier).await?;
        let used: i64 = domains::table
            .filter(domains::workspace_id.eq(workspace_id))
            .count()
            .get_result(conn)
            .await?;
        ensure_below(
            &plan,
            plan.max_domains.map(i64::from),
            used,
            ("domain per workspace", "domains per workspace"),
        )?;
        let taken: i64 = domains::table
            .filter(domains::workspace_id.eq(workspace_id))
            .filter(domains::hostname.eq(&hostname))
            .count()
            .get_result(conn)
            .await?;
        if taken > 0 {
            return Err(DomainError::Conflict(format!(
                "hostname {hostname} is already added to this workspace"
            )));
        }
        Ok(diesel::insert_into(domains::table)
            .values((
                domains::id.eq(DomainId::new()),
                domains::workspace_id.eq(workspace_id),
                domains::hostname.eq(&hostname),
                domains::site_id.eq(new_site_id()),
            ))
            .returning(Domain::as_returning())
            .get_result(conn)
            .await?)
    })
    .await
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    page: PageRequest,
) -> DomainResult<Page<Domain>> {
    let q = crate::after_cursor!(
        domains::table
            .filter(domains::workspace_id.eq(workspace_id))
            .select(Domain::as_select()),
        page,
        domains::created_at,
        domains::id
    );
    let rows = q.load(conn).await?;
    Ok(Page::from_rows(rows, page.limit, |d: &Domain| Cursor {
        at: d.created_at,
        id: d.id.0,
    }))
}

pub async fn count(conn: &mut AsyncPgConnection, workspace_id: WorkspaceId) -> DomainResult<i64> {
    Ok(domains::table
        .filter(domains::workspace_id.eq(workspace_id))
        .count()
        .get_result(conn)
        .await?)
}

/// The domain, when it belongs to this workspace; otherwise not found.
/// Sets how far back attribution looks for a visitor's touches (1 to 365 days).
pub async fn set_attribution_window(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: DomainId,
    days: i64,
) -> DomainResult<Domain> {
    if !(1..=365).contains(&days) {
        return Err(DomainError::invalid(
            "attributionWindowDays must be a whole number of days from 1 to 365",
        ));
    }
    diesel::update(
        domains::table
            .filter(domains::workspace_id.eq(workspace_id))
            .filter(domains::id.eq(id)),
    )
    .set(domains::attribution_window_days.eq(days as i32))
    .returning(Domain::as_returning())
    .get_result(conn)
    .await
    .optional()?
    .ok_or(DomainError::NotFound("domain"))
}

/// Sets (or, with None, clears) the country whose calling code completes national phone
/// numbers; the caller checks it (`platforms::normalize::default_country`).
pub async fn set_default_country(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: DomainId,
    country: Option<String>,
) -> DomainResult<Domain> {
    diesel::update(
        domains::table
            .filter(domains::workspace_id.eq(workspace_id))
            .filter(domains::id.eq(id)),
    )
    .set(domains::default_country.eq(country))
    .returning(Domain::as_returning())
    .get_result(conn)
    .await
    .optional()?
    .ok_or(DomainError::NotFound("domain"))
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: DomainId,
) -> DomainResult<Domain> {
    domains::table
        .filter(domains::workspace_id.eq(workspace_id))
        .filter(domains::id.eq(id))
        .select(Domain::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("domain"))
}

/// Deletes the domain with its keys and events.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: DomainId,
) -> DomainResult<()> {
    let n = diesel::delete(
        domains::table
            .filter(domains::workspace_id.eq(workspace_id))
            .filter(domains::id.eq(id)),
    )
    .execute(conn)
    .await?;
    if n == 0 {
        return Err(DomainError::NotFound("domain"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::normalize_hostname;

    #[test]
    fn urls_and_case_become_bare_hostnames() {
        assert_eq!(
            normalize_hostname("https://Shop.Example.com/").unwrap(),
            "shop.example.com"
        );
        assert_eq!(
            normalize_hostname("  www.Example.co.uk  ").unwrap(),
            "www.example.co.uk"
        );
        assert_eq!(
            normalize_hostname("http://example.com:8080/path?q=1").unwrap(),
            "example.com"
        );
    }

    #[test]
    fn non_hostnames_are_refused_with_the_field_named() {
        for bad in [
            "",
            "localhost",
            "exa mple.com",
            "127.0.0.1",
            "-bad.com",
            "ftp://x.com",
            "a..b.com",
        ] {
            let err = normalize_hostname(bad).unwrap_err().to_string();
            assert!(err.contains("hostname"), "{bad}: {err}");
        }
    }
}
