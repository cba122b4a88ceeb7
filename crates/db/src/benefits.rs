//! Dated benefit records (co-pay, 限度額適用区分, 特定疾病): reading a person's, adding, ending
//! and correcting one with a reason (each kept in `person_changes`), and the JSON aggregate the
//! eligibility lookup, the certificate paths and the audit read them through. The rules on them
//! are [`shikaku_domain::benefit`]'s; the database refuses overlaps itself (a statement
//! trigger), so every writer is held to them.
//!
//! A write that changes the co-pay rate or the limit category within a current certificate's
//! validity ends that certificate the day before the change
//! ([`crate::certificates::cut_for_benefits`]); the monthly run then issues the replacement.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Jsonb, Nullable, Text, Timestamptz};
use shikaku_domain::benefit::{Benefit, BenefitKind, BenefitValue, Disease, StoredBenefit};
use shikaku_domain::free_text::FreeText;

use crate::error::DbError;

/// The text of [`BENEFITS_JSON`], as a macro so that constant queries can `concat!` it.
macro_rules! benefits_json {
    () => {
        "(CASE WHEN p.has_benefits THEN (SELECT coalesce(jsonb_agg(jsonb_build_object(
            'kind', b.kind, 'value', b.value, 'disease', nullif(b.disease, ''),
            'valid_from', b.valid_from, 'valid_until', b.valid_until)
            ORDER BY b.kind, b.disease, b.valid_from), '[]'::jsonb)
          FROM benefits b WHERE b.person_id = p.id) ELSE '[]'::jsonb END)"
    };
}
pub(crate) use benefits_json;

/// A person's records as one JSON array (oldest first per kind), for any query with the person
/// as `p`: one home for the aggregate every reader parses with [`parse_json`]. The benefits
/// table is read only for persons flagged `has_benefits` (kept by a trigger on insert): most
/// insured persons have no record, and the probe cost the eligibility lookup 15-20% of its
/// throughput (docs/performance.md).
pub const BENEFITS_JSON: &str = benefits_json!();

/// The records of [`BENEFITS_JSON`].
pub fn parse_json(v: &serde_json::Value) -> Result<Vec<Benefit>, DbError> {
    let stored: Vec<StoredBenefit> = serde_json::from_value(v.clone())
        .map_err(|e| DbError::Invalid(format!("unexpected stored benefits: {e}")))?;
    stored
        .iter()
        .map(|s| {
            Benefit::from_stored(s)
                .map_err(|e| DbError::Invalid(format!("unexpected stored benefit: {e}")))
        })
        .collect()
}

/// One stored record as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BenefitView {
    /// `benefits.id`.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// The person.
    #[diesel(sql_type = BigInt)]
    pub person_id: i64,
    /// `copay`, `limit` or `specified_disease`.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// `10`/`20`/`30`, `A01`–`B10`, or the cap in yen.
    #[diesel(sql_type = Text)]
    pub value: String,
    /// For 特定疾病: `dialysis`, `hemophilia` or `hiv`.
    #[diesel(sql_type = Nullable<Text>)]
    pub disease: Option<String>,
    /// First day in force.
    #[diesel(sql_type = Date)]
    pub valid_from: NaiveDate,
    /// Last day in force; open-ended when absent.
    #[diesel(sql_type = Nullable<Date>)]
    pub valid_until: Option<NaiveDate>,
    /// When it was last written.
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl BenefitView {
    /// The record as the domain checks it.
    pub fn benefit(&self) -> Result<Benefit, DbError> {
        Benefit::from_stored(&StoredBenefit {
            kind: self.kind.clone(),
            value: self.value.clone(),
            disease: self.disease.clone(),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
        })
        .map_err(|e| DbError::Invalid(format!("unexpected stored benefit {}: {e}", self.id)))
    }
}

const SELECT: &str = "SELECT id, person_id, kind, value, nullif(disease, '') AS disease,
        valid_from, valid_until, updated_at FROM benefits";

