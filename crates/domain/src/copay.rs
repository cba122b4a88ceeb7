//! 一部負担金割合 (co-pay rate) and the age rules that decide it.
//!
//! Ages follow the Japanese legal convention (年齢計算ニ関スル法律 with 民法 143): a person
//! reaches age N at the end of the day before the Nth birthday anniversary, and that day is
//! treated as the day they "turn N". Someone born on 2 April is 6 on 1 April, which is why
//! children born on 1 April start school a year earlier, and why someone born on the 1st of a
//! month reaches 70 in the previous month. Someone born on 29 February turns N on 28 February
//! in every year, leap or not.

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DomainError;
use crate::ids::InsurerNumber;

/// 一部負担金割合: the share of medical costs the patient pays.
///
/// Serialized as the percentage (10, 20, 30).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CopayRate {
    /// 1割.
    Ten,
    /// 2割.
    Twenty,
    /// 3割.
    Thirty,
}

impl CopayRate {
    /// 10, 20 or 30.
    pub fn percent(self) -> u8 {
        match self {
            CopayRate::Ten => 10,
            CopayRate::Twenty => 20,
            CopayRate::Thirty => 30,
        }
    }

    /// The code in online eligibility answers: `010`, `020`, `030`.
    pub fn online_code(self) -> &'static str {
        match self {
            CopayRate::Ten => "010",
            CopayRate::Twenty => "020",
            CopayRate::Thirty => "030",
        }
    }

    /// From 10, 20 or 30.
    pub fn from_percent(p: u8) -> Result<Self, DomainError> {
        match p {
            10 => Ok(CopayRate::Ten),
            20 => Ok(CopayRate::Twenty),
            30 => Ok(CopayRate::Thirty),
            _ => Err(DomainError::CopayRate),
        }
    }

    /// From CSV text `10`, `20` or `30`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s.trim() {
            "10" => Ok(CopayRate::Ten),
            "20" => Ok(CopayRate::Twenty),
            "30" => Ok(CopayRate::Thirty),
            _ => Err(DomainError::CopayRate),
        }
    }
}

impl std::fmt::Display for CopayRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", self.percent())
    }
}

impl Serialize for CopayRate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.percent())
    }
}

impl<'de> Deserialize<'de> for CopayRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CopayRate::from_percent(u8::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The income category that, with age, decides the rate from 70 on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IncomeBand {
    /// 一般: the default.
    General,
    /// 一定以上所得: 20% in 後期 (75+); no effect before 75.
    Certain,
    /// 現役並み所得: 30% from 70.
    Active,
}

/// The Nth birthday anniversary; for a 29 February birth in a common year, 1 March, since the
/// anniversary "day" there is the day after 28 February.
fn anniversary(birth: NaiveDate, years: u32) -> NaiveDate {
    birth
        .checked_add_months(Months::new(years.saturating_mul(12)))
        .map(|d| {
            // chrono clamps 29 Feb to 28 Feb; the anniversary proper is the following day.
            if d.day() != birth.day() {
                d.succ_opt().unwrap_or(d)
            } else {
                d
            }
        })
        .unwrap_or(NaiveDate::MAX)
}

/// The day the person legally turns `years` old: the day before the anniversary.
fn turns(birth: NaiveDate, years: u32) -> NaiveDate {
    let a = anniversary(birth, years);
    a.pred_opt().unwrap_or(a)
}

/// First day of the month after the month containing `d`.
fn first_of_next_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1)
        .and_then(|f| f.checked_add_months(Months::new(1)))
        .unwrap_or(NaiveDate::MAX)
}

/// Age on `on` by the legal convention: N from the day before the Nth anniversary.
///
/// Returns 0 for dates before birth.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> u32 {
    if on < birth {
        return 0;
    }
    // Counting the ordinary way on the following day gives the legal age today; a 29 Feb birth
    // then turns over on 28 Feb because 1 Mar compares after 29 Feb.
    let Some(next) = on.succ_opt() else {
        return u32::try_from(on.year() - birth.year()).unwrap_or(0);
    };
    let mut years = next.year() - birth.year();
    if (next.month(), next.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).unwrap_or(0)
}

/// The last day of 未就学 (before compulsory schooling): 31 March of the school year (April to
/// March) in which the child turns 6 by the legal convention.
pub fn preschool_ends(birth: NaiveDate) -> NaiveDate {
    let six = turns(birth, 6);
    let year = if six.month() <= 3 {
        six.year()
    } else {
        six.year() + 1
    };
    NaiveDate::from_ymd_opt(year, 3, 31).unwrap_or(NaiveDate::MAX)
}

