//! Test support: every test gets its own database, cloned from a migrated template, so tests
//! run in parallel with no shared state and no cleanup between them (the crates.io
//! `crates_io_test_db` approach). Enabled by the `testing` feature; never in production builds.
//!
//! The server comes from `DATABASE_URL` (scripts/test sets it to the project's cluster); that
//! role must be able to create databases and roles. The template is built the way production
//! runs: roles `shikaku_test_owner`, `shikaku_test_app` and `shikaku_test_reader`
//! ([`crate::roles`]), migrations applied as the owner, privileges granted. Tests then work as
//! the application role ([`TestDb::url`], [`TestDb::conn`]); the few that play an insider or
//! an administrator ask for [`TestDb::owner_conn`] or [`TestDb::admin_conn`]. The template's
//! name carries the schema fingerprint, so a changed migration builds a new one.

use std::sync::atomic::{AtomicU32, Ordering};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::PgConnection;

use crate::migrate;
use crate::roles::{self, Passwords, Roles};

/// The test roles' prefix, apart from any deployment's roles on the same server.
const ROLE_PREFIX: &str = "shikaku_test";
/// The test roles' password (tests only; a server with trust authentication ignores it).
const ROLE_PASSWORD: &str = "shikakuTestRolePassword2026";

fn test_roles() -> Roles {
    Roles::with_prefix(ROLE_PREFIX)
}

/// Advisory-lock key that serialises template creation across parallel test binaries.
const TEMPLATE_LOCK: i64 = 0x5348_494b_414b_5502;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A throwaway database for one test, dropped (with any open connections) when this value is.
pub struct TestDb {
    name: String,
    url: String,
    owner_url: String,
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
        let template = format!("shikaku_tpl2_{}", migrate::SCHEMA_FINGERPRINT);
        TestDb::create(Some(&template))
    }

    /// A fresh database migrated up to, not including, the migration named `name` (for example
    /// `2026-12-01-000002_access_log_keyed`), as a deployment from before it would be, with
    /// the test roles' privileges granted. A test writes what such a deployment held, then
    /// calls [`TestDb::migrate`] to see what the migration makes of it.
    ///
    /// # Panics
    /// As [`TestDb::new`], and when no pending migration is called `name`.
    #[allow(clippy::expect_used, clippy::panic)]
    pub fn before_migration(name: &str) -> TestDb {
        use diesel_migrations::MigrationHarness;
        let db = TestDb::create(None);
        let mut conn = db.owner_conn();
        loop {
            let pending = conn
                .pending_migrations(migrate::MIGRATIONS)
                .expect("cannot list the migrations");
            let Some(next) = pending.first() else {
                panic!("no migration called {name}");
            };
            if next.name().to_string() == name {
                break;
            }
            conn.run_migration(next)
                .expect("an earlier migration must apply to a new database");
        }
        roles::grant(&mut conn, &test_roles()).expect("cannot grant the test roles' privileges");
        db
    }

    /// Applies the pending migrations as the owner and grants the roles their privileges, as
    /// `shikaku migrate` does.
    ///
    /// # Panics
    /// When a migration fails.
    #[allow(clippy::expect_used)]
    pub fn migrate(&self) -> Vec<String> {
        let mut conn = self.owner_conn();
        let applied = migrate::run_pending(&mut conn).expect("the pending migrations must apply");
        roles::grant(&mut conn, &test_roles()).expect("cannot grant the test roles' privileges");
        applied
    }

    /// A new database owned by the test owner, cloned from `template` (or empty).
    #[allow(clippy::expect_used)]
    fn create(template: Option<&str>) -> TestDb {
        let admin_url = std::env::var("DATABASE_URL").expect(
            "DATABASE_URL must point at a PostgreSQL server where tests may create databases; \
             scripts/test sets it up",
        );
        let mut admin =
            PgConnection::establish(&admin_url).expect("cannot connect to DATABASE_URL for tests");
        // The template also creates the test roles, which an empty database needs as well.
        let default_template = format!("shikaku_tpl2_{}", migrate::SCHEMA_FINGERPRINT);
        ensure_template(&mut admin, &admin_url, &default_template);
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
        let owner = test_roles().owner;
        // Without a template, PostgreSQL's default (template1), as the template itself was made.
        let from = template.map_or_else(String::new, |t| format!("TEMPLATE {t}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name} {from} OWNER {owner}"))
            .expect("cannot create a test database");
        let db_url = with_database(&admin_url, &name);
        TestDb {
            url: with_user(&db_url, &test_roles().app),
            owner_url: with_user(&db_url, &owner),
            name,
            admin_url,
        }
    }

    /// A new connection to this test's database as the application role.
    #[allow(clippy::expect_used)]
    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("cannot connect to the test database")
    }

    /// This database's URL as the application role, for code under test that opens its own
    /// connections.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// This database's URL as the owner of the tables.
    pub fn owner_url(&self) -> &str {
        &self.owner_url
    }

    /// The server administrator's URL for this database (the superuser the tests connect as).
    pub fn admin_url(&self) -> String {
        with_database(&self.admin_url, &self.name)
    }

    /// A connection as the owner of the tables (an insider with the owner's rights).
    #[allow(clippy::expect_used)]
    pub fn owner_conn(&self) -> PgConnection {
        PgConnection::establish(&self.owner_url).expect("cannot connect as the owner")
    }

    /// A connection as the server's administrator (`DATABASE_URL`, typically a superuser).
    #[allow(clippy::expect_used)]
    pub fn admin_conn(&self) -> PgConnection {
        PgConnection::establish(&with_database(&self.admin_url, &self.name))
            .expect("cannot connect as the administrator")
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
        let roles = test_roles();
        let pw = || Some(ROLE_PASSWORD.to_string());
        roles::create(
            admin,
            &roles,
            &Passwords {
                owner: pw(),
                app: pw(),
                reader: pw(),
            },
            &building,
        )
        .expect("cannot create the test roles (DATABASE_URL needs CREATEROLE)");
        {
            let url = with_user(&with_database(admin_url, &building), &roles.owner);
            let mut conn =
                PgConnection::establish(&url).expect("cannot connect to the template as its owner");
            migrate::run_pending(&mut conn).expect("migrations must apply to a new database");
            roles::grant(&mut conn, &roles).expect("cannot grant the test roles' privileges");
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

/// `url` with its user info replaced by the test role `user` and its password.
pub fn with_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}:{ROLE_PASSWORD}@{host}")
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
