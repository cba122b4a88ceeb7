//! persons.csv: insured persons, dependants and their qualification periods.
//!
//! A file may hold several rows for one person key (an old closed period and a current one);
//! the person's attributes come from the key's last row, and every row contributes its period.
//! A period is identified by its 資格取得日: a row whose period starts on a stored period's date
//! updates it (typically recording the loss), any other row adds a period. Overlaps, whether
//! inside the file or against stored history, are reported with the offending line.

use std::io::Read;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Int8, Text};
use shikaku_domain::records::{self, FileKind, PersonRow};

use super::{
    count, finish_journal, in_transaction, prepare_session, report_lines, start_journal,
    stream_rows, Counter, ImportContext, ImportError, ImportSummary, IssueLevel, IssueSink,
    Outcome,
};

diesel::table! {
    /// Temporary staging table for one persons.csv import.
    stage_persons (line) {
        line -> Int8,
        insurer_number -> Text,
        symbol -> Text,
        number -> Text,
        branch -> Text,
        relationship -> Int2,
        name_kanji -> Text,
        name_kana -> Text,
        kana_key -> Text,
        birth_date -> Date,
        sex -> Int2,
        postal_code -> Nullable<Text>,
        address -> Nullable<Text>,
        acquired_on -> Date,
        lost_on -> Nullable<Date>,
        loss_reason -> Nullable<Text>,
        copay_rate -> Nullable<Int2>,
        voluntary_until -> Nullable<Date>,
        residence_until -> Nullable<Date>,
        certificate_requested -> Nullable<Bool>,
        keep_voluntary -> Bool,
        keep_residence -> Bool,
    }
}

const CREATE_STAGE: &str = r#"
CREATE TEMP TABLE stage_persons (
    line bigint NOT NULL,
    insurer_number text COLLATE "C" NOT NULL,
    symbol text COLLATE "C" NOT NULL,
    number text COLLATE "C" NOT NULL,
    branch text COLLATE "C" NOT NULL,
    relationship smallint NOT NULL,
    name_kanji text NOT NULL,
    name_kana text NOT NULL,
    kana_key text COLLATE "C" NOT NULL,
    birth_date date NOT NULL,
    sex smallint NOT NULL,
    postal_code text,
    address text,
    acquired_on date NOT NULL,
    lost_on date,
    loss_reason text,
    copay_rate smallint,
    voluntary_until date,
    residence_until date,
    certificate_requested boolean,
    keep_voluntary boolean NOT NULL,
    keep_residence boolean NOT NULL
) ON COMMIT DROP"#;

/// A validated persons.csv row as staged.
#[derive(Insertable)]
#[diesel(table_name = stage_persons)]
#[diesel(treat_none_as_default_value = false)]
struct StagePerson {
    line: i64,
    insurer_number: String,
    symbol: String,
    number: String,
    branch: String,
    relationship: i16,
    name_kanji: String,
    name_kana: String,
    kana_key: String,
    birth_date: chrono::NaiveDate,
    sex: i16,
    postal_code: Option<String>,
    address: Option<String>,
    acquired_on: chrono::NaiveDate,
    lost_on: Option<chrono::NaiveDate>,
    loss_reason: Option<String>,
    copay_rate: Option<i16>,
    voluntary_until: Option<chrono::NaiveDate>,
    residence_until: Option<chrono::NaiveDate>,
    /// `None` when the file has no such column: the stored value is kept.
    certificate_requested: Option<bool>,
    /// The file has no voluntary_until column (an older layout): the stored value is kept.
    keep_voluntary: bool,
    /// The same for residence_until.
    keep_residence: bool,
}

impl StagePerson {
    fn new(line: u64, row: PersonRow) -> Self {
        let kana_key = row.name_kana.search_key();
        let key = super::KeyColumns::of(&row.key);
        StagePerson {
            line: super::to_i64(line),
            insurer_number: key.insurer_number,
            symbol: key.symbol,
            number: key.number,
            branch: key.branch,
            relationship: row.relationship.code(),
            name_kanji: row.name_kanji.as_str().to_string(),
            name_kana: row.name_kana.as_str().to_string(),
            kana_key,
            birth_date: row.birth_date,
            sex: row.sex.code(),
            postal_code: row.postal_code.map(|p| p.as_str().to_string()),
            address: row.address,
            acquired_on: row.acquired_on,
            lost_on: row.lost_on,
            loss_reason: row.loss_reason.map(|r| r.as_str().to_string()),
            copay_rate: row.copay_rate.map(|c| i16::from(c.percent())),
            keep_voluntary: row.voluntary_until.is_none(),
            keep_residence: row.residence_until.is_none(),
            voluntary_until: row.voluntary_until.flatten(),
            residence_until: row.residence_until.flatten(),
            certificate_requested: row.certificate_requested,
        }
    }
}

