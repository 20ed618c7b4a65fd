//! Google's Data Manager API, the default transport of Google Ads connections:
//! `POST https://datamanager.googleapis.com/v1/events:ingest`
//! (https://developers.google.com/data-manager/api/reference/rest/v1/events/ingest).
//!
//! The request: `destinations` (the Google Ads account as `operatingAccount {accountType:
//! GOOGLE_ADS, accountId}`, a manager account as `loginAccount`, the conversion action as
//! `productDestinationId`), `events` (at most 2,000 per request), `encoding: HEX` (required when
//! user data is sent: identifiers are hex SHA-256), `consent` per event. Each Event: required
//! `eventTimestamp` (RFC 3339), `transactionId`, `adIdentifiers {gclid | gbraid | wbraid}`,
//! `userData.userIdentifiers` (`emailAddress`, `phoneNumber`, hashed after Google's
//! normalisation, https://developers.google.com/data-manager/api/devguides/concepts/formatting),
//! `conversionValue`, `currency`, `eventSource: WEB`. No developer token: the OAuth token
//! (scope `https://www.googleapis.com/auth/datamanager`) is the only credential.
//!
//! The API answers `{"requestId": …}` and processes the events asynchronously; errors found up
//! front come back as a `google.rpc.Status` (400 INVALID_ARGUMENT …) like the Ads API's.

use serde_json::{json, Map, Value};

use super::normalize::{hashed_google_email, sha256_hex};
use super::{clean, customer_digits, is_digits, oauth, put, Conversion, Credentials};
use super::{Request, Settings};

