//! Google Ads API: `ConversionUploadService.UploadClickConversions` over REST,
//! `POST /{version}/customers/{customerId}:uploadClickConversions`. One `ClickConversion` per
//! request with the click id (gclid, else gbraid, else wbraid) and, as enhanced conversions for
//! leads, the SHA-256 of the normalised email and of the E.164 phone (with its '+').
//! `partialFailure` is always true: Google requires it for conversion uploads, and a failed
//! conversion then comes back in `partialFailureError` of a 200 response.
//!
//! Authorization: with a refresh token (the way connections are made now), the request leaves
//! here without its `Authorization` header and carries an [`oauth::Grant`]; the sender obtains
//! the access token from Google's token endpoint (`POSTBACK_GOOGLE_TOKEN_URL`). A legacy pasted
//! access token is still sent as it is.

use chrono::Utc;
use futures_util::future::BoxFuture;
use serde_json::{json, Map, Value};

use super::adapter::{Adapter, Endpoint, FieldSpec, SecretSpec};
use super::signin::{Call, Choice, Context};
use super::normalize::{hashed_google_email, sha256_hex};
use super::{by_status, clean, customer_digits, is_digits, oauth, put, str_at, Answer, Click};
use super::{Conversion, Credentials, Request, Settings};

/// The Google Ads API version requests are sent to.
pub const API_VERSION: &str = "v26";

/// How long Google asks to wait after `TOO_RECENT_EVENT` / `TOO_RECENT_CONVERSION_ACTION`:
/// "The click associated with the given identifier … occurred less than 6 hours ago. Retry
/// after 6 hours have passed." (ConversionUploadError,
/// https://developers.google.com/google-ads/api/reference/rpc/latest/ConversionUploadErrorEnum.ConversionUploadError)
pub const TOO_RECENT_WAIT_HOURS: i64 = 6;

/// Google's settings of a connection (part of the flat [`Settings`] object).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct GoogleAdsSettings {
    /// Google Ads, 10 digits (dashes allowed on input, stripped).
    pub customer_id: Option<String>,
    /// Google Ads manager account, optional.
    pub login_customer_id: Option<String>,
    /// Google Ads default conversion action id (digits).
    pub conversion_action: Option<String>,
    /// Google: `datamanager` (the Data Manager API's `events:ingest`, the default for new
    /// connections) or `adsapi` (the Google Ads API's `uploadClickConversions`, for developer
    /// tokens that still have access; connections saved before the choice existed use it).
    pub transport: Option<String>,
}

/// Google's credentials of a connection (part of the flat [`Credentials`] object).
#[derive(Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct GoogleAdsCredentials {
    /// Google Ads API only.
    pub developer_token: Option<String>,
    /// Google: the OAuth refresh token access tokens are obtained with.
    pub refresh_token: Option<String>,
}

pub(super) struct GoogleAds;

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        env: "POSTBACK_GOOGLEADS_URL",
        default: "https://googleads.googleapis.com",
        about: "Google Ads API root",
    },
    Endpoint {
        env: "POSTBACK_GOOGLE_DATAMANAGER_URL",
        default: "https://datamanager.googleapis.com",
        about: "Google Data Manager API root (the default transport)",
    },
    Endpoint {
        env: "POSTBACK_GOOGLE_TOKEN_URL",
        default: "https://oauth2.googleapis.com/token",
        about: "Google OAuth token endpoint (access tokens from refresh tokens)",
    },
    Endpoint {
        env: "POSTBACK_GOOGLE_AUTH_URL",
        default: "https://accounts.google.com/o/oauth2/v2/auth",
        about: "Google OAuth authorization page (Connect Google Ads)",
    },
];

/// The token endpoint's setting.
pub const TOKEN_URL_ENV: &str = "POSTBACK_GOOGLE_TOKEN_URL";

const FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "customer_id",
        label: "Customer ID",
        hint: "10 digits, as shown at the top of Google Ads (dashes are fine).",
        required: true,
        get: |s| &s.googleads.customer_id,
        set: |s, v| s.googleads.customer_id = v,
    },
    FieldSpec {
        name: "login_customer_id",
        label: "Manager account ID",
        hint: "Only when the account is managed through a manager account.",
        required: false,
        get: |s| &s.googleads.login_customer_id,
        set: |s, v| s.googleads.login_customer_id = v,
    },
    FieldSpec {
        name: "transport",
        label: "Transport",
        hint: "datamanager (Google's Data Manager API, the default) or adsapi (Google Ads API offline click conversion upload, for developer tokens that still have access).",
        required: false,
        get: |s| &s.googleads.transport,
        set: |s, v| s.googleads.transport = v,
    },
    FieldSpec {
        name: "conversion_action",
        label: "Conversion action ID",
        hint: "The id of the conversion action (Goals › Conversions) events are uploaded to.",
        required: true,
        get: |s| &s.googleads.conversion_action,
        set: |s, v| s.googleads.conversion_action = v,
    },
];