/// Imports a persons.csv stream. Returns the summary; `applied` is false when any error was
/// found, in which case nothing was stored.
pub fn import_persons<R: Read>(
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
            FileKind::Persons.into(),
            ctx,
            &mut counter,
            |layout, line, record| {
                records::person_row(layout, record)
                    .map(|(row, warnings)| (StagePerson::new(line, row), warnings))
            },
            |rows| {
                diesel::copy_from(stage_persons::table)
                    .from_insertable(rows)
                    .execute(conn)?;
                Ok(())
            },
        )?;
        conn.batch_execute(
            "ANALYZE stage_persons (insurer_number, symbol, number, branch, acquired_on);
             CREATE TEMP TABLE stage_person_last ON COMMIT DROP AS
               SELECT DISTINCT ON (insurer_number, symbol, number, branch) *
               FROM stage_persons
               ORDER BY insurer_number, symbol, number, branch, line DESC;
             ANALYZE stage_person_last (insurer_number, symbol, number, branch);
             -- An older file without the certificate columns keeps what is stored.
             UPDATE stage_person_last l
                SET voluntary_until = CASE WHEN l.keep_voluntary THEN p.voluntary_until
                                           ELSE l.voluntary_until END,
                    residence_until = CASE WHEN l.keep_residence THEN p.residence_until
                                           ELSE l.residence_until END,
                    certificate_requested = coalesce(l.certificate_requested,
                                                     p.certificate_requested)
               FROM persons p
              WHERE (p.insurer_number, p.symbol, p.number, p.branch)
                  = (l.insurer_number, l.symbol, l.number, l.branch)
                AND (l.keep_voluntary OR l.keep_residence OR l.certificate_requested IS NULL);",
        )?;
        check_periods(conn, &mut counter)?;

        let mut summary = counter.verdict(rows_read)?;

        let import_id = start_journal(conn, "persons", ctx)?;
        register_unknown_insurers(conn, &mut counter)?;
        let (inserted, _) = merge_persons(conn, import_id, ctx.actor)?;
        merge_periods(conn, import_id, ctx.actor)?;
        follow_the_insured(conn, &mut counter, import_id, ctx.actor)?;
        // Certificates of a loss whose date has come are revoked now, not at the next daily
        // run; those of a loss still ahead stay valid until the day before it.
        crate::certificates::settle(
            conn,
            crate::certificates::Scope::StagedLosses,
            ctx.today,
            ctx.actor,
        )?;
        // A stored person counts as updated when their attributes or any of their periods
        // changed (a recorded loss is a change): exactly the persons this import wrote history
        // for, since history is only written for persons that existed before it.
        let updated: i64 = diesel::sql_query(
            "SELECT count(DISTINCT person_id) AS n FROM person_changes WHERE import_id = $1",
        )
        .bind::<Int8, _>(import_id)
        .get_result::<Count>(conn)?
        .n;
        let updated = u64::try_from(updated).unwrap_or(0);

        let keys: i64 = diesel::sql_query("SELECT count(*) AS n FROM stage_person_last")
            .get_result::<Count>(conn)?
            .n;
        summary.import_id = Some(import_id);
        summary.inserted = inserted;
        summary.updated = updated;
        summary.unchanged = u64::try_from(keys)
            .unwrap_or(0)
            .saturating_sub(inserted + updated);
        summary.warnings = counter.warnings;
        summary.applied = true;
        finish_journal(conn, import_id, &summary)?;
        Ok(summary)
    })
}

#[derive(QueryableByName)]
pub(super) struct Count {
    #[diesel(sql_type = Int8)]
    pub(super) n: i64,
}

