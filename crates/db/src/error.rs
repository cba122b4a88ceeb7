//! Errors of the database layer. Messages never carry a My Number: the layer only ever
//! handles sealed numbers, blind indexes and last-4 digits.

use thiserror::Error;

/// What can go wrong talking to PostgreSQL or applying the schema.
#[derive(Debug, Error)]
pub enum DbError {
    /// Could not open a connection (wrong URL, server down, authentication).
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    /// A migration failed to apply or revert.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A sealed number could not be opened or a key is missing.
    #[error("key error: {0}")]
    Key(#[from] shikaku_domain::error::DomainError),
    /// Something the caller asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is not allowed in the record's current state, or lacks something required.
    #[error("{0}")]
    Invalid(String),
    /// The request clashes with what is stored (a number already linked to someone else).
    #[error("{0}")]
    Conflict(String),
    /// A number is already linked to other persons: a conflict whose subjects the caller must
    /// log (the refusal itself tells something about them), never show.
    #[error("{message}")]
    LinkedElsewhere {
        /// What the caller may be told.
        message: String,
        /// The persons the number is linked to.
        person_ids: Vec<i64>,
    },
}

/// Checks a reason people typed for an action: it must say something, and it must not hold a
/// run of ten or more digits (spaces and hyphens between them allowed), which could be a whole
/// My Number; reasons are stored in histories and the access log, where no number may be.
pub fn check_reason(reason: &str) -> Result<(), DbError> {
    if reason.trim().is_empty() {
        return Err(DbError::Invalid("a reason is required".to_string()));
    }
    let mut run = 0;
    for c in reason.chars() {
        if c.is_ascii_digit() || ('０'..='９').contains(&c) {
            run += 1;
            if run >= 10 {
                return Err(DbError::Invalid(
                    "a reason must not contain a long number (it could be a My Number); \
                     refer to the last 4 digits instead"
                        .to_string(),
                ));
            }
        } else if c != ' ' && c != '-' && c != '\u{3000}' {
            run = 0;
        }
    }
    Ok(())
}
