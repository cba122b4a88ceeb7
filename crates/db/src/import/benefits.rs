//! benefits.csv: dated co-pay, 限度額適用区分 and 特定疾病 records of registered persons.
//!
//! Streamed like the other files: rows are validated on the rayon pool and copied into a
//! staging table, then checked and merged set-based, all or nothing. A row for the same person,
//! kind (and disease) and valid_from as a stored record replaces it, the earlier values kept in
//! `person_changes` (`benefit_changed`); the rest are added. Overlaps are errors with their
//! lines, against the file and against stored records the file does not replace (the database
//! refuses them too). A co-pay the age rules do not allow is a warning: income decides some
//! rates, so only a person can judge. Certificates whose printed co-pay or limit category the
//! file changes are ended the day before the change ([`crate::certificates::cut_for_benefits`]).

use std::io::Read;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Int8, Text};
use rayon::prelude::*;
use shikaku_domain::benefit::{Benefit, Benefits};
use shikaku_domain::copay::Scheme;
use shikaku_domain::records::{self, BenefitRow, FileKind};

use super::{
    count, finish_journal, in_transaction, prepare_session, report_lines, start_journal,
    stream_rows, Counter, ImportContext, ImportError, ImportSummary, IssueLevel, IssueSink,
};
use crate::error::DbError;

diesel::table! {
    /// Temporary staging table for one benefits.csv import.
    stage_benefits (line) {
        line -> Int8,
        insurer_number -> Text,
        symbol -> Text,
        number -> Text,
        branch -> Text,
        kind -> Text,
        value -> Text,
        disease -> Text,
        valid_from -> Date,
        valid_until -> Nullable<Date>,
    }
}

const CREATE_STAGE: &str = r#"
CREATE TEMP TABLE stage_benefits (
    line bigint NOT NULL,
    insurer_number text COLLATE "C" NOT NULL,
    symbol text COLLATE "C" NOT NULL,
    number text COLLATE "C" NOT NULL,
    branch text COLLATE "C" NOT NULL,
    kind text COLLATE "C" NOT NULL,
    value text COLLATE "C" NOT NULL,
    disease text COLLATE "C" NOT NULL,
    valid_from date NOT NULL,
    valid_until date
) ON COMMIT DROP"#;

#[derive(Insertable)]
#[diesel(table_name = stage_benefits)]
#[diesel(treat_none_as_default_value = false)]
struct StageBenefit {
    line: i64,
    insurer_number: String,
    symbol: String,
    number: String,
    branch: String,
    kind: String,
    value: String,
    disease: String,
    valid_from: chrono::NaiveDate,
    valid_until: Option<chrono::NaiveDate>,
}

impl StageBenefit {
    fn new(line: u64, row: BenefitRow) -> Self {
        let key = super::KeyColumns::of(&row.key);
        let s = row.benefit.to_stored();
        StageBenefit {
            line: super::to_i64(line),
            insurer_number: key.insurer_number,
            symbol: key.symbol,
            number: key.number,
            branch: key.branch,
            kind: s.kind,
            value: s.value,
            disease: s.disease.unwrap_or_default(),
            valid_from: s.valid_from,
            valid_until: s.valid_until,
        }
    }
}

/// A staged co-pay row with what the age rules need.
#[derive(QueryableByName)]
struct CopayRow {
    #[diesel(sql_type = Int8)]
    line: i64,
    #[diesel(sql_type = Text)]
    insurer_number: String,
    #[diesel(sql_type = diesel::sql_types::Date)]
    birth_date: chrono::NaiveDate,
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = diesel::sql_types::Date)]
    valid_from: chrono::NaiveDate,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Date>)]
    valid_until: Option<chrono::NaiveDate>,
}

impl CopayRow {
    /// The warning for a rate the age rules do not allow on some day the record covers.
    fn warning(&self) -> Option<(u64, String)> {
        let kind = shikaku_domain::benefit::BenefitKind::Copay;
        let value = shikaku_domain::benefit::BenefitValue::parse(kind, &self.value, None).ok()?;
        let record = Benefit::new(value, self.valid_from, self.valid_until).ok()?;
        let scheme = Scheme::of_number(&self.insurer_number);
        let records = [record];
        let person = Benefits {
            records: &records,
            scheme,
            birth: self.birth_date,
            registered: None,
        };
        let (_, day) = person.copay_conflicts().into_iter().next()?;
        let allowed: Vec<String> =
            shikaku_domain::copay::allowed_copay(scheme, self.birth_date, day)
                .iter()
                .map(|r| r.percent().to_string())
                .collect();
        Some((
            u64::try_from(self.line).unwrap_or(0),
            format!(
                "{} is not allowed by the age rules on {day} (allowed: {}); loaded as given",
                self.value,
                allowed.join(", ")
            ),
        ))
    }
}

