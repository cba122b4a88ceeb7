//! `shikaku findings list|show|confirm|dismiss|assign|bulk|undo|report|export`: the reviewers'
//! queue.

use std::process::ExitCode;

use clap::Subcommand;
use diesel::Connection;
use shikaku_db::findings::bulk::{self, Assignment, Selection};
use shikaku_db::findings::export::export_findings;
use shikaku_db::findings::{self, report, Cursor, Filter, QueueOrder, Verdict};
use shikaku_domain::finding::{FindingKind, FindingStatus, ReviewAction, Severity};
use shikaku_domain::LinkageStatus;

use crate::config::{load_keyring, Database};
use crate::logging;

/// The queue filters, shared by `list`, `assign`, `bulk` and `export`.
#[derive(Debug, clap::Args)]
pub struct FilterArgs {
    /// open, confirmed, dismissed, resolved, or any (default: open).
    #[arg(long, default_value = "open")]
    status: String,
    /// Only this kind (formats.md).
    #[arg(long)]
    kind: Option<FindingKind>,
    /// Only this severity: critical, high, medium or low.
    #[arg(long)]
    severity: Option<Severity>,
    /// Only persons of this 保険者番号.
    #[arg(long)]
    insurer: Option<String>,
    /// Only findings assigned to this reviewer (a token name); `-` for unassigned.
    #[arg(long)]
    assignee: Option<String>,
    /// Only findings last seen by this audit run.
    #[arg(long)]
    run: Option<i64>,
}

impl FilterArgs {
    fn filter(&self) -> anyhow::Result<Filter> {
        let status = match self.status.as_str() {
            "any" => None,
            s => Some(FindingStatus::parse(s).ok_or_else(|| {
                anyhow::anyhow!("--status must be open, confirmed, dismissed, resolved or any")
            })?),
        };
        Ok(Filter::checked(
            status,
            self.kind,
            self.severity,
            self.insurer.clone(),
            self.assignee.as_deref(),
            self.run,
        )?)
    }
}

/// The selection of `assign` and `bulk`: `--ids`, or else the filters.
#[derive(Debug, clap::Args)]
pub struct SelectionArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// These findings instead of the filters (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    ids: Vec<i64>,
}

impl SelectionArgs {
    fn selection(&self) -> anyhow::Result<Selection> {
        Ok(if self.ids.is_empty() {
            Selection::Filter(self.filter.filter()?)
        } else {
            Selection::Ids(self.ids.clone())
        })
    }
}

