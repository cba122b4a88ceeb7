//! The registration-time check: every new or corrected linkage, from any path (a clerk's
//! registration, a correction, a linkages.csv import), is compared at once with the person's
//! record in the latest register snapshot on the five items, under the audit's normalization
//! ([`shikaku_domain::matching::check_five_items`]).
//!
//! Since 2023 a number is registered only on a five-item match (domain.md); waiting for the
//! nightly audit would let a wrong number be shown to clinics for a day, which is how the
//! 2021–2023 errors spread. The outcomes:
//!
//! - **matched**: stored with `identity_confirmed = true`.
//! - **not checked**: no snapshot yet, no record for the number in the latest one, or a
//!   snapshot indexed under an index key the key file no longer holds. Stored with
//!   `identity_confirmed = false` and an `identity_not_checked` event saying why; the nightly
//!   audit compares it once the register has the number (`not_in_registry` meanwhile).
//! - **mismatch**: refused with [`DbError::IdentityMismatch`] naming the items that differ,
//!   unless the caller gives a 理由付き疑いなし reason ("no error, with a reason"). Then it is
//!   stored with `identity_confirmed = false` and an `identity_mismatch_accepted` event with
//!   the reason, the items and the actor. The flag stays false on purpose: the person
//!   registering vouches for the link, but the register does not, so the nightly audit still
//!   raises its finding and someone reviewing it (an auditor, not the clerk who overrode)
//!   dismisses it or confirms the identity. A reason may not silence the second pair of eyes.
//!
//! Nothing here ever puts a number, its last 4 digits or a register value into an error or an
//! event: only item names, snapshot ids and the reason the caller typed (itself checked to hold
//! no number).
//!
//! The kanji variant table is the built-in one. A site's `SHIKAKU_KANJI_VARIANTS` file, which
//! the nightly audit reads, is not applied here: registration can only be stricter than the
//! audit, never more lenient.

use std::sync::OnceLock;

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Date, Integer, Jsonb, Nullable, SmallInt, Text};
use shikaku_domain::finding::Field;
use shikaku_domain::free_text::FreeText;
use shikaku_domain::matching::{check_five_items, FiveItems, ItemsVerdict, VariantTable};
use shikaku_domain::{Keyring, Sex};

use crate::error::DbError;

/// The kanji variant table registrations are compared under: the built-in one, built once.
pub fn variants() -> &'static VariantTable {
    static TABLE: OnceLock<VariantTable> = OnceLock::new();
    TABLE.get_or_init(VariantTable::default)
}

/// Why a new linkage could not be compared with the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum NotChecked {
    /// No register extract has been imported yet.
    NoSnapshot,
    /// The latest snapshot has no record for the number.
    NoRecord,
    /// The latest snapshot is indexed under an index key the key file does not hold, so its
    /// blind indexes cannot be matched (import a new extract).
    OtherIndexKey,
}

impl NotChecked {
    /// The name stored in the event's details.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What the check decided for a linkage that is stored (a refused one is an error instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityCheck {
    /// Every compared item is exact or equivalent.
    Matched {
        /// The snapshot compared with.
        snapshot_id: i64,
        /// Items one side lacks, which the match does not rest on.
        not_compared: Vec<Field>,
    },
    /// Nothing to compare with.
    NotChecked {
        /// The latest snapshot, if there is one.
        snapshot_id: Option<i64>,
        /// Why.
        why: NotChecked,
    },
    /// Items differ, and the caller said 理由付き疑いなし.
    MismatchAccepted {
        /// The snapshot compared with.
        snapshot_id: i64,
        /// The items that differ and those not compared.
        verdict: ItemsVerdict,
        /// The caller's reason (checked free text).
        reason: String,
    },
}

impl IdentityCheck {
    /// Whether the linkage is stored as identity-confirmed: only on a match.
    pub fn identity_confirmed(&self) -> bool {
        matches!(self, IdentityCheck::Matched { .. })
    }

    /// `matched`, `not_checked` or `mismatch_accepted`, as the registration event records it.
    pub fn as_str(&self) -> &'static str {
        match self {
            IdentityCheck::Matched { .. } => "matched",
            IdentityCheck::NotChecked { .. } => "not_checked",
            IdentityCheck::MismatchAccepted { .. } => "mismatch_accepted",
        }
    }

    /// What the registration event's details record about the check.
    pub(crate) fn details(&self) -> serde_json::Value {
        match self {
            IdentityCheck::Matched {
                snapshot_id,
                not_compared,
            } => serde_json::json!({ "identity_check": self.as_str(),
                "snapshot_id": snapshot_id, "not_compared": not_compared }),
            IdentityCheck::NotChecked { snapshot_id, why } => serde_json::json!({
                "identity_check": self.as_str(), "snapshot_id": snapshot_id, "why": why.as_str() }),
            IdentityCheck::MismatchAccepted {
                snapshot_id,
                verdict,
                ..
            } => serde_json::json!({ "identity_check": self.as_str(),
                "snapshot_id": snapshot_id, "differing": verdict.differing,
                "not_compared": verdict.not_compared }),
        }
    }
}

