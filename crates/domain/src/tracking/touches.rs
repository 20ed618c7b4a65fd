//! What the tracking snippet reports (seed 000 "How Attribution Works"): each landing becomes a
//! touch of the visitor with its click ids, UTM parameters, referrer and device type; an
//! identify maps the email's SHA-256 to the visitor.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::conditions::TouchFacts;
use crate::error::{DomainError, DomainResult};
use crate::ids::{LinkId, LinkTargetId, TouchId, VisitorId};
use crate::schema::{domains, touches, visitors};
use crate::secrets::sha256;
use crate::tenancy::accounts::is_valid_email;
use crate::tenancy::domains::Domain;

const MAX_URL: usize = 2000;

/// The domain a snippet's `data-site` names; unknown ids are not found.
pub async fn domain_for_site(conn: &mut AsyncPgConnection, site_id: &str) -> DomainResult<Domain> {
    domains::table
        .filter(domains::site_id.eq(site_id))
        .select(Domain::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(DomainError::NotFound("site"))
}

/// True when a browser `Origin` belongs to the domain: its hostname or a subdomain of it.
pub fn origin_allowed(hostname: &str, origin: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == hostname || host.ends_with(&format!(".{hostname}"))
}

/// `bot`, `mobile`, `tablet` or `desktop`, from the User-Agent.
pub fn device_type(user_agent: &str) -> &'static str {
    let ua = user_agent.to_ascii_lowercase();
    const BOTS: [&str; 10] = [
        "bot",
        "crawler",
        "spider",
        "slurp",
        "headlesschrome",
        "curl/",
        "wget/",
        "python-requests",
        "facebookexternalhit",
        "lighthouse",
    ];
    if ua.is_empty() || BOTS.iter().any(|b| ua.contains(b)) {
        "bot"
    } else if ua.contains("ipad")
        || ua.contains("tablet")
        || (ua.contains("android") && !ua.contains("mobile"))
    {
        "tablet"
    } else if ua.contains("mobi") || ua.contains("iphone") || ua.contains("android") {
        "mobile"
    } else {
        "desktop"
    }
}

/// The click-quality rules (SPEC "Tracking links and click quality"), as the help page lists
/// them: (penalty, rule). A bot or crawler scores 0 whatever else holds.
pub const QUALITY_RULES: &[(i32, &str)] = &[
    (
        100,
        "The User-Agent is a bot, crawler, headless browser or HTTP library (score 0)",
    ),
    (
        40,
        "The browser reports that it is automated (navigator.webdriver)",
    ),
    (
        30,
        "An email was submitted less than 2 seconds after the page loaded",
    ),
    (
        30,
        "A burst: 10 or more visits from the same visitor within a minute",
    ),
    (
        20,
        "A tracking-link click that the snippet on the landing page has not (yet) reported",
    ),
];
/// The reason a click not yet seen by the snippet carries (removed when the snippet reports it).
pub const UNCONFIRMED_CLICK: &str = "click not followed by the snippet on the landing page";
/// How long after a tracking-link click the landing page's snippet may still join it to the
/// visitor: a person's browser runs the snippet within seconds of the redirect; an hour allows
/// for slow pages and a laptop lid closed mid-load, and keeps a leaked `pb_click` from being
/// claimed much later.
pub const CLICK_JOIN_WINDOW_SECS: i64 = 3600;
/// Visits from one visitor within a minute that make a burst.
const BURST: i64 = 10;
/// An email submitted sooner than this after landing is implausibly fast for a person.
const FAST_EMAIL_MS: i64 = 2_000;

/// The score of a new landing and why it lost points.
pub fn quality(fields: &TouchFields, recent_visits: i64) -> (i32, Vec<String>) {
    if fields.device_type == "bot" {
        return (0, vec!["bot or crawler user agent".into()]);
    }
    let mut score = 100;
    let mut reasons = Vec::new();
    if fields.webdriver {
        score -= QUALITY_RULES[1].0;
        reasons.push("automated browser (navigator.webdriver)".into());
    }
    if recent_visits + 1 >= BURST {
        score -= QUALITY_RULES[3].0;
        reasons.push(format!("{} visits within a minute", recent_visits + 1));
    }
    (score.max(0), reasons)
}

