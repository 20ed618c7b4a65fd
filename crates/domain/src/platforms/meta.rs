//! Meta Conversions API: `POST /{graph version}/{pixel id}/events` with one website server
//! event. Contact information (em, ph, fn, ln, ct, st, country) goes as SHA-256 of the
//! normalised value, and the customer's `external_id` hashed too; the IP address, user agent,
//! click id (`fbc`) and browser id (`fbp`) go as they are, since Meta asks for them unhashed. The event id lets Meta deduplicate against the browser pixel.

use serde_json::{json, Map, Value};

use super::normalize::{
    normalize_city, normalize_code, normalize_email, normalize_name, sha256_hex,
};
use super::adapter::{Adapter, Endpoint, FieldSpec, SecretSpec};
use super::{by_status, clean, event_id_source, is_digits, number, put, str_at, test_event_code};
use super::{Answer, Click, Conversion, Credentials, Request, Settings};

/// The Graph API version requests are sent to.
pub const GRAPH_VERSION: &str = "v26.0";

/// Meta error codes that mean "slow down" or "try again": unknown/temporary errors and the
/// application, user, page and account rate limits.
const RETRY_CODES: &[i64] = &[1, 2, 4, 17, 32, 341, 613, 80004];
/// The Graph API's throttling codes among them (see `Meta::throttled`).
const THROTTLE_CODES: &[i64] = &[4, 17, 32, 341, 613, 80004];

/// Meta's `action_source` values for events without a web page and browser
/// (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/server-event#action-source).
pub const ACTION_SOURCES: &[&str] = &[
    "system_generated",
    "other",
    "physical_store",
    "phone_call",
    "email",
    "chat",
    "app",
    "business_messaging",
];

/// "event_time … can be up to 7 days before you send an event to Meta"; older events are
/// refused (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/server-event#event-time).
pub const MAX_AGE_DAYS: i64 = 7;

/// Meta's settings of a connection (part of the flat [`Settings`] object).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct MetaSettings {
    /// Meta dataset/pixel id (digits).
    pub pixel_id: Option<String>,
    /// Meta: the `action_source` of events that have no page and browser to send as a
    /// website event (`system_generated`, `other`, `physical_store`, `phone_call`, `email`,
    /// `chat`); empty: `system_generated`.
    pub action_source: Option<String>,
    /// Meta: `LDU` to send Limited Data Use (`data_processing_options: ["LDU"]`, country and
    /// state left to Meta's geolocation); empty: none.
    pub data_processing_options: Option<String>,
}

/// Meta's own credentials: none beyond the shared `accessToken`.
#[derive(Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct MetaCredentials {}

pub(super) struct Meta;

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        env: "POSTBACK_META_URL",
        default: "https://graph.facebook.com",
        about: "Meta Graph API root",
    },
    Endpoint {
        env: "POSTBACK_META_AUTH_URL",
        default: "https://www.facebook.com/v26.0/dialog/oauth",
        about: "Facebook Login dialog (Connect Meta)",
    },
];

const FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "pixel_id",
        label: "Pixel (dataset) ID",
        hint: "",
        required: true,
        get: |s| &s.meta.pixel_id,
        set: |s, v| s.meta.pixel_id = v,
    },
    FieldSpec {
        name: "test_event_code",
        label: "Test event code",
        hint: "From Events Manager › Test events; events then show up there only.",
        required: false,
        get: |s| &s.shared.test_event_code,
        set: |s, v| s.shared.test_event_code = v,
    },
    FieldSpec {
        name: "action_source",
        label: "Action source without a page",
        hint: "Sent for events with no page and browser known (a website event needs both): system_generated (default), other, physical_store, phone_call, email, chat.",
        required: false,
        get: |s| &s.meta.action_source,
        set: |s, v| s.meta.action_source = v,
    },
    FieldSpec {
        name: "event_id_source",
        label: "Event ID",
        hint: "event (Postback's event id, default) or orderId (the order id, as your pixel sends it) so Meta deduplicates server and browser events.",
        required: false,
        get: |s| &s.shared.event_id_source,
        set: |s, v| s.shared.event_id_source = v,
    },
    FieldSpec {
        name: "data_processing_options",
        label: "Data processing options",
        hint: "LDU to send Limited Data Use (US state privacy laws); empty for none.",
        required: false,
        get: |s| &s.meta.data_processing_options,
        set: |s, v| s.meta.data_processing_options = v,
    },
];