/// Whether the child is 未就学 on `on`: true through 31 March after the 6th birthday.
///
/// A child born on 1 April turns 6 on 31 March and starts school that April; one born on 2 April
/// turns 6 on 1 April and starts school a year later.
pub fn is_preschool(birth: NaiveDate, on: NaiveDate) -> bool {
    on <= preschool_ends(birth)
}

/// The day the 70–74 rate (高齢受給者) starts: the 1st of the month after the person turns 70.
///
/// By the legal convention this is the month after the 70th birthday's month, or the birthday
/// month itself when born on the 1st (they turn 70 on the last day of the previous month).
pub fn seventy_rate_starts(birth: NaiveDate) -> NaiveDate {
    first_of_next_month(turns(birth, 70))
}

/// The 75th birthday, from which the person belongs to 後期高齢者医療.
///
/// For a 29 February birth in a common year this is 1 March.
pub fn seventy_five_on(birth: NaiveDate) -> NaiveDate {
    anniversary(birth, 75)
}

/// Which scheme the person is insured under: the age stages apply to the 医療保険 schemes, while
/// every 後期高齢者医療 member is on the 後期 rates whatever their age.
///
/// A member of 65–74 admitted to 後期 through a disability certification (障害認定) has the 後期
/// rates (10%, 20% or 30% by income) from admission: the 70 and 75 age steps of the other
/// schemes do not apply to them, so an age default must never replace their stored rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// 健保, 共済, 国保 and the other 医療保険: the age stages decide the rate.
    Standard,
    /// 後期高齢者医療 (法別番号 39): members from 75, or from 65 by certification.
    Koki,
}

impl Scheme {
    /// The scheme of an insurer: 後期 for 法別番号 39.
    pub fn of(insurer: &InsurerNumber) -> Scheme {
        if insurer.is_koki() {
            Scheme::Koki
        } else {
            Scheme::Standard
        }
    }

    /// The scheme of a stored insurer number; an unparsable one counts as standard.
    pub fn of_number(insurer: &str) -> Scheme {
        InsurerNumber::parse(insurer).map_or(Scheme::Standard, |i| Scheme::of(&i))
    }
}

/// Which age stage applies on a day; the rate rules hang off this.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Preschool,
    Working,
    Seventy,
    SeventyFive,
}

fn stage(scheme: Scheme, birth: NaiveDate, on: NaiveDate) -> Stage {
    if scheme == Scheme::Koki {
        Stage::SeventyFive
    } else if is_preschool(birth, on) {
        Stage::Preschool
    } else if on < seventy_rate_starts(birth) {
        Stage::Working
    } else if on < seventy_five_on(birth) {
        Stage::Seventy
    } else {
        Stage::SeventyFive
    }
}

/// The rate for someone with general income: 20% preschool, 30% to 69, 20% from
/// [`seventy_rate_starts`] until the day before the 75th birthday, 10% from then on; 10% for
/// every 後期 member.
pub fn default_copay(scheme: Scheme, birth: NaiveDate, on: NaiveDate) -> CopayRate {
    copay_for_income(scheme, birth, on, IncomeBand::General)
}

/// The rate for the given income band on `on`.
pub fn copay_for_income(
    scheme: Scheme,
    birth: NaiveDate,
    on: NaiveDate,
    income: IncomeBand,
) -> CopayRate {
    match (stage(scheme, birth, on), income) {
        (Stage::Preschool, _) => CopayRate::Twenty,
        (Stage::Working, _) => CopayRate::Thirty,
        (Stage::Seventy, IncomeBand::Active) => CopayRate::Thirty,
        (Stage::Seventy, _) => CopayRate::Twenty,
        (Stage::SeventyFive, IncomeBand::General) => CopayRate::Ten,
        (Stage::SeventyFive, IncomeBand::Certain) => CopayRate::Twenty,
        (Stage::SeventyFive, IncomeBand::Active) => CopayRate::Thirty,
    }
}

