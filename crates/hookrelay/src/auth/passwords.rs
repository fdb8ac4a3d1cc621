//! Dashboard passwords: argon2id hashes (PHC strings) and the rules a new password must meet.
//! Hashing is deliberately slow, so callers run it on the blocking pool, never on the runtime.

use std::sync::OnceLock;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longer inputs only cost hashing time; nobody types more.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes with argon2id at the crate's recommended parameters (19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password failed: {e}"))
}

/// Whether `password` matches the stored PHC string. A malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Verifies against a fixed hash so that a login for an unknown email costs as long as one for
/// a known email: response time must not reveal which accounts exist.
pub fn burn_verification_time(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash_password("not-a-real-password-0").unwrap_or_default());
    let _ = verify_password(password, phc);
}

/// The rules for a new password, as a message for the `password` field.
pub fn check_strength(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("must be at most {MAX_PASSWORD_BYTES} bytes"));
    }
    if password.trim().is_empty() {
        return Err("must not be blank".into());
    }
    Ok(())
}

/// A plausible address: one `@` with something on each side, no spaces, at most 254 bytes.
/// Deliverability is not our business; the address is only a login name.
pub fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A random password for the bootstrap account: 24 base62 characters (~143 bits).
pub fn generate_password() -> String {
    super::keys::random_base62(24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterY", &phc));
        assert!(!verify_password("correct horse battery", "not a hash"));
        // Salted: the same password hashes differently each time.
        assert_ne!(phc, hash_password("correct horse battery").unwrap());
    }

    #[test]
    fn strength_rules() {
        assert!(check_strength("short").is_err());
        assert!(check_strength("            ").is_err());
        assert!(check_strength(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(check_strength("twelve chars").is_ok());
        assert!(check_strength(&generate_password()).is_ok());
    }

    #[test]
    fn email_shapes() {
        assert!(looks_like_email("admin@localhost"));
        assert!(looks_like_email("a.b+c@example.com"));
        for bad in ["", "admin", "@x", "x@", "a@b@c", "a b@c", "a\n@c"] {
            assert!(!looks_like_email(bad), "{bad:?}");
        }
    }
}
