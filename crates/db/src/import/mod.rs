//! Bulk import of the three interchange files (formats.md): persons, linkages, residents.
//!
//! Every import is one transaction and all-or-nothing. Rows are read sequentially, validated in
//! parallel batches (the qsv `validate` loop: read a batch, `par_iter` the checks, write the
//! results in order), and every valid row goes to a temporary staging table through binary
//! `COPY`. Checks that need the whole file or the stored registry (overlapping periods, unknown
//! persons, duplicate numbers) then run as set-based SQL over the staging table, and only a file
//! without a single error is merged into the registry. A rejected file changes nothing.
//!
//! One check refuses rows rather than files: a linkage whose person disagrees with the resident
//! register on the five items ([`crate::identity_check`]) is left out and reported as
//! [`IssueLevel::Rejected`], and the rest of the file is applied, because one clerk's wrong
//! number must not hold back a thousand right ones, and nothing already stored is touched.
//!
//! Memory stays flat whatever the file size: one batch of rows is held at a time, and issues
//! stream to an [`IssueSink`] rather than a growing list.

mod benefits;
mod linkages;
mod persons;
mod reader;
mod residents;

use std::io::Read;

use diesel::connection::SimpleConnection;
use diesel::PgConnection;
use shikaku_domain::records::{FieldError, FileKind, Warning};

use crate::error::DbError;

pub use benefits::import_benefits;
pub use linkages::import_linkages;
pub use persons::import_persons;
pub(crate) use reader::read_all;
use reader::stream_rows;
pub use residents::import_residents;

/// How bad an [`Issue`] is: an error rejects the file, a rejection refuses its row only, a
/// warning is reported and stored anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueLevel {
    /// The file is rejected.
    Error,
    /// The row is refused and not stored; the rest of the file is applied (a linkage that
    /// fails the registration-time check).
    Rejected,
    /// Reported; the row is stored.
    Warning,
}

impl IssueLevel {
    /// Lower-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueLevel::Error => "error",
            IssueLevel::Rejected => "rejected",
            IssueLevel::Warning => "warning",
        }
    }
}

/// One problem with one line of an input file. Never carries a My Number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Error or warning.
    pub level: IssueLevel,
    /// 1-based line of the file where the record starts (the header is line 1).
    pub line: u64,
    /// The column the problem is in, or a short description when it spans columns.
    pub column: String,
    /// What is wrong, in words a person can act on.
    pub reason: String,
}

/// Receives issues as they are found, so a file with millions of bad rows needs no memory for
/// them. The CLI writes them to the `--report` CSV and keeps the first few for the terminal.
pub trait IssueSink {
    /// Called once per issue, in file order within each validation stage.
    fn report(&mut self, issue: Issue);
}

/// An [`IssueSink`] that keeps everything; for tests and small files.
#[derive(Debug, Default)]
pub struct CollectIssues(pub Vec<Issue>);

impl IssueSink for CollectIssues {
    fn report(&mut self, issue: Issue) {
        self.0.push(issue);
    }
}

/// An [`IssueSink`] that keeps the first `cap` issues and only counts the rest, so that a file
/// of millions of bad lines (an upload, a mistaken file) cannot exhaust memory; the counts
/// stay exact.
#[derive(Debug)]
pub struct CountedIssues {
    /// The first issues, in the order reported.
    pub kept: Vec<Issue>,
    /// How many to keep.
    pub cap: usize,
    /// Errors reported, kept or not.
    pub errors: u64,
    /// Rows refused, kept or not.
    pub rejected: u64,
    /// Warnings reported, kept or not.
    pub warnings: u64,
}

impl CountedIssues {
    /// A sink keeping the first `cap` issues.
    pub fn new(cap: usize) -> CountedIssues {
        CountedIssues {
            kept: Vec::new(),
            cap,
            errors: 0,
            rejected: 0,
            warnings: 0,
        }
    }

    /// Issues reported but not kept.
    pub fn dropped(&self) -> u64 {
        (self.errors + self.rejected + self.warnings).saturating_sub(self.kept.len() as u64)
    }
}

