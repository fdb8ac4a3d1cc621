//! Credentials: API keys (random, stored as SHA-256 hashes) and, later, dashboard sessions.
//! Who may do what is the domain's `Role::allows`; this module only proves who is calling.

pub mod keys;
