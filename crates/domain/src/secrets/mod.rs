//! Random tokens from the OS CSPRNG and the one-way hashes they are stored as.

use rand::rngs::SysRng;
use rand::TryRng;
use sha2::{Digest, Sha256};

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // As rand 0.8's `OsRng.fill_bytes` did, a failing OS generator is a panic, never weak bytes.
    SysRng
        .try_fill_bytes(&mut bytes)
        .unwrap_or_else(|e| panic!("the OS random generator failed: {e}"));
    bytes
}

pub fn sha256(input: &[u8]) -> Vec<u8> {
    Sha256::digest(input).to_vec()
}

pub fn sha256_hex(input: &[u8]) -> String {
    hex::encode(Sha256::digest(input))
}

/// Constant-time comparison of two byte strings.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub mod seal;
