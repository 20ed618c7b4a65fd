//! Platform connections of a domain (seed 000 "connected platforms"): one per platform, with
//! settings that are shown, credentials that are write-only, an on/off switch and the mapping
//! from Postback event names to the platform's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::ids::{ConnectionId, DomainId, WorkspaceId};
use crate::platforms::{self, Credentials, Platform, Settings};
use crate::schema::connections;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = connections)]
struct Row {
    id: ConnectionId,
    platform: String,
    enabled: bool,
    settings: serde_json::Value,
    credentials: serde_json::Value,
    event_map: serde_json::Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    reconnect_reason: Option<String>,
    reconnect_since: Option<DateTime<Utc>>,
}

/// A platform's connection as the dashboard and the API show it: credentials never leave, only
/// which of them are saved.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub id: Option<ConnectionId>,
    pub platform: Platform,
    pub label: &'static str,
    /// False until settings and credentials are saved.
    pub connected: bool,
    pub enabled: bool,
    pub settings: Settings,
    /// Names of the saved credentials (`accessToken`, `developerToken`).
    pub credentials_saved: Vec<String>,
    /// Postback event name -> platform event name ("" = not sent); events not listed use the
    /// platform's default mapping.
    pub event_map: BTreeMap<String, String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Set when the platform refused the saved token (revoked, expired) or the operator's app
    /// credentials: "Reconnect needed". Deliveries are held, not failed, until the connection
    /// is saved again with a working token.
    pub reconnect_needed: Option<String>,
    pub reconnect_since: Option<DateTime<Utc>>,
}

fn saved(c: &Credentials) -> Vec<String> {
    c.entries().into_iter().map(|(name, _)| name).collect()
}

impl Connection {
    fn unconnected(platform: Platform) -> Self {
        Self {
            id: None,
            platform,
            label: platform.label(),
            connected: false,
            enabled: false,
            settings: Settings::default(),
            credentials_saved: Vec::new(),
            event_map: BTreeMap::new(),
            created_at: None,
            updated_at: None,
            reconnect_needed: None,
            reconnect_since: None,
        }
    }

    fn from_row(platform: Platform, row: Row) -> Self {
        let credentials: Credentials = crate::secrets::seal::open_json(&row.credentials)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        Self {
            id: Some(row.id),
            platform,
            label: platform.label(),
            connected: true,
            enabled: row.enabled,
            settings: serde_json::from_value(row.settings).unwrap_or_default(),
            credentials_saved: saved(&credentials),
            event_map: serde_json::from_value(row.event_map).unwrap_or_default(),
            created_at: Some(row.created_at),
            updated_at: Some(row.updated_at),
            reconnect_needed: row.reconnect_reason,
            reconnect_since: row.reconnect_since,
        }
    }

    /// The platform's name for an event under this connection's mapping (None: not sent).
    pub fn maps(&self, event: &str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = self
            .event_map
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        super::platform_event_name(self.platform, &map, event)
    }
}

/// What a user saves: settings, credentials (absent ones keep what is stored), the switch and
/// the event mapping (absent keeps the stored one).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionInput {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub credentials: Credentials,
    #[serde(default)]
    pub event_map: Option<BTreeMap<String, String>>,
}

