//! Batched platform sends (issue 19): a connection's requests, built one per event by
//! [`super::Adapter::build`], are sent as one request carrying up to the API's documented
//! maximum of events, and the answer is read back per event.
//!
//! Two requests go together when they differ only in their array of events (same URL, headers,
//! authorization and every other body field, so a Data Manager request to another destination,
//! or a Meta request with another test code, goes in another batch). The maxima, from each
//! API's documentation, are the adapters' [`super::Adapter::batch_limit`]:
//! - Meta Conversions API: "You can send up to 1,000 events in `data`"
//!   (https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api#batch-requests);
//! - TikTok Events API 2.0 (`/event/track/`): up to 1,000 events in `data`
//!   (https://business-api.tiktok.com/portal/docs?id=1771100865818625);
//! - Google Ads `uploadClickConversions`: up to 2,000 conversions per request
//!   (https://developers.google.com/google-ads/api/docs/conversions/upload-clicks);
//! - Data Manager `events:ingest`: "2,000 `Event` resources in the `events` list"
//!   (https://developers.google.com/data-manager/api/limits).
//!
//! Per-event outcomes: Google Ads answers per conversion in partial-failure mode (errors carry
//! `location.fieldPathElements[0]` = `{fieldName: "conversions", index: i}`), read by
//! [`super::Adapter::interpret_each`]. Meta, TikTok and Data Manager answer for the whole
//! request (Meta: "If any event you send in a batch is invalid, the entire batch is rejected";
//! an event older than 7 days fails "the entire request"), so a batch refused as a whole is split
//! in halves and sent again until the refused events stand alone (see the delivery worker):
//! one bad event costs about 2·log2(n) more requests, and every other event is still sent.

use serde_json::Value;

use super::{Answer, Platform, Request};

/// How a request may be grouped: the key of its group and the most events one request of the
/// group may carry; None when it is sent alone.
pub fn group(platform: Platform, request: &Request) -> Option<(String, usize)> {
    let (field, max) = platform.adapter().batch_limit(request)?;
    let body = request.body.as_object()?;
    if body.get(field)?.as_array()?.len() != 1 || max < 2 {
        return None;
    }
    let mut rest = body.clone();
    rest.remove(field);
    let key = serde_json::to_string(&(
        platform.as_str(),
        &request.url,
        &request.headers,
        request.oauth.as_ref().map(|g| g.cache_key()),
        Value::Object(rest),
    ))
    .ok()?;
    // The key holds the request's credentials: keep only a digest of it.
    Some((super::sha256_hex(&key), max))
}

/// One request carrying the events of `requests` (each built alone, of one group), in order.
pub fn merge(platform: Platform, requests: &[&Request]) -> Request {
    let mut merged = requests[0].clone();
    if requests.len() == 1 {
        return merged;
    }
    let Some((field, _)) = platform.adapter().batch_limit(requests[0]) else {
        return merged;
    };
    let events: Vec<Value> = requests
        .iter()
        .filter_map(|r| r.body.get(field).and_then(Value::as_array))
        .flatten()
        .cloned()
        .collect();
    if let Some(body) = merged.body.as_object_mut() {
        body.insert(field.to_owned(), Value::Array(events));
    }
    merged
}

/// The platform's answer to a request of `events` events: one per event when it tells them
/// apart, else None (the whole request's answer is [`super::interpret`]'s).
pub fn interpret_each(
    platform: Platform,
    status: u16,
    body: &str,
    events: usize,
) -> Option<Vec<Answer>> {
    let json: Option<Value> = serde_json::from_str(body).ok();
    platform
        .adapter()
        .interpret_each(status, json.as_ref(), events)
        .filter(|a| a.len() == events)
}