const WARN_FETCH: usize = 20_000;

/// Warns, line by line, about co-pay rows the age rules do not allow (read through a cursor
/// and judged on the rayon pool, like the registration-time check).
fn copay_warnings(conn: &mut PgConnection, counter: &mut Counter<'_>) -> Result<(), DbError> {
    conn.batch_execute(
        "DECLARE copay_check NO SCROLL CURSOR FOR
         SELECT line, insurer_number, birth_date, value, valid_from, valid_until
           FROM stage_benefit_person WHERE kind = 'copay' ORDER BY line",
    )?;
    loop {
        let rows: Vec<CopayRow> =
            diesel::sql_query(format!("FETCH {WARN_FETCH} FROM copay_check")).load(conn)?;
        if rows.is_empty() {
            break;
        }
        let warnings: Vec<(u64, String)> = rows.par_iter().filter_map(CopayRow::warning).collect();
        for (line, message) in warnings {
            counter.warning(line, "value", message);
        }
    }
    conn.batch_execute("CLOSE copay_check")?;
    Ok(())
}

/// Imports a benefits.csv stream.
pub fn import_benefits<R: Read>(
    conn: &mut PgConnection,
    ctx: &ImportContext<'_>,
    input: R,
    sink: &mut dyn IssueSink,
) -> Result<ImportSummary, ImportError> {
    in_transaction(conn, |conn| {
        let mut counter = Counter::new(sink);
        prepare_session(conn)?;
        conn.batch_execute(CREATE_STAGE)?;
        let rows_read = stream_rows(
            input,
            FileKind::Benefits.into(),
            ctx,
            &mut counter,
            |layout, line, record| {
                records::benefit_row(layout, record)
                    .map(|(row, warnings)| (StageBenefit::new(line, row), warnings))
            },
            |rows| {
                diesel::copy_from(stage_benefits::table)
                    .from_insertable(rows)
                    .execute(conn)?;
                Ok(())
            },
        )?;
        conn.batch_execute(
            "ANALYZE stage_benefits (insurer_number, symbol, number, branch);
             CREATE TEMP TABLE stage_benefit_person ON COMMIT DROP AS
               SELECT s.*, p.id AS person_id, p.birth_date
                 FROM stage_benefits s
                 JOIN persons p USING (insurer_number, symbol, number, branch);
             CREATE INDEX ON stage_benefit_person (person_id, kind, disease, valid_from);
             ANALYZE stage_benefit_person (person_id, kind, disease, valid_from);",
        )?;
        report_lines(
            conn,
            &mut counter,
            IssueLevel::Error,
            "number",
            "SELECT s.line, 'no person ' || s.insurer_number || ':' || s.symbol || ':' || s.number
                    || ':' || s.branch || ' is registered; import persons.csv first' AS message
             FROM stage_benefits s
             WHERE NOT EXISTS (SELECT 1 FROM persons p
                               WHERE (p.insurer_number, p.symbol, p.number, p.branch)
                                   = (s.insurer_number, s.symbol, s.number, s.branch))
             ORDER BY s.line",
        )?;
        report_lines(
            conn,
            &mut counter,
            IssueLevel::Error,
            "valid_from",
            "SELECT line, 'the same person, kind and valid_from is already on line ' || first_line
                    || '; a file holds each record once' AS message
             FROM (SELECT line, first_value(line) OVER (
                          PARTITION BY person_id, kind, disease, valid_from ORDER BY line) AS first_line
                   FROM stage_benefit_person) d
             WHERE line <> first_line ORDER BY line",
        )?;
        // Overlaps inside the file: each later line names the earlier one it overlaps.
        report_lines(
            conn,
            &mut counter,
            IssueLevel::Error,
            "valid_from",
            "SELECT b.line, 'overlaps the ' || b.kind
                    || ' record on line ' || min(a.line) || ' for the same person' AS message
               FROM stage_benefit_person a
               JOIN stage_benefit_person b
                 ON b.person_id = a.person_id AND b.kind = a.kind AND b.disease = a.disease
                AND a.line < b.line AND a.valid_from <> b.valid_from
                AND daterange(a.valid_from, a.valid_until, '[]')
                    && daterange(b.valid_from, b.valid_until, '[]')
              GROUP BY b.line, b.kind ORDER BY b.line",
        )?;
        // Overlaps with stored records the file does not replace (same valid_from replaces).
        report_lines(
            conn,
            &mut counter,
            IssueLevel::Error,
            "valid_from",
            "SELECT s.line, 'overlaps the stored ' || s.kind || ' record ' || min(b.valid_from)
                    || ' to ' || coalesce(max(b.valid_until)::text, '(open)')
                    || '; end it first, or include it in this file with its valid_from and the new valid_until'
                    AS message
               FROM stage_benefit_person s
               JOIN benefits b
                 ON b.person_id = s.person_id AND b.kind = s.kind AND b.disease = s.disease
                AND b.valid_from <> s.valid_from
                AND daterange(b.valid_from, b.valid_until, '[]')
                    && daterange(s.valid_from, s.valid_until, '[]')
              WHERE NOT EXISTS (SELECT 1 FROM stage_benefit_person r
                                 WHERE r.person_id = b.person_id AND r.kind = b.kind
                                   AND r.disease = b.disease AND r.valid_from = b.valid_from)
              GROUP BY s.line, s.kind ORDER BY s.line",
        )?;
        copay_warnings(conn, &mut counter)?;

        let mut summary = counter.verdict(rows_read)?;
        let import_id = start_journal(conn, "benefits", ctx)?;

        // Replacements: history first (old and new of each changed column), then the update.
        conn.batch_execute(
            "CREATE TEMP TABLE stage_benefit_replace ON COMMIT DROP AS
             SELECT b.id, s.person_id, s.line, s.kind, s.value, s.valid_from, s.valid_until,
                    (b.value IS DISTINCT FROM s.value
                     OR b.valid_until IS DISTINCT FROM s.valid_until) AS changed,
                    jsonb_build_object('old', jsonb_build_object('value', b.value,
                                                                 'valid_until', b.valid_until),
                                       'new', jsonb_build_object('value', s.value,
                                                                 'valid_until', s.valid_until))
                        AS diff
               FROM stage_benefit_person s
               JOIN benefits b ON b.person_id = s.person_id AND b.kind = s.kind
                              AND b.disease = s.disease AND b.valid_from = s.valid_from;",
        )?;
        diesel::sql_query(
            "INSERT INTO person_changes (person_id, import_id, actor, action, changes)
             SELECT person_id, $1, $2, 'benefit_changed',
                    diff || jsonb_build_object('benefit_id', id, 'kind', kind,
                                               'valid_from', valid_from, 'line', line)
               FROM stage_benefit_replace WHERE changed ORDER BY person_id, id",
        )
        .bind::<Int8, _>(import_id)
        .bind::<Text, _>(ctx.actor)
        .execute(conn)?;
        let updated = diesel::sql_query(
            "UPDATE benefits b SET value = r.value, valid_until = r.valid_until,
                    import_id = $1, updated_at = now()
               FROM stage_benefit_replace r WHERE b.id = r.id AND r.changed",
        )
        .bind::<Int8, _>(import_id)
        .execute(conn)?;
        let inserted = diesel::sql_query(
            "INSERT INTO benefits (person_id, kind, value, disease, valid_from, valid_until,
                                   import_id)
             SELECT s.person_id, s.kind, s.value, s.disease, s.valid_from, s.valid_until, $1
               FROM stage_benefit_person s
              WHERE NOT EXISTS (SELECT 1 FROM stage_benefit_replace r WHERE r.line = s.line)
              ORDER BY s.person_id, s.kind, s.disease, s.valid_from",
        )
        .bind::<Int8, _>(import_id)
        .execute(conn)?;

        // Certificates of the persons whose co-pay or limit records the file wrote.
        #[derive(QueryableByName)]
        struct Person {
            #[diesel(sql_type = Int8)]
            person_id: i64,
        }
        let touched: Vec<i64> = diesel::sql_query(
            "SELECT DISTINCT s.person_id FROM stage_benefit_person s
              WHERE s.kind IN ('copay', 'limit')
                AND NOT EXISTS (SELECT 1 FROM stage_benefit_replace r
                                 WHERE r.line = s.line AND NOT r.changed)
                AND EXISTS (SELECT 1 FROM certificates c WHERE c.person_id = s.person_id
                               AND c.status IN ('active', 'pending'))",
        )
        .load::<Person>(conn)?
        .into_iter()
        .map(|p| p.person_id)
        .collect();
        let mut cut = Vec::new();
        for chunk in touched.chunks(10_000) {
            cut.extend(crate::certificates::cut_for_benefits(
                conn,
                chunk,
                ctx.actor,
                &format!("{} の取込", ctx.file_name),
                ctx.today,
            )?);
        }

        let unchanged = diesel::sql_query("SELECT 1 FROM stage_benefit_replace WHERE NOT changed")
            .execute(conn)?;
        summary.import_id = Some(import_id);
        summary.inserted = count(inserted);
        summary.updated = count(updated);
        summary.unchanged = count(unchanged);
        summary.certificates_cut = cut;
        summary.warnings = counter.warnings;
        summary.applied = true;
        finish_journal(conn, import_id, &summary)?;
        Ok(summary)
    })
}
