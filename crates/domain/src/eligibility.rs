//! The eligibility rule: where a person's qualification periods put a day, and the validity
//! code (資格有効性) a clinic receives for it, as オンライン資格確認 answers it.
//!
//! Pure: the database finds the persons matching a key and their periods ([`standing`] needs
//! nothing else); only a lost person needs one more fact, whether their number holds a newer
//! qualification under another key, which the caller looks up and passes to [`judge`].
//!
//! Two more rules ride on the answer: [`narrow_by_kana`] lets a clinic tell twins under one
//! 記号・番号 apart when the card has no 枝番, and [`OnlineViewing`] says whether a suspended
//! linkage (a critical audit finding, or a reviewer) blocks online viewing of the records,
//! which is separate from the insurance standing the validity code reports.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::kana;
use crate::period::Period;

/// 資格有効性: the validity code a clinic receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum Validity {
    /// 1: insured on the day.
    Valid,
    /// 2: not insured on the day (lost, or not yet acquired).
    Invalid,
    /// 3: not insured on the day under this key, but a newer qualification exists.
    InvalidNewerExists,
    /// 4: no person with this key and birth date.
    NoMatch,
    /// 5: several persons match; the clinic must ask for the 枝番.
    SeveralMatches,
}

impl Validity {
    /// The code, 1 to 5.
    pub fn code(self) -> u8 {
        match self {
            Validity::Valid => 1,
            Validity::Invalid => 2,
            Validity::InvalidNewerExists => 3,
            Validity::NoMatch => 4,
            Validity::SeveralMatches => 5,
        }
    }

    /// How the code reads on a Japanese screen.
    pub fn label(self) -> &'static str {
        match self {
            Validity::Valid => "1 有効",
            Validity::Invalid => "2 無効",
            Validity::InvalidNewerExists => "3 無効（新しい資格あり）",
            Validity::NoMatch => "4 該当資格なし",
            Validity::SeveralMatches => "5 複数該当",
        }
    }
}

impl From<Validity> for u8 {
    fn from(v: Validity) -> u8 {
        v.code()
    }
}

impl TryFrom<u8> for Validity {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        Ok(match v {
            1 => Validity::Valid,
            2 => Validity::Invalid,
            3 => Validity::InvalidNewerExists,
            4 => Validity::NoMatch,
            5 => Validity::SeveralMatches,
            _ => return Err(format!("unknown validity code {v}")),
        })
    }
}

/// Where a person's periods put a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The period containing the day.
    Insured(usize),
    /// The last period ended on or before the day, and a later one of the same person exists.
    LostNewerHere(usize),
    /// The last period ended on or before the day and nothing later under this key (another
    /// key with the same number may still hold a newer one).
    Lost(usize),
    /// The first period starts after the day.
    NotYet(usize),
    /// No periods at all.
    Never,
}

/// Where `periods` (sorted by acquired_on) put `on`.
pub fn standing(periods: &[Period], on: NaiveDate) -> Standing {
    if let Some(i) = periods.iter().position(|p| p.covers(on)) {
        return Standing::Insured(i);
    }
    let last_past = periods
        .iter()
        .rposition(|p| p.lost_on.is_some_and(|l| l <= on));
    match last_past {
        Some(i) if periods.iter().any(|p| p.acquired_on > on) => Standing::LostNewerHere(i),
        Some(i) => Standing::Lost(i),
        None if periods.is_empty() => Standing::Never,
        None => Standing::NotYet(0),
    }
}

/// The answer for one matching person: the code and the period it describes (the one
/// containing the day, the one lost, or the first one not yet begun).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judgement {
    /// 1, 2 or 3.
    pub validity: Validity,
    /// Index into the periods of the period the answer describes; `None` without periods.
    pub period: Option<usize>,
}

