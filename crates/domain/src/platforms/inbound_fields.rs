//! Optional inbound fields only ad platforms use: `userAgent` and `sourceUrl` (the browser and
//! page of the conversion, for Meta's website events when no touch has them) and `consent`
//! (`{"adUserData": "granted|denied", "adPersonalization": "granted|denied"}`, sent to Google).
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