/// Review commands.
#[derive(Debug, Subcommand)]
pub enum FindingsCommand {
    /// The queue, a page at a time (the next page's cursor is printed last, for `--after`).
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// At most this many (at most 1000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// severity, first_seen, kind, insurer or probability.
        #[arg(long, default_value = "severity")]
        sort: QueueOrder,
        /// The cursor printed with the previous page.
        #[arg(long)]
        after: Option<String>,
        /// Print JSON (the page, its total and its next cursor).
        #[arg(long)]
        json: bool,
    },
    /// One finding with its history.
    Show {
        /// Finding id (from `list`).
        id: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The problem is real: confirm it (it stays until the data is fixed).
    Confirm {
        /// Finding id.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// 理由付き疑いなし: checked, no error; the reason is required.
    Dismiss {
        /// Finding id.
        id: i64,
        /// Why this is not an error.
        #[arg(long)]
        reason: String,
        /// The last day the dismissal holds (YYYY-MM-DD); the next run after it re-opens it.
        #[arg(long)]
        until: Option<chrono::NaiveDate>,
    },
    /// Assigns the selection to reviewers in turn (`--each` to each), or back to nobody
    /// (`--clear`).
    Assign {
        #[command(flatten)]
        selection: SelectionArgs,
        /// Reviewers' token names (comma-separated).
        #[arg(long, value_delimiter = ',')]
        to: Vec<String>,
        /// How many to each (default: all, split evenly).
        #[arg(long)]
        each: Option<i64>,
        /// The order the selection is taken in.
        #[arg(long, default_value = "severity")]
        sort: QueueOrder,
        /// Unassign the selection instead.
        #[arg(long, conflicts_with = "to")]
        clear: bool,
    },
    /// A bulk decision on the selection's open findings: prints the preview; with `--expect N`
    /// (the preview's count) makes it. Refused when the selection holds a critical finding.
    Bulk {
        /// confirm or dismiss.
        action: ReviewAction,
        #[command(flatten)]
        selection: SelectionArgs,
        /// The shared reason.
        #[arg(long)]
        reason: String,
        /// For a dismissal: the last day it holds.
        #[arg(long)]
        until: Option<chrono::NaiveDate>,
        /// The number of open findings the preview showed: makes the decision.
        #[arg(long)]
        expect: Option<i64>,
    },
    /// Undoes a bulk action made today.
    Undo {
        /// The bulk action's id.
        bulk_id: i64,
    },
    /// The review report for a period.
    Report {
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: chrono::NaiveDate,
        /// Last day (YYYY-MM-DD).
        #[arg(long)]
        to: chrono::NaiveDate,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Writes the filtered queue as findings.csv (formats.md), with a reason (access-logged).
    Export {
        #[command(flatten)]
        filter: FilterArgs,
        /// The file to write (created owner-only; refused if it exists unless --force).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Why (recorded in the access log).
        #[arg(long)]
        reason: String,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
}

/// Runs a findings subcommand.
pub fn run(db: &Database, cmd: FindingsCommand) -> anyhow::Result<ExitCode> {
    let (keyring, _) = load_keyring()?;
    let mut conn = db.connect()?;
    let log = |conn: &mut diesel::PgConnection,
               action: &str,
               request: serde_json::Value,
               response: serde_json::Value,
               reason: Option<&str>|
     -> anyhow::Result<()> {
        logging::record(
            conn,
            &keyring,
            &[logging::entry(action, None, request, response, reason)],
        )?;
        Ok(())
    };
    match cmd {
        FindingsCommand::List {
            filter,
            limit,
            sort,
            after,
            json,
        } => {
            let filter = filter.filter()?;
            let after: Option<Cursor> = after.as_deref().map(str::parse).transpose()?;
            let page = findings::page(&mut conn, &filter, sort, after.as_ref(), limit)?;
            let (subject, shown) = logging::persons(page.findings.iter().map(|f| f.person_id));
            let mut request = filter.describe();
            request["limit"] = serde_json::json!(limit);
            request["sort"] = serde_json::json!(sort);
            request["after"] = serde_json::json!(after.as_ref().map(ToString::to_string));
            logging::record(
                &mut conn,
                &keyring,
                &[logging::entry(
                    "findings_list",
                    subject,
                    request,
                    shown,
                    None,
                )],
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                for f in &page.findings {
                    let linkage = match f.linkage_status {
                        Some(LinkageStatus::Active) | None => String::new(),
                        Some(other) => format!(" (linkage {other})"),
                    };
                    let p = f
                        .p_other_person
                        .map_or_else(|| "     ".to_owned(), |p| format!("{p:.3}"));
                    let assignee = f
                        .assignee
                        .as_deref()
                        .map(|a| format!(" @{a}"))
                        .unwrap_or_default();
                    println!(
                        "{:>6}  {:<8} {p} {:<20} {}:{}:{}:{}  …{}{}  {}  [{}{assignee}]",
                        f.id,
                        f.severity,
                        f.kind,
                        f.insurer_number,
                        f.symbol,
                        f.number,
                        f.branch,
                        f.mn_last4,
                        linkage,
                        f.detail,
                        f.status
                    );
                }
                println!(
                    "{} of {} finding(s){}",
                    page.findings.len(),
                    page.total,
                    page.next_cursor
                        .as_deref()
                        .map(|c| format!("; next page: --after {c}"))
                        .unwrap_or_default()
                );
            }
        }
        FindingsCommand::Show { id, json } => {
            let detail = findings::show(&mut conn, id)?;
            logging::record(
                &mut conn,
                &keyring,
                &[logging::entry(
                    "finding_read",
                    Some(format!("person:{}", detail.finding.person_id)),
                    serde_json::json!({ "finding_id": id }),
                    serde_json::json!({ "status": detail.finding.status }),
                    None,
                )],
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&detail)?);
            } else {
                let (f, events) = (detail.finding, detail.events);
                println!("finding {} ({})", f.id, f.fingerprint);
                println!("  kind      {} ({})", f.kind, f.severity);
                println!(
                    "  person    {}:{}:{}:{}",
                    f.insurer_number, f.symbol, f.number, f.branch
                );
                println!("  number    …{}", f.mn_last4);
                if let (Some(id), Some(status)) = (f.linkage_id, f.linkage_status) {
                    println!("  linkage   {id} ({status})");
                }
                println!("  fields    {}", f.fields_csv());
                println!("  detail    {}", f.detail);
                if let Some(e) = &f.evidence {
                    println!(
                        "  p_other_person {} (likeliest way: {})",
                        e.p_text(),
                        e.channel.as_str()
                    );
                    for step in e.steps() {
                        println!(
                            "    {:<40} {:>+7.2} bits  → {:>+7.2}",
                            step.part.name(),
                            step.bits,
                            step.total
                        );
                    }
                }
                println!("  status    {}", f.status);
                if let Some(r) = &f.review_reason {
                    println!("  reason    {r}");
                }
                println!("  seen      {} .. {}", f.first_seen, f.last_seen);
                if let Some(a) = &f.assignee {
                    println!("  assignee  {a}");
                }
                if let Some(u) = f.dismissed_until {
                    println!("  until     {u}");
                }
                for e in events {
                    let extra = match (&e.assignee, e.bulk_id) {
                        (Some(a), Some(b)) => format!(" → {a} (bulk {b})"),
                        (Some(a), None) => format!(" → {a}"),
                        (None, Some(b)) => format!(" (bulk {b})"),
                        (None, None) => String::new(),
                    };
                    println!(
                        "  {}  {:<10} {}  {}{extra}",
                        e.event.at,
                        e.event.action,
                        e.event.actor,
                        e.event.reason.unwrap_or_default()
                    );
                }
            }
        }
        FindingsCommand::Confirm { id, reason } => {
            let verdict = Verdict {
                action: ReviewAction::Confirm,
                reason,
                until: None,
            };
            let f = review(&mut conn, &keyring, id, &verdict)?;
            println!("finding {} is {}", f.id, f.status);
        }
        FindingsCommand::Dismiss { id, reason, until } => {
            let verdict = Verdict {
                action: ReviewAction::Dismiss,
                reason,
                until,
            };
            let f = review(&mut conn, &keyring, id, &verdict)?;
            println!("finding {} is {}", f.id, f.status);
        }
        FindingsCommand::Assign {
            selection,
            to,
            each,
            sort,
            clear,
        } => {
            let selection = selection.selection()?;
            let assignment = if clear {
                Assignment::Clear
            } else {
                Assignment::To {
                    reviewers: to,
                    each,
                    order: sort,
                }
            };
            let outcome = conn.transaction(|conn| {
                let outcome = bulk::assign(conn, &selection, &assignment, &super::actor("user"))?;
                log(
                    conn,
                    "findings_assign",
                    serde_json::json!({ "selection": selection.logged(), "bulk_id": outcome.bulk_id }),
                    serde_json::json!({ "findings": outcome.findings }),
                    None,
                )?;
                anyhow::Ok(outcome)
            })?;
            println!(
                "bulk action {}: {} finding(s) reassigned",
                outcome.bulk_id, outcome.findings
            );
        }
        FindingsCommand::Bulk {
            action,
            selection,
            reason,
            until,
            expect,
        } => {
            let selection = selection.selection()?;
            let verdict = Verdict {
                action,
                reason,
                until,
            };
            verdict.check()?;
            let Some(expected) = expect else {
                let p = bulk::preview(&mut conn, &selection)?;
                log(
                    &mut conn,
                    "findings_bulk_preview",
                    selection.logged(),
                    serde_json::json!({ "decidable": p.decidable, "critical": p.critical }),
                    None,
                )?;
                println!(
                    "{} selected, {} open would be {}:",
                    p.selected,
                    p.decidable,
                    verdict.action.status()
                );
                for k in &p.by_kind {
                    println!("  {:<20} {}", k.kind, k.findings);
                }
                if let Some(why) = p.refused {
                    println!("refused: {why}");
                    return Ok(ExitCode::FAILURE);
                }
                println!("to do it: the same command with --expect {}", p.decidable);
                return Ok(ExitCode::SUCCESS);
            };
            let outcome = conn.transaction(|conn| {
                let outcome =
                    bulk::decide(conn, &selection, &verdict, expected, &super::actor("user"))?;
                log(
                    conn,
                    &format!("findings_bulk_{}", verdict.action),
                    serde_json::json!({ "selection": selection.logged(),
                                        "bulk_id": outcome.bulk_id, "until": verdict.until }),
                    serde_json::json!({ "findings": outcome.findings }),
                    Some(&verdict.reason),
                )?;
                anyhow::Ok(outcome)
            })?;
            println!(
                "bulk action {}: {} finding(s) {} (undo today: shikaku findings undo {})",
                outcome.bulk_id,
                outcome.findings,
                verdict.action.status(),
                outcome.bulk_id
            );
        }
        FindingsCommand::Undo { bulk_id } => {
            let undone = conn.transaction(|conn| {
                let undone = bulk::undo(conn, bulk_id, &super::actor("user"))?;
                log(
                    conn,
                    "findings_bulk_undo",
                    serde_json::json!({ "bulk_id": bulk_id }),
                    serde_json::json!({ "restored": undone.restored, "kept": undone.kept }),
                    None,
                )?;
                anyhow::Ok(undone)
            })?;
            println!(
                "bulk action {bulk_id} undone: {} finding(s) restored, {} changed since and kept",
                undone.restored, undone.kept
            );
        }
        FindingsCommand::Report { from, to, json } => {
            let r = report::report(&mut conn, from, to)?;
            log(
                &mut conn,
                "findings_report",
                serde_json::json!({ "from": from, "to": to }),
                serde_json::json!({ "found": r.inspection.found }),
                None,
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print_report(&r);
            }
        }
        FindingsCommand::Export {
            filter,
            out,
            reason,
            force,
        } => {
            shikaku_domain::free_text::FreeText::Reason.check(&reason)?;
            let filter = filter.filter()?;
            let file = crate::files::create_private(&out, force)?;
            let request = serde_json::json!({ "export": "findings", "filter": filter.describe(),
                                              "out": out.display().to_string() });
            log(
                &mut conn,
                "export_findings",
                request.clone(),
                serde_json::Value::Null,
                Some(&reason),
            )?;
            let n = export_findings(&mut conn, &filter, std::io::BufWriter::new(file))?;
            log(
                &mut conn,
                "export_findings_done",
                request,
                serde_json::json!({ "rows": n }),
                Some(&reason),
            )?;
            eprintln!("wrote {n} findings to {}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &report::Report) {
    let i = &r.inspection;
    println!("review report {} .. {}", r.from, r.to);
    println!(
        "  総点検: found {}, corrected {}, dismissed with reason {}, still open {}",
        i.found, i.corrected, i.dismissed_with_reason, i.still_open
    );
    match r.median_hours_to_decision {
        Some(h) => println!("  median time to decision: {h:.1} h"),
        None => println!("  median time to decision: no decisions"),
    }
    println!("  decisions per reviewer (confirmed / dismissed):");
    for c in &r.reviewers {
        println!("    {:<30} {:>6} {:>6}", c.actor, c.confirmed, c.dismissed);
    }
    println!("  decisions per reason:");
    for c in &r.reasons {
        println!("    {:<10} {:>6}  {}", c.action, c.decisions, c.reason);
    }
    println!("  open findings by age (days: critical high medium low):");
    for a in &r.open_by_age {
        println!(
            "    {:<6} {:>6} {:>6} {:>6} {:>6}",
            a.days, a.critical, a.high, a.medium, a.low
        );
    }
}

/// A verdict and its access-log entry, in one transaction.
fn review(
    conn: &mut diesel::PgConnection,
    keyring: &shikaku_domain::Keyring,
    id: i64,
    verdict: &Verdict,
) -> anyhow::Result<findings::StoredFinding> {
    let (action, reason) = (verdict.action, verdict.reason.as_str());
    conn.transaction(|conn| {
        let f = findings::decide(conn, id, verdict, &super::actor("user"))?;
        logging::record(
            conn,
            keyring,
            &[logging::entry(
                &format!("finding_{action}"),
                Some(format!("person:{}", f.person_id)),
                serde_json::json!({ "finding_id": id, "until": verdict.until }),
                serde_json::json!({ "status": f.status }),
                Some(reason),
            )],
        )?;
        Ok(f)
    })
}
