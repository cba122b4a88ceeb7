//! `shikaku migrate`.

use std::process::ExitCode;

use crate::config::Database;

/// Applies, lists or reverts migrations.
pub fn run(db: &Database, status: bool, revert_all: bool) -> anyhow::Result<ExitCode> {
    let mut conn = db.connect()?;
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
    }
    Ok(ExitCode::SUCCESS)
}
