//! Tracking links (SPEC "Tracking links and click quality"): per domain, a name, a slug and one
//! or more weighted targets. A click on `/__cc/go/{slug}` picks a target by weight and is stored
//! as a touch with the link and target ids; the landing page's snippet later joins that touch to
//! its visitor (see `touches::record_landing`). Every management query starts from the
//! workspace.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::error::{DomainError, DomainResult};
use crate::ids::{DomainId, LinkId, LinkTargetId, TouchId, WorkspaceId};
use crate::schema::{domains, link_targets, links, touches, workspaces};
use crate::store::paging::{Cursor, Page, PageRequest};
use crate::tenancy::plans::{self, ensure_below};
use crate::tracking::touches::{self as touch_store, Landing, TouchFields};

/// Links per domain: the plan's webhook limit (SPEC names no limit of its own for links).
const LIMIT_WHAT: plans::LimitNoun = ("tracking link per domain", "tracking links per domain");
pub const MAX_TARGETS: usize = 20;
pub const MAX_WEIGHT: i64 = 1_000_000;
const MAX_NAME: usize = 100;
const MAX_SLUG: usize = 64;
const MAX_URL: usize = 2000;
/// The query parameter that carries the click's touch id to the landing page.
pub const CLICK_PARAM: &str = "pb_click";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = links)]
pub struct LinkRow {
    pub id: LinkId,
    pub workspace_id: WorkspaceId,
    pub domain_id: DomainId,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize)]
#[diesel(table_name = link_targets)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub id: LinkTargetId,
    #[serde(skip)]
    pub link_id: LinkId,
    pub url: String,
    pub weight: i32,
    #[serde(skip)]
    pub position: i32,
}

/// A link with its targets in their listed order.
#[derive(Debug, Clone)]
pub struct Link {
    pub row: LinkRow,
    pub targets: Vec<Target>,
}

impl Link {
    /// The full link to hand out: `{base}/__cc/go/{slug}`.
    pub fn url(&self, base_url: &str) -> String {
        link_url(base_url, &self.row.slug)
    }
}

pub fn link_url(base_url: &str, slug: &str) -> String {
    format!("{}/__cc/go/{slug}", base_url.trim_end_matches('/'))
}

/// A target as a create or update names it; `id` keeps an existing target (and its stats).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetInput {
    pub id: Option<LinkTargetId>,
    pub url: String,
    pub weight: i64,
}

/// What a create or update may set; `None` leaves a field as it is (all are required to create).
#[derive(Debug, Clone, Default)]
pub struct LinkInput {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub targets: Option<Vec<TargetInput>>,
}

pub fn validate_name(raw: &str) -> DomainResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(DomainError::invalid("name is required"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(DomainError::invalid(format!(
            "name must be at most {MAX_NAME} characters"
        )));
    }
    Ok(name.to_owned())
}

/// Lowercase letters, digits and `-`, 1 to 64 of them.
pub fn validate_slug(raw: &str) -> DomainResult<String> {
    let slug = raw.trim();
    if slug.is_empty() {
        return Err(DomainError::invalid("slug is required"));
    }
    if slug.len() > MAX_SLUG
        || !slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(DomainError::invalid(format!(
            "slug must be 1 to {MAX_SLUG} lowercase letters, digits or -"
        )));
    }
    Ok(slug.to_owned())
}