const SECRETS: &[SecretSpec] = &[SecretSpec {
    name: "access_token",
    key: "accessToken",
    label: "Conversions API access token",
    set: |c, v| c.shared.access_token = v,
}];

impl Adapter for Meta {
    fn name(&self) -> &'static str {
        "meta"
    }

    fn label(&self) -> &'static str {
        "Meta"
    }

    fn endpoints(&self) -> &'static [Endpoint] {
        ENDPOINTS
    }

    fn app(&self) -> Option<super::oauth::AppSettings> {
        Some(super::oauth::AppSettings {
            id_env: "POSTBACK_META_APP_ID",
            secret_env: "POSTBACK_META_APP_SECRET",
            token_env: None,
            developer_token_env: None,
        })
    }

    /// Meta: the picked pixel replaces the connection's pixel; its other settings (test event
    /// code, action source, …) stay as they were. The long-lived token is the credential.
    fn picked(
        &self,
        mut stored: Settings,
        _account: &str,
        pixel: &str,
        token: String,
    ) -> (Settings, Credentials) {
        stored.meta.pixel_id = Some(pixel.to_owned());
        let mut credentials = Credentials::default();
        credentials.shared.access_token = Some(token);
        (stored, credentials)
    }
    fn connect(&self) -> Option<super::adapter::ConnectSpec> {
        Some(super::adapter::ConnectSpec {
            authorize_env: "POSTBACK_META_AUTH_URL",
            scopes: super::meta_connect::SCOPES,
            what: "the Meta ad account and the pixel (dataset)",
            legend: "Ad account › pixel",
            none_found: "This Facebook account reaches no ad account with a pixel (dataset) to send to: create one in Events Manager, then connect again.",
            exchange: super::meta_connect::exchange,
            lists: super::meta_connect::lists,
        })
    }

    fn event_name(&self, key: &str, given: &str) -> String {
        // Meta's standard events
        // (https://developers.facebook.com/docs/meta-pixel/reference#standard-events).
        let standard = match key {
            "purchase" => "Purchase",
            "lead" => "Lead",
            "signup" | "sign_up" | "complete_registration" | "registration" => {
                "CompleteRegistration"
            }
            "add_to_cart" => "AddToCart",
            "initiate_checkout" | "checkout" => "InitiateCheckout",
            "subscribe" => "Subscribe",
            "start_trial" => "StartTrial",
            "contact" => "Contact",
            "add_payment_info" => "AddPaymentInfo",
            _ => return given.to_owned(),
        };
        standard.to_owned()
    }

    fn validate(&self, settings: &Settings, out: &mut Settings) -> Result<(), String> {
        let pixel = clean(&settings.meta.pixel_id);
        match &pixel {
            Some(p) if p.len() <= 30 && is_digits(p) => {}
            _ => return Err("settings.pixelId must be a Meta dataset (pixel) id (digits)".into()),
        }
        out.meta.pixel_id = pixel;
        out.shared.test_event_code = test_event_code(settings)?;
        out.shared.event_id_source = event_id_source(settings)?;
        out.meta.action_source = match clean(&settings.meta.action_source) {
            None => None,
            Some(a) if ACTION_SOURCES.contains(&a.as_str()) => Some(a),
            Some(_) => {
                return Err(format!(
                    "settings.actionSource must be one of {}, or empty",
                    ACTION_SOURCES.join(", ")
                ))
            }
        };
        out.meta.data_processing_options = match clean(&settings.meta.data_processing_options) {
            None => None,
            Some(o) if o.eq_ignore_ascii_case("LDU") => Some("LDU".into()),
            Some(_) => return Err("settings.dataProcessingOptions must be LDU, or empty".into()),
        };
        Ok(())
    }

    fn require_credentials(&self, credentials: &Credentials) -> Result<(), String> {
        match clean(&credentials.shared.access_token) {
            Some(_) => Ok(()),
            None => Err("credentials.accessToken is required for Meta".into()),
        }
    }

    fn build(
        &self,
        urls: &super::PlatformUrls,
        settings: &Settings,
        credentials: &Credentials,
        conversion: &Conversion,
    ) -> Result<Request, String> {
        build(urls.endpoint(ENDPOINTS[0].env), settings, credentials, conversion)
    }

    fn interpret(&self, status: u16, body: &str, json: Option<&Value>) -> Answer {
        interpret(status, body, json)
    }

    /// "You can send up to 1,000 events in `data`"
    /// (https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api#batch-requests).
    fn batch_limit(&self, _request: &Request) -> Option<(&'static str, usize)> {
        Some(("data", 1000))
    }

    /// HTTP 429, or one of the Graph API's throttling codes
    /// (https://developers.facebook.com/docs/graph-api/overview/rate-limiting): 4 (application
    /// request limit), 17 (user request limit), 32 (page request limit), 341 (application limit),
    /// 613 (calls within one hour exceeded), 80004 (too many calls to this ad account).
    fn throttled(&self, status: u16, json: Option<&Value>) -> bool {
        status == 429
            || json
                .and_then(|j| j.pointer("/error/code"))
                .and_then(Value::as_i64)
                .is_some_and(|c| THROTTLE_CODES.contains(&c))
    }

    fn max_age(&self) -> Option<chrono::Duration> {
        Some(chrono::Duration::days(MAX_AGE_DAYS))
    }

    fn has_click(&self, click: &Click) -> bool {
        click.fbclid.is_some()
    }

    fn sample_click(&self, click: &mut Click) {
        click.fbclid = Some("TEST-FBCLID".into());
    }

    fn fields(&self) -> &'static [FieldSpec] {
        FIELDS
    }

    fn secrets(&self) -> &'static [SecretSpec] {
        SECRETS
    }
}

