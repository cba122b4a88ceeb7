//! Embedded schema migrations and the advisory lock that serialises whoever applies them.

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::PgConnection;
use diesel::RunQueryDsl;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::DbError;

/// The SQL migrations under `schema/`, compiled into the binary so a deployed `shikaku` never
/// depends on a source checkout.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../schema");

/// A hash of every migration file, fixed at build time; test templates are keyed on it.
pub const SCHEMA_FINGERPRINT: &str = env!("SHIKAKU_SCHEMA_FINGERPRINT");

/// Arbitrary but fixed key for `pg_advisory_lock`, so two `shikaku migrate` runs (or a deploy
/// racing a test run) never apply the same migration twice.
const MIGRATION_LOCK: i64 = 0x5348_494b_414b_5501;

/// Applies every pending migration while holding the migration advisory lock, and returns
/// the versions applied.
pub fn run_pending(conn: &mut PgConnection) -> Result<Vec<String>, DbError> {
    with_lock(conn, |conn| {
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| DbError::Migration(e.to_string()))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
}

/// Reverts every applied migration, newest first (used by the up-down-up test and by
/// `shikaku migrate --revert-all` on a scratch database).
pub fn revert_all(conn: &mut PgConnection) -> Result<Vec<String>, DbError> {
    with_lock(conn, |conn| {
        let reverted = conn
            .revert_all_migrations(MIGRATIONS)
            .map_err(|e| DbError::Migration(e.to_string()))?;
        Ok(reverted.iter().map(ToString::to_string).collect())
    })
}

/// Names of the migrations not yet applied, oldest first.
///
/// Read-only, so the application role may ask (the server refuses to start on a stale
/// schema): diesel's own `pending_migrations` first creates its bookkeeping table if missing,
/// which needs CREATE on the schema, a privilege only the owner has.
pub fn pending(conn: &mut PgConnection) -> Result<Vec<String>, DbError> {
    #[derive(diesel::QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let exists =
        diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS exists")
            .get_result::<Exists>(conn)?
            .exists;
    let applied: Vec<String> = if exists {
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Applied>(conn)?
            .into_iter()
            .map(|a| a.version)
            .collect()
    } else {
        Vec::new()
    };
    let migrations = MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .map_err(|e| DbError::Migration(e.to_string()))?;
    let mut pending: Vec<_> = migrations
        .iter()
        .filter(|m| !applied.contains(&m.name().version().to_string()))
        .map(|m| m.name().to_string())
        .collect();
    pending.sort();
    Ok(pending)
}

/// The name of the database `conn` is connected to.
pub fn database_name(conn: &mut PgConnection) -> Result<String, DbError> {
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    Ok(diesel::sql_query("SELECT current_database() AS name")
        .get_result::<Name>(conn)?
        .name)
}

/// Linkages whose number was sealed before seals were bound to their rows (migration
/// `2026-12-01-000003`): `shikaku keys reseal` binds them.
pub fn unbound_seals(conn: &mut PgConnection) -> Result<i64, DbError> {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    Ok(
        diesel::sql_query("SELECT count(*) AS n FROM linkages WHERE NOT mn_bound")
            .get_result::<N>(conn)?
            .n,
    )
}

fn with_lock<T>(
    conn: &mut PgConnection,
    body: impl FnOnce(&mut PgConnection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
    let result = body(conn);
    let unlock = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
    let value = result?;
    unlock?;
    Ok(value)
}
