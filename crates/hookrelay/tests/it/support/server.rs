//! Starts hookrelay in-process on 127.0.0.1:0 against a fresh store: a temp SQLite file, or a
//! fresh schema in the PostgreSQL named by `HOOKRELAY_TEST_POSTGRES_URL` (required, never
//! skipped).

use std::time::Duration;

use figment::providers::Serialized;
use hookrelay::app::{self, ProcessRole};
use hookrelay::auth::keys::generate_api_key;
use hookrelay::config::Config;
use hookrelay::delivery::guard::{HostLookup, SystemLookup};
use reqwest::Method;
use serde_json::Value;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_base_url() -> String {
    std::env::var("HOOKRELAY_TEST_POSTGRES_URL")
        .expect("HOOKRELAY_TEST_POSTGRES_URL must point at a PostgreSQL for the tests (e.g. postgres://postgres@127.0.0.1:5432/test)")
}

/// A store URL for a fresh database: a file in `dir`, or a new PostgreSQL schema.
pub async fn fresh_database_url(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}/hookrelay.db", dir.display()),
        Backend::Postgres => {
            let base = postgres_base_url();
            let schema = format!("hr_it_{}", ulid::Ulid::new().to_string().to_lowercase());
            let pool = sqlx::PgPool::connect(&base)
                .await
                .expect("connect to PostgreSQL");
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&pool)
                .await
                .expect("create schema");
            pool.close().await;
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}options=-csearch_path%3D{schema}")
        }
    }
}

pub struct TestServer {
    pub base: String,
    pub admin_key: String,
    #[allow(dead_code)] // used by tests that restart a server on the same store
    pub db_url: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Test defaults: loopback receivers allowed, quick retries unless a test says otherwise.
///
/// A fresh master key is always given: without one the server keeps its key in the data folder,
/// which for a PostgreSQL URL is `./hookrelay-data` under the test's working directory (the
/// crate's folder), and a key file once got committed from there.
pub fn test_config(db_url: &str, admin_key: &str) -> Config {
    let fig = Config::figment(None)
        .merge(Serialized::default("database_url", db_url))
        .merge(Serialized::default("admin_key", admin_key))
        .merge(Serialized::default(
            "master_key",
            hookrelay::secrets::Keyring::generate_key(),
        ))
        .merge(Serialized::default(
            "allowed_target_networks",
            "127.0.0.0/8,::1/128",
        ))
        .merge(Serialized::default("listen", "127.0.0.1:0"));
    Config::from_figment(fig).expect("test config is valid")
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_full(backend, tweak, Arc::new(SystemLookup)).await
    }

    /// A server whose deliveries resolve host names through `lookup`.
    pub async fn start_full(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
        lookup: Arc<dyn HostLookup>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_url = fresh_database_url(backend, dir.path()).await;
        let admin_key = generate_api_key();
        let mut config = test_config(&db_url, &admin_key);
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(app::run_with(
            config,
            ProcessRole::All,
            listener,
            shutdown.clone(),
            lookup,
        ));
        let server = Self {
            base,
            admin_key,
            db_url,
            client: reqwest::Client::new(),
            shutdown,
            handle: Some(handle),
            _dir: dir,
        };
        server.wait_healthy().await;
        server
    }

    pub async fn wait_healthy(&self) {
        super::eventually(Duration::from_secs(30), "server health", || async {
            let r = self
                .client
                .get(format!("{}/health", self.base))
                .send()
                .await
                .ok()?;
            r.status().is_success().then_some(())
        })
        .await
    }

    /// Calls the API as the admin key; returns status and JSON body (Null when empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(&self.admin_key, method, path, body).await
    }

    pub async fn call_as(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request reaches the server");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// Creates a webhook and returns its JSON (with `secret`).
    pub async fn webhook(&self, body: Value) -> Value {
        let (status, v) = self.post("/api/v1/webhooks", body).await;
        assert_eq!(status, 201, "create webhook: {v}");
        v
    }

    pub async fn emit(&self, body: Value) -> Value {
        let (status, v) = self.post("/api/v1/events", body).await;
        assert_eq!(status, 202, "emit: {v}");
        v
    }

    /// Waits until the delivery reaches `status`; returns its detail.
    pub async fn delivery_with_status(&self, id: &str, status: &str, deadline: Duration) -> Value {
        super::eventually(
            deadline,
            &format!("delivery {id} to become {status}"),
            || async {
                let (_, d) = self.get(&format!("/api/v1/deliveries/{id}")).await;
                (d["status"] == status).then_some(d)
            },
        )
        .await
    }

    /// The ids of an event's deliveries.
    pub async fn delivery_ids(&self, event_id: &str) -> Vec<String> {
        let (status, e) = self.get(&format!("/api/v1/events/{event_id}")).await;
        assert_eq!(status, 200, "{e}");
        e["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), h).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
