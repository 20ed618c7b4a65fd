//! Ad platform adapters (seed 000 "connected platforms"): each builds the platform's real
//! conversion request from a stored event and its attributed touch, with personal data
//! normalised and SHA-256 hashed before it leaves.
//!
//! Each platform lives in its own module implementing [`Adapter`]; `register!` below is the one
//! place that lists them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod adapter;
pub mod batch;
pub mod connect;
pub mod connections;
mod datamanager;
pub mod holds;
pub mod inbound_fields;
pub mod limits;
pub mod meta_connect;
pub mod normalize;
pub mod oauth;
pub mod request_status;
pub mod signin;
pub mod tiktok_connect;
mod urls;

pub use adapter::{Adapter, ConnectSpec, Endpoint, FieldSpec, SecretSpec};
pub use googleads::API_VERSION as GOOGLE_ADS_API_VERSION;
pub use meta::GRAPH_VERSION as META_GRAPH_VERSION;
pub use normalize::{hashed_email, normalize_email, normalize_name, normalize_phone, sha256_hex};
pub use normalize::{hashed_google_email, normalize_google_email};
pub use tiktok::TRACK_PATH as TIKTOK_TRACK_PATH;
pub use urls::PlatformUrls;

/// Declares the [`Platform`] enum, its list, its dispatch to each platform's adapter, and the
/// [`Settings`] and [`Credentials`] of a connection: each platform's own settings and
/// credentials types (defined in its module) flattened beside the shared ones, so the JSON stays
/// one flat camelCase object.
macro_rules! register {
    ($($(#[$doc:meta])* $variant:ident => $module:ident :: $adapter:ident {
        settings: $settings:ident, credentials: $credentials:ident $(,)?
    }),+ $(,)?) => {
        $(mod $module;)+
        $(pub use $module::{$settings, $credentials};)+

        /// The ad platforms Postback forwards conversions to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum Platform {
            $($(#[$doc])* $variant),+
        }

        impl Platform {
            pub const ALL: &'static [Platform] = &[$(Platform::$variant),+];

            /// The platform's adapter (its module).
            pub fn adapter(self) -> &'static dyn Adapter {
                match self {
                    $(Platform::$variant => &$module::$adapter),+
                }
            }
        }

        /// Settings of a connection (stored as JSON, camelCase). Non-secret. One flat object:
        /// the settings several platforms share, then each platform's own.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(default)]
        pub struct Settings {
            #[serde(flatten)]
            pub shared: SharedSettings,
            $(
                #[serde(flatten)]
                pub $module: $module::$settings,
            )+
        }

        /// Secret credentials (stored sealed as JSON, camelCase). Write-only in the UI and API.
        /// One flat object: the credentials several platforms share, then each platform's own.
        #[derive(Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(default)]
        pub struct Credentials {
            #[serde(flatten)]
            pub shared: SharedCredentials,
            $(
                #[serde(flatten)]
                pub $module: $module::$credentials,
            )+
        }
    };
}

