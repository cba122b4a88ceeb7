//! Embedded schema migrations and the advisory lock that serialises whoever applies them.

use diesel::connection::SimpleConnection;
use diesel::PgConnection;
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

/// Versions of the migrations not yet applied.
pub fn pending(conn: &mut PgConnection) -> Result<Vec<String>, DbError> {
    let pending = conn
        .pending_migrations(MIGRATIONS)
        .map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(pending.iter().map(|m| m.name().to_string()).collect())
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