/// The answer for one person matching a key. `newer_elsewhere` says whether the person's
/// number is linked to another key with a period acquired on or after this person's loss;
/// it matters only for [`Standing::Lost`].
pub fn judge(standing: Standing, newer_elsewhere: bool) -> Judgement {
    let (validity, period) = match standing {
        Standing::Insured(i) => (Validity::Valid, Some(i)),
        Standing::LostNewerHere(i) => (Validity::InvalidNewerExists, Some(i)),
        Standing::Lost(i) if newer_elsewhere => (Validity::InvalidNewerExists, Some(i)),
        Standing::Lost(i) | Standing::NotYet(i) => (Validity::Invalid, Some(i)),
        Standing::Never => (Validity::Invalid, None),
    };
    Judgement { validity, period }
}

/// The code for a key by how many persons matched it: `None` when exactly one did (judge that
/// person), else 4 (none) or 5 (several).
pub fn by_match_count(matches: usize) -> Option<Validity> {
    match matches {
        0 => Some(Validity::NoMatch),
        1 => None,
        _ => Some(Validity::SeveralMatches),
    }
}

/// Of several persons matching a key and birth date (twins under one 記号・番号, asked without
/// a 枝番), those whose カナ氏名 is the clinic's `kana`, compared by the registry's kana search
/// key ([`kana::search_key`]: width, script and spacing do not matter). A single match, or no
/// kana, is left as it is: the kana only chooses between persons who share the key, it never
/// turns the answer for one card into "no match". [`by_match_count`] then gives 5 when several
/// remain and 4 when none does.
pub fn narrow_by_kana<T>(
    candidates: Vec<T>,
    kana: Option<&str>,
    kana_of: impl Fn(&T) -> &str,
) -> Vec<T> {
    match kana {
        Some(k) if candidates.len() > 1 => {
            let wanted = kana::search_key(k);
            candidates
                .into_iter()
                .filter(|c| kana::search_key(kana_of(c)) == wanted)
                .collect()
        }
        _ => candidates,
    }
}

/// Whether the person's records may be viewed online (オンライン資格確認's viewing of medical
/// information through the My Number). A linkage error blocks it until the insurer corrects
/// the number or confirms there is no error with a reason (domain.md); the validity code still
/// answers whether the person is insured, because the key is the card, not the number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OnlineViewing {
    /// Online viewing is blocked: a linkage of the person is suspended.
    pub blocked: bool,
    /// Why, when blocked: `finding N` when the audit's critical finding N suspended the
    /// linkage, else `suspended by the insurer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The finding, when one blocks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_id: Option<i64>,
}

impl OnlineViewing {
    /// From how many of the person's linkages are suspended and the finding that suspended
    /// one of them, if any.
    pub fn new(suspended_linkages: i64, blocking_finding: Option<i64>) -> Self {
        let blocked = suspended_linkages > 0 || blocking_finding.is_some();
        let reason = match blocking_finding {
            Some(id) => Some(format!("finding {id}")),
            None if blocked => Some("suspended by the insurer".to_owned()),
            None => None,
        };
        OnlineViewing {
            blocked,
            reason,
            finding_id: blocking_finding,
        }
    }