/// The score of a tracking-link click when it happens: no visitor yet, so no webdriver or burst
/// signal; it loses the unconfirmed-click points until the landing page's snippet reports it.
pub fn click_quality(fields: &TouchFields) -> (i32, Vec<String>) {
    if fields.device_type == "bot" {
        return (0, vec!["bot or crawler user agent".into()]);
    }
    (100 - QUALITY_RULES[4].0, vec![UNCONFIRMED_CLICK.into()])
}

/// A browser id from `_pb_vid`: 8 to 64 of letters, digits, `-` and `_`.
pub fn validate_browser_id(raw: &str) -> DomainResult<&str> {
    let ok = (8..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(raw)
    } else {
        Err(DomainError::invalid(
            "vid must be 8 to 64 letters, digits, - or _",
        ))
    }
}

/// A landing as the snippet reports it.
#[derive(Debug, Clone, Default)]
pub struct Landing {
    pub url: String,
    pub referrer: Option<String>,
    pub webdriver: bool,
    pub user_agent: String,
    pub country: Option<String>,
    /// The `pb_click` the landing page's URL carried: the tracking-link click to join.
    pub click: Option<String>,
}

/// The touch a landing makes, with what its URL carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Insertable)]
#[diesel(table_name = touches)]
#[serde(rename_all = "camelCase")]
pub struct TouchFields {
    pub landing_page: Option<String>,
    pub referrer: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_content: Option<String>,
    pub utm_term: Option<String>,
    pub gclid: Option<String>,
    pub gbraid: Option<String>,
    pub wbraid: Option<String>,
    pub fbclid: Option<String>,
    pub ttclid: Option<String>,
    pub msclkid: Option<String>,
    pub device_type: String,
    pub country: Option<String>,
    pub webdriver: bool,
    #[serde(skip)]
    pub user_agent: Option<String>,
}

/// A visitor's text as it is kept: without what PostgreSQL cannot hold (see [`crate::text`]),
/// trimmed, at most `max` characters; `None` when nothing is left.
fn clip(s: &str, max: usize) -> Option<String> {
    let s = crate::text::scrub(s);
    let s = s.trim();
    (!s.is_empty()).then(|| s.chars().take(max).collect())
}

/// Landings recorded per visitor in 24 hours; beyond, they are refused (429).
pub const MAX_TOUCHES_PER_VISITOR_PER_DAY: i64 = 200;
/// Visitors of a domain one email address is linked to; beyond, identifies link nothing new.
pub const MAX_VISITORS_PER_EMAIL: i64 = 20;

