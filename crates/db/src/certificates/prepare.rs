//! Computing a certificate before it is stored: the holder's facts on the issue day
//! ([`Subject`]), the validity from the domain rules under the insurer's policy, and the frozen
//! printed items; then one INSERT for any number of them, drawing their numbers from the
//! sequence in the same statement.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Jsonb, Nullable, SmallInt, Text};
use shikaku_domain::certificate::{self, CarriedDates, Holder, Policy, PrintSubject, PrintedItems};
use shikaku_domain::free_text::FreeText;
use shikaku_domain::{CertificateKind, InsurerNumber, Relationship, Sex};

use super::{CertificateView, IssueOptions, Row, SELECT};
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
}

/// The columns of [`Subject`] besides the person's, for queries that select it.
pub(super) const SUBJECT_EXTRA: &str =
    "i.cert_policy, i.cert_years, i.cert_fixed_until, q.acquired_on, q.lost_on";

pub(super) fn subject(
    conn: &mut PgConnection,
    person_id: i64,
    on: NaiveDate,
) -> Result<Subject, DbError> {
    diesel::sql_query(format!(
        "SELECT {PERSON_COLUMNS}, {SUBJECT_EXTRA}
           FROM persons p JOIN insurers i ON i.insurer_number = p.insurer_number
           LEFT JOIN qualifications q ON q.person_id = p.id AND q.acquired_on <= $2
                                      AND (q.lost_on IS NULL OR q.lost_on > $2)
          WHERE p.id = $1"
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
    pub(super) until: NaiveDate,
    until_reason: &'static str,
    /// Printed items without the certificate number, which is drawn at insert.
    printed: PrintedItems,
    supersedes: Option<i64>,
}

/// Computes a certificate for the person described by `s` on `on`: pure given the row.
pub(super) fn prepare(
    s: &Subject,
    person_id: i64,
    kind: CertificateKind,
    on: NaiveDate,
    options: &IssueOptions,
    supersedes: Option<i64>,
) -> Result<Prepared, DbError> {
    // Printed on the card and kept in its history: the free-text guard applies.
    if let Some(remarks) = &options.remarks {
        FreeText::Remarks.check(remarks)?;
    }
    let Some(acquired_on) = s.acquired_on else {
        return Err(DbError::Invalid(format!(
            "person {person_id} is not insured on {on}: no certificate can be issued"
        )));
    };
    let stored =
        |what: &str| DbError::Invalid(format!("unexpected stored {what} of person {person_id}"));
    let p = &s.person;
    let insurer = InsurerNumber::parse(&p.insurer_number).map_err(|_| stored("insurer number"))?;
    let policy = Policy::from_columns(&s.cert_policy, s.cert_years, s.cert_fixed_until)?;
    let holder = Holder {
        birth: p.birth_date,
        lost_on: s.lost_on,
        voluntary_until: options.voluntary_until,
        residence_until: options.residence_until,
    };
    let validity = certificate::validity(policy, on, &holder)?;
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
        acquired_on,
    };
    let printed = PrintedItems::new(
        &subject,
        on,
        validity.until,
        options.sex_on_back,
        options.remarks.clone(),
        CarriedDates {
            voluntary_until: options.voluntary_until,
            residence_until: options.residence_until,
        },
    );
    Ok(Prepared {
        insurer_number: p.insurer_number.clone(),
        person_id,
        kind,
        on,
        until: validity.until,
        until_reason: validity.reason.code(),
        printed,
        supersedes,
    })
}

/// Stores prepared certificates with one INSERT (numbers drawn from the sequence in the same
/// statement), returning them in order.
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
                          $6::text[], $7::jsonb[], $8::bigint[])
                   WITH ORDINALITY AS t(ins, pid, kind, issued, until, reason, printed, sup, ord)
         ), c AS (
            INSERT INTO certificates (insurer_number, number, person_id, kind, issued_on,
                                      valid_from, valid_until, valid_until_reason, printed,
                                      supersedes)
            SELECT ins, number, pid, kind, issued, issued, until, reason,
                   printed || jsonb_build_object('certificate_number', number), sup
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
    .load(conn)?;
    inserted
        .into_iter()
        .map(CertificateView::try_from)
        .collect()
}

/// Inserts a new active certificate for `person_id` on `on`; the caller has checked that none
/// is active. Returns it.
pub(super) fn create(
    conn: &mut PgConnection,
    person_id: i64,
    kind: CertificateKind,
    on: NaiveDate,
    options: &IssueOptions,
    supersedes: Option<i64>,
) -> Result<CertificateView, DbError> {
    let s = subject(conn, person_id, on)?;
    let prepared = prepare(&s, person_id, kind, on, options, supersedes)?;
    insert(conn, &[prepared])?
        .pop()
        .ok_or_else(|| DbError::Invalid("the certificate was not stored".into()))
}
