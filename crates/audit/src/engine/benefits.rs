//! The benefit check: a person's dated benefit records against the rules, as low findings of
//! kind [`FindingKind::BenefitInconsistent`]. A `copay` record the age rules do not allow on a
//! day it covers, beyond the income cases (a 72-year-old at 10%; 20% and 30% are income
//! cases), and a 特定疾病 record outside the qualification (starting on a day no period covers,
//! or running on past the period's end). The rules are [`shikaku_domain::benefit`]'s; each
//! finding is one record's, fingerprinted by its kind and first day, so a re-run finds it again
//! and a corrected record resolves it.

use chrono::NaiveDate;
use shikaku_domain::benefit::{outside_qualification, Benefit, BenefitKind, Benefits};
use shikaku_domain::copay::{allowed_copay, Scheme};
use shikaku_domain::finding::{fingerprint, Finding};
use shikaku_domain::{FindingKind, Period, Severity};

/// One person's records with what the rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenefitSubject {
    /// The member identifier `保険者番号:記号:番号:枝番`.
    pub person_key: String,
    /// `persons.id`.
    pub person_id: i64,
    /// The scheme of the insurer.
    pub scheme: Scheme,
    /// 生年月日.
    pub birth: NaiveDate,
    /// The undated registered co-pay (percent).
    pub registered: Option<u8>,
    /// Every record.
    pub records: Vec<Benefit>,
    /// Qualification periods.
    pub periods: Vec<Period>,
}

fn finding(s: &BenefitSubject, b: &Benefit, detail: String) -> Finding {
    let kind = FindingKind::BenefitInconsistent;
    let what = format!(
        "benefit:{}:{}:{}",
        b.value.kind().as_str(),
        b.value.disease().map_or("", |d| d.as_str()),
        b.valid_from
    );
    Finding {
        fingerprint: fingerprint(kind, &s.person_key, &what),
        kind,
        severity: Severity::Low,
        person_key: s.person_key.clone(),
        person_id: s.person_id,
        linkage_id: None,
        last4: String::new(),
        fields: Vec::new(),
        detail,
        comparison: Vec::new(),
        evidence: None,
    }
}

fn until_text(b: &Benefit) -> String {
    b.valid_until
        .map_or_else(|| "open".to_owned(), |u| u.to_string())
}

/// The findings of one person, in record order.
pub fn check_benefits(s: &BenefitSubject) -> Vec<Finding> {
    let person = Benefits {
        records: &s.records,
        scheme: s.scheme,
        birth: s.birth,
        registered: s.registered,
    };
    let mut out: Vec<Finding> = person
        .copay_conflicts()
        .into_iter()
        .map(|(b, day)| {
            let allowed: Vec<String> = allowed_copay(s.scheme, s.birth, day)
                .iter()
                .map(|r| format!("{}%", r.percent()))
                .collect();
            finding(
                s,
                b,
                format!(
                    "co-pay record {} ({} to {}) is not allowed by the age rules on {day} (allowed: {}): check the 高齢受給者 income judgement and correct or end the record",
                    b.value.label(),
                    b.valid_from,
                    until_text(b),
                    allowed.join(", ")
                ),
            )
        })
        .collect();
    out.extend(
        s.records
            .iter()
            .filter(|b| b.value.kind() == BenefitKind::SpecifiedDisease)
            .filter(|b| outside_qualification(b, &s.periods))
            .map(|b| {
                finding(
                    s,
                    b,
                    format!(
                        "特定疾病 record {} ({} to {}) lies outside the person's qualification: end it with the qualification (a 受療証 is void once the qualification is lost) or correct its dates",
                        b.value.label(),
                        b.valid_from,
                        until_text(b)
                    ),
                )
            }),
    );
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shikaku_domain::benefit::StoredBenefit;

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

    #[test]
    fn a_seventy_two_year_old_at_ten_percent_and_a_lapsed_disease_record() {
        let s = BenefitSubject {
            person_key: "06130199::100:01".into(),
            person_id: 7,
            scheme: Scheme::Standard,
            birth: d("1954-05-10"),
            registered: None,
            records: vec![
                rec("copay", "30", None, "2025-08-01", Some("2026-07-31")),
                rec("copay", "10", None, "2026-08-01", None),
                rec(
                    "specified_disease",
                    "10000",
                    Some("dialysis"),
                    "2024-01-01",
                    None,
                ),
            ],
            periods: vec![Period::new(d("2019-06-01"), Some(d("2026-10-01")), None)],
        };
        let f = check_benefits(&s);
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|x| x.kind == FindingKind::BenefitInconsistent
            && x.severity == Severity::Low
            && x.last4.is_empty()));
        assert!(
            f[0].detail.contains("10%") || f[0].detail.contains("1割"),
            "{}",
            f[0].detail
        );
        assert!(f[1].detail.contains("特定疾病"));
        assert_ne!(f[0].fingerprint, f[1].fingerprint);
        // The same input finds the same problems again.
        assert_eq!(check_benefits(&s), f);
        // Income cases are not findings.
        let fine = BenefitSubject {
            records: vec![rec("copay", "30", None, "2025-08-01", None)],
            periods: vec![Period::open(d("2019-06-01"))],
            ..s
        };
        assert!(check_benefits(&fine).is_empty());
    }
}
