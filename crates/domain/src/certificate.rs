//! 資格確認書 (qualification certificate) validity: how long a certificate is valid, by the
//! insurer's policy, cut short by the events domain.md lists; and who needs one when.
//!
//! The end date is inclusive (有効期限 is the last valid day). A certificate is issued on one day
//! and may start later: a renewal begins the day after the current certificate ends, so that a
//! yearly cycle ending 31 July never leaves the 1st of August uncovered. The rules, in order:
//! 1. the insurer's policy, counted from the first valid day: a number of years (at most 5), a
//!    fixed common date (which recurs every `cert_years` years once it has passed), or a
//!    yearly cycle ending 31 July;
//! 2. never more than 5 years from the first valid day, whatever the policy;
//! 3. for the 後期 transitional certificates (every member, whatever the card status), never
//!    past the end of the transitional period (2026-07-31);
//! 4. cut short by the day before the 75th birthday (後期高齢者 from that day), by the end of
//!    the month before the 70–74 co-pay rate starts (the end of the 70th birthday's month, or
//!    the previous month-end when born on the 1st), by the end of preschool (the co-pay changes
//!    from 20% to 30%), by the end of 任意継続, by the end of a residence permit, and by the day
//!    before the qualification is lost, and by the day before the co-pay rate or the 限度額適用区分
//!    changes (a dated benefit record starts or ends). The age cuts are those of the standard schemes: a 後期
//!    member of 65–74 (admitted by certification) is on the 後期 rates already, so neither the
//!    70 nor the 75 step applies to them.
//!
//! A cut applies only when its event falls after the first valid day: a 76-year-old's
//! certificate is not cut by a 75th birthday long past.

use chrono::{Datelike, Days, Months, NaiveDate};

use serde::{Deserialize, Serialize};

use crate::benefit::{Benefit, Benefits};
use crate::copay::{preschool_ends, seventy_five_on, seventy_rate_starts, Scheme};
use crate::error::DomainError;
use crate::ids::InsurerNumber;
use crate::person::{Relationship, Sex};
use crate::status::CertificateKind;

/// Most years a certificate may be valid.
pub const MAX_YEARS: u32 = 5;

/// Last day of the 後期高齢者 transitional rule: until then every member gets a certificate
/// whatever their card status (domain.md).
pub const KOKI_TRANSITIONAL_UNTIL: NaiveDate = match NaiveDate::from_ymd_opt(2026, 7, 31) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// How an insurer sets a certificate's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// N years from issue (1 to 5), ending the day before the Nth anniversary (健保組合 usually 5).
    YearsFromIssue(u32),
    /// A date common to all certificates (私学共済: 2029-11-30). Once it has passed, the common
    /// date recurs `cycle_years` later (the insurer's next cycle), so a certificate issued after
    /// it still runs to a common date rather than not being issued at all.
    FixedDate {
        /// The common date.
        until: NaiveDate,
        /// Years between one common date and the next (the insurer's `cert_years`).
        cycle_years: u32,
    },
    /// One year ending 31 July (国保, 後期): the next 31 July on or after the first valid day.
    YearlyJuly,
}

impl Policy {
    /// Builds a policy from the insurers table's columns.
    pub fn from_columns(
        policy: &str,
        years: i16,
        fixed_until: Option<NaiveDate>,
    ) -> Result<Policy, DomainError> {
        let y = u32::try_from(years).unwrap_or(0);
        let years_ok = (1..=MAX_YEARS).contains(&y);
        match policy {
            "years_from_issue" if years_ok => Ok(Policy::YearsFromIssue(y)),
            "years_from_issue" => Err(DomainError::Certificate("cert_years must be 1 to 5")),
            "fixed_date" => fixed_until
                .map(|until| Policy::FixedDate {
                    until,
                    cycle_years: if years_ok { y } else { MAX_YEARS },
                })
                .ok_or(DomainError::Certificate(
                    "fixed_date policy needs cert_fixed_until",
                )),
            "yearly_july" => Ok(Policy::YearlyJuly),
            _ => Err(DomainError::Certificate("unknown certificate policy")),
        }
    }

