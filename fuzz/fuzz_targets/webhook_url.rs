//! Webhook URLs (`crates/domain/src/webhooks.rs`): `expand_tokens` on arbitrary templates and
//! values, and `validate_url`, the check a URL passes when a webhook is saved.
//!
//! Input layout: the URL template as text, a 0xFF byte (never part of UTF-8 text), then bytes
//! that `arbitrary` turns into the token values of an event.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use postback_domain::delivery::webhooks::{expand_tokens, validate_url, TokenValues, TOKENS};

#[derive(Arbitrary, Debug)]
struct Values {
    revenue: Option<f64>,
    transaction: Option<String>,
    event: String,
    currency: String,
    event_id: String,
}

/// The characters a filled-in value may show: RFC 3986's unreserved ones, and `%` of an escape.
fn encoded_only(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
}

fn check_encoded(token: &str, values: &TokenValues, expected: &str) {
    let out = expand_tokens(token, values);
    assert!(
        encoded_only(&out),
        "{token} expands to {out:?}, with characters that should have been encoded"
    );
    let decoded = percent_decode_str(&out).decode_utf8().expect("UTF-8");
    assert_eq!(decoded, expected, "{token} does not decode to its value");
}

/// The meaning of "fills the tokens": one pass over the template, each token replaced by its
/// value as `expand_tokens` encodes it on its own, everything else kept as written.
fn reference(template: &str, values: &TokenValues) -> String {
    let mut out = String::new();
    let mut rest = template;
    'outer: while !rest.is_empty() {
        for (token, _) in TOKENS {
            if let Some(after) = rest.strip_prefix(token) {
                out.push_str(&expand_tokens(token, values));
                rest = after;
                continue 'outer;
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let (template, rest) = match data.iter().position(|b| *b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(template) = std::str::from_utf8(template) else {
        return;
    };
    let Ok(v) = Values::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let values = TokenValues {
        revenue: v.revenue,
        transaction: v.transaction.clone(),
        event: v.event.clone(),
        currency: v.currency.clone(),
        event_id: v.event_id.clone(),
    };
    let revenue = expand_tokens("[revenue]", &values);
    check_encoded(
        "[revenue]",
        &values,
        &percent_decode_str(&revenue).decode_utf8_lossy(),
    );
    if let Some(r) = v.revenue.filter(|r| r.is_finite()) {
        let shown: f64 = revenue.parse().expect("a finite revenue shows as a number");
        assert!(
            (shown - r).abs() <= 0.005 + r.abs() * 1e-15,
            "{r} shown as {revenue}"
        );
    }
    check_encoded(
        "[transaction]",
        &values,
        v.transaction.as_deref().unwrap_or(""),
    );
    check_encoded("[event]", &values, &v.event);
    check_encoded("[currency]", &values, &v.currency);
    check_encoded("[event_id]", &values, &v.event_id);

    let expanded = expand_tokens(template, &values);
    assert_eq!(
        expanded,
        reference(template, &values),
        "template {template:?} is not filled token by token"
    );

    // A URL that passes validation keeps its scheme, host, port and user whatever the values:
    // "tokens only after the host".
    let Ok(url) = validate_url(template) else {
        return;
    };
    assert_eq!(url, template.trim());
    let sample = url::Url::parse(&expand_tokens(&url, &TokenValues::sample()))
        .expect("a validated URL parses with the sample values");
    let real = url::Url::parse(&expand_tokens(&url, &values)).unwrap_or_else(|e| {
        panic!("validated {url:?} does not parse with {values:?}: {e}");
    });
    assert!(matches!(real.scheme(), "http" | "https"));
    assert!(real.host_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(
        (
            real.scheme(),
            real.host_str(),
            real.port(),
            real.username(),
            real.password()
        ),
        (
            sample.scheme(),
            sample.host_str(),
            sample.port(),
            sample.username(),
            sample.password()
        ),
        "the values of {url:?} change where it goes"
    );
});
