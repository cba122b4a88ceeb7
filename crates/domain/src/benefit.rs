//! Dated benefits: the co-pay rate (一部負担金割合, as a 高齢受給者証 records it), the
//! 限度額適用区分 that caps a month's bill, and 特定疾病 (the 10,000 or 20,000 yen monthly cap
//! for 人工透析, 血友病 and HIV from blood products), each valid from one day to another.
//!
//! One home for every rule on them: what a record may hold, what is in force on a day (a
//! `copay` record overrides the age rule for its dates; outside them the age rule decides),
//! the co-pay's 発効期日, the days on which a certificate's printed terms change (the cut
//! that ends a 資格確認書 early), and the inconsistencies the audit reports. Pure: the
//! database hands in the person's records and periods.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::copay::{self, CopayRate, Scheme};
use crate::error::DomainError;
use crate::period::Period;

/// Which kind of benefit a record is; records of one kind never overlap for a person (of
/// `specified_disease`, per disease: a person may hold certificates for two diseases).
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum BenefitKind {
    /// 一部負担金割合 (10, 20 or 30 percent).
    Copay,
    /// 限度額適用区分 (A01–A06, B01–B10).
    Limit,
    /// 特定疾病療養受療証: a monthly cap of 10,000 or 20,000 yen.
    SpecifiedDisease,
}

impl BenefitKind {
    /// `copay`, `limit` or `specified_disease`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// From the file's `kind`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        s.trim()
            .parse()
            .map_err(|_| DomainError::Benefit("kind must be copay, limit or specified_disease"))
    }

    /// How the console names it.
    pub fn label(self) -> &'static str {
        match self {
            BenefitKind::Copay => "一部負担金割合",
            BenefitKind::Limit => "限度額適用区分",
            BenefitKind::SpecifiedDisease => "特定疾病",
        }
    }
}

/// 限度額適用区分 as the national answer codes it: `A01`–`A06` or `B01`–`B10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LimitCategory {
    series: u8,
    number: u8,
}

impl LimitCategory {
    /// From `A01`–`A06` or `B01`–`B10`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        const BAD: DomainError = DomainError::Benefit("limit category must be A01–A06 or B01–B10");
        let s = s.trim();
        let b = s.as_bytes();
        if b.len() != 3 || !b[1].is_ascii_digit() || !b[2].is_ascii_digit() {
            return Err(BAD);
        }
        let number = (b[1] - b'0') * 10 + (b[2] - b'0');
        match (b[0], number) {
            (b'A', 1..=6) | (b'B', 1..=10) => Ok(LimitCategory {
                series: b[0],
                number,
            }),
            _ => Err(BAD),
        }
    }

    /// The code, such as `A03`.
    pub fn code(self) -> String {
        format!("{}{:02}", char::from(self.series), self.number)
    }
}

impl std::fmt::Display for LimitCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.code())
    }
}

/// The disease of a 特定疾病 record.
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Disease {
    /// 人工透析を要する慢性腎不全.
    Dialysis,
    /// 血友病.
    Hemophilia,
    /// 血液凝固因子製剤に起因するHIV感染症.
    Hiv,
}

impl Disease {
    /// From the file's `disease`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        s.trim()
            .parse()
            .map_err(|_| DomainError::Benefit("disease must be dialysis, hemophilia or hiv"))
    }

    /// `dialysis`, `hemophilia` or `hiv`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The name printed on a certificate.
    pub fn label(self) -> &'static str {
        match self {
            Disease::Dialysis => "人工透析を要する慢性腎不全",
            Disease::Hemophilia => "血友病",
            Disease::Hiv => "血液凝固因子製剤に起因するHIV感染症",
        }
    }
}

/// The 特定疾病 monthly cap: 10,000 yen, or 20,000 yen (人工透析 for a high-income person under
/// 70).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiseaseCap {
    /// 10,000 yen.
    Yen10000,
    /// 20,000 yen.
    Yen20000,
}

impl DiseaseCap {
    /// From `10000` or `20000`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s.trim() {
            "10000" => Ok(DiseaseCap::Yen10000),
            "20000" => Ok(DiseaseCap::Yen20000),
            _ => Err(DomainError::Benefit(
                "specified_disease value must be the monthly cap in yen, 10000 or 20000",
            )),
        }
    }

    /// The cap in yen.
    pub fn yen(self) -> u32 {
        match self {
            DiseaseCap::Yen10000 => 10_000,
            DiseaseCap::Yen20000 => 20_000,
        }
    }
}

