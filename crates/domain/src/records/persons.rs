//! persons.csv rows: insured persons and dependants with one qualification period each.

use chrono::NaiveDate;
use csv::StringRecord;

use super::{field_error, parse_date, plain_text, warning, FieldError, Layout, Row, Warning};
use crate::copay::{allowed_copay, CopayRate, Scheme};
use crate::ids::PersonKey;
use crate::person::{KanaName, KanjiName, LossReason, PostalCode, Relationship, Sex};

/// One validated row of persons.csv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    /// (保険者番号, 記号, 番号, 枝番).
    pub key: PersonKey,
    /// 本人 or 家族.
    pub relationship: Relationship,
    /// 漢字氏名.
    pub name_kanji: KanjiName,
    /// カナ氏名.
    pub name_kana: KanaName,
    /// 生年月日.
    pub birth_date: NaiveDate,
    /// 性別 (1 or 2 in input).
    pub sex: Sex,
    /// 郵便番号.
    pub postal_code: Option<PostalCode>,
    /// 住所.
    pub address: Option<String>,
    /// 資格取得日.
    pub acquired_on: NaiveDate,
    /// 資格喪失日: the first day without eligibility.
    pub lost_on: Option<NaiveDate>,
    /// 資格喪失事由.
    pub loss_reason: Option<LossReason>,
    /// 一部負担金割合 as given; absent means "derive from age".
    pub copay_rate: Option<CopayRate>,
    /// Last day of 任意継続. The outer `None` means the file has no such column (an older file:
    /// the stored value is kept); `Some(None)` an empty cell (cleared).
    pub voluntary_until: Option<Option<NaiveDate>>,
    /// Last day of the residence permit; absent column and empty cell as for
    /// `voluntary_until`.
    pub residence_until: Option<Option<NaiveDate>>,
    /// 要配慮者's standing request (`yes`); `None` when the file has no such column.
    pub certificate_requested: Option<bool>,
}

/// `certificate_requested`: `yes`, or empty for no.
fn parse_requested(s: &str) -> Result<bool, crate::error::DomainError> {
    match s.trim() {
        "yes" => Ok(true),
        _ => Err(crate::error::DomainError::CertificateRequested),
    }
}

/// Validates one persons.csv row.
///
/// Besides each field's own rules: acquired_on may not be before birth_date, lost_on must be
/// after acquired_on, loss_reason needs lost_on. Warnings (row still loads): lost_on without a
/// loss_reason; a co-pay rate the age rules do not allow on acquired_on (income decides some
/// rates, so only a person can judge); a dependant under a 後期高齢者 insurer, which has none.
pub fn person_row(
    layout: &Layout,
    rec: &StringRecord,
) -> Result<(PersonRow, Vec<Warning>), Vec<FieldError>> {
    let mut r = Row::new(layout, rec);
    let key = r.key();
    let relationship = r.required("relationship", Relationship::parse);
    let name_kanji = r.required("name_kanji", KanjiName::parse);
    let name_kana = r.required("name_kana", KanaName::parse);
    let birth_date = r.required("birth_date", parse_date);
    let sex = r.required("sex", Sex::parse);
    let postal_code = r.optional("postal_code", PostalCode::parse);
    let address = r.optional("address", plain_text);
    let acquired_on = r.required("acquired_on", parse_date);
    let lost_on = r.optional("lost_on", parse_date);
    let loss_reason = r.optional("loss_reason", LossReason::parse);
    let copay_rate = r.optional("copay_rate", CopayRate::parse);
    let has = |c: &str| layout.index(c).is_some();
    let voluntary_until = has("voluntary_until").then(|| r.optional("voluntary_until", parse_date));
    let residence_until = has("residence_until").then(|| r.optional("residence_until", parse_date));
    let certificate_requested = has("certificate_requested").then(|| {
        r.optional("certificate_requested", parse_requested)
            .unwrap_or(false)
    });

    if let (Some(b), Some(a)) = (birth_date, acquired_on) {
        if a < b {
            r.errors.push(field_error(
                "acquired_on",
                format!("must not be before birth_date {b} (got {a})"),
            ));
        }
    }
    if let (Some(a), Some(l)) = (acquired_on, lost_on) {
        if l <= a {
            r.errors.push(field_error(
                "lost_on",
                format!("must be after acquired_on {a}; it is the first day without eligibility (got {l})"),
            ));
        }
    }
    if loss_reason.is_some() && r.cell("lost_on").is_none() {
        r.errors
            .push(field_error("loss_reason", "is given but lost_on is empty"));
    }

    let (
        Some(key),
        Some(relationship),
        Some(name_kanji),
        Some(name_kana),
        Some(birth_date),
        Some(sex),
        Some(acquired_on),
    ) = (
        key,
        relationship,
        name_kanji,
        name_kana,
        birth_date,
        sex,
        acquired_on,
    )
    else {
        return Err(r.errors);
    };
    if !r.errors.is_empty() {
        return Err(r.errors);
    }

    let mut warnings = Vec::new();
    if lost_on.is_some() && loss_reason.is_none() {
        warnings.push(warning(
            "loss_reason",
            "lost_on is set but loss_reason is empty; add 01, 02, 03 or 99",
        ));
    }
    if let Some(rate) = copay_rate {
        let allowed = allowed_copay(Scheme::of(&key.insurer), birth_date, acquired_on);
        if !allowed.contains(&rate) {
            let list: Vec<String> = allowed.iter().map(|c| c.percent().to_string()).collect();
            warnings.push(warning(
                "copay_rate",
                format!(
                    "{} is not allowed by the age rules on acquired_on {acquired_on} (allowed: {}); loaded as given",
                    rate.percent(),
                    list.join(", ")
                ),
            ));
        }
    }
    if relationship == Relationship::Dependent && key.insurer.is_koki() {
        warnings.push(warning(
            "relationship",
            "後期高齢者医療 (法別 39) has no dependants; every member is insured in their own right",
        ));
    }

    Ok((
        PersonRow {
            key,
            relationship,
            name_kanji,
            name_kana,
            birth_date,
            sex,
            postal_code,
            address,
            acquired_on,
            lost_on,
            loss_reason,
            copay_rate,
            voluntary_until,
            residence_until,
            certificate_requested,
        },
        warnings,
    ))
}
