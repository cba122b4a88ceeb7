//! linkages.csv: My Number linkages to registered persons.
//!
//! Each number is sealed (AES-256-GCM) and blind-indexed (HMAC-SHA256) on the rayon pool while
//! the file is validated; the plain number never reaches the database, a log or a report. A
//! linkage is identified by (person, number): re-importing one updates its source and date.
//! A number with a wrong check digit is stored and flagged (formats.md: nothing is lost); a
//! number also linked to another person is stored with a warning and left to the audit.
//!
//! Every new (person, number) pair goes through the registration-time check
//! ([`crate::identity_check`]) in one join of the file's new pairs with the persons and the
//! latest register snapshot, read through a cursor and compared on the rayon pool: a pair whose
//! person differs from the register on any of the five items is refused (reported as
//! [`IssueLevel::Rejected`] with its line and the items) and the rest of the file is applied;
//! a pair the register has no record for is stored unconfirmed with an `identity_not_checked`
//! event. Pairs already stored are not checked again: re-importing a file changes nothing.

use std::io::Read;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, Int8, Nullable, Text};
use rayon::prelude::*;
use shikaku_domain::finding::Field;
use shikaku_domain::records::{self, FileKind, LinkageRow};
use shikaku_domain::Keyring;

use crate::error::DbError;
use crate::identity_check::{self, ItemsPair, NotChecked, PAIR_COLUMNS};

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
        reg_blind -> Nullable<Bytea>,
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
    linked_on date NOT NULL,
    reg_blind bytea
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
    /// The blind index under the latest snapshot's index key, when that is not the current
    /// one (a snapshot imported before `keys rotate-index`); NULL means `mn_blind`.
    reg_blind: Option<Vec<u8>>,
}

impl StageLinkage {
    fn new(keyring: &Keyring, snapshot_key: Option<u32>, line: u64, row: LinkageRow) -> Self {
        let digits = row.my_number.expose_digits();
        let reg_blind = snapshot_key
            .filter(|k| *k != keyring.index_key_id())
            .and_then(|k| keyring.blind_index_with(k, digits))
            .map(|b| b.as_bytes().to_vec());
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
            reg_blind,
        }
    }
}

/// Where the file's new pairs are compared: the latest snapshot, when its indexes can be
/// matched, or why nothing can be.
#[derive(Debug, Clone, Copy)]
enum Register {
    /// The snapshot to compare with, and its index key.
    Snapshot { id: i64, key: u32 },
    /// Nothing to compare with: every new pair is stored unchecked, for this reason.
    Unchecked {
        snapshot_id: Option<i64>,
        why: NotChecked,
    },
}

impl Register {
    fn of(conn: &mut PgConnection, keyring: &Keyring) -> Result<Register, DbError> {
        Ok(match identity_check::latest_snapshot(conn)? {
            None => Register::Unchecked {
                snapshot_id: None,
                why: NotChecked::NoSnapshot,
            },
            Some(s) => match s.key_held(keyring) {
                Some(key) => Register::Snapshot { id: s.id, key },
                None => Register::Unchecked {
                    snapshot_id: Some(s.id),
                    why: NotChecked::OtherIndexKey,
                },
            },
        })
    }

    fn snapshot_key(self) -> Option<u32> {
        match self {
            Register::Snapshot { key, .. } => Some(key),
            Register::Unchecked { .. } => None,
        }
    }

    /// The snapshot joined with (none when unchecked), the snapshot named in events, and why
    /// a pair without a record was not checked.
    fn for_events(self) -> (Option<i64>, Option<i64>, NotChecked) {
        match self {
            Register::Snapshot { id, .. } => (Some(id), Some(id), NotChecked::NoRecord),
            Register::Unchecked { snapshot_id, why } => (None, snapshot_id, why),
        }
    }
}

/// Rows of the identity join fetched per round trip: bounded memory on any file.
const CHECK_FETCH: usize = 20_000;

/// One new pair with a register record, as the identity join reads it.
#[derive(QueryableByName)]
struct CheckRow {
    #[diesel(sql_type = Int8)]
    line: i64,
    #[diesel(embed)]
    pair: ItemsPair,
}

