//! benefits.csv rows: dated co-pay, 限度額適用区分 and 特定疾病 records of registered persons.

use csv::StringRecord;

use super::{field_error, parse_date, FieldError, Layout, Row, Warning};
use crate::benefit::{Benefit, BenefitKind, BenefitValue};
use crate::ids::PersonKey;

/// One validated row of benefits.csv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenefitRow {
    /// (保険者番号, 記号, 番号, 枝番).
    pub key: PersonKey,
    /// The record.
    pub benefit: Benefit,
}

/// Validates one benefits.csv row: the key, a value that fits its kind (a disease only with
/// `specified_disease`) and `valid_until` not before `valid_from`. Whether a co-pay suits the
/// person's age needs their birth date, so the import warns about it after matching persons.
pub fn benefit_row(
    layout: &Layout,
    rec: &StringRecord,
) -> Result<(BenefitRow, Vec<Warning>), Vec<FieldError>> {
    let mut r = Row::new(layout, rec);
    let key = r.key();
    let kind = r.required("kind", BenefitKind::parse);
    let disease = r.cell("disease");
    let value = match kind {
        Some(kind) => match r.cell("value") {
            None => {
                r.errors.push(field_error("value", "is required"));
                None
            }
            Some(v) => {
                let column = match BenefitValue::parse(kind, v, None) {
                    Ok(_) => "disease",
                    Err(_) => "value",
                };
                match BenefitValue::parse(kind, v, disease) {
                    Ok(value) => Some(value),
                    Err(e) => {
                        let shown = if column == "value" {
                            v
                        } else {
                            disease.unwrap_or("")
                        };
                        r.errors.push(field_error(
                            column,
                            format!(
                                "{e} (got \"{}\")",
                                crate::text::truncate_for_message(shown, 40)
                            ),
                        ));
                        None
                    }
                }
            }
        },
        None => None,
    };
    let valid_from = r.required("valid_from", parse_date);
    let valid_until = r.optional("valid_until", parse_date);
    if let (Some(f), Some(u)) = (valid_from, valid_until) {
        if u < f {
            r.errors.push(field_error(
                "valid_until",
                format!("must not be before valid_from {f} (got {u}); it is the last day in force"),
            ));
        }
    }
    let (Some(key), Some(value), Some(valid_from)) = (key, value, valid_from) else {
        return Err(r.errors);
    };
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    let benefit = Benefit::new(value, valid_from, valid_until)
        .map_err(|e| vec![field_error("valid_until", e.to_string())])?;
    Ok((BenefitRow { key, benefit }, Vec::new()))
}