impl IssueSink for CountedIssues {
    fn report(&mut self, issue: Issue) {
        match issue.level {
            IssueLevel::Error => self.errors += 1,
            IssueLevel::Rejected => self.rejected += 1,
            IssueLevel::Warning => self.warnings += 1,
        }
        if self.kept.len() < self.cap {
            self.kept.push(issue);
        }
    }
}

/// Who is importing what, for the import journal and the change history.
pub struct ImportContext<'a> {
    /// The person or process responsible (`import:<user>` style names are fine).
    pub actor: &'a str,
    /// The file's name as given, recorded in the journal.
    pub file_name: &'a str,
    /// Called with the number of bytes read so far, for progress bars.
    pub progress: &'a (dyn Fn(u64) + Sync),
    /// The day of the import (Tokyo): a loss dated on or before it revokes certificates now.
    pub today: chrono::NaiveDate,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Row in the `imports` journal; `None` when the file was rejected.
    pub import_id: Option<i64>,
    /// Data rows read (header excluded).
    pub rows_read: u64,
    /// Records created.
    pub inserted: u64,
    /// Records that existed and changed.
    pub updated: u64,
    /// Records that existed and were identical.
    pub unchanged: u64,
    /// Errors found; any error means nothing was stored.
    pub errors: u64,
    /// Rows refused while the rest was applied (linkages failing the registration-time check).
    pub rejected: u64,
    /// Warnings found.
    pub warnings: u64,
    /// Whether the file was applied.
    pub applied: bool,
    /// For residents: the snapshot created.
    pub snapshot_id: Option<i64>,
    /// For linkages: the registry's persons (at most [`REVEALED_CAP`]) already linked to a
    /// number of the file held by someone else in it. The warnings about them tell the importer
    /// that these persons hold the number, so the caller logs them as read.
    pub revealed_persons: Vec<i64>,
    /// Whether more persons than [`REVEALED_CAP`] were revealed.
    pub revealed_more: bool,
    /// For benefits: certificates ended early (or voided) because the file changed the co-pay
    /// rate or limit category they show.
    pub certificates_cut: Vec<i64>,
}

/// Most revealed persons an import summary lists.
pub const REVEALED_CAP: usize = 1000;

/// Failures that stop an import before it can judge the file (as opposed to bad rows, which
/// are [`Issue`]s).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The file could not be read at all.
    #[error("cannot read the file: {0}")]
    Read(String),
}

impl From<diesel::result::Error> for ImportError {
    fn from(e: diesel::result::Error) -> Self {
        ImportError::Db(DbError::Query(e))
    }
}

/// Counts issues as they pass to the caller's sink.
struct Counter<'s> {
    sink: &'s mut dyn IssueSink,
    errors: u64,
    rejected: u64,
    warnings: u64,
}

impl<'s> Counter<'s> {
    fn new(sink: &'s mut dyn IssueSink) -> Self {
        Counter {
            sink,
            errors: 0,
            rejected: 0,
            warnings: 0,
        }
    }

    fn rejected(&mut self, line: u64, column: impl Into<String>, reason: impl Into<String>) {
        self.rejected += 1;
        self.sink.report(Issue {
            level: IssueLevel::Rejected,
            line,
            column: column.into(),
            reason: reason.into(),
        });
    }

    fn error(&mut self, line: u64, column: impl Into<String>, reason: impl Into<String>) {
        self.errors += 1;
        self.sink.report(Issue {
            level: IssueLevel::Error,
            line,
            column: column.into(),
            reason: reason.into(),
        });
    }

    fn warning(&mut self, line: u64, column: impl Into<String>, reason: impl Into<String>) {
        self.warnings += 1;
        self.sink.report(Issue {
            level: IssueLevel::Warning,
            line,
            column: column.into(),
            reason: reason.into(),
        });
    }