    /// How the console says it: 閲覧可, or 閲覧停止中 with the finding.
    pub fn label(&self) -> String {
        match (self.blocked, self.finding_id) {
            (false, _) => "オンライン閲覧可".to_owned(),
            (true, Some(id)) => {
                format!("オンライン閲覧停止中（監査所見 #{id} の確認待ち）")
            }
            (true, None) => "オンライン閲覧停止中（保険者による停止）".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::person::LossReason;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn p(a: &str, l: Option<&str>) -> Period {
        Period::new(d(a), l.map(d), l.map(|_| LossReason::OtherInsurance))
    }

    #[test]
    fn standing_on_dated_histories() {
        let hist = [p("2020-04-01", Some("2024-04-01")), p("2025-01-01", None)];
        assert_eq!(standing(&hist, d("2021-01-01")), Standing::Insured(0));
        // The loss date is the first day without cover.
        assert_eq!(standing(&hist, d("2024-03-31")), Standing::Insured(0));
        assert_eq!(standing(&hist, d("2024-04-01")), Standing::LostNewerHere(0));
        assert_eq!(standing(&hist, d("2025-01-01")), Standing::Insured(1));
        assert_eq!(standing(&hist, d("2019-01-01")), Standing::NotYet(0));
        let lost = [p("2020-04-01", Some("2024-04-01"))];
        assert_eq!(standing(&lost, d("2026-01-01")), Standing::Lost(0));
        assert_eq!(standing(&[], d("2026-01-01")), Standing::Never);
    }

    #[test]
    fn codes_from_standing() {
        let j = |s, newer| judge(s, newer).validity.code();
        assert_eq!(j(Standing::Insured(0), false), 1);
        assert_eq!(j(Standing::LostNewerHere(0), false), 3);
        assert_eq!(j(Standing::Lost(0), false), 2);
        // Lost here, but the same number holds a newer qualification under another key.
        assert_eq!(j(Standing::Lost(0), true), 3);
        // "Newer elsewhere" does not turn a person not yet insured into a 3.
        assert_eq!(j(Standing::NotYet(0), true), 2);
        assert_eq!(judge(Standing::Never, false).period, None);
        assert_eq!(by_match_count(0), Some(Validity::NoMatch));
        assert_eq!(by_match_count(1), None);
        assert_eq!(by_match_count(2), Some(Validity::SeveralMatches));
    }

    #[test]
    fn twins_are_told_apart_by_kana_in_any_width() {
        let twins = vec![(1, "ヤマダ　タロウ"), (2, "ヤマダ　ジロウ")];
        let pick = |kana: Option<&str>| -> Vec<i32> {
            narrow_by_kana(twins.clone(), kana, |t| t.1)
                .iter()
                .map(|t| t.0)
                .collect()
        };
        assert_eq!(pick(None), [1, 2]);
        assert_eq!(
            by_match_count(pick(None).len()),
            Some(Validity::SeveralMatches)
        );
        assert_eq!(pick(Some("ﾔﾏﾀﾞ ｼﾞﾛｳ")), [2]);
        assert_eq!(pick(Some("やまだじろう")), [2]);
        assert_eq!(pick(Some("ヤマダタロウ")), [1]);
        assert_eq!(by_match_count(pick(Some("ヤマダタロウ")).len()), None);
        let none = pick(Some("スズキ　ハナコ"));
        assert_eq!(by_match_count(none.len()), Some(Validity::NoMatch));
        // Same kana twice (two persons with one reading): still several.
        let same = vec![(1, "ヤマダ　ユウ"), (2, "ﾔﾏﾀﾞ ﾕｳ")];
        assert_eq!(narrow_by_kana(same, Some("ヤマダユウ"), |t| t.1).len(), 2);
        // One match is never narrowed away by a kana that differs.
        let one = vec![(1, "ヤマダ　タロウ")];
        assert_eq!(narrow_by_kana(one, Some("スズキ"), |t| t.1).len(), 1);
    }

    #[test]
    fn online_viewing_names_the_blocking_finding() {
        let open = OnlineViewing::new(0, None);
        assert!(!open.blocked);
        assert_eq!(
            serde_json::to_value(&open).unwrap(),
            serde_json::json!({ "blocked": false })
        );
        let f = OnlineViewing::new(1, Some(123));
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({ "blocked": true, "reason": "finding 123", "finding_id": 123 })
        );
        assert!(f.label().contains("#123"));
        let by_hand = OnlineViewing::new(1, None);
        assert!(by_hand.blocked);
        assert_eq!(by_hand.reason.as_deref(), Some("suspended by the insurer"));
        assert!(by_hand.label().contains("閲覧停止中"));
    }

    #[test]
    fn validity_codes_round_trip() {
        for code in 1..=5u8 {
            let v = Validity::try_from(code).unwrap();
            assert_eq!(u8::from(v), code);
            assert_eq!(serde_json::to_string(&v).unwrap(), code.to_string());
        }
        assert!(Validity::try_from(6).is_err());
    }
}
