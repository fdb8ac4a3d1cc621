//! Settings: built-in defaults, then an optional TOML file, then `HOOKRELAY_*` variables (the
//! environment wins). Parsed and validated once at start-up into one typed `Config`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use hookrelay_domain::quota::Quotas;
use hookrelay_domain::RetrySchedule;
use serde::Deserialize;

mod keys;

const DEFAULTS: &str = include_str!("default.toml");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Dev,
    Staging,
    Prod,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// How SQLite waits for the disk at commit (its `synchronous` pragma, in WAL mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// A commit survives the process dying (`kill -9`); an OS crash or power loss may lose
    /// the last commits.
    Normal,
    /// Every commit is on disk before it is answered: it also survives an OS crash or power
    /// loss, at the cost of an fsync per commit.
    Full,
}

/// A setting read as text even when the environment spells it like a number (`0`, `5`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Text {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<Text>),
}

impl Text {
    fn into_string(self) -> String {
        match self {
            Text::Str(s) => s,
            Text::Int(i) => i.to_string(),
            Text::Float(f) => f.to_string(),
            Text::Bool(b) => b.to_string(),
            Text::List(items) => items
                .into_iter()
                .map(Text::into_string)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Text::deserialize(d).map(Text::into_string)
}

fn opt_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<Text>::deserialize(d).map(|t| t.map(Text::into_string))
}

/// The settings as written, before validation.
#[derive(Debug, Deserialize)]
struct RawConfig {
    listen: String,
    database_url: String,
    env: Environment,
    #[serde(default, deserialize_with = "opt_text")]
    admin_key: Option<String>,
    #[serde(default, deserialize_with = "opt_text")]
    master_key: Option<String>,
    #[serde(deserialize_with = "text")]
    previous_master_keys: String,
    #[serde(deserialize_with = "text")]
    allowed_target_networks: String,
    require_https: Option<bool>,
    #[serde(deserialize_with = "text")]
    retry_schedule: String,
    delivery_timeout_ms: u64,
    log_format: Option<LogFormat>,
    #[serde(deserialize_with = "text")]
    otlp_endpoint: String,
    #[serde(deserialize_with = "text")]
    default_quotas: String,
    max_body_bytes: usize,
    ingest_queue_max_events: usize,
    worker_concurrency: usize,
    claim_batch: u32,
    handoff: bool,
    max_inflight_per_webhook: usize,
    max_inflight_per_tenant: usize,
    lease_grace_ms: u64,
    #[serde(deserialize_with = "text")]
    shutdown_grace: String,
    db_max_connections: u32,
    sqlite_synchronous: SqliteSync,
    key_cache_ttl_ms: u64,
    strict_event_types: bool,
    public_url: String,
    paypal_cert_hosts: String,
    inbound_log_retention_hours: u64,
    #[serde(deserialize_with = "text")]
    admin_email: String,
    #[serde(default, deserialize_with = "opt_text")]
    admin_password: Option<String>,
    session_ttl_secs: u64,
    login_max_failures: u32,
    login_lockout_secs: u64,
    // Endpoint health (circuit breaker, auto-disable).
    circuit_failures: u32,
    #[serde(deserialize_with = "text")]
    auto_disable_after: String,
    circuit_cooldown_ms: u64,
    retention_days: u32,
    #[serde(deserialize_with = "text")]
    alert_window: String,
    alert_failure_rate: f64,
    #[serde(deserialize_with = "text")]
    alert_backlog: String,
    alert_every_ms: u64,
}

/// Validated settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub env: Environment,
    pub admin_key: Option<String>,
    pub master_key: Option<String>,
    pub previous_master_keys: Vec<String>,
    pub allowed_target_networks: Vec<String>,
    pub require_https: bool,
    pub retry_schedule: RetrySchedule,
    pub delivery_timeout: Duration,
    pub log_format: Option<LogFormat>,
    /// The OTLP/HTTP collector's base URL (spans go to `{it}/v1/traces`); `None`: no tracing.
    pub otlp_endpoint: Option<url::Url>,
    pub default_quotas: Quotas,
    pub max_body_bytes: usize,
    /// Events accepted by the API but not yet committed, at most: past it emits are shed with
    /// `503` and `Retry-After` instead of queueing without bound.
    pub ingest_queue_max_events: usize,
    pub worker_concurrency: usize,
    pub claim_batch: u32,
    /// Fresh deliveries go from the ingest commit straight to this process's worker (see
    /// `delivery::handoff`) instead of waiting for a claim.
    pub handoff: bool,
    pub max_inflight_per_webhook: usize,
    pub max_inflight_per_tenant: usize,
    pub lease_grace: Duration,
    /// How long a stopping node lets in-flight requests and attempts finish.
    pub shutdown_grace: Duration,
    pub db_max_connections: u32,
    pub sqlite_synchronous: SqliteSync,
    pub key_cache_ttl: Duration,
    /// Refuse (`422`) webhook event patterns that match no catalog type, instead of warning.
    pub strict_event_types: bool,
    /// The externally visible base URL (`https://hooks.example.com`), for sources' `ingest_url`;
    /// absent: built from each request's `Host`.
    pub public_url: Option<String>,
    /// Hosts PayPal signing certificates may be fetched from (see `inbound::certs`).
    pub paypal_cert_hosts: Vec<crate::inbound::certs::AllowedHost>,
    /// How long the inbound requests log keeps an entry.
    pub inbound_log_retention: Duration,
    /// The bootstrap dashboard account, created at first start when no user exists.
    pub admin_email: String,
    /// Its password; generated and printed once when absent.
    pub admin_password: Option<String>,
    /// How long a login session lasts.
    pub session_ttl: Duration,
    /// Failed logins for one account, or from one address, before further attempts get `429`.
    pub login_max_failures: u32,
    /// How long such a lockout lasts (and the window failures are counted in).
    pub login_lockout: Duration,
    /// The circuit breaker and auto-disable settings (`HOOKRELAY_CIRCUIT_FAILURES`,
    /// `HOOKRELAY_AUTO_DISABLE_AFTER`).
    pub health: hookrelay_domain::health::HealthPolicy,
    /// Days a tenant's events are kept unless it sets its own `retention_days`.
    pub retention_days: u32,
    /// `HOOKRELAY_ALERT_WINDOW`, `_FAILURE_RATE`, `_BACKLOG`.
    pub alerts: hookrelay_domain::alerting::AlertThresholds,
    /// How often the alert thresholds are evaluated.
    pub alert_every: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// The folder for local state: next to the SQLite file, else `./hookrelay-data`.
    pub fn data_dir(&self) -> std::path::PathBuf {
        let path = self
            .database_url
            .strip_prefix("sqlite://")
            .or_else(|| self.database_url.strip_prefix("sqlite:"));
        match path
            .map(|p| p.split('?').next().unwrap_or(p))
            .map(std::path::Path::new)
            .and_then(|p| p.parent())
        {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => std::path::PathBuf::from("./hookrelay-data"),
        }
    }