// The one registration per platform: variant => module::adapter, with the types of its own
// settings and credentials (defined in its module).
register! {
    /// "googleads"
    GoogleAds => googleads::GoogleAds {
        settings: GoogleAdsSettings, credentials: GoogleAdsCredentials
    },
    /// "meta"
    Meta => meta::Meta { settings: MetaSettings, credentials: MetaCredentials },
    /// "tiktok"
    TikTok => tiktok::TikTok { settings: TikTokSettings, credentials: TikTokCredentials },
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        self.adapter().name()
    }

    /// The platform named by `as_str` (any case, surrounding spaces ignored).
    pub fn parse(s: &str) -> Option<Platform> {
        let s = s.trim();
        Platform::ALL
            .iter()
            .copied()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }

    pub fn label(self) -> &'static str {
        self.adapter().label()
    }

    /// The platform's event name for a Postback event name, or None when the event is not sent
    /// by default (refund and chargeback are never sent by default). Postback names match in
    /// any case; an unknown name is sent as given, as a custom event. For Google Ads, Some("")
    /// means "use the connection's default conversion action".
    pub fn default_event_name(self, event: &str) -> Option<String> {
        let key = event.trim().to_ascii_lowercase();
        if matches!(key.as_str(), "refund" | "chargeback") {
            return None;
        }
        Some(self.adapter().event_name(&key, event))
    }

    /// The production API root (the adapter's first endpoint).
    pub fn default_base_url(self) -> &'static str {
        self.adapter()
            .endpoints()
            .first()
            .map(|e| e.default)
            .unwrap_or_default()
    }

    /// Whether a touch's click ids include this platform's.
    pub fn has_click(self, click: &Click) -> bool {
        self.adapter().has_click(click)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every endpoint of every platform (operator settings `POSTBACK_*_URL`).
pub fn endpoints() -> impl Iterator<Item = Endpoint> {
    Platform::ALL
        .iter()
        .flat_map(|p| p.adapter().endpoints().iter().copied())
}

/// Settings more than one platform uses (part of [`Settings`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct SharedSettings {
    /// Meta / TikTok, optional.
    pub test_event_code: Option<String>,
    /// Meta / TikTok: what the `event_id` is, `event` (the Postback event id, default) or
    /// `orderId` (the inbound order id, as a browser pixel sends it), for deduplication.
    pub event_id_source: Option<String>,
}

/// Credentials more than one platform uses (part of [`Credentials`]).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct SharedCredentials {
    /// Meta / TikTok access token; Google: an OAuth access token (legacy: expires after an
    /// hour, use `refreshToken`).
    pub access_token: Option<String>,
}

impl Credentials {
    /// The credentials as their flat JSON object: `name → value`, only those set and not empty.
    pub fn entries(&self) -> Vec<(String, String)> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map
                .into_iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) if !s.trim().is_empty() => Some((k, s)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// These credentials, each one not given (absent or blank) taken from `stored`.
    pub fn or(&self, stored: &Credentials) -> Credentials {
        let mut map: serde_json::Map<String, Value> = stored
            .entries()
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        for (k, v) in self.entries() {
            map.insert(k, Value::String(v.trim().to_owned()));
        }
        serde_json::from_value(Value::Object(map)).unwrap_or_default()
    }
}

/// Credentials are never printed: `Debug` names the ones set, not their values.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.entries().into_iter().map(|(k, _)| k).collect();
        f.debug_struct("Credentials").field("set", &names).finish()
    }
}

