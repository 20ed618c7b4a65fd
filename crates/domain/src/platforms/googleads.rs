//! Google Ads API: `ConversionUploadService.UploadClickConversions` over REST,
//! `POST /{version}/customers/{customerId}:uploadClickConversions`. One `ClickConversion` per
//! request with the click id (gclid, else gbraid, else wbraid) and, as enhanced conversions for
//! leads, the SHA-256 of the normalised email and of the E.164 phone (with its '+').
//! `partialFailure` is always true: Google requires it for conversion uploads, and a failed
//! conversion then comes back in `partialFailureError` of a 200 response.

use serde_json::{json, Map, Value};

use super::normalize::{hashed_email, sha256_hex};
use super::{by_status, clean, customer_digits, put, str_at, Answer, Conversion, Credentials};
use super::{Request, Settings};

/// The Google Ads API version requests are sent to.
pub const API_VERSION: &str = "v26";

pub(super) fn build(
    base: &str,
    settings: &Settings,
    credentials: &Credentials,
    c: &Conversion,
) -> Result<Request, String> {
    let customer = customer_digits(&settings.customer_id)
        .filter(|id| !id.is_empty())
        .ok_or("Google Ads needs a customer id")?;
    let access_token =
        clean(&credentials.access_token).ok_or("Google Ads needs an access token")?;
    let developer_token =
        clean(&credentials.developer_token).ok_or("Google Ads needs a developer token")?;
    let action = match c.event_name.trim() {
        "" => clean(&settings.conversion_action).ok_or("Google Ads needs a conversion action")?,
        a => a.to_owned(),
    };
    let conversion_action = if action.starts_with("customers/") {
        action
    } else if super::is_digits(&action) {
        format!("customers/{customer}/conversionActions/{action}")
    } else {
        return Err(format!(
            "Google Ads needs a conversion action id (digits), not \"{action}\""
        ));
    };

    let mut conv = Map::new();
    let click = &c.click;
    let click_id = [
        ("gclid", &click.gclid),
        ("gbraid", &click.gbraid),
        ("wbraid", &click.wbraid),
    ]
    .into_iter()
    .find_map(|(key, v)| clean(v).map(|id| (key, id)));
    if let Some((key, id)) = click_id {
        conv.insert(key.into(), id.into());
    }
    conv.insert("conversionAction".into(), conversion_action.into());
    conv.insert(
        "conversionDateTime".into(),
        c.occurred_at
            .format("%Y-%m-%d %H:%M:%S+00:00")
            .to_string()
            .into(),
    );
    if let Some(value) = c.value() {
        conv.insert("conversionValue".into(), value.into());
        put(&mut conv, "currencyCode", c.currency());
    }
    put(&mut conv, "orderId", clean(&c.order_id));
    let mut identifiers = Vec::new();
    if let Some(h) = hashed_email(&c.email) {
        identifiers.push(json!({ "hashedEmail": h }));
    }
    if let Some(digits) = c.phone_digits() {
        identifiers.push(json!({ "hashedPhoneNumber": sha256_hex(&format!("+{digits}")) }));
    }
    if !identifiers.is_empty() {
        conv.insert("userIdentifiers".into(), identifiers.into());
    }

    let mut headers = vec![
        ("Authorization".to_owned(), format!("Bearer {access_token}")),
        ("developer-token".to_owned(), developer_token),
    ];
    if let Some(login) = customer_digits(&settings.login_customer_id).filter(|l| !l.is_empty()) {
        headers.push(("login-customer-id".to_owned(), login));
    }
    headers.push(("content-type".to_owned(), "application/json".to_owned()));
    Ok(Request {
        url: format!("{base}/{API_VERSION}/customers/{customer}:uploadClickConversions"),
        headers,
        body: json!({ "conversions": [Value::Object(conv)], "partialFailure": true }),
    })
}

pub(super) fn interpret(status: u16, body: &str, json: Option<&Value>) -> Answer {
    if (200..300).contains(&status) {
        return match json
            .and_then(|j| j.get("partialFailureError"))
            .and_then(error_message)
        {
            Some(why) => Answer::Rejected(why),
            None => Answer::Accepted,
        };
    }
    let message = json.and_then(|j| j.get("error")).and_then(error_message);
    by_status(status, message, body)
}