/// What a record holds: its kind and value together, so a co-pay can never hold a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BenefitValue {
    /// A co-pay rate.
    Copay(CopayRate),
    /// A 限度額適用区分.
    Limit(LimitCategory),
    /// A 特定疾病 cap, with the disease when known.
    SpecifiedDisease {
        /// The monthly cap.
        cap: DiseaseCap,
        /// The disease, when given.
        disease: Option<Disease>,
    },
}

impl BenefitValue {
    /// From the file's (or the table's) `kind`, `value` and `disease` columns.
    pub fn parse(
        kind: BenefitKind,
        value: &str,
        disease: Option<&str>,
    ) -> Result<Self, DomainError> {
        let disease = disease.map(str::trim).filter(|d| !d.is_empty());
        if kind != BenefitKind::SpecifiedDisease && disease.is_some() {
            return Err(DomainError::Benefit(
                "disease is given only with kind specified_disease",
            ));
        }
        Ok(match kind {
            BenefitKind::Copay => BenefitValue::Copay(
                CopayRate::parse(value)
                    .map_err(|_| DomainError::Benefit("copay value must be 10, 20 or 30"))?,
            ),
            BenefitKind::Limit => BenefitValue::Limit(LimitCategory::parse(value)?),
            BenefitKind::SpecifiedDisease => BenefitValue::SpecifiedDisease {
                cap: DiseaseCap::parse(value)?,
                disease: disease.map(Disease::parse).transpose()?,
            },
        })
    }

    /// The kind.
    pub fn kind(&self) -> BenefitKind {
        match self {
            BenefitValue::Copay(_) => BenefitKind::Copay,
            BenefitValue::Limit(_) => BenefitKind::Limit,
            BenefitValue::SpecifiedDisease { .. } => BenefitKind::SpecifiedDisease,
        }
    }

    /// The `value` column: `30`, `A03`, `10000`.
    pub fn value_text(&self) -> String {
        match self {
            BenefitValue::Copay(r) => r.percent().to_string(),
            BenefitValue::Limit(c) => c.code(),
            BenefitValue::SpecifiedDisease { cap, .. } => cap.yen().to_string(),
        }
    }

    /// The `disease` column.
    pub fn disease(&self) -> Option<Disease> {
        match self {
            BenefitValue::SpecifiedDisease { disease, .. } => *disease,
            _ => None,
        }
    }

    /// How the console shows the value: `3割`, `A03`, `10,000円（人工透析…）`.
    pub fn label(&self) -> String {
        match self {
            BenefitValue::Copay(r) => format!("{}割", r.percent() / 10),
            BenefitValue::Limit(c) => c.code(),
            BenefitValue::SpecifiedDisease { cap, disease } => {
                let yen = if *cap == DiseaseCap::Yen10000 {
                    "10,000円"
                } else {
                    "20,000円"
                };
                match disease {
                    Some(d) => format!("{yen}（{}）", d.label()),
                    None => yen.to_owned(),
                }
            }
        }
    }
}

/// One dated record: in force from `valid_from` through `valid_until` (inclusive; open-ended
/// when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Benefit {
    /// What it grants.
    pub value: BenefitValue,
    /// First day in force.
    pub valid_from: NaiveDate,
    /// Last day in force.
    pub valid_until: Option<NaiveDate>,
}

/// A record as stored (the table's columns, or the JSON the lookups aggregate them into).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBenefit {
    /// `copay`, `limit` or `specified_disease`.
    pub kind: String,
    /// `10`, `A03`, `10000`.
    pub value: String,
    /// The disease of a 特定疾病 record.
    #[serde(default)]
    pub disease: Option<String>,
    /// First day in force.
    pub valid_from: NaiveDate,
    /// Last day in force.
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
}

impl Benefit {
    /// A checked record: the value fits the kind and the dates are in order.
    pub fn new(
        value: BenefitValue,
        valid_from: NaiveDate,
        valid_until: Option<NaiveDate>,
    ) -> Result<Self, DomainError> {
        if valid_until.is_some_and(|u| u < valid_from) {
            return Err(DomainError::Benefit(
                "valid_until must not be before valid_from",
            ));
        }
        Ok(Benefit {
            value,
            valid_from,
            valid_until,
        })
    }

