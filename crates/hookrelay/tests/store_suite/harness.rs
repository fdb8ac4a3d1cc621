//! Opens a fresh, migrated store per test: a SQLite file in a temporary folder, or a PostgreSQL
//! schema of its own in the database `HOOKRELAY_TEST_POSTGRES_URL` names.

use std::sync::Arc;

use hookrelay::store::{self, Store};
use sqlx::{Connection, PgConnection};
use tempfile::TempDir;

pub const POSTGRES_URL_VAR: &str = "HOOKRELAY_TEST_POSTGRES_URL";

/// A store under test and what to clean up after it.
pub struct Harness {
    store: Option<Arc<dyn Store>>,
    /// The store's URL, for a second store on the same database (a second node).
    url: String,
    keyring: Arc<hookrelay::secrets::Keyring>,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The folder is removed when dropped.
    Sqlite {
        _dir: TempDir,
    },
    Postgres {
        base_url: String,
        schema: String,
    },
}

impl Harness {
    pub fn store(&self) -> &dyn Store {
        self.store.as_deref().expect("store already closed")
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Another store on the same database, as a second node would open it.
    pub async fn second_store(&self) -> Arc<dyn Store> {
        store::connect(&self.url, self.keyring.clone(), &OPTIONS)
            .await
            .unwrap_or_else(|e| panic!("opening {} again: {e}", self.url))
    }

    /// Closes the store and removes its database. Not reached when the test panics: a leftover
    /// `hr_t_*` schema is harmless and can be dropped by hand.
    pub async fn finish(mut self) {
        drop(self.store.take());
        if let Cleanup::Postgres { base_url, schema } = &self.cleanup {
            let mut admin = admin_connection(base_url).await;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("dropping test schema {schema}: {e}"));
            let _ = admin.close().await;
        }
    }
}

/// Four PostgreSQL connections per test store: the suite runs many stores at once.
const OPTIONS: store::StoreOptions = store::StoreOptions {
    pool_size: 4,
    sqlite_full_sync: false,
};

pub async fn sqlite() -> Harness {
    let dir = tempfile::tempdir().expect("temporary folder for the SQLite test database");
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let keyring = test_keyring();
    let store = store::connect(&url, keyring.clone(), &OPTIONS)
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    assert_eq!(store.backend(), "sqlite");
    store.migrate().await.expect("SQLite migrations");
    Harness {
        store: Some(store),
        url,
        keyring,
        cleanup: Cleanup::Sqlite { _dir: dir },
    }
}

pub async fn postgres() -> Harness {
    let base_url = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: the PostgreSQL half of the store suite needs a database, \
             e.g. {POSTGRES_URL_VAR}=postgres://postgres@127.0.0.1:5432/test"
        )
    });
    let schema = format!("hr_t_{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut admin = admin_connection(&base_url).await;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("creating test schema {schema}: {e}"));

    // `options` is sent as the startup parameter of every pooled connection (and the LISTEN one).
    let sep = if base_url.contains('?') { '&' } else { '?' };
    let url = format!("{base_url}{sep}options=-csearch_path%3D{schema}");
    let keyring = test_keyring();
    let store = store::connect(&url, keyring.clone(), &OPTIONS)
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    assert_eq!(store.backend(), "postgres");
    store.migrate().await.expect("PostgreSQL migrations");

    // The tables must have landed in the test's own schema, not in `public`.
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1 \
         AND table_name IN ('tenants', 'api_keys', 'webhooks', 'events', 'deliveries', 'attempts')",
    )
    .bind(&schema)
    .fetch_one(&mut admin)
    .await
    .expect("inspecting the test schema");
    assert_eq!(
        tables, 6,
        "migrations did not create the tables in schema {schema}"
    );
    let _ = admin.close().await;

    Harness {
        store: Some(store),
        url,
        keyring,
        cleanup: Cleanup::Postgres { base_url, schema },
    }
}

async fn admin_connection(base_url: &str) -> PgConnection {
    PgConnection::connect(base_url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {POSTGRES_URL_VAR} ({base_url}): {e}"))
}

/// A fresh master keyring for one test store.
pub fn test_keyring() -> std::sync::Arc<hookrelay::secrets::Keyring> {
    let key = hookrelay::secrets::Keyring::generate_key();
    std::sync::Arc::new(
        hookrelay::secrets::Keyring::new(&key, &[]).expect("a generated key is valid"),
    )
}
