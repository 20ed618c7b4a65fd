//! Inbound integration keys (seed 001): `cc_` + 40 hex, stored as SHA-256, shown once.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::error::{DomainError, DomainResult};
use crate::ids::{DomainId, KeyId, WorkspaceId};
use crate::schema::{domains, inbound_keys, workspaces};
use crate::secrets::{random_bytes, sha256};
use crate::store::paging::{Cursor, Page, PageRequest};
use crate::tenancy::plans::{self, ensure_below, Plan};

pub const KEY_PREFIX: &str = "cc_";
const KEY_HEX_LEN: usize = 40;
const DISPLAY_PREFIX_LEN: usize = KEY_PREFIX.len() + 8;
const LIMIT_WHAT: plans::LimitNoun = (
    "active inbound integration key per domain",
    "active inbound integration keys per domain",
);
/// Last used is written at most this often per key, so authentication is not a write per request.
pub const LAST_USED_RESOLUTION: Duration = Duration::seconds(60);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = inbound_keys)]
pub struct InboundKey {
    pub id: KeyId,
    pub workspace_id: WorkspaceId,
    pub domain_id: DomainId,
    pub name: String,
    pub prefix: String,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl InboundKey {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
    pub fn status(&self) -> &'static str {
        if self.is_active() {
            "active"
        } else {
            "revoked"
        }
    }
    /// `cc_a1b2c3d4••••`
    pub fn masked(&self) -> String {
        format!("{}••••", self.prefix)
    }
}

/// The API view of a key; `key` is present only in the answer to a create.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    pub id: KeyId,
    pub domain_id: DomainId,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub prefix: String,
    pub masked: String,
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Lists only: when the newest event sent with this key was received (absent if none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<DateTime<Utc>>,
}

impl From<InboundKey> for KeyView {
    fn from(k: InboundKey) -> Self {
        Self {
            id: k.id,
            domain_id: k.domain_id,
            masked: k.masked(),
            status: k.status(),
            name: k.name,
            key: None,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            last_event_at: None,
        }
    }
}

/// A fresh key: 160 random bits from the OS CSPRNG as 40 lowercase hex characters.
pub fn generate() -> String {
    format!("{KEY_PREFIX}{}", hex::encode(random_bytes::<20>()))
}

/// True for the exact shape `cc_` + 40 lowercase hex; anything else is refused without a lookup.
pub fn is_well_formed(key: &str) -> bool {
    key.len() == KEY_PREFIX.len() + KEY_HEX_LEN
        && key.starts_with(KEY_PREFIX)
        && key[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn hash(key: &str) -> Vec<u8> {
    sha256(key.as_bytes())
}

fn validate_name(raw: &str) -> DomainResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(DomainError::invalid("name is required"));
    }
    if name.chars().count() > 100 {
        return Err(DomainError::invalid("name must be at most 100 characters"));
    }
    Ok(name.to_owned())
}

/// Locks the domain row (serialising limit checks per domain) and returns the workspace's plan.
async fn lock_domain_plan(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
) -> DomainResult<Plan> {
    domains::table
        .filter(domains::workspace_id.eq(workspace_id))
        .filter(domains::id.eq(domain_id))
        .select(domains::id)
        .for_update()
        .first::<DomainId>(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("domain"))?;
    let tier: String = workspaces::table
        .find(workspace_id)
        .select(workspaces::plan)
        .first(conn)
        .await?;
    plans::get(conn, &tier).await
}

pub async fn count_active(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
) -> DomainResult<i64> {
    Ok(inbound_keys::table
        .filter(inbound_keys::workspace_id.eq(workspace_id))
        .filter(inbound_keys::domain_id.eq(domain_id))
        .filter(inbound_keys::revoked_at.is_null())
        .count()
        .get_result(conn)
        .await?)
}

