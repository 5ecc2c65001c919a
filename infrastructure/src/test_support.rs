//! Test helpers shared by every crate's tests: a fresh PostgreSQL database per test (when a
//! server is configured) and a fresh SQLite file per test.
//!
//! PostgreSQL tests run whenever `FEELEDGER_TEST_DATABASE_URL` is set. When it is not, they say
//! so loudly on stderr and skip; under CI (`CI=true`) a missing server fails the test instead,
//! so a green CI run always means the PostgreSQL paths were exercised.

pub mod replicated;

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::storage::{Storage, StoreOptions};

pub const TEST_DATABASE_URL_VAR: &str = "FEELEDGER_TEST_DATABASE_URL";

/// The PostgreSQL server to test against, or `None` (announced loudly) when none is configured.
///
/// # Panics
/// Under CI when no server is configured.
pub fn postgres_server_url() -> Option<String> {
    match std::env::var(TEST_DATABASE_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!in_ci, "{TEST_DATABASE_URL_VAR} is not set under CI: PostgreSQL tests must run");
            announce_skip();
            None
        }
    }
}

/// Says once per test binary, on the real stderr (the test harness captures `eprintln!` of
/// passing tests), that the PostgreSQL half of the tests did not run.
fn announce_skip() {
    use std::io::Write as _;
    static ANNOUNCED: std::sync::Once = std::sync::Once::new();
    ANNOUNCED.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: PostgreSQL tests did not run. Set {TEST_DATABASE_URL_VAR}=postgres://postgres@127.0.0.1:5432/postgres ***\n"
        );
    });
}

/// A database that exists for one test and is dropped after it.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    pub backend_name: &'static str,
    postgres_cleanup: Option<(String, String)>,
    _sqlite_dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A fresh, empty PostgreSQL database, or `None` when no server is configured.
    pub async fn postgres() -> Option<TestDatabase> {
        let server = postgres_server_url()?;
        let name = format!("feeledger_test_{}", uuid::Uuid::new_v4().simple());
        let options =
            PgConnectOptions::from_str(&server).unwrap_or_else(|e| panic!("bad {TEST_DATABASE_URL_VAR}: {e}"));
        let mut admin =
            options.connect().await.unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL server: {e}"));
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;
        Some(TestDatabase {
            url: with_database(&server, &name),
            backend_name: "postgres",
            postgres_cleanup: Some((server, name)),
            _sqlite_dir: None,
        })
    }

    /// A database made by the test itself (e.g. on a [`replicated::ReplicatedCluster`]), which
    /// cleans it up.
    pub fn external(url: String) -> TestDatabase {
        TestDatabase { url, backend_name: "postgres", postgres_cleanup: None, _sqlite_dir: None }
    }

    /// A fresh SQLite file in a temporary directory.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let url = format!("sqlite://{}", dir.path().join("feeledger.db").display());
        TestDatabase { url, backend_name: "sqlite", postgres_cleanup: None, _sqlite_dir: Some(dir) }
    }

    /// SQLite always, PostgreSQL when configured: run a test body on each.
    pub async fn each_backend() -> Vec<TestDatabase> {
        let mut databases = vec![TestDatabase::sqlite()];
        databases.extend(TestDatabase::postgres().await);
        databases
    }

    /// A migrated event store on this database.
    pub async fn store(&self) -> Storage {
        let options = StoreOptions { max_connections: 40, ..StoreOptions::default() };
        let store = Storage::connect(&self.url, options).await.unwrap_or_else(|e| panic!("connect {}: {e}", self.url));
        store.migrate().await.unwrap_or_else(|e| panic!("migrate {}: {e}", self.url));
        store
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres_cleanup.take() else { return };
        // Drop needs async I/O; do it on a short-lived thread with its own runtime so it also
        // works while the test's runtime is shutting down.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async move {
                let Ok(options) = PgConnectOptions::from_str(&server) else { return };
                if let Ok(mut admin) = options.connect().await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// `postgres://user@host:5432/postgres?x=y` with its database replaced by `name`.
pub fn with_database(server_url: &str, name: &str) -> String {
    let (base, query) = server_url.split_once('?').map_or((server_url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_replaced_in_any_url_shape() {
        assert_eq!(with_database("postgres://p@h:5432/postgres", "t1"), "postgres://p@h:5432/t1");
        assert_eq!(with_database("postgres://p@h:5432", "t1"), "postgres://p@h:5432/t1");
        assert_eq!(with_database("postgres://p@h/db?sslmode=disable", "t1"), "postgres://p@h/t1?sslmode=disable");
    }
}