/// Trimmed; None when empty.
fn clean(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A Google Ads customer id without its dashes and spaces.
fn customer_digits(v: &Option<String>) -> Option<String> {
    clean(v).map(|s| s.chars().filter(|c| !matches!(c, '-' | ' ')).collect())
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_alnum(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Validates what a user saves for a platform; Err names the field and the problem, e.g.
/// "settings.customerId must be a 10-digit Google Ads customer id". Returns normalised settings
/// (customer id dashes stripped, trimmed strings, empty → None, settings of other platforms
/// dropped). Credentials are required when `require_credentials` (on create), else may be
/// absent (keep the stored ones).
pub fn validate(
    platform: Platform,
    settings: &Settings,
    credentials: &Credentials,
    require_credentials: bool,
) -> Result<Settings, String> {
    let mut out = Settings::default();
    platform.adapter().validate(settings, &mut out)?;
    if require_credentials {
        platform.adapter().require_credentials(credentials)?;
        platform
            .adapter()
            .require_settings_credentials(&out, credentials)?;
    }
    for (name, t) in credentials.entries() {
        let t = t.trim();
        if t.len() > 4096 || t.chars().any(char::is_control) {
            return Err(format!("credentials.{name} is not a valid token"));
        }
    }
    Ok(out)
}

/// Meta / TikTok's optional test event code.
fn test_event_code(settings: &Settings) -> Result<Option<String>, String> {
    let code = clean(&settings.shared.test_event_code);
    match &code {
        Some(c) if c.len() > 64 || !is_alnum(c) => Err(
            "settings.testEventCode must be the test code from Events Manager (letters and \
             digits), or empty"
                .into(),
        ),
        _ => Ok(code),
    }
}

/// Meta / TikTok's event id source: `event` (default, stored as None) or `orderId`.
fn event_id_source(settings: &Settings) -> Result<Option<String>, String> {
    match clean(&settings.shared.event_id_source).as_deref() {
        None | Some("event") => Ok(None),
        Some("orderId") => Ok(Some("orderId".into())),
        Some(_) => Err("settings.eventIdSource must be event or orderId".into()),
    }
}

/// One product of a conversion.
#[derive(Debug, Clone, Default, utoipa::ToSchema)]
pub struct Product {
    pub id: Option<String>,
    pub name: String,
    pub price: Option<f64>,
    pub quantity: f64,
}

/// The attributed touch (last touch), if any.
#[derive(Debug, Clone, Default)]
pub struct Click {
    pub gclid: Option<String>,
    pub gbraid: Option<String>,
    pub wbraid: Option<String>,
    pub fbclid: Option<String>,
    pub ttclid: Option<String>,
    pub clicked_at: Option<DateTime<Utc>>,
    pub landing_page: Option<String>,
    pub referrer: Option<String>,
}

/// One conversion to send, as plaintext; adapters normalise and hash what they send.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// Postback event id (uuid text): Meta event_id / TikTok event_id for dedup.
    pub event_id: String,
    /// The PLATFORM's event name (already mapped by the caller); for Google Ads the conversion
    /// action id to use (empty: the connection's default).
    pub event_name: String,
    pub occurred_at: DateTime<Utc>,
    /// May be empty.
    pub email: String,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub city: Option<String>,
    pub state_code: Option<String>,
    pub country_code: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub value: Option<f64>,
    pub currency: String,
    pub order_id: Option<String>,
    pub products: Vec<Product>,
    pub click: Click,
    /// The page the conversion happened on (inbound `sourceUrl`), when given.
    pub source_url: Option<String>,
    /// What the customer agreed to (inbound `consent`), when given.
    pub consent: Consent,
    /// Meta's browser id (the `_fbp` cookie, inbound `fbp`), sent as it is.
    pub fbp: Option<String>,
    /// TikTok's browser id (the `_ttp` cookie, inbound `ttp`), sent as it is.
    pub ttp: Option<String>,
    /// The customer's own id for the person (inbound `externalId`), sent hashed.
    pub external_id: Option<String>,
    /// The domain's default country (ISO alpha-2): completes phone numbers written without
    /// their country code when the event names no country.
    pub default_country: Option<String>,
}

/// A customer's consent as the inbound `consent` object gives it: None when not stated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct Consent {
    /// Consent to sending user data to Google for advertising (`adUserData`).
    pub ad_user_data: Option<ConsentStatus>,
    /// Consent to personalised advertising (`adPersonalization`).
    pub ad_personalization: Option<ConsentStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConsentStatus {
    Granted,
    Denied,
}

impl Conversion {
    /// The E.164 digits (no '+') of the phone. A number written without its country code is
    /// completed with the event country's calling code, else the domain's default country's;
    /// with neither known it is None (left out of the request rather than sent wrong).
    fn phone_digits(&self) -> Option<String> {
        let phone = self.phone.as_deref()?;
        let known = |c: &Option<String>| {
            c.as_deref()
                .filter(|c| normalize::calling_code(c).is_some())
                .map(str::to_owned)
        };
        let country = known(&self.country_code).or_else(|| known(&self.default_country));
        normalize_phone(phone, country.as_deref())
    }

    /// The value, when it is a finite number.
    fn value(&self) -> Option<f64> {
        self.value.filter(|v| v.is_finite())
    }

    /// The upper-case ISO 4217 code, when given.
    fn currency(&self) -> Option<String> {
        let c = self.currency.trim();
        (!c.is_empty()).then(|| c.to_ascii_uppercase())
    }
}

/// An HTTP request ready to send: always POST with a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// Set when the `Authorization: Bearer` header is still to be added with an access token
    /// obtained from this refresh token (see [`oauth`]).
    pub oauth: Option<oauth::Grant>,
}

/// Builds the platform's request. `base_url` is the platform's API root without trailing slash
/// (see [`DEFAULT_BASE_URLS`]; tests use http://127.0.0.1:PORT). Err when settings or
/// credentials needed are missing ("Google Ads needs a customer id" etc.).
pub fn build(
    platform: Platform,
    base_url: &str,
    settings: &Settings,
    credentials: &Credentials,
    conversion: &Conversion,
) -> Result<Request, String> {
    let urls = PlatformUrls::with_root(platform, base_url);
    build_with(platform, &urls, settings, credentials, conversion)
}

/// [`build`] against every endpoint the server is configured with.
pub fn build_with(
    platform: Platform,
    urls: &PlatformUrls,
    settings: &Settings,
    credentials: &Credentials,
    conversion: &Conversion,
) -> Result<Request, String> {
    platform
        .adapter()
        .build(urls, settings, credentials, conversion)
}

/// [`build`] for a delivery at `now`: an event older than the platform accepts is not sent,
/// and the reason says so.
pub fn build_at(
    platform: Platform,
    urls: &PlatformUrls,
    settings: &Settings,
    credentials: &Credentials,
    conversion: &Conversion,
    now: DateTime<Utc>,
) -> Result<Request, String> {
    if let Some(max) = platform.adapter().max_age() {
        if now - conversion.occurred_at > max {
            return Err(format!(
                "Not sent: {} refuses events older than {} days, and this one happened on {}",
                platform.label(),
                max.num_days(),
                conversion.occurred_at.format("%Y-%m-%d %H:%M UTC")
            ));
        }
    }
    build_with(platform, urls, settings, credentials, conversion)
}

/// What the test button's request does at the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestMode {
    /// Only validated, nothing recorded (Google's `validateOnly`).
    ValidateOnly,
    /// Recorded as a test event (Meta / TikTok `test_event_code`).
    TestEvent,
    /// Recorded as a real conversion.
    RealConversion,
}

