//! Webhook conditions (`crates/domain/src/conditions.rs`): `validate` on arbitrary JSON, then
//! `holds` / `all_hold` on arbitrary facts; `validate_events` and `event_number` on the way.
//!
//! Input layout: up to three parts separated by a 0xFF byte (never part of UTF-8 text): the
//! `conditions` JSON a client sends, the `events` JSON, then bytes that `arbitrary` turns into
//! the facts of an arriving event. The facts' texts are drawn from the strings of the two JSON
//! parts (as they are, in upper case, or inside other text) or are arbitrary, so that
//! conditions and facts meet often enough for the comparisons to be exercised.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use postback_domain::conditions::{
    all_hold, event_number, find_field, holds, validate, validate_events, Condition, Facts, Kind,
    Operator, Source, TouchChoice, TouchFacts,
};
use serde_json::Value;

#[derive(Arbitrary, Debug)]
enum Text {
    Pool(u8),
    Upper(u8),
    Prefixed(String, u8),
    Suffixed(u8, String),
    Wrapped(String, u8, String),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum EventName {
    Numbered(u8),
    Trigger(u8),
    Named(Text),
}

#[derive(Arbitrary, Debug)]
struct ArbFacts {
    event: EventName,
    revenue: Option<f64>,
    currency: Text,
    conversion_count: i64,
    event_count: i64,
    first: Option<ArbTouch>,
    last: Option<ArbTouch>,
}

#[derive(Arbitrary, Debug)]
struct ArbTouch {
    utm_source: Option<Text>,
    utm_medium: Option<Text>,
    utm_campaign: Option<Text>,
    utm_content: Option<Text>,
    utm_term: Option<Text>,
    country: Option<Text>,
    device_type: Option<Text>,
    referrer: Option<Text>,
    gclid: Option<String>,
    gbraid: Option<String>,
    wbraid: Option<String>,
    fbclid: Option<String>,
    ttclid: Option<String>,
    quality_score: Option<i32>,
    link_id: Option<Text>,
    target_id: Option<Text>,
}

struct Ctx {
    pool: Vec<String>,
}

impl Ctx {
    fn text(&self, t: &Text) -> String {
        let pick = |i: &u8| {
            self.pool
                .get(usize::from(*i) % self.pool.len().max(1))
                .cloned()
                .unwrap_or_default()
        };
        match t {
            Text::Pool(i) => pick(i),
            Text::Upper(i) => pick(i).to_uppercase(),
            Text::Prefixed(a, i) => format!("{a}{}", pick(i)),
            Text::Suffixed(i, b) => format!("{}{b}", pick(i)),
            Text::Wrapped(a, i, b) => format!("{a}{}{b}", pick(i)),
            Text::Raw(s) => s.clone(),
        }
    }

    fn touch(&self, t: &ArbTouch) -> TouchFacts {
        let text = |o: &Option<Text>| o.as_ref().map(|t| self.text(t));
        TouchFacts {
            utm_source: text(&t.utm_source),
            utm_medium: text(&t.utm_medium),
            utm_campaign: text(&t.utm_campaign),
            utm_content: text(&t.utm_content),
            utm_term: text(&t.utm_term),
            country: text(&t.country),
            device_type: text(&t.device_type),
            referrer: text(&t.referrer),
            gclid: t.gclid.clone(),
            gbraid: t.gbraid.clone(),
            wbraid: t.wbraid.clone(),
            fbclid: t.fbclid.clone(),
            ttclid: t.ttclid.clone(),
            quality_score: t.quality_score,
            link_id: text(&t.link_id),
            target_id: text(&t.target_id),
        }
    }
}

/// The string values in a JSON value (not the keys), the first 64.
fn strings(v: &Value, out: &mut Vec<String>) {
    if out.len() >= 64 {
        return;
    }
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0xFF);
    let conditions_json = parts.next().unwrap_or_default();
    let events_json = parts.next().unwrap_or_default();
    let facts_bytes = parts.next().unwrap_or_default();

    if let Ok(events) = serde_json::from_slice::<Value>(events_json) {
        check_events(&events);
    }
    let Ok(raw) = serde_json::from_slice::<Value>(conditions_json) else {
        return;
    };
    let Ok(conditions) = validate(&raw) else {
        return;
    };
    check_validated(&raw, &conditions);

