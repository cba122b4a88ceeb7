//! linkages.csv: My Number linkages to registered persons.
//!
//! Each number is sealed (AES-256-GCM) and blind-indexed (HMAC-SHA256) on the rayon pool while
//! the file is validated; the plain number never reaches the database, a log or a report. A
//! linkage is identified by (person, number): re-importing one updates its source and date.
//! A number with a wrong check digit is stored and flagged (formats.md: nothing is lost); a
//! number also linked to another person is stored with a warning and left to the audit.

use std::io::Read;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Int8, Text};
use shikaku_domain::records::{self, FileKind, LinkageRow};
use shikaku_domain::Keyring;

use super::{
    check_digit_warnings, count, finish_journal, in_transaction, prepare_session, report_lines,
    start_journal, stream_rows, Counter, ImportContext, ImportError, ImportSummary, IssueLevel,
    IssueSink,
};

diesel::table! {
    /// Temporary staging table for one linkages.csv import.
    stage_linkages (line) {
        line -> Int8,
        insurer_number -> Text,
        symbol -> Text,
        number -> Text,
        branch -> Text,
        mn_blind -> Bytea,
        mn_sealed -> Bytea,
        mn_key_id -> Int4,
        mn_last4 -> Text,
        check_digit_ok -> Bool,
        source -> Text,
        linked_on -> Date,
    }
}

const CREATE_STAGE: &str = r#"
CREATE TEMP TABLE stage_linkages (
    line bigint NOT NULL,
    insurer_number text COLLATE "C" NOT NULL,
    symbol text COLLATE "C" NOT NULL,
    number text COLLATE "C" NOT NULL,
    branch text COLLATE "C" NOT NULL,
    mn_blind bytea NOT NULL,
    mn_sealed bytea NOT NULL,
    mn_key_id integer NOT NULL,
    mn_last4 text NOT NULL,
    check_digit_ok boolean NOT NULL,
    source text NOT NULL,
    linked_on date NOT NULL
) ON COMMIT DROP"#;

#[derive(Insertable)]
#[diesel(table_name = stage_linkages)]
#[diesel(treat_none_as_default_value = false)]
struct StageLinkage {
    line: i64,
    insurer_number: String,
    symbol: String,
    number: String,
    branch: String,
    mn_blind: Vec<u8>,
    mn_sealed: Vec<u8>,
    mn_key_id: i32,
    mn_last4: String,
    check_digit_ok: bool,
    source: String,
    linked_on: chrono::NaiveDate,
}

impl StageLinkage {
    fn new(keyring: &Keyring, line: u64, row: LinkageRow) -> Self {
        let digits = row.my_number.expose_digits();
        let sealed = keyring.seal(digits);
        let key = super::KeyColumns::of(&row.key);
        StageLinkage {
            line: super::to_i64(line),
            insurer_number: key.insurer_number,
            symbol: key.symbol,
            number: key.number,
            branch: key.branch,
            mn_blind: keyring.blind_index(digits).as_bytes().to_vec(),
            mn_sealed: sealed.ciphertext,
            mn_key_id: i32::try_from(sealed.key_id).unwrap_or(i32::MAX),
            mn_last4: row.my_number.last4().to_string(),
            check_digit_ok: row.my_number.check_digit_ok(),
            source: row.source.as_str().to_string(),
            linked_on: row.linked_on,
        }
    }
}

