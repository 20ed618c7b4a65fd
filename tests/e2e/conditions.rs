//! Every condition field of seed 002, evaluated on stored data: one event of a visitor with two
//! touches, and for each field a webhook whose condition holds and one whose condition does not
//! (for the touch fields, with the First and with the Last click). Exactly the webhooks whose
//! condition holds get the event.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::attribution::{collect, identify, shop};
use crate::helpers::TestApp;
use crate::receiver::{Receiver, Reply};

const LINK: &str = "0b6c1e3a-5d7f-4a2b-9c1d-2e3f4a5b6c7d";
const TARGET: &str = "7e6d5c4b-3a29-4180-8f7e-6d5c4b3a2918";

/// (field, condition that holds, condition that does not).
type Case = (&'static str, Value, Value);

/// The touch fields with different values on the first and the last click: each gives four
/// webhooks (the first's value and the last's value, each checked against First and Last).
fn touch_cases(first: &[(&'static str, &str)], last: &[(&'static str, &str)]) -> Vec<Case> {
    let mut out = Vec::new();
    for ((field, f), (_, l)) in first.iter().zip(last) {
        let cond = |value: &str, touch: &str| json!({"field": field, "op": "equals", "value": value, "touch": touch});
        out.push((*field, cond(f, "first"), cond(f, "last")));
        out.push((*field, cond(l, "last"), cond(l, "first")));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_condition_field_is_evaluated_on_the_stored_event_and_its_touches() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let shop = shop(&app, "sweep@example.com").await;
    app.sql("UPDATE plans SET max_webhooks = NULL").await;

    // Two clicks of one visitor: the first from a newsletter, the last from a Google ad.
    collect(
        &app,
        &shop.site,
        "sweep-visitor",
        "https://shop.example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_content=header&utm_term=shoes",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    collect(
        &app,
        &shop.site,
        "sweep-visitor",
        "https://shop.example.com/sale?utm_source=google&utm_medium=cpc&utm_campaign=summer&utm_content=banner&utm_term=boots&gclid=Cj0sweep",
    )
    .await;
    // What the snippet cannot set from a local test: countries, devices, referrers and the link.
    app.sql(
        "UPDATE touches SET country = 'DE', device_type = 'mobile', referrer = 'https://mail.example.net/'
         WHERE utm_source = 'newsletter'",
    )
    .await;
    app.sql(&format!(
        "UPDATE touches SET country = 'US', device_type = 'desktop', referrer = 'https://www.google.com/',
                link_id = '{LINK}', target_id = '{TARGET}'
         WHERE utm_source = 'google'"
    ))
    .await;
    identify(&app, &shop.site, "sweep-visitor", "sweep.buyer@example.com").await;
    let quality: i64 = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use postback_domain::schema::touches;
        let mut conn = app.conn().await;
        touches::table
            .filter(touches::utm_source.eq("google"))
            .select(touches::quality_score)
            .first::<i32>(&mut conn)
            .await
            .expect("last touch")
            .into()
    };

    // Earlier events of the same email: one conversion and one refund.
    for event in ["purchase", "refund"] {
        let (status, body) = app
            .inbound(
                &shop.key,
                json!({"email": "sweep.buyer@example.com", "event": event, "value": 10}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let mut cases = touch_cases(
        &[
            ("utm_source", "newsletter"),
            ("utm_medium", "email"),
            ("utm_campaign", "spring"),
            ("utm_content", "header"),
            ("utm_term", "shoes"),
            ("country", "DE"),
            ("deviceType", "mobile"),
            ("referrer", "https://mail.example.net/"),
        ],
        &[
            ("utm_source", "google"),
            ("utm_medium", "cpc"),
            ("utm_campaign", "summer"),
            ("utm_content", "banner"),
            ("utm_term", "boots"),
            ("country", "US"),
            ("deviceType", "desktop"),
            ("referrer", "https://www.google.com/"),
        ],
    );
    let c = |field: &str, op: &str, value: Value| json!({"field": field, "op": op, "value": value});
    cases.extend([
        (
            "isFromGoogleAds",
            c("isFromGoogleAds", "equals", json!(true)),
            c("isFromGoogleAds", "equals", json!(false)),
        ),
        (
            "isFromFacebookAds",
            c("isFromFacebookAds", "equals", json!(false)),
            c("isFromFacebookAds", "equals", json!(true)),
        ),
        (
            "isFromTikTokAds",
            c("isFromTikTokAds", "equals", json!(false)),
            c("isFromTikTokAds", "equals", json!(true)),
        ),
        (
            "revenue",
            c("revenue", "greater_than", json!(100)),
            c("revenue", "less_than", json!(100)),
        ),
        (
            "currency",
            c("currency", "equals", json!("EUR")),
            c("currency", "equals", json!("USD")),
        ),
        (
            "event",
            c("event", "equals", json!("event3")),
            c("event", "equals", json!("purchase")),
        ),
        (
            "conversionCount",
            c("conversionCount", "equals", json!(1)),
            c("conversionCount", "greater_than", json!(1)),
        ),
        (
            "eventCount",
            c("eventCount", "equals", json!(2)),
            c("eventCount", "less_than", json!(2)),
        ),
        (
            "qualityScore",
            c("qualityScore", "equals", json!(quality)),
            c("qualityScore", "greater_than", json!(quality)),
        ),
        (
            "linkId",
            c("linkId", "equals", json!(LINK)),
            c("linkId", "equals", json!(TARGET)),
        ),
        (
            "targetId",
            c("targetId", "equals", json!(TARGET)),
            c("targetId", "equals", json!(LINK)),
        ),
        (
            "eventNumber",
            c("eventNumber", "equals", json!(3)),
            c("eventNumber", "equals", json!(4)),
        ),
    ]);
    let covered: BTreeSet<&str> = cases.iter().map(|c| c.0).collect();
    let every: BTreeSet<&str> = postback_domain::conditions::FIELDS
        .iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(covered, every, "the sweep covers every field of seed 002");

    let mut expected = BTreeSet::new();
    for (i, (field, holds, fails)) in cases.iter().enumerate() {
        for (tag, condition) in [("holds", holds), ("fails", fails)] {
            let path = format!("/{i}-{field}-{tag}");
            let (status, hook) = shop
                .user
                .post(
                    "/v1/integrations/webhooks",
                    json!({
                        "url": receiver.url(&path),
                        "events": ["event3"],
                        "conditions": [condition],
                    }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{condition}: {hook}");
            if tag == "holds" {
                expected.insert(path);
            }
        }
    }

    let (status, body) = app
        .inbound(
            &shop.key,
            json!({"email": "sweep.buyer@example.com", "event": "event3", "value": 120, "currency": "EUR"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    receiver
        .wait_for(expected.len(), Duration::from_secs(20))
        .await;
    // Anything that was going to arrive wrongly has had time to.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got: BTreeSet<String> = receiver.received().iter().map(|r| r.path.clone()).collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    let wrong: Vec<_> = got.difference(&expected).collect();
    assert!(
        missing.is_empty(),
        "conditions that hold but did not fire: {missing:?}"
    );
    assert!(
        wrong.is_empty(),
        "conditions that fail but fired: {wrong:?}"
    );
    assert_eq!(receiver.received().len(), expected.len(), "each fired once");
}