    /// The summary so far, or the rejection that rolls everything back when any error was
    /// found (the file is all-or-nothing).
    fn verdict(&self, rows_read: u64) -> Result<ImportSummary, Outcome> {
        let summary = ImportSummary {
            rows_read,
            ..ImportSummary::default()
        };
        if self.errors > 0 {
            return Err(Outcome::Rejected(Box::new(ImportSummary {
                errors: self.errors,
                warnings: self.warnings,
                ..summary
            })));
        }
        Ok(summary)
    }

    fn field_errors(&mut self, line: u64, errors: Vec<FieldError>) {
        for e in errors {
            self.error(line, e.column, e.reason);
        }
    }

    fn field_warnings(&mut self, line: u64, warnings: Vec<Warning>) {
        for w in warnings {
            self.warning(line, w.column, w.message);
        }
    }
}

/// The warning for a 12-digit number whose check digit is wrong (stored, never rejected:
/// formats.md says nothing is lost), saying what happens to it.
fn check_digit_warnings(number: &shikaku_domain::LinkedNumber, what_happens: &str) -> Vec<Warning> {
    if number.check_digit_ok() {
        return Vec::new();
    }
    vec![Warning {
        column: "my_number".to_string(),
        message: format!("check digit is wrong; {what_happens}"),
    }]
}

/// Session settings for the merge: the staging sorts and hash joins of a multi-million-row
/// file want more than the default 4 MB of work memory, and staging tables more than the
/// default 8 MB of temporary buffers (it can only be raised before the session's first
/// temporary table, which is why a long-lived connection may keep the old value).
///
/// The advisory lock serialises imports: the merge's anti-joins ("insert what does not exist
/// yet") are then exact without `ON CONFLICT`, whose speculative insertion costs several
/// microseconds a row.
fn prepare_session(conn: &mut PgConnection) -> Result<(), DbError> {
    conn.batch_execute(&format!(
        "SET LOCAL work_mem = '256MB'; SET LOCAL maintenance_work_mem = '512MB';
         SELECT pg_advisory_xact_lock({IMPORT_LOCK});"
    ))?;
    // In a savepoint, because the SET fails (harmlessly) on a connection that already used a
    // temporary table, and a failed statement would otherwise abort the whole import.
    use diesel::Connection;
    let _ = conn.transaction::<_, diesel::result::Error, _>(|conn| {
        conn.batch_execute("SET temp_buffers = '1GB'")
    });
    Ok(())
}

/// Advisory-lock key held by every import for its whole transaction.
pub(crate) const IMPORT_LOCK: i64 = 0x5348_494b_414b_5504;

/// Opens an entry in the import journal; it only survives if the transaction commits.
fn start_journal(
    conn: &mut PgConnection,
    kind: &str,
    ctx: &ImportContext<'_>,
) -> Result<i64, DbError> {
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Int8)]
        id: i64,
    }
    let row: Id = diesel::sql_query(
        "INSERT INTO imports (kind, file_name, actor) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind::<Text, _>(kind)
    .bind::<Text, _>(ctx.file_name)
    .bind::<Text, _>(ctx.actor)
    .get_result(conn)?;
    Ok(row.id)
}

/// Closes the journal entry with the final counts.
fn finish_journal(
    conn: &mut PgConnection,
    import_id: i64,
    summary: &ImportSummary,
) -> Result<(), DbError> {
    use diesel::prelude::*;
    use diesel::sql_types::Int8;

    diesel::sql_query(
        "UPDATE imports SET finished_at = clock_timestamp(), rows_read = $2, rows_inserted = $3, \
         rows_updated = $4, rows_unchanged = $5, warnings = $6, rows_rejected = $7 WHERE id = $1",
    )
    .bind::<Int8, _>(import_id)
    .bind::<Int8, _>(to_i64(summary.rows_read))
    .bind::<Int8, _>(to_i64(summary.inserted))
    .bind::<Int8, _>(to_i64(summary.updated))
    .bind::<Int8, _>(to_i64(summary.unchanged))
    .bind::<Int8, _>(to_i64(summary.warnings))
    .bind::<Int8, _>(to_i64(summary.rejected))
    .execute(conn)?;
    Ok(())
}