    /// The policy's own end for a certificate whose first valid day is `from`.
    fn end(self, from: NaiveDate) -> NaiveDate {
        match self {
            Policy::YearsFromIssue(y) => day_before_anniversary(from, y.clamp(1, MAX_YEARS)),
            Policy::FixedDate { until, cycle_years } => {
                let step = Months::new(cycle_years.clamp(1, MAX_YEARS) * 12);
                let mut d = until;
                while d < from {
                    d = d.checked_add_months(step).unwrap_or(NaiveDate::MAX);
                }
                d
            }
            Policy::YearlyJuly => {
                let this_year =
                    NaiveDate::from_ymd_opt(from.year(), 7, 31).unwrap_or(NaiveDate::MAX);
                if from <= this_year {
                    this_year
                } else {
                    this_year
                        .checked_add_months(Months::new(12))
                        .unwrap_or(NaiveDate::MAX)
                }
            }
        }
    }
}

/// What is known about the holder that can cut the validity short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder<'a> {
    /// 生年月日.
    pub birth: NaiveDate,
    /// The scheme: a 後期 member has no age cuts.
    pub scheme: Scheme,
    /// 資格喪失日 when already known (the first day without eligibility).
    pub lost_on: Option<NaiveDate>,
    /// Last day of 任意継続 (voluntary continuation), for such members.
    pub voluntary_until: Option<NaiveDate>,
    /// Last day of the residence permit, when known (foreign residents).
    pub residence_until: Option<NaiveDate>,
    /// The holder's dated benefit records: a change of co-pay rate or limit category ends the
    /// certificate the day before.
    pub benefits: &'a [Benefit],
    /// The undated co-pay the insurer registered (percent), which the age rule uses.
    pub registered_copay: Option<u8>,
}

impl<'a> Holder<'a> {
    /// The holder's benefits, to ask what is in force when.
    pub fn benefits(&self) -> Benefits<'a> {
        Benefits {
            records: self.benefits,
            scheme: self.scheme,
            birth: self.birth,
            registered: self.registered_copay,
        }
    }
}

/// When a certificate is issued and from when it is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    /// 交付年月日.
    pub issued: NaiveDate,
    /// First valid day: the issue day, or for a renewal the day after the current one ends.
    pub from: NaiveDate,
    /// For a 後期 transitional certificate, the last day of the transitional rule.
    pub transitional_until: Option<NaiveDate>,
    /// When a renewal issued ahead starts on this day, the certificate ends the day before (a
    /// reissue of the current certificate must not overlap its successor).
    pub followed_on: Option<NaiveDate>,
}

impl Term {
    /// A certificate valid from its issue day.
    pub fn issued_on(issued: NaiveDate) -> Term {
        Term {
            issued,
            from: issued,
            transitional_until: None,
            followed_on: None,
        }
    }

    /// A certificate issued on `issued` and valid from `from` (a renewal issued in advance).
    pub fn starting(issued: NaiveDate, from: NaiveDate) -> Term {
        Term {
            issued,
            from: from.max(issued),
            transitional_until: None,
            followed_on: None,
        }
    }

    /// The same term, ending before a renewal that starts on `next` (when there is one).
    pub fn followed_on(self, next: Option<NaiveDate>) -> Term {
        Term {
            followed_on: next,
            ..self
        }
    }

    /// The term of a certificate of `kind`: a 後期 transitional one ends with the rule.
    pub fn of_kind(self, kind: CertificateKind, transitional_until: NaiveDate) -> Term {
        Term {
            transitional_until: (kind == CertificateKind::KokiAutomatic)
                .then_some(transitional_until),
            ..self
        }
    }
}

/// Why a certificate ends when it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The insurer's policy.
    Policy,
    /// The 5-year maximum.
    MaxYears,
    /// The 後期 transitional rule ends.
    KokiTransitional,
    /// The renewal already issued starts the next day.
    Renewed,
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
    /// The co-pay rate or the limit category changes the next day.
    BenefitChange,
}

impl EndReason {
    /// A stable code for storage and display.
    pub fn code(self) -> &'static str {
        match self {
            EndReason::Policy => "policy",
            EndReason::MaxYears => "max_years",
            EndReason::KokiTransitional => "koki_transitional",
            EndReason::Renewed => "renewed",
            EndReason::SeventyFive => "seventy_five",
            EndReason::Seventy => "seventy",
            EndReason::Preschool => "preschool",
            EndReason::VoluntaryContinuation => "voluntary_continuation",
            EndReason::ResidencePermit => "residence_permit",
            EndReason::QualificationLost => "qualification_lost",
            EndReason::BenefitChange => "benefit_change",
        }
    }
}

