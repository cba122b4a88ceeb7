//! Test support: every test gets its own database, cloned from a migrated template, so tests
//! run in parallel with no shared state and no cleanup between them (the crates.io
//! `crates_io_test_db` approach). Enabled by the `testing` feature; never in production builds.
//!
//! The server comes from `DATABASE_URL` (scripts/test sets it to the project's cluster). The
//! template's name carries the schema fingerprint, so a changed migration builds a new one.

use std::sync::atomic::{AtomicU32, Ordering};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::PgConnection;

use crate::migrate;

/// Advisory-lock key that serialises template creation across parallel test binaries.
const TEMPLATE_LOCK: i64 = 0x5348_494b_414b_5502;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A throwaway database for one test, dropped (with any open connections) when this value is.
pub struct TestDb {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDb {
    /// A fresh, fully migrated database.
    ///
    /// # Panics
    /// When `DATABASE_URL` is unset or the server is unreachable: a test cannot run without it,
    /// and the message says how to get one.
    #[allow(clippy::expect_used)]
    pub fn new() -> TestDb {
        let admin_url = std::env::var("DATABASE_URL").expect(
            "DATABASE_URL must point at a PostgreSQL server where tests may create databases; \
             scripts/test sets it up",
        );
        let template = format!("shikaku_tpl_{}", migrate::SCHEMA_FINGERPRINT);
        let mut admin =
            PgConnection::establish(&admin_url).expect("cannot connect to DATABASE_URL for tests");
        ensure_template(&mut admin, &admin_url, &template);
        let name = format!(
            "shikaku_test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        // Separate statements: several in one simple query form an implicit transaction, in
        // which DROP/CREATE DATABASE cannot run.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .expect("cannot drop a leftover test database");
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .expect("cannot create a test database from the template");
        TestDb {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        }
    }

    /// A new connection to this test's database.
    #[allow(clippy::expect_used)]
    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("cannot connect to the test database")
    }

    /// This database's URL, for code under test that opens its own connections.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// This database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Default for TestDb {
    fn default() -> Self {
        TestDb::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

#[allow(clippy::expect_used)]
fn ensure_template(admin: &mut PgConnection, admin_url: &str, template: &str) {
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    admin
        .batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
        .expect("cannot take the template lock");
    let exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(template)
            .get_result::<Exists>(admin)
            .expect("cannot look up the template")
            .exists;
    if !exists {
        let building = format!("{template}_building");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .expect("cannot drop a half-built template database");
        admin
            .batch_execute(&format!("CREATE DATABASE {building}"))
            .expect("cannot create the template database");
        {
            let mut conn = PgConnection::establish(&with_database(admin_url, &building))
                .expect("cannot connect to the template database");
            migrate::run_pending(&mut conn).expect("migrations must apply to a new database");
        }
        // Renamed only when complete, so a crash never leaves a half-migrated template.
        admin
            .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {template}"))
            .expect("cannot publish the template database");
    }
    admin
        .batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
        .expect("cannot release the template lock");
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let query = path.split_once('?').map(|(_, q)| q);
    match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://u@h:5/db?sslmode=disable", "t"),
            "postgres://u@h:5/t?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:5", "t"), "postgres://u@h:5/t");
    }
}