/// Reads click ids and UTM parameters from the landing page's query string.
pub fn touch_fields(landing: &Landing) -> DomainResult<TouchFields> {
    let url = url::Url::parse(landing.url.trim())
        .map_err(|_| DomainError::invalid("url must be the page's absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DomainError::invalid("url must be an http(s) URL"));
    }
    let mut t = TouchFields {
        landing_page: clip(url.as_str(), MAX_URL),
        referrer: landing.referrer.as_deref().and_then(|r| clip(r, MAX_URL)),
        device_type: device_type(&landing.user_agent).to_owned(),
        country: landing.country.clone(),
        webdriver: landing.webdriver,
        user_agent: clip(&landing.user_agent, 512),
        ..TouchFields::default()
    };
    for (k, v) in url.query_pairs() {
        let slot = match k.as_ref() {
            "utm_source" => &mut t.utm_source,
            "utm_medium" => &mut t.utm_medium,
            "utm_campaign" => &mut t.utm_campaign,
            "utm_content" => &mut t.utm_content,
            "utm_term" => &mut t.utm_term,
            "gclid" => &mut t.gclid,
            "gbraid" => &mut t.gbraid,
            "wbraid" => &mut t.wbraid,
            "fbclid" => &mut t.fbclid,
            "ttclid" => &mut t.ttclid,
            "msclkid" => &mut t.msclkid,
            _ => continue,
        };
        if slot.is_none() {
            *slot = clip(&v, 500);
        }
    }
    Ok(t)
}

async fn visitor(
    conn: &mut AsyncPgConnection,
    domain: &Domain,
    browser_id: &str,
) -> DomainResult<VisitorId> {
    Ok(diesel::insert_into(visitors::table)
        .values((
            visitors::id.eq(VisitorId::new()),
            visitors::workspace_id.eq(domain.workspace_id),
            visitors::domain_id.eq(domain.id),
            visitors::browser_id.eq(browser_id),
        ))
        .on_conflict((
            visitors::workspace_id,
            visitors::domain_id,
            visitors::browser_id,
        ))
        .do_update()
        .set(visitors::last_seen_at.eq(diesel::dsl::now))
        .returning(visitors::id)
        .get_result(conn)
        .await?)
}

/// Records a landing as a touch of the visitor (created on first sight).
pub async fn record_landing(
    conn: &mut AsyncPgConnection,
    domain: &Domain,
    browser_id: &str,
    landing: &Landing,
) -> DomainResult<TouchId> {
    let browser_id = validate_browser_id(browser_id)?;
    let fields = touch_fields(landing)?;
    let visitor_id = visitor(conn, domain, browser_id).await?;
    let today: i64 = touches::table
        .filter(touches::visitor_id.eq(visitor_id))
        .filter(touches::occurred_at.gt(Utc::now() - chrono::Duration::hours(24)))
        .count()
        .get_result(conn)
        .await?;
    if today >= MAX_TOUCHES_PER_VISITOR_PER_DAY {
        return Err(DomainError::TooMany(format!(
            "this visitor has reported {MAX_TOUCHES_PER_VISITOR_PER_DAY} landings in 24 hours; \
             further landings are not recorded"
        )));
    }
    let recent: i64 = touches::table
        .filter(touches::visitor_id.eq(visitor_id))
        .filter(touches::occurred_at.gt(Utc::now() - chrono::Duration::seconds(60)))
        .count()
        .get_result(conn)
        .await?;
    let (score, reasons) = quality(&fields, recent);
    if let Some(click) = landing.click.as_deref() {
        if let Some(id) =
            join_click(conn, domain, visitor_id, click, &fields, score, &reasons).await?
        {
            return Ok(id);
        }
    }
    let id = TouchId(uuid::Uuid::now_v7());
    diesel::insert_into(touches::table)
        .values((
            touches::id.eq(id),
            touches::workspace_id.eq(domain.workspace_id),
            touches::domain_id.eq(domain.id),
            touches::visitor_id.eq(visitor_id),
            &fields,
            touches::quality_score.eq(score),
            touches::quality_reasons.eq(reasons),
        ))
        .execute(conn)
        .await?;
    Ok(id)
}

/// Joins a tracking-link click to the visitor whose landing reports it: only a click on a link
/// of the same domain, not joined before, made within [`CLICK_JOIN_WINDOW_SECS`]. The click's
/// touch becomes the landing's touch (its page is the page that loaded, its score the landing's),
/// so that the link stays on the visitor's last touch. `None` when there is nothing to join;
/// the landing is then recorded as a touch of its own.
async fn join_click(
    conn: &mut AsyncPgConnection,
    domain: &Domain,
    visitor_id: VisitorId,
    click: &str,
    fields: &TouchFields,
    score: i32,
    reasons: &[String],
) -> DomainResult<Option<TouchId>> {
    let Ok(click) = uuid::Uuid::parse_str(click.trim()) else {
        return Ok(None);
    };
    let bot = touches::device_type.eq("bot");
    Ok(diesel::update(
        touches::table
            .filter(touches::id.eq(TouchId(click)))
            .filter(touches::domain_id.eq(domain.id))
            .filter(touches::visitor_id.is_null())
            .filter(touches::link_id.is_not_null())
            .filter(
                touches::occurred_at
                    .gt(Utc::now() - chrono::Duration::seconds(CLICK_JOIN_WINDOW_SECS)),
            ),
    )
    .set((
        touches::visitor_id.eq(Some(visitor_id)),
        touches::landing_page.eq(&fields.landing_page),
        touches::webdriver.eq(fields.webdriver),
        // A click from a bot's User-Agent stays at 0 whatever the landing says.
        touches::quality_score.eq(diesel::dsl::case_when(bot, 0.into_sql::<Integer>())
            .otherwise(score.into_sql::<Integer>())),
        touches::quality_reasons.eq(diesel::dsl::case_when(
            touches::device_type.eq("bot"),
            touches::quality_reasons,
        )
        .otherwise(reasons.to_vec().into_sql::<Array<Text>>())),
    ))
    .returning(touches::id)
    .get_result(conn)
    .await
    .optional()?)
}

/// Maps a normalised email's SHA-256 to the visitor; the address itself is not stored here.
pub async fn identify(
    conn: &mut AsyncPgConnection,
    domain: &Domain,
    browser_id: &str,
    email: &str,
) -> DomainResult<()> {
    let browser_id = validate_browser_id(browser_id)?;
    let email = email.trim().to_lowercase();
    if !is_valid_email(&email) {
        return Err(DomainError::invalid("email must be a valid email address"));
    }
    let visitor_id = visitor(conn, domain, browser_id).await?;
    // An email within seconds of landing is implausibly fast for a person: the landing loses
    // points (once).
    diesel::sql_query(
        r#"
        UPDATE touches t
        SET quality_score = greatest(0, t.quality_score - $3),
            quality_reasons = t.quality_reasons || ('email submitted ' ||
                (extract(epoch FROM now() - t.occurred_at) * 1000)::bigint || ' ms after landing')
        WHERE t.id = (SELECT id FROM touches WHERE visitor_id = $1
                      ORDER BY occurred_at DESC LIMIT 1)
          AND t.occurred_at > now() - make_interval(secs => $2::float8 / 1000)
          AND NOT EXISTS (SELECT 1 FROM unnest(t.quality_reasons) r WHERE r LIKE 'email submitted %')
        "#,
    )
    .bind::<diesel::sql_types::Uuid, _>(visitor_id.0)
    .bind::<diesel::sql_types::BigInt, _>(FAST_EMAIL_MS)
    .bind::<diesel::sql_types::Integer, _>(QUALITY_RULES[2].0)
    .execute(conn)
    .await?;
    // An email is linked to at most MAX_VISITORS_PER_EMAIL visitors of a domain: anyone can
    // report any address, so one address must not grow without bound.
    diesel::sql_query(
        r#"
        INSERT INTO visitor_emails (domain_id, email_sha256, visitor_id, workspace_id)
        SELECT $1, $2, $3, $4
        WHERE (SELECT count(*) FROM visitor_emails WHERE domain_id = $1 AND email_sha256 = $2) < $5
        ON CONFLICT DO NOTHING
        "#,
    )
    .bind::<diesel::sql_types::Uuid, _>(domain.id.0)
    .bind::<diesel::sql_types::Bytea, _>(sha256(email.as_bytes()))
    .bind::<diesel::sql_types::Uuid, _>(visitor_id.0)
    .bind::<diesel::sql_types::Uuid, _>(domain.workspace_id.0)
    .bind::<diesel::sql_types::BigInt, _>(MAX_VISITORS_PER_EMAIL)
    .execute(conn)
    .await?;
    Ok(())
}

/// A stored touch, for the dashboard and for attribution.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = touches)]
#[serde(rename_all = "camelCase")]
pub struct Touch {
    pub id: TouchId,
    /// None for a tracking-link click that no landing page has joined to a visitor yet.
    pub visitor_id: Option<VisitorId>,
    pub occurred_at: DateTime<Utc>,
    pub landing_page: Option<String>,
    pub referrer: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_content: Option<String>,
    pub utm_term: Option<String>,
    pub gclid: Option<String>,
    pub gbraid: Option<String>,
    pub wbraid: Option<String>,
    pub fbclid: Option<String>,
    pub ttclid: Option<String>,
    pub msclkid: Option<String>,
    pub device_type: String,
    pub country: Option<String>,
    pub webdriver: bool,
    #[serde(skip)]
    pub user_agent: Option<String>,
    /// 0–100: 100 minus the penalties in `quality_reasons` (see [`quality`]).
    pub quality_score: i32,
    pub quality_reasons: Vec<String>,
    /// The tracking link and target of a click (SPEC "Tracking links and click quality").
    pub link_id: Option<LinkId>,
    pub target_id: Option<LinkTargetId>,
}

impl Touch {
    /// What webhook conditions see of this touch.
    pub fn facts(&self) -> TouchFacts {
        TouchFacts {
            utm_source: self.utm_source.clone(),
            utm_medium: self.utm_medium.clone(),
            utm_campaign: self.utm_campaign.clone(),
            utm_content: self.utm_content.clone(),
            utm_term: self.utm_term.clone(),
            country: self.country.clone(),
            device_type: Some(self.device_type.clone()),
            referrer: self.referrer.clone(),
            gclid: self.gclid.clone(),
            gbraid: self.gbraid.clone(),
            wbraid: self.wbraid.clone(),
            fbclid: self.fbclid.clone(),
            ttclid: self.ttclid.clone(),
            quality_score: Some(self.quality_score),
            link_id: self.link_id.map(|id| id.to_string()),
            target_id: self.target_id.map(|id| id.to_string()),
        }
    }

    /// The ad platforms whose click id this touch carries.
    pub fn platforms(&self) -> Vec<&'static str> {
        let f = self.facts();
        let mut out = Vec::new();
        if f.is_from_google_ads() {
            out.push("Google Ads");
        }
        if f.is_from_facebook_ads() {
            out.push("Meta");
        }
        if f.is_from_tiktok_ads() {
            out.push("TikTok");
        }
        if self.msclkid.is_some() {
            out.push("Microsoft Ads");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn click_ids_and_utms_come_from_the_landing_url() {
        let t = touch_fields(&Landing {
            url: "https://shop.example.com/p?utm_source=facebook&utm_medium=cpc&fbclid=IwAR1&gclid=abc&x=1".into(),
            referrer: Some("https://www.facebook.com/".into()),
            user_agent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148".into(),
            ..Landing::default()
        })
        .expect("valid");
        assert_eq!(t.utm_source.as_deref(), Some("facebook"));
        assert_eq!(t.utm_medium.as_deref(), Some("cpc"));
        assert_eq!(t.fbclid.as_deref(), Some("IwAR1"));
        assert_eq!(t.gclid.as_deref(), Some("abc"));
        assert_eq!(t.device_type, "mobile");
        assert_eq!(t.referrer.as_deref(), Some("https://www.facebook.com/"));
        assert!(touch_fields(&Landing {
            url: "javascript:alert(1)".into(),
            ..Landing::default()
        })
        .is_err());
    }

    #[test]
    fn quality_rules() {
        let person = TouchFields {
            device_type: "desktop".into(),
            ..TouchFields::default()
        };
        assert_eq!(quality(&person, 0), (100, vec![]));
        let robot = TouchFields {
            webdriver: true,
            ..person.clone()
        };
        assert_eq!(quality(&robot, 0).0, 60);
        let bot = TouchFields {
            device_type: "bot".into(),
            ..person.clone()
        };
        assert_eq!(quality(&bot, 0).0, 0);
        assert_eq!(quality(&person, 9).0, 70, "the 10th visit in a minute");
        assert_eq!(quality(&robot, 20).0, 30);
    }

    #[test]
    fn device_types() {
        assert_eq!(
            device_type("Googlebot/2.1 (+http://www.google.com/bot.html)"),
            "bot"
        );
        assert_eq!(device_type(""), "bot");
        assert_eq!(
            device_type("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)"),
            "tablet"
        );
        assert_eq!(
            device_type("Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari"),
            "mobile"
        );
        assert_eq!(
            device_type("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"),
            "desktop"
        );
    }

    #[test]
    fn origins_of_the_domain_and_its_subdomains() {
        assert!(origin_allowed(
            "shop.example.com",
            "https://shop.example.com"
        ));
        assert!(origin_allowed(
            "shop.example.com",
            "https://www.shop.example.com:8443"
        ));
        assert!(!origin_allowed(
            "shop.example.com",
            "https://evilshop.example.com"
        ));
        assert!(!origin_allowed(
            "shop.example.com",
            "https://shop.example.com.evil.test"
        ));
        assert!(!origin_allowed("shop.example.com", "null"));
    }
}
