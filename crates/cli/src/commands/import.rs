//! `shikaku import persons|linkages|residents FILE [--report FILE]`.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use shikaku_db::import::{self, ImportContext, ImportSummary, Issue, IssueSink};
use shikaku_domain::FileKind;

use crate::config::{load_keyring, Database};
use crate::logging;
use crate::progress::Progress;
use diesel::Connection;

/// Arguments of `shikaku import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The kind of file: persons, linkages, residents or benefits.
    kind: FileKind,
    /// The CSV file (formats.md).
    file: PathBuf,
    /// Write every error, rejected row and warning (line, column, level, reason) to this CSV.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Replace the report file if it exists.
    #[arg(long)]
    force: bool,
    /// Who is importing, for the change history (default: import:$USER).
    #[arg(long)]
    actor: Option<String>,
    /// A first load into empty tables (persons, linkages or residents): the same checks and
    /// result, with indexes and keys built once after the data is in. Runs as the schema's
    /// owner (SHIKAKU_OWNER_DATABASE_URL), since it drops and rebuilds indexes.
    #[arg(long)]
    initial: bool,
}

/// How many issues the terminal shows before pointing at --report.
const SHOWN_ISSUES: usize = 20;

/// Prints the first few issues to stderr and streams all of them to the report file.
struct Sink {
    file: String,
    report: Option<csv::Writer<std::fs::File>>,
    shown: usize,
    report_error: Option<csv::Error>,
}

impl IssueSink for Sink {
    fn report(&mut self, issue: Issue) {
        if self.shown < SHOWN_ISSUES {
            self.shown += 1;
            eprintln!(
                "{}: {}:{}: {}: {}",
                issue.level.as_str(),
                self.file,
                issue.line,
                issue.column,
                issue.reason
            );
        }
        if let Some(w) = &mut self.report {
            let line = issue.line.to_string();
            let cells = [
                line.as_str(),
                issue.column.as_str(),
                issue.level.as_str(),
                issue.reason.as_str(),
            ];
            // Reports are opened in spreadsheets: no cell may run as a formula.
            let safe = cells.map(shikaku_domain::text::spreadsheet_safe);
            if let Err(e) = w.write_record(safe.iter().map(|c| c.as_ref())) {
                self.report_error.get_or_insert(e);
            }
        }
    }
}

/// Runs an import and prints what it did. Exit status 1 when the file was rejected; a file
/// applied without some rows (linkages refused by the five-item check) exits 0, with the rows
/// listed as `rejected` on the terminal and in the report.
pub fn run(db: &Database, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let shown_name = args.file.display().to_string();
    let file = File::open(&args.file).with_context(|| format!("cannot open {shown_name}"))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let input = BufReader::with_capacity(1 << 20, file);
    // Loaded before anything is read, so a missing key fails fast (every import is logged,
    // which takes the key file's log key).
    let (keyring, _) = load_keyring()?;
    // Only the owner may drop and rebuild the tables' indexes.
    let mut conn = if args.initial {
        db.connect_owner()?
    } else {
        db.connect()?
    };

    let report = match &args.report {
        Some(path) => {
            let mut w = csv::Writer::from_writer(crate::files::create_private(path, args.force)?);
            w.write_record(["line", "column", "level", "reason"])?;
            Some(w)
        }
        None => None,
    };
    let mut sink = Sink {
        file: shown_name.clone(),
        report,
        shown: 0,
        report_error: None,
    };
    let actor = args.actor.unwrap_or_else(|| super::actor("import"));
    let progress = Progress::new(&format!("import {shown_name}"), size);
    let set_progress = |bytes: u64| progress.set(bytes);
    let ctx = ImportContext {
        actor: &actor,
        file_name: &shown_name,
        progress: &set_progress,
        today: shikaku_db::today_tokyo(),
    };
    let started = std::time::Instant::now();
    // The import and its access-log entry commit together; a rejected file is logged too,
    // since its report can reveal who already holds a number.
    let kind = args.kind;
    let initial = args.initial;
    let summary = conn.transaction(|conn| {
        let keys = kind.needs_keys().then_some(&keyring);
        let summary = if initial {
            import::run_initial(conn, kind, &ctx, keys, input, &mut sink)?
        } else {
            import::run(conn, kind, &ctx, keys, input, &mut sink, false)?
        };
        logging::record(
            conn,
            &keyring,
            &[logging::entry(
                "import",
                None,
                serde_json::json!({ "kind": kind.as_str(), "file": shown_name,
                                    "initial": initial }),
                serde_json::json!({ "import_id": summary.import_id, "rows": summary.rows_read,
                                    "applied": summary.applied, "errors": summary.errors,
                                    "rejected": summary.rejected,
                                    "revealed_person_ids": summary.revealed_persons,
                                    "revealed_more": summary.revealed_more,
                                    "certificates_cut": summary.certificates_cut }),
                None,
            )],
        )?;
        anyhow::Ok(summary)
    })?;
    progress.finish();
    if let Some(mut w) = sink.report.take() {
        w.flush()?;
    }
    if let Some(e) = sink.report_error {
        return Err(e).context("cannot write the report");
    }
    print_summary(
        &shown_name,
        &summary,
        sink.shown,
        args.report.is_some(),
        started,
    );
    Ok(if summary.applied {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_summary(
    file: &str,
    s: &ImportSummary,
    shown: usize,
    has_report: bool,
    started: std::time::Instant,
) {
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 {
        s.rows_read as f64 / secs
    } else {
        0.0
    };
    let total_issues = s.errors + s.rejected + s.warnings;
    if total_issues > shown as u64 && !has_report {
        eprintln!(
            "... {} more issues not shown; rerun with --report FILE for all of them",
            total_issues - shown as u64
        );
    }
    if s.applied {
        let snapshot = s
            .snapshot_id
            .map_or_else(String::new, |id| format!(", snapshot {id}"));
        let cut = if s.certificates_cut.is_empty() {
            String::new()
        } else {
            format!(
                ", {} certificate(s) ended the day before a co-pay or limit-category change \
                 (the monthly run issues the replacements)",
                s.certificates_cut.len()
            )
        };
        let rejected = if s.rejected > 0 {
            format!(
                ", {} rejected (not stored: the person's 5 items differ from the resident \
                 register; the rest was applied)",
                s.rejected
            )
        } else {
            String::new()
        };
        eprintln!(
            "{file}: imported {} rows in {secs:.1}s ({rate:.0} rows/s): {} new, {} updated, \
             {} unchanged, {} warnings{rejected}{cut} (import {}{snapshot})",
            s.rows_read,
            s.inserted,
            s.updated,
            s.unchanged,
            s.warnings,
            s.import_id.unwrap_or_default(),
        );
    } else {
        eprintln!(
            "{file}: REJECTED: {} errors, {} warnings in {} rows; nothing was stored",
            s.errors, s.warnings, s.rows_read
        );
    }
}