const SECRETS: &[SecretSpec] = &[
    SecretSpec {
        name: "developer_token",
        key: "developerToken",
        label: "Developer token",
        set: |c, v| c.googleads.developer_token = v,
    },
    SecretSpec {
        name: "refresh_token",
        key: "refreshToken",
        label: "OAuth refresh token",
        set: |c, v| c.googleads.refresh_token = v,
    },
];

impl Adapter for GoogleAds {
    fn name(&self) -> &'static str {
        "googleads"
    }

    fn label(&self) -> &'static str {
        "Google Ads"
    }

    fn endpoints(&self) -> &'static [Endpoint] {
        ENDPOINTS
    }

    fn app(&self) -> Option<super::oauth::AppSettings> {
        Some(super::oauth::AppSettings {
            id_env: "POSTBACK_GOOGLE_CLIENT_ID",
            secret_env: "POSTBACK_GOOGLE_CLIENT_SECRET",
            token_env: Some(TOKEN_URL_ENV),
            developer_token_env: Some("POSTBACK_GOOGLE_DEVELOPER_TOKEN"),
        })
    }

    fn event_name(&self, _key: &str, _given: &str) -> String {
        // The connection's default conversion action.
        String::new()
    }

    fn app_required(&self) -> bool {
        true
    }

    /// Google: the picked customer and conversion action replace the settings (sent by the
    /// Data Manager API); the refresh token is the credential.
    fn picked(
        &self,
        _stored: Settings,
        customer: &str,
        action: &str,
        refresh_token: String,
    ) -> (Settings, Credentials) {
        let mut settings = Settings::default();
        settings.googleads.customer_id = Some(customer.to_owned());
        settings.googleads.conversion_action = Some(action.to_owned());
        settings.googleads.transport = Some("datamanager".into());
        let mut credentials = Credentials::default();
        credentials.googleads.refresh_token = Some(refresh_token);
        (settings, credentials)
    }
    fn connect(&self) -> Option<super::adapter::ConnectSpec> {
        Some(super::adapter::ConnectSpec {
            authorize_env: "POSTBACK_GOOGLE_AUTH_URL",
            // Data Manager API and Google Ads API
            // (https://developers.google.com/data-manager/api/devguides/quickstart/set-up-access,
            // https://developers.google.com/google-ads/api/docs/oauth/overview).
            scopes: "https://www.googleapis.com/auth/datamanager https://www.googleapis.com/auth/adwords",
            what: "the Google Ads account and the conversion action",
            legend: "Account › conversion action",
            none_found: "This Google account has no Google Ads account with an enabled conversion action to send to.",
            exchange: sign_in_exchange,
            lists: sign_in_lists,
        })
    }

    fn check_mapped_name(&self, event: &str, name: &str) -> Result<(), String> {
        if name.bytes().all(|b| b.is_ascii_digit()) {
            Ok(())
        } else {
            Err(format!(
                "eventMap.{event} must be a Google Ads conversion action id (digits), or empty to not send it"
            ))
        }
    }

    fn validate(&self, settings: &Settings, out: &mut Settings) -> Result<(), String> {
        let customer = customer_digits(&settings.googleads.customer_id);
        match &customer {
            Some(c) if c.len() == 10 && is_digits(c) => {}
            _ => return Err("settings.customerId must be a 10-digit Google Ads customer id".into()),
        }
        let login = customer_digits(&settings.googleads.login_customer_id);
        if let Some(l) = &login {
            if l.len() != 10 || !is_digits(l) {
                return Err("settings.loginCustomerId must be a 10-digit Google Ads manager \
                            account id, or empty"
                    .into());
            }
        }
        let action = clean(&settings.googleads.conversion_action);
        match &action {
            Some(a) if a.len() <= 20 && is_digits(a) => {}
            _ => {
                return Err(
                    "settings.conversionAction must be a Google Ads conversion action id (digits)"
                        .into(),
                )
            }
        }
        out.googleads.customer_id = customer;
        out.googleads.login_customer_id = login;
        out.googleads.conversion_action = action;
        out.googleads.transport = match clean(&settings.googleads.transport).as_deref() {
            None | Some("datamanager") => Some("datamanager".into()),
            Some("adsapi") => Some("adsapi".into()),
            Some(_) => return Err("settings.transport must be datamanager or adsapi".into()),
        };
        Ok(())
    }

    fn require_credentials(&self, credentials: &Credentials) -> Result<(), String> {
        if clean(&credentials.googleads.refresh_token).is_none() && clean(&credentials.shared.access_token).is_none()
        {
            return Err("credentials.refreshToken is required for Google Ads".into());
        }
        Ok(())
    }

    fn require_settings_credentials(
        &self,
        settings: &Settings,
        credentials: &Credentials,
    ) -> Result<(), String> {
        if uses_ads_api(settings) && clean(&credentials.googleads.developer_token).is_none() {
            return Err("credentials.developerToken is required for Google Ads".into());
        }
        Ok(())
    }

    fn build(
        &self,
        urls: &super::PlatformUrls,
        settings: &Settings,
        credentials: &Credentials,
        conversion: &Conversion,
    ) -> Result<Request, String> {
        if uses_ads_api(settings) {
            build(urls.endpoint(ENDPOINTS[0].env), settings, credentials, conversion)
        } else {
            super::datamanager::build(
                urls.endpoint(ENDPOINTS[1].env),
                settings,
                credentials,
                conversion,
            )
        }
    }

    fn interpret(&self, status: u16, body: &str, json: Option<&Value>) -> Answer {
        interpret(status, body, json)
    }

    /// Ads API: "up to 2,000 conversions" per `uploadClickConversions` request
    /// (https://developers.google.com/google-ads/api/docs/conversions/upload-clicks); Data
    /// Manager: "2,000 `Event` resources in the `events` list" of an `IngestEventsRequest`
    /// (https://developers.google.com/data-manager/api/limits).
    fn batch_limit(&self, request: &Request) -> Option<(&'static str, usize)> {
        ["conversions", "events"]
            .into_iter()
            .find(|f| request.body.get(f).is_some())
            .map(|f| (f, 2000))
    }

    fn interpret_each(
        &self,
        status: u16,
        json: Option<&Value>,
        events: usize,
    ) -> Option<Vec<Answer>> {
        interpret_each(status, json, events)
    }

    /// `validateOnly: true`: "the request is validated but not executed"
    /// (UploadClickConversionsRequest.validate_only,
    /// https://developers.google.com/google-ads/api/reference/rpc/latest/UploadClickConversionsRequest).
    fn test_mode(&self, request: &mut Request) -> super::TestMode {
        if let Some(body) = request.body.as_object_mut() {
            body.insert("validateOnly".into(), true.into());
        }
        super::TestMode::ValidateOnly
    }

    fn has_click(&self, click: &Click) -> bool {
        click.gclid.is_some() || click.gbraid.is_some() || click.wbraid.is_some()
    }

    fn sample_click(&self, click: &mut Click) {
        click.gclid = Some("TEST-GCLID".into());
    }

    fn fields(&self) -> &'static [FieldSpec] {
        FIELDS
    }

    fn secrets(&self) -> &'static [SecretSpec] {
        SECRETS
    }

    fn mapping_hint(&self, _example: &dyn Fn(&str) -> String) -> String {
        "One per line: event = conversion action ID. Events not listed go to the default conversion action; refund and chargeback are not sent. An empty right side stops an event.".to_owned()
    }
}

