//! The PostgreSQL layer of shikaku: embedded migrations, the generated diesel schema, and the
//! repository functions the CLI, the audit and the API call. Every SQL statement of the
//! project lives here (the audit's four COPY streams aside, which are its runner's by design).
//! Functions take `&mut PgConnection` (or, on the API's hot path, `&mut AsyncPgConnection`)
//! and know nothing of HTTP or terminals; bulk paths use `COPY`.
//!
//! Depends on the domain crate only; the audit, the API and the binary depend on it.

pub mod access_log;
pub mod benefits;
pub mod bulk;
pub mod certificates;
pub mod console;
pub mod eligibility;
pub mod error;
pub mod export;
pub mod findings;
pub mod history;
pub mod identity_check;
pub mod import;
pub mod insurers;
pub mod keys;
pub mod linkages;
pub mod migrate;
pub mod persons;
pub mod replica;
pub mod roles;
#[allow(missing_docs)]
pub mod schema;
pub mod stats;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;

pub use error::DbError;

use diesel::{Connection, PgConnection};

/// Today in Asia/Tokyo, the date every eligibility rule is judged in (see
/// [`shikaku_domain::calendar`]). Here rather than in the pure domain crate because it reads
/// the clock.
pub fn today_tokyo() -> chrono::NaiveDate {
    shikaku_domain::calendar::tokyo_date(chrono::Utc::now())
}

/// Opens a connection to `url`. The URL may carry a password, so it is never logged.
pub fn connect(url: &str) -> Result<PgConnection, DbError> {
    Ok(PgConnection::establish(url)?)
}
