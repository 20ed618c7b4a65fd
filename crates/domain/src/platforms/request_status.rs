//! Google Data Manager's request status: `events:ingest` answers `{"requestId": …}` and processes
//! the events later ("a 200 is a receipt"), so the outcome is asked for afterwards with
//! `GET /v1/requestStatus:retrieve?requestId=…`
//! (https://developers.google.com/data-manager/api/reference/rest/v1/requestStatus/retrieve).
//!
//! The answer, `RetrieveRequestStatusResponse`, is `requestStatusPerDestination[]`, each with
//! `destination`, `requestStatus` (`REQUEST_STATUS_UNKNOWN`, `SUCCESS`, `PROCESSING`, `FAILED`,
//! `PARTIAL_SUCCESS`), `errorInfo.errorCounts[] {recordCount, reason}`, `warningInfo
//! .warningCounts[] {recordCount, reason}` and `eventsIngestionStatus.recordCount`
//! (https://developers.google.com/data-manager/api/reference/rest/v1/requestStatus/retrieve#RequestStatusPerDestination;
//! the same fields in the discovery document, `datamanager/v1`). The Data Manager API fails a
//! whole request when one record fails ("fast-fail"), so one outcome holds for every event of it.

use serde_json::Value;

use super::{clean, oauth, Credentials};

/// What we know of a request's processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not processed yet (`PROCESSING`, `REQUEST_STATUS_UNKNOWN`, or no destination reported).
    Processing,
    Succeeded(String),
    PartiallySucceeded(String),
    Failed(String),
}

impl Outcome {
    /// The stored status (`platform_requests.status`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Processing => "processing",
            Outcome::Succeeded(_) => "succeeded",
            Outcome::PartiallySucceeded(_) => "partially_succeeded",
            Outcome::Failed(_) => "failed",
        }
    }

    pub fn detail(&self) -> Option<&str> {
        match self {
            Outcome::Processing => None,
            Outcome::Succeeded(d) | Outcome::PartiallySucceeded(d) | Outcome::Failed(d) => Some(d),
        }
    }
}

/// The request id of an `events:ingest` answer, when the body is one.
pub fn request_id(body: &str) -> Option<String> {
    let json: Value = serde_json::from_str(body).ok()?;
    let id = json.get("requestId")?.as_str()?.trim();
    (!id.is_empty() && id.len() <= 500).then(|| id.to_owned())
}

/// `GET {base}/v1/requestStatus:retrieve?requestId=…`, the request id query-encoded.
pub fn status_url(base: &str, request_id: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("requestId", request_id)
        .finish();
    format!("{base}/v1/requestStatus:retrieve?{query}")
}

/// How a stored connection authorizes: a refresh token's grant, or a legacy access token.
pub enum Authorization {
    Grant(oauth::Grant),
    Bearer(String),
}

/// The authorization of the connection's credentials (as stored, sealed), when they open.
pub fn authorization(sealed: &Value) -> Option<Authorization> {
    let credentials: Credentials = crate::secrets::seal::open_json(sealed)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())?;
    match (
        clean(&credentials.googleads.refresh_token),
        clean(&credentials.shared.access_token),
    ) {
        (Some(refresh_token), _) => Some(Authorization::Grant(oauth::Grant { refresh_token })),
        (None, Some(token)) => Some(Authorization::Bearer(token)),
        (None, None) => None,
    }
}