/// Whether the connection sends through the Google Ads API (chosen, or saved before the
/// choice existed) rather than the Data Manager API.
fn uses_ads_api(settings: &Settings) -> bool {
    clean(&settings.googleads.transport).as_deref() != Some("datamanager")
}

fn build(
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
    let developer_token =
        clean(&credentials.googleads.developer_token).ok_or("Google Ads needs a developer token")?;
    let action = match c.event_name.trim() {
        "" => clean(&settings.googleads.conversion_action).ok_or("Google Ads needs a conversion action")?,
        a => a.to_owned(),
    };
    let conversion_action = if action.starts_with("customers/") {
        action
    } else if is_digits(&action) {
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
    if let Some(h) = hashed_google_email(&c.email) {
        identifiers.push(json!({ "hashedEmail": h }));
    }
    if let Some(digits) = c.phone_digits() {
        identifiers.push(json!({ "hashedPhoneNumber": sha256_hex(&format!("+{digits}")) }));
    }
    if !identifiers.is_empty() {
        conv.insert("userIdentifiers".into(), identifiers.into());
    }
    if let Some(consent) = consent(c) {
        conv.insert("consent".into(), consent);
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
    headers.push(("developer-token".to_owned(), developer_token));
    if let Some(login) = customer_digits(&settings.googleads.login_customer_id).filter(|l| !l.is_empty()) {
        headers.push(("login-customer-id".to_owned(), login));
    }
    headers.push(("content-type".to_owned(), "application/json".to_owned()));
    Ok(Request {
        url: format!("{base}/{API_VERSION}/customers/{customer}:uploadClickConversions"),
        headers,
        body: json!({ "conversions": [Value::Object(conv)], "partialFailure": true }),
        oauth,
    })
}

/// The customer's consent, when stated: (adUserData, adPersonalization) as `GRANTED` /
/// `DENIED`.
pub(super) fn consent_statuses(c: &Conversion) -> (Option<&'static str>, Option<&'static str>) {
    let status = |s: Option<super::ConsentStatus>| {
        s.map(|s| match s {
            super::ConsentStatus::Granted => "GRANTED",
            super::ConsentStatus::Denied => "DENIED",
        })
    };
    (
        status(c.consent.ad_user_data),
        status(c.consent.ad_personalization),
    )
}

/// `ClickConversion.consent` (`Consent { ad_user_data, ad_personalization }`, each a
/// `ConsentStatus` of `GRANTED` / `DENIED`;
/// https://developers.google.com/google-ads/api/reference/rpc/latest/Consent), when stated.
fn consent(c: &Conversion) -> Option<Value> {
    let status = |s: Option<super::ConsentStatus>| {
        s.map(|s| match s {
            super::ConsentStatus::Granted => "GRANTED",
            super::ConsentStatus::Denied => "DENIED",
        })
    };
    let mut out = Map::new();
    put(&mut out, "adUserData", status(c.consent.ad_user_data));
    put(
        &mut out,
        "adPersonalization",
        status(c.consent.ad_personalization),
    );
    (!out.is_empty()).then_some(Value::Object(out))
}

pub(super) fn interpret(status: u16, body: &str, json: Option<&Value>) -> Answer {
    if (200..300).contains(&status) {
        let Some(failure) = json.and_then(|j| j.get("partialFailureError")) else {
            return Answer::Accepted;
        };
        let Some(why) = error_message(failure) else {
            return Answer::Accepted;
        };
        // Too early for Google: try again when it asks to, not on the short schedule.
        if error_codes(failure).any(|code| code.starts_with("TOO_RECENT_")) {
            return Answer::RetryAt(
                Utc::now() + chrono::Duration::hours(TOO_RECENT_WAIT_HOURS),
                why,
            );
        }
        return Answer::Rejected(why);
    }
    let message = json.and_then(|j| j.get("error")).and_then(error_message);
    by_status(status, message, body)
}

/// Per-conversion answers to an `uploadClickConversions` request in partial-failure mode: each
/// `GoogleAdsError` of the `partialFailureError`'s `GoogleAdsFailure` names the conversion it is
/// about in `location.fieldPathElements[0]` (`{"fieldName": "conversions", "index": i}`;
/// https://developers.google.com/google-ads/api/docs/best-practices/partial-failures), and
/// conversions without an error were uploaded. None when an error names no conversion (the
/// whole request's answer applies) or the answer is not a partial failure.
fn interpret_each(status: u16, json: Option<&Value>, events: usize) -> Option<Vec<Answer>> {
    if !(200..300).contains(&status) {
        return None;
    }
    let failure = json?.get("partialFailureError")?;
    let errors: Vec<&Value> = failure
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("errors").and_then(Value::as_array))
        .flatten()
        .collect();
    if errors.is_empty() {
        return None;
    }
    // Per conversion: its messages, and whether Google asks to wait.
    let mut each: Vec<(Vec<String>, bool)> = vec![(Vec::new(), false); events];
    for e in errors {
        let first = e.pointer("/location/fieldPathElements/0")?;
        if first.get("fieldName").and_then(Value::as_str) != Some("conversions") {
            return None;
        }
        let index = usize::try_from(first.get("index")?.as_u64()?).ok()?;
        let slot = each.get_mut(index)?;
        slot.0.push(
            str_at(Some(e), "/message")
                .unwrap_or("Google Ads refused this conversion")
                .to_owned(),
        );
        let too_recent = e
            .get("errorCode")
            .and_then(Value::as_object)
            .is_some_and(|codes| {
                codes
                    .values()
                    .filter_map(Value::as_str)
                    .any(|c| c.starts_with("TOO_RECENT_"))
            });
        slot.1 |= too_recent;
    }
    Some(
        each.into_iter()
            .map(|(messages, too_recent)| match (messages.is_empty(), too_recent) {
                (true, _) => Answer::Accepted,
                (false, true) => Answer::RetryAt(
                    Utc::now() + chrono::Duration::hours(TOO_RECENT_WAIT_HOURS),
                    messages.join("; "),
                ),
                (false, false) => Answer::Rejected(messages.join("; ")),
            })
            .collect(),
    )
}

/// The `errorCode` values of a `GoogleAdsFailure`'s errors (`{"conversionUploadError":
/// "TOO_RECENT_EVENT"}` → "TOO_RECENT_EVENT").
fn error_codes(status: &Value) -> impl Iterator<Item = &str> {
    status
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("errors").and_then(Value::as_array))
        .flatten()
        .filter_map(|e| e.get("errorCode").and_then(Value::as_object))
        .flat_map(|codes| codes.values())
        .filter_map(Value::as_str)
}