    let mut pool = Vec::new();
    strings(&raw, &mut pool);
    if let Ok(events) = serde_json::from_slice::<Value>(events_json) {
        strings(&events, &mut pool);
    }
    let ctx = Ctx { pool };
    let Ok(f) = ArbFacts::arbitrary_take_rest(Unstructured::new(facts_bytes)) else {
        return;
    };
    let event = match &f.event {
        EventName::Numbered(n) => format!("event{n}"),
        EventName::Trigger(i) => ["refund", "chargeback", "Refund", "conversion", "event"]
            [usize::from(*i) % 5]
            .to_owned(),
        EventName::Named(t) => ctx.text(t),
    };
    check_event_number(&event);
    let currency = ctx.text(&f.currency);
    let first = f.first.as_ref().map(|t| ctx.touch(t));
    let last = f.last.as_ref().map(|t| ctx.touch(t));
    let facts = Facts {
        event: &event,
        revenue: f.revenue,
        currency: &currency,
        conversion_count: f.conversion_count,
        event_count: f.event_count,
        first_touch: first.as_ref(),
        last_touch: last.as_ref(),
    };

    let each: Vec<bool> = conditions.iter().map(|c| holds(c, &facts)).collect();
    assert_eq!(
        all_hold(&conditions, &facts),
        each.iter().all(|h| *h),
        "all_hold is not the AND of holds"
    );
    for (c, held) in conditions.iter().zip(each) {
        check_holds(c, held, &facts);
    }
});

/// `validate_events`: trimmed, non-empty names of at most 100 characters, no duplicates,
/// at most 50.
fn check_events(raw: &Value) {
    let Ok(names) = validate_events(raw) else {
        return;
    };
    assert!(names.len() <= 50);
    for (i, n) in names.iter().enumerate() {
        assert!(!n.is_empty() && n.trim() == n && n.chars().count() <= 100);
        assert!(!names[..i].contains(n), "duplicate event name {n:?}");
    }
    assert_eq!(
        validate_events(&Value::from(names.clone())).ok(),
        Some(names)
    );
}

/// `event1` … `event10` carry their number, and no other name does.
fn check_event_number(event: &str) {
    if let Some(n) = event_number(event) {
        assert!((1..=10).contains(&n));
        assert_eq!(
            event,
            format!("event{n}"),
            "{event:?} is taken for event{n}"
        );
    }
    for n in 1..=10 {
        assert_eq!(event_number(&format!("event{n}")), Some(n));
    }
}

/// What `validate` promises about each condition, and that what is stored reads back the same.
fn check_validated(raw: &Value, conditions: &[Condition]) {
    match raw {
        Value::Null => assert!(conditions.is_empty()),
        Value::Array(rows) => assert_eq!(rows.len(), conditions.len()),
        other => panic!("validate accepted {other}"),
    }
    assert!(conditions.len() <= 20);
    for c in conditions {
        let field = find_field(&c.field).expect("a known field");
        assert!(c.op.fits(field.kind), "{:?} on {}", c.op, c.field);
        let takes_value = !matches!(c.op, Operator::IsEmpty | Operator::IsNotEmpty);
        match (takes_value, field.kind, &c.value) {
            (false, _, v) => assert!(v.is_null()),
            (true, Kind::Number, Value::Number(n)) => {
                assert!(n.as_f64().is_some_and(f64::is_finite))
            }
            (true, Kind::Bool, Value::Bool(_)) => {}
            (true, Kind::Text, Value::String(s)) => {
                assert!(!s.is_empty() && s.trim() == s && s.chars().count() <= 500)
            }
            (true, kind, v) => panic!("{kind:?} field {} with value {v}", c.field),
        }
        assert_eq!(
            c.touch.is_some(),
            field.source == Source::Touch,
            "touch on {}",
            c.field
        );
    }
    // Stored as JSON (webhooks.conditions) and read back with serde (Webhook::rules), or sent
    // again by a client that read them from the API.
    let stored = serde_json::to_value(conditions).expect("serialises");
    let read: Vec<Condition> = serde_json::from_value(stored.clone()).expect("reads back");
    assert_eq!(read, conditions, "stored conditions read back differently");
    assert_eq!(
        validate(&stored).ok().as_deref(),
        Some(conditions),
        "stored conditions do not validate to themselves"
    );
}

