//! Optional inbound fields only ad platforms use: `userAgent` and `sourceUrl` (the browser and
//! page of the conversion, for Meta's website events when no touch has them), `consent`
//! (`{"adUserData": "granted|denied", "adPersonalization": "granted|denied"}`, sent to Google),
//! and the visitor's ids the platforms match on: `fbp` (Meta's `_fbp` browser cookie), `ttp`
//! (TikTok's `_ttp` cookie) and `externalId` (the customer's own id for the person, e.g. a user
//! or loyalty id; sent hashed).
//! They are kept with the event's other extra fields (its payload) as sent; inbound parsing
//! checks them here, and deliveries read them back.

use serde_json::{Map, Value};

use super::{Consent, ConsentStatus};

/// Checks the fields when present; Err names the field.
pub fn check(obj: &Map<String, Value>) -> Result<(), String> {
    if let Some(v) = present(obj, "userAgent") {
        match v.as_str() {
            Some(s) if s.chars().count() <= 1000 => {}
            _ => return Err("userAgent must be a string of at most 1000 characters".into()),
        }
    }
    if let Some(v) = present(obj, "sourceUrl") {
        let ok = v.as_str().is_some_and(|s| {
            s.len() <= 2000
                && url::Url::parse(s.trim()).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        });
        if !ok {
            return Err("sourceUrl must be an http(s) URL of at most 2000 characters".into());
        }
    }
    // `_fbp`: "fb.{subdomain index}.{creation time}.{random number}"
    // (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/fbp-and-fbc).
    if let Some(v) = present(obj, "fbp") {
        if !v.as_str().is_some_and(is_fbp) {
            return Err(
                "fbp must be the _fbp cookie's value, such as fb.1.1596403881668.1116446470".into(),
            );
        }
    }
    for key in ["ttp", "externalId"] {
        if let Some(v) = present(obj, key) {
            let ok = v.as_str().is_some_and(|s| {
                let s = s.trim();
                !s.is_empty() && s.len() <= 500 && !s.chars().any(char::is_control)
            });
            if !ok {
                return Err(format!("{key} must be a string of 1 to 500 characters"));
            }
        }
    }
    if let Some(v) = present(obj, "consent") {
        let Some(c) = v.as_object() else {
            return Err(
                "consent must be an object such as {\"adUserData\": \"granted\", \"adPersonalization\": \"denied\"}"
                    .into(),
            );
        };
        for (k, v) in c {
            if !matches!(k.as_str(), "adUserData" | "adPersonalization") {
                return Err(format!(
                    "consent.{k} is not known: consent takes adUserData and adPersonalization"
                ));
            }
            if !v.is_null() && status(v).is_none() {
                return Err(format!("consent.{k} must be \"granted\" or \"denied\""));
            }
        }
    }
    Ok(())
}

/// `fb.<digit>.<digits>.<id>`: four dot-separated parts, the version "fb", a subdomain index,
/// a creation time in milliseconds and the browser's id.
fn is_fbp(s: &str) -> bool {
    let s = s.trim();
    let parts: Vec<&str> = s.splitn(4, '.').collect();
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    s.len() <= 200
        && parts.len() == 4
        && parts[0] == "fb"
        && digits(parts[1])
        && digits(parts[2])
        && !parts[3].is_empty()
        && parts[3]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The visitor's ids a stored event carries (inbound `fbp`, `ttp`, `externalId`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitorIds {
    pub fbp: Option<String>,
    pub ttp: Option<String>,
    pub external_id: Option<String>,
}

/// The visitor's ids of a stored event's payload.
pub fn read_ids(payload: &Value) -> VisitorIds {
    let text = |k: &str| {
        payload
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    VisitorIds {
        fbp: text("fbp"),
        ttp: text("ttp"),
        external_id: text("externalId"),
    }
}

fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn status(v: &Value) -> Option<ConsentStatus> {
    match v.as_str()?.trim().to_ascii_lowercase().as_str() {
        "granted" => Some(ConsentStatus::Granted),
        "denied" => Some(ConsentStatus::Denied),
        _ => None,
    }
}

/// What a stored event's payload says: (user agent, source URL, consent).
pub fn read(payload: &Value) -> (Option<String>, Option<String>, Consent) {
    let text = |k: &str| {
        payload
            .get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let consent = payload.get("consent");
    let of = |k: &str| consent.and_then(|c| c.get(k)).and_then(status);
    (
        text("userAgent"),
        text("sourceUrl"),
        Consent {
            ad_user_data: of("adUserData"),
            ad_personalization: of("adPersonalization"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn checks_name_the_field() {
        assert!(check(&obj(json!({}))).is_ok());
        assert!(check(&obj(json!({"userAgent": "Mozilla/5.0", "sourceUrl": "https://shop.example/p",
                                   "consent": {"adUserData": "GRANTED", "adPersonalization": "denied"}})))
        .is_ok());
        assert!(check(&obj(json!({"userAgent": 5})))
            .unwrap_err()
            .starts_with("userAgent"));
        assert!(check(&obj(json!({"sourceUrl": "javascript:alert(1)"})))
            .unwrap_err()
            .starts_with("sourceUrl"));
        assert!(check(&obj(json!({"consent": "yes"})))
            .unwrap_err()
            .starts_with("consent must be an object"));
        assert_eq!(
            check(&obj(json!({"consent": {"adUserData": "maybe"}}))).unwrap_err(),
            "consent.adUserData must be \"granted\" or \"denied\""
        );
        assert!(check(&obj(json!({"consent": {"analytics": "granted"}})))
            .unwrap_err()
            .starts_with("consent.analytics is not known"));
    }

    #[test]
    fn visitor_ids() {
        assert!(check(&obj(
            json!({"fbp": "fb.1.1596403881668.1116446470", "ttp": "2F7h37YkS1j57AYSKTI7IHhJPYH",
                                   "externalId": "crm-4711"})
        ))
        .is_ok());
        for bad in [
            json!("fb.1.abc.1"),
            json!("1596403881668"),
            json!("fb.1.1596403881668."),
            json!(5),
        ] {
            assert!(
                check(&obj(json!({ "fbp": bad })))
                    .unwrap_err()
                    .starts_with("fbp must be"),
                "{bad}"
            );
        }
        assert_eq!(
            check(&obj(json!({"externalId": " "}))).unwrap_err(),
            "externalId must be a string of 1 to 500 characters"
        );
        assert_eq!(
            check(&obj(json!({"ttp": "x".repeat(501)}))).unwrap_err(),
            "ttp must be a string of 1 to 500 characters"
        );
        let ids = read_ids(&json!({"fbp": " fb.1.2.3 ", "externalId": "crm-4711"}));
        assert_eq!(ids.fbp.as_deref(), Some("fb.1.2.3"));
        assert_eq!(ids.ttp, None);
        assert_eq!(ids.external_id.as_deref(), Some("crm-4711"));
    }

    #[test]
    fn reads_what_was_kept() {
        let (ua, url, consent) = read(
            &json!({"userAgent": " UA ", "sourceUrl": "https://s.example/",
                                               "consent": {"adUserData": "Denied"}}),
        );
        assert_eq!(ua.as_deref(), Some("UA"));
        assert_eq!(url.as_deref(), Some("https://s.example/"));
        assert_eq!(consent.ad_user_data, Some(ConsentStatus::Denied));
        assert_eq!(consent.ad_personalization, None);
        assert_eq!(read(&json!({})).2, Consent::default());
    }
}