/// Reports periods that would overlap once the file is applied: the file's periods (the last
/// row wins for a repeated 資格取得日) together with the stored periods the file does not
/// replace. Sorted by start, any overlap shows up between neighbours, so a window over
/// adjacent periods finds every person with one.
fn check_periods(conn: &mut PgConnection, counter: &mut Counter<'_>) -> Result<(), Outcome> {
    conn.batch_execute(
        "CREATE TEMP TABLE stage_periods ON COMMIT DROP AS
           SELECT DISTINCT ON (s.insurer_number, s.symbol, s.number, s.branch, s.acquired_on)
                  s.line, p.id AS person_id, s.insurer_number, s.symbol, s.number, s.branch,
                  s.acquired_on, s.lost_on, s.loss_reason
           FROM stage_persons s
           LEFT JOIN persons p USING (insurer_number, symbol, number, branch)
           ORDER BY s.insurer_number, s.symbol, s.number, s.branch, s.acquired_on, s.line DESC;
         ANALYZE stage_periods (person_id, acquired_on);",
    )?;
    report_lines(
        conn,
        counter,
        IssueLevel::Error,
        "acquired_on",
        "WITH periods AS (
            SELECT line, insurer_number, symbol, number, branch, acquired_on, lost_on
            FROM stage_periods
            UNION ALL
            SELECT NULL, p.insurer_number, p.symbol, p.number, p.branch, q.acquired_on, q.lost_on
            FROM qualifications q
            JOIN persons p ON p.id = q.person_id
            WHERE q.person_id IN (SELECT person_id FROM stage_periods WHERE person_id IS NOT NULL)
              AND NOT EXISTS (SELECT 1 FROM stage_periods f
                              WHERE f.person_id = q.person_id AND f.acquired_on = q.acquired_on)
         ), ordered AS (
            SELECT line, acquired_on, lost_on,
                   lag(line) OVER w AS prev_line,
                   lag(acquired_on) OVER w AS prev_acquired,
                   lag(lost_on) OVER w AS prev_lost,
                   row_number() OVER w AS n
            FROM periods
            WINDOW w AS (PARTITION BY insurer_number, symbol, number, branch ORDER BY acquired_on)
         )
         SELECT coalesce(line, prev_line) AS line,
                'qualification period ' || prev_acquired || '..' || coalesce(prev_lost::text, '(open)')
                || ' overlaps period ' || acquired_on || '..' || coalesce(lost_on::text, '(open)')
                || CASE WHEN prev_line IS NULL THEN ' (the first is already stored)'
                        WHEN line IS NULL THEN ' (the second is already stored)'
                        ELSE ' (the first is on line ' || prev_line || ')' END AS message
         FROM ordered
         WHERE n > 1 AND (prev_lost IS NULL OR prev_lost > acquired_on)
         ORDER BY 1",
    )?;
    Ok(())
}

/// An insurer number first seen in an import is registered with an empty name rather than
/// rejecting the file; the warning tells the administrator to name it.
fn register_unknown_insurers(
    conn: &mut PgConnection,
    counter: &mut Counter<'_>,
) -> Result<(), Outcome> {
    report_lines(
        conn,
        counter,
        IssueLevel::Warning,
        "insurer_number",
        "WITH added AS (
            INSERT INTO insurers (insurer_number)
            SELECT DISTINCT insurer_number FROM stage_persons
            ON CONFLICT DO NOTHING
            RETURNING insurer_number
         )
         SELECT min(s.line) AS line,
                'insurer ' || a.insurer_number || ' was not registered; added with an empty name '
                || '(set it with: shikaku insurers add ' || a.insurer_number || ' --name ...)' AS message
         FROM added a JOIN stage_persons s USING (insurer_number)
         GROUP BY a.insurer_number
         ORDER BY 1",
    )?;
    Ok(())
}

