//! The CLI's entries in the access log. Every command that reads or changes personal data
//! leaves one, as actor `cli:<os user>` in role `cli`, with the command, the subject(s) or
//! counts, and the reason where one is required; a change commits with its entry (the caller
//! passes its transaction's connection), a read's entry commits before the data is shown or
//! written out.

use diesel::PgConnection;
use serde_json::Value;
use shikaku_db::access_log::{self, NewEntry};
use shikaku_domain::Keyring;

/// `cli:<os user>`.
pub fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

/// An entry for the current user doing `action` about `subject`.
pub fn entry(
    action: &str,
    subject: Option<String>,
    request: Value,
    response: Value,
    reason: Option<&str>,
) -> NewEntry {
    let mut e = NewEntry::now(&actor(), "cli", action);
    e.subject = subject;
    e.request = request;
    e.response = response;
    e.reason = reason.map(str::to_string);
    e
}

/// Appends `entries` (in the caller's transaction, when there is one).
pub fn record(
    conn: &mut PgConnection,
    keyring: &Keyring,
    entries: &[NewEntry],
) -> anyhow::Result<()> {
    access_log::append(conn, keyring, entries)?;
    Ok(())
}

pub use shikaku_db::access_log::returned_persons as persons;
