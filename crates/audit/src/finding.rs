//! What the audit reports: findings, their kinds, severities and fingerprints.

use std::fmt;

use sha2::{Digest, Sha256};

/// A finding kind, as in the `kind` column of findings.csv (formats.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    /// The linked number fails the check digit.
    InvalidCheckDigit,
    /// One number is linked to two or more different persons whose qualifications overlap.
    NumberShared,
    /// One person holds two or more active linkages with different numbers.
    MultipleNumbers,
    /// The number is not in the resident-register extract.
    NotInRegistry,
    /// The register says the resident was removed (消除), yet the person is still eligible.
    ResidentRemoved,
    /// Name, kana, birth date or sex disagree with the register beyond spelling variants.
    IdentityMismatch,
    /// Only the address disagrees.
    AddressMismatch,
}

impl FindingKind {
    /// Every kind, in the order of formats.md.
    pub const ALL: [FindingKind; 7] = [
        FindingKind::InvalidCheckDigit,
        FindingKind::NumberShared,
        FindingKind::MultipleNumbers,
        FindingKind::NotInRegistry,
        FindingKind::ResidentRemoved,
        FindingKind::IdentityMismatch,
        FindingKind::AddressMismatch,
    ];

    /// The name used in findings.csv and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::InvalidCheckDigit => "invalid_check_digit",
            FindingKind::NumberShared => "number_shared",
            FindingKind::MultipleNumbers => "multiple_numbers",
            FindingKind::NotInRegistry => "not_in_registry",
            FindingKind::ResidentRemoved => "resident_removed",
            FindingKind::IdentityMismatch => "identity_mismatch",
            FindingKind::AddressMismatch => "address_mismatch",
        }
    }

    /// From the findings.csv name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent a finding is. Ordered from least to most severe, so `>= Severity::Medium`
/// reads naturally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Address only: keep the record current.
    Low,
    /// Needs a look: a name spelled differently beyond variants, a number missing from the
    /// register.
    Medium,
    /// Probably a data error on the right person: correct it or confirm with a reason.
    High,
    /// The number probably belongs to someone else: block online viewing until resolved.
    Critical,
}

impl Severity {
    /// `low`, `medium`, `high` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// From the findings.csv name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of the five items (5情報) compared with the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// 漢字氏名.
    NameKanji,
    /// カナ氏名.
    NameKana,
    /// 生年月日.
    BirthDate,
    /// 性別.
    Sex,
    /// 住所.
    Address,
}

impl Field {
    /// The name used in the `fields` column of findings.csv.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::NameKanji => "name_kanji",
            Field::NameKana => "name_kana",
            Field::BirthDate => "birth_date",
            Field::Sex => "sex",
            Field::Address => "address",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found by the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable identity of the problem across runs (see [`fingerprint`]): the runner upserts on
    /// it, so a re-run updates `last_seen` and keeps the review status.
    pub fingerprint: String,
    /// What kind of problem.
    pub kind: FindingKind,
    /// How urgent.
    pub severity: Severity,
    /// The person, as the JP Core member identifier `保険者番号:記号:番号:枝番`.
    pub person_key: String,
    /// The person's database id.
    pub person_id: i64,
    /// The linkage concerned; `None` for [`FindingKind::MultipleNumbers`], which is about the
    /// person.
    pub linkage_id: Option<i64>,
    /// Last 4 digits of the number concerned (never more).
    pub last4: String,
    /// For mismatches: the items that differ, in [`Field`] order.
    pub fields: Vec<Field>,
    /// One line a person can act on. Holds at most the last 4 digits of a number.
    pub detail: String,
}

impl Finding {
    /// The `fields` column of findings.csv: names `;`-separated.
    pub fn fields_csv(&self) -> String {
        let names: Vec<&str> = self.fields.iter().map(|f| f.as_str()).collect();
        names.join(";")
    }
}

/// The fingerprint of a problem: lower-case hex SHA-256 of
/// `"shikaku-finding-v1" 0x1F kind 0x1F person_key 0x1F blind_hex`, where `blind_hex` is the
/// lower-case hex blind index of the number (for [`FindingKind::MultipleNumbers`], the sorted
/// blind indexes joined by `,`: a changed set of numbers is a new problem to review).
///
/// The same problem on the same person and number always gets the same fingerprint, whatever
/// else changed (severity, detail, linkage id after a re-import). The blind index is a keyed
/// HMAC, so the fingerprint reveals nothing about the number.
pub fn fingerprint(kind: FindingKind, person_key: &str, blind_hex: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"shikaku-finding-v1\x1f");
    h.update(kind.as_str().as_bytes());
    h.update(b"\x1f");
    h.update(person_key.as_bytes());
    h.update(b"\x1f");
    h.update(blind_hex.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in FindingKind::ALL {
            assert_eq!(FindingKind::parse(k.as_str()), Some(k));
        }
        for s in ["low", "medium", "high", "critical"] {
            assert_eq!(Severity::parse(s).unwrap().as_str(), s);
        }
        assert!(Severity::Critical > Severity::High && Severity::Medium > Severity::Low);
        assert_eq!(Field::BirthDate.as_str(), "birth_date");
    }

    #[test]
    fn fingerprint_is_stable_and_separates_inputs() {
        let a = fingerprint(FindingKind::NumberShared, "06130199:1:2:00", "ab");
        assert_eq!(
            a,
            fingerprint(FindingKind::NumberShared, "06130199:1:2:00", "ab")
        );
        assert_eq!(a.len(), 64);
        assert_ne!(
            a,
            fingerprint(FindingKind::NumberShared, "06130199:1:2:01", "ab")
        );
        assert_ne!(
            a,
            fingerprint(FindingKind::IdentityMismatch, "06130199:1:2:00", "ab")
        );
        assert_ne!(
            a,
            fingerprint(FindingKind::NumberShared, "06130199:1:2:00", "ac")
        );
        // The separator keeps shifted boundaries apart.
        assert_ne!(
            fingerprint(FindingKind::NumberShared, "a", "bc"),
            fingerprint(FindingKind::NumberShared, "ab", "c")
        );
    }
}