/// The four person-key columns as stored: an absent 記号 or 枝番 is '' (see the schema).
struct KeyColumns {
    insurer_number: String,
    symbol: String,
    number: String,
    branch: String,
}

impl KeyColumns {
    fn of(key: &shikaku_domain::PersonKey) -> Self {
        KeyColumns {
            insurer_number: key.insurer.as_str().to_string(),
            symbol: key
                .symbol
                .as_ref()
                .map_or_else(String::new, |s| s.as_str().to_string()),
            number: key.number.as_str().to_string(),
            branch: key
                .branch
                .as_ref()
                .map_or_else(String::new, |b| b.as_str().to_string()),
        }
    }
}

/// Row counts never approach `i64::MAX`; saturate rather than panic.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Affected-row counts from `execute` as `u64`.
fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A line and a message found by a set-based check over the staging table.
#[derive(diesel::QueryableByName)]
struct LineIssue {
    #[diesel(sql_type = diesel::sql_types::Int8)]
    line: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    message: String,
}

/// Runs a check query returning `(line, message)` rows and reports each as `level` in
/// `column`, in line order.
fn report_lines(
    conn: &mut PgConnection,
    counter: &mut Counter<'_>,
    level: IssueLevel,
    column: &str,
    sql: &str,
) -> Result<(), DbError> {
    use diesel::prelude::*;
    let rows: Vec<LineIssue> = diesel::sql_query(sql).load(conn)?;
    for row in rows {
        let line = u64::try_from(row.line).unwrap_or(0);
        match level {
            IssueLevel::Error => counter.error(line, column, row.message),
            IssueLevel::Rejected => counter.rejected(line, column, row.message),
            IssueLevel::Warning => counter.warning(line, column, row.message),
        }
    }
    Ok(())
}

/// Internal signal that rolls the transaction back while keeping the summary.
enum Outcome {
    Rejected(Box<ImportSummary>),
    Failed(ImportError),
}

impl From<diesel::result::Error> for Outcome {
    fn from(e: diesel::result::Error) -> Self {
        Outcome::Failed(e.into())
    }
}

impl From<DbError> for Outcome {
    fn from(e: DbError) -> Self {
        Outcome::Failed(e.into())
    }
}

impl From<ImportError> for Outcome {
    fn from(e: ImportError) -> Self {
        Outcome::Failed(e)
    }
}

/// Runs `body` in a transaction; a rejected file or a failure rolls everything back.
fn in_transaction(
    conn: &mut PgConnection,
    body: impl FnOnce(&mut PgConnection) -> Result<ImportSummary, Outcome>,
) -> Result<ImportSummary, ImportError> {
    use diesel::Connection;
    match conn.transaction::<ImportSummary, Outcome, _>(body) {
        Ok(summary) => Ok(summary),
        Err(Outcome::Rejected(summary)) => Ok(*summary),
        Err(Outcome::Failed(e)) => Err(e),
    }
}

/// Signal that rolls a checked-only import back while keeping what it found.
enum DryRun {
    Done(Box<ImportSummary>),
    Failed(ImportError),
}

impl From<diesel::result::Error> for DryRun {
    fn from(e: diesel::result::Error) -> Self {
        DryRun::Failed(e.into())
    }
}