async fn row(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
    platform: Platform,
) -> DomainResult<Option<Row>> {
    Ok(connections::table
        .filter(connections::workspace_id.eq(workspace_id))
        .filter(connections::domain_id.eq(domain_id))
        .filter(connections::platform.eq(platform.as_str()))
        .select(Row::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The three platforms of a domain, connected or not.
pub async fn list(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
) -> DomainResult<Vec<Connection>> {
    crate::tenancy::domains::get(conn, workspace_id, domain_id).await?;
    let mut rows: Vec<Row> = connections::table
        .filter(connections::workspace_id.eq(workspace_id))
        .filter(connections::domain_id.eq(domain_id))
        .select(Row::as_select())
        .load(conn)
        .await?;
    Ok(Platform::ALL
        .iter()
        .copied()
        .map(
            |p| match rows.iter().position(|r| r.platform == p.as_str()) {
                Some(i) => Connection::from_row(p, rows.swap_remove(i)),
                None => Connection::unconnected(p),
            },
        )
        .collect())
}

/// One platform's connection of a domain (unconnected when never saved).
pub async fn get(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
    platform: Platform,
) -> DomainResult<Connection> {
    crate::tenancy::domains::get(conn, workspace_id, domain_id).await?;
    Ok(match row(conn, workspace_id, domain_id, platform).await? {
        Some(r) => Connection::from_row(platform, r),
        None => Connection::unconnected(platform),
    })
}

/// The stored settings and credentials, for the test button (never shown).
pub async fn secrets(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
    platform: Platform,
) -> DomainResult<(Settings, Credentials)> {
    crate::tenancy::domains::get(conn, workspace_id, domain_id).await?;
    let r = row(conn, workspace_id, domain_id, platform)
        .await?
        .ok_or(DomainError::NotFound("connection"))?;
    Ok((
        serde_json::from_value(r.settings).unwrap_or_default(),
        serde_json::from_value(crate::secrets::seal::open_json(&r.credentials)?)
            .unwrap_or_default(),
    ))
}

fn validate_event_map(
    platform: Platform,
    map: &BTreeMap<String, String>,
) -> DomainResult<BTreeMap<String, String>> {
    if map.len() > 50 {
        return Err(DomainError::invalid("eventMap may list at most 50 events"));
    }
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || k.len() > 100 {
            return Err(DomainError::invalid(
                "eventMap keys must be event names of 1 to 100 characters",
            ));
        }
        if v.len() > 100 {
            return Err(DomainError::invalid(format!(
                "eventMap.{k} must be at most 100 characters"
            )));
        }
        platform
            .adapter()
            .check_mapped_name(k, v)
            .map_err(DomainError::Invalid)?;
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

/// Creates or replaces a domain's connection to a platform. Credentials not given keep the
/// stored ones; the result must have every setting and credential the platform needs.
pub async fn put(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
    platform: Platform,
    input: ConnectionInput,
) -> DomainResult<Connection> {
    crate::tenancy::domains::get(conn, workspace_id, domain_id).await?;
    let existing = row(conn, workspace_id, domain_id, platform).await?;
    let stored: Credentials = match &existing {
        Some(r) => serde_json::from_value(crate::secrets::seal::open_json(&r.credentials)?)
            .unwrap_or_default(),
        None => Credentials::default(),
    };
    let credentials = input.credentials.or(&stored);
    // A new token (or app credentials fixed by the operator, then saved again) is worth trying:
    // the connection leaves "Reconnect needed" and its held deliveries go out now.
    let reconnected = existing
        .as_ref()
        .is_some_and(|r| r.reconnect_reason.is_some());
    let settings = platforms::validate(platform, &input.settings, &credentials, true)
        .map_err(DomainError::Invalid)?;
    let event_map = match &input.event_map {
        Some(m) => validate_event_map(platform, m)?,
        None => existing
            .as_ref()
            .and_then(|r| serde_json::from_value(r.event_map.clone()).ok())
            .unwrap_or_default(),
    };
    let enabled = input
        .enabled
        .unwrap_or_else(|| existing.as_ref().is_none_or(|r| r.enabled));
    let to_json = |v: Result<serde_json::Value, serde_json::Error>| {
        v.map_err(|e| DomainError::internal(e.to_string()))
    };
    let settings_json = to_json(serde_json::to_value(&settings))?;
    let credentials_json =
        crate::secrets::seal::seal_json(&to_json(serde_json::to_value(&credentials))?)?;
    let map_json = to_json(serde_json::to_value(&event_map))?;
    let saved: Row = diesel::insert_into(connections::table)
        .values((
            connections::id.eq(ConnectionId::new()),
            connections::workspace_id.eq(workspace_id),
            connections::domain_id.eq(domain_id),
            connections::platform.eq(platform.as_str()),
            connections::enabled.eq(enabled),
            connections::settings.eq(&settings_json),
            connections::credentials.eq(&credentials_json),
            connections::event_map.eq(&map_json),
        ))
        .on_conflict((
            connections::workspace_id,
            connections::domain_id,
            connections::platform,
        ))
        .do_update()
        .set((
            connections::enabled.eq(enabled),
            connections::settings.eq(&settings_json),
            connections::credentials.eq(&credentials_json),
            connections::event_map.eq(&map_json),
            connections::updated_at.eq(diesel::dsl::now),
            connections::reconnect_reason.eq(None::<String>),
            connections::reconnect_since.eq(None::<DateTime<Utc>>),
        ))
        .returning(Row::as_returning())
        .get_result(conn)
        .await?;
    if reconnected {
        crate::platforms::holds::release(conn, saved.id).await?;
    }
    Ok(Connection::from_row(platform, saved))
}

/// Turns a saved connection on or off.
pub async fn set_enabled(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
    platform: Platform,
    enabled: bool,
) -> DomainResult<Connection> {
    let updated: Option<Row> = diesel::update(
        connections::table
            .filter(connections::workspace_id.eq(workspace_id))
            .filter(connections::domain_id.eq(domain_id))
            .filter(connections::platform.eq(platform.as_str())),
    )
    .set((
        connections::enabled.eq(enabled),
        connections::updated_at.eq(diesel::dsl::now),
    ))
    .returning(Row::as_returning())
    .get_result(conn)
    .await
    .optional()?;
    updated
        .map(|r| Connection::from_row(platform, r))
        .ok_or(DomainError::NotFound("connection"))
}

/// Removes a connection with its delivery log.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
    platform: Platform,
) -> DomainResult<()> {
    let n = diesel::delete(
        connections::table
            .filter(connections::workspace_id.eq(workspace_id))
            .filter(connections::domain_id.eq(domain_id))
            .filter(connections::platform.eq(platform.as_str())),
    )
    .execute(conn)
    .await?;
    if n == 0 {
        return Err(DomainError::NotFound("connection"));
    }
    Ok(())
}

/// A sample purchase for the test button, shaped like a real one (a click id included so the
/// platform sees a complete request).
pub fn sample_conversion(platform: Platform, event_name: String) -> platforms::Conversion {
    let now = Utc::now();
    platforms::Conversion {
        event_id: format!("test-{}", uuid::Uuid::new_v4()),
        event_name,
        occurred_at: now,
        email: "test.customer@example.com".into(),
        phone: Some("+1 555 010 0000".into()),
        first_name: Some("Test".into()),
        last_name: Some("Customer".into()),
        city: None,
        state_code: None,
        country_code: Some("US".into()),
        ip: None,
        user_agent: None,
        value: Some(99.99),
        currency: "USD".into(),
        order_id: Some("TEST-ORDER-1001".into()),
        products: Vec::new(),
        click: {
            let mut click = platforms::Click {
                clicked_at: Some(now),
                ..platforms::Click::default()
            };
            platform.adapter().sample_click(&mut click);
            click
        },
        source_url: None,
        consent: platforms::Consent::default(),
        fbp: None,
        ttp: None,
        external_id: None,
        default_country: None,
    }
}
