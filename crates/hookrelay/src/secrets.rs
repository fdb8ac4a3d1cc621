//! Secrets at rest: webhook (and source) secrets are sealed with AES-256-GCM under the master
//! key before they reach the store, bound to the row they belong to, and tagged with a key id so
//! the master key can be rotated (`hookrelay rotate-master-key`).

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "enc:v1:";

/// The current master key (seals) and previous ones (still open old values during rotation).
pub struct Keyring {
    current: (String, Aes256Gcm),
    previous: Vec<(String, Aes256Gcm)>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a master key must be base64 of exactly 32 bytes")]
    BadKey,
    #[error("sealed with master key {0}, which is not configured (set it in HOOKRELAY_PREVIOUS_MASTER_KEYS)")]
    UnknownKey(String),
    #[error("a sealed secret failed to open: wrong key or tampered data")]
    Corrupt,
    #[error("cannot read or write the master key file {0}: {1}")]
    File(String, std::io::Error),
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keyring(current={}, previous={})",
            self.current.0,
            self.previous.len()
        )
    }
}

/// Short id of a key: the first 8 hex characters of its SHA-256 (not secret).
fn key_id(key: &[u8]) -> String {
    hex::encode(&Sha256::digest(key)[..4])
}

fn cipher(encoded: &str) -> Result<(String, Aes256Gcm), KeyError> {
    let key = B64.decode(encoded.trim()).map_err(|_| KeyError::BadKey)?;
    if key.len() != 32 {
        return Err(KeyError::BadKey);
    }
    let aead = Aes256Gcm::new_from_slice(&key).map_err(|_| KeyError::BadKey)?;
    Ok((key_id(&key), aead))
}

impl Keyring {
    /// `current` and `previous` are base64 of 32 bytes.
    pub fn new(current: &str, previous: &[String]) -> Result<Self, KeyError> {
        Ok(Self {
            current: cipher(current)?,
            previous: previous
                .iter()
                .map(|k| cipher(k))
                .collect::<Result<_, _>>()?,
        })
    }

    /// A new random key, base64.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        B64.encode(key)
    }

    /// Reads the key file in `dir`, creating it (mode 0600) with a fresh key when absent.
    pub fn key_from_file(dir: &Path) -> Result<String, KeyError> {
        let path = dir.join("master.key");
        let shown = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text.trim().to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|e| KeyError::File(shown.clone(), e))?;
                let key = Self::generate_key();
                write_private(&path, &key).map_err(|e| KeyError::File(shown, e))?;
                Ok(key)
            }
            Err(e) => Err(KeyError::File(shown, e)),
        }
    }

    pub fn current_id(&self) -> &str {
        &self.current.0
    }

    /// `enc:v1:<key id>:<base64(nonce ‖ ciphertext)>`; `context` (the owning row's id) is
    /// authenticated, so a sealed value copied onto another row does not open.
    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .current
            .1
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", self.current.0, B64.encode(out))
    }

    /// Opens a sealed value; a value stored before encryption existed is returned as it is.
    pub fn open(&self, stored: &str, context: &str) -> Result<String, KeyError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (kid, data) = rest.split_once(':').ok_or(KeyError::Corrupt)?;
        let aead = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|(id, _)| id == kid)
            .map(|(_, a)| a)
            .ok_or_else(|| KeyError::UnknownKey(kid.to_owned()))?;
        let raw = B64.decode(data).map_err(|_| KeyError::Corrupt)?;
        if raw.len() < 12 {
            return Err(KeyError::Corrupt);
        }
        let (nonce, sealed) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| KeyError::Corrupt)?;
        let plain = aead
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| KeyError::Corrupt)
    }

    /// Whether a stored value is sealed with the current key (rotation skips those).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(PREFIX)
            .and_then(|r| r.split_once(':'))
            .is_some_and(|(kid, _)| kid == self.current.0)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_bound_to_context() {
        let ring = Keyring::new(&Keyring::generate_key(), &[]).unwrap();
        let sealed = ring.seal("whsec_secret", "wh_1");
        assert!(sealed.starts_with("enc:v1:"));
        assert!(!sealed.contains("whsec_secret"));
        assert_ne!(
            sealed,
            ring.seal("whsec_secret", "wh_1"),
            "fresh nonce each time"
        );
        assert_eq!(ring.open(&sealed, "wh_1").unwrap(), "whsec_secret");
        assert!(
            matches!(ring.open(&sealed, "wh_2"), Err(KeyError::Corrupt)),
            "moved to another row"
        );
        assert_eq!(
            ring.open("[legacy plaintext]", "wh_1").unwrap(),
            "[legacy plaintext]"
        );
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let (old, new) = (Keyring::generate_key(), Keyring::generate_key());
        let before = Keyring::new(&old, &[]).unwrap();
        let sealed = before.seal("s", "ctx");
        let after = Keyring::new(&new, std::slice::from_ref(&old)).unwrap();
        assert!(!after.is_current(&sealed));
        assert_eq!(after.open(&sealed, "ctx").unwrap(), "s");
        let resealed = after.seal("s", "ctx");
        assert!(after.is_current(&resealed));
        let only_new = Keyring::new(&new, &[]).unwrap();
        assert!(matches!(
            only_new.open(&sealed, "ctx"),
            Err(KeyError::UnknownKey(_))
        ));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(Keyring::new("short", &[]).is_err());
        assert!(Keyring::new(&B64.encode([0u8; 16]), &[]).is_err());
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = Keyring::key_from_file(dir.path()).unwrap();
        let b = Keyring::key_from_file(dir.path()).unwrap();
        assert_eq!(a, b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
