//! Credentials: API keys (random, stored as SHA-256 hashes), dashboard passwords (argon2id) and
//! session tokens. Who may do what is the domain's `Role::allows`; this module only proves who.

pub mod keys;
pub mod passwords;
pub mod sessions;