/// A computed validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First valid day.
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

/// The validity of a certificate with `term` for `holder` under `policy`.
///
/// Errors when nothing is left: the holder has lost the qualification by the first valid day,
/// the transitional rule has ended, or a cut falls before the first valid day.
pub fn validity(policy: Policy, term: Term, holder: &Holder<'_>) -> Result<Validity, DomainError> {
    let from = term.from.max(term.issued);
    let mut best = (policy.end(from), EndReason::Policy);
    let mut cut = |until: NaiveDate, reason: EndReason| {
        if until < best.0 {
            best = (until, reason);
        }
    };
    cut(day_before_anniversary(from, MAX_YEARS), EndReason::MaxYears);
    if let Some(t) = term.transitional_until {
        cut(t, EndReason::KokiTransitional);
    }
    if let Some(next) = term.followed_on {
        cut(day_before(next), EndReason::Renewed);
    }
    if holder.scheme == Scheme::Standard {
        let seventy_five = seventy_five_on(holder.birth);
        if seventy_five > from {
            cut(day_before(seventy_five), EndReason::SeventyFive);
        }
        let seventy = seventy_rate_starts(holder.birth);
        if seventy > from {
            cut(day_before(seventy), EndReason::Seventy);
        }
        let preschool = preschool_ends(holder.birth);
        if preschool >= from {
            cut(preschool, EndReason::Preschool);
        }
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
    if best.0 < from {
        return Err(DomainError::Certificate(
            "no validity left: the certificate would end before it starts",
        ));
    }
    // Last: the first change of co-pay rate or limit category before the end found so far.
    if let Some(change) = holder.benefits().first_change(from, best.0) {
        best = (day_before(change), EndReason::BenefitChange);
    }
    Ok(Validity {
        from,
        until: best.0,
        reason: best.1,
    })
}

/// What decides whether a person needs a certificate on a day, besides being insured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The scheme (後期 members fall under the transitional rule).
    pub scheme: Scheme,
    /// Whether the person can prove eligibility with a マイナ保険証: the national file says the
    /// card is registered and the registry has not suspended the linkage (a suspended linkage
    /// cannot be viewed online, so the card is of no use at the counter). A person absent from
    /// the national file counts as usable: no information is not "no card".
    pub card_usable: bool,
    /// 要配慮者 who asked for a certificate at every renewal.
    pub requested: bool,
}

/// Which certificate, if any, a person needs on `on` (domain.md): 職権交付 without a usable
/// card; the 後期 transitional certificate for every member until `transitional_until`; an
/// application certificate at every renewal for a 要配慮者 who asked, even with a working card.
pub fn kind_needed(
    need: &Need,
    on: NaiveDate,
    transitional_until: NaiveDate,
) -> Option<CertificateKind> {
    if !need.card_usable {
        Some(CertificateKind::ExOfficio)
    } else if need.scheme == Scheme::Koki && on <= transitional_until {
        Some(CertificateKind::KokiAutomatic)
    } else if need.requested {
        Some(CertificateKind::Application)
    } else {
        None
    }
}

/// What a run on `on` should issue to a person who needs a certificate, given the certificate
/// they hold: nothing, one valid from today, or the next one, valid from the day after the
/// current one ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The person is covered until at least the next run, or already holds the next one.
    Nothing,
    /// No certificate: issue one valid from today.
    Now,
    /// The current certificate ends before the next run: issue the next one now, valid from
    /// this day (the day after the current one ends), so that no day is left uncovered.
    From(NaiveDate),
}

/// The renewal rule: with the next run on `next_run`, a certificate ending before then is
/// followed now by one starting the day after it ends (at most one pending per person).
pub fn next_certificate(
    active_until: Option<NaiveDate>,
    has_pending: bool,
    next_run: NaiveDate,
) -> Next {
    match active_until {
        None if has_pending => Next::Nothing,
        None => Next::Now,
        Some(_) if has_pending => Next::Nothing,
        Some(until) if until >= next_run => Next::Nothing,
        Some(until) => until.succ_opt().map_or(Next::Nothing, Next::From),
    }
}

