//! Outbound webhooks (seeds 002 and 003): where a workspace's events go, on which events and
//! conditions, signed with which secret. Every query starts from the workspace.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::Value;

use crate::conditions::{self, Condition};
use crate::error::{DomainError, DomainResult};
use crate::ids::{DomainId, WebhookId, WorkspaceId};
use crate::paging::{Cursor, Page, PageRequest};
use crate::plans::{self, ensure_below};
use crate::schema::{deliveries, domains, webhooks, workspaces};
use crate::secrets::random_bytes;

pub const SECRET_PREFIX: &str = "whsec_";
/// After this many deliveries in a row fail, the webhook pauses itself (seed 003).
pub const AUTO_PAUSE_AFTER: i32 = 10;
const MAX_URL_CHARS: usize = 2000;
const MAX_SECRET_CHARS: usize = 200;
const LIMIT_WHAT: plans::LimitNoun = ("webhook per workspace", "webhooks per workspace");

/// The URL tokens of seed 002 (plus event, currency and event id), in the order the form lists them.
pub const TOKENS: &[(&str, &str)] = &[
    ("[revenue]", "Conversion revenue amount"),
    ("[transaction]", "Transaction (order) id"),
    ("[event]", "Event name"),
    ("[currency]", "Currency code"),
    ("[event_id]", "Postback's event id"),
];

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhooks)]
pub struct Webhook {
    pub id: WebhookId,
    pub workspace_id: WorkspaceId,
    pub domain_id: Option<DomainId>,
    pub name: String,
    pub url: String,
    pub secret: Option<String>,
    pub events: Vec<String>,
    pub conditions: Value,
    pub status: String,
    pub paused_reason: Option<String>,
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Webhook {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    /// The stored conditions (validated when saved).
    pub fn rules(&self) -> Vec<Condition> {
        serde_json::from_value(self.conditions.clone()).unwrap_or_default()
    }
}

/// The API view (seed 003's fields, camelCase); the secret only where a call hands it out.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    pub id: WebhookId,
    pub domain_id: Option<DomainId>,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub conditions: Value,
    pub status: String,
    pub paused_reason: Option<String>,
    pub consecutive_failures: i32,
    pub has_secret: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        Self {
            id: w.id,
            domain_id: w.domain_id,
            name: w.name,
            url: w.url,
            events: w.events,
            conditions: w.conditions,
            status: w.status,
            paused_reason: w.paused_reason,
            consecutive_failures: w.consecutive_failures,
            has_secret: w.secret.is_some(),
            secret: None,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// `whsec_` + base64 of 32 random bytes (the Standard Webhooks form).
pub fn generate_secret() -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(random_bytes::<32>()))
}

/// The key for the Standard Webhooks signature: the bytes after `whsec_` base64-decoded, or a
/// secret of the user's own as its UTF-8 bytes.
pub fn standard_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|b| STANDARD.decode(b).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// What a create or update may set; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub url: Option<String>,
    /// Some(None): generate a new secret.
    pub secret: Option<Option<String>>,
    pub events: Option<Value>,
    pub conditions: Option<Value>,
    /// Some(None): every domain.
    pub domain_id: Option<Option<DomainId>>,
    pub status: Option<String>,
    pub name: Option<String>,
}

/// Checks a target URL's form: http(s), a host, tokens only after the host. Whether the host
/// may be reached is for the delivery client (it knows the network).
pub fn validate_url(raw: &str) -> DomainResult<String> {
    let url = raw.trim();
    if url.is_empty() {
        return Err(DomainError::invalid("url is required"));
    }
    if url.chars().count() > MAX_URL_CHARS {
        return Err(DomainError::invalid(format!(
            "url must be at most {MAX_URL_CHARS} characters"
        )));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(DomainError::invalid(
            "url must be an absolute http:// or https:// URL",
        ));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(DomainError::invalid(
            "url must start with http:// or https://",
        ));
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if TOKENS
        .iter()
        .any(|(t, _)| rest[..authority_end].contains(t))
    {
        return Err(DomainError::invalid(
            "url: tokens may only appear in the path or query, not in the host",
        ));
    }
    let sample = expand_tokens(url, &TokenValues::sample());
    let parsed = url::Url::parse(&sample)
        .map_err(|e| DomainError::invalid(format!("url is not a valid URL ({e})")))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(DomainError::invalid("url must name a host"));
    }
    // The URL parser, not the text, decides where the host is (`https:///[event].example.com`
    // has it after the extra slash): filled with other values, the URL must go to the same place.
    let other = TokenValues {
        revenue: Some(1.0),
        transaction: Some("t".into()),
        event: "e".into(),
        currency: "c".into(),
        event_id: "i".into(),
    };
    let place = |u: &url::Url| {
        (
            u.scheme().to_owned(),
            u.username().to_owned(),
            u.password().map(str::to_owned),
            u.host_str().map(str::to_owned),
            u.port(),
        )
    };
    let same_place =
        url::Url::parse(&expand_tokens(url, &other)).is_ok_and(|o| place(&o) == place(&parsed));
    if !same_place {
        return Err(DomainError::invalid(
            "url: tokens may only appear in the path or query, not in the host",
        ));
    }
    Ok(url.to_owned())
}

