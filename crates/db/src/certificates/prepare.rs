//! Computing a certificate before it is stored: the holder's facts on the issue day
//! ([`Subject`]), the validity from the domain rules under the insurer's policy, and the frozen
//! printed items; then one INSERT for any number of them, drawing their numbers from the
//! sequence in the same statement.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Jsonb, Nullable, SmallInt, Text};
use shikaku_domain::certificate::{
    self, CarriedDates, Holder, Policy, PrintSubject, PrintedItems, Term,
};
use shikaku_domain::copay::Scheme;
use shikaku_domain::free_text::FreeText;
use shikaku_domain::{CertificateKind, InsurerNumber, Relationship, Sex};

use super::{CertificateView, IssueOptions, Row, SELECT};
use crate::benefits::{parse_json, BENEFITS_JSON};
use crate::error::DbError;
use crate::persons::{PersonRecord, PERSON_COLUMNS};

/// What issuing needs to know about the person, their insurer and the period on the day.
#[derive(QueryableByName)]
pub(super) struct Subject {
    #[diesel(embed)]
    pub(super) person: PersonRecord,
    #[diesel(sql_type = Text)]
    cert_policy: String,
    #[diesel(sql_type = SmallInt)]
    cert_years: i16,
    #[diesel(sql_type = Nullable<Date>)]
    cert_fixed_until: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    acquired_on: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    lost_on: Option<NaiveDate>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    cert_prints_benefits: bool,
    /// [`BENEFITS_JSON`].
    #[diesel(sql_type = Jsonb)]
    benefits: serde_json::Value,
}

/// The columns of [`Subject`] besides the person's, for queries that select it (persons as
/// `p`, insurers as `i`, the period as `q`).
pub(super) fn subject_extra() -> String {
    format!(
        "i.cert_policy, i.cert_years, i.cert_fixed_until, q.acquired_on, q.lost_on,
         i.cert_prints_benefits, {BENEFITS_JSON} AS benefits"
    )
}

pub(super) fn subject(
    conn: &mut PgConnection,
    person_id: i64,
    on: NaiveDate,
) -> Result<Subject, DbError> {
    diesel::sql_query(format!(
        "SELECT {PERSON_COLUMNS}, {}
           FROM persons p JOIN insurers i ON i.insurer_number = p.insurer_number
           LEFT JOIN qualifications q ON q.person_id = p.id AND q.acquired_on <= $2
                                      AND (q.lost_on IS NULL OR q.lost_on > $2)
          WHERE p.id = $1",
        subject_extra()
    ))
    .bind::<BigInt, _>(person_id)
    .bind::<Date, _>(on)
    .get_result::<Subject>(conn)
    .optional()?
    .ok_or_else(|| DbError::NotFound(format!("no person {person_id}")))
}

/// A certificate computed but not yet stored.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    insurer_number: String,
    person_id: i64,
    kind: CertificateKind,
    on: NaiveDate,
    from: NaiveDate,
    pub(super) until: NaiveDate,
    until_reason: &'static str,
    /// Printed items without the certificate number, which is drawn at insert.
    printed: PrintedItems,
    supersedes: Option<i64>,
}

/// Computes a certificate for the person described by `s` with `term` (issued on `term.issued`,
/// valid from `term.from`): pure given the row. The 任意継続 and residence-permit ends are the
/// person's stored ones unless `options` names others (the counter stores those first).
pub(super) fn prepare(
    s: &Subject,
    person_id: i64,
    kind: CertificateKind,
    term: Term,
    options: &IssueOptions,
    supersedes: Option<i64>,
) -> Result<Prepared, DbError> {
    let on = term.issued;
    // Printed on the card and kept in its history: the free-text guard applies.
    if let Some(remarks) = &options.remarks {
        FreeText::Remarks.check(remarks)?;
    }
    let Some(acquired_on) = s.acquired_on else {
        return Err(DbError::Invalid(format!(
            "person {person_id} is not insured on {}: no certificate can be issued",
            term.from
        )));
    };
    let stored =
        |what: &str| DbError::Invalid(format!("unexpected stored {what} of person {person_id}"));
    let p = &s.person;
    let insurer = InsurerNumber::parse(&p.insurer_number).map_err(|_| stored("insurer number"))?;
    let policy = Policy::from_columns(&s.cert_policy, s.cert_years, s.cert_fixed_until)?;
    let carried = CarriedDates {
        voluntary_until: options.voluntary_until.or(p.voluntary_until),
        residence_until: options.residence_until.or(p.residence_until),
    };
    let benefits = parse_json(&s.benefits)?;
    let holder = Holder {
        birth: p.birth_date,
        scheme: Scheme::of(&insurer),
        lost_on: s.lost_on,
        voluntary_until: carried.voluntary_until,
        residence_until: carried.residence_until,
        benefits: &benefits,
        registered_copay: p.copay_percent(),
    };
    // Nothing left to issue (lost by then, a permit ended, the transitional rule over) is a
    // refusal the caller can act on, not a fault.
    let validity = certificate::validity(policy, term, &holder)
        .map_err(|e| DbError::Invalid(format!("person {person_id}: {e}")))?;
    let subject = PrintSubject {
        insurer: &insurer,
        insurer_name: &p.insurer_name,
        symbol: &p.symbol,
        number: &p.number,
        branch: &p.branch,
        relationship: Relationship::from_code(p.relationship)
            .map_err(|_| stored("relationship"))?,
        name: &p.name_kanji,
        kana: &p.name_kana,
        birth: p.birth_date,
        sex: Sex::from_code(p.sex).map_err(|_| stored("sex"))?,
        postal_code: p.postal_code.as_deref(),
        address: p.address.as_deref(),
        copay_rate: p.copay_percent(),
        benefits: &benefits,
        prints_benefits: s.cert_prints_benefits,
        acquired_on,
    };
    let printed = PrintedItems::new(
        &subject,
        on,
        &validity,
        options.sex_on_back,
        options.remarks.clone(),
        carried,
    );
    Ok(Prepared {
        insurer_number: p.insurer_number.clone(),
        person_id,
        kind,
        on,
        from: validity.from,
        until: validity.until,
        until_reason: validity.reason.code(),
        printed,
        supersedes,
    })
}

