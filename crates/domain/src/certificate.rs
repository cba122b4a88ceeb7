//! 資格確認書 (qualification certificate) validity: how long a certificate issued on a day is
//! valid, by the insurer's policy, cut short by the events domain.md lists.
//!
//! The end date is inclusive (有効期限 is the last valid day). The rules, in order:
//! 1. the insurer's policy: a number of years from issue (at most 5), a fixed common date, or a
//!    yearly cycle ending 31 July;
//! 2. never more than 5 years from issue, whatever the policy;
//! 3. cut short by the day before the 75th birthday (後期高齢者 from that day), by the end of
//!    the month before the 70–74 co-pay rate starts (the end of the 70th birthday's month, or
//!    the previous month-end when born on the 1st), by the end of preschool (the co-pay changes
//!    from 20% to 30%), by the end of 任意継続, by the end of a residence permit, and by the day
//!    before the qualification is lost.
//!
//! A cut applies only when its event falls after the issue date: a 76-year-old's certificate is
//! not cut by a 75th birthday long past.

use chrono::{Datelike, Days, Months, NaiveDate};

use crate::copay::{preschool_ends, seventy_five_on, seventy_rate_starts};
use crate::error::DomainError;

/// Most years a certificate may be valid.
pub const MAX_YEARS: u32 = 5;

/// How an insurer sets a certificate's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// N years from issue (1 to 5), ending the day before the Nth anniversary (健保組合 usually 5).
    YearsFromIssue(u32),
    /// A date common to all certificates (私学共済: 2029-11-30).
    FixedDate(NaiveDate),
    /// One year ending 31 July (国保, 後期): the next 31 July on or after issue.
    YearlyJuly,
}

impl Policy {
    /// Builds a policy from the insurers table's columns.
    pub fn from_columns(
        policy: &str,
        years: i16,
        fixed_until: Option<NaiveDate>,
    ) -> Result<Policy, DomainError> {
        match policy {
            "years_from_issue" => {
                let y = u32::try_from(years).unwrap_or(0);
                if (1..=MAX_YEARS).contains(&y) {
                    Ok(Policy::YearsFromIssue(y))
                } else {
                    Err(DomainError::Certificate("cert_years must be 1 to 5"))
                }
            }
            "fixed_date" => fixed_until
                .map(Policy::FixedDate)
                .ok_or(DomainError::Certificate(
                    "fixed_date policy needs cert_fixed_until",
                )),
            "yearly_july" => Ok(Policy::YearlyJuly),
            _ => Err(DomainError::Certificate("unknown certificate policy")),
        }
    }
}

/// What is known about the holder that can cut the validity short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// 生年月日.
    pub birth: NaiveDate,
    /// 資格喪失日 when already known (the first day without eligibility).
    pub lost_on: Option<NaiveDate>,
    /// Last day of 任意継続 (voluntary continuation), for such members.
    pub voluntary_until: Option<NaiveDate>,
    /// Last day of the residence permit, when known (foreign residents).
    pub residence_until: Option<NaiveDate>,
}

/// Why a certificate ends when it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The insurer's policy.
    Policy,
    /// The 5-year maximum.
    MaxYears,
    /// The day before the 75th birthday.
    SeventyFive,
    /// The 70–74 co-pay rate starts the next day.
    Seventy,
    /// Preschool ends (co-pay 20% → 30%).
    Preschool,
    /// 任意継続 ends.
    VoluntaryContinuation,
    /// The residence permit ends.
    ResidencePermit,
    /// The qualification is lost the next day.
    QualificationLost,
}

impl EndReason {
    /// A stable code for storage and display.
    pub fn code(self) -> &'static str {
        match self {
            EndReason::Policy => "policy",
            EndReason::MaxYears => "max_years",
            EndReason::SeventyFive => "seventy_five",
            EndReason::Seventy => "seventy",
            EndReason::Preschool => "preschool",
            EndReason::VoluntaryContinuation => "voluntary_continuation",
            EndReason::ResidencePermit => "residence_permit",
            EndReason::QualificationLost => "qualification_lost",
        }
    }
}

/// A computed validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First valid day (the issue date).
    pub from: NaiveDate,
    /// Last valid day (有効期限).
    pub until: NaiveDate,
    /// Which rule set `until`.
    pub reason: EndReason,
}

