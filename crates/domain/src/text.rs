//! Text rules for everything that is written to PostgreSQL, in one place.
//!
//! A PostgreSQL database in UTF-8 stores any Unicode text but U+0000: `text` columns refuse the
//! byte (SQLSTATE 22021) and `jsonb` refuses the escape `\u0000` (SQLSTATE 22P05). Rust strings and
//! `serde_json` values can hold it, so every path that writes checks here first:
//!
//! - what a client submits to be kept as sent (inbound events, the management API, dashboard
//!   forms) is **refused** with a message naming the field ([`check_json`], [`check_field`],
//!   [`check_pairs`]);
//! - what anonymous visitors' browsers report (tracking-link clicks, landings, identifies) is
//!   **cleaned** ([`scrub`], [`scrub_json`]): the visitor is redirected and the report recorded
//!   without the characters PostgreSQL cannot hold.
//! - what receivers and ad platforms answer (a response excerpt, an error message) is
//!   **cleaned** before the attempt is recorded (`delivery::queue::record`).
//!
//! [`crate::error::is_refused_text`] recognises the two SQLSTATEs, so a write that still reaches the server
//! with such text is answered as the client's error, never as an outage.

use std::borrow::Cow;

use serde_json::Value;

use crate::error::{DomainError, DomainResult};

/// Characters PostgreSQL's UTF-8 text and jsonb cannot hold.
pub fn is_refused_char(c: char) -> bool {
    c == '\0'
}

/// Whether `s` can be stored as it is.
pub fn is_storable(s: &str) -> bool {
    !s.chars().any(is_refused_char)
}

fn refused(field: &str) -> DomainError {
    DomainError::invalid(format!("{field} must not contain NUL (\\u0000) characters"))
}

/// Refuses a text field that cannot be stored; the error names `field`.
pub fn check_field(field: &str, s: &str) -> DomainResult<()> {
    if is_storable(s) {
        Ok(())
    } else {
        Err(refused(field))
    }
}

/// Refuses a JSON document holding text that cannot be stored, in a value or a field name; the
/// error names the first such place as a path (`orderId`, `products[0].name`, `a field name`).
pub fn check_json(v: &Value) -> DomainResult<()> {
    match first_refused(v, &mut String::new()) {
        None => Ok(()),
        Some(path) => Err(refused(&path)),
    }
}

fn first_refused(v: &Value, path: &mut String) -> Option<String> {
    match v {
        Value::String(s) if !is_storable(s) => Some(if path.is_empty() {
            "the body".to_owned()
        } else {
            path.clone()
        }),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = first_refused(item, path);
            path.truncate(len);
            found
        }),
        Value::Object(fields) => fields.iter().find_map(|(k, item)| {
            if !is_storable(k) {
                return Some(if path.is_empty() {
                    "a field name".to_owned()
                } else {
                    format!("a field name inside {path}")
                });
            }
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(k);
            let found = first_refused(item, path);
            path.truncate(len);
            found
        }),
        _ => None,
    }
}

/// Refuses decoded `name=value` pairs (a query string or a form) holding text that cannot be
/// stored; the error names the field (`query parameter email`, say).
pub fn check_pairs<'a>(
    what: &str,
    pairs: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
) -> DomainResult<()> {
    for (k, v) in pairs {
        if !is_storable(&k) {
            return Err(refused(&format!("a {what} name")));
        }
        if !is_storable(&v) {
            return Err(refused(&format!("{what} {k}")));
        }
    }
    Ok(())
}

/// `s` without the characters PostgreSQL cannot hold (borrowed when there are none).
pub fn scrub(s: &str) -> Cow<'_, str> {
    if is_storable(s) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().filter(|c| !is_refused_char(*c)).collect())
    }
}

/// [`scrub`] in place, for an owned string.
pub fn scrub_owned(s: &mut String) {
    if !is_storable(s) {
        s.retain(|c| !is_refused_char(c));
    }
}

/// [`scrub`] of every string and field name of a JSON document.
pub fn scrub_json(v: &mut Value) {
    match v {
        Value::String(s) => scrub_owned(s),
        Value::Array(items) => items.iter_mut().for_each(scrub_json),
        Value::Object(fields) => {
            if fields.keys().any(|k| !is_storable(k)) {
                let old = std::mem::take(fields);
                for (mut k, mut item) in old {
                    scrub_owned(&mut k);
                    scrub_json(&mut item);
                    fields.insert(k, item);
                }
            } else {
                fields.values_mut().for_each(scrub_json);
            }
        }
        _ => {}
    }
}

/// 10000 → "10,000".
pub fn thousands(n: i64) -> String {
    num_format::ToFormattedString::to_formatted_string(&n, &num_format::Locale::en)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(v: Value) -> String {
        check_json(&v).unwrap_err().to_string()
    }

    #[test]
    fn a_nul_is_named_by_its_path() {
        assert!(check_json(&json!({"a": "b", "c": [1, "d"], "e": {"f": null}})).is_ok());
        assert_eq!(
            message(json!({"orderId": "A\u{0}B"})),
            "orderId must not contain NUL (\\u0000) characters"
        );
        assert_eq!(
            message(json!({"products": [{"name": "ok"}, {"name": "\u{0}"}]})),
            "products[1].name must not contain NUL (\\u0000) characters"
        );
        assert_eq!(
            message(json!({"x\u{0}": 1})),
            "a field name must not contain NUL (\\u0000) characters"
        );
        assert_eq!(
            message(json!({"meta": {"x\u{0}": 1}})),
            "a field name inside meta must not contain NUL (\\u0000) characters"
        );
        assert_eq!(
            message(json!("\u{0}")),
            "the body must not contain NUL (\\u0000) characters"
        );
    }

    #[test]
    fn pairs_are_named_by_their_field() {
        let ok = [(Cow::from("email"), Cow::from("a@b.c"))];
        assert!(check_pairs("query parameter", ok).is_ok());
        let bad = [(Cow::from("email"), Cow::from("a\u{0}"))];
        assert_eq!(
            check_pairs("query parameter", bad).unwrap_err().to_string(),
            "query parameter email must not contain NUL (\\u0000) characters"
        );
    }

    #[test]
    fn scrubbing_removes_only_what_cannot_be_stored() {
        assert!(matches!(scrub("plain ünïcode ✓"), Cow::Borrowed(_)));
        assert_eq!(scrub("a\u{0}b\u{0}"), "ab");
        let mut v = json!({"k\u{0}": ["x\u{0}y", 1], "z": "ok"});
        scrub_json(&mut v);
        assert_eq!(v, json!({"k": ["xy", 1], "z": "ok"}));
        assert!(check_json(&v).is_ok());
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(10000), "10,000");
        assert_eq!(thousands(1000000), "1,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(-1234567), "-1,234,567");
        assert_eq!(thousands(i64::MIN), "-9,223,372,036,854,775,808");
    }
}
