//! Least-privilege database roles. Three login roles, never superusers:
//!
//! - the **owner** owns the database, the schema and every table; it runs the migrations and
//!   nothing else (`SHIKAKU_OWNER_DATABASE_URL`);
//! - the **application** role is what the server, the console and the everyday CLI use
//!   (`DATABASE_URL`): only the DML each table needs ([`APP_PRIVILEGES`]), `INSERT` and
//!   `SELECT` on the access log and nothing more there, no DDL, and no way to disable a
//!   trigger (that takes ownership);
//! - the **reader** role is for auditors' reporting: `SELECT` on the registry, the findings and
//!   the access log ([`READER_TABLES`]), nothing on tokens or sessions.
//!
//! [`create`] (run once by an administrator, `shikaku db roles`) makes the roles and hands the
//! database to the owner; [`grant`] (run by the owner after every migration) gives the other
//! two their privileges, so a new table is never reachable by accident and never forgotten (a
//! test checks that every table is listed here).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use crate::error::DbError;

/// The three role names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    /// Owns the schema; runs migrations.
    pub owner: String,
    /// The server, the console and the everyday CLI.
    pub app: String,
    /// Read-only reporting.
    pub reader: String,
}

impl Roles {
    /// `{prefix}_owner`, `{prefix}_app` and `{prefix}_reader`.
    pub fn with_prefix(prefix: &str) -> Roles {
        Roles {
            owner: format!("{prefix}_owner"),
            app: format!("{prefix}_app"),
            reader: format!("{prefix}_reader"),
        }
    }
}

impl Default for Roles {
    /// `shikaku_owner`, `shikaku_app`, `shikaku_reader`.
    fn default() -> Roles {
        Roles::with_prefix("shikaku")
    }
}

/// What the application role may do, table by table. Everything else is refused: no
/// `DELETE` or `TRUNCATE` anywhere (history is kept, never overwritten), and on the access log
/// only `INSERT` and `SELECT`.
pub const APP_PRIVILEGES: &[(&str, &str)] = &[
    ("imports", "SELECT, INSERT, UPDATE"),
    ("insurers", "SELECT, INSERT, UPDATE"),
    ("persons", "SELECT, INSERT, UPDATE"),
    ("qualifications", "SELECT, INSERT, UPDATE"),
    ("person_changes", "SELECT, INSERT"),
    // Ended and corrected in place, the previous values kept in person_changes.
    ("benefits", "SELECT, INSERT, UPDATE"),
    ("linkages", "SELECT, INSERT, UPDATE"),
    ("linkage_events", "SELECT, INSERT"),
    ("resident_snapshots", "SELECT, INSERT"),
    ("resident_records", "SELECT, INSERT"),
    ("audit_runs", "SELECT, INSERT, UPDATE"),
    ("findings", "SELECT, INSERT, UPDATE"),
    ("finding_events", "SELECT, INSERT"),
    // Kept by a SECURITY DEFINER trigger on findings: the application reads the counts and
    // cannot write them, so nobody can make the queue's totals disagree with the findings.
    ("finding_counts", "SELECT"),
    // A bulk action is marked undone; what it changed is only ever inserted.
    ("finding_bulk_actions", "SELECT, INSERT, UPDATE"),
    ("finding_bulk_items", "SELECT, INSERT"),
    ("api_tokens", "SELECT, INSERT, UPDATE"),
    ("access_log", "SELECT, INSERT"),
    ("certificates", "SELECT, INSERT, UPDATE"),
    ("certificate_events", "SELECT, INSERT"),
    ("console_sessions", "SELECT, INSERT, UPDATE"),
    // `keys rotate-index` marks the linkages' index key (one row, never inserted or deleted).
    ("index_state", "SELECT, UPDATE"),
    // `shikaku serve` refuses to start with migrations pending.
    ("__diesel_schema_migrations", "SELECT"),
];

/// What the reader role may read: everything but the secrets' hashes (tokens, sessions) and
/// the migration bookkeeping.
pub const READER_TABLES: &[&str] = &[
    "imports",
    "insurers",
    "persons",
    "qualifications",
    "person_changes",
    "benefits",
    "linkages",
    "linkage_events",
    "resident_snapshots",
    "resident_records",
    "audit_runs",
    "findings",
    "finding_events",
    "finding_counts",
    "finding_bulk_actions",
    "finding_bulk_items",
    "access_log",
    "certificates",
    "certificate_events",
    "index_state",
];