/// Turns a built request into the test button's: the adapter's way of not recording a real
/// conversion, when the platform has one.
pub fn test_mode(platform: Platform, request: &mut Request) -> TestMode {
    platform.adapter().test_mode(request)
}

/// How the platform answered: Ok, or an error message to show, and whether to retry.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Accepted,
    Retry(String),
    /// Too early: the platform asks to send again at this time (Google's `TOO_RECENT_*`).
    RetryAt(DateTime<Utc>, String),
    /// The access token was refused (HTTP 401): obtain a new one and send once more; a second
    /// refusal holds the delivery until the connection is reconnected.
    Unauthorized(String),
    Rejected(String),
}

/// Interprets the platform's response: 2xx with no error in the body → Accepted; Google Ads 200
/// with a `partialFailureError` → Rejected(its message), or RetryAt 6 hours later for
/// `TOO_RECENT_*`; TikTok 200 with `code` != 0 → Rejected (message includes code and message),
/// except TikTok rate-limit and system-busy codes → Retry; 429 and 5xx → Retry; 401 →
/// Unauthorized; Meta's throttling and transient errors → Retry; other 4xx → Rejected with the
/// platform's error message (Meta `error.message`, Google `error.message`, TikTok `message`)
/// when the body has one.
pub fn interpret(platform: Platform, status: u16, body: &str) -> Answer {
    let json: Option<Value> = serde_json::from_str(body).ok();
    platform.adapter().interpret(status, body, json.as_ref())
}

/// The answer to a non-2xx status: 429, 408 and 5xx are retried, other statuses rejected.
/// `message` is the platform's own error message, when its body has one.
fn by_status(status: u16, message: Option<String>, body: &str) -> Answer {
    let why = format!(
        "HTTP {status}: {}",
        message.unwrap_or_else(|| snippet(body))
    );
    if status == 429 || status == 408 || status >= 500 {
        Answer::Retry(why)
    } else if status == 401 {
        Answer::Unauthorized(why)
    } else {
        Answer::Rejected(why)
    }
}

/// The start of a body for a message: whitespace collapsed, at most 300 characters.
fn snippet(body: &str) -> String {
    let flat = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "(empty response)".into();
    }
    match flat.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// A non-empty string at a JSON pointer.