/// The text a text condition reads (mirrors the field table of seed 002).
fn text_fact<'a>(c: &Condition, facts: &Facts<'a>) -> Option<&'a str> {
    let touch = match c.touch {
        Some(TouchChoice::First) => facts.first_touch,
        _ => facts.last_touch,
    };
    let t = |f: fn(&'a TouchFacts) -> &'a Option<String>| touch.and_then(|t| f(t).as_deref());
    match c.field.as_str() {
        "utm_source" => t(|t| &t.utm_source),
        "utm_medium" => t(|t| &t.utm_medium),
        "utm_campaign" => t(|t| &t.utm_campaign),
        "utm_content" => t(|t| &t.utm_content),
        "utm_term" => t(|t| &t.utm_term),
        "country" => t(|t| &t.country),
        "deviceType" => t(|t| &t.device_type),
        "referrer" => t(|t| &t.referrer),
        "linkId" => t(|t| &t.link_id),
        "targetId" => t(|t| &t.target_id),
        "currency" => Some(facts.currency),
        "event" => Some(facts.event),
        other => panic!("{other} is not a text field"),
    }
}

fn with_op(c: &Condition, op: Operator) -> Condition {
    Condition { op, ..c.clone() }
}

fn check_holds(c: &Condition, held: bool, facts: &Facts) {
    use Operator::*;
    let kind = find_field(&c.field).expect("known").kind;

    // Each operator and its negation disagree (revenue NaN never comes from a parsed event).
    let nan = c.field == "revenue" && facts.revenue.is_some_and(f64::is_nan);
    let opposite = match c.op {
        Equals => Some(NotEquals),
        NotEquals => Some(Equals),
        Contains => Some(NotContains),
        NotContains => Some(Contains),
        IsEmpty => Some(IsNotEmpty),
        IsNotEmpty => Some(IsEmpty),
        _ => None,
    };
    if let Some(op) = opposite.filter(|op| op.fits(kind) && !nan) {
        assert_ne!(
            held,
            holds(&with_op(c, op), facts),
            "{:?} and {op:?} agree on {}",
            c.op,
            c.field
        );
    }

    if kind != Kind::Text || !matches!(c.value, Value::String(_)) {
        return;
    }
    let want = c.value.as_str().unwrap_or_default();

    // "Text compares without regard to case": the case of the value does not matter…
    for other in [want.to_ascii_uppercase(), want.to_ascii_lowercase()] {
        let changed = Condition {
            value: Value::String(other),
            ..c.clone()
        };
        assert_eq!(held, holds(&changed, facts), "case of the value matters");
    }
    // … nor that of the fact.
    let upper_touch = |t: Option<&TouchFacts>| {
        t.map(|t| {
            let up = |s: &Option<String>| s.as_ref().map(|s| s.to_ascii_uppercase());
            TouchFacts {
                utm_source: up(&t.utm_source),
                utm_medium: up(&t.utm_medium),
                utm_campaign: up(&t.utm_campaign),
                utm_content: up(&t.utm_content),
                utm_term: up(&t.utm_term),
                country: up(&t.country),
                device_type: up(&t.device_type),
                referrer: up(&t.referrer),
                link_id: up(&t.link_id),
                target_id: up(&t.target_id),
                ..t.clone()
            }
        })
    };
    let (first, last) = (
        upper_touch(facts.first_touch),
        upper_touch(facts.last_touch),
    );
    let (event, currency) = (
        facts.event.to_ascii_uppercase(),
        facts.currency.to_ascii_uppercase(),
    );
    let upper = Facts {
        event: &event,
        currency: &currency,
        first_touch: first.as_ref(),
        last_touch: last.as_ref(),
        ..facts.clone()
    };
    assert_eq!(held, holds(c, &upper), "case of the fact matters");

    // Ignoring case only widens a comparison: what matches exactly matches.
    if let Some(actual) = text_fact(c, facts).map(str::trim).filter(|s| !s.is_empty()) {
        let exact = match c.op {
            Equals => actual == want,
            Contains => actual.contains(want),
            StartsWith => actual.starts_with(want),
            EndsWith => actual.ends_with(want),
            _ => false,
        };
        if exact {
            assert!(
                held,
                "{actual:?} {:?} {want:?} exactly, but not ignoring case",
                c.op
            );
        }
    }
}