/// Updates changed persons (recording the old and new value of every changed field) and
/// inserts new ones. Returns (inserted, updated).
fn merge_persons(
    conn: &mut PgConnection,
    import_id: i64,
    actor: &str,
) -> Result<(u64, u64), Outcome> {
    const FIELDS: &str = "'relationship', {t}.relationship, 'name_kanji', {t}.name_kanji, \
        'name_kana', {t}.name_kana, 'birth_date', {t}.birth_date, 'sex', {t}.sex, \
        'postal_code', {t}.postal_code, 'address', {t}.address, 'copay_rate', {t}.copay_rate, \
        'voluntary_until', {t}.voluntary_until, 'residence_until', {t}.residence_until, \
        'certificate_requested', coalesce({t}.certificate_requested, false)";
    let old = FIELDS.replace("{t}", "p");
    let new = FIELDS.replace("{t}", "l");
    conn.batch_execute(&format!(
        "CREATE TEMP TABLE stage_person_diff ON COMMIT DROP AS
         SELECT p.id, l.line,
                (SELECT jsonb_object_agg(o.key, jsonb_build_object('old', o.value, 'new', n.value))
                 FROM jsonb_each(jsonb_build_object({old})) o
                 JOIN jsonb_each(jsonb_build_object({new})) n USING (key)
                 WHERE o.value IS DISTINCT FROM n.value) AS changes
         FROM persons p
         JOIN stage_person_last l USING (insurer_number, symbol, number, branch);
         DELETE FROM stage_person_diff WHERE changes IS NULL;"
    ))?;
    diesel::sql_query(
        "INSERT INTO person_changes (person_id, import_id, actor, action, changes)
         SELECT id, $1, $2, 'updated', changes FROM stage_person_diff ORDER BY id",
    )
    .bind::<Int8, _>(import_id)
    .bind::<Text, _>(actor)
    .execute(conn)?;
    let updated = diesel::sql_query(
        "UPDATE persons p
         SET relationship = l.relationship, name_kanji = l.name_kanji, name_kana = l.name_kana,
             kana_key = l.kana_key, birth_date = l.birth_date, sex = l.sex,
             postal_code = l.postal_code, address = l.address, copay_rate = l.copay_rate,
             voluntary_until = l.voluntary_until, residence_until = l.residence_until,
             certificate_requested = coalesce(l.certificate_requested, false),
             import_id = $1, updated_at = now()
         FROM stage_person_diff d, stage_person_last l
         WHERE p.id = d.id AND l.line = d.line",
    )
    .bind::<Int8, _>(import_id)
    .execute(conn)?;
    let inserted = diesel::sql_query(
        "INSERT INTO persons (insurer_number, symbol, number, branch, relationship, name_kanji,
                              name_kana, kana_key, birth_date, sex, postal_code, address,
                              copay_rate, voluntary_until, residence_until,
                              certificate_requested, import_id)
         SELECT insurer_number, symbol, number, branch, relationship, name_kanji, name_kana,
                kana_key, birth_date, sex, postal_code, address, copay_rate, voluntary_until,
                residence_until, coalesce(certificate_requested, false), $1
         FROM stage_person_last l
         WHERE NOT EXISTS (SELECT 1 FROM persons p
                           WHERE (p.insurer_number, p.symbol, p.number, p.branch)
                               = (l.insurer_number, l.symbol, l.number, l.branch))
         ORDER BY insurer_number, symbol, number, branch",
    )
    .bind::<Int8, _>(import_id)
    .execute(conn)?;
    Ok((count(inserted), count(updated)))
}

/// Applies the file's periods: changed ones are updated (and the change recorded), new ones
/// inserted (recorded as an addition for persons that existed before this import). Updates
/// run first so that a period closed by this file makes room for the one that follows it.
fn merge_periods(conn: &mut PgConnection, import_id: i64, actor: &str) -> Result<(), Outcome> {
    // Persons created by this import had no id when stage_periods was filled.
    conn.batch_execute(
        "UPDATE stage_periods s SET person_id = p.id
         FROM persons p
         WHERE s.person_id IS NULL
           AND (p.insurer_number, p.symbol, p.number, p.branch)
             = (s.insurer_number, s.symbol, s.number, s.branch);",
    )?;
    diesel::sql_query(
        "INSERT INTO person_changes (person_id, import_id, actor, action, changes)
         SELECT q.person_id, $1, $2, 'qualification_changed',
                jsonb_build_object('acquired_on', q.acquired_on,
                    'lost_on', jsonb_build_object('old', q.lost_on, 'new', s.lost_on),
                    'loss_reason', jsonb_build_object('old', q.loss_reason, 'new', s.loss_reason))
         FROM qualifications q
         JOIN stage_periods s ON s.person_id = q.person_id AND s.acquired_on = q.acquired_on
         WHERE (q.lost_on, q.loss_reason) IS DISTINCT FROM (s.lost_on, s.loss_reason)",
    )
    .bind::<Int8, _>(import_id)
    .bind::<Text, _>(actor)
    .execute(conn)?;
    diesel::sql_query(
        "UPDATE qualifications q
         SET lost_on = s.lost_on, loss_reason = s.loss_reason, import_id = $1, updated_at = now()
         FROM stage_periods s
         WHERE s.person_id = q.person_id AND s.acquired_on = q.acquired_on
           AND (q.lost_on, q.loss_reason) IS DISTINCT FROM (s.lost_on, s.loss_reason)",
    )
    .bind::<Int8, _>(import_id)
    .execute(conn)?;
    // now() is the transaction's start, so created_at = now() marks persons this import made.
    diesel::sql_query(
        "INSERT INTO person_changes (person_id, import_id, actor, action, changes)
         SELECT s.person_id, $1, $2, 'qualification_added',
                jsonb_build_object('acquired_on', s.acquired_on, 'lost_on', s.lost_on,
                                   'loss_reason', s.loss_reason)
         FROM stage_periods s
         JOIN persons p ON p.id = s.person_id
         WHERE p.created_at <> now()
           AND NOT EXISTS (SELECT 1 FROM qualifications q
                           WHERE q.person_id = s.person_id AND q.acquired_on = s.acquired_on)",
    )
    .bind::<Int8, _>(import_id)
    .bind::<Text, _>(actor)
    .execute(conn)?;
    diesel::sql_query(
        "INSERT INTO qualifications (person_id, acquired_on, lost_on, loss_reason, import_id)
         SELECT s.person_id, s.acquired_on, s.lost_on, s.loss_reason, $1
         FROM stage_periods s
         WHERE NOT EXISTS (SELECT 1 FROM qualifications q
                           WHERE q.person_id = s.person_id AND q.acquired_on = s.acquired_on)
         ORDER BY s.person_id, s.acquired_on",
    )
    .bind::<Int8, _>(import_id)
    .execute(conn)?;
    Ok(())
}