/// A person's マイナ保険証 status as the monthly national registration file reports it.
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
pub enum CardStatus {
    /// The card is registered for insurance use: a usable マイナ保険証.
    Registered,
    /// No card, or a card not registered for insurance.
    Unregistered,
    /// The card's electronic certificate has expired.
    CertificateExpired,
    /// The card was returned.
    CardReturned,
    /// The insurance registration was cancelled.
    RegistrationCancelled,
}

impl CardStatus {
    /// From the file's `card_status` value.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        s.trim()
            .parse()
            .map_err(|_| DomainError::Certificate("card_status must be registered, unregistered, certificate_expired, card_returned or registration_cancelled"))
    }

    /// The file's value.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether the person can prove eligibility with the card: only a registered one can.
    pub fn usable(self) -> bool {
        self == CardStatus::Registered
    }
}

/// What a certificate carries besides its printed face, so that a reissue or a renewal keeps the
/// dates that cut its validity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CarriedDates {
    /// Last day of 任意継続, for such members.
    #[serde(default)]
    pub voluntary_until: Option<NaiveDate>,
    /// Last day of the residence permit, when known.
    #[serde(default)]
    pub residence_until: Option<NaiveDate>,
}

/// The registry's facts about a holder that a certificate prints, as of its issue day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintSubject<'a> {
    /// 保険者番号.
    pub insurer: &'a InsurerNumber,
    /// 保険者名称.
    pub insurer_name: &'a str,
    /// 記号 ('' when absent).
    pub symbol: &'a str,
    /// 番号.
    pub number: &'a str,
    /// 枝番 ('' when absent).
    pub branch: &'a str,
    /// 本人・家族.
    pub relationship: Relationship,
    /// 漢字氏名.
    pub name: &'a str,
    /// カナ氏名.
    pub kana: &'a str,
    /// 生年月日.
    pub birth: NaiveDate,
    /// 性別.
    pub sex: Sex,
    /// 郵便番号.
    pub postal_code: Option<&'a str>,
    /// 住所.
    pub address: Option<&'a str>,
    /// Co-pay as the insurer registered it (percent), if any.
    pub copay_rate: Option<u8>,
    /// The holder's dated benefit records.
    pub benefits: &'a [Benefit],
    /// Whether the insurer prints the 限度額適用区分 and 特定疾病 (optional printed items).
    pub prints_benefits: bool,
    /// 資格取得年月日 of the period in force.
    pub acquired_on: NaiveDate,
}

/// The printed items of a 資格確認書 (domain.md), frozen when it is issued so that what was
/// printed can be printed again identically. Stored as JSON in `certificates.printed`; the
/// field names are that JSON's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrintedItems {
    /// The certificate's number, drawn when it is stored (empty before).
    #[serde(default)]
    pub certificate_number: String,
    /// 氏名.
    pub name: String,
    /// カナ氏名.
    pub kana: String,
    /// 生年月日.
    pub birth_date: NaiveDate,
    /// 性別 as printed: 男, 女, blank when unset, or 裏面参照.
    pub sex: String,
    /// With 裏面参照: the registered sex, printed on the back.
    #[serde(default)]
    pub sex_on_back: Option<String>,
    /// 保険者番号.
    pub insurer_number: String,
    /// 保険者名称.
    pub insurer_name: String,
    /// 記号 ('' when absent).
    pub symbol: String,
    /// 番号.
    pub number: String,
    /// 枝番 ('' when absent).
    pub branch: String,
    /// 本人 or 家族; absent for 後期高齢者, who have no such distinction.
    #[serde(default)]
    pub relationship: Option<String>,
    /// 交付年月日.
    pub issued_on: NaiveDate,
    /// 有効開始日, printed only for a renewal issued ahead of its first valid day (absent when
    /// the certificate is valid from its issue day).
    #[serde(default)]
    pub valid_from: Option<NaiveDate>,
    /// 有効期限.
    pub valid_until: NaiveDate,
    /// 資格取得年月日.
    pub acquired_on: NaiveDate,
    /// 一部負担金の割合 in percent.
    pub copay_percent: u8,
    /// 70–74: the day the 高齢受給者 rate took effect (発効期日).
    #[serde(default)]
    pub copay_effective_from: Option<NaiveDate>,
    /// The 限度額適用区分 in force on the first valid day. Kept whether or not it is printed:
    /// a later change of category ends the certificate, which needs what it was issued with.
    #[serde(default)]
    pub limit_category: Option<String>,
    /// The 特定疾病 in force on the first valid day, as printed (`人工透析を要する慢性腎不全
    /// 10,000円`).
    #[serde(default)]
    pub specified_diseases: Vec<String>,
    /// Whether the limit category and the 特定疾病 are printed (the insurer's choice).
    #[serde(default)]
    pub benefits_printed: bool,
    /// 郵便番号.
    #[serde(default)]
    pub postal_code: Option<String>,
    /// 住所 (a blank is printed when absent).
    #[serde(default)]
    pub address: Option<String>,
    /// 備考.
    #[serde(default)]
    pub remarks: Option<String>,
    /// Not printed: what a reissue or renewal carries over.
    #[serde(default)]
    pub options: CarriedDates,
}