fn validate_target_url(raw: &str, at: &str) -> DomainResult<String> {
    let url = raw.trim();
    if url.is_empty() {
        return Err(DomainError::invalid(format!("{at}.url is required")));
    }
    if url.chars().count() > MAX_URL {
        return Err(DomainError::invalid(format!(
            "{at}.url must be at most {MAX_URL} characters"
        )));
    }
    let parsed = url::Url::parse(url).map_err(|_| {
        DomainError::invalid(format!(
            "{at}.url must be an absolute http:// or https:// URL"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(DomainError::invalid(format!(
            "{at}.url must start with http:// or https://"
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(DomainError::invalid(format!("{at}.url must name a host")));
    }
    Ok(url.to_owned())
}

/// Checks the targets of a create or update: at least one, each with an http(s) URL and a
/// positive integer weight; an id at most once.
pub fn validate_targets(targets: &[TargetInput]) -> DomainResult<Vec<TargetInput>> {
    if targets.is_empty() {
        return Err(DomainError::invalid(
            "targets must list at least one target",
        ));
    }
    if targets.len() > MAX_TARGETS {
        return Err(DomainError::invalid(format!(
            "targets may list at most {MAX_TARGETS} targets"
        )));
    }
    let mut out = Vec::with_capacity(targets.len());
    for (i, t) in targets.iter().enumerate() {
        let at = format!("targets[{i}]");
        let url = validate_target_url(&t.url, &at)?;
        if !(1..=MAX_WEIGHT).contains(&t.weight) {
            return Err(DomainError::invalid(format!(
                "{at}.weight must be a whole number from 1 to {MAX_WEIGHT}"
            )));
        }
        if let Some(id) = t.id {
            if out.iter().any(|o: &TargetInput| o.id == Some(id)) {
                return Err(DomainError::invalid(format!(
                    "{at}.id names the same target as an earlier one"
                )));
            }
        }
        out.push(TargetInput {
            id: t.id,
            url,
            weight: t.weight,
        });
    }
    Ok(out)
}

fn slug_taken(slug: &str) -> DomainError {
    DomainError::Conflict(format!("slug {slug} is already taken"))
}

/// A unique violation on the slug (two creates racing past the check) reads as the 409.
fn map_slug_violation(err: diesel::result::Error, slug: &str) -> DomainError {
    match &err {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        ) if info.constraint_name() == Some("links_slug_key") => slug_taken(slug),
        _ => err.into(),
    }
}

async fn slug_free(
    conn: &mut AsyncPgConnection,
    slug: &str,
    except: Option<LinkId>,
) -> DomainResult<()> {
    let holder: Option<LinkId> = links::table
        .filter(links::slug.eq(slug))
        .select(links::id)
        .first(conn)
        .await
        .optional()?;
    match holder {
        Some(id) if Some(id) != except => Err(slug_taken(slug)),
        _ => Ok(()),
    }
}

async fn load_targets(
    conn: &mut AsyncPgConnection,
    ids: &[LinkId],
) -> DomainResult<HashMap<LinkId, Vec<Target>>> {
    let rows: Vec<Target> = link_targets::table
        .filter(link_targets::link_id.eq_any(ids))
        .order((link_targets::link_id, link_targets::position))
        .select(Target::as_select())
        .load(conn)
        .await?;
    let mut map: HashMap<LinkId, Vec<Target>> = HashMap::new();
    for t in rows {
        map.entry(t.link_id).or_default().push(t);
    }
    Ok(map)
}

async fn write_targets(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    link_id: LinkId,
    targets: &[TargetInput],
) -> DomainResult<()> {
    let kept: Vec<LinkTargetId> = targets.iter().filter_map(|t| t.id).collect();
    diesel::delete(
        link_targets::table
            .filter(link_targets::link_id.eq(link_id))
            .filter(link_targets::id.ne_all(&kept)),
    )
    .execute(conn)
    .await?;
    for (i, t) in targets.iter().enumerate() {
        let position = i32::try_from(i).unwrap_or(i32::MAX);
        let weight = i32::try_from(t.weight).unwrap_or(i32::MAX);
        match t.id {
            Some(id) => {
                diesel::update(
                    link_targets::table
                        .filter(link_targets::link_id.eq(link_id))
                        .filter(link_targets::id.eq(id)),
                )
                .set((
                    link_targets::url.eq(&t.url),
                    link_targets::weight.eq(weight),
                    link_targets::position.eq(position),
                ))
                .execute(conn)
                .await?;
            }
            None => {
                diesel::insert_into(link_targets::table)
                    .values((
                        link_targets::id.eq(LinkTargetId::new()),
                        link_targets::workspace_id.eq(workspace_id),
                        link_targets::link_id.eq(link_id),
                        link_targets::url.eq(&t.url),
                        link_targets::weight.eq(weight),
                        link_targets::position.eq(position),
                    ))
                    .execute(conn)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Creates a link on a domain of the workspace (plan limit: the webhook limit, per domain).
pub async fn create(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
    input: LinkInput,
) -> DomainResult<Link> {
    let name = validate_name(input.name.as_deref().unwrap_or(""))?;
    let slug = validate_slug(input.slug.as_deref().unwrap_or(""))?;
    let targets = validate_targets(input.targets.as_deref().unwrap_or(&[]))?;
    if targets.iter().any(|t| t.id.is_some()) {
        return Err(DomainError::invalid(
            "targets[].id only names existing targets when editing a link",
        ));
    }
    let id = conn
        .transaction::<_, DomainError, _>(async move |conn| {
            // The domain must be the workspace's; its row lock serialises the limit check.
            let found: Option<DomainId> = domains::table
                .filter(domains::workspace_id.eq(workspace_id))
                .filter(domains::id.eq(domain_id))
                .select(domains::id)
                .for_update()
                .first(conn)
                .await
                .optional()?;
            found.ok_or(DomainError::NotFound("domain"))?;
            let tier: String = workspaces::table
                .find(workspace_id)
                .select(workspaces::plan)
                .first(conn)
                .await?;
            let plan = plans::get(conn, &tier).await?;
            let used: i64 = links::table
                .filter(links::workspace_id.eq(workspace_id))
                .filter(links::domain_id.eq(domain_id))
                .count()
                .get_result(conn)
                .await?;
            ensure_below(&plan, plan.max_webhooks.map(i64::from), used, LIMIT_WHAT)?;
            slug_free(conn, &slug, None).await?;
            let id = LinkId::new();
            diesel::insert_into(links::table)
                .values((
                    links::id.eq(id),
                    links::workspace_id.eq(workspace_id),
                    links::domain_id.eq(domain_id),
                    links::name.eq(&name),
                    links::slug.eq(&slug),
                ))
                .execute(conn)
                .await
                .map_err(|e| map_slug_violation(e, &slug))?;
            write_targets(conn, workspace_id, id, &targets).await?;
            Ok(id)
        })
        .await?;
    get(conn, workspace_id, id).await
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: LinkId,
) -> DomainResult<Link> {
    let row = links::table
        .filter(links::workspace_id.eq(workspace_id))
        .filter(links::id.eq(id))
        .select(LinkRow::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("link"))?;
    let targets = load_targets(conn, &[row.id])
        .await?
        .remove(&row.id)
        .unwrap_or_default();
    Ok(Link { row, targets })
}

/// A domain's links, newest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
    page: PageRequest,
) -> DomainResult<Page<Link>> {
    crate::tenancy::domains::get(conn, workspace_id, domain_id).await?;
    let q = crate::after_cursor!(
        links::table
            .filter(links::workspace_id.eq(workspace_id))
            .filter(links::domain_id.eq(domain_id))
            .select(LinkRow::as_select()),
        page,
        links::created_at,
        links::id
    );
    let rows: Vec<LinkRow> = q.load(conn).await?;
    let ids: Vec<LinkId> = rows.iter().map(|r| r.id).collect();
    let mut targets = load_targets(conn, &ids).await?;
    let links: Vec<Link> = rows
        .into_iter()
        .map(|row| Link {
            targets: targets.remove(&row.id).unwrap_or_default(),
            row,
        })
        .collect();
    Ok(Page::from_rows(links, page.limit, |l: &Link| Cursor {
        at: l.row.created_at,
        id: l.row.id.0,
    }))
}

pub async fn count(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
) -> DomainResult<i64> {
    Ok(links::table
        .filter(links::workspace_id.eq(workspace_id))
        .filter(links::domain_id.eq(domain_id))
        .count()
        .get_result(conn)
        .await?)
}

/// Applies changes. Targets given replace the list: those with the id of an existing target
/// keep it (so their clicks still count for them), the others are new, and unlisted ones go.
pub async fn update(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: LinkId,
    input: LinkInput,
) -> DomainResult<Link> {
    let name = input.name.as_deref().map(validate_name).transpose()?;
    let slug = input.slug.as_deref().map(validate_slug).transpose()?;
    let targets = input.targets.as_deref().map(validate_targets).transpose()?;
    conn.transaction::<_, DomainError, _>(async move |conn| {
        let current = links::table
            .filter(links::workspace_id.eq(workspace_id))
            .filter(links::id.eq(id))
            .select(LinkRow::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
            .ok_or(DomainError::NotFound("link"))?;
        if let Some(s) = &slug {
            slug_free(conn, s, Some(id)).await?;
        }
        if let Some(targets) = &targets {
            let existing: Vec<LinkTargetId> = link_targets::table
                .filter(link_targets::link_id.eq(id))
                .select(link_targets::id)
                .load(conn)
                .await?;
            for (i, t) in targets.iter().enumerate() {
                if let Some(tid) = t.id {
                    if !existing.contains(&tid) {
                        return Err(DomainError::invalid(format!(
                            "targets[{i}].id does not name a target of this link"
                        )));
                    }
                }
            }
            write_targets(conn, workspace_id, id, targets).await?;
        }
        let new_slug = slug.unwrap_or(current.slug);
        diesel::update(links::table.filter(links::id.eq(id)))
            .set((
                links::name.eq(name.unwrap_or(current.name)),
                links::slug.eq(&new_slug),
                links::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await
            .map_err(|e| map_slug_violation(e, &new_slug))?;
        Ok(())
    })
    .await?;
    get(conn, workspace_id, id).await
}

/// Deletes a link and its targets; its clicks stay as touches (with the old ids).
pub async fn delete(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: LinkId,
) -> DomainResult<Link> {
    let link = get(conn, workspace_id, id).await?;
    diesel::delete(
        links::table
            .filter(links::workspace_id.eq(workspace_id))
            .filter(links::id.eq(id)),
    )
    .execute(conn)
    .await?;
    Ok(link)
}

/// The names of the workspace's links among `ids` (deleted links are absent).
pub async fn names(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    ids: &[LinkId],
) -> DomainResult<HashMap<LinkId, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(links::table
        .filter(links::workspace_id.eq(workspace_id))
        .filter(links::id.eq_any(ids))
        .select((links::id, links::name))
        .load::<(LinkId, String)>(conn)
        .await?
        .into_iter()
        .collect())
}

/// The target a click goes to: `roll` in `0..sum(weights)` falls in one target's share.
pub fn pick(targets: &[Target], roll: u64) -> Option<&Target> {
    let mut acc = 0u64;
    for t in targets {
        acc += u64::try_from(t.weight.max(0)).unwrap_or(0);
        if roll < acc {
            return Some(t);
        }
    }
    None
}

fn total_weight(targets: &[Target]) -> u64 {
    targets
        .iter()
        .map(|t| u64::try_from(t.weight.max(0)).unwrap_or(0))
        .sum()
}

/// The target URL with the click's query merged in: the target's own parameters stay as they
/// are, the click's parameters are added unless the target already sets that name, and any
/// `pb_click` of either is dropped (the caller adds the click's own).
pub fn merge_query(target: &str, incoming: &str) -> DomainResult<url::Url> {
    let mut url = url::Url::parse(target)
        .map_err(|_| DomainError::internal("a stored target URL does not parse"))?;
    let own: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != CLICK_PARAM)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let extra: Vec<(String, String)> = url::form_urlencoded::parse(incoming.as_bytes())
        .filter(|(k, _)| k != CLICK_PARAM && !own.iter().any(|(o, _)| o == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if own.is_empty() && extra.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut()
            .clear()
            .extend_pairs(own.iter().chain(extra.iter()));
    }
    Ok(url)
}

/// What the redirect endpoint knows of a click.
#[derive(Debug, Clone, Default)]
pub struct Click {
    /// The request's query string, as sent.
    pub query: String,
    pub referrer: Option<String>,
    pub user_agent: String,
    pub country: Option<String>,
}

/// Where a click goes.
#[derive(Debug, Clone)]
pub struct Redirect {
    pub location: String,
    pub touch_id: TouchId,
}

/// The touch a click makes, ready to insert.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = touches)]
pub struct NewClick {
    pub id: TouchId,
    pub workspace_id: WorkspaceId,
    pub domain_id: DomainId,
    #[diesel(embed)]
    pub fields: TouchFields,
    pub quality_score: i32,
    pub quality_reasons: Vec<String>,
    pub link_id: LinkId,
    pub target_id: LinkTargetId,
}

/// What a click on a link needs: read once per slug, then kept for a moment by the redirect
/// endpoint so that a burst of clicks costs no query each.
#[derive(Debug, Clone)]
pub struct Destination {
    pub workspace_id: WorkspaceId,
    pub domain_id: DomainId,
    /// In their listed order; never empty.
    pub targets: Vec<Target>,
}

/// The link of `slug` with its targets (one query); `None` for an unknown slug.
pub async fn destination(
    conn: &mut AsyncPgConnection,
    slug: &str,
) -> DomainResult<Option<Destination>> {
    if validate_slug(slug).is_err() {
        return Ok(None);
    }
    let rows: Vec<(WorkspaceId, DomainId, Target)> = links::table
        .inner_join(link_targets::table)
        .filter(links::slug.eq(slug))
        .order(link_targets::position)
        .select((links::workspace_id, links::domain_id, Target::as_select()))
        .load(conn)
        .await?;
    let Some((workspace_id, domain_id)) = rows.as_slice().first().map(|(w, d, _)| (*w, *d)) else {
        return Ok(None);
    };
    Ok(Some(Destination {
        workspace_id,
        domain_id,
        targets: rows.into_iter().map(|(_, _, t)| t).collect(),
    }))
}

/// Picks a target by weight and builds the redirect and the click's touch. Nothing is stored
/// here: the caller answers the redirect only once the touch is committed (see [`ClickStore`]),
/// so that the landing page's snippet and a conversion that follows at once both find it.
pub fn route_click(dest: &Destination, click: &Click) -> DomainResult<(Redirect, NewClick)> {
    let total = total_weight(&dest.targets);
    let roll = if total == 0 {
        0
    } else {
        rand::RngExt::random_range(&mut rand::rng(), 0..total)
    };
    let target = pick(&dest.targets, roll)
        .or(dest.targets.as_slice().first())
        .ok_or_else(|| DomainError::internal("a tracking link without targets"))?;
    let mut url = merge_query(&target.url, &click.query)?;
    let fields: TouchFields = touch_store::touch_fields(&Landing {
        url: url.to_string(),
        referrer: click.referrer.clone(),
        webdriver: false,
        user_agent: click.user_agent.clone(),
        country: click.country.clone(),
        click: None,
    })?;
    let (quality_score, quality_reasons) = touch_store::click_quality(&fields);
    let touch_id = TouchId(uuid::Uuid::now_v7());
    url.query_pairs_mut()
        .append_pair(CLICK_PARAM, &touch_id.0.to_string());
    Ok((
        Redirect {
            location: url.to_string(),
            touch_id,
        },
        NewClick {
            id: touch_id,
            workspace_id: dest.workspace_id,
            domain_id: dest.domain_id,
            fields,
            quality_score,
            quality_reasons,
            link_id: target.link_id,
            target_id: target.id,
        },
    ))
}

/// Inserts a batch of clicks' touches: one statement, so one commit, with the batch passed as
/// arrays (a click's quality reasons joined by U+001F, which no reason contains).
const INSERT_CLICKS: &str = r#"
INSERT INTO touches (id, workspace_id, domain_id, landing_page, referrer, utm_source, utm_medium,
                     utm_campaign, utm_content, utm_term, gclid, gbraid, wbraid, fbclid, ttclid,
                     msclkid, device_type, country, webdriver, user_agent, quality_score,
                     quality_reasons, link_id, target_id)
SELECT c.id, c.workspace_id, c.domain_id, c.landing_page, c.referrer, c.utm_source, c.utm_medium,
       c.utm_campaign, c.utm_content, c.utm_term, c.gclid, c.gbraid, c.wbraid, c.fbclid,
       c.ttclid, c.msclkid, c.device_type, c.country, false, c.user_agent, c.quality_score,
       string_to_array(c.reasons, E'\x1f'), c.link_id, c.target_id
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
            $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[],
            $20::int4[], $21::text[], $22::uuid[], $23::uuid[])
    AS c(id, workspace_id, domain_id, landing_page, referrer, utm_source, utm_medium,
         utm_campaign, utm_content, utm_term, gclid, gbraid, wbraid, fbclid, ttclid, msclkid,
         device_type, country, user_agent, quality_score, reasons, link_id, target_id)
"#;

/// A connection of the redirect endpoint's committers, with [`INSERT_CLICKS`] prepared once so
/// that PostgreSQL plans it once rather than for every batch.
pub struct ClickStore {
    client: tokio_postgres::Client,
    insert: tokio_postgres::Statement,
}

impl ClickStore {
    pub async fn connect(database_url: &str) -> DomainResult<Self> {
        let client = crate::store::pg::connect_kept(database_url, "click store").await?;
        // Clicks commit without waiting for the WAL flush: each is committed, and visible to
        // the landing page's join, before its redirect is answered, but the visitor does not
        // wait for the disk. A crash of Postback loses none; a crash of PostgreSQL or of its
        // machine may lose the clicks of its last moments (at most 3 × `wal_writer_delay`,
        // 600 ms by default), whose landing then records a touch of its own without the link.
        // This halves the redirect's latency (docs/performance.md). Events, keys and
        // deliveries keep synchronous commits. Behind a transaction pooler
        // (`POSTBACK_DB_POOLER=transaction`) a session `SET` would land on a server connection
        // other clients share, so there clicks commit synchronously like everything else.
        crate::store::pg::set_unless_pooled(
            &client,
            "SET synchronous_commit = off",
            "setting up the click store",
        )
        .await?;
        let insert = client
            .prepare(INSERT_CLICKS)
            .await
            .map_err(|e| crate::error::pg_error("preparing the click insert", e))?;
        Ok(Self { client, insert })
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Stores the clicks' touches in one statement and commits them.
    pub async fn insert(&self, clicks: &[NewClick]) -> DomainResult<()> {
        if clicks.is_empty() {
            return Ok(());
        }
        fn col<'a, T>(clicks: &'a [NewClick], f: impl Fn(&'a NewClick) -> T) -> Vec<T> {
            clicks.iter().map(f).collect()
        }
        let text = |f: fn(&TouchFields) -> &Option<String>| -> Vec<Option<&str>> {
            clicks.iter().map(|c| f(&c.fields).as_deref()).collect()
        };
        let ids = col(clicks, |c| c.id.0);
        let workspaces = col(clicks, |c| c.workspace_id.0);
        let domains = col(clicks, |c| c.domain_id.0);
        let landing = text(|f| &f.landing_page);
        let referrer = text(|f| &f.referrer);
        let utm_source = text(|f| &f.utm_source);
        let utm_medium = text(|f| &f.utm_medium);
        let utm_campaign = text(|f| &f.utm_campaign);
        let utm_content = text(|f| &f.utm_content);
        let utm_term = text(|f| &f.utm_term);
        let gclid = text(|f| &f.gclid);
        let gbraid = text(|f| &f.gbraid);
        let wbraid = text(|f| &f.wbraid);
        let fbclid = text(|f| &f.fbclid);
        let ttclid = text(|f| &f.ttclid);
        let msclkid = text(|f| &f.msclkid);
        let device = col(clicks, |c| c.fields.device_type.as_str());
        let country = text(|f| &f.country);
        let user_agent = text(|f| &f.user_agent);
        let scores = col(clicks, |c| c.quality_score);
        let reasons = col(clicks, |c| c.quality_reasons.join("\u{1f}"));
        let link_ids = col(clicks, |c| c.link_id.0);
        let target_ids = col(clicks, |c| c.target_id.0);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 23] = [
            &ids,
            &workspaces,
            &domains,
            &landing,
            &referrer,
            &utm_source,
            &utm_medium,
            &utm_campaign,
            &utm_content,
            &utm_term,
            &gclid,
            &gbraid,
            &wbraid,
            &fbclid,
            &ttclid,
            &msclkid,
            &device,
            &country,
            &user_agent,
            &scores,
            &reasons,
            &link_ids,
            &target_ids,
        ];
        // Called by path: diesel's `RunQueryDsl::execute` is in scope here too.
        tokio_postgres::Client::execute(&self.client, &self.insert, &params)
            .await
            .map_err(|e| {
                if self.client.is_closed() {
                    DomainError::Unavailable(e.to_string())
                } else {
                    crate::error::pg_error("storing clicks", e)
                }
            })?;
        Ok(())
    }
}

/// Clicks of a link per UTC day, the last `days` days (oldest first, days without clicks as 0).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DayClicks {
    pub day: NaiveDate,
    pub clicks: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetClicks {
    pub target_id: LinkTargetId,
    /// None for a target removed since.
    pub url: Option<String>,
    pub clicks: i64,
}

/// Revenue in one currency.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Revenue {
    pub currency: String,
    pub amount: f64,
}

/// Conversions whose first (or last) touch was a click on the link.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attributed {
    pub conversions: i64,
    pub revenue: Vec<Revenue>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkStats {
    pub days: Vec<DayClicks>,
    pub clicks_in_days: i64,
    pub total_clicks: i64,
    pub per_target: Vec<TargetClicks>,
    pub first_touch: Attributed,
    pub last_touch: Attributed,
}

pub const STATS_DAYS: i64 = 30;

#[derive(QueryableByName)]
struct DayRow {
    #[diesel(sql_type = diesel::sql_types::Date)]
    day: NaiveDate,
    #[diesel(sql_type = BigInt)]
    clicks: i64,
}

#[derive(QueryableByName)]
struct TargetRow {
    #[diesel(sql_type = SqlUuid)]
    target_id: uuid::Uuid,
    #[diesel(sql_type = BigInt)]
    clicks: i64,
}

#[derive(QueryableByName)]
struct ConversionRow {
    #[diesel(sql_type = Text)]
    which: String,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    conversions: i64,
    #[diesel(sql_type = Nullable<Double>)]
    revenue: Option<f64>,
}

/// A link's clicks per day and per target, and the conversions (not refunds or chargebacks, not
/// the custom events `event1` … `event10`) and revenue attributed to it by first and last touch.
pub async fn stats(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    link: &Link,
    now: DateTime<Utc>,
) -> DomainResult<LinkStats> {
    let today = now.date_naive();
    let start = today - Duration::days(STATS_DAYS - 1);
    let by_day: Vec<DayRow> = diesel::sql_query(
        r#"
        SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, count(*) AS clicks
        FROM touches
        WHERE link_id = $1 AND workspace_id = $2
          AND occurred_at >= ($3::date)::timestamp AT TIME ZONE 'UTC'
        GROUP BY 1
        "#,
    )
    .bind::<SqlUuid, _>(link.row.id.0)
    .bind::<SqlUuid, _>(workspace_id.0)
    .bind::<diesel::sql_types::Date, _>(start)
    .load(conn)
    .await?;
    let counts: HashMap<NaiveDate, i64> = by_day.into_iter().map(|r| (r.day, r.clicks)).collect();
    let days: Vec<DayClicks> = (0..STATS_DAYS)
        .map(|i| {
            let day = start + Duration::days(i);
            DayClicks {
                day,
                clicks: counts.get(&day).copied().unwrap_or(0),
            }
        })
        .collect();
    let by_target: Vec<TargetRow> = diesel::sql_query(
        r#"
        SELECT target_id, count(*) AS clicks
        FROM touches
        WHERE link_id = $1 AND workspace_id = $2 AND target_id IS NOT NULL
        GROUP BY target_id
        "#,
    )
    .bind::<SqlUuid, _>(link.row.id.0)
    .bind::<SqlUuid, _>(workspace_id.0)
    .load(conn)
    .await?;
    let mut per_target: Vec<TargetClicks> = link
        .targets
        .iter()
        .map(|t| TargetClicks {
            target_id: t.id,
            url: Some(t.url.clone()),
            clicks: by_target
                .iter()
                .find(|r| r.target_id == t.id.0)
                .map_or(0, |r| r.clicks),
        })
        .collect();
    per_target.extend(
        by_target
            .iter()
            .filter(|r| !link.targets.iter().any(|t| t.id.0 == r.target_id))
            .map(|r| TargetClicks {
                target_id: LinkTargetId(r.target_id),
                url: None,
                clicks: r.clicks,
            }),
    );
    let total_clicks = per_target.iter().map(|t| t.clicks).sum();
    let conversions: Vec<ConversionRow> = diesel::sql_query(
        r#"
        WITH clicks AS (
            SELECT id FROM touches WHERE link_id = $1 AND workspace_id = $2
        ),
        attributed AS (
            SELECT 'first' AS which, e.* FROM events e JOIN clicks c ON e.first_touch_id = c.id
            WHERE e.workspace_id = $2
            UNION ALL
            SELECT 'last' AS which, e.* FROM events e JOIN clicks c ON e.last_touch_id = c.id
            WHERE e.workspace_id = $2
        )
        SELECT which, currency, count(*) AS conversions, sum(value) AS revenue
        FROM attributed
        WHERE event_name !~* '^(refund|chargeback)$' AND event_name !~ '^event([1-9]|10)$'
        GROUP BY which, currency
        ORDER BY which, currency
        "#,
    )
    .bind::<SqlUuid, _>(link.row.id.0)
    .bind::<SqlUuid, _>(workspace_id.0)
    .load(conn)
    .await?;
    let attributed = |which: &str| {
        let rows = conversions.iter().filter(|r| r.which == which);
        Attributed {
            conversions: rows.clone().map(|r| r.conversions).sum(),
            revenue: rows
                .filter_map(|r| {
                    r.revenue.map(|amount| Revenue {
                        currency: r.currency.clone(),
                        amount,
                    })
                })
                .collect(),
        }
    };
    Ok(LinkStats {
        clicks_in_days: days.iter().map(|d| d.clicks).sum(),
        days,
        total_clicks,
        per_target,
        first_touch: attributed("first"),
        last_touch: attributed("last"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(weight: i32) -> Target {
        Target {
            id: LinkTargetId::new(),
            link_id: LinkId(uuid::Uuid::nil()),
            url: "https://a.test/".into(),
            weight,
            position: 0,
        }
    }

    #[test]
    fn each_roll_falls_in_one_targets_share() {
        let ts = [target(1), target(3)];
        assert_eq!(pick(&ts, 0).map(|t| t.id), Some(ts[0].id));
        for r in 1..4 {
            assert_eq!(pick(&ts, r).map(|t| t.id), Some(ts[1].id));
        }
        assert!(pick(&ts, 4).is_none());
        assert_eq!(total_weight(&ts), 4);
    }

    #[test]
    fn the_click_query_joins_the_targets_own() {
        let u = merge_query(
            "https://shop.example.com/sale?utm_campaign=spring#top",
            "utm_source=google&gclid=G1&utm_campaign=other&pb_click=x",
        )
        .expect("merged");
        assert_eq!(
            u.as_str(),
            "https://shop.example.com/sale?utm_campaign=spring&utm_source=google&gclid=G1#top"
        );
        let plain = merge_query("https://shop.example.com/", "").expect("plain");
        assert_eq!(plain.as_str(), "https://shop.example.com/");
    }

    #[test]
    fn slugs_and_targets_are_checked_field_by_field() {
        assert_eq!(
            validate_slug("spring-sale-2").as_deref().ok(),
            Some("spring-sale-2")
        );
        assert!(validate_slug("Spring").is_err());
        assert!(validate_slug("a_b").is_err());
        assert!(validate_slug(&"a".repeat(65)).is_err());
        assert!(validate_slug("").is_err());
        let ok = TargetInput {
            id: None,
            url: "https://a.test/x".into(),
            weight: 1,
        };
        assert!(validate_targets(std::slice::from_ref(&ok)).is_ok());
        let err = |ts: &[TargetInput]| match validate_targets(ts) {
            Err(DomainError::Invalid(m)) => m,
            other => panic!("expected invalid, got {other:?}"),
        };
        assert!(err(&[]).starts_with("targets"));
        let zero = TargetInput {
            weight: 0,
            ..ok.clone()
        };
        assert!(err(&[ok.clone(), zero]).starts_with("targets[1].weight"));
        let ftp = TargetInput {
            url: "ftp://a.test/".into(),
            ..ok.clone()
        };
        assert!(err(&[ftp]).starts_with("targets[0].url"));
    }
}