/// Runs the import of `kind`; with `check_only`, everything is checked exactly as for real
/// and then rolled back, so the report can be read before anything is stored (the console's
/// "validate, then apply").
/// Files with My Numbers (linkages, residents) need `keyring` to seal them.
pub fn run(
    conn: &mut PgConnection,
    kind: FileKind,
    ctx: &ImportContext<'_>,
    keyring: Option<&shikaku_domain::Keyring>,
    input: impl Read,
    sink: &mut dyn IssueSink,
    check_only: bool,
) -> Result<ImportSummary, ImportError> {
    let keys = || {
        keyring.ok_or_else(|| {
            ImportError::Db(DbError::Invalid(format!(
                "{}.csv holds My Numbers: the import needs the key file",
                kind.as_str()
            )))
        })
    };
    let go = |conn: &mut PgConnection| match kind {
        FileKind::Persons => import_persons(conn, ctx, input, sink),
        FileKind::Linkages => import_linkages(conn, ctx, keys()?, input, sink),
        FileKind::Residents => import_residents(conn, ctx, keys()?, input, sink),
        FileKind::Benefits => import_benefits(conn, ctx, input, sink),
    };
    if !check_only {
        return go(conn);
    }
    match diesel::Connection::transaction::<(), DryRun, _>(conn, |conn| match go(conn) {
        Ok(summary) => Err(DryRun::Done(Box::new(summary))),
        Err(e) => Err(DryRun::Failed(e)),
    }) {
        Err(DryRun::Done(summary)) => Ok(ImportSummary {
            import_id: None,
            ..*summary
        }),
        Err(DryRun::Failed(e)) => Err(e),
        Ok(()) => Err(ImportError::Read("the check did not run".into())),
    }
}

/// What a first load of one kind of file fills, and which row-checking triggers it may skip.
#[derive(Debug, Clone, Copy)]
pub struct InitialLoad {
    /// Tables that must be empty; their indexes and keys are built after the data is in.
    pub tables: &'static [&'static str],
    /// `(table, trigger)` pairs switched off for the load because the import checks the same
    /// rule over the whole file first: a statement trigger that compares a million new rows
    /// with the table joins without an index while the indexes are down, which takes hours.
    pub checked_triggers: &'static [(&'static str, &'static str)],
}

/// The [`InitialLoad`] of `kind`; `None` for a kind without an initial path.
pub fn initial_load(kind: FileKind) -> Option<InitialLoad> {
    match kind {
        FileKind::Persons => Some(InitialLoad {
            tables: &["persons", "qualifications", "person_changes"],
            // Overlapping periods: `persons::check_periods` reports them for the whole file
            // (and the stored periods, of which a first load has none).
            checked_triggers: &[("qualifications", "qualifications_no_overlap_insert")],
        }),
        FileKind::Linkages => Some(InitialLoad {
            tables: &["linkages", "linkage_events"],
            checked_triggers: &[],
        }),
        FileKind::Residents => Some(InitialLoad {
            tables: &["resident_records"],
            checked_triggers: &[],
        }),
        // Dated benefits arrive after the registry is loaded, a small share of persons each.
        FileKind::Benefits => None,
    }
}

/// The initial load: the same import as [`run`] (the same validation, the same report, the
/// same rows and history) into empty tables whose indexes and keys are dropped first and built
/// once after the data is in ([`crate::bulk`]), in one transaction. A rejected file or a
/// failure rolls everything back, indexes included. Needs the owner's connection.
pub fn run_initial(
    conn: &mut PgConnection,
    kind: FileKind,
    ctx: &ImportContext<'_>,
    keyring: Option<&shikaku_domain::Keyring>,
    input: impl Read,
    sink: &mut dyn IssueSink,
) -> Result<ImportSummary, ImportError> {
    let Some(load) = initial_load(kind) else {
        return Err(ImportError::Db(DbError::Invalid(format!(
            "{}.csv has no initial load: import it without --initial",
            kind.as_str()
        ))));
    };
    in_transaction(conn, |conn| {
        crate::bulk::require_owner(conn, load.tables)?;
        // The import lock first, as every import takes it: no other import can be waiting on
        // the tables' lock while holding it.
        conn.batch_execute(&format!("SELECT pg_advisory_xact_lock({IMPORT_LOCK})"))?;
        let deferred = crate::bulk::defer(conn, load.tables)?;
        crate::bulk::require_empty(conn, load.tables)?;
        crate::bulk::set_triggers(conn, load.checked_triggers, false)?;
        let summary = run(conn, kind, ctx, keyring, input, sink, false)?;
        if !summary.applied {
            return Err(Outcome::Rejected(Box::new(summary)));
        }
        crate::bulk::set_triggers(conn, load.checked_triggers, true)?;
        crate::bulk::restore(conn, deferred)?;
        Ok(summary)
    })
}