/// The sex as printed: 男 or 女, and blank when unset (the card leaves the field empty).
fn printed_sex(sex: Sex) -> &'static str {
    match sex {
        Sex::Male | Sex::Female => sex.label(),
        Sex::Unset => "",
    }
}

impl PrintedItems {
    /// The items of a certificate issued on `issued_on` with `validity`. The co-pay printed is
    /// the one of the first valid day (a renewal issued in July for August shows August's).
    pub fn new(
        s: &PrintSubject<'_>,
        issued_on: NaiveDate,
        validity: &Validity,
        sex_on_back: bool,
        remarks: Option<String>,
        carried: CarriedDates,
    ) -> Self {
        let scheme = Scheme::of(s.insurer);
        let day = validity.from;
        let benefits = Benefits {
            records: s.benefits,
            scheme,
            birth: s.birth,
            registered: s.copay_rate,
        };
        let copay = benefits.copay_on(day, s.acquired_on);
        let rate = copay.rate;
        // 70–74 under a standard scheme: the rate's 発効期日 is printed (the day the 高齢受給者
        // rate, or the record in force, took effect). A 後期 member of that age is not a
        // 高齢受給者.
        let rate_from = (scheme == Scheme::Standard
            && day >= seventy_rate_starts(s.birth)
            && day < seventy_five_on(s.birth))
        .then_some(copay.effective_from);
        let limit_category = benefits.limit_on(day).map(|(c, _)| c.code());
        let specified_diseases = benefits
            .diseases_on(day)
            .iter()
            .map(|b| b.value.label())
            .collect();
        let relationship = (!s.insurer.is_koki()).then(|| {
            match s.relationship {
                Relationship::Insured => "本人",
                Relationship::Dependent => "家族",
            }
            .to_string()
        });
        Self {
            certificate_number: String::new(),
            name: s.name.to_string(),
            kana: s.kana.to_string(),
            birth_date: s.birth,
            sex: if sex_on_back {
                "裏面参照"
            } else {
                printed_sex(s.sex)
            }
            .to_string(),
            sex_on_back: sex_on_back.then(|| printed_sex(s.sex).to_string()),
            insurer_number: s.insurer.to_string(),
            insurer_name: s.insurer_name.to_string(),
            symbol: s.symbol.to_string(),
            number: s.number.to_string(),
            branch: s.branch.to_string(),
            relationship,
            issued_on,
            valid_from: (validity.from > issued_on).then_some(validity.from),
            valid_until: validity.until,
            acquired_on: s.acquired_on,
            copay_percent: rate.percent(),
            copay_effective_from: rate_from,
            limit_category,
            specified_diseases,
            benefits_printed: s.prints_benefits,
            postal_code: s.postal_code.map(str::to_string),
            address: s.address.map(str::to_string),
            remarks,
            options: carried,
        }
    }

    /// Whether 裏面参照 was printed in place of the sex.
    pub fn sex_printed_on_back(&self) -> bool {
        self.sex_on_back.is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn adult(birth: &str) -> Holder<'static> {
        Holder {
            birth: d(birth),
            scheme: Scheme::Standard,
            lost_on: None,
            voluntary_until: None,
            residence_until: None,
            benefits: &[],
            registered_copay: None,
        }
    }

    fn fixed(until: &str) -> Policy {
        Policy::FixedDate {
            until: d(until),
            cycle_years: 5,
        }
    }