/// The rate on `on` for someone the insurer registered at `stored` percent: the registered rate
/// when the age rules allow it on that day, else the general-income rate for the age. A stored
/// 30% (現役並み) for a 72-year-old stays; a stored 20% preschool rate stops on 1 April after
/// the 6th birthday; a 後期 member of 68 keeps a stored 10%.
pub fn effective(scheme: Scheme, birth: NaiveDate, on: NaiveDate, stored: Option<u8>) -> CopayRate {
    match stored.and_then(|p| CopayRate::from_percent(p).ok()) {
        Some(r) if allowed_copay(scheme, birth, on).contains(&r) => r,
        _ => default_copay(scheme, birth, on),
    }
}

/// The first day of the age stage `on` falls in: the day the age rule's rate took effect
/// (birth; 1 April after the 6th birthday; the 70–74 start; the 75th birthday). A 後期 member
/// has no age stages, so for them it is `None` and the qualification's start decides.
pub fn age_stage_since(scheme: Scheme, birth: NaiveDate, on: NaiveDate) -> Option<NaiveDate> {
    match stage(scheme, birth, on) {
        _ if scheme == Scheme::Koki => None,
        Stage::Preschool => Some(birth),
        Stage::Working => preschool_ends(birth).succ_opt(),
        Stage::Seventy => Some(seventy_rate_starts(birth)),
        Stage::SeventyFive => Some(seventy_five_on(birth)),
    }
}

/// The days on which the age rules change the allowed rates, in order: 1 April after the 6th
/// birthday, the 70–74 start and the 75th birthday (none for a 後期 member).
pub fn age_steps(scheme: Scheme, birth: NaiveDate) -> Vec<NaiveDate> {
    if scheme == Scheme::Koki {
        return Vec::new();
    }
    preschool_ends(birth)
        .succ_opt()
        .into_iter()
        .chain([seventy_rate_starts(birth), seventy_five_on(birth)])
        .collect()
}