/// Imports a linkages.csv stream, sealing every number with `keyring`'s current key.
pub fn import_linkages<R: Read>(
    conn: &mut PgConnection,
    ctx: &ImportContext<'_>,
    keyring: &Keyring,
    input: R,
    sink: &mut dyn IssueSink,
) -> Result<ImportSummary, ImportError> {
    in_transaction(conn, |conn| {
        let mut counter = Counter::new(sink);
        prepare_session(conn)?;
        // New rows are matched to stored ones by blind index: both must be under one key.
        crate::keys::check_index(conn, keyring, None)?;
        conn.batch_execute(CREATE_STAGE)?;
        let rows_read = stream_rows(
            input,
            FileKind::Linkages.into(),
            ctx,
            &mut counter,
            |layout, line, record| {
                records::linkage_row(layout, record).map(|row| {
                    let warnings =
                        check_digit_warnings(&row.my_number, "stored and flagged for the audit");
                    (StageLinkage::new(keyring, line, row), warnings)
                })
            },
            |rows| {
                diesel::copy_from(stage_linkages::table)
                    .from_insertable(rows)
                    .execute(conn)?;
                Ok(())
            },
        )?;
        conn.batch_execute(
            "ANALYZE stage_linkages (insurer_number, symbol, number, branch, mn_blind);
             CREATE TEMP TABLE stage_linkage_last ON COMMIT DROP AS
               SELECT DISTINCT ON (p.id, s.mn_blind) s.*, p.id AS person_id
               FROM stage_linkages s
               JOIN persons p USING (insurer_number, symbol, number, branch)
               ORDER BY p.id, s.mn_blind, s.line DESC;
             ANALYZE stage_linkage_last (person_id, mn_blind);",
        )?;
        report_lines(
            conn,
            &mut counter,
            IssueLevel::Error,
            "number",
            "SELECT s.line, 'no person ' || s.insurer_number || ':' || s.symbol || ':' || s.number
                    || ':' || s.branch || ' is registered; import persons.csv first' AS message
             FROM stage_linkages s
             WHERE NOT EXISTS (SELECT 1 FROM persons p
                               WHERE (p.insurer_number, p.symbol, p.number, p.branch)
                                   = (s.insurer_number, s.symbol, s.number, s.branch))
             ORDER BY s.line",
        )?;

        let mut summary = counter.verdict(rows_read)?;

        report_lines(
            conn,
            &mut counter,
            IssueLevel::Warning,
            "my_number",
            // Joins, not `EXISTS .. OR EXISTS ..`: PostgreSQL runs an OR of sublinks as a
            // subplan per row, which on a million-row file is a quadratic scan.
            "WITH pairs AS (
                SELECT mn_blind, person_id FROM stage_linkage_last
                UNION
                SELECT l.mn_blind, l.person_id
                FROM linkages l
                WHERE l.mn_blind IN (SELECT mn_blind FROM stage_linkage_last)
             ), shared AS (
                SELECT mn_blind FROM pairs GROUP BY mn_blind HAVING count(*) > 1
             )
             SELECT s.line, 'this number (last 4: ' || s.mn_last4 || ') is also linked to another '
                    || 'person; stored, and the linkage audit will review it' AS message
             FROM stage_linkage_last s JOIN shared USING (mn_blind)
             ORDER BY s.line",
        )?;

        // Who the "also linked" warnings are about: stored persons holding a number of the
        // file under another key. The caller logs them, since the warnings reveal them.
        #[derive(diesel::QueryableByName)]
        struct Pid {
            #[diesel(sql_type = Int8)]
            person_id: i64,
        }
        let revealed: Vec<i64> = diesel::sql_query(format!(
            "SELECT DISTINCT l.person_id FROM linkages l
               JOIN stage_linkage_last s ON s.mn_blind = l.mn_blind AND s.person_id <> l.person_id
              WHERE l.status <> 'revoked'
              ORDER BY l.person_id LIMIT {}",
            super::REVEALED_CAP + 1
        ))
        .load::<Pid>(conn)?
        .into_iter()
        .map(|p| p.person_id)
        .collect();
        summary.revealed_more = revealed.len() > super::REVEALED_CAP;
        summary.revealed_persons = revealed.into_iter().take(super::REVEALED_CAP).collect();

        let import_id = start_journal(conn, "linkages", ctx)?;
        diesel::sql_query(
            "INSERT INTO linkage_events (linkage_id, action, actor, import_id, details)
             SELECT l.id, 'updated', $2, $1,
                    jsonb_build_object('source', jsonb_build_object('old', l.source, 'new', s.source),
                                       'linked_on', jsonb_build_object('old', l.linked_on, 'new', s.linked_on))
             FROM linkages l
             JOIN stage_linkage_last s ON s.person_id = l.person_id AND s.mn_blind = l.mn_blind
             WHERE (l.source, l.linked_on) IS DISTINCT FROM (s.source, s.linked_on)",
        )
        .bind::<Int8, _>(import_id)
        .bind::<Text, _>(ctx.actor)
        .execute(conn)?;
        let updated = diesel::sql_query(
            "UPDATE linkages l
             SET source = s.source, linked_on = s.linked_on, import_id = $1, updated_at = now()
             FROM stage_linkage_last s
             WHERE s.person_id = l.person_id AND s.mn_blind = l.mn_blind
               AND (l.source, l.linked_on) IS DISTINCT FROM (s.source, s.linked_on)",
        )
        .bind::<Int8, _>(import_id)
        .execute(conn)?;
        let inserted = diesel::sql_query(
            "INSERT INTO linkages (person_id, mn_blind, mn_sealed, mn_key_id, mn_last4,
                                   check_digit_ok, source, linked_on, import_id,
                                   mn_bound, mn_index_key_id)
             SELECT person_id, mn_blind, mn_sealed, mn_key_id, mn_last4, check_digit_ok, source,
                    linked_on, $1, true, $2
             FROM stage_linkage_last s
             WHERE NOT EXISTS (SELECT 1 FROM linkages l
                               WHERE l.person_id = s.person_id AND l.mn_blind = s.mn_blind)
             ORDER BY person_id",
        )
        .bind::<Int8, _>(import_id)
        .bind::<diesel::sql_types::Integer, _>(
            i32::try_from(keyring.index_key_id()).unwrap_or(i32::MAX),
        )
        .execute(conn)?;
        let distinct: i64 = diesel::sql_query("SELECT count(*) AS n FROM stage_linkage_last")
            .get_result::<super::persons::Count>(conn)?
            .n;

        summary.import_id = Some(import_id);
        summary.inserted = count(inserted);
        summary.updated = count(updated);
        summary.unchanged = u64::try_from(distinct)
            .unwrap_or(0)
            .saturating_sub(summary.inserted + summary.updated);
        summary.warnings = counter.warnings;
        summary.applied = true;
        finish_journal(conn, import_id, &summary)?;
        Ok(summary)
    })
}