    fn until(policy: Policy, issued: &str, holder: &Holder<'_>) -> (String, &'static str) {
        let v = validity(policy, Term::issued_on(d(issued)), holder).unwrap();
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
            (fixed("2029-11-30"), "2026-12-01", "2029-11-30", "policy"),
            // A fixed date more than 5 years away is capped.
            (fixed("2040-03-31"), "2026-12-01", "2031-11-30", "max_years"),
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
        assert!(validity(five, Term::issued_on(d("2026-12-01")), &h).is_err());
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
            Policy::from_columns("fixed_date", 5, Some(d("2029-11-30"))).unwrap(),
            fixed("2029-11-30")
        );
        assert_eq!(
            Policy::from_columns("yearly_july", 1, None).unwrap(),
            Policy::YearlyJuly
        );
    }

    #[test]
    fn a_passed_common_date_recurs_with_the_cycle() {
        let h = adult("1980-05-05");
        // 私学共済's 2029-11-30 has passed: the next common date is 2034-11-30.
        assert_eq!(
            until(fixed("2029-11-30"), "2029-12-01", &h),
            ("2034-11-30".into(), "policy")
        );
        assert_eq!(
            until(fixed("2029-11-30"), "2029-11-30", &h),
            ("2029-11-30".into(), "policy")
        );
        // A two-year cycle.
        let two = Policy::FixedDate {
            until: d("2026-03-31"),
            cycle_years: 2,
        };
        assert_eq!(
            until(two, "2026-12-01", &h),
            ("2028-03-31".into(), "policy")
        );
    }

    #[test]
    fn a_renewal_starts_the_day_after_the_current_one_ends() {
        let h = adult("1980-05-05");
        // Issued in the July run for the cycle starting 1 August.
        let v = validity(
            Policy::YearlyJuly,
            Term::starting(d("2027-07-05"), d("2027-08-01")),
            &h,
        )
        .unwrap();
        assert_eq!((v.from, v.until), (d("2027-08-01"), d("2028-07-31")));
        // Five years counted from the first valid day, not the issue day.
        let v = validity(
            Policy::YearsFromIssue(5),
            Term::starting(d("2031-11-05"), d("2031-12-01")),
            &h,
        )
        .unwrap();
        assert_eq!(v.until, d("2036-11-30"));
        // Turning 70 (born 1958-08-20): the certificate ending 2028-08-31 is followed by one
        // from 2028-09-01, which the 70 cut no longer touches.
        let h70 = adult("1958-08-20");
        let v = validity(
            Policy::YearsFromIssue(5),
            Term::starting(d("2028-08-05"), d("2028-09-01")),
            &h70,
        )
        .unwrap();
        assert_eq!(
            (v.until, v.reason),
            (d("2033-08-19"), EndReason::SeventyFive)
        );
        // Nothing left when the qualification is lost by the first valid day.
        let mut lost = adult("1980-05-05");
        lost.lost_on = Some(d("2027-08-01"));
        assert!(validity(
            Policy::YearlyJuly,
            Term::starting(d("2027-07-05"), d("2027-08-01")),
            &lost
        )
        .is_err());
    }

    #[test]
    fn koki_members_have_no_age_cuts_and_transitional_certificates_end_with_the_rule() {
        let five = Policy::YearsFromIssue(5);
        // Admitted to 後期 at 65 by certification; 70 on 2030-08-31, 75 on 2035-09-01 (born
        // on the 1st).
        let member = Holder {
            scheme: Scheme::Koki,
            ..adult("1960-09-01")
        };
        assert_eq!(
            until(five, "2026-12-01", &member),
            ("2031-11-30".into(), "policy")
        );
        // The same birth under a standard scheme is cut at the month before the 70 rate.
        assert_eq!(
            until(five, "2026-12-01", &adult("1960-09-01")),
            ("2030-08-31".into(), "seventy")
        );
        // A transitional certificate issued on 2026-07-31 with a 5-year policy ends that day.
        let t = Term::issued_on(d("2026-07-31"))
            .of_kind(CertificateKind::KokiAutomatic, KOKI_TRANSITIONAL_UNTIL);
        let v = validity(five, t, &member).unwrap();
        assert_eq!(
            (v.until, v.reason),
            (d("2026-07-31"), EndReason::KokiTransitional)
        );
        // Issued earlier, it still ends on 2026-07-31.
        let t = Term::issued_on(d("2026-04-05"))
            .of_kind(CertificateKind::KokiAutomatic, KOKI_TRANSITIONAL_UNTIL);
        assert_eq!(validity(five, t, &member).unwrap().until, d("2026-07-31"));
        // An ex-officio certificate of the same member is not capped.
        let t = Term::issued_on(d("2026-07-31"))
            .of_kind(CertificateKind::ExOfficio, KOKI_TRANSITIONAL_UNTIL);
        assert_eq!(validity(five, t, &member).unwrap().until, d("2031-07-30"));
        // After the rule: nothing to issue as transitional.
        let t = Term::issued_on(d("2026-08-01"))
            .of_kind(CertificateKind::KokiAutomatic, KOKI_TRANSITIONAL_UNTIL);
        assert!(validity(five, t, &member).is_err());
    }

    #[test]
    fn who_needs_a_certificate() {
        use CertificateKind::*;
        let t = KOKI_TRANSITIONAL_UNTIL;
        let need = |scheme, card_usable, requested| Need {
            scheme,
            card_usable,
            requested,
        };
        let cases = [
            (
                need(Scheme::Standard, false, false),
                "2027-01-05",
                Some(ExOfficio),
            ),
            (need(Scheme::Standard, true, false), "2027-01-05", None),
            // 要配慮者 who asked: renewed even with a working card.
            (
                need(Scheme::Standard, true, true),
                "2027-01-05",
                Some(Application),
            ),
            (
                need(Scheme::Koki, true, false),
                "2026-07-31",
                Some(KokiAutomatic),
            ),
            (need(Scheme::Koki, true, false), "2026-08-01", None),
            (
                need(Scheme::Koki, false, false),
                "2026-07-05",
                Some(ExOfficio),
            ),
            (
                need(Scheme::Koki, true, true),
                "2026-08-01",
                Some(Application),
            ),
        ];
        for (n, on, want) in cases {
            assert_eq!(kind_needed(&n, d(on), t), want, "{n:?} on {on}");
        }
    }

    #[test]
    fn renewal_rule() {
        let next_run = d("2027-08-05");
        // Ends 31 July, before the next run on 5 August: the next one starts 1 August.
        assert_eq!(
            next_certificate(Some(d("2027-07-31")), false, next_run),
            Next::From(d("2027-08-01"))
        );
        // Already followed by a pending one.
        assert_eq!(
            next_certificate(Some(d("2027-07-31")), true, next_run),
            Next::Nothing
        );
        // Covers the next run day: the next run decides.
        assert_eq!(
            next_certificate(Some(d("2027-08-05")), false, next_run),
            Next::Nothing
        );
        assert_eq!(next_certificate(None, false, next_run), Next::Now);
    }

    #[test]
    fn a_koki_copay_change_cuts_the_certificate_the_day_before() {
        use crate::benefit::{Benefit, StoredBenefit};
        let rec = |v: &str, from: &str, until: Option<&str>| {
            Benefit::from_stored(&StoredBenefit {
                kind: "copay".into(),
                value: v.into(),
                disease: None,
                valid_from: d(from),
                valid_until: until.map(d),
            })
            .unwrap()
        };
        // 後期 member at 10%, 20% (一定以上所得) from 1 October 2026.
        let records = [
            rec("10", "2025-08-01", Some("2026-09-30")),
            rec("20", "2026-10-01", None),
        ];
        let holder = Holder {
            scheme: Scheme::Koki,
            benefits: &records,
            ..adult("1945-04-10")
        };
        let v = validity(
            Policy::YearlyJuly,
            Term::issued_on(d("2026-08-01")),
            &holder,
        )
        .unwrap();
        assert_eq!(
            (v.until, v.reason),
            (d("2026-09-30"), EndReason::BenefitChange)
        );
        assert_eq!(EndReason::BenefitChange.code(), "benefit_change");
        // The replacement, valid from the change, runs to the policy's end.
        let next = validity(
            Policy::YearlyJuly,
            Term::starting(d("2026-09-05"), d("2026-10-01")),
            &holder,
        )
        .unwrap();
        assert_eq!(
            (next.until, next.reason),
            (d("2027-07-31"), EndReason::Policy)
        );
        // A record added with the same rate is no change.
        let same = [
            rec("10", "2025-08-01", Some("2026-09-30")),
            rec("10", "2026-10-01", None),
        ];
        let holder = Holder {
            benefits: &same,
            ..holder
        };
        let v = validity(
            Policy::YearlyJuly,
            Term::issued_on(d("2026-08-01")),
            &holder,
        )
        .unwrap();
        assert_eq!(v.reason, EndReason::Policy);
    }
}
