//! `GET /metrics`: Prometheus text with the HTTP, inbound and delivery counters, and the queue
//! and pool gauges read at scrape time. Each test has its own server, so counters start at zero.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;
use crate::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(15);

/// One sample of the exposition: its name, labels and value.
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

/// Parses the samples of a text exposition (label values here never hold `"`, `,` or `}`).
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').expect("closing brace");
                    let labels = inner
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|p| {
                            let (k, v) = p.split_once('=').expect("label=value");
                            (k.to_owned(), v.trim_matches('"').to_owned())
                        })
                        .collect();
                    (name, labels)
                }
                None => (series, HashMap::new()),
            };
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().unwrap_or_else(|_| panic!("value in {line}")),
            }
        })
        .collect()
}

/// The value of the one sample with this name and (at least) these labels.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = samples(text)
        .into_iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .collect();
    assert!(
        matching.len() <= 1,
        "{name} {labels:?} matches several samples"
    );
    matching.first().copied()
}

async fn scrape(app: &TestApp) -> String {
    let resp = crate::helpers::http_client()
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"),
        "{content_type}"
    );
    resp.text().await.expect("body")
}

#[tokio::test]
async fn metrics_count_inbound_events_deliveries_and_requests() {
    let app = TestApp::spawn().await;
    let user = app.signup("metrics@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    user.add_webhook(&receiver.url("/hook")).await;

    for email in ["one@example.com", "two@example.com"] {
        let (status, answer) = app
            .inbound(
                &key,
                json!({ "email": email, "event": "purchase", "value": 10, "currency": "USD" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (status, _) = app
        .inbound(
            "cc_0000000000000000000000000000000000000000",
            json!({ "email": "three@example.com", "event": "purchase" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.inbound(&key, json!({ "event": "purchase" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    receiver.wait_for(2, WAIT).await;
    // The worker counts an attempt just after the receiver has answered it, and records the
    // result (leaving the queue) in a batch just after that.
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let text = scrape(&app).await;
        let delivered = value(
            &text,
            "postback_deliveries_total",
            &[("target", "webhook"), ("outcome", "succeeded")],
        );
        let pending = value(
            &text,
            "postback_delivery_queue_depth",
            &[("status", "pending")],
        );
        if (delivered == Some(2.0) && pending == Some(0.0)) || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let inbound = |outcome: &str| {
        value(
            &text,
            "postback_inbound_events_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(inbound("accepted"), Some(2.0), "{text}");
    assert_eq!(inbound("invalid_key"), Some(1.0), "{text}");
    assert_eq!(inbound("bad_request"), Some(1.0), "{text}");
    assert_eq!(inbound("duplicate"), Some(0.0), "{text}");
    assert_eq!(
        value(
            &text,
            "postback_deliveries_total",
            &[("target", "webhook"), ("outcome", "succeeded")],
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "postback_deliveries_total",
            &[("target", "webhook"), ("outcome", "retry")],
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "postback_delivery_duration_seconds_count",
            &[("target", "webhook")],
        ),
        Some(2.0),
        "{text}"
    );

    // Routes are patterns: two 200s and two refusals on the inbound route.
    let inbound_route = |status: &str| {
        value(
            &text,
            "postback_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/__cc/inbound"),
                ("status", status),
            ],
        )
    };
    assert_eq!(inbound_route("200"), Some(2.0), "{text}");
    assert_eq!(inbound_route("401"), Some(1.0), "{text}");
    assert_eq!(inbound_route("400"), Some(1.0), "{text}");
    assert!(
        value(
            &text,
            "postback_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", "/v1/domains/{id}/keys")],
        ) == Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains(&format!("route=\"/v1/domains/{domain}")),
        "raw paths must not be labels: {text}"
    );

    // Gauges read at scrape time: the queue is drained, the pool has its configured size.
    assert_eq!(
        value(
            &text,
            "postback_delivery_queue_depth",
            &[("status", "pending")]
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "postback_delivery_queue_depth",
            &[("status", "held")]
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "postback_delivery_oldest_due_seconds", &[]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "postback_db_pool_connections", &[("state", "max")]),
        Some(4.0),
        "{text}"
    );
    let in_use = value(
        &text,
        "postback_db_pool_connections",
        &[("state", "in_use")],
    );
    let idle = value(&text, "postback_db_pool_connections", &[("state", "idle")]);
    assert!(in_use.is_some() && idle.is_some(), "{text}");
    assert!(in_use.unwrap_or(0.0) + idle.unwrap_or(0.0) <= 4.0, "{text}");
}

#[tokio::test]
async fn retries_held_deliveries_and_unknown_paths_are_counted() {
    let app = TestApp::spawn().await;
    let user = app.signup("metrics-retry@example.com").await;
    let domain = user.add_domain("shop.example.com").await;
    let (_, key) = user.add_key(&domain, "Backend").await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500), Reply::ok()]);
    let hook_id = user.add_webhook(&receiver.url("/hook")).await;
    let (status, answer) = app
        .inbound(
            &key,
            json!({ "email": "r@example.com", "event": "purchase" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // A 500, then a success on the retry.
    receiver.wait_for(2, WAIT).await;
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let text = scrape(&app).await;
        let delivered = value(
            &text,
            "postback_deliveries_total",
            &[("target", "webhook"), ("outcome", "succeeded")],
        );
        let pending = value(
            &text,
            "postback_delivery_queue_depth",
            &[("status", "pending")],
        );
        if (delivered == Some(1.0) && pending == Some(0.0)) || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let deliveries = |outcome: &str| {
        value(
            &text,
            "postback_deliveries_total",
            &[("target", "webhook"), ("outcome", outcome)],
        )
    };
    assert_eq!(deliveries("succeeded"), Some(1.0), "{text}");
    assert_eq!(deliveries("retry"), Some(1.0), "{text}");
    assert_eq!(deliveries("failed"), Some(0.0), "{text}");

    // A paused webhook holds what comes in: the held gauge shows it at once.
    let (status, paused) = user
        .patch(
            &format!("/v1/integrations/webhooks/{hook_id}"),
            json!({ "status": "paused" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    let (status, answer) = app
        .inbound(
            &key,
            json!({ "email": "h@example.com", "event": "purchase" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let text = scrape(&app).await;
    assert_eq!(
        value(
            &text,
            "postback_delivery_queue_depth",
            &[("status", "held")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "postback_delivery_queue_depth",
            &[("status", "pending")]
        ),
        Some(0.0),
        "{text}"
    );

    // Paths no route matches share one label value; the path itself never shows.
    let client = crate::helpers::http_client();
    for path in ["/no/such/page-1", "/no/such/page-2"] {
        let resp = client.get(app.url(path)).send().await.expect("get");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
    let text = scrape(&app).await;
    assert_eq!(
        value(
            &text,
            "postback_http_requests_total",
            &[("method", "GET"), ("route", "unmatched"), ("status", "404")],
        ),
        Some(2.0),
        "{text}"
    );
    assert!(!text.contains("/no/such"), "{text}");
}