/// Creates a key and returns it with the full value, which is never available again.
pub async fn create(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
    raw_name: &str,
) -> DomainResult<KeyView> {
    let name = validate_name(raw_name)?;
    conn.transaction::<_, DomainError, _>(async move |conn| {
        let plan = lock_domain_plan(conn, workspace_id, domain_id).await?;
        let active = count_active(conn, workspace_id, domain_id).await?;
        ensure_below(
            &plan,
            plan.max_keys_per_domain.map(i64::from),
            active,
            LIMIT_WHAT,
        )?;
        let key = generate();
        let row: InboundKey = diesel::insert_into(inbound_keys::table)
            .values((
                inbound_keys::id.eq(KeyId::new()),
                inbound_keys::workspace_id.eq(workspace_id),
                inbound_keys::domain_id.eq(domain_id),
                inbound_keys::name.eq(&name),
                inbound_keys::key_hash.eq(hash(&key)),
                inbound_keys::prefix.eq(&key[..DISPLAY_PREFIX_LEN]),
            ))
            .returning(InboundKey::as_returning())
            .get_result(conn)
            .await?;
        let mut view = KeyView::from(row);
        view.key = Some(key);
        Ok(view)
    })
    .await
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
    page: PageRequest,
) -> DomainResult<Page<InboundKey>> {
    let q = crate::after_cursor!(
        inbound_keys::table
            .filter(inbound_keys::workspace_id.eq(workspace_id))
            .filter(inbound_keys::domain_id.eq(domain_id))
            .select(InboundKey::as_select()),
        page,
        inbound_keys::created_at,
        inbound_keys::id
    );
    let rows = q.load(conn).await?;
    Ok(Page::from_rows(rows, page.limit, |k: &InboundKey| Cursor {
        at: k.created_at,
        id: k.id.0,
    }))
}

#[derive(diesel::QueryableByName)]
struct LastEvent {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    received_at: DateTime<Utc>,
}

/// When the newest event sent with each of these keys (of this workspace) was received; keys
/// that sent none are absent. One index probe per key (`events_key_received_idx`).
pub async fn last_events(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    ids: &[KeyId],
) -> DomainResult<std::collections::HashMap<KeyId, DateTime<Utc>>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let raw: Vec<uuid::Uuid> = ids.iter().map(|k| k.0).collect();
    let rows: Vec<LastEvent> = diesel::sql_query(
        "SELECT k.id, e.received_at
         FROM unnest($2::uuid[]) AS k(id)
         CROSS JOIN LATERAL (SELECT received_at FROM events
                             WHERE key_id = k.id AND workspace_id = $1
                             ORDER BY received_at DESC LIMIT 1) e",
    )
    .bind::<diesel::sql_types::Uuid, _>(workspace_id.0)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(raw)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (KeyId(r.id), r.received_at))
        .collect())
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: KeyId,
) -> DomainResult<InboundKey> {
    inbound_keys::table
        .filter(inbound_keys::workspace_id.eq(workspace_id))
        .filter(inbound_keys::id.eq(id))
        .select(InboundKey::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("key"))
}

/// Revokes a key; the next request with it is refused, on every instance. Revoking twice is a no-op.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: KeyId,
) -> DomainResult<InboundKey> {
    diesel::update(
        inbound_keys::table
            .filter(inbound_keys::workspace_id.eq(workspace_id))
            .filter(inbound_keys::id.eq(id))
            .filter(inbound_keys::revoked_at.is_null()),
    )
    .set(inbound_keys::revoked_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    get(conn, workspace_id, id).await
}

/// Makes a revoked key work again with the same value, within the plan's active-key limit.
pub async fn restore(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: KeyId,
) -> DomainResult<InboundKey> {
    conn.transaction::<_, DomainError, _>(async move |conn| {
        let key = get(conn, workspace_id, id).await?;
        if key.is_active() {
            return Ok(key);
        }
        let plan = lock_domain_plan(conn, workspace_id, key.domain_id).await?;
        let active = count_active(conn, workspace_id, key.domain_id).await?;
        ensure_below(
            &plan,
            plan.max_keys_per_domain.map(i64::from),
            active,
            LIMIT_WHAT,
        )?;
        Ok(
            diesel::update(inbound_keys::table.filter(inbound_keys::id.eq(id)))
                .set(inbound_keys::revoked_at.eq(None::<DateTime<Utc>>))
                .returning(InboundKey::as_returning())
                .get_result(conn)
                .await?,
        )
    })
    .await
}

/// Deletes a key for good: its hash is gone, so the value can never authenticate again.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: KeyId,
) -> DomainResult<InboundKey> {
    let key = get(conn, workspace_id, id).await?;
    diesel::delete(
        inbound_keys::table
            .filter(inbound_keys::workspace_id.eq(workspace_id))
            .filter(inbound_keys::id.eq(id)),
    )
    .execute(conn)
    .await?;
    Ok(key)
}