/// The day before the Nth anniversary of `d`; for 29 February in a common year the anniversary
/// is 1 March, so the certificate runs to 28 February.
fn day_before_anniversary(d: NaiveDate, years: u32) -> NaiveDate {
    let target_year = d.year() + i32::try_from(years).unwrap_or(0);
    let anniversary = NaiveDate::from_ymd_opt(target_year, d.month(), d.day())
        .or_else(|| NaiveDate::from_ymd_opt(target_year, 3, 1))
        .unwrap_or(NaiveDate::MAX);
    anniversary.pred_opt().unwrap_or(anniversary)
}

fn day_before(d: NaiveDate) -> NaiveDate {
    d.checked_sub_days(Days::new(1)).unwrap_or(d)
}

/// The validity of a certificate issued on `issued` to `holder` under `policy`.
///
/// Errors when nothing is left: the holder has already lost the qualification, a fixed date is
/// before the issue date, or a cut falls on the issue day itself.
pub fn validity(
    policy: Policy,
    issued: NaiveDate,
    holder: &Holder,
) -> Result<Validity, DomainError> {
    let by_policy = match policy {
        Policy::YearsFromIssue(y) => day_before_anniversary(issued, y.clamp(1, MAX_YEARS)),
        Policy::FixedDate(d) => d,
        Policy::YearlyJuly => {
            let this_year = NaiveDate::from_ymd_opt(issued.year(), 7, 31).unwrap_or(NaiveDate::MAX);
            if issued <= this_year {
                this_year
            } else {
                this_year
                    .checked_add_months(Months::new(12))
                    .unwrap_or(NaiveDate::MAX)
            }
        }
    };
    let mut best = (by_policy, EndReason::Policy);
    let mut cut = |until: NaiveDate, reason: EndReason| {
        if until < best.0 {
            best = (until, reason);
        }
    };
    cut(
        day_before_anniversary(issued, MAX_YEARS),
        EndReason::MaxYears,
    );
    let seventy_five = seventy_five_on(holder.birth);
    if seventy_five > issued {
        cut(day_before(seventy_five), EndReason::SeventyFive);
    }
    let seventy = seventy_rate_starts(holder.birth);
    if seventy > issued {
        cut(day_before(seventy), EndReason::Seventy);
    }
    let preschool = preschool_ends(holder.birth);
    if preschool >= issued {
        cut(preschool, EndReason::Preschool);
    }
    if let Some(v) = holder.voluntary_until {
        cut(v, EndReason::VoluntaryContinuation);
    }
    if let Some(r) = holder.residence_until {
        cut(r, EndReason::ResidencePermit);
    }
    if let Some(l) = holder.lost_on {
        cut(day_before(l), EndReason::QualificationLost);
    }
    if best.0 < issued {
        return Err(DomainError::Certificate(
            "no validity left: the certificate would end before it is issued",
        ));
    }
    Ok(Validity {
        from: issued,
        until: best.0,
        reason: best.1,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn adult(birth: &str) -> Holder {
        Holder {
            birth: d(birth),
            lost_on: None,
            voluntary_until: None,
            residence_until: None,
        }
    }

    fn until(policy: Policy, issued: &str, holder: &Holder) -> (String, &'static str) {
        let v = validity(policy, d(issued), holder).unwrap();
        (v.until.to_string(), v.reason.code())
    }

    #[test]
    fn policies() {
        let h = adult("1980-05-05");
        let cases: &[(Policy, &str, &str, &str)] = &[
            (
                Policy::YearsFromIssue(5),
                "2026-12-01",
                "2031-11-30",
                "policy",
            ),
            (
                Policy::YearsFromIssue(1),
                "2026-01-01",
                "2026-12-31",
                "policy",
            ),
            // 29 February: the anniversary in a common year is 1 March.
            (
                Policy::YearsFromIssue(5),
                "2028-02-29",
                "2033-02-28",
                "policy",
            ),
            (
                Policy::YearsFromIssue(4),
                "2028-02-29",
                "2032-02-28",
                "policy",
            ),
            (
                Policy::FixedDate(d("2029-11-30")),
                "2026-12-01",
                "2029-11-30",
                "policy",
            ),
            // A fixed date more than 5 years away is capped.
            (
                Policy::FixedDate(d("2040-03-31")),
                "2026-12-01",
                "2031-11-30",
                "max_years",
            ),
            (Policy::YearlyJuly, "2026-12-01", "2027-07-31", "policy"),
            (Policy::YearlyJuly, "2027-07-31", "2027-07-31", "policy"),
            (Policy::YearlyJuly, "2027-08-01", "2028-07-31", "policy"),
            (Policy::YearlyJuly, "2027-01-01", "2027-07-31", "policy"),
        ];
        for (policy, issued, want, reason) in cases {
            assert_eq!(
                until(*policy, issued, &h),
                (want.to_string(), *reason),
                "{policy:?} {issued}"
            );
        }
    }

    #[test]
    fn cut_by_age_events() {
        let five = Policy::YearsFromIssue(5);
        let cases: &[(&str, &str, &str, &str)] = &[
            // 75th birthday 2029-06-10: valid to the day before.
            ("1954-06-10", "2026-12-01", "2029-06-09", "seventy_five"),
            // Born on the 1st: 75 on 2029-06-01, valid to 2029-05-31.
            ("1954-06-01", "2026-12-01", "2029-05-31", "seventy_five"),
            // 70th birthday 2028-08-20: the 70-74 rate starts 2028-09-01, so the end of August.
            ("1958-08-20", "2026-12-01", "2028-08-31", "seventy"),
            // Born on the 1st: the rate starts in the birthday month, so the previous month-end.
            ("1958-08-01", "2026-12-01", "2028-07-31", "seventy"),
            // 29 February 1956: 70 on 2026-02-28 (legal age), rate from 2026-03-01; issued
            // before that, cut at 2026-02-28.
            ("1956-02-29", "2026-01-10", "2026-02-28", "seventy"),
            // Already 72: the 75th birthday (2029-04-02) cuts instead.
            ("1954-04-02", "2026-12-01", "2029-04-01", "seventy_five"),
            // Already 80: nothing age-related cuts.
            ("1946-01-01", "2026-12-01", "2031-11-30", "policy"),
            // Preschool: born 2022-04-02, school from April 2029 → 2029-03-31.
            ("2022-04-02", "2026-12-01", "2029-03-31", "preschool"),
            // Born 1 April 2022: turns 6 on 2028-03-31, school from April 2028.
            ("2022-04-01", "2026-12-01", "2028-03-31", "preschool"),
        ];
        for (birth, issued, want, reason) in cases {
            assert_eq!(
                until(five, issued, &adult(birth)),
                (want.to_string(), *reason),
                "born {birth}"
            );
        }
    }

    #[test]
    fn cut_by_membership_events() {
        let five = Policy::YearsFromIssue(5);
        let mut h = adult("1980-05-05");
        h.voluntary_until = Some(d("2027-09-30"));
        assert_eq!(
            until(five, "2026-12-01", &h),
            ("2027-09-30".into(), "voluntary_continuation")
        );
        h.residence_until = Some(d("2027-03-15"));
        assert_eq!(
            until(five, "2026-12-01", &h),
            ("2027-03-15".into(), "residence_permit")
        );
        h.lost_on = Some(d("2027-01-01"));
        assert_eq!(
            until(five, "2026-12-01", &h),
            ("2026-12-31".into(), "qualification_lost")
        );
        // Lost the day after issue: valid on the issue day only.
        h.lost_on = Some(d("2026-12-02"));
        assert_eq!(
            until(five, "2026-12-01", &h),
            ("2026-12-01".into(), "qualification_lost")
        );
        // Lost already: nothing to issue.
        h.lost_on = Some(d("2026-12-01"));
        assert!(validity(five, d("2026-12-01"), &h).is_err());
        assert!(validity(
            Policy::FixedDate(d("2026-01-01")),
            d("2026-12-01"),
            &adult("1980-01-01")
        )
        .is_err());
    }

    #[test]
    fn policy_columns() {
        assert_eq!(
            Policy::from_columns("years_from_issue", 5, None).unwrap(),
            Policy::YearsFromIssue(5)
        );
        assert!(Policy::from_columns("years_from_issue", 6, None).is_err());
        assert!(Policy::from_columns("fixed_date", 5, None).is_err());
        assert_eq!(
            Policy::from_columns("yearly_july", 1, None).unwrap(),
            Policy::YearlyJuly
        );
    }
}
