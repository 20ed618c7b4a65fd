//! TikTok Events API 2.0: `POST /open_api/v1.3/event/track/` with the `Access-Token` header,
//! one web event for the pixel (`event_source: "web"`, `event_source_id` = pixel code). Email
//! and phone go as SHA-256 of the normalised value (the phone in E.164, with its '+'); the
//! click id, IP address and user agent go as they are. TikTok answers HTTP 200 with a `code`:
//! 0 is success, anything else an error.

use serde_json::{json, Map, Value};

use super::normalize::{hashed_email, sha256_hex};
use super::adapter::{Adapter, Endpoint, FieldSpec, SecretSpec};
use super::{by_status, clean, event_id_source, is_alnum, number, put, str_at, test_event_code};
use super::{Answer, Click, Conversion, Credentials, Request, Settings};

/// The Events API path under the API root.
pub const TRACK_PATH: &str = "/open_api/v1.3/event/track/";

/// TikTok's "too many requests" code (QPS/QPM/QPD limits).
const RATE_LIMIT_CODES: &[i64] = &[40100];

/// TikTok's settings of a connection (part of the flat [`Settings`] object).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct TikTokSettings {
    /// TikTok pixel code (letters/digits).
    pub pixel_code: Option<String>,
}

/// TikTok's own credentials: none beyond the shared `accessToken`.
#[derive(Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct TikTokCredentials {}

pub(super) struct TikTok;

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        env: "POSTBACK_TIKTOK_URL",
        default: "https://business-api.tiktok.com",
        about: "TikTok Business API root",
    },
    Endpoint {
        env: "POSTBACK_TIKTOK_AUTH_URL",
        default: "https://business-api.tiktok.com/portal/auth",
        about: "TikTok for Business authorization page (Connect TikTok)",
    },
];

/// TikTok's codes for an access token that is missing, expired, or incorrect/revoked ("Return
/// codes", https://business-api.tiktok.com/portal/docs?id=1737172488964097: 40102 "Access token
/// has expired", 40104 "Access token is empty", 40105 "Access token is incorrect or has been
/// revoked"): the connection needs reconnecting, so deliveries are held, not failed.
const TOKEN_CODES: &[i64] = &[40102, 40104, 40105];

const FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "pixel_code",
        label: "Pixel code",
        hint: "",
        required: true,
        get: |s| &s.tiktok.pixel_code,
        set: |s, v| s.tiktok.pixel_code = v,
    },
    FieldSpec {
        name: "test_event_code",
        label: "Test event code",
        hint: "From Events Manager › Test events.",
        required: false,
        get: |s| &s.shared.test_event_code,
        set: |s, v| s.shared.test_event_code = v,
    },
    FieldSpec {
        name: "event_id_source",
        label: "Event ID",
        hint: "event (Postback's event id, default) or orderId (the order id, as your pixel sends it) so TikTok deduplicates server and browser events.",
        required: false,
        get: |s| &s.shared.event_id_source,
        set: |s, v| s.shared.event_id_source = v,
    },
];

const SECRETS: &[SecretSpec] = &[SecretSpec {
    name: "access_token",
    key: "accessToken",
    label: "Events API access token",
    set: |c, v| c.shared.access_token = v,
}];