/// Reads a `RetrieveRequestStatusResponse`: every destination SUCCESS → Succeeded; any FAILED
/// → Failed (with Google's reasons); any PARTIAL_SUCCESS → PartiallySucceeded; otherwise still
/// processing. The detail names the counts and reasons ("1 event ingested", "FAILED:
/// PROCESSING_ERROR_REASON_INVALID_GCLID (1 event)").
pub fn read(json: &Value) -> Outcome {
    let destinations = json["requestStatusPerDestination"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if destinations.is_empty() {
        return Outcome::Processing;
    }
    let statuses: Vec<&str> = destinations
        .iter()
        .map(|d| {
            d["requestStatus"]
                .as_str()
                .unwrap_or("REQUEST_STATUS_UNKNOWN")
        })
        .collect();
    let counts = |d: &Value, info: &str, list: &str| -> Vec<String> {
        d[info][list]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let reason = c["reason"].as_str().unwrap_or("unknown reason");
                match record_count(&c["recordCount"]) {
                    Some(n) => format!("{reason} ({})", events(n)),
                    None => reason.to_owned(),
                }
            })
            .collect()
    };
    let mut parts = Vec::new();
    for d in &destinations {
        let status = d["requestStatus"]
            .as_str()
            .unwrap_or("REQUEST_STATUS_UNKNOWN");
        let errors = counts(d, "errorInfo", "errorCounts");
        let warnings = counts(d, "warningInfo", "warningCounts");
        let mut part = status.to_owned();
        if let Some(n) = record_count(&d["eventsIngestionStatus"]["recordCount"]) {
            part.push_str(&format!(", {} ingested", events(n)));
        }
        if !errors.is_empty() {
            part.push_str(&format!(": {}", errors.join(", ")));
        }
        if !warnings.is_empty() {
            part.push_str(&format!("; warnings: {}", warnings.join(", ")));
        }
        parts.push(part);
    }
    let detail = format!("Google Data Manager: {}", parts.join(" | "));
    if statuses.contains(&"FAILED") {
        Outcome::Failed(detail)
    } else if statuses.contains(&"PARTIAL_SUCCESS") {
        Outcome::PartiallySucceeded(detail)
    } else if statuses.iter().all(|s| *s == "SUCCESS") {
        Outcome::Succeeded(detail)
    } else {
        Outcome::Processing
    }
}

/// int64 fields come as JSON strings ("1"); numbers are taken too.
fn record_count(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn events(n: u64) -> String {
    if n == 1 {
        "1 event".to_owned()
    } else {
        format!("{n} events")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_ids() {
        assert_eq!(
            request_id(r#"{"requestId": "abc-1"}"#).as_deref(),
            Some("abc-1")
        );
        assert_eq!(request_id(r#"{"requestId": ""}"#), None);
        assert_eq!(request_id(r#"{"results": []}"#), None);
        assert_eq!(request_id("OK"), None);
        assert_eq!(
            status_url("http://x", "a b&c"),
            "http://x/v1/requestStatus:retrieve?requestId=a+b%26c"
        );
    }

    #[test]
    fn outcomes() {
        let destination = json!({"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1"},
                                 "productDestinationId": "2"});
        let status = |s: &str, extra: Value| {
            let mut d = json!({"destination": destination, "requestStatus": s});
            d.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            json!({ "requestStatusPerDestination": [d] })
        };
        assert_eq!(read(&json!({})), Outcome::Processing);
        assert_eq!(read(&status("PROCESSING", json!({}))), Outcome::Processing);
        assert_eq!(
            read(&status("REQUEST_STATUS_UNKNOWN", json!({}))),
            Outcome::Processing
        );
        assert_eq!(
            read(&status(
                "SUCCESS",
                json!({"eventsIngestionStatus": {"recordCount": "1"}})
            )),
            Outcome::Succeeded("Google Data Manager: SUCCESS, 1 event ingested".into())
        );
        assert_eq!(
            read(&status(
                "FAILED",
                json!({"errorInfo": {"errorCounts": [
                    {"recordCount": "2", "reason": "PROCESSING_ERROR_REASON_INVALID_GCLID"}]}})
            )),
            Outcome::Failed(
                "Google Data Manager: FAILED: PROCESSING_ERROR_REASON_INVALID_GCLID (2 events)"
                    .into()
            )
        );
        let partial = read(&status(
            "PARTIAL_SUCCESS",
            json!({"eventsIngestionStatus": {"recordCount": 3},
                   "warningInfo": {"warningCounts": [{"recordCount": "1", "reason": "W"}]}}),
        ));
        assert_eq!(partial.as_str(), "partially_succeeded");
        assert_eq!(
            partial.detail(),
            Some("Google Data Manager: PARTIAL_SUCCESS, 3 events ingested; warnings: W (1 event)")
        );
    }
}
