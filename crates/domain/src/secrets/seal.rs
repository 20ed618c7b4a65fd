//! Secrets at rest: webhook secrets and platform credentials are stored sealed with AES-256-GCM
//! under a key from configuration (`POSTBACK_SECRET_KEY`, or a key file the server creates in its
//! data directory), as `enc:v1:` + base64(nonce ‖ ciphertext). Values written before sealing
//! existed read back as they are, and [`seal_legacy`] seals them at start-up.

use std::sync::OnceLock;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::{DomainError, DomainResult};
use crate::schema::{connections, webhooks};
use crate::secrets::random_bytes;

const PREFIX: &str = "enc:v1:";

static CIPHER: OnceLock<Aes256Gcm> = OnceLock::new();

/// Installs the process's key (once; later calls with the same key are harmless, another key is
/// refused).
pub fn install(key: &[u8; 32]) -> Result<(), String> {
    let cipher = Aes256Gcm::new(key.into());
    if CIPHER.set(cipher).is_err() {
        // Already installed: only fine if it is the same key.
        let probe = seal("probe").map_err(|e| e.to_string())?;
        let mine = Aes256Gcm::new(key.into());
        if open_with(&mine, &probe).is_err() {
            return Err("a different secret key is already installed".into());
        }
    }
    Ok(())
}

/// Parses `POSTBACK_SECRET_KEY`: 32 bytes as base64 or 64 hex characters.
pub fn parse_key(raw: &str) -> Result<[u8; 32], String> {
    let raw = raw.trim();
    let bytes = if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(raw).map_err(|e| e.to_string())?
    } else {
        STANDARD
            .decode(raw)
            .map_err(|_| "must be 32 bytes as base64 or 64 hex characters".to_owned())?
    };
    bytes
        .try_into()
        .map_err(|_| "must be exactly 32 bytes (base64 or 64 hex characters)".to_owned())
}

/// A fresh random key, base64, for a key file.
pub fn generate_key() -> String {
    STANDARD.encode(random_bytes::<32>())
}

fn cipher() -> DomainResult<&'static Aes256Gcm> {
    CIPHER
        .get()
        .ok_or_else(|| DomainError::internal("no secret key installed"))
}

pub fn seal(plain: &str) -> DomainResult<String> {
    let nonce_bytes = random_bytes::<12>();
    let ct = cipher()?
        .encrypt(&Nonce::from(nonce_bytes), plain.as_bytes())
        .map_err(|_| DomainError::internal("sealing failed"))?;
    let mut out = nonce_bytes.to_vec();
    out.extend_from_slice(&ct);
    Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
}

fn open_with(cipher: &Aes256Gcm, stored: &str) -> DomainResult<String> {
    let Some(b64) = stored.strip_prefix(PREFIX) else {
        return Ok(stored.to_owned());
    };
    let raw = STANDARD
        .decode(b64)
        .map_err(|_| DomainError::internal("sealed value is not base64"))?;
    if raw.len() < 12 {
        return Err(DomainError::internal("sealed value is too short"));
    }
    let (nonce, ct) = raw.split_at(12);
    let nonce =
        Nonce::try_from(nonce).map_err(|_| DomainError::internal("sealed value is too short"))?;
    let plain = cipher.decrypt(&nonce, ct).map_err(|_| {
        DomainError::internal("a stored secret does not open with this POSTBACK_SECRET_KEY")
    })?;
    String::from_utf8(plain).map_err(|_| DomainError::internal("sealed value is not UTF-8"))
}

/// The plaintext of a stored value (a value stored before sealing existed comes back as is).
pub fn open(stored: &str) -> DomainResult<String> {
    open_with(cipher()?, stored)
}

pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Credentials JSON as stored: `{"sealed": "enc:v1:…"}`.
pub fn seal_json(value: &serde_json::Value) -> DomainResult<serde_json::Value> {
    Ok(serde_json::json!({ "sealed": seal(&value.to_string())? }))
}

/// The credentials JSON back (stored before sealing existed: as it is).
pub fn open_json(stored: &serde_json::Value) -> DomainResult<serde_json::Value> {
    match stored.get("sealed").and_then(|v| v.as_str()) {
        Some(s) => serde_json::from_str(&open(s)?)
            .map_err(|_| DomainError::internal("sealed credentials are not JSON")),
        None => Ok(stored.clone()),
    }
}

/// Seals what an older version stored in clear. Returns how many values it sealed.
pub async fn seal_legacy(conn: &mut AsyncPgConnection) -> DomainResult<usize> {
    let mut n = 0;
    let hooks: Vec<(uuid::Uuid, Option<String>)> = webhooks::table
        .select((webhooks::id, webhooks::secret))
        .load(conn)
        .await?;
    for (id, secret) in hooks {
        if let Some(s) = secret.filter(|s| !is_sealed(s)) {
            diesel::update(webhooks::table.find(id))
                .set(webhooks::secret.eq(seal(&s)?))
                .execute(conn)
                .await?;
            n += 1;
        }
    }
    let conns: Vec<(uuid::Uuid, serde_json::Value)> = connections::table
        .select((connections::id, connections::credentials))
        .load(conn)
        .await?;
    for (id, creds) in conns {
        if creds.get("sealed").is_none() {
            diesel::update(connections::table.find(id))
                .set(connections::credentials.eq(seal_json(&creds)?))
                .execute(conn)
                .await?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens() {
        install(&[7u8; 32]).expect("key");
        let sealed = seal("whsec_abc").expect("seal");
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("whsec_abc"));
        assert_ne!(
            sealed,
            seal("whsec_abc").expect("seal"),
            "fresh nonce each time"
        );
        assert_eq!(open(&sealed).expect("open"), "whsec_abc");
        assert_eq!(open("legacy-plain").expect("open"), "legacy-plain");
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('A');
        assert!(open(&tampered).is_err() || open(&tampered).ok().as_deref() != Some("whsec_abc"));
        assert_eq!(parse_key(&"ab".repeat(32)).expect("hex"), [0xab; 32]);
        assert!(parse_key("short").is_err());
        let j = serde_json::json!({"accessToken": "EAAB"});
        let s = seal_json(&j).expect("seal");
        assert!(!s.to_string().contains("EAAB"));
        assert_eq!(open_json(&s).expect("open"), j);
    }
}
