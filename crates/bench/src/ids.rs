//! Event and delivery ids as the bench keeps them: a UUID's 128 bits, parsed straight from the
//! bytes of an answer or a header, so matching a delivery to its inbound 200 costs a hash lookup
//! on a `u128` and no allocation.

/// `8-4-4-4-12` hex (or 32 hex digits without dashes) → its 128 bits.
pub fn parse_uuid(text: &[u8]) -> Option<u128> {
    let mut value: u128 = 0;
    let mut digits = 0;
    for &b in text {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            b'-' => continue,
            _ => return None,
        };
        digits += 1;
        if digits > 32 {
            return None;
        }
        value = value << 4 | u128::from(d);
    }
    (digits == 32).then_some(value)
}

/// The UUID in the first `"<name>":"<uuid>"` of a compact JSON document (what serde_json and
/// actix-web write: no spaces around the colon).
pub fn json_uuid_field(json: &[u8], name: &str) -> Option<u128> {
    let mut pattern = Vec::with_capacity(name.len() + 5);
    pattern.push(b'"');
    pattern.extend_from_slice(name.as_bytes());
    pattern.extend_from_slice(b"\":\"");
    let start = find(json, &pattern)? + pattern.len();
    let rest = &json[start..];
    let end = rest.iter().position(|&b| b == b'"')?;
    parse_uuid(&rest[..end])
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        let id = "0190f5c2-7d3e-7a41-9b1c-3f2e4d5c6b7a";
        assert_eq!(
            parse_uuid(id.as_bytes()),
            Some(0x0190_f5c2_7d3e_7a41_9b1c_3f2e_4d5c_6b7a)
        );
        assert_eq!(
            parse_uuid(id.replace('-', "").to_uppercase().as_bytes()),
            parse_uuid(id.as_bytes())
        );
        assert_eq!(parse_uuid(b"0190f5c2"), None);
        assert_eq!(parse_uuid(b"0190f5c2-7d3e-7a41-9b1c-3f2e4d5c6b7a0"), None);
        assert_eq!(parse_uuid(b"zz90f5c2-7d3e-7a41-9b1c-3f2e4d5c6b7a"), None);
    }

    #[test]
    fn fields() {
        let answer =
            br#"{"ok":true,"dispatched":[],"eventId":"0190f5c2-7d3e-7a41-9b1c-3f2e4d5c6b7a"}"#;
        assert_eq!(
            json_uuid_field(answer, "eventId"),
            Some(0x0190_f5c2_7d3e_7a41_9b1c_3f2e_4d5c_6b7a)
        );
        assert_eq!(json_uuid_field(answer, "id"), None);
        assert_eq!(json_uuid_field(br#"{"ok":false}"#, "eventId"), None);
    }
}