/// Stores prepared certificates with one INSERT (numbers drawn from the sequence in the same
/// statement), returning them in order. One valid from a later day than its issue is stored
/// pending; it becomes active on that day ([`super::expire`]).
pub(super) fn insert(
    conn: &mut PgConnection,
    items: &[Prepared],
) -> Result<Vec<CertificateView>, DbError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let printed = items
        .iter()
        .map(|i| serde_json::to_value(&i.printed))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DbError::Invalid(format!("cannot store printed items: {e}")))?;
    let inserted: Vec<Row> = diesel::sql_query(format!(
        "WITH input AS (
            SELECT *, lpad(nextval('certificate_number_seq')::text, 10, '0') AS number
              FROM unnest($1::text[], $2::bigint[], $3::text[], $4::date[], $5::date[],
                          $6::text[], $7::jsonb[], $8::bigint[], $9::date[])
                   WITH ORDINALITY AS t(ins, pid, kind, issued, until, reason, printed, sup,
                                        vfrom, ord)
         ), c AS (
            INSERT INTO certificates (insurer_number, number, person_id, kind, issued_on,
                                      valid_from, valid_until, valid_until_reason, printed,
                                      supersedes, status)
            SELECT ins, number, pid, kind, issued, vfrom, until, reason,
                   printed || jsonb_build_object('certificate_number', number), sup,
                   CASE WHEN vfrom > issued THEN 'pending' ELSE 'active' END
              FROM input ORDER BY ord
            RETURNING *)
         {} ORDER BY id",
        SELECT.replace("FROM certificates", "FROM c")
    ))
    .bind::<Array<Text>, _>(
        items
            .iter()
            .map(|i| i.insurer_number.as_str())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<BigInt>, _>(items.iter().map(|i| i.person_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(items.iter().map(|i| i.kind.as_str()).collect::<Vec<_>>())
    .bind::<Array<Date>, _>(items.iter().map(|i| i.on).collect::<Vec<_>>())
    .bind::<Array<Date>, _>(items.iter().map(|i| i.until).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(items.iter().map(|i| i.until_reason).collect::<Vec<_>>())
    .bind::<Array<Jsonb>, _>(&printed)
    .bind::<Array<Nullable<BigInt>>, _>(items.iter().map(|i| i.supersedes).collect::<Vec<_>>())
    .bind::<Array<Date>, _>(items.iter().map(|i| i.from).collect::<Vec<_>>())
    .load(conn)?;
    inserted
        .into_iter()
        .map(CertificateView::try_from)
        .collect()
}

/// Inserts a new certificate for `person_id` with `term` (active, or pending when it starts
/// later); the caller has checked that the slot is free. Returns it.
pub(super) fn create(
    conn: &mut PgConnection,
    person_id: i64,
    kind: CertificateKind,
    term: Term,
    options: &IssueOptions,
    supersedes: Option<i64>,
) -> Result<CertificateView, DbError> {
    // The period in force on the first valid day decides (a renewal starts later).
    let s = subject(conn, person_id, term.from)?;
    let prepared = prepare(&s, person_id, kind, term, options, supersedes)?;
    insert(conn, &[prepared])?
        .pop()
        .ok_or_else(|| DbError::Invalid("the certificate was not stored".into()))
}
