//! Index and constraint builds deferred around a bulk load, as `pg_restore` does: drop a
//! table's indexes and keys, load, then build each index once and validate each foreign key
//! with one join, instead of maintaining them row by row.
//!
//! Everything happens inside the caller's transaction, and DDL in PostgreSQL is
//! transactional: a load that fails or is rejected rolls back to the tables exactly as they
//! were, indexes and all. Dropping an index takes the table's `ACCESS EXCLUSIVE` lock, so
//! nothing reads the tables while they are being filled; that is what a first load wants, and
//! why [`defer`] is only used on empty tables. Only the tables' owner may drop their indexes,
//! so this runs on the owner's connection ([`require_owner`]).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Text};

use crate::error::DbError;

/// The statements that put back what [`defer`] dropped, in the order they must run: plain
/// indexes, then primary and unique keys, then the foreign keys that need them.
#[derive(Debug)]
#[must_use = "the dropped indexes and keys come back only through restore"]
pub struct Deferred {
    restore: Vec<String>,
    /// The tables, quoted and comma-separated, to analyze once rebuilt.
    tables: String,
}

impl Deferred {
    /// How many indexes and constraints will be rebuilt.
    pub fn len(&self) -> usize {
        self.restore.len()
    }

    /// Whether nothing was dropped.
    pub fn is_empty(&self) -> bool {
        self.restore.is_empty()
    }
}

#[derive(QueryableByName)]
struct Ddl {
    #[diesel(sql_type = Text)]
    drop_sql: String,
    #[diesel(sql_type = Text)]
    restore_sql: String,
}

/// Fails unless the connected role may change `tables` (owns them, or is a member of the
/// owner role), with the remedy in words.
pub fn require_owner(conn: &mut PgConnection, tables: &[&str]) -> Result<(), DbError> {
    #[derive(QueryableByName)]
    struct NotOwned {
        #[diesel(sql_type = Text)]
        table_name: String,
    }
    let not_owned: Vec<NotOwned> = diesel::sql_query(
        "SELECT c.relname::text AS table_name
           FROM pg_class c
          WHERE c.oid = ANY($1::text[]::regclass[])
            AND NOT pg_has_role(current_user, c.relowner, 'MEMBER')
          ORDER BY 1",
    )
    .bind::<Array<Text>, _>(tables)
    .load(conn)?;
    match not_owned.first() {
        None => Ok(()),
        Some(t) => Err(DbError::Invalid(format!(
            "an initial load drops and rebuilds the indexes of {}, which only the schema's \
             owner may do: run it with SHIKAKU_OWNER_DATABASE_URL set",
            t.table_name
        ))),
    }
}

/// Fails unless every table in `tables` is empty, naming the first that is not. Run after the
/// tables are locked, so no row can arrive between the check and the load.
pub fn require_empty(conn: &mut PgConnection, tables: &[&str]) -> Result<(), DbError> {
    #[derive(QueryableByName)]
    struct Any {
        #[diesel(sql_type = Bool)]
        any: bool,
    }
    for table in tables {
        // Table names come from the caller's fixed list, never from input.
        let any: Any = diesel::sql_query(format!(
            "SELECT EXISTS (SELECT 1 FROM {}) AS any",
            quote_ident(table)
        ))
        .get_result(conn)?;
        if any.any {
            return Err(DbError::Invalid(format!(
                "an initial load fills empty tables, and {table} already holds rows: \
                 import without --initial (the normal import merges into what is stored)"
            )));
        }
    }
    Ok(())
}

/// Locks `tables`, then drops their indexes, primary and unique keys and foreign keys, and the
/// foreign keys of other tables that point at them; returns how to build them again.
/// Triggers stay; a caller that checks a trigger's rule itself switches it off with
/// [`set_triggers`].
pub fn defer(conn: &mut PgConnection, tables: &[&str]) -> Result<Deferred, DbError> {
    let list = tables
        .iter()
        .map(|t| quote_ident(t))
        .collect::<Vec<_>>()
        .join(", ");
    conn.batch_execute(&format!("LOCK TABLE {list} IN ACCESS EXCLUSIVE MODE"))?;
    // One query gives the drop and the rebuild of each object, in restore order; drops run in
    // the reverse order (foreign keys before the keys they reference).
    let ddl: Vec<Ddl> = diesel::sql_query(
        "WITH t AS (SELECT unnest($1::text[])::regclass AS oid),
         objects AS (
           SELECT 1 AS step, i.indexrelid::regclass::text AS name,
                  format('DROP INDEX %s', i.indexrelid::regclass) AS drop_sql,
                  pg_get_indexdef(i.indexrelid) AS restore_sql
             FROM pg_index i
            WHERE i.indrelid IN (SELECT oid FROM t)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                               WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                                 AND c.contype IN ('p', 'u', 'x'))
           UNION ALL
           SELECT CASE c.contype WHEN 'f' THEN 3 ELSE 2 END, c.conname::text,
                  format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
                  format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
                         pg_get_constraintdef(c.oid))
             FROM pg_constraint c
            WHERE (c.conrelid IN (SELECT oid FROM t) AND c.contype IN ('p', 'u', 'f'))
               OR (c.confrelid IN (SELECT oid FROM t) AND c.contype = 'f')
         )
         SELECT drop_sql, restore_sql FROM objects ORDER BY step, name",
    )
    .bind::<Array<Text>, _>(tables)
    .load(conn)?;
    for d in ddl.iter().rev() {
        conn.batch_execute(&d.drop_sql)?;
    }
    Ok(Deferred {
        restore: ddl.into_iter().map(|d| d.restore_sql).collect(),
        tables: list,
    })
}

/// Builds every index and constraint [`defer`] dropped (a foreign key is validated by one
/// join over the whole table) and refreshes the tables' statistics, so the first queries
/// after the load are planned for its size.
pub fn restore(conn: &mut PgConnection, deferred: Deferred) -> Result<(), DbError> {
    // The builds sort whole tables: give them the memory (for this transaction only).
    conn.batch_execute("SET LOCAL maintenance_work_mem = '1GB'")?;
    for sql in &deferred.restore {
        conn.batch_execute(sql)?;
    }
    conn.batch_execute(&format!("ANALYZE {}", deferred.tables))?;
    Ok(())
}

/// Switches named triggers off or on again (`ALTER TABLE .. DISABLE TRIGGER`, transactional
/// like the rest). For a rule the load has already checked over the whole input: see
/// [`crate::import::InitialLoad::checked_triggers`].
pub fn set_triggers(
    conn: &mut PgConnection,
    triggers: &[(&str, &str)],
    enabled: bool,
) -> Result<(), DbError> {
    let verb = if enabled { "ENABLE" } else { "DISABLE" };
    for (table, trigger) in triggers {
        conn.batch_execute(&format!(
            "ALTER TABLE {} {verb} TRIGGER {}",
            quote_ident(table),
            quote_ident(trigger)
        ))?;
    }
    Ok(())
}

/// An identifier quoted for SQL.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