fn build(
    base: &str,
    settings: &Settings,
    credentials: &Credentials,
    c: &Conversion,
) -> Result<Request, String> {
    let pixel = clean(&settings.meta.pixel_id).ok_or("Meta needs a pixel id")?;
    let access_token = clean(&credentials.shared.access_token).ok_or("Meta needs an access token")?;

    let mut event = Map::new();
    event.insert("event_name".into(), c.event_name.trim().into());
    event.insert("event_time".into(), c.occurred_at.timestamp().into());
    event.insert("event_id".into(), event_id(settings, c).into());
    // "website" requires event_source_url and client_user_agent
    // (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/server-event#action-source,
    // …/customer-information-parameters#client-user-agent): without both, the connection's
    // fallback source is sent instead of an incomplete website event.
    let page = clean(&c.click.landing_page).or_else(|| clean(&c.source_url));
    let browser = clean(&c.user_agent);
    if let (Some(page), Some(_)) = (&page, &browser) {
        event.insert("action_source".into(), "website".into());
        event.insert("event_source_url".into(), page.clone().into());
    } else {
        let fallback =
            clean(&settings.meta.action_source).unwrap_or_else(|| "system_generated".to_owned());
        event.insert("action_source".into(), fallback.into());
        put(&mut event, "event_source_url", page);
    }
    event.insert("user_data".into(), Value::Object(user_data(c)));
    let custom = custom_data(c);
    if !custom.is_empty() {
        event.insert("custom_data".into(), Value::Object(custom));
    }
    // Limited Data Use: ["LDU"] with country and state 0, "Meta will perform geolocation"
    // (https://developers.facebook.com/docs/marketing-apis/data-processing-options).
    if clean(&settings.meta.data_processing_options).as_deref() == Some("LDU") {
        event.insert("data_processing_options".into(), json!(["LDU"]));
        event.insert("data_processing_options_country".into(), 0.into());
        event.insert("data_processing_options_state".into(), 0.into());
    }

    let mut body = Map::new();
    body.insert("data".into(), json!([Value::Object(event)]));
    body.insert("access_token".into(), access_token.into());
    put(
        &mut body,
        "test_event_code",
        clean(&settings.shared.test_event_code),
    );
    Ok(Request {
        url: format!("{base}/{GRAPH_VERSION}/{pixel}/events"),
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: Value::Object(body),
        oauth: None,
    })
}

/// The event id Meta deduplicates server and browser events by: the Postback event id, or the
/// order id when the connection says the pixel sends that (and the event has one).
pub(super) fn event_id(settings: &Settings, c: &Conversion) -> String {
    match clean(&settings.shared.event_id_source).as_deref() {
        Some("orderId") => clean(&c.order_id).unwrap_or_else(|| c.event_id.clone()),
        _ => c.event_id.clone(),
    }
}