    /// From stored columns.
    pub fn from_stored(s: &StoredBenefit) -> Result<Self, DomainError> {
        let kind = BenefitKind::parse(&s.kind)?;
        Benefit::new(
            BenefitValue::parse(kind, &s.value, s.disease.as_deref())?,
            s.valid_from,
            s.valid_until,
        )
    }

    /// The stored columns.
    pub fn to_stored(&self) -> StoredBenefit {
        StoredBenefit {
            kind: self.value.kind().as_str().to_owned(),
            value: self.value.value_text(),
            disease: self.value.disease().map(|d| d.as_str().to_owned()),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
        }
    }

    /// Whether the record is in force on `day`.
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && self.valid_until.is_none_or(|u| day <= u)
    }

    /// Whether two records share a day.
    pub fn overlaps(&self, other: &Benefit) -> bool {
        self.valid_until.is_none_or(|u| other.valid_from <= u)
            && other.valid_until.is_none_or(|u| self.valid_from <= u)
    }

    /// Whether two records may not overlap: same kind (and, for 特定疾病, same disease).
    pub fn exclusive_with(&self, other: &Benefit) -> bool {
        self.value.kind() == other.value.kind() && self.value.disease() == other.value.disease()
    }
}

/// Where the co-pay in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CopaySource {
    /// A dated `copay` record.
    Record,
    /// The age rule (with the person's undated registered rate where the age allows it).
    Age,
}

/// The co-pay in force on a day and its 発効期日.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopayInForce {
    /// The rate.
    pub rate: CopayRate,
    /// 発効期日: the first day of the stretch this rate has been in force.
    pub effective_from: NaiveDate,
    /// A record or the age rule.
    pub source: CopaySource,
}

/// A person's benefit records with what the age rule needs, to ask what is in force when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Benefits<'a> {
    /// Every record of the person, any order.
    pub records: &'a [Benefit],
    /// The scheme (後期 members have no age stages).
    pub scheme: Scheme,
    /// 生年月日.
    pub birth: NaiveDate,
    /// The undated rate the insurer registered on the person, used by the age rule where the
    /// age allows it (persons.csv's `copay_rate`).
    pub registered: Option<u8>,
}