/// A person's records, by kind and start.
pub fn of_person(conn: &mut PgConnection, person_id: i64) -> Result<Vec<BenefitView>, DbError> {
    Ok(diesel::sql_query(format!(
        "{SELECT} WHERE person_id = $1 ORDER BY kind, disease, valid_from"
    ))
    .bind::<BigInt, _>(person_id)
    .load(conn)?)
}

/// One record.
pub fn get(conn: &mut PgConnection, id: i64) -> Result<BenefitView, DbError> {
    diesel::sql_query(format!("{SELECT} WHERE id = $1"))
        .bind::<BigInt, _>(id)
        .get_result(conn)
        .optional()?
        .ok_or_else(|| DbError::NotFound(format!("no benefit record {id}")))
}

/// A record as written by staff: kind, value, disease and dates, checked by the domain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BenefitInput {
    /// `copay`, `limit` or `specified_disease`.
    pub kind: BenefitKind,
    /// copay: `10`, `20`, `30`; limit: `A01`–`A06`, `B01`–`B10`; specified_disease: `10000` or
    /// `20000`.
    #[cfg_attr(feature = "openapi", schema(example = "20", max_length = 5))]
    pub value: String,
    /// specified_disease only.
    #[serde(default)]
    pub disease: Option<Disease>,
    /// First day in force.
    pub valid_from: NaiveDate,
    /// Last day in force; open-ended when absent.
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
}

impl BenefitInput {
    /// The checked record.
    pub fn benefit(&self) -> Result<Benefit, DbError> {
        let value = BenefitValue::parse(self.kind, &self.value, self.disease.map(Disease::as_str))
            .map_err(|e| DbError::Invalid(format!("value: {e}")))?;
        Benefit::new(value, self.valid_from, self.valid_until)
            .map_err(|e| DbError::Invalid(format!("valid_until: {e}")))
    }
}

fn stored_json(b: &Benefit) -> serde_json::Value {
    serde_json::to_value(b.to_stored()).unwrap_or(serde_json::Value::Null)
}

fn record_change(
    conn: &mut PgConnection,
    person_id: i64,
    actor: &str,
    action: &str,
    changes: serde_json::Value,
) -> Result<(), DbError> {
    diesel::sql_query(
        "INSERT INTO person_changes (person_id, actor, action, changes) VALUES ($1, $2, $3, $4)",
    )
    .bind::<BigInt, _>(person_id)
    .bind::<Text, _>(actor)
    .bind::<Text, _>(action)
    .bind::<Jsonb, _>(changes)
    .execute(conn)?;
    Ok(())
}

/// What a staff write did: the record as stored and the certificates it ended early.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Written {
    /// The record.
    pub benefit: BenefitView,
    /// Certificates whose validity now ends the day before the change (or that were void
    /// before they started); the monthly run issues their replacements.
    pub certificates_cut: Vec<i64>,
}

fn checked_reason(reason: &str) -> Result<(), DbError> {
    if reason.trim().is_empty() {
        return Err(DbError::Invalid("reason: is required".into()));
    }
    FreeText::Reason.check(reason)?;
    Ok(())
}