/// A `google.rpc.Status`'s message, with the messages of its `GoogleAdsFailure` details that
/// it does not already contain; None when it has neither (no error).
pub(super) fn error_message(status: &Value) -> Option<String> {
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

/// The sign-in's code exchange: the code (with the PKCE verifier) for (the refresh token, kept;
/// an access token, for the lists), at Google's token endpoint.
fn sign_in_exchange<'a>(
    cx: &'a Context<'a>,
    code: &'a str,
    verifier: &'a str,
    redirect: &'a str,
) -> BoxFuture<'a, Result<(String, String), String>> {
    Box::pin(async move {
        let (url, body) = super::connect::code_request(cx.app, code, verifier, redirect);
        let reply = cx
            .http
            .send(Call::post(
                "application/x-www-form-urlencoded",
                url,
                Vec::new(),
                body,
            ))
            .await;
        let answer = reply.json();
        let text = |k: &str| answer.get(k).and_then(Value::as_str).map(str::to_owned);
        match (text("access_token"), text("refresh_token")) {
            (Some(access), Some(refresh)) => Ok((refresh, access)),
            _ => Err(match (text("error"), text("error_description")) {
                (Some(e), Some(d)) => format!("{e}: {d}"),
                (Some(e), None) => e,
                _ => reply
                    .error
                    .unwrap_or_else(|| "no refresh token in the answer".into()),
            }),
        }
    })
}