/// Whether the answer is the platform's rate limit or quota.
pub fn throttled(platform: Platform, status: u16, body: &str) -> bool {
    let json: Option<Value> = serde_json::from_str(body).ok();
    platform.adapter().throttled(status, json.as_ref())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{build, Settings};
    use super::*;
    use serde_json::json;

    fn two(platform: Platform, settings: &Settings) -> (Request, Request) {
        let mut a = with_click();
        let mut b = without_click();
        if platform == Platform::GoogleAds {
            a.event_name = String::new();
            b.event_name = String::new();
        }
        b.click.gclid = Some("second-gclid".into());
        (
            build(platform, "http://fake", settings, &credentials(), &a).unwrap(),
            build(platform, "http://fake", settings, &credentials(), &b).unwrap(),
        )
    }

    #[test]
    fn requests_of_one_connection_merge_into_one() {
        for (platform, field, max) in [
            (Platform::Meta, "data", 1000),
            (Platform::TikTok, "data", 1000),
            (Platform::GoogleAds, "conversions", 2000),
        ] {
            let (a, b) = two(platform, &settings());
            let (ka, ma) = group(platform, &a).expect("batchable");
            let (kb, _) = group(platform, &b).expect("batchable");
            assert_eq!(ka, kb, "{platform:?}: same connection, same group");
            assert_eq!(ma, max, "{platform:?}");
            let m = merge(platform, &[&a, &b]);
            assert_eq!(m.url, a.url);
            let events = m.body[field].as_array().unwrap();
            assert_eq!(events.len(), 2);
            assert_eq!(events[0], a.body[field][0]);
            assert_eq!(events[1], b.body[field][0]);
        }
    }

    #[test]
    fn data_manager_batches_events_per_destination() {
        let dm = {
            let mut s = settings();
            s.googleads.transport = Some("datamanager".into());
            s
        };
        let mut creds = credentials();
        creds.googleads.refresh_token = Some("1//rt".into());
        let mut a = with_click();
        a.event_name = String::new();
        let ra = build(Platform::GoogleAds, "http://fake", &dm, &creds, &a).unwrap();
        let (_, max) = group(Platform::GoogleAds, &ra).expect("batchable");
        assert_eq!(max, 2000);
        let mut b = a.clone();
        b.event_name = "999".into();
        let rb = build(Platform::GoogleAds, "http://fake", &dm, &creds, &b).unwrap();
        assert_ne!(
            group(Platform::GoogleAds, &ra).unwrap().0,
            group(Platform::GoogleAds, &rb).unwrap().0,
            "another conversion action is another destination"
        );
    }

    #[test]
    fn other_connections_do_not_merge() {
        let (a, _) = two(Platform::Meta, &settings());
        let other = {
            let mut s = settings();
            s.meta.pixel_id = Some("999".into());
            s
        };
        let (c, _) = two(Platform::Meta, &other);
        assert_ne!(
            group(Platform::Meta, &a).unwrap().0,
            group(Platform::Meta, &c).unwrap().0
        );
    }

    #[test]
    fn google_partial_failures_are_read_per_conversion() {
        let body = json!({
            "partialFailureError": {
                "code": 3,
                "message": "The click is too old.",
                "details": [{"errors": [
                    {"errorCode": {"conversionUploadError": "EXPIRED_EVENT"},
                     "message": "The click is too old.",
                     "location": {"fieldPathElements": [{"fieldName": "conversions", "index": 1}]}},
                    {"errorCode": {"conversionUploadError": "TOO_RECENT_EVENT"},
                     "message": "The click is too recent.",
                     "location": {"fieldPathElements": [{"fieldName": "conversions", "index": 2}, {"fieldName": "gclid"}]}}
                ]}]
            },
            "results": [{"gclid": "a"}, {}, {}]
        })
        .to_string();
        let each = interpret_each(Platform::GoogleAds, 200, &body, 3).expect("per conversion");
        assert_eq!(each[0], Answer::Accepted);
        assert_eq!(each[1], Answer::Rejected("The click is too old.".into()));
        assert!(
            matches!(&each[2], Answer::RetryAt(_, m) if m == "The click is too recent."),
            "{:?}",
            each[2]
        );
        // Without an index the answer is the whole request's.
        let whole = json!({"partialFailureError": {"code": 3, "message": "bad", "details": [{"errors": [{"message": "bad"}]}]}}).to_string();
        assert_eq!(interpret_each(Platform::GoogleAds, 200, &whole, 3), None);
        // All accepted: the whole request's answer says so.
        let ok = json!({"results": [{}, {}]}).to_string();
        assert_eq!(interpret_each(Platform::GoogleAds, 200, &ok, 2), None);
        assert_eq!(
            super::super::interpret(Platform::GoogleAds, 200, &ok),
            Answer::Accepted
        );
        // Meta answers for the whole request.
        assert_eq!(interpret_each(Platform::Meta, 200, "{}", 2), None);
    }

    #[test]
    fn throttling_answers() {
        assert!(throttled(Platform::Meta, 429, ""));
        let meta = |code: i64| json!({"error": {"message": "limit", "code": code}}).to_string();
        assert!(throttled(Platform::Meta, 400, &meta(17)));
        assert!(throttled(Platform::Meta, 400, &meta(80004)));
        assert!(!throttled(Platform::Meta, 400, &meta(100)));
        let tiktok = json!({"code": 40100, "message": "Too many requests"}).to_string();
        assert!(throttled(Platform::TikTok, 200, &tiktok));
        assert!(!throttled(Platform::TikTok, 200, r#"{"code": 0}"#));
        assert!(throttled(Platform::GoogleAds, 429, "{}"));
        assert!(!throttled(Platform::GoogleAds, 500, "{}"));
    }
}