/// Adds a record for `person_id` (history action `benefit_added`, with the reason).
pub fn add(
    conn: &mut PgConnection,
    person_id: i64,
    input: &BenefitInput,
    actor: &str,
    reason: &str,
    today: NaiveDate,
) -> Result<Written, DbError> {
    checked_reason(reason)?;
    let b = input.benefit()?;
    let s = b.to_stored();
    conn.transaction(|conn| {
        crate::persons::get(conn, person_id)?;
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let id: Id = diesel::sql_query(
            "INSERT INTO benefits (person_id, kind, value, disease, valid_from, valid_until)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind::<BigInt, _>(person_id)
        .bind::<Text, _>(&s.kind)
        .bind::<Text, _>(&s.value)
        .bind::<Text, _>(s.disease.as_deref().unwrap_or(""))
        .bind::<Date, _>(s.valid_from)
        .bind::<Nullable<Date>, _>(s.valid_until)
        .get_result(conn)?;
        record_change(
            conn,
            person_id,
            actor,
            "benefit_added",
            serde_json::json!({ "benefit_id": id.id, "record": stored_json(&b), "reason": reason }),
        )?;
        let cut = crate::certificates::cut_for_benefits(conn, &[person_id], actor, reason, today)?;
        Ok(Written {
            benefit: get(conn, id.id)?,
            certificates_cut: cut,
        })
    })
}

/// Ends record `id` on `until` (its last day in force; history action `benefit_ended`).
pub fn end(
    conn: &mut PgConnection,
    id: i64,
    until: NaiveDate,
    actor: &str,
    reason: &str,
    today: NaiveDate,
) -> Result<Written, DbError> {
    checked_reason(reason)?;
    conn.transaction(|conn| {
        let old = get(conn, id)?;
        let mut new = old.benefit()?;
        if until < new.valid_from {
            return Err(DbError::Invalid(format!(
                "valid_until: must not be before valid_from {} (got {until})",
                new.valid_from
            )));
        }
        new.valid_until = Some(until);
        write_over(conn, &old, &new, actor, reason, "benefit_ended", today)
    })
}

/// Replaces record `id` with `input` (a correction; history action `benefit_changed` with the
/// old and new record and the reason).
pub fn correct(
    conn: &mut PgConnection,
    id: i64,
    input: &BenefitInput,
    actor: &str,
    reason: &str,
    today: NaiveDate,
) -> Result<Written, DbError> {
    checked_reason(reason)?;
    let new = input.benefit()?;
    conn.transaction(|conn| {
        let old = get(conn, id)?;
        write_over(conn, &old, &new, actor, reason, "benefit_changed", today)
    })
}

fn write_over(
    conn: &mut PgConnection,
    old: &BenefitView,
    new: &Benefit,
    actor: &str,
    reason: &str,
    action: &str,
    today: NaiveDate,
) -> Result<Written, DbError> {
    let s = new.to_stored();
    diesel::sql_query(
        "UPDATE benefits SET kind = $2, value = $3, disease = $4, valid_from = $5,
                valid_until = $6, updated_at = now() WHERE id = $1",
    )
    .bind::<BigInt, _>(old.id)
    .bind::<Text, _>(&s.kind)
    .bind::<Text, _>(&s.value)
    .bind::<Text, _>(s.disease.as_deref().unwrap_or(""))
    .bind::<Date, _>(s.valid_from)
    .bind::<Nullable<Date>, _>(s.valid_until)
    .execute(conn)?;
    record_change(
        conn,
        old.person_id,
        actor,
        action,
        serde_json::json!({
            "benefit_id": old.id,
            "old": stored_json(&old.benefit()?),
            "new": stored_json(new),
            "reason": reason,
        }),
    )?;
    let cut = crate::certificates::cut_for_benefits(conn, &[old.person_id], actor, reason, today)?;
    Ok(Written {
        benefit: get(conn, old.id)?,
        certificates_cut: cut,
    })
}

/// Streams every record as benefits.csv (formats.md) in person-key order: the same columns the
/// import reads, so an export imports back unchanged.
pub fn export<W: std::io::Write>(conn: &mut PgConnection, out: W) -> Result<u64, DbError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        insurer_number: String,
        #[diesel(sql_type = Text)]
        symbol: String,
        #[diesel(sql_type = Text)]
        number: String,
        #[diesel(sql_type = Text)]
        branch: String,
        #[diesel(sql_type = Text)]
        kind: String,
        #[diesel(sql_type = Text)]
        value: String,
        #[diesel(sql_type = Text)]
        disease: String,
        #[diesel(sql_type = Date)]
        valid_from: NaiveDate,
        #[diesel(sql_type = Nullable<Date>)]
        valid_until: Option<NaiveDate>,
    }
    let mut w = csv::Writer::from_writer(out);
    w.write_record(
        shikaku_domain::FileKind::Benefits
            .columns()
            .iter()
            .map(|c| c.name),
    )
    .map_err(|e| DbError::Invalid(format!("cannot write: {e}")))?;
    let mut n = 0u64;
    conn.transaction::<_, DbError, _>(|conn| {
        use diesel::connection::SimpleConnection;
        conn.batch_execute(
            "DECLARE benefits_export NO SCROLL CURSOR FOR
             SELECT p.insurer_number, p.symbol, p.number, p.branch, b.kind, b.value, b.disease,
                    b.valid_from, b.valid_until
               FROM benefits b JOIN persons p ON p.id = b.person_id
              ORDER BY p.insurer_number, p.symbol, p.number, p.branch, b.kind, b.disease,
                       b.valid_from",
        )?;
        loop {
            let rows: Vec<Row> =
                diesel::sql_query("FETCH 20000 FROM benefits_export").load(conn)?;
            if rows.is_empty() {
                break;
            }
            for r in rows {
                let from = r.valid_from.to_string();
                let until = r.valid_until.map(|d| d.to_string()).unwrap_or_default();
                w.write_record([
                    &r.insurer_number,
                    &r.symbol,
                    &r.number,
                    &r.branch,
                    &r.kind,
                    &r.value,
                    &r.disease,
                    &from,
                    &until,
                ])
                .map_err(|e| DbError::Invalid(format!("cannot write: {e}")))?;
                n += 1;
            }
        }
        conn.batch_execute("CLOSE benefits_export")?;
        Ok(())
    })?;
    w.flush()
        .map_err(|e| DbError::Invalid(format!("cannot write: {e}")))?;
    Ok(n)
}