impl Benefits<'_> {
    fn in_force(&self, kind: BenefitKind, day: NaiveDate) -> impl Iterator<Item = &Benefit> {
        self.records
            .iter()
            .filter(move |b| b.value.kind() == kind && b.covers(day))
    }

    /// The co-pay on `day` for a person whose qualification period started on `period_start`:
    /// the `copay` record covering the day, else the age rule. The 発効期日 of a record is its
    /// first day; of the age rule, the latest of the age stage's start, the period's start and
    /// the day after the last record that ended before `day`.
    pub fn copay_on(&self, day: NaiveDate, period_start: NaiveDate) -> CopayInForce {
        if let Some(b) = self.in_force(BenefitKind::Copay, day).next() {
            if let BenefitValue::Copay(rate) = b.value {
                return CopayInForce {
                    rate,
                    effective_from: b.valid_from,
                    source: CopaySource::Record,
                };
            }
        }
        let rate = copay::effective(self.scheme, self.birth, day, self.registered);
        let after_record = self
            .records
            .iter()
            .filter(|b| b.value.kind() == BenefitKind::Copay)
            .filter_map(|b| b.valid_until)
            .filter(|u| *u < day)
            .max()
            .and_then(|u| u.succ_opt());
        let effective_from = [
            copay::age_stage_since(self.scheme, self.birth, day),
            Some(period_start),
            after_record,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(period_start)
        .min(day);
        CopayInForce {
            rate,
            effective_from,
            source: CopaySource::Age,
        }
    }

    /// The 限度額適用区分 in force on `day`, with its record.
    pub fn limit_on(&self, day: NaiveDate) -> Option<(LimitCategory, &Benefit)> {
        self.in_force(BenefitKind::Limit, day)
            .find_map(|b| match b.value {
                BenefitValue::Limit(c) => Some((c, b)),
                _ => None,
            })
    }

    /// The 特定疾病 records in force on `day`.
    pub fn diseases_on(&self, day: NaiveDate) -> Vec<&Benefit> {
        let mut v: Vec<&Benefit> = self.in_force(BenefitKind::SpecifiedDisease, day).collect();
        v.sort_by_key(|b| (b.value.disease(), b.valid_from));
        v
    }

    /// The co-pay rate on `day`: a record's, else the age rule's.
    pub fn rate_on(&self, day: NaiveDate) -> CopayRate {
        self.printed_terms(day).0
    }

    /// What a 資格確認書 prints that a change must cut: the co-pay rate and the limit category.
    pub fn printed_terms(&self, day: NaiveDate) -> (CopayRate, Option<LimitCategory>) {
        let rate = self
            .in_force(BenefitKind::Copay, day)
            .find_map(|b| match b.value {
                BenefitValue::Copay(r) => Some(r),
                _ => None,
            })
            .unwrap_or_else(|| copay::effective(self.scheme, self.birth, day, self.registered));
        (rate, self.limit_on(day).map(|(c, _)| c))
    }

    /// The first day in `(from, until]` on which the co-pay rate or the limit category differs
    /// from those on `from`: a certificate valid from `from` ends the day before it (domain.md:
    /// cut short by a change of co-pay rate; reissued on a change of 限度額 category). Changes
    /// the age rule alone makes are cut by the certificate's age cuts already.
    pub fn first_change(&self, from: NaiveDate, until: NaiveDate) -> Option<NaiveDate> {
        self.first_departure(self.printed_terms(from), from, until)
    }

    /// The first day in `[from, until]` on which the co-pay rate or the limit category in force
    /// differs from `printed` (what a stored certificate shows). Only the days records start or
    /// end on, and `from`, can bring a difference the age cuts have not.
    pub fn first_departure(
        &self,
        printed: (CopayRate, Option<LimitCategory>),
        from: NaiveDate,
        until: NaiveDate,
    ) -> Option<NaiveDate> {
        let mut days: Vec<NaiveDate> = self
            .records
            .iter()
            .filter(|b| b.value.kind() != BenefitKind::SpecifiedDisease)
            .flat_map(|b| [Some(b.valid_from), b.valid_until.and_then(|u| u.succ_opt())])
            .flatten()
            .filter(|d| *d > from && *d <= until)
            .chain(std::iter::once(from))
            .collect();
        days.sort_unstable();
        days.dedup();
        days.into_iter().find(|d| self.printed_terms(*d) != printed)
    }

    /// The `copay` records the age rules do not allow on some day they cover (beyond the income
    /// cases: a 72-year-old at 20% or 30% is fine, at 10% is not), with the first such day.
    /// Checked on the record's first day and on each age step inside it.
    pub fn copay_conflicts(&self) -> Vec<(&Benefit, NaiveDate)> {
        let steps = copay::age_steps(self.scheme, self.birth);
        self.records
            .iter()
            .filter_map(|b| {
                let BenefitValue::Copay(rate) = b.value else {
                    return None;
                };
                std::iter::once(b.valid_from)
                    .chain(steps.iter().copied().filter(|s| b.covers(*s)))
                    .find(|d| !copay::allowed_copay(self.scheme, self.birth, *d).contains(&rate))
                    .map(|d| (b, d))
            })
            .collect()
    }
}