fn str_at<'a>(json: Option<&'a Value>, pointer: &str) -> Option<&'a str> {
    json?
        .pointer(pointer)?
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A JSON number: an integer when whole (quantities), else the float.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

/// Inserts `value` under `key` when it is present.
fn put(obj: &mut serde_json::Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        obj.insert(key.to_owned(), v.into());
    }
}

/// The platform's name for an event under a connection's mapping, or None when it is not sent.
pub fn platform_event_name(
    platform: Platform,
    event_map: &std::collections::HashMap<String, String>,
    event: &str,
) -> Option<String> {
    match event_map.get(event) {
        Some(name) if name.trim().is_empty() => None,
        Some(name) => Some(name.trim().to_owned()),
        None => platform.default_event_name(event),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use chrono::TimeZone;

    pub const EMAIL: &str = " Jane.Doe@Example.COM ";
    pub const PHONE: &str = "(415) 555-0132";
    pub const FIRST: &str = "Jane";
    pub const LAST: &str = "O'Connor";
    pub const CITY: &str = "San Francisco";

    /// A purchase with everything known, attributed to a click carrying every click id.
    pub fn with_click() -> Conversion {
        Conversion {
            event_id: "0192f1a4-7c3e-7d2a-9b1e-4f5a6b7c8d9e".into(),
            event_name: "Purchase".into(),
            occurred_at: Utc.with_ymd_and_hms(2026, 3, 14, 15, 9, 26).unwrap(),
            email: EMAIL.into(),
            phone: Some(PHONE.into()),
            first_name: Some(FIRST.into()),
            last_name: Some(LAST.into()),
            city: Some(CITY.into()),
            state_code: Some("CA".into()),
            country_code: Some("US".into()),
            ip: Some("203.0.113.7".into()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Test/1.0".into()),
            value: Some(49.99),
            currency: "usd".into(),
            order_id: Some("ORD-1001".into()),
            products: vec![
                Product {
                    id: Some("SKU-1".into()),
                    name: "Blue Mug".into(),
                    price: Some(19.99),
                    quantity: 2.0,
                },
                Product {
                    id: Some("SKU-2".into()),
                    name: "Green Tea".into(),
                    price: Some(10.01),
                    quantity: 1.0,
                },
            ],
            click: Click {
                gclid: Some("Cj0KCQiA-test-gclid".into()),
                gbraid: Some("0AAAAA-test-gbraid".into()),
                wbraid: None,
                fbclid: Some("IwAR2F4-test-fbclid".into()),
                ttclid: Some("E.C.P.test-ttclid".into()),
                clicked_at: Some(Utc.with_ymd_and_hms(2026, 3, 14, 14, 2, 3).unwrap()),
                landing_page: Some("https://shop.example.com/mugs?utm_source=ads".into()),
                referrer: Some("https://www.google.com/".into()),
            },
            source_url: None,
            consent: Consent::default(),
            fbp: Some("fb.1.1773496923000.1116446470".into()),
            ttp: Some("2F7h37YkS1j57AYSKTI7IHhJPYH".into()),
            external_id: Some("CRM-4711".into()),
            default_country: None,
        }
    }

    /// A lead with no touch: only an email and a phone.
    pub fn without_click() -> Conversion {
        Conversion {
            event_id: "0192f1a4-0000-7000-8000-000000000002".into(),
            event_name: "Lead".into(),
            occurred_at: Utc.with_ymd_and_hms(2026, 3, 15, 8, 0, 0).unwrap(),
            email: "lead@example.com".into(),
            phone: Some("+44 20 7946 0958".into()),
            first_name: None,
            last_name: None,
            city: None,
            state_code: None,
            country_code: None,
            ip: None,
            user_agent: None,
            value: None,
            currency: String::new(),
            order_id: None,
            products: Vec::new(),
            click: Click::default(),
            source_url: None,
            consent: Consent::default(),
            fbp: None,
            ttp: None,
            external_id: None,
            default_country: None,
        }
    }

    pub fn settings() -> Settings {
        {
            let mut s = Settings::default();
            s.googleads.customer_id = Some("123-456-7890".into());
            s.googleads.login_customer_id = Some("9876543210".into());
            s.googleads.conversion_action = Some("555000111".into());
            s.meta.pixel_id = Some("1234567890123456".into());
            s.tiktok.pixel_code = Some("C4TESTPIXEL0000000AB".into());
            s.shared.test_event_code = Some("TEST12345".into());
            s.googleads.transport = Some("adsapi".into());
            s
        }
    }

    pub fn credentials() -> Credentials {
        {
            let mut s = Credentials::default();
            s.shared.access_token = Some("test-access-token".into());
            s.googleads.developer_token = Some("test-developer-token".into());
            s.googleads.refresh_token = None;
            s
        }
    }

    /// A request as one JSON value, for snapshots.
    pub fn as_json(r: &Request) -> Value {
        serde_json::json!({
            "method": "POST",
            "url": r.url,
            "headers": r.headers.iter().map(|(k, v)| [k, v]).collect::<Vec<_>>(),
            "body": r.body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn platform_names() {
        for &p in Platform::ALL {
            assert_eq!(Platform::parse(p.as_str()), Some(p));
            assert_eq!(
                serde_json::to_value(p).unwrap(),
                Value::String(p.as_str().into())
            );
            assert!(p.default_base_url().starts_with("https://"));
        }
        assert_eq!(Platform::parse(" TikTok "), Some(Platform::TikTok));
        assert_eq!(Platform::parse("google"), None);
        assert_eq!(Platform::GoogleAds.label(), "Google Ads");
        assert_eq!(Platform::TikTok.label(), "TikTok");
        let p: Platform = serde_json::from_str("\"googleads\"").unwrap();
        assert_eq!(p, Platform::GoogleAds);
    }

    #[test]
    fn default_event_names() {
        let m = |e| Platform::Meta.default_event_name(e);
        let t = |e| Platform::TikTok.default_event_name(e);
        let g = |e| Platform::GoogleAds.default_event_name(e);
        for (event, meta, tiktok) in [
            ("purchase", "Purchase", "CompletePayment"),
            ("lead", "Lead", "SubmitForm"),
            ("signup", "CompleteRegistration", "CompleteRegistration"),
            ("sign_up", "CompleteRegistration", "CompleteRegistration"),
            (
                "complete_registration",
                "CompleteRegistration",
                "CompleteRegistration",
            ),
            (
                "registration",
                "CompleteRegistration",
                "CompleteRegistration",
            ),
            ("add_to_cart", "AddToCart", "AddToCart"),
            ("initiate_checkout", "InitiateCheckout", "InitiateCheckout"),
            ("subscribe", "Subscribe", "Subscribe"),
            ("contact", "Contact", "Contact"),
            ("Purchase", "Purchase", "CompletePayment"),
            ("webinar_booked", "webinar_booked", "webinar_booked"),
        ] {
            assert_eq!(m(event).as_deref(), Some(meta), "meta {event}");
            assert_eq!(t(event).as_deref(), Some(tiktok), "tiktok {event}");
            assert_eq!(g(event).as_deref(), Some(""), "google {event}");
        }
        assert_eq!(m("checkout").as_deref(), Some("InitiateCheckout"));
        assert_eq!(m("start_trial").as_deref(), Some("StartTrial"));
        assert_eq!(m("add_payment_info").as_deref(), Some("AddPaymentInfo"));
        for never in ["refund", "chargeback", "Refund", " CHARGEBACK "] {
            assert_eq!(m(never), None);
            assert_eq!(t(never), None);
            assert_eq!(g(never), None);
        }
    }

    #[test]
    fn validate_normalises() {
        let s = {
            let mut s = Settings::default();
            s.googleads.customer_id = Some(" 123-456-7890 ".into());
            s.googleads.login_customer_id = Some("".into());
            s.googleads.conversion_action = Some(" 555000111 ".into());
            s.meta.pixel_id = Some("42".into());
            s
        };
        let v = validate(Platform::GoogleAds, &s, &credentials(), true).unwrap();
        assert_eq!(v, {
            let mut s = Settings::default();
            s.googleads.customer_id = Some("1234567890".into());
            s.googleads.conversion_action = Some("555000111".into());
            s.googleads.transport = Some("datamanager".into());
            s
        });
        let s = {
            let mut s = Settings::default();
            s.meta.pixel_id = Some(" 1234567890 ".into());
            s.shared.test_event_code = Some("  ".into());
            s
        };
        let v = validate(Platform::Meta, &s, &Credentials::default(), false).unwrap();
        assert_eq!(v.meta.pixel_id.as_deref(), Some("1234567890"));
        assert_eq!(v.shared.test_event_code, None);
        let v = validate(Platform::TikTok, &settings(), &credentials(), true).unwrap();
        assert_eq!(v.tiktok.pixel_code.as_deref(), Some("C4TESTPIXEL0000000AB"));
        assert_eq!(v.shared.test_event_code.as_deref(), Some("TEST12345"));
        assert_eq!(v.googleads.customer_id, None);
    }

    #[test]
    fn validate_errors() {
        let err = |p, s: Settings, c: Credentials, req| validate(p, &s, &c, req).unwrap_err();
        let google = settings();
        assert_eq!(
            err(
                Platform::GoogleAds,
                {
                    let mut s = google.clone();
                    s.googleads.customer_id = Some("123-456".into());
                    s
                },
                credentials(),
                true
            ),
            "settings.customerId must be a 10-digit Google Ads customer id"
        );
        assert_eq!(
            err(
                Platform::GoogleAds,
                {
                    let mut s = google.clone();
                    s.googleads.customer_id = None;
                    s
                },
                credentials(),
                true
            ),
            "settings.customerId must be a 10-digit Google Ads customer id"
        );
        assert!(err(
            Platform::GoogleAds,
            {
                let mut s = google.clone();
                s.googleads.login_customer_id = Some("12x".into());
                s
            },
            credentials(),
            true
        )
        .starts_with("settings.loginCustomerId must be"));
        assert!(err(
            Platform::GoogleAds,
            {
                let mut s = google.clone();
                s.googleads.conversion_action = Some("purchase".into());
                s
            },
            credentials(),
            true
        )
        .starts_with("settings.conversionAction must be"));
        assert_eq!(
            err(
                Platform::GoogleAds,
                google.clone(),
                {
                    let mut s = credentials();
                    s.googleads.developer_token = None;
                    s
                },
                true
            ),
            "credentials.developerToken is required for Google Ads"
        );
        assert_eq!(
            err(
                Platform::GoogleAds,
                google.clone(),
                {
                    let mut s = credentials();
                    s.shared.access_token = Some("  ".into());
                    s
                },
                true
            ),
            "credentials.refreshToken is required for Google Ads"
        );
        assert!(validate(Platform::GoogleAds, &google, &Credentials::default(), false).is_ok());
        assert_eq!(
            err(
                Platform::Meta,
                {
                    let mut s = google.clone();
                    s.meta.pixel_id = Some("abc".into());
                    s
                },
                credentials(),
                true
            ),
            "settings.pixelId must be a Meta dataset (pixel) id (digits)"
        );
        assert_eq!(
            err(Platform::Meta, google.clone(), Credentials::default(), true),
            "credentials.accessToken is required for Meta"
        );
        assert!(err(
            Platform::Meta,
            {
                let mut s = google.clone();
                s.shared.test_event_code = Some("TEST 1".into());
                s
            },
            credentials(),
            true
        )
        .starts_with("settings.testEventCode must be"));
        assert_eq!(
            err(
                Platform::TikTok,
                {
                    let mut s = google.clone();
                    s.tiktok.pixel_code = Some("C4-X".into());
                    s
                },
                credentials(),
                true
            ),
            "settings.pixelCode must be a TikTok pixel code (letters and digits)"
        );
        assert_eq!(
            err(Platform::TikTok, Settings::default(), credentials(), true),
            "settings.pixelCode must be a TikTok pixel code (letters and digits)"
        );
        assert_eq!(
            err(
                Platform::TikTok,
                google,
                {
                    let mut s = Credentials::default();
                    s.shared.access_token = Some("a\nb".into());
                    s.googleads.developer_token = None;
                    s.googleads.refresh_token = None;
                    s
                },
                false
            ),
            "credentials.accessToken is not a valid token"
        );
    }

    #[test]
    fn build_needs_settings_and_credentials() {
        let c = with_click();
        let b = |p, s: &Settings, cr: &Credentials| build(p, "http://x", s, cr, &c).unwrap_err();
        let none = Settings::default();
        assert_eq!(
            b(Platform::GoogleAds, &none, &credentials()),
            "Google Ads needs a customer id"
        );
        assert_eq!(
            b(Platform::Meta, &none, &credentials()),
            "Meta needs a pixel id"
        );
        assert_eq!(
            b(Platform::TikTok, &none, &credentials()),
            "TikTok needs a pixel code"
        );
        for &p in Platform::ALL {
            let e = b(p, &settings(), &Credentials::default());
            let needed = match p {
                Platform::GoogleAds => "a refresh token (connect Google Ads again)",
                _ => "an access token",
            };
            assert_eq!(e, format!("{} needs {needed}", p.label()));
        }
        let only_access = {
            let mut s = credentials();
            s.googleads.developer_token = None;
            s
        };
        assert_eq!(
            b(Platform::GoogleAds, &settings(), &only_access),
            "Google Ads needs a developer token"
        );
        let no_action = {
            let mut s = settings();
            s.googleads.conversion_action = None;
            s
        };
        let mut default_action = with_click();
        default_action.event_name = String::new();
        assert_eq!(
            build(
                Platform::GoogleAds,
                "http://x",
                &no_action,
                &credentials(),
                &default_action
            )
            .unwrap_err(),
            "Google Ads needs a conversion action"
        );
    }

    /// No plaintext email, phone, name or city leaves in any request, in any form we were given
    /// or normalised it to.
    #[test]
    fn no_plaintext_personal_data() {
        let conversions = [with_click(), without_click()];
        let mut needles: Vec<String> = Vec::new();
        for c in &conversions {
            needles.push(c.email.trim().to_owned());
            needles.push(normalize_email(&c.email).unwrap());
            let phone = c.phone.clone().unwrap();
            needles.push(phone.clone());
            let digits = c.phone_digits().unwrap();
            needles.push(digits.clone());
            needles.push(format!("+{digits}"));
            needles.push(digits[digits.len() - 7..].to_owned());
            needles.extend(c.external_id.clone());
            for v in [&c.first_name, &c.last_name, &c.city].into_iter().flatten() {
                needles.push(v.clone());
                needles.push(v.to_lowercase());
                needles.push(normalize_name(v).unwrap());
                needles.push(normalize::normalize_city(v).unwrap());
            }
        }
        for &p in Platform::ALL {
            for c in &conversions {
                let mut c = c.clone();
                if p == Platform::GoogleAds {
                    c.event_name = String::new();
                }
                let r = build(p, p.default_base_url(), &settings(), &credentials(), &c).unwrap();
                let text = as_json(&r).to_string().to_lowercase();
                for n in &needles {
                    assert!(
                        !text.contains(&n.to_lowercase()),
                        "{p}: {n:?} found in {text}"
                    );
                }
                // The email does go, hashed.
                assert!(text.contains(&hashed_email(&c.email).unwrap()), "{p}");
            }
        }
    }

    #[test]
    fn generic_statuses() {
        for &p in Platform::ALL {
            assert!(matches!(interpret(p, 429, ""), Answer::Retry(_)), "{p}");
            assert!(
                matches!(interpret(p, 503, "<html>"), Answer::Retry(_)),
                "{p}"
            );
            assert!(matches!(interpret(p, 500, "{}"), Answer::Retry(_)), "{p}");
            assert_eq!(
                interpret(p, 404, "Not Found"),
                Answer::Rejected("HTTP 404: Not Found".into()),
                "{p}"
            );
        }
        assert_eq!(snippet(&"x".repeat(400)), format!("{}…", "x".repeat(300)));
        assert_eq!(number(2.0), serde_json::json!(2));
        assert_eq!(number(2.5), serde_json::json!(2.5));
    }
}
