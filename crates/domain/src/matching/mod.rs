//! Matching a person against the resident register (住基 5 items): the one home of the rules
//! that decide whether two spellings are the same name, kana or address, and whether a
//! registry person and a register record are the same human.
//!
//! These rules live in the domain crate, not in the audit, because two layers apply them and
//! must agree: the nightly audit (`shikaku-audit`, which re-exports [`normalize`] and
//! [`compare`] under its own paths) and the registration-time check in the db crate, which
//! compares every new or corrected linkage at once and cannot depend on the audit. A linkage
//! accepted at registration is therefore never flagged by the audit for a spelling the
//! registration called equivalent, and the other way round.
//!
//! - [`normalize`]: comparison keys of names and addresses, and the kanji [`VariantTable`].
//! - [`compare`]: one item against the register: exact, equivalent, similar or different.
//! - [`five_items`]: all five items at once, and the registration verdict (which items differ,
//!   which could not be compared).

pub mod compare;
pub mod five_items;
pub mod normalize;

pub use compare::DEFAULT_SIMILARITY_THRESHOLD;
pub use five_items::{check_five_items, FiveItemComparison, FiveItems, ItemsVerdict};
pub use normalize::{VariantTable, VariantTableError, DEFAULT_KANJI_VARIANTS};
