//! What the linkage audit reports, as the registry stores it and reviewers read it: finding
//! kinds, severities, the five compared items, the verdict on each, and the comparison a run
//! stored per finding. The audit crate computes these; the database layer stores them; the API
//! and the console show them. None of them can depend on the audit crate, so the types live
//! here.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A finding kind, as in the `kind` column of findings.csv (formats.md).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// A dated benefit record the rules do not allow: a co-pay the age rules do not allow
    /// beyond the income cases, or a 特定疾病 record outside the qualification. Low; about the
    /// person's benefits, not a number (no last 4 digits).
    BenefitInconsistent,
}

impl FindingKind {
    /// Every kind, in the order of formats.md.
    pub const ALL: &'static [FindingKind] = <Self as strum::VariantArray>::VARIANTS;

    /// The name used in findings.csv and the database.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// From the findings.csv name.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// The kind as the console names it.
    pub fn label(self) -> &'static str {
        match self {
            FindingKind::InvalidCheckDigit => "検査数字の誤り",
            FindingKind::NumberShared => "番号の重複紐付け",
            FindingKind::MultipleNumbers => "複数番号の保有",
            FindingKind::NotInRegistry => "住基に該当なし",
            FindingKind::ResidentRemoved => "住基で消除済み",
            FindingKind::IdentityMismatch => "本人情報の不一致",
            FindingKind::AddressMismatch => "住所のみ不一致",
            FindingKind::BenefitInconsistent => "給付記録の不整合",
        }
    }
}

/// How urgent a finding is. Ordered from least to most severe, so `>= Severity::Medium`
/// reads naturally.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Most severe first, as the queue lists them.
    pub const MOST_SEVERE_FIRST: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];

    /// `low`, `medium`, `high` or `critical`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// From the findings.csv name.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// 重大, 高, 中 or 低.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Critical => "重大",
            Severity::High => "高",
            Severity::Medium => "中",
            Severity::Low => "低",
        }
    }
}

/// The hint of a finding whose names differ only in the surname (rule H4 of docs/audit.md),
/// exactly as the finding's detail carries it: a marriage or adoption changes the surname and
/// nothing else, and the register records the change with its 異動 (movement) date, which a
/// reviewer compares with the registry's last change before dismissing or correcting.
pub const NAME_CHANGE_HINT: &str = "name change? check the register's 異動 date";

/// [`NAME_CHANGE_HINT`] as the console shows it beside the English text.
pub const NAME_CHANGE_HINT_JA: &str = "氏の変更？住民票の異動日を確認";

/// Where a finding stands in review.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FindingStatus {
    /// Detected and not yet judged.
    Open,
    /// A reviewer confirmed the problem; it is being fixed.
    Confirmed,
    /// 理由付き疑いなし: checked, no error, with a reason.
    Dismissed,
    /// No longer detected by the latest run.
    Resolved,
}

impl FindingStatus {
    /// Every status, as the queue lists them.
    pub const ALL: &'static [FindingStatus] = <Self as strum::VariantArray>::VARIANTS;

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// 未対応, 誤り確認済, 理由付き疑いなし or 解消.
    pub fn label(self) -> &'static str {
        match self {
            FindingStatus::Open => "未対応",
            FindingStatus::Confirmed => "誤り確認済",
            FindingStatus::Dismissed => "理由付き疑いなし",
            FindingStatus::Resolved => "解消",
        }
    }
}

/// A reviewer's verdict on a finding.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ReviewAction {
    /// The problem is real.
    Confirm,
    /// 理由付き疑いなし.
    Dismiss,
}

impl ReviewAction {
    /// The status the verdict leaves the finding in.
    pub fn status(self) -> FindingStatus {
        match self {
            ReviewAction::Confirm => FindingStatus::Confirmed,
            ReviewAction::Dismiss => FindingStatus::Dismissed,
        }
    }

    /// The verdict's name on the console.
    pub fn label(self) -> &'static str {
        match self {
            ReviewAction::Confirm => "誤りを確認",
            ReviewAction::Dismiss => "理由付き疑いなし",
        }
    }
}

/// One of the five items (5情報) compared with the register.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
        self.into()
    }

    /// 漢字氏名, カナ氏名, 生年月日, 性別 or 住所.
    pub fn label(self) -> &'static str {
        match self {
            Field::NameKanji => "漢字氏名",
            Field::NameKana => "カナ氏名",
            Field::BirthDate => "生年月日",
            Field::Sex => "性別",
            Field::Address => "住所",
        }
    }
}