/// Values for the URL tokens of one event.
#[derive(Debug, Clone, Default)]
pub struct TokenValues {
    pub revenue: Option<f64>,
    pub transaction: Option<String>,
    pub event: String,
    pub currency: String,
    pub event_id: String,
}

impl TokenValues {
    /// What the Test button fills in.
    pub fn sample() -> Self {
        Self {
            revenue: Some(99.99),
            transaction: Some("TEST-ORDER-1001".into()),
            event: "purchase".into(),
            currency: "USD".into(),
            event_id: "00000000-0000-0000-0000-000000000000".into(),
        }
    }
}

/// 99.99 → "99.99", 100.0 → "100".
pub fn format_amount(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_owned()
    }
}

/// Fills `[revenue]`, `[transaction]`, `[event]`, `[currency]` and `[event_id]`, URL-encoded,
/// in one pass: text around the tokens is kept as written, even where an empty value leaves
/// brackets that spell another token (`[event[revenue]]` stays `[event]`).
pub fn expand_tokens(template: &str, values: &TokenValues) -> String {
    if !template.contains('[') {
        return template.to_owned();
    }
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
            .replace("%2D", "-")
            .replace("%2E", ".")
            .replace("%5F", "_")
            .replace("%7E", "~")
    };
    let value = |token: &str| match token {
        "[revenue]" => values.revenue.map(format_amount).unwrap_or_default(),
        "[transaction]" => values.transaction.clone().unwrap_or_default(),
        "[event]" => values.event.clone(),
        "[currency]" => values.currency.clone(),
        "[event_id]" => values.event_id.clone(),
        _ => String::new(),
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('[') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        match TOKENS.iter().find(|(token, _)| tail.starts_with(token)) {
            Some((token, _)) => {
                out.push_str(&enc(&value(token)));
                rest = &tail[token.len()..];
            }
            None => {
                out.push('[');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn validate_secret(raw: &str) -> DomainResult<String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(DomainError::invalid("secret must not be empty"));
    }
    if s.chars().count() > MAX_SECRET_CHARS {
        return Err(DomainError::invalid(format!(
            "secret must be at most {MAX_SECRET_CHARS} characters"
        )));
    }
    if s.starts_with(SECRET_PREFIX) && standard_key(s).len() < 16 {
        return Err(DomainError::invalid(
            "secret: a whsec_ secret must be base64 of at least 16 bytes",
        ));
    }
    Ok(s.to_owned())
}

fn validate_status(raw: &str) -> DomainResult<&'static str> {
    match raw.trim() {
        "active" => Ok("active"),
        "paused" => Ok("paused"),
        other => Err(DomainError::invalid(format!(
            "status must be \"active\" or \"paused\", not \"{other}\""
        ))),
    }
}

fn validate_name(raw: &str) -> DomainResult<String> {
    let name = raw.trim();
    if name.chars().count() > 100 {
        return Err(DomainError::invalid("name must be at most 100 characters"));
    }
    Ok(name.to_owned())
}

async fn ensure_domain(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    domain_id: DomainId,
) -> DomainResult<()> {
    let found = domains::table
        .filter(domains::workspace_id.eq(workspace_id))
        .filter(domains::id.eq(domain_id))
        .select(domains::id)
        .first::<DomainId>(conn)
        .await
        .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| DomainError::invalid("domainId does not name a domain of this workspace"))
}