    /// The master keyring: the configured key, or in dev/staging a key kept in the data folder.
    pub fn keyring(&self) -> Result<crate::secrets::Keyring, crate::secrets::KeyError> {
        let current = match &self.master_key {
            Some(k) => k.clone(),
            None => crate::secrets::Keyring::key_from_file(&self.data_dir())?,
        };
        crate::secrets::Keyring::new(&current, &self.previous_master_keys)
    }

    /// Loads defaults, then `file` if given, then the process environment.
    /// A key of the file that is not a setting is refused with its name.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        if let Some(path) = file {
            keys::check_file_keys(path)?;
        }
        Self::from_figment(Self::figment(file).merge(Env::prefixed("HOOKRELAY_")))
    }

    /// Defaults and an optional file, without the environment (tests layer their own).
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut fig = Figment::new().merge(Toml::string(DEFAULTS));
        if let Some(path) = file {
            fig = fig.merge(Toml::file_exact(path));
        }
        fig
    }

    pub fn from_figment(fig: Figment) -> Result<Self, ConfigError> {
        let raw: RawConfig = fig.extract().map_err(|e| ConfigError(e.to_string()))?;
        raw.validate()
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let err = |setting: &str, msg: String| {
            ConfigError(format!("HOOKRELAY_{}: {msg}", setting.to_uppercase()))
        };
        let listen = self.listen.parse().map_err(|_| {
            err(
                "listen",
                format!("`{}` is not an address like 127.0.0.1:8080", self.listen),
            )
        })?;
        let retry_schedule =
            RetrySchedule::parse(&self.retry_schedule).map_err(|m| err("retry_schedule", m))?;
        let default_quotas =
            Quotas::parse_list(&self.default_quotas).map_err(|m| err("default_quotas", m))?;
        if !(100..=300_000).contains(&self.delivery_timeout_ms) {
            return Err(err(
                "delivery_timeout_ms",
                "must be between 100 and 300000".into(),
            ));
        }
        if self.worker_concurrency == 0 || self.claim_batch == 0 {
            return Err(err(
                "worker_concurrency",
                "worker_concurrency and claim_batch must be at least 1".into(),
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(err("max_body_bytes", "must be at least 1024".into()));
        }
        if self.ingest_queue_max_events == 0 {
            return Err(err("ingest_queue_max_events", "must be at least 1".into()));
        }
        if self.env == Environment::Prod && self.master_key.as_deref().unwrap_or("").is_empty() {
            return Err(err(
                "master_key",
                "is required when HOOKRELAY_ENV=prod".into(),
            ));
        }
        let admin_key = self.admin_key.filter(|k| !k.is_empty());
        if let Some(key) = &admin_key {
            if !crate::auth::keys::looks_like_api_key(key) {
                return Err(err(
                    "admin_key",
                    "must be `hr_` followed by at least 43 base62 characters".into(),
                ));
            }
        }
        let public_url =
            Some(self.public_url.trim().trim_end_matches('/').to_owned()).filter(|u| !u.is_empty());
        if let Some(u) = &public_url {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(err(
                    "public_url",
                    format!("`{u}` must be an http(s) URL like https://hooks.example.com"),
                ));
            }
        }
        let paypal_cert_hosts = crate::inbound::certs::parse_allowlist(&self.paypal_cert_hosts)
            .map_err(|m| err("paypal_cert_hosts", m))?;
        if self.env == Environment::Prod && paypal_cert_hosts.iter().any(|h| h.http) {
            return Err(err(
                "paypal_cert_hosts",
                "http:// entries are refused when HOOKRELAY_ENV=prod".into(),
            ));
        }
        if self.inbound_log_retention_hours == 0 {
            return Err(err(
                "inbound_log_retention_hours",
                "must be at least 1".into(),
            ));
        }
        let admin_email = self.admin_email.trim().to_lowercase();
        if !crate::auth::passwords::looks_like_email(&admin_email) {
            return Err(err(
                "admin_email",
                format!("`{admin_email}` is not an email address"),
            ));
        }
        let admin_password = self.admin_password.filter(|p| !p.is_empty());
        if let Some(p) = &admin_password {
            crate::auth::passwords::check_strength(p).map_err(|m| err("admin_password", m))?;
        }
        if !(60..=30 * 86_400).contains(&self.session_ttl_secs) {
            return Err(err(
                "session_ttl_secs",
                "must be between 60 and 2592000 (30 days)".into(),
            ));
        }
        if self.login_max_failures == 0 || self.login_lockout_secs == 0 {
            return Err(err(
                "login_max_failures",
                "login_max_failures and login_lockout_secs must be at least 1".into(),
            ));
        }
        if self.circuit_failures == 0 {
            return Err(err("circuit_failures", "must be at least 1".into()));
        }
        let alert_window = hookrelay_domain::alerting::parse_duration_ms(self.alert_window.trim())
            .ok_or_else(|| {
                err(
                    "alert_window",
                    format!("`{}` is not a duration like 15m or 1h", self.alert_window),
                )
            })?;
        if !(self.alert_failure_rate > 0.0 && self.alert_failure_rate <= 1.0) {
            return Err(err(
                "alert_failure_rate",
                "must be above 0 and at most 1 (0.5 = half the attempts)".into(),
            ));
        }
        let defaults = hookrelay_domain::alerting::AlertThresholds::default();
        let (backlog_pending, backlog_age_ms) = hookrelay_domain::alerting::parse_backlog(
            &self.alert_backlog,
            defaults.backlog_pending,
            defaults.backlog_age.as_millis() as i64,
        )
        .map_err(|m| err("alert_backlog", m))?;
        if self.alert_every_ms < 50 {
            return Err(err("alert_every_ms", "must be at least 50".into()));
        }
        let shutdown_grace =
            hookrelay_domain::alerting::parse_duration_ms(self.shutdown_grace.trim())
                .filter(|ms| *ms <= 3_600_000)
                .ok_or_else(|| {
                    err(
                        "shutdown_grace",
                        format!(
                            "`{}` is not a duration like 30s or 2m (1s to 1h)",
                            self.shutdown_grace
                        ),
                    )
                })?;
        if !(1..=3650).contains(&self.retention_days) {
            return Err(err("retention_days", "must be 1-3650 days".into()));
        }
        if !(100..=600_000).contains(&self.circuit_cooldown_ms) {
            return Err(err(
                "circuit_cooldown_ms",
                "must be between 100 and 600000 (10 min)".into(),
            ));
        }
        let auto_disable_after = crate::api::webhooks::parse_window(self.auto_disable_after.trim())
            .ok_or_else(|| {
                err(
                    "auto_disable_after",
                    format!(
                        "`{}` is not a duration like 30s, 15m, 12h or 5d (at most 30d)",
                        self.auto_disable_after
                    ),
                )
            })?;
        let otlp_endpoint = match self.otlp_endpoint.trim() {
            "" => None,
            raw => Some(parse_otlp_endpoint(raw).map_err(|m| err("otlp_endpoint", m))?),
        };
        let networks = self
            .allowed_target_networks
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        Ok(Config {
            listen,
            require_https: self.require_https.unwrap_or(self.env == Environment::Prod),
            database_url: self.database_url,
            env: self.env,
            admin_key,
            master_key: self.master_key.filter(|k| !k.is_empty()),
            previous_master_keys: self
                .previous_master_keys
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            allowed_target_networks: networks,
            retry_schedule,
            delivery_timeout: Duration::from_millis(self.delivery_timeout_ms),
            log_format: self.log_format,
            otlp_endpoint,
            default_quotas,
            max_body_bytes: self.max_body_bytes,
            ingest_queue_max_events: self.ingest_queue_max_events,
            worker_concurrency: self.worker_concurrency,
            claim_batch: self.claim_batch,
            handoff: self.handoff,
            max_inflight_per_webhook: self.max_inflight_per_webhook.max(1),
            max_inflight_per_tenant: self.max_inflight_per_tenant.max(1),
            lease_grace: Duration::from_millis(self.lease_grace_ms),
            shutdown_grace: Duration::from_millis(shutdown_grace as u64),
            db_max_connections: self.db_max_connections,
            sqlite_synchronous: self.sqlite_synchronous,
            key_cache_ttl: Duration::from_millis(self.key_cache_ttl_ms),
            strict_event_types: self.strict_event_types,
            public_url,
            paypal_cert_hosts,
            inbound_log_retention: Duration::from_secs(
                self.inbound_log_retention_hours.saturating_mul(3600),
            ),
            admin_email,
            admin_password,
            session_ttl: Duration::from_secs(self.session_ttl_secs),
            login_max_failures: self.login_max_failures,
            login_lockout: Duration::from_secs(self.login_lockout_secs),
            health: hookrelay_domain::health::HealthPolicy {
                circuit_failures: self.circuit_failures,
                auto_disable_after: Duration::from_millis(auto_disable_after as u64),
                first_cooldown: Duration::from_millis(self.circuit_cooldown_ms),
            },
            retention_days: self.retention_days,
            alerts: hookrelay_domain::alerting::AlertThresholds {
                window: Duration::from_millis(alert_window as u64),
                failure_rate: self.alert_failure_rate,
                backlog_pending,
                backlog_age: Duration::from_millis(backlog_age_ms as u64),
            },
            alert_every: Duration::from_millis(self.alert_every_ms),
        })
    }
}

