//! The linkage audit engine of shikaku: compares every linked My Number with the resident
//! register (住基 5 items) and with the other linkages of the same number and person, and
//! reports findings (formats.md, findings.csv) with a severity and a stable fingerprint.
//!
//! The engine is pure: no database, files or clock, and the same input always gives the same
//! findings in the same order, on any number of threads. The [`runner`] is the thin I/O layer
//! around it: it reads rows, builds [`NumberGroup`]s, calls [`audit_groups`] batch by batch and
//! writes the findings. Severity rules and worked examples are in docs/audit.md.
//!
//! - [`normalize`]: comparison keys of names and addresses, and the kanji [`VariantTable`];
//!   [`compare`]: one item against the register: exact, equivalent, similar or different.
//!   Both are `shikaku_domain::matching`'s, re-exported: the registration-time check in the db
//!   crate applies the same rules, and it cannot depend on this crate.
//! - [`engine`]: the checks, one per finding kind, and the shapes of identity mismatches.
//! - [`model`]: the evidence model (Fellegi–Sunter with lookup channels) that gives every
//!   identity finding its probability of another person, and from it the severity.
//! - [`runner`]: the PostgreSQL run: streams, temporary files, and the hand-over of findings to
//!   the registry's findings repository (`shikaku_db::findings`).
//!
//! Depends on the domain and db crates only; nothing but the binary depends on it.

pub mod engine;
pub mod model;
pub mod runner;

/// Comparison keys of names and addresses, and the kanji [`VariantTable`]: the domain's, kept
/// under this path so the engine and its users read `crate::normalize` as before.
pub use shikaku_domain::matching::normalize;

/// One item against the register (exact, equivalent, similar, different): the domain's, kept
/// under this path so the engine and its users read `crate::compare` as before.
pub use shikaku_domain::matching::compare;

pub use compare::DEFAULT_SIMILARITY_THRESHOLD;
pub use engine::{
    audit_groups, check_group, check_person_numbers, AuditContext, Identity, IdentityComparison,
    LinkageInput, NumberGroup, ResidentInput, Rule,
};
pub use normalize::{VariantTable, VariantTableError, DEFAULT_KANJI_VARIANTS};