/// Creates a webhook; the answer carries the secret (generated when none was given).
pub async fn create(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    changes: Changes,
) -> DomainResult<WebhookView> {
    let url = validate_url(changes.url.as_deref().unwrap_or(""))?;
    let secret = match changes.secret.flatten() {
        Some(s) => validate_secret(&s)?,
        None => generate_secret(),
    };
    let events = conditions::validate_events(changes.events.as_ref().unwrap_or(&Value::Null))?;
    let rules = conditions::validate(changes.conditions.as_ref().unwrap_or(&Value::Null))?;
    let status = validate_status(changes.status.as_deref().unwrap_or("active"))?;
    let name = validate_name(changes.name.as_deref().unwrap_or(""))?;
    let domain_id = changes.domain_id.flatten();
    conn.transaction::<_, DomainError, _>(|conn| {
        async move {
            // Serialises limit checks per workspace.
            let tier: String = workspaces::table
                .find(workspace_id)
                .select(workspaces::plan)
                .for_update()
                .first(conn)
                .await?;
            let plan = plans::get(conn, &tier).await?;
            let used: i64 = webhooks::table
                .filter(webhooks::workspace_id.eq(workspace_id))
                .count()
                .get_result(conn)
                .await?;
            ensure_below(&plan, plan.max_webhooks.map(i64::from), used, LIMIT_WHAT)?;
            if let Some(d) = domain_id {
                ensure_domain(conn, workspace_id, d).await?;
            }
            let row: Webhook = diesel::insert_into(webhooks::table)
                .values((
                    webhooks::id.eq(WebhookId::new()),
                    webhooks::workspace_id.eq(workspace_id),
                    webhooks::domain_id.eq(domain_id),
                    webhooks::name.eq(&name),
                    webhooks::url.eq(&url),
                    webhooks::secret.eq(Some(crate::crypto::seal(&secret)?)),
                    webhooks::events.eq(&events),
                    webhooks::conditions.eq(serde_json::to_value(&rules).unwrap_or_default()),
                    webhooks::status.eq(status),
                ))
                .returning(Webhook::as_returning())
                .get_result(conn)
                .await?;
            let mut view = WebhookView::from(row);
            view.secret = Some(secret);
            Ok(view)
        }
        .scope_boxed()
    })
    .await
}

pub async fn count(conn: &mut AsyncPgConnection, workspace_id: WorkspaceId) -> DomainResult<i64> {
    Ok(webhooks::table
        .filter(webhooks::workspace_id.eq(workspace_id))
        .count()
        .get_result(conn)
        .await?)
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    page: PageRequest,
) -> DomainResult<Page<Webhook>> {
    let q = crate::after_cursor!(
        webhooks::table
            .filter(webhooks::workspace_id.eq(workspace_id))
            .select(Webhook::as_select()),
        page,
        webhooks::created_at,
        webhooks::id
    );
    let rows = q.load(conn).await?;
    Ok(Page::from_rows(rows, page.limit, |w: &Webhook| Cursor {
        at: w.created_at,
        id: w.id.0,
    }))
}

pub async fn get(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: WebhookId,
) -> DomainResult<Webhook> {
    let mut hook = webhooks::table
        .filter(webhooks::workspace_id.eq(workspace_id))
        .filter(webhooks::id.eq(id))
        .select(Webhook::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("webhook"))?;
    // Stored sealed; handed out in clear for signing and the reveal button.
    hook.secret = hook
        .secret
        .as_deref()
        .map(crate::crypto::open)
        .transpose()?;
    Ok(hook)
}