/// A `google.rpc.Status`'s message, with the messages of its `GoogleAdsFailure` details that
/// it does not already contain; None when it has neither (no error).
fn error_message(status: &Value) -> Option<String> {
    let main = str_at(Some(status), "/message");
    let details: Vec<&str> = status
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("errors").and_then(Value::as_array))
        .flatten()
        .filter_map(|e| str_at(Some(e), "/message"))
        .filter(|m| !main.is_some_and(|main| main.contains(m)))
        .collect();
    match (main, details.is_empty()) {
        (None, true) => None,
        (Some(m), true) => Some(m.to_owned()),
        (None, false) => Some(details.join("; ")),
        (Some(m), false) => Some(format!("{m} ({})", details.join("; "))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{build, interpret, Platform};
    use super::*;

    const BASE: &str = "https://googleads.googleapis.com";

    #[test]
    fn request_with_click() {
        let mut c = with_click();
        c.event_name = "987654321".into();
        let r = build(Platform::GoogleAds, BASE, &settings(), &credentials(), &c).unwrap();
        insta::assert_json_snapshot!("googleads_with_click", as_json(&r));
    }

    #[test]
    fn request_without_click() {
        let mut c = without_click();
        c.event_name = String::new();
        let s = Settings {
            login_customer_id: None,
            ..settings()
        };
        let r = build(Platform::GoogleAds, BASE, &s, &credentials(), &c).unwrap();
        insta::assert_json_snapshot!("googleads_without_click", as_json(&r));
    }

    #[test]
    fn request_details() {
        let mut c = with_click();
        c.event_name = String::new();
        let r = build(
            Platform::GoogleAds,
            "http://127.0.0.1:9/",
            &settings(),
            &credentials(),
            &c,
        )
        .unwrap();
        assert_eq!(
            r.url,
            "http://127.0.0.1:9/v26/customers/1234567890:uploadClickConversions"
        );
        let conv = &r.body["conversions"][0];
        // gclid wins over gbraid; only one click id is sent.
        assert_eq!(conv["gclid"], "Cj0KCQiA-test-gclid");
        assert!(conv.get("gbraid").is_none() && conv.get("wbraid").is_none());
        assert_eq!(conv["conversionDateTime"], "2026-03-14 15:09:26+00:00");
        // The mapped event name is the conversion action.
        assert_eq!(
            conv["conversionAction"],
            "customers/1234567890/conversionActions/555000111"
        );
        assert_eq!(r.body["partialFailure"], true);
        // The phone is hashed in E.164 with its '+'.
        assert_eq!(
            conv["userIdentifiers"][1]["hashedPhoneNumber"],
            sha256_hex("+14155550132")
        );
        assert_eq!(
            conv["userIdentifiers"][0]["hashedEmail"],
            sha256_hex("jane.doe@example.com")
        );

        c.click.gclid = None;
        c.click.gbraid = None;
        c.click.wbraid = Some("wb-1".into());
        c.event_name = "777".into();
        let r = build(Platform::GoogleAds, BASE, &settings(), &credentials(), &c).unwrap();
        let conv = &r.body["conversions"][0];
        assert_eq!(conv["wbraid"], "wb-1");
        assert_eq!(
            conv["conversionAction"],
            "customers/1234567890/conversionActions/777"
        );

        c.event_name = "Purchase".into();
        assert_eq!(
            build(Platform::GoogleAds, BASE, &settings(), &credentials(), &c).unwrap_err(),
            "Google Ads needs a conversion action id (digits), not \"Purchase\""
        );
    }

    #[test]
    fn answers() {
        let g = |status, body| interpret(Platform::GoogleAds, status, body);
        assert_eq!(g(200, r#"{"results":[{"gclid":"x"}]}"#), Answer::Accepted);
        assert_eq!(g(200, ""), Answer::Accepted);
        assert_eq!(
            g(200, r#"{"results":[{}],"partialFailureError":{}}"#),
            Answer::Accepted
        );
        let partial = r#"{
          "partialFailureError": {
            "code": 3,
            "message": "The click with the specified gclid could not be found., at conversions[0].gclid",
            "details": [{
              "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
              "errors": [{
                "errorCode": {"conversionUploadError": "UNPARSEABLE_GCLID"},
                "message": "The click with the specified gclid could not be found."
              }]
            }]
          },
          "results": [{}]
        }"#;
        assert_eq!(
            g(200, partial),
            Answer::Rejected(
                "The click with the specified gclid could not be found., at conversions[0].gclid"
                    .into()
            )
        );
        let invalid = r#"{
          "error": {
            "code": 400,
            "message": "Request contains an invalid argument.",
            "status": "INVALID_ARGUMENT",
            "details": [{
              "@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
              "errors": [{
                "errorCode": {"authorizationError": "DEVELOPER_TOKEN_NOT_APPROVED"},
                "message": "The developer token is only approved for use with test accounts."
              }]
            }]
          }
        }"#;
        assert_eq!(
            g(400, invalid),
            Answer::Rejected(
                "HTTP 400: Request contains an invalid argument. (The developer token is only \
                 approved for use with test accounts.)"
                    .into()
            )
        );
        let unauth = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#;
        assert_eq!(
            g(401, unauth),
            Answer::Rejected("HTTP 401: Request had invalid authentication credentials.".into())
        );
        let quota = r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;
        assert_eq!(
            g(429, quota),
            Answer::Retry("HTTP 429: Resource has been exhausted (e.g. check quota).".into())
        );
        assert!(
            matches!(g(503, "upstream connect error"), Answer::Retry(m) if m.contains("upstream"))
        );
    }
}
