//! `shikaku migrate`.

use std::process::ExitCode;

use crate::config::Database;

/// Applies, lists or reverts migrations, as the owner of the tables; after applying, gives the
/// application and reader roles their privileges on every table (when the roles exist).
pub fn run(
    db: &Database,
    status: bool,
    revert_all: bool,
    confirm_database: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let mut conn = db.connect_owner()?;
    if status {
        let pending = shikaku_db::migrate::pending(&mut conn)?;
        if pending.is_empty() {
            println!("schema is up to date");
        } else {
            for name in pending {
                println!("pending: {name}");
            }
        }
    } else if revert_all {
        // Dropping the registry and its access log is not a flag to pass by habit: the name of
        // the database must be typed out.
        let name = shikaku_db::migrate::database_name(&mut conn)?;
        if confirm_database != Some(name.as_str()) {
            anyhow::bail!(
                "--revert-all drops every table of database {name}, the registry and the access \
                 log with it; to go ahead, add --confirm-database {name}"
            );
        }
        for version in shikaku_db::migrate::revert_all(&mut conn)? {
            println!("reverted {version}");
        }
    } else {
        let applied = shikaku_db::migrate::run_pending(&mut conn)?;
        if applied.is_empty() {
            println!("schema is up to date");
        }
        for version in applied {
            println!("applied {version}");
        }
        let unbound = shikaku_db::migrate::unbound_seals(&mut conn)?;
        if unbound > 0 {
            println!(
                "{unbound} linkage(s) are sealed without their row binding: run \
                 `shikaku keys reseal --reason \"bind sealed numbers to their rows\"`"
            );
        }
        let roles = shikaku_db::roles::Roles::with_prefix(
            &std::env::var("SHIKAKU_DB_ROLE_PREFIX").unwrap_or_else(|_| "shikaku".into()),
        );
        if shikaku_db::roles::exist(&mut conn, &roles)? {
            shikaku_db::roles::grant(&mut conn, &roles)?;
            println!("privileges granted to {} and {}", roles.app, roles.reader);
        } else if db.has_owner_url() {
            anyhow::bail!(
                "roles {} and {} do not exist: run `shikaku db roles` first",
                roles.app,
                roles.reader
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
