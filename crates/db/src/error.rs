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
    /// The key file's index key is not the one the linkages are under (rotated, or a rotation
    /// is running): the caller reloads its keys, or finishes the rotation.
    #[error("{0}")]
    KeysChanged(String),
    /// A number is already linked to other persons: a conflict whose subjects the caller must
    /// log (the refusal itself tells something about them), never show.
    #[error("{message}")]
    LinkedElsewhere {
        /// What the caller may be told.
        message: String,
        /// The persons the number is linked to.
        person_ids: Vec<i64>,
    },
    /// A new or corrected linkage whose person disagrees with the resident register on some
    /// of the five items, and no 理由付き疑いなし reason was given. Names the items only, never
    /// a value or the number (crate::identity_check).
    #[error(
        "refused: the person's 5 items differ from the resident register on {}; correct the \
         registry, or register anyway with a 理由付き疑いなし reason (no error, with a reason)",
        crate::identity_check::item_names(.differing)
    )]
    IdentityMismatch {
        /// The items that differ (similar or different), in the order of the five items.
        differing: Vec<shikaku_domain::Field>,
        /// The items that could not be compared (absent on a side); not a mismatch.
        not_compared: Vec<shikaku_domain::Field>,
    },
}

impl From<shikaku_domain::free_text::FreeTextError> for DbError {
    fn from(e: shikaku_domain::free_text::FreeTextError) -> Self {
        DbError::Invalid(e.to_string())
    }
}