/// How one item of the registry compares with the register.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FieldMatch {
    /// Byte-identical.
    Exact,
    /// Identical after normalization (a spelling variant): not a mismatch.
    Equivalent,
    /// Not equivalent, but the similarity score is at or above the threshold.
    Similar {
        /// Normalized Levenshtein similarity of the keys, 0..1.
        score: f64,
    },
    /// Not equivalent and below the threshold (or a date/code that differs: score 0).
    Different {
        /// Normalized Levenshtein similarity of the keys, 0..1.
        score: f64,
    },
}

impl FieldMatch {
    /// Exact or equivalent: no mismatch.
    pub fn agrees(self) -> bool {
        matches!(self, FieldMatch::Exact | FieldMatch::Equivalent)
    }

    /// Similar or different: a mismatch.
    pub fn disagrees(self) -> bool {
        !self.agrees()
    }

    /// Different (not merely similar).
    pub fn is_different(self) -> bool {
        matches!(self, FieldMatch::Different { .. })
    }

    /// Similar (not different).
    pub fn is_similar(self) -> bool {
        matches!(self, FieldMatch::Similar { .. })
    }

    /// The similarity score of a mismatch.
    pub fn score(self) -> Option<f64> {
        match self {
            FieldMatch::Similar { score } | FieldMatch::Different { score } => Some(score),
            _ => None,
        }
    }

    /// 一致, 同一（表記ゆれ）, 類似 or 相違.
    pub fn label(self) -> &'static str {
        match self {
            FieldMatch::Exact => "一致",
            FieldMatch::Equivalent => "同一（表記ゆれ）",
            FieldMatch::Similar { .. } => "類似",
            FieldMatch::Different { .. } => "相違",
        }
    }
}

/// One item as an audit run compared it, stored with the finding so that a reviewer sees the
/// verdict the run made, with the normalization and variant table the run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldComparison {
    /// Which item.
    pub field: Field,
    /// The registry's value as stored (`None` when absent).
    pub registry: Option<String>,
    /// The register's value as extracted (`None` when absent).
    pub register: Option<String>,
    /// The registry value's comparison key (`None` for dates and codes, compared as they are).
    pub registry_key: Option<String>,
    /// The register value's comparison key.
    pub register_key: Option<String>,
    /// The verdict; `None` when the item could not be compared (absent on a side, or sex
    /// unset).
    pub verdict: Option<FieldMatch>,
}

/// The variant table an audit run compared names with, recorded with the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VariantTableInfo {
    /// Where its groups came from: the built-in table, then any `SHIKAKU_KANJI_VARIANTS` file.
    pub sources: Vec<String>,
    /// Characters mapped to another (non-canonical members of all groups).
    pub characters: usize,
    /// SHA-256 of the table as used (hex), so two runs can be told to have used the same one.
    pub sha256: String,
}

/// One problem found by the audit.
#[derive(Debug, Clone, PartialEq)]
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
    /// For identity and address mismatches: each of the five items as this run compared it
    /// (values, comparison keys, verdict), stored with the finding so a reviewer sees what the
    /// run saw. Empty for the other kinds.
    pub comparison: Vec<FieldComparison>,
    /// For identity and address mismatches: the evidence model's probability that the number
    /// is another person's, with the weight of each item. `None` for the other kinds.
    pub evidence: Option<crate::evidence::Evidence>,
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
            assert_eq!(FindingKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(FindingKind::ALL.len(), 8);
        assert_eq!(FindingKind::ALL[0].as_str(), "invalid_check_digit");
        for s in ["low", "medium", "high", "critical"] {
            assert_eq!(Severity::parse(s).unwrap().as_str(), s);
        }
        assert!(Severity::Critical > Severity::High && Severity::Medium > Severity::Low);
        assert_eq!(Field::BirthDate.as_str(), "birth_date");
        assert_eq!(
            FindingStatus::parse("dismissed"),
            Some(FindingStatus::Dismissed)
        );
        assert_eq!(ReviewAction::Dismiss.status(), FindingStatus::Dismissed);
        assert_eq!(FindingKind::parse("nonsense"), None);
    }

    #[test]
    fn every_kind_and_severity_has_a_japanese_label() {
        for k in FindingKind::ALL {
            assert!(!k.label().is_ascii(), "{k}");
        }
        assert_eq!(Severity::Critical.label(), "重大");
        assert_eq!(Severity::Low.label(), "低");
    }

    #[test]
    fn comparisons_serialize_with_their_verdict() {
        let c = FieldComparison {
            field: Field::NameKana,
            registry: Some("ヤマダ".into()),
            register: Some("ﾔﾏﾀ".into()),
            registry_key: Some("ヤマダ".into()),
            register_key: Some("ヤマタ".into()),
            verdict: Some(FieldMatch::Similar { score: 0.67 }),
        };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["field"], "name_kana");
        assert_eq!(json["verdict"]["result"], "similar");
        let back: FieldComparison = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
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