/// What a valid inbound key grants.
#[derive(Debug, Clone)]
pub struct AuthenticatedKey {
    pub key_id: KeyId,
    pub domain_id: DomainId,
    pub workspace_id: WorkspaceId,
    pub workspace_status: String,
    pub plan: String,
}

/// Looks a presented key up by its hash. Unknown, revoked and deleted keys all answer None.
/// Records last use when the stored time is older than [`LAST_USED_RESOLUTION`].
pub async fn authenticate(
    conn: &mut AsyncPgConnection,
    presented: &str,
) -> DomainResult<Option<AuthenticatedKey>> {
    if !is_well_formed(presented) {
        return Ok(None);
    }
    type Row = (
        KeyId,
        DomainId,
        WorkspaceId,
        Option<DateTime<Utc>>,
        String,
        String,
    );
    let row: Option<Row> = inbound_keys::table
        .inner_join(workspaces::table.on(workspaces::id.eq(inbound_keys::workspace_id)))
        .filter(inbound_keys::key_hash.eq(hash(presented)))
        .filter(inbound_keys::revoked_at.is_null())
        .select((
            inbound_keys::id,
            inbound_keys::domain_id,
            inbound_keys::workspace_id,
            inbound_keys::last_used_at,
            workspaces::status,
            workspaces::plan,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((key_id, domain_id, workspace_id, last_used_at, workspace_status, plan)) = row else {
        return Ok(None);
    };
    let now = Utc::now();
    if last_used_at.is_none_or(|t| now - t >= LAST_USED_RESOLUTION) {
        let cutoff = now - LAST_USED_RESOLUTION;
        diesel::update(
            inbound_keys::table
                .filter(inbound_keys::id.eq(key_id))
                .filter(
                    inbound_keys::last_used_at
                        .is_null()
                        .or(inbound_keys::last_used_at.le(cutoff)),
                ),
        )
        .set(inbound_keys::last_used_at.eq(now))
        .execute(conn)
        .await?;
    }
    Ok(Some(AuthenticatedKey {
        key_id,
        domain_id,
        workspace_id,
        workspace_status,
        plan,
    }))
}

/// True when `presented` is the value of this workspace's key `id`.
pub async fn verify(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: KeyId,
    presented: &str,
) -> DomainResult<bool> {
    if !is_well_formed(presented) {
        return Ok(false);
    }
    let stored: Option<Vec<u8>> = inbound_keys::table
        .filter(inbound_keys::workspace_id.eq(workspace_id))
        .filter(inbound_keys::id.eq(id))
        .select(inbound_keys::key_hash)
        .first(conn)
        .await
        .optional()?;
    Ok(stored.is_some_and(|h| crate::secrets::constant_time_eq(&h, &hash(presented))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_seed_format() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with("cc_"));
        assert_eq!(a.len(), 43);
        assert!(is_well_formed(&a), "{a}");
    }

    #[test]
    fn malformed_keys_are_refused_before_any_lookup() {
        for bad in [
            "",
            "cc_",
            "cc_ABCDEF0123456789abcdef0123456789abcdef01",
            "pb_0123456789abcdef0123456789abcdef01234567",
            "cc_0123456789abcdef0123456789abcdef0123456",
            "cc_0123456789abcdef0123456789abcdef012345678",
        ] {
            assert!(!is_well_formed(bad), "{bad}");
        }
    }
}