/// A person with benefit records, as the audit checks them.
#[derive(Debug, Clone, QueryableByName)]
pub struct AuditSubject {
    /// `persons.id`.
    #[diesel(sql_type = BigInt)]
    pub person_id: i64,
    /// 保険者番号.
    #[diesel(sql_type = Text)]
    pub insurer_number: String,
    /// 記号 ('' when absent).
    #[diesel(sql_type = Text)]
    pub symbol: String,
    /// 番号.
    #[diesel(sql_type = Text)]
    pub number: String,
    /// 枝番 ('' when absent).
    #[diesel(sql_type = Text)]
    pub branch: String,
    /// 生年月日.
    #[diesel(sql_type = Date)]
    pub birth_date: NaiveDate,
    /// The undated registered co-pay.
    #[diesel(sql_type = Nullable<diesel::sql_types::SmallInt>)]
    pub copay_rate: Option<i16>,
    /// [`BENEFITS_JSON`] (copay and specified_disease records only).
    #[diesel(sql_type = Jsonb)]
    pub benefits: serde_json::Value,
    /// Periods as `[{acquired_on, lost_on}]`.
    #[diesel(sql_type = Jsonb)]
    pub periods: serde_json::Value,
}

/// Calls `each` with every person holding a `copay` or `specified_disease` record, in chunks
/// read through a cursor (the audit's benefit pass: few persons, but never all in memory).
pub fn for_audit(
    conn: &mut PgConnection,
    mut each: impl FnMut(Vec<AuditSubject>) -> Result<(), DbError>,
) -> Result<(), DbError> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute(&format!(
        "DECLARE benefit_audit NO SCROLL CURSOR FOR
         SELECT p.id AS person_id, p.insurer_number, p.symbol, p.number, p.branch, p.birth_date,
                p.copay_rate, {BENEFITS_JSON} AS benefits,
                (SELECT coalesce(jsonb_agg(jsonb_build_object('acquired_on', q.acquired_on,
                                                              'lost_on', q.lost_on)
                                           ORDER BY q.acquired_on), '[]'::jsonb)
                   FROM qualifications q WHERE q.person_id = p.id) AS periods
           FROM persons p
          WHERE p.id IN (SELECT person_id FROM benefits WHERE kind IN ('copay', 'specified_disease'))
          ORDER BY p.id"
    ))?;
    loop {
        let rows: Vec<AuditSubject> =
            diesel::sql_query("FETCH 20000 FROM benefit_audit").load(conn)?;
        if rows.is_empty() {
            break;
        }
        each(rows)?;
    }
    conn.batch_execute("CLOSE benefit_audit")?;
    Ok(())
}