/// The latest register snapshot, the one the audit compares against.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub(crate) struct LatestSnapshot {
    #[diesel(sql_type = BigInt)]
    pub(crate) id: i64,
    #[diesel(sql_type = Integer)]
    pub(crate) index_key_id: i32,
}

impl LatestSnapshot {
    /// The snapshot's index key, if `keyring` holds it (else its indexes cannot be matched).
    pub(crate) fn key_held(&self, keyring: &Keyring) -> Option<u32> {
        u32::try_from(self.index_key_id)
            .ok()
            .filter(|k| keyring.holds_index_key(*k))
    }
}

/// The latest snapshot, if any was imported.
pub(crate) fn latest_snapshot(conn: &mut PgConnection) -> Result<Option<LatestSnapshot>, DbError> {
    Ok(diesel::sql_query(
        "SELECT id, index_key_id FROM resident_snapshots ORDER BY id DESC LIMIT 1",
    )
    .get_result(conn)
    .optional()?)
}

/// A registry person's five items beside the register record for a number (all `None` when
/// the snapshot has no record): the row both the single check and the import's join read.
#[derive(QueryableByName)]
pub(crate) struct ItemsPair {
    #[diesel(sql_type = Text)]
    name_kanji: String,
    #[diesel(sql_type = Text)]
    name_kana: String,
    #[diesel(sql_type = Date)]
    birth_date: NaiveDate,
    #[diesel(sql_type = SmallInt)]
    sex: i16,
    #[diesel(sql_type = Nullable<Text>)]
    address: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    r_name_kanji: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    r_name_kana: Option<String>,
    #[diesel(sql_type = Nullable<Date>)]
    r_birth_date: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    r_sex: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    r_address: Option<String>,
}

/// The select list of an [`ItemsPair`], over `persons p` and `resident_records r`.
pub(crate) const PAIR_COLUMNS: &str = "p.name_kanji, p.name_kana, p.birth_date, p.sex, p.address,
        r.name_kanji AS r_name_kanji, r.name_kana AS r_name_kana, r.birth_date AS r_birth_date,
        r.sex AS r_sex, r.address AS r_address";

impl ItemsPair {
    /// The person's items and the record's, when there is a record. A stored sex the schema
    /// should have excluded is an error naming no value.
    fn items(self) -> Result<(FiveItems, Option<FiveItems>), DbError> {
        let sex = |code: i16, whose: &str| {
            Sex::from_code(code)
                .map_err(|_| DbError::Invalid(format!("unexpected stored sex of {whose}")))
        };
        let registry = FiveItems {
            name_kanji: self.name_kanji,
            name_kana: Some(self.name_kana),
            birth_date: self.birth_date,
            sex: sex(self.sex, "a person")?,
            address: self.address,
        };
        let register = match (self.r_name_kanji, self.r_birth_date, self.r_sex) {
            (Some(name_kanji), Some(birth_date), Some(code)) => Some(FiveItems {
                name_kanji,
                name_kana: self.r_name_kana,
                birth_date,
                sex: sex(code, "a register record")?,
                address: self.r_address,
            }),
            _ => None,
        };
        Ok((registry, register))
    }

    /// The five-item verdict, or `None` when the snapshot has no record.
    pub(crate) fn verdict(self) -> Result<Option<ItemsVerdict>, DbError> {
        let (registry, register) = self.items()?;
        Ok(register.map(|r| check_five_items(&registry, &r, variants())))
    }
}

/// Checks a 理由付き疑いなし reason before anything is looked up, so a bad reason is refused
/// as such and not only when the items happen to differ.
pub(crate) fn check_reason(no_error_reason: Option<&str>) -> Result<(), DbError> {
    if let Some(r) = no_error_reason {
        FreeText::Reason.check(r)?;
    }
    Ok(())
}