/// Dependants follow the insured: when this import records or changes the loss of an insured
/// person's (本人) period, the periods of the dependants (家族) under the same 記号・番号 that
/// run across the loss date end on the same date, with history and a warning per dependant on
/// the insured's line. A dependant keeps a period of their own: one this file states itself
/// (its row says what the insurer means), one that already ends by that date, and one that
/// begins on or after it. A death (01) of the insured is recorded as 99 (other) for the
/// dependants, who did not die; any other reason is theirs too.
fn follow_the_insured(
    conn: &mut PgConnection,
    counter: &mut Counter<'_>,
    import_id: i64,
    actor: &str,
) -> Result<(), Outcome> {
    conn.batch_execute(&format!(
        "CREATE TEMP TABLE stage_follow ON COMMIT DROP AS
         SELECT DISTINCT ON (dq.id) dq.id AS qid, dq.person_id, s.line, dq.acquired_on,
                dq.lost_on AS old_lost, dq.loss_reason AS old_reason, s.lost_on AS new_lost,
                CASE WHEN s.loss_reason = '01' THEN '99' ELSE coalesce(s.loss_reason, '99') END
                    AS new_reason,
                d.symbol, d.number, d.branch
           FROM stage_periods s
           JOIN persons ip ON ip.id = s.person_id AND ip.relationship = 1
           JOIN persons d ON d.insurer_number = ip.insurer_number AND d.symbol = ip.symbol
                         AND d.number = ip.number AND d.relationship = 2 AND d.id <> ip.id
           JOIN qualifications dq ON dq.person_id = d.id AND dq.acquired_on < s.lost_on
                                 AND (dq.lost_on IS NULL OR dq.lost_on > s.lost_on)
          WHERE s.lost_on IS NOT NULL
            AND (ip.created_at = now()
                 OR EXISTS (SELECT 1 FROM person_changes pc
                             WHERE pc.import_id = {import_id} AND pc.person_id = ip.id
                               AND pc.action IN ('qualification_changed', 'qualification_added')
                               AND (pc.changes ->> 'acquired_on')::date = s.acquired_on))
            AND NOT EXISTS (SELECT 1 FROM stage_periods f
                             WHERE f.person_id = d.id AND f.acquired_on = dq.acquired_on)
          ORDER BY dq.id, s.lost_on;"
    ))?;
    diesel::sql_query(
        "INSERT INTO person_changes (person_id, import_id, actor, action, changes)
         SELECT person_id, $1, $2, 'qualification_changed',
                jsonb_build_object('acquired_on', acquired_on,
                    'lost_on', jsonb_build_object('old', old_lost, 'new', new_lost),
                    'loss_reason', jsonb_build_object('old', old_reason, 'new', new_reason),
                    'because', 'insured_lost')
           FROM stage_follow ORDER BY person_id",
    )
    .bind::<Int8, _>(import_id)
    .bind::<Text, _>(actor)
    .execute(conn)?;
    diesel::sql_query(
        "UPDATE qualifications q
            SET lost_on = f.new_lost, loss_reason = f.new_reason, import_id = $1,
                updated_at = now()
           FROM stage_follow f WHERE q.id = f.qid",
    )
    .bind::<Int8, _>(import_id)
    .execute(conn)?;
    super::report_lines(
        conn,
        counter,
        IssueLevel::Warning,
        "lost_on",
        "SELECT line, format('dependant %s: qualification from %s now ends on %s with the \
                insured''s loss (本人の資格喪失に伴う被扶養者の資格喪失)',
                concat_ws('・', nullif(symbol, ''), number, nullif(branch, '')),
                acquired_on, new_lost) AS message
           FROM stage_follow ORDER BY line, symbol, number, branch",
    )?;
    Ok(())
}
