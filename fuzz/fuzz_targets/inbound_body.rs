//! The inbound endpoint's body path (`crates/api/src/inbound.rs`, `submission`): raw bytes,
//! decoded as JSON or as a bracket-notation form, then validated by `inbound::parse`.
//!
//! Input layout: byte 0 is a flag byte; bit 0 picks the form decoder (else JSON), bit 1 says a
//! query string follows (byte 1 is its length), the rest is the body. The query string is read
//! for `?event=` exactly as the API reads it.
//!
//! Invariants checked on every accepted body are the limits `inbound::parse` documents and the
//! OpenAPI document (`InboundEvent`, `Product`) promises to clients.
#![no_main]

use chrono::{DateTime, TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use postback_domain::tenancy::accounts::is_valid_email;
use postback_domain::ingest::parse::{self as inbound, ParsedEvent, KNOWN_FIELDS, MAX_DEPTH};
use postback_domain::secrets;
use postback_domain::tracking::geo;
use serde_json::Value;

/// The API refuses larger bodies before parsing them.
const MAX_BODY_BYTES: usize = 64 * 1024;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (query, body) = if flags & 2 != 0 {
        let Some((&len, rest)) = rest.split_first() else {
            return;
        };
        let len = usize::from(len).min(rest.len());
        rest.split_at(len)
    } else {
        (&[][..], rest)
    };
    if body.len() > MAX_BODY_BYTES {
        return;
    }
    let query_event = url::form_urlencoded::parse(query)
        .find(|(k, _)| k == "event")
        .map(|(_, v)| v.into_owned());

    let value: Value = if flags & 1 != 0 {
        match inbound::form_to_json(body) {
            Ok(v) => {
                check_form_value(&v);
                v
            }
            Err(_) => return,
        }
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return,
        }
    };
    let Ok(event) = inbound::parse(value.clone(), query_event.as_deref(), now()) else {
        return;
    };
    check_event(&event, &value, query_event.as_deref());
});

/// What `form_to_json` builds: an object of strings, objects and arrays, nested no deeper than
/// bracket notation allows.
fn check_form_value(v: &Value) {
    assert!(v.is_object(), "a form decodes to an object: {v}");
    fn walk(v: &Value) {
        match v {
            Value::String(_) => {}
            Value::Array(items) => items.iter().for_each(walk),
            Value::Object(map) => map.values().for_each(walk),
            other => panic!("a form holds only strings, objects and arrays: {other}"),
        }
    }
    walk(v);
    assert!(
        inbound::depth(v) <= MAX_DEPTH,
        "form nested deeper than its bracket limit"
    );
}

/// Optional text: trimmed, non-empty, at most `max` characters (the OpenAPI maxLength).
fn check_text(name: &str, v: &Option<String>, max: usize) {
    if let Some(s) = v {
        assert!(!s.is_empty(), "{name} is empty instead of absent");
        assert_eq!(s.trim(), s, "{name} is not trimmed");
        assert!(
            s.chars().count() <= max,
            "{name} is longer than {max} characters"
        );
    }
}

fn check_event(parsed: &ParsedEvent, body: &Value, query_event: Option<&str>) {
    let e = &parsed.fields;
    // email: a valid address, normalised, hashed.
    assert!(is_valid_email(&e.email), "email {:?} is not valid", e.email);
    assert_eq!(
        e.email,
        e.email.trim().to_lowercase(),
        "email not normalised"
    );
    assert!(e.email.len() <= 254, "email longer than 254");
    assert_eq!(e.email_sha256, secrets::sha256(e.email.as_bytes()));

    // event: a name that validates again, unchanged; from the body or else the query.
    assert_eq!(
        inbound::validate_event_name(&e.event_name).ok().as_deref(),
        Some(e.event_name.as_str()),
        "event name does not validate again"
    );
    let from_body = body
        .get("event")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match from_body {
        Some(name) => assert_eq!(name, e.event_name),
        None => assert_eq!(query_event.map(str::trim), Some(e.event_name.as_str())),
    }

    // value: a finite number; one given as value or total is below 1e15 in magnitude.
    if let Some(v) = e.value {
        assert!(v.is_finite(), "value {v} is not finite");
    }
    let given = ["value", "total"]
        .iter()
        .any(|k| !matches!(body.get(*k), None | Some(Value::Null)));
    if given {
        if let Some(v) = e.value {
            assert!(v.abs() < 1e15, "value {v} out of range");
        }
    }

    // currency: an ISO 4217 code in upper case.
    assert!(
        iso_code(&e.currency),
        "currency {:?} is not ISO 4217",
        e.currency
    );

    // timestamp: within the accepted window.
    assert!(e.occurred_at <= now() + chrono::Duration::days(1));
    assert!(e.occurred_at.timestamp() >= 946_684_800);

    // ip: an address, in its canonical form.
    if let Some(ip) = &e.ip {
        let parsed: std::net::IpAddr = ip.parse().expect("ip parses");
        assert_eq!(&parsed.to_string(), ip);
    }

    // country code: ISO 3166 alpha-2.
    if let Some(code) = &e.country_code {
        assert_eq!(code.len(), 2, "countryCode {code:?} is not alpha-2");
        assert!(geo::country_name(code).is_some(), "countryCode {code:?}");
    }
    if let Some(code) = &e.state_code {
        assert_eq!(code, &code.to_ascii_uppercase());
    }

    // The OpenAPI document's maxLength of every text field.
    check_text("orderId", &e.order_id, 255);
    check_text("firstName", &e.first_name, 200);
    check_text("lastName", &e.last_name, 200);
    check_text("phone", &e.phone, 64);
    check_text("city", &e.city, 200);
    check_text("country", &e.country, 100);
    check_text("countryCode", &e.country_code, 3);
    check_text("state", &e.state, 100);
    check_text("stateCode", &e.state_code, 10);
    check_text("guid", &e.guid, 255);
    check_text("productName", &e.product_name, 1024);
    check_text("productLink", &e.product_link, 2048);
    check_text("productImage", &e.product_image, 2048);
    check_text("ip", &e.ip, 64);

    // products: at most 100, each with a name and link, numbers finite, none negative
    // (`Product`'s schema: price and quantity have minimum 0).
    let products = e.products();
    assert!(products.len() <= 100);
    for p in &products {
        check_text("products[].name", &Some(p.name.clone()), 1024);
        check_text("products[].link", &Some(p.link.clone()), 2048);
        check_text("products[].id", &p.id, 1024);
        check_text("products[].image", &p.image, 2048);
        assert!(p.quantity.is_finite() && p.quantity >= 0.0 && p.quantity < 1e15);
        if let Some(price) = p.price {
            assert!(price.is_finite() && price.abs() < 1e15);
            assert!(price >= 0.0, "products[].price {price} is negative");
        }
    }

    // payload: the unknown fields only, as sent, within the depth limit.
    let Value::Object(kept) = &parsed.payload else {
        panic!("payload is not an object");
    };
    let sent = body.as_object().expect("an accepted body is an object");
    for (k, v) in kept {
        assert!(!KNOWN_FIELDS.contains(&k.as_str()), "{k} kept twice");
        assert_eq!(sent.get(k), Some(v), "{k} not kept as sent");
    }
    let unknown = sent
        .keys()
        .filter(|k| !KNOWN_FIELDS.contains(&k.as_str()))
        .count();
    assert_eq!(unknown, kept.len(), "an unknown field was dropped");
    assert!(inbound::depth(&parsed.payload) <= MAX_DEPTH);
}

fn iso_code(code: &str) -> bool {
    code.len() == 3
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && iso_currency::Currency::from_code(code).is_some()
}