pub(super) fn build(
    base: &str,
    settings: &Settings,
    credentials: &Credentials,
    c: &Conversion,
) -> Result<Request, String> {
    let customer = customer_digits(&settings.googleads.customer_id)
        .filter(|id| !id.is_empty())
        .ok_or("Google Ads needs a customer id")?;
    let refresh_token = clean(&credentials.googleads.refresh_token);
    let access_token = clean(&credentials.shared.access_token);
    if refresh_token.is_none() && access_token.is_none() {
        return Err("Google Ads needs a refresh token (connect Google Ads again)".into());
    }
    let action = match c.event_name.trim() {
        "" => clean(&settings.googleads.conversion_action)
            .ok_or("Google Ads needs a conversion action")?,
        a => a.to_owned(),
    };
    let action = action.rsplit('/').next().unwrap_or_default().to_owned();
    if !is_digits(&action) {
        return Err(format!(
            "Google Ads needs a conversion action id (digits), not \"{action}\""
        ));
    }

    let mut destination = Map::new();
    destination.insert(
        "operatingAccount".into(),
        json!({"accountType": "GOOGLE_ADS", "accountId": customer}),
    );
    if let Some(login) =
        customer_digits(&settings.googleads.login_customer_id).filter(|l| !l.is_empty())
    {
        destination.insert(
            "loginAccount".into(),
            json!({"accountType": "GOOGLE_ADS", "accountId": login}),
        );
    }
    destination.insert("productDestinationId".into(), action.into());

    let mut event = Map::new();
    event.insert(
        "eventTimestamp".into(),
        c.occurred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .into(),
    );
    put(&mut event, "transactionId", clean(&c.order_id));
    let click = &c.click;
    // One click id: gclid, else gbraid, else wbraid.
    if let Some((key, id)) = [
        ("gclid", &click.gclid),
        ("gbraid", &click.gbraid),
        ("wbraid", &click.wbraid),
    ]
    .into_iter()
    .find_map(|(key, v)| clean(v).map(|id| (key, id)))
    {
        event.insert("adIdentifiers".into(), json!({ key: id }));
    }
    let mut identifiers = Vec::new();
    if let Some(h) = hashed_google_email(&c.email) {
        identifiers.push(json!({ "emailAddress": h }));
    }
    if let Some(digits) = c.phone_digits() {
        identifiers.push(json!({ "phoneNumber": sha256_hex(&format!("+{digits}")) }));
    }
    if !identifiers.is_empty() {
        event.insert("userData".into(), json!({ "userIdentifiers": identifiers }));
    }
    if let Some(value) = c.value() {
        event.insert("conversionValue".into(), value.into());
        put(&mut event, "currency", c.currency());
    }
    event.insert("eventSource".into(), "WEB".into());
    // Consent: CONSENT_GRANTED / CONSENT_DENIED
    // (https://developers.google.com/data-manager/api/reference/rest/v1/Consent).
    let (user_data, personalization) = super::googleads::consent_statuses(c);
    let mut consent = Map::new();
    put(
        &mut consent,
        "adUserData",
        user_data.map(|s| format!("CONSENT_{s}")),
    );
    put(
        &mut consent,
        "adPersonalization",
        personalization.map(|s| format!("CONSENT_{s}")),
    );
    if !consent.is_empty() {
        event.insert("consent".into(), Value::Object(consent));
    }

    let mut headers = Vec::new();
    let oauth = match refresh_token {
        Some(refresh_token) => Some(oauth::Grant { refresh_token }),
        None => {
            let token = access_token.unwrap_or_default();
            headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
            None
        }
    };
    headers.push(("content-type".to_owned(), "application/json".to_owned()));
    Ok(Request {
        url: format!("{base}/v1/events:ingest"),
        headers,
        body: json!({
            "destinations": [Value::Object(destination)],
            "events": [Value::Object(event)],
            "encoding": "HEX",
        }),
        oauth,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{build, Consent, ConsentStatus, Platform};
    use super::*;

    fn dm_settings() -> Settings {
        {
            let mut s = settings();
            s.googleads.transport = Some("datamanager".into());
            s
        }
    }

    #[test]
    fn ingest_request() {
        let mut c = with_click();
        c.event_name = String::new();
        c.email = "Cloudy.SF+shop@googlemail.com".into();
        c.consent = Consent {
            ad_user_data: Some(ConsentStatus::Granted),
            ad_personalization: Some(ConsentStatus::Denied),
        };
        let creds = {
            let mut s = Credentials::default();
            s.googleads.refresh_token = Some("1//rt".into());
            s.shared.access_token = None;
            s.googleads.developer_token = None;
            s
        };
        let r = build(
            Platform::GoogleAds,
            "https://googleads.googleapis.com",
            &dm_settings(),
            &creds,
            &c,
        )
        .unwrap();
        // The Data Manager endpoint, not the Ads API root.
        assert_eq!(r.url, "https://datamanager.googleapis.com/v1/events:ingest");
        assert!(r.headers.iter().all(|(k, _)| k != "developer-token"));
        assert_eq!(r.oauth.as_ref().unwrap().refresh_token, "1//rt");
        let b = &r.body;
        assert_eq!(b["encoding"], "HEX");
        assert_eq!(
            b["destinations"][0],
            json!({"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
                   "loginAccount": {"accountType": "GOOGLE_ADS", "accountId": "9876543210"},
                   "productDestinationId": "555000111"})
        );
        let e = &b["events"][0];
        assert_eq!(e["eventTimestamp"], "2026-03-14T15:09:26Z");
        assert_eq!(e["transactionId"], "ORD-1001");
        assert_eq!(e["adIdentifiers"], json!({"gclid": "Cj0KCQiA-test-gclid"}));
        assert_eq!(
            e["userData"]["userIdentifiers"][0]["emailAddress"],
            sha256_hex("cloudysf@googlemail.com")
        );
        assert_eq!(
            e["userData"]["userIdentifiers"][1]["phoneNumber"],
            sha256_hex("+14155550132")
        );
        assert_eq!(e["conversionValue"], 49.99);
        assert_eq!(e["currency"], "USD");
        assert_eq!(e["eventSource"], "WEB");
        assert_eq!(
            e["consent"],
            json!({"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_DENIED"})
        );
        assert!(!r.body.to_string().contains("cloudy"), "no plaintext email");
    }

    #[test]
    fn transport_choice() {
        let mut c = without_click();
        c.event_name = String::new();
        // Saved before the choice existed: the Ads API, as before.
        let legacy = {
            let mut s = settings();
            s.googleads.transport = None;
            s
        };
        let r = build(Platform::GoogleAds, "http://x", &legacy, &credentials(), &c).unwrap();
        assert!(r.url.ends_with(":uploadClickConversions"), "{}", r.url);
        // New connections default to the Data Manager API, which needs no developer token.
        let saved = super::super::validate(
            Platform::GoogleAds,
            &{
                let mut s = settings();
                s.googleads.transport = None;
                s
            },
            &{
                let mut s = Credentials::default();
                s.googleads.refresh_token = Some("1//rt".into());
                s
            },
            true,
        )
        .unwrap();
        assert_eq!(saved.googleads.transport.as_deref(), Some("datamanager"));
        let ads = super::super::validate(
            Platform::GoogleAds,
            &{
                let mut s = settings();
                s.googleads.transport = Some("adsapi".into());
                s
            },
            &{
                let mut s = Credentials::default();
                s.googleads.refresh_token = Some("1//rt".into());
                s
            },
            true,
        );
        assert_eq!(
            ads.unwrap_err(),
            "credentials.developerToken is required for Google Ads"
        );
        let bad = super::super::validate(
            Platform::GoogleAds,
            &{
                let mut s = settings();
                s.googleads.transport = Some("ftp".into());
                s
            },
            &credentials(),
            true,
        );
        assert_eq!(
            bad.unwrap_err(),
            "settings.transport must be datamanager or adsapi"
        );
    }
}