fn user_data(c: &Conversion) -> Map<String, Value> {
    let hashed = |v: Option<String>| v.map(|v| json!([sha256_hex(&v)]));
    let opt = |v: &Option<String>, f: fn(&str) -> Option<String>| v.as_deref().and_then(f);
    let mut u = Map::new();
    put(&mut u, "em", hashed(normalize_email(&c.email)));
    put(&mut u, "ph", hashed(c.phone_digits()));
    put(&mut u, "fn", hashed(opt(&c.first_name, normalize_name)));
    put(&mut u, "ln", hashed(opt(&c.last_name, normalize_name)));
    put(&mut u, "ct", hashed(opt(&c.city, normalize_city)));
    put(&mut u, "st", hashed(opt(&c.state_code, normalize_code)));
    put(
        &mut u,
        "country",
        hashed(opt(&c.country_code, normalize_code)),
    );
    // external_id: "hashing recommended", any unique id of the person; fbp: the _fbp cookie,
    // "do not hash" (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters#external-id,
    // …#fbp). The id is hashed as given (trimmed), as the pixel's external_id must be for the two
    // to match.
    put(&mut u, "external_id", hashed(clean(&c.external_id)));
    put(&mut u, "fbp", clean(&c.fbp));
    put(&mut u, "client_ip_address", clean(&c.ip));
    put(&mut u, "client_user_agent", clean(&c.user_agent));
    if let Some(fbclid) = clean(&c.click.fbclid) {
        // fb.<subdomain index>.<creation time in ms>.<fbclid>, the click id unchanged.
        let at = c.click.clicked_at.unwrap_or(c.occurred_at);
        u.insert(
            "fbc".into(),
            format!("fb.1.{}.{fbclid}", at.timestamp_millis()).into(),
        );
    }
    u
}

fn custom_data(c: &Conversion) -> Map<String, Value> {
    let mut d = Map::new();
    if let Some(value) = c.value() {
        d.insert("value".into(), value.into());
        put(&mut d, "currency", c.currency());
    }
    put(&mut d, "order_id", clean(&c.order_id));
    let contents: Vec<Value> = c
        .products
        .iter()
        .filter_map(|p| {
            let mut item = Map::new();
            item.insert("id".into(), clean(&p.id)?.into());
            if p.quantity.is_finite() && p.quantity > 0.0 {
                item.insert("quantity".into(), number(p.quantity));
            }
            put(&mut item, "item_price", p.price.filter(|v| v.is_finite()));
            Some(Value::Object(item))
        })
        .collect();
    if !contents.is_empty() {
        d.insert("contents".into(), contents.into());
        d.insert("content_type".into(), "product".into());
    }
    let items: f64 = c
        .products
        .iter()
        .map(|p| p.quantity)
        .filter(|q| q.is_finite() && *q > 0.0)
        .sum();
    if items > 0.0 {
        d.insert("num_items".into(), number(items.round()));
    }
    d
}

