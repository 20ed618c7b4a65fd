//! Request signing: seed 003's `X-Webhook-Signature: sha256=<hex>` over the raw body with the
//! secret as the user holds it, and the Standard Webhooks headers (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64>` over `id.timestamp.body`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return Vec::new();
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `sha256=` + hex HMAC-SHA256(secret, body), as seed 003's Node snippet computes it.
pub fn seed_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac(secret.as_bytes(), &[body])))
}

/// `v1,` + base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}").
pub fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = postback_domain::delivery::webhooks::standard_key(secret);
    let ts = timestamp.to_string();
    let sig = hmac(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", STANDARD.encode(sig))
}

/// The header that carries the previous secret's seed-003 signature during a rotation's overlap
/// (`X-Webhook-Signature` carries the new secret's).
pub const PREVIOUS_SIGNATURE_HEADER: &str = "X-Webhook-Signature-Previous";

/// The signature headers for one attempt. During a rotation's overlap (`previous` given),
/// `webhook-signature` carries both signatures, the new secret's first, space-separated (the
/// Standard Webhooks libraries accept any that matches), and the previous secret's seed-003
/// signature goes in [`PREVIOUS_SIGNATURE_HEADER`].
pub fn headers(
    secret: Option<&str>,
    previous: Option<&str>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
    ];
    if let Some(secret) = secret {
        h.push(("X-Webhook-Signature", seed_signature(secret, body)));
        let mut standard = standard_signature(secret, id, timestamp, body);
        if let Some(previous) = previous {
            h.push((PREVIOUS_SIGNATURE_HEADER, seed_signature(previous, body)));
            standard.push(' ');
            standard.push_str(&standard_signature(previous, id, timestamp, body));
        }
        h.push(("webhook-signature", standard));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks specification.
        let sig = standard_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn an_overlap_signs_with_both_secrets() {
        let h = headers(Some("new-secret"), Some("old-secret"), "msg_1", 1, b"{}");
        let get = |k: &str| h.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("webhook-signature").expect("standard"),
            format!(
                "{} {}",
                standard_signature("new-secret", "msg_1", 1, b"{}"),
                standard_signature("old-secret", "msg_1", 1, b"{}")
            )
        );
        assert_eq!(
            get("X-Webhook-Signature"),
            Some(seed_signature("new-secret", b"{}"))
        );
        assert_eq!(
            get(PREVIOUS_SIGNATURE_HEADER),
            Some(seed_signature("old-secret", b"{}"))
        );
        let plain = headers(Some("new-secret"), None, "msg_1", 1, b"{}");
        assert!(plain.iter().all(|(n, _)| *n != PREVIOUS_SIGNATURE_HEADER));
    }

    #[test]
    fn seed_signature_is_hex_hmac_of_the_body() {
        let s = seed_signature("your-signing-secret", b"{}");
        assert!(s.starts_with("sha256="));
        assert_eq!(s.len(), 7 + 64);
    }
}