/// A role or database name as an SQL identifier: lower-case letters, digits and `_` only, so it
/// can be written into DDL (which takes no bind parameters) without quoting games.
fn ident(name: &str) -> Result<&str, DbError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(DbError::Invalid(format!(
            "{name:?} is not a valid role or database name (a-z, 0-9 and _ only)"
        )))
    }
}

/// A password as it may be written into `ALTER ROLE`: letters and digits only (the ones
/// [`new_password`] makes).
fn password(p: &str) -> Result<&str, DbError> {
    if p.len() >= 16 && p.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(p)
    } else {
        Err(DbError::Invalid(
            "role passwords must be at least 16 letters and digits".into(),
        ))
    }
}

/// A random password of 32 letters and digits from the operating system's generator.
pub fn new_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    (0..32)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// The passwords to set, by role; `None` leaves a role's password as it is.
#[derive(Debug, Clone, Default)]
pub struct Passwords {
    /// The owner's.
    pub owner: Option<String>,
    /// The application role's.
    pub app: Option<String>,
    /// The reader's.
    pub reader: Option<String>,
}

/// Creates the three login roles if they do not exist (none a superuser, none able to create
/// roles or databases), sets the given passwords, hands `database` and everything in its
/// `public` schema to the owner, and lets the other two connect. Run by an administrator (a
/// superuser or a role with CREATEROLE that owns the database); idempotent.
pub fn create(
    admin: &mut PgConnection,
    roles: &Roles,
    passwords: &Passwords,
    database: &str,
) -> Result<(), DbError> {
    let database = ident(database)?;
    for (role, pw) in [
        (&roles.owner, &passwords.owner),
        (&roles.app, &passwords.app),
        (&roles.reader, &passwords.reader),
    ] {
        let role = ident(role)?;
        // Two administrators creating the same role at once: the loser's CREATE fails, which is
        // why the check and the creation share a transaction-level advisory lock.
        admin.batch_execute(&format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock(hashtextextended('shikaku-roles', 0));
             DO $$ BEGIN
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                     CREATE ROLE {role};
                 END IF;
             END $$;
             ALTER ROLE {role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
                 NOBYPASSRLS;
             COMMIT;"
        ))?;
        if let Some(pw) = pw {
            admin.batch_execute(&format!(
                "ALTER ROLE {role} WITH PASSWORD '{}'",
                password(pw)?
            ))?;
        }
    }
    let owner = ident(&roles.owner)?;
    let (app, reader) = (ident(&roles.app)?, ident(&roles.reader)?);
    admin.batch_execute(&format!(
        "ALTER DATABASE {database} OWNER TO {owner};
         GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {app}, {reader};"
    ))?;
    Ok(())
}

/// Hands the `public` schema and every table, sequence and function in it to the owner: a
/// database migrated before the roles existed (by a superuser, say) is then the owner's. Run
/// by the administrator connected to the database itself.
pub fn transfer_ownership(admin: &mut PgConnection, roles: &Roles) -> Result<(), DbError> {
    let owner = ident(&roles.owner)?;
    admin.batch_execute(&format!(
        "ALTER SCHEMA public OWNER TO {owner};
         DO $$ DECLARE r record; BEGIN
             -- Tables first: their serial sequences follow them.
             FOR r IN SELECT c.oid::regclass AS t FROM pg_class c
                        JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
                         AND pg_get_userbyid(c.relowner) <> '{owner}' LOOP
                 EXECUTE format('ALTER TABLE %s OWNER TO {owner}', r.t);
             END LOOP;
             FOR r IN SELECT c.oid::regclass AS s FROM pg_class c
                        JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = 'public' AND c.relkind = 'S'
                         AND pg_get_userbyid(c.relowner) <> '{owner}' LOOP
                 EXECUTE format('ALTER SEQUENCE %s OWNER TO {owner}', r.s);
             END LOOP;
             FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p
                        JOIN pg_namespace n ON n.oid = p.pronamespace
                       WHERE n.nspname = 'public'
                         AND pg_get_userbyid(p.proowner) <> '{owner}' LOOP
                 EXECUTE format('ALTER FUNCTION %s OWNER TO {owner}', r.f);
             END LOOP;
         END $$;"
    ))?;
    Ok(())
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    flag: bool,
}