fn interpret(status: u16, body: &str, json: Option<&Value>) -> Answer {
    let error = json.and_then(|j| j.get("error"));
    let message = error.map(|e| {
        let text = str_at(Some(e), "/error_user_msg")
            .or_else(|| str_at(Some(e), "/message"))
            .unwrap_or("unknown error");
        match e.get("code").and_then(Value::as_i64) {
            Some(code) => format!("{text} (code {code})"),
            None => text.to_owned(),
        }
    });
    let transient = error.is_some_and(|e| {
        e.get("is_transient").and_then(Value::as_bool) == Some(true)
            || e.get("code")
                .and_then(Value::as_i64)
                .is_some_and(|code| RETRY_CODES.contains(&code))
    });
    // Code 190, OAuthException: "Invalid OAuth 2.0 Access Token" (expired, revoked, password
    // changed; https://developers.facebook.com/docs/graph-api/guides/error-handling).
    let token_refused = error.is_some_and(|e| e.get("code").and_then(Value::as_i64) == Some(190));
    match (status, message) {
        (400..=499, Some(m)) if token_refused => Answer::Unauthorized(format!("HTTP {status}: {m}")),
        (200..=299, None) => Answer::Accepted,
        (200..=299, Some(m)) => Answer::Rejected(m),
        (400..=499, Some(m)) if transient && status != 429 => {
            Answer::Retry(format!("HTTP {status}: {m}"))
        }
        (_, m) => by_status(status, m, body),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{build, interpret, Platform};
    use super::*;

    const BASE: &str = "https://graph.facebook.com";

    #[test]
    fn request_with_click() {
        let r = build(
            Platform::Meta,
            BASE,
            &settings(),
            &credentials(),
            &with_click(),
        )
        .unwrap();
        insta::assert_json_snapshot!("meta_with_click", as_json(&r));
    }

    #[test]
    fn request_without_click() {
        let s = {
            let mut s = settings();
            s.shared.test_event_code = None;
            s
        };
        let r = build(Platform::Meta, BASE, &s, &credentials(), &without_click()).unwrap();
        insta::assert_json_snapshot!("meta_without_click", as_json(&r));
    }

    #[test]
    fn request_details() {
        let mut c = with_click();
        let r = build(
            Platform::Meta,
            "http://127.0.0.1:9",
            &settings(),
            &credentials(),
            &c,
        )
        .unwrap();
        assert_eq!(r.url, "http://127.0.0.1:9/v26.0/1234567890123456/events");
        let e = &r.body["data"][0];
        assert_eq!(e["event_time"], 1773500966);
        let u = &e["user_data"];
        assert_eq!(u["em"][0], sha256_hex("jane.doe@example.com"));
        // Meta: digits with country code, no '+'.
        assert_eq!(u["ph"][0], sha256_hex("14155550132"));
        assert_eq!(u["fn"][0], sha256_hex("jane"));
        assert_eq!(u["ln"][0], sha256_hex("oconnor"));
        assert_eq!(u["ct"][0], sha256_hex("sanfrancisco"));
        assert_eq!(u["st"][0], sha256_hex("ca"));
        assert_eq!(u["country"][0], sha256_hex("us"));
        // The click time in ms and the fbclid as it came.
        assert_eq!(u["fbc"], "fb.1.1773496923000.IwAR2F4-test-fbclid");
        // The browser id as it is, the customer's id hashed.
        assert_eq!(u["fbp"], "fb.1.1773496923000.1116446470");
        assert_eq!(u["external_id"][0], sha256_hex("CRM-4711"));
        assert_eq!(r.body["test_event_code"], "TEST12345");

        // No click time: the event's.
        c.click.clicked_at = None;
        let r = build(Platform::Meta, BASE, &settings(), &credentials(), &c).unwrap();
        assert_eq!(
            r.body["data"][0]["user_data"]["fbc"],
            "fb.1.1773500966000.IwAR2F4-test-fbclid"
        );
    }

    #[test]
    fn answers() {
        let m = |status, body| interpret(Platform::Meta, status, body);
        assert_eq!(
            m(
                200,
                r#"{"events_received":1,"messages":[],"fbtrace_id":"AbC"}"#
            ),
            Answer::Accepted
        );
        let token = r#"{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190,"fbtrace_id":"AbC"}}"#;
        assert_eq!(
            m(400, token),
            Answer::Unauthorized(
                "HTTP 400: Invalid OAuth access token - Cannot parse access token (code 190)"
                    .into()
            )
        );
        let param = r#"{"error":{"message":"Invalid parameter","type":"OAuthException","code":100,"error_subcode":2804003,"is_transient":false,"error_user_title":"Event Timestamp Too Old","error_user_msg":"The timestamp for this event is too far in the past.","fbtrace_id":"AbC"}}"#;
        assert_eq!(
            m(400, param),
            Answer::Rejected(
                "HTTP 400: The timestamp for this event is too far in the past. (code 100)".into()
            )
        );
        let limit = r#"{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","is_transient":true,"code":4,"fbtrace_id":"AbC"}}"#;
        assert_eq!(
            m(400, limit),
            Answer::Retry("HTTP 400: (#4) Application request limit reached (code 4)".into())
        );
        assert!(matches!(
            m(
                500,
                r#"{"error":{"message":"An unknown error occurred","code":1}}"#
            ),
            Answer::Retry(_)
        ));
        assert_eq!(
            m(403, "Forbidden"),
            Answer::Rejected("HTTP 403: Forbidden".into())
        );
    }
}
