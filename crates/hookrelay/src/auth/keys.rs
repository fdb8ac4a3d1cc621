//! API keys: `hr_` + 43 base62 characters (about 256 bits). Stored as a SHA-256 hash — a fast
//! hash is right for high-entropy random keys, unlike passwords.

use rand::Rng;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const KEY_CHARS: usize = 43;

/// `len` characters drawn uniformly from `[0-9A-Za-z]`: keys, session tokens, passwords.
pub fn random_base62(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn generate_api_key() -> String {
    format!("hr_{}", random_base62(KEY_CHARS))
}

pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

pub fn looks_like_api_key(key: &str) -> bool {
    key.strip_prefix("hr_").is_some_and(|b| {
        b.len() >= KEY_CHARS && b.len() <= 128 && b.bytes().all(|c| c.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let a = generate_api_key();
        assert!(looks_like_api_key(&a), "{a}");
        assert_ne!(a, generate_api_key());
        assert_eq!(hash_api_key(&a), hash_api_key(&a));
        assert_eq!(hash_api_key(&a).len(), 64);
    }

    #[test]
    fn malformed_keys_are_recognised() {
        assert!(!looks_like_api_key("hr_short"));
        assert!(!looks_like_api_key(&format!("xx_{}", "a".repeat(43))));
        assert!(!looks_like_api_key(&format!("hr_{}!", "a".repeat(43))));
    }
}