/// Whether the application and reader roles exist (a development database may have none).
pub fn exist(conn: &mut PgConnection, roles: &Roles) -> Result<bool, DbError> {
    Ok(diesel::sql_query(
        "SELECT count(*) = 2 AS flag FROM pg_roles WHERE rolname = $1 OR rolname = $2",
    )
    .bind::<Text, _>(&roles.app)
    .bind::<Text, _>(&roles.reader)
    .get_result::<Flag>(conn)?
    .flag)
}

/// Gives the application and reader roles exactly their privileges on every table that exists
/// (revoking whatever else they had), in one transaction. Run by the owner after the
/// migrations, and by `shikaku db roles` (before the first migration there is nothing yet).
pub fn grant(conn: &mut PgConnection, roles: &Roles) -> Result<(), DbError> {
    let (app, reader) = (ident(&roles.app)?, ident(&roles.reader)?);
    let existing = tables(conn)?;
    let exists = |t: &str| existing.iter().any(|e| e == t);
    let mut sql = format!(
        "BEGIN;
         REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {app}, {reader};
         REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {app}, {reader};
         GRANT USAGE ON SCHEMA public TO {app}, {reader};
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app};\n"
    );
    for (table, privileges) in APP_PRIVILEGES.iter().filter(|(t, _)| exists(t)) {
        sql.push_str(&format!(
            "GRANT {privileges} ON {} TO {app};\n",
            ident(table)?
        ));
    }
    for table in READER_TABLES.iter().filter(|t| exists(t)) {
        sql.push_str(&format!("GRANT SELECT ON {} TO {reader};\n", ident(table)?));
    }
    sql.push_str("COMMIT;");
    conn.batch_execute(&sql)?;
    Ok(())
}

/// What the connected role is allowed to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The role's name.
    pub user: String,
    /// A superuser can do anything, disabling triggers included.
    pub superuser: bool,
    /// The role owns (or is a member of a role that owns) a table of the schema, and so could
    /// disable the access log's triggers.
    pub owns_tables: bool,
}

impl Standing {
    /// Neither a superuser nor an owner.
    pub fn least_privileged(&self) -> bool {
        !self.superuser && !self.owns_tables
    }
}

/// The connected role's standing.
pub fn standing(conn: &mut PgConnection) -> Result<Standing, DbError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Bool)]
        superuser: bool,
        #[diesel(sql_type = Bool)]
        owns: bool,
    }
    let r: Row = diesel::sql_query(
        "SELECT current_user::text AS name, r.rolsuper AS superuser,
                EXISTS (SELECT 1 FROM pg_tables t WHERE t.schemaname = 'public'
                         AND pg_has_role(current_user, t.tableowner, 'USAGE')) AS owns
           FROM pg_roles r WHERE r.rolname = current_user",
    )
    .get_result(conn)?;
    Ok(Standing {
        user: r.name,
        superuser: r.superuser,
        owns_tables: r.owns,
    })
}

/// The tables of the schema, for the test that every one has its privileges decided here.
pub fn tables(conn: &mut PgConnection) -> Result<Vec<String>, DbError> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        tablename: String,
    }
    Ok(diesel::sql_query(
        "SELECT tablename::text AS tablename FROM pg_tables WHERE schemaname = 'public'
          ORDER BY tablename",
    )
    .load::<Name>(conn)?
    .into_iter()
    .map(|n| n.tablename)
    .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_passwords_are_checked_before_they_reach_ddl() {
        assert!(ident("shikaku_app").is_ok());
        for bad in ["", "App", "a b", "x;drop", "1abc", &"a".repeat(64)] {
            assert!(ident(bad).is_err(), "{bad}");
        }
        let p = new_password();
        assert_eq!(p.len(), 32);
        assert!(password(&p).is_ok());
        assert!(password("short").is_err());
        assert!(password("abcdefghijklmnop'--").is_err());
        assert_ne!(new_password(), p);
    }

    #[test]
    fn every_app_table_is_readable_by_the_reader_or_a_secret() {
        for (t, _) in APP_PRIVILEGES {
            assert!(
                READER_TABLES.contains(t)
                    || [
                        "api_tokens",
                        "console_sessions",
                        "__diesel_schema_migrations"
                    ]
                    .contains(t),
                "{t}"
            );
        }
        assert!(APP_PRIVILEGES
            .iter()
            .all(|(_, p)| !p.contains("DELETE") && !p.contains("TRUNCATE")));
        assert!(!READER_TABLES.contains(&"api_tokens"));
        assert_eq!(
            APP_PRIVILEGES.iter().find(|(t, _)| *t == "access_log"),
            Some(&("access_log", "SELECT, INSERT"))
        );
    }
}
