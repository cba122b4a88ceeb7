//! Matching a person against the resident register (住基 5 items): the one home of the rules
//! that decide whether two spellings are the same name, kana or address, and whether a
//! registry person and a register record are the same human.
//!
//! These rules live in the domain crate, not in the audit, because two layers apply them and
//! must agree: the nightly audit (`shikaku-audit`, which re-exports [`normalize`] and
//! [`compare`] under its own paths) and a registration-time check in the db crate, which cannot
//! depend on the audit. Then a spelling one of them calls equivalent the other does too.
//!
//! - [`normalize`]: comparison keys of names and addresses, and the kanji [`VariantTable`].
//! - [`compare`]: one item against the register: exact, equivalent, similar or different.

pub mod compare;
pub mod normalize;

pub use compare::DEFAULT_SIMILARITY_THRESHOLD;
pub use normalize::{VariantTable, VariantTableError, DEFAULT_KANJI_VARIANTS};