/// An OTLP/HTTP base URL such as `http://127.0.0.1:4318`.
fn parse_otlp_endpoint(raw: &str) -> Result<url::Url, String> {
    const EXAMPLE: &str = "the collector's OTLP/HTTP URL, like http://127.0.0.1:4318";
    let url = url::Url::parse(raw)
        .map_err(|e| format!("`{raw}` is not a URL ({e}): expected {EXAMPLE}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{raw}` must be an http:// or https:// URL (traces are sent over OTLP/HTTP): expected {EXAMPLE}"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{raw}` has no host: expected {EXAMPLE}"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{raw}` must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not hold credentials; send them as headers with OTEL_EXPORTER_OTLP_HEADERS"
                .into(),
        );
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut fig = Config::figment(None);
        for (k, v) in pairs {
            fig = fig.merge(Serialized::default(k, v));
        }
        Config::from_figment(fig)
    }

    #[test]
    fn defaults_parse() {
        let c = with(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://./hookrelay-data/hookrelay.db");
        assert_eq!(c.retry_schedule, RetrySchedule::default());
        assert_eq!(c.delivery_timeout, Duration::from_secs(15));
        assert!(!c.require_https);
        assert!(!c.strict_event_types);
        assert_eq!(c.health, hookrelay_domain::health::HealthPolicy::default());
        assert_eq!(
            c.alerts,
            hookrelay_domain::alerting::AlertThresholds::default()
        );
        assert!(with(&[("alert_backlog", "depth=3")]).is_err());
        assert!(with(&[("alert_window", "soon")]).is_err());
    }

    #[test]
    fn shutdown_grace_defaults_to_30s_and_is_bounded() {
        assert_eq!(with(&[]).unwrap().shutdown_grace, Duration::from_secs(30));
        assert_eq!(
            with(&[("shutdown_grace", "2m")]).unwrap().shutdown_grace,
            Duration::from_secs(120)
        );
        for bad in ["0s", "soon", "2h"] {
            let e = with(&[("shutdown_grace", bad)]).unwrap_err();
            assert!(
                e.to_string().contains("HOOKRELAY_SHUTDOWN_GRACE"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn health_settings_parse_and_bad_ones_are_refused() {
        let fig = Config::figment(None)
            .merge(Serialized::default("circuit_failures", 3))
            .merge(Serialized::default("auto_disable_after", "2s"));
        let c = Config::from_figment(fig).unwrap();
        assert_eq!(c.health.circuit_failures, 3);
        assert_eq!(c.health.auto_disable_after, Duration::from_secs(2));
        let e = with(&[("auto_disable_after", "5 days")]).unwrap_err();
        assert!(
            e.to_string().contains("HOOKRELAY_AUTO_DISABLE_AFTER"),
            "{e}"
        );
        let fig = Config::figment(None).merge(Serialized::default("circuit_failures", 0));
        let e = Config::from_figment(fig).unwrap_err();
        assert!(e.to_string().contains("HOOKRELAY_CIRCUIT_FAILURES"), "{e}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its own large error type
    fn env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hookrelay.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ndelivery_timeout_ms = 2000\ndb_max_connections = 40\nhandoff = false\nsqlite_synchronous = \"full\"\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("HOOKRELAY_LISTEN", "127.0.0.1:9100");
            jail.set_env("HOOKRELAY_HANDOFF", "true");
            let c = Config::load(Some(&file)).unwrap();
            assert_eq!(c.listen.to_string(), "127.0.0.1:9100");
            assert_eq!(c.delivery_timeout, Duration::from_secs(2));
            assert_eq!(
                c.db_max_connections, 40,
                "the pool size comes from the file too"
            );
            assert!(c.handoff, "the environment wins");
            assert_eq!(c.sqlite_synchronous, SqliteSync::Full);
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = with(&[("retry_schedule", "5,soon")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("HOOKRELAY_RETRY_SCHEDULE"), "{e}");
        let e = with(&[("listen", "nowhere")]).unwrap_err().to_string();
        assert!(e.contains("HOOKRELAY_LISTEN"), "{e}");
        let e = with(&[("env", "prod")]).unwrap_err().to_string();
        assert!(e.contains("HOOKRELAY_MASTER_KEY"), "{e}");
        let e = with(&[("env", "production")]).unwrap_err().to_string();
        assert!(e.contains("env"), "{e}");
    }

    #[test]
    fn numbers_are_accepted_where_text_is_expected() {
        let c = with(&[]).unwrap();
        let fig = Config::figment(None).merge(Serialized::default("retry_schedule", 0));
        let c0 = Config::from_figment(fig).unwrap();
        assert_eq!(c0.retry_schedule.delays_secs(), &[0]);
        assert_ne!(c.retry_schedule, c0.retry_schedule);
        let fig = Config::figment(None).merge(Serialized::default("retry_schedule", vec![1, 2]));
        assert_eq!(
            Config::from_figment(fig)
                .unwrap()
                .retry_schedule
                .delays_secs(),
            &[1, 2]
        );
    }

    #[test]
    fn inbound_settings() {
        let c = with(&[]).unwrap();
        assert_eq!(c.public_url, None);
        assert_eq!(c.paypal_cert_hosts.len(), 4);
        assert!(c.paypal_cert_hosts.iter().all(|h| !h.http));
        assert_eq!(c.inbound_log_retention, Duration::from_secs(7 * 24 * 3600));
        let c = with(&[
            ("public_url", "https://hooks.example.com/"),
            ("paypal_cert_hosts", "http://127.0.0.1:9000"),
        ])
        .unwrap();
        assert_eq!(c.public_url.as_deref(), Some("https://hooks.example.com"));
        assert!(c.paypal_cert_hosts[0].http);
        let e = with(&[("public_url", "hooks.example.com")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("HOOKRELAY_PUBLIC_URL"), "{e}");
        let e = with(&[
            ("env", "prod"),
            ("master_key", "x"),
            ("paypal_cert_hosts", "http://127.0.0.1:9000"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("HOOKRELAY_PAYPAL_CERT_HOSTS"), "{e}");
    }

    #[test]
    fn otlp_endpoint() {
        assert_eq!(with(&[]).unwrap().otlp_endpoint, None, "off by default");
        assert_eq!(
            with(&[("otlp_endpoint", "  ")]).unwrap().otlp_endpoint,
            None
        );
        let c = with(&[("otlp_endpoint", "http://127.0.0.1:4318")]).unwrap();
        assert_eq!(
            c.otlp_endpoint.map(String::from).as_deref(),
            Some("http://127.0.0.1:4318/")
        );
        let c = with(&[("otlp_endpoint", "https://otel.example.com/otlp")]).unwrap();
        assert!(c.otlp_endpoint.is_some());
        for bad in [
            "localhost:4318",
            "127.0.0.1:4318",
            "grpc://collector:4317",
            "http://",
            "http://collector:4318/?x=1",
            "http://user:secret@collector:4318",
            "not a url",
        ] {
            let e = with(&[("otlp_endpoint", bad)]).unwrap_err().to_string();
            assert!(e.contains("HOOKRELAY_OTLP_ENDPOINT"), "{bad}: {e}");
            assert!(!e.contains("secret"), "credentials are not echoed: {e}");
        }
    }

    #[test]
    fn prod_requires_https_by_default() {
        let c = with(&[("env", "prod"), ("master_key", "x")]).unwrap();
        assert!(c.require_https);
    }
}