/// Compares `person_id`'s items with the latest snapshot's record for the number `digits`,
/// inside the caller's transaction, and decides: matched, not checked, accepted with
/// `no_error_reason`, or refused with [`DbError::IdentityMismatch`].
pub(crate) fn check(
    conn: &mut PgConnection,
    keyring: &Keyring,
    person_id: i64,
    digits: &str,
    no_error_reason: Option<&str>,
) -> Result<IdentityCheck, DbError> {
    let Some(snapshot) = latest_snapshot(conn)? else {
        return Ok(IdentityCheck::NotChecked {
            snapshot_id: None,
            why: NotChecked::NoSnapshot,
        });
    };
    // The record is found by the number's index under the key the snapshot was imported with.
    let Some(blind) = snapshot
        .key_held(keyring)
        .and_then(|k| keyring.blind_index_with(k, digits))
    else {
        return Ok(IdentityCheck::NotChecked {
            snapshot_id: Some(snapshot.id),
            why: NotChecked::OtherIndexKey,
        });
    };
    let pair: ItemsPair = diesel::sql_query(format!(
        "SELECT {PAIR_COLUMNS}
           FROM persons p
           LEFT JOIN resident_records r ON r.snapshot_id = $2 AND r.mn_blind = $3
          WHERE p.id = $1"
    ))
    .bind::<BigInt, _>(person_id)
    .bind::<BigInt, _>(snapshot.id)
    .bind::<Bytea, _>(blind.as_bytes())
    .get_result(conn)
    .optional()?
    .ok_or_else(|| DbError::NotFound(format!("no person {person_id}")))?;
    match pair.verdict()? {
        None => Ok(IdentityCheck::NotChecked {
            snapshot_id: Some(snapshot.id),
            why: NotChecked::NoRecord,
        }),
        Some(verdict) => decide(snapshot.id, verdict, no_error_reason),
    }
}

/// The outcome of a comparison: a match, a mismatch accepted with a reason, or the refusal.
fn decide(
    snapshot_id: i64,
    verdict: ItemsVerdict,
    no_error_reason: Option<&str>,
) -> Result<IdentityCheck, DbError> {
    if verdict.matches() {
        return Ok(IdentityCheck::Matched {
            snapshot_id,
            not_compared: verdict.not_compared,
        });
    }
    match no_error_reason {
        Some(reason) => Ok(IdentityCheck::MismatchAccepted {
            snapshot_id,
            verdict,
            reason: reason.to_owned(),
        }),
        None => Err(DbError::IdentityMismatch {
            differing: verdict.differing,
            not_compared: verdict.not_compared,
        }),
    }
}

/// Records a stored linkage's check where it needs its own event: `identity_not_checked`
/// (why, and the snapshot) or `identity_mismatch_accepted` (the reason, the differing items,
/// the actor). A match needs none: the flag and the registration event's details say it.
pub(crate) fn record(
    conn: &mut PgConnection,
    linkage_id: i64,
    check: &IdentityCheck,
    actor: &str,
) -> Result<(), DbError> {
    let (action, reason) = match check {
        IdentityCheck::Matched { .. } => return Ok(()),
        IdentityCheck::NotChecked { .. } => ("identity_not_checked", None),
        IdentityCheck::MismatchAccepted { reason, .. } => {
            ("identity_mismatch_accepted", Some(reason.as_str()))
        }
    };
    diesel::sql_query(
        "INSERT INTO linkage_events (linkage_id, action, reason, actor, details)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind::<BigInt, _>(linkage_id)
    .bind::<Text, _>(action)
    .bind::<Nullable<Text>, _>(reason)
    .bind::<Text, _>(actor)
    .bind::<Jsonb, _>(check.details())
    .execute(conn)?;
    Ok(())
}

/// The items as findings.csv names them, `;`-separated (`name_kanji;address`).
pub fn item_names(items: &[Field]) -> String {
    items
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(";")
}

/// The items in Japanese, `、`-separated (漢字氏名、住所), for people.
pub fn item_labels(items: &[Field]) -> String {
    items
        .iter()
        .map(|f| f.label())
        .collect::<Vec<_>>()
        .join("、")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_mismatch_is_refused_without_a_reason_and_accepted_with_one() {
        let verdict = ItemsVerdict {
            differing: vec![Field::NameKanji, Field::Address],
            not_compared: vec![Field::NameKana],
        };
        match decide(7, verdict.clone(), None) {
            Err(DbError::IdentityMismatch {
                differing,
                not_compared,
            }) => {
                assert_eq!(differing, verdict.differing);
                assert_eq!(not_compared, verdict.not_compared);
            }
            other => panic!("{other:?}"),
        }
        let accepted = decide(7, verdict.clone(), Some("旧姓で登録、住基は改姓後")).unwrap();
        assert!(!accepted.identity_confirmed());
        assert_eq!(accepted.as_str(), "mismatch_accepted");
        assert_eq!(
            accepted.details()["differing"],
            serde_json::json!(["name_kanji", "address"])
        );
        let matched = decide(7, ItemsVerdict::default(), None).unwrap();
        assert!(matched.identity_confirmed());
    }

    #[test]
    fn item_names_and_labels() {
        let items = [Field::NameKanji, Field::Address];
        assert_eq!(item_names(&items), "name_kanji;address");
        assert_eq!(item_labels(&items), "漢字氏名、住所");
    }
}