/// The registration-time check of every new pair of the file with a record in snapshot
/// `snapshot_id`: one join, read through a cursor in batches of [`CHECK_FETCH`], compared on the
/// rayon pool. Returns the refused lines with their differing items, in line order.
fn identity_rejections(
    conn: &mut PgConnection,
    snapshot_id: i64,
) -> Result<Vec<(i64, Vec<Field>)>, DbError> {
    // The snapshot id is a bigint read from the database, not user input.
    conn.batch_execute(&format!(
        "DECLARE identity_check NO SCROLL CURSOR FOR
         SELECT s.line, {PAIR_COLUMNS}
           FROM stage_linkage_last s
           JOIN persons p ON p.id = s.person_id
           JOIN resident_records r
             ON r.snapshot_id = {snapshot_id} AND r.mn_blind = coalesce(s.reg_blind, s.mn_blind)
          WHERE NOT EXISTS (SELECT 1 FROM linkages l
                            WHERE l.person_id = s.person_id AND l.mn_blind = s.mn_blind)
          ORDER BY s.line"
    ))?;
    let mut rejected = Vec::new();
    loop {
        let rows: Vec<CheckRow> =
            diesel::sql_query(format!("FETCH {CHECK_FETCH} FROM identity_check")).load(conn)?;
        if rows.is_empty() {
            break;
        }
        let judged: Vec<Option<(i64, Vec<Field>)>> = rows
            .into_par_iter()
            .map(|row| {
                let line = row.line;
                Ok(row
                    .pair
                    .verdict()?
                    .filter(|v| !v.matches())
                    .map(|v| (line, v.differing)))
            })
            .collect::<Result<_, DbError>>()?;
        rejected.extend(judged.into_iter().flatten());
    }
    conn.batch_execute("CLOSE identity_check")?;
    Ok(rejected)
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
        // Imports are serialised, so no snapshot arrives while this one runs.
        let register = Register::of(conn, keyring)?;
        let snapshot_key = register.snapshot_key();
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
                    (
                        StageLinkage::new(keyring, snapshot_key, line, row),
                        warnings,
                    )
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

        // The registration-time check: refused pairs leave the staging table, and with it the
        // merge, the warnings and the counts below.
        if let Register::Snapshot { id, .. } = register {
            let rejected = identity_rejections(conn, id)?;
            let lines: Vec<i64> = rejected.iter().map(|(line, _)| *line).collect();
            diesel::sql_query("DELETE FROM stage_linkage_last WHERE line = ANY($1)")
                .bind::<Array<Int8>, _>(&lines)
                .execute(conn)?;
            for (line, items) in &rejected {
                counter.rejected(
                    u64::try_from(*line).unwrap_or(0),
                    identity_check::item_names(items),
                    format!(
                        "refused: the person's 5 items differ from the resident register ({}); \
                         this linkage is not stored. Correct the person, or register the number \
                         with a 理由付き疑いなし reason",
                        identity_check::item_labels(items)
                    ),
                );
            }
            summary.rejected = counter.rejected;
        }

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
        // What is left of the new pairs either matched the register (a record exists: the
        // mismatches were removed above) or was not checked, which its event says.
        let (joined, named, why) = register.for_events();
        let inserted = diesel::sql_query(
            "WITH ins AS (
               INSERT INTO linkages (person_id, mn_blind, mn_sealed, mn_key_id, mn_last4,
                                     check_digit_ok, source, linked_on, import_id,
                                     mn_bound, mn_index_key_id, identity_confirmed)
               SELECT s.person_id, s.mn_blind, s.mn_sealed, s.mn_key_id, s.mn_last4,
                      s.check_digit_ok, s.source, s.linked_on, $1, true, $2,
                      r.mn_blind IS NOT NULL
               FROM stage_linkage_last s
               LEFT JOIN resident_records r
                 ON r.snapshot_id = $3 AND r.mn_blind = coalesce(s.reg_blind, s.mn_blind)
               WHERE NOT EXISTS (SELECT 1 FROM linkages l
                                 WHERE l.person_id = s.person_id AND l.mn_blind = s.mn_blind)
               ORDER BY s.person_id
               RETURNING id, identity_confirmed
             ), unchecked AS (
               INSERT INTO linkage_events (linkage_id, action, actor, import_id, details)
               SELECT id, 'identity_not_checked', $5, $1,
                      jsonb_build_object('identity_check', 'not_checked', 'why', $6::text,
                                         'snapshot_id', $4::bigint)
               FROM ins WHERE NOT identity_confirmed
             )
             SELECT count(*) AS n FROM ins",
        )
        .bind::<Int8, _>(import_id)
        .bind::<diesel::sql_types::Integer, _>(
            i32::try_from(keyring.index_key_id()).unwrap_or(i32::MAX),
        )
        .bind::<Nullable<Int8>, _>(joined)
        .bind::<Nullable<Int8>, _>(named)
        .bind::<Text, _>(ctx.actor)
        .bind::<Text, _>(why.as_str())
        .get_result::<super::persons::Count>(conn)?
        .n;
        let distinct: i64 = diesel::sql_query("SELECT count(*) AS n FROM stage_linkage_last")
            .get_result::<super::persons::Count>(conn)?
            .n;

        summary.import_id = Some(import_id);
        summary.inserted = u64::try_from(inserted).unwrap_or(0);
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