impl Adapter for TikTok {
    fn name(&self) -> &'static str {
        "tiktok"
    }

    fn label(&self) -> &'static str {
        "TikTok"
    }

    fn endpoints(&self) -> &'static [Endpoint] {
        ENDPOINTS
    }

    fn app(&self) -> Option<super::oauth::AppSettings> {
        Some(super::oauth::AppSettings {
            id_env: "POSTBACK_TIKTOK_APP_ID",
            secret_env: "POSTBACK_TIKTOK_APP_SECRET",
            token_env: None,
            developer_token_env: None,
        })
    }

    /// TikTok: the picked pixel replaces the connection's pixel; its other settings stay as
    /// they were. The access token is the credential.
    fn picked(
        &self,
        mut stored: Settings,
        _advertiser: &str,
        pixel: &str,
        token: String,
    ) -> (Settings, Credentials) {
        stored.tiktok.pixel_code = Some(pixel.to_owned());
        let mut credentials = Credentials::default();
        credentials.shared.access_token = Some(token);
        (stored, credentials)
    }
    fn connect(&self) -> Option<super::adapter::ConnectSpec> {
        Some(super::adapter::ConnectSpec {
            authorize_env: "POSTBACK_TIKTOK_AUTH_URL",
            // Permissions are chosen when the app is registered (Events API access: "Pixel
            // Management" / "Measurement"), not asked for in the URL.
            scopes: "",
            what: "the TikTok advertiser and the pixel",
            legend: "Advertiser › pixel",
            none_found: "The authorized TikTok advertisers have no pixel to send to: create one in Events Manager, then connect again.",
            exchange: super::tiktok_connect::exchange,
            lists: super::tiktok_connect::lists,
        })
    }

    fn event_name(&self, key: &str, given: &str) -> String {
        // TikTok's standard events
        // (https://business-api.tiktok.com/portal/docs?id=1771101186666498).
        let standard = match key {
            "purchase" => "CompletePayment",
            "lead" => "SubmitForm",
            "signup" | "sign_up" | "complete_registration" | "registration" => {
                "CompleteRegistration"
            }
            "add_to_cart" => "AddToCart",
            "initiate_checkout" | "checkout" => "InitiateCheckout",
            "subscribe" => "Subscribe",
            "contact" => "Contact",
            "add_payment_info" => "AddPaymentInfo",
            _ => return given.to_owned(),
        };
        standard.to_owned()
    }

    fn validate(&self, settings: &Settings, out: &mut Settings) -> Result<(), String> {
        let code = clean(&settings.tiktok.pixel_code);
        match &code {
            Some(c) if c.len() <= 64 && is_alnum(c) => {}
            _ => {
                return Err(
                    "settings.pixelCode must be a TikTok pixel code (letters and digits)".into(),
                )
            }
        }
        out.tiktok.pixel_code = code;
        out.shared.test_event_code = test_event_code(settings)?;
        out.shared.event_id_source = event_id_source(settings)?;
        Ok(())
    }

    fn require_credentials(&self, credentials: &Credentials) -> Result<(), String> {
        match clean(&credentials.shared.access_token) {
            Some(_) => Ok(()),
            None => Err("credentials.accessToken is required for TikTok".into()),
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

    /// Events API 2.0 (`/event/track/`): up to 1,000 events in `data` per request
    /// (https://business-api.tiktok.com/portal/docs?id=1771100865818625).
    fn batch_limit(&self, _request: &Request) -> Option<(&'static str, usize)> {
        Some(("data", 1000))
    }

    /// HTTP 429, or TikTok's rate-limit code in a 200 answer.
    fn throttled(&self, status: u16, json: Option<&Value>) -> bool {
        status == 429
            || json
                .and_then(|j| j.get("code"))
                .and_then(Value::as_i64)
                .is_some_and(|c| RATE_LIMIT_CODES.contains(&c))
    }

    fn has_click(&self, click: &Click) -> bool {
        click.ttclid.is_some()
    }

    fn sample_click(&self, click: &mut Click) {
        click.ttclid = Some("TEST-TTCLID".into());
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
    let pixel = clean(&settings.tiktok.pixel_code).ok_or("TikTok needs a pixel code")?;
    let access_token = clean(&credentials.shared.access_token).ok_or("TikTok needs an access token")?;

    let mut event = Map::new();
    event.insert("event".into(), c.event_name.trim().into());
    event.insert("event_time".into(), c.occurred_at.timestamp().into());
    event.insert("event_id".into(), super::meta::event_id(settings, c).into());

    let mut user = Map::new();
    put(&mut user, "email", hashed_email(&c.email));
    put(
        &mut user,
        "phone",
        c.phone_digits().map(|d| sha256_hex(&format!("+{d}"))),
    );
    // external_id: "must be hashed with SHA-256"; ttp: the _ttp cookie's id, as it is
    // (https://business-api.tiktok.com/portal/docs?id=1771101303285761, `user`).
    put(
        &mut user,
        "external_id",
        clean(&c.external_id).map(|id| sha256_hex(&id)),
    );
    put(&mut user, "ttp", clean(&c.ttp));
    put(&mut user, "ttclid", clean(&c.click.ttclid));
    put(&mut user, "ip", clean(&c.ip));
    put(&mut user, "user_agent", clean(&c.user_agent));
    if !user.is_empty() {
        event.insert("user".into(), Value::Object(user));
    }

    let properties = properties(c);
    if !properties.is_empty() {
        event.insert("properties".into(), Value::Object(properties));
    }

    let mut page = Map::new();
    put(
        &mut page,
        "url",
        clean(&c.click.landing_page).or_else(|| clean(&c.source_url)),
    );
    put(&mut page, "referrer", clean(&c.click.referrer));
    if !page.is_empty() {
        event.insert("page".into(), Value::Object(page));
    }

    let mut body = Map::new();
    body.insert("event_source".into(), "web".into());
    body.insert("event_source_id".into(), pixel.into());
    body.insert("data".into(), json!([Value::Object(event)]));
    put(
        &mut body,
        "test_event_code",
        clean(&settings.shared.test_event_code),
    );
    Ok(Request {
        url: format!("{base}{TRACK_PATH}"),
        headers: vec![
            ("Access-Token".to_owned(), access_token),
            ("content-type".to_owned(), "application/json".to_owned()),
        ],
        body: Value::Object(body),
        oauth: None,
    })
}

fn properties(c: &Conversion) -> Map<String, Value> {
    let mut p = Map::new();
    if let Some(value) = c.value() {
        p.insert("value".into(), value.into());
        put(&mut p, "currency", c.currency());
    }
    put(&mut p, "order_id", clean(&c.order_id));
    let contents: Vec<Value> = c
        .products
        .iter()
        .map(|item| {
            let mut o = Map::new();
            put(&mut o, "content_id", clean(&item.id));
            put(
                &mut o,
                "content_name",
                Some(item.name.trim()).filter(|n| !n.is_empty()),
            );
            if item.quantity.is_finite() && item.quantity > 0.0 {
                // TikTok's quantity is a whole number of items
                // (https://business-api.tiktok.com/portal/docs?id=1771101151059969,
                // `contents[].quantity`): a fraction is rounded up rather than refused.
                o.insert("quantity".into(), number(item.quantity.ceil()));
            }
            put(&mut o, "price", item.price.filter(|v| v.is_finite()));
            Value::Object(o)
        })
        .filter(|o| o.as_object().is_some_and(|o| !o.is_empty()))
        .collect();
    if !contents.is_empty() {
        p.insert("content_type".into(), "product".into());
        p.insert("contents".into(), contents.into());
    }
    p
}

fn interpret(status: u16, body: &str, json: Option<&Value>) -> Answer {
    let code = json.and_then(|j| j.get("code")).and_then(Value::as_i64);
    let message = str_at(json, "/message");
    let described = |code: i64| match message {
        Some(m) => format!("TikTok code {code}: {m}"),
        None => format!("TikTok code {code}"),
    };
    if !(200..300).contains(&status) {
        return by_status(status, code.map(described), body);
    }
    match code {
        None | Some(0) => Answer::Accepted,
        // Rate limits, and TikTok's own "system error, try later" range.
        Some(c) if RATE_LIMIT_CODES.contains(&c) || (50000..60000).contains(&c) => {
            Answer::Retry(described(c))
        }
        Some(c) if TOKEN_CODES.contains(&c) => Answer::Unauthorized(described(c)),
        Some(c) => Answer::Rejected(described(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{build, interpret, Platform};
    use super::*;

    const BASE: &str = "https://business-api.tiktok.com";

    #[test]
    fn request_with_click() {
        let mut c = with_click();
        c.event_name = "CompletePayment".into();
        let r = build(Platform::TikTok, BASE, &settings(), &credentials(), &c).unwrap();
        insta::assert_json_snapshot!("tiktok_with_click", as_json(&r));
    }

    #[test]
    fn request_without_click() {
        let s = {
            let mut s = settings();
            s.shared.test_event_code = None;
            s
        };
        let mut c = without_click();
        c.event_name = "SubmitForm".into();
        let r = build(Platform::TikTok, BASE, &s, &credentials(), &c).unwrap();
        insta::assert_json_snapshot!("tiktok_without_click", as_json(&r));
    }

    #[test]
    fn request_details() {
        let r = build(
            Platform::TikTok,
            "http://127.0.0.1:9",
            &settings(),
            &credentials(),
            &with_click(),
        )
        .unwrap();
        assert_eq!(r.url, "http://127.0.0.1:9/open_api/v1.3/event/track/");
        assert_eq!(
            r.headers[0],
            ("Access-Token".to_owned(), "test-access-token".to_owned())
        );
        assert_eq!(r.body["event_source"], "web");
        assert_eq!(r.body["event_source_id"], "C4TESTPIXEL0000000AB");
        let e = &r.body["data"][0];
        assert_eq!(e["event_time"], 1773500966);
        assert_eq!(e["user"]["email"], sha256_hex("jane.doe@example.com"));
        assert_eq!(e["user"]["phone"], sha256_hex("+14155550132"));
        assert_eq!(e["user"]["ttclid"], "E.C.P.test-ttclid");
        assert_eq!(e["user"]["ttp"], "2F7h37YkS1j57AYSKTI7IHhJPYH");
        assert_eq!(e["user"]["external_id"], sha256_hex("CRM-4711"));
        assert!(r.body.get("access_token").is_none());
    }

    #[test]
    fn answers() {
        let t = |status, body| interpret(Platform::TikTok, status, body);
        assert_eq!(
            t(
                200,
                r#"{"code":0,"message":"OK","request_id":"2026","data":{}}"#
            ),
            Answer::Accepted
        );
        assert_eq!(
            t(
                200,
                r#"{"code":40002,"message":"Invalid event_source_id","request_id":"x"}"#
            ),
            Answer::Rejected("TikTok code 40002: Invalid event_source_id".into())
        );
        assert_eq!(
            t(
                200,
                r#"{"code":40105,"message":"Access token is incorrect or has been revoked."}"#
            ),
            Answer::Unauthorized(
                "TikTok code 40105: Access token is incorrect or has been revoked.".into()
            )
        );
        for code in [40102, 40104] {
            let body = format!(r#"{{"code":{code},"message":"Access token"}}"#);
            assert_eq!(
                interpret(Platform::TikTok, 200, &body),
                Answer::Unauthorized(format!("TikTok code {code}: Access token"))
            );
        }
        assert_eq!(
            t(200, r#"{"code":40100,"message":"Too many requests"}"#),
            Answer::Retry("TikTok code 40100: Too many requests".into())
        );
        assert_eq!(
            t(200, r#"{"code":50000,"message":"System error"}"#),
            Answer::Retry("TikTok code 50000: System error".into())
        );
        assert_eq!(
            t(400, r#"{"code":40001,"message":"No permission"}"#),
            Answer::Rejected("HTTP 400: TikTok code 40001: No permission".into())
        );
        assert!(matches!(t(502, "Bad Gateway"), Answer::Retry(m) if m == "HTTP 502: Bad Gateway"));
    }
}