/// Whether a 特定疾病 record lies outside the person's qualification: it starts on a day no
/// period covers, or it runs on past the end of the period it starts in (a 受療証 ends with
/// the qualification).
pub fn outside_qualification(b: &Benefit, periods: &[Period]) -> bool {
    match periods.iter().find(|p| p.covers(b.valid_from)) {
        None => true,
        Some(p) => match (p.last_day(), b.valid_until) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(last), Some(until)) => until > last,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn rec(
        kind: &str,
        value: &str,
        disease: Option<&str>,
        from: &str,
        until: Option<&str>,
    ) -> Benefit {
        Benefit::from_stored(&StoredBenefit {
            kind: kind.into(),
            value: value.into(),
            disease: disease.map(Into::into),
            valid_from: d(from),
            valid_until: until.map(d),
        })
        .unwrap()
    }

    fn person<'a>(records: &'a [Benefit], birth: &str) -> Benefits<'a> {
        Benefits {
            records,
            scheme: Scheme::Standard,
            birth: d(birth),
            registered: None,
        }
    }

    #[test]
    fn values_are_checked_against_their_kind() {
        let p = |k: &str, v: &str, dis: Option<&str>| {
            BenefitValue::parse(BenefitKind::parse(k).unwrap(), v, dis)
        };
        assert!(p("copay", "30", None).is_ok());
        assert!(p("copay", "15", None).is_err());
        assert!(p("copay", "A01", None).is_err());
        assert_eq!(p("limit", "A06", None).unwrap().value_text(), "A06");
        assert_eq!(p("limit", "B10", None).unwrap().value_text(), "B10");
        for bad in ["A00", "A07", "B11", "C01", "a01", "A1", "A001"] {
            assert!(p("limit", bad, None).is_err(), "{bad}");
        }
        assert!(p("specified_disease", "10000", Some("dialysis")).is_ok());
        assert!(p("specified_disease", "10000", None).is_ok());
        assert!(p("specified_disease", "15000", Some("dialysis")).is_err());
        assert!(p("specified_disease", "20000", Some("cancer")).is_err());
        assert!(p("copay", "30", Some("dialysis")).is_err());
        assert!(BenefitKind::parse("deductible").is_err());
        assert!(Benefit::new(
            BenefitValue::Copay(CopayRate::Ten),
            d("2026-04-01"),
            Some(d("2026-03-31"))
        )
        .is_err());
        let b = rec(
            "specified_disease",
            "20000",
            Some("hiv"),
            "2026-01-01",
            None,
        );
        assert_eq!(Benefit::from_stored(&b.to_stored()).unwrap(), b);
        assert_eq!(
            b.value.label(),
            "20,000円（血液凝固因子製剤に起因するHIV感染症）"
        );
    }

    #[test]
    fn an_answer_for_last_year_gives_last_years_rate() {
        // 72 in 2025: 30% (現役並み) for fiscal 2025 from August, 20% from August 2026.
        let records = [
            rec("copay", "30", None, "2025-08-01", Some("2026-07-31")),
            rec("copay", "20", None, "2026-08-01", None),
        ];
        let p = person(&records, "1953-06-10");
        let last_year = p.copay_on(d("2025-11-20"), d("2000-04-01"));
        assert_eq!(last_year.rate, CopayRate::Thirty);
        assert_eq!(last_year.effective_from, d("2025-08-01"));
        assert_eq!(last_year.source, CopaySource::Record);
        let now = p.copay_on(d("2026-11-20"), d("2000-04-01"));
        assert_eq!(
            (now.rate, now.effective_from),
            (CopayRate::Twenty, d("2026-08-01"))
        );
        // Before any record: the age rule, effective from the 70–74 start.
        let before = p.copay_on(d("2025-07-15"), d("2000-04-01"));
        assert_eq!(before.rate, CopayRate::Twenty);
        assert_eq!(before.effective_from, d("2023-07-01"));
        assert_eq!(before.source, CopaySource::Age);
    }

    #[test]
    fn seventieth_birthday_on_the_first_and_on_the_second() {
        // Born on the 1st: turns 70 on the last day of the previous month, 20% from the
        // birthday month; born on the 2nd: from the month after.
        let none: [Benefit; 0] = [];
        let first = person(&none, "1956-07-01");
        assert_eq!(
            first.copay_on(d("2026-06-30"), d("2020-01-01")).rate,
            CopayRate::Thirty
        );
        let c = first.copay_on(d("2026-07-01"), d("2020-01-01"));
        assert_eq!(
            (c.rate, c.effective_from),
            (CopayRate::Twenty, d("2026-07-01"))
        );
        let second = person(&none, "1956-07-02");
        assert_eq!(
            second.copay_on(d("2026-07-31"), d("2020-01-01")).rate,
            CopayRate::Thirty
        );
        let c = second.copay_on(d("2026-08-01"), d("2020-01-01"));
        assert_eq!(
            (c.rate, c.effective_from),
            (CopayRate::Twenty, d("2026-08-01"))
        );
        // A person who joined after turning 70: the 発効期日 is the acquisition.
        let c = second.copay_on(d("2026-10-01"), d("2026-09-15"));
        assert_eq!(c.effective_from, d("2026-09-15"));
    }

    #[test]
    fn a_record_that_ends_hands_back_to_the_age_rule() {
        let records = [rec("copay", "30", None, "2025-08-01", Some("2026-07-31"))];
        let p = person(&records, "1953-06-10");
        let c = p.copay_on(d("2026-09-01"), d("2000-04-01"));
        assert_eq!(
            (c.rate, c.effective_from),
            (CopayRate::Twenty, d("2026-08-01"))
        );
        assert_eq!(c.source, CopaySource::Age);
    }

    #[test]
    fn koki_ten_to_twenty_is_a_change_that_cuts() {
        // A 後期 member at 10%, 20% (一定以上所得) from 1 August 2026.
        let records = [
            rec("copay", "10", None, "2025-08-01", Some("2026-07-31")),
            rec("copay", "20", None, "2026-08-01", None),
        ];
        let p = Benefits {
            records: &records,
            scheme: Scheme::Koki,
            birth: d("1948-03-03"),
            registered: None,
        };
        assert_eq!(
            p.first_change(d("2025-10-01"), d("2027-07-31")),
            Some(d("2026-08-01"))
        );
        // A certificate that starts on the change day runs on.
        assert_eq!(p.first_change(d("2026-08-01"), d("2027-07-31")), None);
        // A record that repeats the rate is no change.
        let same = [
            rec("copay", "10", None, "2025-08-01", Some("2026-07-31")),
            rec("copay", "10", None, "2026-08-01", None),
        ];
        let p = Benefits {
            records: &same,
            ..p
        };
        assert_eq!(p.first_change(d("2025-10-01"), d("2027-07-31")), None);
    }

    #[test]
    fn a_limit_category_change_cuts_and_a_disease_does_not() {
        let records = [
            rec("limit", "A04", None, "2026-01-01", Some("2026-07-31")),
            rec("limit", "A03", None, "2026-08-01", None),
            rec(
                "specified_disease",
                "10000",
                Some("dialysis"),
                "2026-03-01",
                None,
            ),
        ];
        let p = person(&records, "1980-05-05");
        assert_eq!(
            p.first_change(d("2026-01-01"), d("2030-12-31")),
            Some(d("2026-08-01"))
        );
        assert_eq!(p.limit_on(d("2026-05-01")).unwrap().0.code(), "A04");
        assert!(p.limit_on(d("2025-12-31")).is_none());
        assert_eq!(p.diseases_on(d("2026-03-01")).len(), 1);
        assert!(p.diseases_on(d("2026-02-28")).is_empty());
        // A limit category granted mid-way also cuts.
        let granted = [rec("limit", "A04", None, "2026-05-01", None)];
        let p = person(&granted, "1980-05-05");
        assert_eq!(
            p.first_change(d("2026-01-01"), d("2030-12-31")),
            Some(d("2026-05-01"))
        );
    }

    #[test]
    fn copay_records_the_age_rules_do_not_allow() {
        let records = [
            // 72: 30% is an income case, 10% is not.
            rec("copay", "30", None, "2026-08-01", Some("2027-07-31")),
            rec("copay", "10", None, "2027-08-01", None),
        ];
        let p = person(&records, "1954-05-10");
        let conflicts = p.copay_conflicts();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].1, d("2027-08-01"));
        // A 20% record running past the 75th birthday is allowed there too (an income case).
        let across = [rec("copay", "20", None, "2028-08-01", None)];
        assert!(person(&across, "1954-05-10").copay_conflicts().is_empty());
        // A 20% record that starts at 69: not allowed before the 70–74 start.
        let early = [rec("copay", "20", None, "2023-01-01", None)];
        assert_eq!(
            person(&early, "1954-05-10").copay_conflicts()[0].1,
            d("2023-01-01")
        );
    }

    #[test]
    fn disease_records_outside_the_qualification() {
        let periods = [Period::new(d("2020-04-01"), Some(d("2026-04-01")), None)];
        let inside = rec(
            "specified_disease",
            "10000",
            Some("dialysis"),
            "2021-01-01",
            Some("2026-03-31"),
        );
        assert!(!outside_qualification(&inside, &periods));
        let runs_on = rec(
            "specified_disease",
            "10000",
            Some("dialysis"),
            "2021-01-01",
            None,
        );
        assert!(outside_qualification(&runs_on, &periods));
        let before = rec(
            "specified_disease",
            "10000",
            Some("dialysis"),
            "2019-01-01",
            Some("2019-12-31"),
        );
        assert!(outside_qualification(&before, &periods));
        let open = [Period::open(d("2020-04-01"))];
        assert!(!outside_qualification(&runs_on, &open));
    }

    #[test]
    fn exclusivity_is_per_kind_and_disease() {
        let a = rec(
            "specified_disease",
            "10000",
            Some("hemophilia"),
            "2020-01-01",
            None,
        );
        let b = rec(
            "specified_disease",
            "10000",
            Some("hiv"),
            "2020-01-01",
            None,
        );
        assert!(a.overlaps(&b));
        assert!(!a.exclusive_with(&b));
        let c = rec("copay", "20", None, "2020-01-01", Some("2020-12-31"));
        let e = rec("copay", "30", None, "2021-01-01", None);
        assert!(c.exclusive_with(&e));
        assert!(!c.overlaps(&e));
    }
}
