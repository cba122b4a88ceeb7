//! residents.csv: a resident-register (住基) extract of the five items for linked numbers.
//!
//! Each import becomes a new snapshot; the audit compares against the latest one. A number may
//! appear only once in a snapshot. Numbers are kept only as blind index and last 4 digits: the
//! register is matched against linkages, never read back as numbers.

use std::io::Read;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Int8, Text};
use shikaku_domain::records::{self, FileKind, ResidentRow};
use shikaku_domain::Keyring;

use super::{
    check_digit_warnings, count, finish_journal, in_transaction, prepare_session, report_lines,
    start_journal, stream_rows, Counter, ImportContext, ImportError, ImportSummary, IssueLevel,
    IssueSink,
};

diesel::table! {
    /// Temporary staging table for one residents.csv import.
    stage_residents (line) {
        line -> Int8,
        mn_blind -> Bytea,
        mn_last4 -> Text,
        check_digit_ok -> Bool,
        name_kanji -> Text,
        name_kana -> Nullable<Text>,
        birth_date -> Date,
        sex -> Int2,
        address -> Nullable<Text>,
        status -> Text,
    }
}

const CREATE_STAGE: &str = "
CREATE TEMP TABLE stage_residents (
    line bigint NOT NULL,
    mn_blind bytea NOT NULL,
    mn_last4 text NOT NULL,
    check_digit_ok boolean NOT NULL,
    name_kanji text NOT NULL,
    name_kana text,
    birth_date date NOT NULL,
    sex smallint NOT NULL,
    address text,
    status text NOT NULL
) ON COMMIT DROP";

#[derive(Insertable)]
#[diesel(table_name = stage_residents)]
#[diesel(treat_none_as_default_value = false)]
struct StageResident {
    line: i64,
    mn_blind: Vec<u8>,
    mn_last4: String,
    check_digit_ok: bool,
    name_kanji: String,
    name_kana: Option<String>,
    birth_date: chrono::NaiveDate,
    sex: i16,
    address: Option<String>,
    status: String,
}

impl StageResident {
    fn new(keyring: &Keyring, line: u64, row: ResidentRow) -> Self {
        StageResident {
            line: super::to_i64(line),
            mn_blind: keyring
                .blind_index(row.my_number.expose_digits())
                .as_bytes()
                .to_vec(),
            mn_last4: row.my_number.last4().to_string(),
            check_digit_ok: row.my_number.check_digit_ok(),
            name_kanji: row.name_kanji,
            name_kana: row.name_kana,
            birth_date: row.birth_date,
            sex: row.sex.code(),
            address: row.address,
            status: row.status.as_str().to_string(),
        }
    }
}

/// Imports a residents.csv stream as a new snapshot.
pub fn import_residents<R: Read>(
    conn: &mut PgConnection,
    ctx: &ImportContext<'_>,
    keyring: &Keyring,
    input: R,
    sink: &mut dyn IssueSink,
) -> Result<ImportSummary, ImportError> {
    in_transaction(conn, |conn| {
        let mut counter = Counter::new(sink);
        prepare_session(conn)?;
        // The snapshot is indexed under the current key; the linkages must be too, or the
        // audit could not compare them.
        crate::keys::check_index(conn, keyring, None)?;
        conn.batch_execute(CREATE_STAGE)?;
        let rows_read = stream_rows(
            input,
            FileKind::Residents.into(),
            ctx,
            &mut counter,
            |layout, line, record| {
                records::resident_row(layout, record).map(|row| {
                    let warnings = check_digit_warnings(&row.my_number, "stored as given");
                    (StageResident::new(keyring, line, row), warnings)
                })
            },
            |rows| {
                diesel::copy_from(stage_residents::table)
                    .from_insertable(rows)
                    .execute(conn)?;
                Ok(())
            },
        )?;
        conn.batch_execute("ANALYZE stage_residents (mn_blind);")?;
        report_lines(
            conn,
            &mut counter,
            IssueLevel::Error,
            "my_number",
            "SELECT line, 'this number (last 4: ' || mn_last4 || ') already appears on line '
                    || first_line || '; a snapshot holds each number once' AS message
             FROM (SELECT line, mn_last4,
                          first_value(line) OVER (PARTITION BY mn_blind ORDER BY line) AS first_line
                   FROM stage_residents) d
             WHERE line <> first_line
             ORDER BY line",
        )?;

        let mut summary = counter.verdict(rows_read)?;

        let import_id = start_journal(conn, "residents", ctx)?;
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = Int8)]
            id: i64,
        }
        let snapshot: Id = diesel::sql_query(
            "INSERT INTO resident_snapshots (import_id, file_name, rows, index_key_id)
             SELECT $1, $2, count(*), $3 FROM stage_residents RETURNING id",
        )
        .bind::<Int8, _>(import_id)
        .bind::<Text, _>(ctx.file_name)
        .bind::<diesel::sql_types::Integer, _>(
            i32::try_from(keyring.index_key_id()).unwrap_or(i32::MAX),
        )
        .get_result(conn)?;
        let inserted = diesel::sql_query(
            "INSERT INTO resident_records (snapshot_id, mn_blind, mn_last4, check_digit_ok,
                                           name_kanji, name_kana, birth_date, sex, address, status)
             SELECT $1, mn_blind, mn_last4, check_digit_ok, name_kanji, name_kana, birth_date,
                    sex, address, status
             FROM stage_residents ORDER BY mn_blind",
        )
        .bind::<Int8, _>(snapshot.id)
        .execute(conn)?;

        summary.import_id = Some(import_id);
        summary.snapshot_id = Some(snapshot.id);
        summary.inserted = count(inserted);
        summary.warnings = counter.warnings;
        summary.applied = true;
        finish_journal(conn, import_id, &summary)?;
        Ok(summary)
    })
}