/// Every rate the age rules allow on `on` for some income: preschool 20; school age to 69
/// 30; 70–74 20 or 30; 75+ and every 後期 member 10, 20 or 30.
pub fn allowed_copay(scheme: Scheme, birth: NaiveDate, on: NaiveDate) -> &'static [CopayRate] {
    match stage(scheme, birth, on) {
        Stage::Preschool => &[CopayRate::Twenty],
        Stage::Working => &[CopayRate::Thirty],
        Stage::Seventy => &[CopayRate::Twenty, CopayRate::Thirty],
        Stage::SeventyFive => &[CopayRate::Ten, CopayRate::Twenty, CopayRate::Thirty],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn rate_codes() {
        assert_eq!(CopayRate::parse("20").unwrap(), CopayRate::Twenty);
        assert_eq!(CopayRate::Thirty.online_code(), "030");
        assert_eq!(CopayRate::Ten.percent(), 10);
        assert_eq!(CopayRate::from_percent(30).unwrap(), CopayRate::Thirty);
        assert!(CopayRate::from_percent(15).is_err());
        assert!(CopayRate::parse("1割").is_err());
        assert_eq!(serde_json::to_string(&CopayRate::Twenty).unwrap(), "20");
    }

    #[test]
    fn legal_age_table() {
        let cases = [
            // (birth, on, age)
            ("2000-04-02", "2001-03-31", 0),
            ("2000-04-02", "2001-04-01", 1), // the day before the birthday
            ("2000-04-02", "2001-04-02", 1),
            ("2000-04-01", "2001-03-31", 1),
            ("2000-04-01", "2001-03-30", 0),
            ("2000-02-29", "2001-02-27", 0),
            ("2000-02-29", "2001-02-28", 1), // common year: turns on 28 Feb
            ("2000-02-29", "2004-02-28", 4), // leap year: also 28 Feb
            ("2000-02-29", "2004-02-27", 3),
            ("2000-03-01", "2001-02-28", 1),
            ("2000-03-01", "2001-02-27", 0),
            ("2000-01-01", "2000-01-01", 0),
            ("2000-01-01", "1999-12-31", 0),
            ("1955-07-15", "2025-07-14", 70),
            ("1955-07-15", "2025-07-13", 69),
        ];
        for (b, on, age) in cases {
            assert_eq!(age_on(d(b), d(on)), age, "{b} on {on}");
        }
    }

    #[test]
    fn preschool_table() {
        let cases = [
            // 1 April birth: turns 6 on 31 March 2025, school from April 2025.
            ("2019-04-01", "2025-03-31", true),
            ("2019-04-01", "2025-04-01", false),
            // 2 April birth: turns 6 on 1 April 2025, school from April 2026.
            ("2019-04-02", "2025-04-01", true),
            ("2019-04-02", "2026-03-31", true),
            ("2019-04-02", "2026-04-01", false),
            ("2019-03-31", "2025-03-31", true),
            ("2019-03-31", "2025-04-01", false),
            ("2018-12-25", "2025-03-31", true),
            ("2018-12-25", "2025-04-01", false),
            // 29 Feb birth turns 6 on 28 Feb.
            ("2020-02-29", "2026-03-31", true),
            ("2020-02-29", "2026-04-01", false),
            ("2024-06-01", "2024-06-01", true),
        ];
        for (b, on, want) in cases {
            assert_eq!(is_preschool(d(b), d(on)), want, "{b} on {on}");
        }
        assert_eq!(preschool_ends(d("2019-04-01")), d("2025-03-31"));
        assert_eq!(preschool_ends(d("2019-04-02")), d("2026-03-31"));
    }

    #[test]
    fn seventy_table() {
        let cases = [
            ("1955-07-01", "1955-07-01"), // born on the 1st: the birthday month
            ("1955-07-02", "1955-08-01"), // born on the 2nd: the month after
            ("1955-07-31", "1955-08-01"),
            ("1955-01-01", "1955-01-01"),
            ("1955-12-15", "1956-01-01"),
            ("1956-02-29", "1956-03-01"), // turns 70 on 28 Feb 2026
            ("1956-03-01", "1956-03-01"),
        ];
        for (b, start_shifted) in cases {
            let want = d(start_shifted)
                .checked_add_months(Months::new(70 * 12))
                .unwrap();
            assert_eq!(seventy_rate_starts(d(b)), want, "{b}");
        }
    }

    #[test]
    fn seventy_five_table() {
        assert_eq!(seventy_five_on(d("1950-05-20")), d("2025-05-20"));
        assert_eq!(seventy_five_on(d("1950-05-01")), d("2025-05-01"));
        // 2027 is a common year.
        assert_eq!(seventy_five_on(d("1952-02-29")), d("2027-03-01"));
        // 2031 is a common year too.
        assert_eq!(seventy_five_on(d("1956-02-29")), d("2031-03-01"));
    }

    #[test]
    fn default_copay_boundaries() {
        let cases = [
            // Preschool end.
            ("2019-04-01", "2025-03-31", 20),
            ("2019-04-01", "2025-04-01", 30),
            ("2019-04-02", "2026-03-31", 20),
            ("2019-04-02", "2026-04-01", 30),
            // 70 rule, born on the 2nd: 30% through the end of the birthday month.
            ("1955-07-02", "2025-07-31", 30),
            ("1955-07-02", "2025-08-01", 20),
            // Born on the 1st: 20% from the 1st of the birthday month.
            ("1955-07-01", "2025-06-30", 30),
            ("1955-07-01", "2025-07-01", 20),
            // 75th birthday eve and day.
            ("1950-05-20", "2025-05-19", 20),
            ("1950-05-20", "2025-05-20", 10),
            ("1950-05-01", "2025-04-30", 20),
            ("1950-05-01", "2025-05-01", 10),
            // 29 Feb births.
            ("1956-02-29", "2026-02-28", 30),
            ("1956-02-29", "2026-03-01", 20),
            ("1952-02-29", "2027-02-28", 20),
            ("1952-02-29", "2027-03-01", 10),
        ];
        for (b, on, pct) in cases {
            assert_eq!(
                default_copay(Scheme::Standard, d(b), d(on)).percent(),
                pct,
                "{b} on {on}"
            );
        }
    }

    #[test]
    fn allowed_sets() {
        use CopayRate::*;
        let b = d("1950-05-20");
        assert_eq!(
            allowed_copay(Scheme::Standard, d("2020-01-01"), d("2021-01-01")),
            &[Twenty]
        );
        assert_eq!(
            allowed_copay(Scheme::Standard, b, d("2000-01-01")),
            &[Thirty]
        );
        assert_eq!(
            allowed_copay(Scheme::Standard, b, d("2020-06-01")),
            &[Twenty, Thirty]
        );
        assert_eq!(
            allowed_copay(Scheme::Standard, b, d("2025-05-19")),
            &[Twenty, Thirty]
        );
        assert_eq!(
            allowed_copay(Scheme::Standard, b, d("2025-05-20")),
            &[Ten, Twenty, Thirty]
        );
        assert_eq!(
            allowed_copay(Scheme::Standard, b, d("2020-05-31")),
            &[Thirty]
        );
    }

    #[test]
    fn income_bands() {
        let b = d("1950-05-20");
        let seventy = d("2022-01-01");
        let koki = d("2026-01-01");
        assert_eq!(
            copay_for_income(Scheme::Standard, b, seventy, IncomeBand::Certain),
            CopayRate::Twenty
        );
        assert_eq!(
            copay_for_income(Scheme::Standard, b, seventy, IncomeBand::Active),
            CopayRate::Thirty
        );
        assert_eq!(
            copay_for_income(Scheme::Standard, b, koki, IncomeBand::General),
            CopayRate::Ten
        );
        assert_eq!(
            copay_for_income(Scheme::Standard, b, koki, IncomeBand::Certain),
            CopayRate::Twenty
        );
        assert_eq!(
            copay_for_income(Scheme::Standard, b, koki, IncomeBand::Active),
            CopayRate::Thirty
        );
    }

    proptest! {
        #[test]
        fn default_is_always_allowed(
            birth_days in 0i64..40_000,
            offset in 0i64..40_000,
        ) {
            let birth = d("1920-01-01") + chrono::Duration::days(birth_days);
            let on = birth + chrono::Duration::days(offset);
            prop_assert!(allowed_copay(Scheme::Standard, birth, on).contains(&default_copay(Scheme::Standard, birth, on)));
        }

        #[test]
        fn legal_age_turns_the_day_before(birth_days in 0i64..40_000, n in 1u32..100) {
            let birth = d("1920-01-01") + chrono::Duration::days(birth_days);
            let t = turns(birth, n);
            prop_assert_eq!(age_on(birth, t), n);
            prop_assert_eq!(age_on(birth, t.pred_opt().unwrap()), n - 1);
        }
    }

    #[test]
    fn stored_rate_kept_only_when_the_age_allows_it() {
        // 72 years old: 30% (現役並み) is allowed, 10% is not.
        let birth = d("1954-05-10");
        let on = d("2026-11-25");
        assert_eq!(
            effective(Scheme::Standard, birth, on, Some(30)),
            CopayRate::Thirty
        );
        assert_eq!(
            effective(Scheme::Standard, birth, on, Some(10)),
            CopayRate::Twenty
        );
        assert_eq!(
            effective(Scheme::Standard, birth, on, None),
            CopayRate::Twenty
        );
        // A child registered at 20% keeps it only until the March after turning 6.
        let child = d("2019-06-01");
        assert_eq!(
            effective(Scheme::Standard, child, d("2026-03-31"), Some(20)),
            CopayRate::Twenty
        );
        assert_eq!(
            effective(Scheme::Standard, child, d("2026-04-01"), Some(20)),
            CopayRate::Thirty
        );
    }

    #[test]
    fn koki_members_keep_the_koki_rates_at_any_age() {
        // A 後期 member admitted at 66 by disability certification: born 1960-03-01.
        let birth = d("1960-03-01");
        let k = Scheme::Koki;
        // At 66, 69, on the day the 70–74 rate would start, and the day before 75.
        for on in [
            "2026-12-01",
            "2029-12-31",
            "2030-03-01",
            "2035-02-28",
            "2035-03-01",
        ] {
            assert_eq!(effective(k, birth, d(on), Some(10)), CopayRate::Ten, "{on}");
            assert_eq!(effective(k, birth, d(on), None), CopayRate::Ten, "{on}");
            assert_eq!(
                effective(k, birth, d(on), Some(30)),
                CopayRate::Thirty,
                "{on}"
            );
            assert_eq!(
                allowed_copay(k, birth, d(on)),
                &[CopayRate::Ten, CopayRate::Twenty, CopayRate::Thirty]
            );
        }
        // The same person under a standard scheme would be 30% at 66 and 20% from 70.
        assert_eq!(
            effective(Scheme::Standard, birth, d("2026-12-01"), Some(10)),
            CopayRate::Thirty
        );
        assert_eq!(
            effective(Scheme::Standard, birth, d("2030-03-01"), Some(10)),
            CopayRate::Twenty
        );
        // Born on 29 February, a member at 65.
        let leap = d("1960-02-29");
        assert_eq!(
            effective(k, leap, d("2025-02-28"), Some(20)),
            CopayRate::Twenty
        );
    }
}