/// The sign-in's lists: the accessible customers (`customers:listAccessibleCustomers`) and
/// each one's enabled conversion actions (`googleAds:search`), with the operator's developer
/// token.
fn sign_in_lists<'a>(
    cx: &'a Context<'a>,
    access: &'a str,
) -> BoxFuture<'a, Result<Vec<Choice>, String>> {
    Box::pin(async move {
        let Some(developer_token) = cx.app.developer_token.as_deref() else {
            return Err("Listing Google Ads accounts needs the operator's developer token (POSTBACK_GOOGLE_DEVELOPER_TOKEN).".into());
        };
        let base = cx.api;
        let headers = vec![
            ("Authorization".to_owned(), format!("Bearer {access}")),
            ("developer-token".to_owned(), developer_token.to_owned()),
        ];
        let listed = cx
            .http
            .send(Call::get(
                format!("{base}/{API_VERSION}/customers:listAccessibleCustomers"),
                headers.clone(),
            ))
            .await;
        let json = listed.json();
        if listed.status != Some(200) {
            return Err(format!(
                "Google Ads did not list the accounts: {}",
                json.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or(listed.error)
                    .unwrap_or_default()
            ));
        }
        let customers: Vec<String> = json["resourceNames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|r| r.strip_prefix("customers/"))
            .map(str::to_owned)
            .take(20)
            .collect();
        let mut choices = Vec::new();
        for customer in customers {
            let query = json!({"query": "SELECT conversion_action.id, conversion_action.name FROM conversion_action WHERE conversion_action.status = 'ENABLED'"});
            let found = cx
                .http
                .send(Call::post(
                    "application/json",
                    format!("{base}/{API_VERSION}/customers/{customer}/googleAds:search"),
                    headers.clone(),
                    serde_json::to_vec(&query).unwrap_or_default(),
                ))
                .await
                .json();
            for row in found["results"].as_array().into_iter().flatten() {
                let action = &row["conversionAction"];
                let id = action["id"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| action["id"].as_i64().map(|n| n.to_string()));
                let Some(id) = id else { continue };
                let name = action["name"].as_str().unwrap_or("(unnamed)");
                let shown = if customer.len() == 10 {
                    format!("{}-{}-{}", &customer[..3], &customer[3..6], &customer[6..])
                } else {
                    customer.clone()
                };
                choices.push(Choice {
                    value: format!("{customer}:{id}"),
                    label: format!("{shown} › {name} ({id})"),
                });
            }
        }
        Ok(choices)
    })
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
        let s = {
            let mut s = settings();
            s.googleads.login_customer_id = None;
            s
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
            Answer::Unauthorized("HTTP 401: Request had invalid authentication credentials.".into())
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

    /// TOO_RECENT_EVENT / TOO_RECENT_CONVERSION_ACTION are "retry after 6 hours", not final
    /// (https://developers.google.com/google-ads/api/reference/rpc/latest/ConversionUploadErrorEnum.ConversionUploadError).
    #[test]
    fn too_recent_is_a_late_retry() {
        for code in ["TOO_RECENT_EVENT", "TOO_RECENT_CONVERSION_ACTION"] {
            let body = json!({
                "partialFailureError": {"code": 3, "message": "too recent, at conversions[0]",
                    "details": [{"errors": [{"errorCode": {"conversionUploadError": code},
                                             "message": "retry after 6 hours"}]}]},
                "results": [{}]
            })
            .to_string();
            let before = Utc::now();
            match interpret(Platform::GoogleAds, 200, &body) {
                Answer::RetryAt(at, why) => {
                    let wait = at - before;
                    assert!(wait >= chrono::Duration::hours(6), "{code}: {wait:?}");
                    assert!(wait < chrono::Duration::minutes(361), "{code}: {wait:?}");
                    assert!(why.starts_with("too recent"), "{why}");
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        let expired = json!({"partialFailureError": {"message": "expired",
            "details": [{"errors": [{"errorCode": {"conversionUploadError": "EXPIRED_EVENT"}}]}]}})
        .to_string();
        assert_eq!(
            interpret(Platform::GoogleAds, 200, &expired),
            Answer::Rejected("expired".into())
        );
    }

    /// Consent goes as `consent.adUserData` / `adPersonalization` (GRANTED / DENIED), only when
    /// stated; a refresh token leaves the Authorization header to the sender.
    #[test]
    fn consent_and_refresh_tokens() {
        let mut c = with_click();
        c.event_name = String::new();
        c.consent = super::super::Consent {
            ad_user_data: Some(super::super::ConsentStatus::Granted),
            ad_personalization: Some(super::super::ConsentStatus::Denied),
        };
        let creds = {
            let mut s = credentials();
            s.shared.access_token = None;
            s.googleads.refresh_token = Some("1//rt".into());
            s
        };
        let r = build(Platform::GoogleAds, BASE, &settings(), &creds, &c).unwrap();
        assert_eq!(
            r.body["conversions"][0]["consent"],
            json!({"adUserData": "GRANTED", "adPersonalization": "DENIED"})
        );
        assert!(r.headers.iter().all(|(k, _)| k != "Authorization"));
        assert_eq!(r.oauth.as_ref().unwrap().refresh_token, "1//rt");
        c.consent = super::super::Consent::default();
        let r = build(Platform::GoogleAds, BASE, &settings(), &credentials(), &c).unwrap();
        assert!(r.body["conversions"][0].get("consent").is_none());
        assert!(r.oauth.is_none());
    }

    #[test]
    fn the_test_request_only_validates() {
        let mut c = with_click();
        c.event_name = String::new();
        let mut r = build(Platform::GoogleAds, BASE, &settings(), &credentials(), &c).unwrap();
        assert_eq!(
            super::super::test_mode(Platform::GoogleAds, &mut r),
            super::super::TestMode::ValidateOnly
        );
        assert_eq!(r.body["validateOnly"], true);
    }
}