/// Applies changes. Setting the status to active resets the failure counter and releases held
/// deliveries (seed 003's re-enable); pausing by hand records no reason.
pub async fn update(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: WebhookId,
    changes: Changes,
) -> DomainResult<WebhookView> {
    let url = changes.url.as_deref().map(validate_url).transpose()?;
    let secret = match changes.secret {
        None => None,
        Some(None) => Some(generate_secret()),
        Some(Some(s)) => Some(validate_secret(&s)?),
    };
    let events = changes
        .events
        .as_ref()
        .map(conditions::validate_events)
        .transpose()?;
    let rules = changes
        .conditions
        .as_ref()
        .map(conditions::validate)
        .transpose()?;
    let status = changes.status.as_deref().map(validate_status).transpose()?;
    let name = changes.name.as_deref().map(validate_name).transpose()?;
    let domain_id = changes.domain_id;
    conn.transaction::<_, DomainError, _>(|conn| {
        async move {
            let current = webhooks::table
                .filter(webhooks::workspace_id.eq(workspace_id))
                .filter(webhooks::id.eq(id))
                .select(Webhook::as_select())
                .for_update()
                .first(conn)
                .await
                .optional()?
                .ok_or(DomainError::NotFound("webhook"))?;
            if let Some(Some(d)) = domain_id {
                ensure_domain(conn, workspace_id, d).await?;
            }
            let target = webhooks::table.filter(webhooks::id.eq(id));
            let resumed = status == Some("active");
            let paused_by_hand = status == Some("paused") && current.is_active();
            diesel::update(target)
                .set((
                    webhooks::url.eq(url.unwrap_or(current.url)),
                    webhooks::secret.eq(match &secret {
                        Some(s) => Some(crate::crypto::seal(s)?),
                        None => current.secret,
                    }),
                    webhooks::events.eq(events.unwrap_or(current.events)),
                    webhooks::conditions.eq(rules
                        .map(|r| serde_json::to_value(r).unwrap_or_default())
                        .unwrap_or(current.conditions)),
                    webhooks::domain_id.eq(domain_id.unwrap_or(current.domain_id)),
                    webhooks::name.eq(name.unwrap_or(current.name)),
                    webhooks::status.eq(status.unwrap_or(&current.status)),
                    webhooks::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            if resumed {
                diesel::update(target)
                    .set((
                        webhooks::consecutive_failures.eq(0),
                        webhooks::paused_reason.eq(None::<String>),
                    ))
                    .execute(conn)
                    .await?;
                release_held(conn, id).await?;
            }
            if paused_by_hand {
                diesel::update(target)
                    .set(webhooks::paused_reason.eq(None::<String>))
                    .execute(conn)
                    .await?;
            }
            let row = get(conn, workspace_id, id).await?;
            let mut view = WebhookView::from(row);
            view.secret = secret;
            Ok(view)
        }
        .scope_boxed()
    })
    .await
}

/// Held deliveries of a webhook go back in the queue with a fresh round of attempts.
async fn release_held(conn: &mut AsyncPgConnection, id: WebhookId) -> DomainResult<usize> {
    let n = diesel::update(
        deliveries::table
            .filter(deliveries::webhook_id.eq(id))
            .filter(deliveries::status.eq("held")),
    )
    .set((
        deliveries::status.eq("pending"),
        deliveries::round_attempts.eq(0),
        deliveries::next_attempt_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    if n > 0 {
        crate::deliveries::wake_workers(conn).await?;
    }
    Ok(n)
}

/// The secret, for the reveal button and `GET …/secret`.
pub async fn secret(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: WebhookId,
) -> DomainResult<Option<String>> {
    Ok(get(conn, workspace_id, id).await?.secret)
}

/// Deletes a webhook with its delivery log.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    workspace_id: WorkspaceId,
    id: WebhookId,
) -> DomainResult<Webhook> {
    let hook = get(conn, workspace_id, id).await?;
    diesel::delete(
        webhooks::table
            .filter(webhooks::workspace_id.eq(workspace_id))
            .filter(webhooks::id.eq(id)),
    )
    .execute(conn)
    .await?;
    Ok(hook)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_filled_and_url_encoded() {
        let v = TokenValues {
            revenue: Some(49.5),
            transaction: Some("A 1&2".into()),
            event: "purchase".into(),
            currency: "EUR".into(),
            event_id: "e-1".into(),
        };
        assert_eq!(
            expand_tokens(
                "https://api.example.com/track?amount=[revenue]&txn=[transaction]&e=[event]&c=[currency]&id=[event_id]",
                &v
            ),
            "https://api.example.com/track?amount=49.5&txn=A%201%262&e=purchase&c=EUR&id=e-1"
        );
        let none = TokenValues::default();
        assert_eq!(
            expand_tokens("https://x.test/?a=[revenue]", &none),
            "https://x.test/?a="
        );
    }

    #[test]
    fn tokens_are_filled_in_one_pass() {
        // Found by fuzz/fuzz_targets/webhook_url.rs: an empty value left brackets that spelled
        // another token, which the next replacement then filled.
        let v = TokenValues {
            event: "purchase".into(),
            ..Default::default()
        };
        assert_eq!(
            expand_tokens(
                "https://x.test/?a=[event[revenue]]&b=[ev[transaction]ent]",
                &v
            ),
            "https://x.test/?a=[event]&b=[event]"
        );
        assert_eq!(
            expand_tokens("https://x.test/[[event]][event_id][", &v),
            "https://x.test/[purchase]["
        );
    }

    #[test]
    fn url_validation() {
        assert!(validate_url("https://api.example.com/track?amount=[revenue]").is_ok());
        assert!(validate_url("ftp://example.com").is_err());
        assert!(validate_url("example.com/hook").is_err());
        assert!(validate_url("https://[revenue].example.com/").is_err());
        assert!(validate_url("").is_err());
    }

    #[test]
    fn tokens_cannot_reach_the_host_through_extra_slashes() {
        // Found by fuzz/fuzz_targets/webhook_url.rs: the URL parser skips the extra slash of
        // `http:///`, so the host began after it and took the event name; the text check only
        // looked before the first slash.
        for url in [
            "http:///a[event]ple.com/t[revenue]",
            "https:///[transaction].example.com/",
            "https:////[event]@example.com/",
            "https:///example.com:[revenue]/",
        ] {
            assert!(validate_url(url).is_err(), "{url}");
        }
        assert!(validate_url("https:///example.com/[event]?v=[revenue]").is_ok());
    }

    #[test]
    fn standard_webhooks_key() {
        let s = generate_secret();
        assert!(s.starts_with("whsec_"));
        assert_eq!(standard_key(&s).len(), 32);
        assert_eq!(
            standard_key("your-signing-secret"),
            b"your-signing-secret".to_vec()
        );
        assert_eq!(format_amount(100.0), "100");
        assert_eq!(format_amount(99.99), "99.99");
    }
}
