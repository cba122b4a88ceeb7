//! `shikaku findings list|show|confirm|dismiss`: the reviewers' queue.

use std::process::ExitCode;

use clap::Subcommand;
use shikaku_db::findings::{self, Filter, QueueOrder};
use shikaku_domain::finding::{FindingKind, FindingStatus, ReviewAction, Severity};
use shikaku_domain::LinkageStatus;

use crate::config::{load_keyring, Database};
use crate::logging;

/// Review commands.
#[derive(Debug, Subcommand)]
pub enum FindingsCommand {
    /// The queue, most severe first.
    List {
        /// open, confirmed, dismissed, resolved, or any (default: open).
        #[arg(long, default_value = "open")]
        status: String,
        /// Only this kind (formats.md).
        #[arg(long)]
        kind: Option<FindingKind>,
        /// Only this severity: critical, high, medium or low.
        #[arg(long)]
        severity: Option<Severity>,
        /// Only findings last seen by this audit run.
        #[arg(long)]
        run: Option<i64>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// severity (most severe first) or probability (most likely another person's number
        /// first).
        #[arg(long, default_value = "severity")]
        sort: QueueOrder,
        /// Print JSON.
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
    },
}

/// Runs a findings subcommand.
pub fn run(db: &Database, cmd: FindingsCommand) -> anyhow::Result<ExitCode> {
    let (keyring, _) = load_keyring()?;
    let mut conn = db.connect()?;
    match cmd {
        FindingsCommand::List {
            status,
            kind,
            severity,
            run,
            limit,
            sort,
            json,
        } => {
            let status = match status.as_str() {
                "any" => None,
                s => Some(FindingStatus::parse(s).ok_or_else(|| {
                    anyhow::anyhow!("--status must be open, confirmed, dismissed, resolved or any")
                })?),
            };
            let filter = Filter {
                status,
                kind,
                severity,
                run_id: run,
                limit,
                order: sort,
            };
            let rows = findings::list(&mut conn, &filter)?;
            let (subject, shown) = logging::persons(rows.iter().map(|f| f.person_id));
            logging::record(
                &mut conn,
                &keyring,
                &[logging::entry(
                    "findings_list",
                    subject,
                    serde_json::json!({ "status": filter.status, "kind": filter.kind,
                                        "severity": filter.severity, "run": filter.run_id,
                                        "limit": filter.limit, "sort": sort.to_string() }),
                    shown,
                    None,
                )],
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for f in rows {
                    let linkage = match f.linkage_status {
                        Some(LinkageStatus::Active) | None => String::new(),
                        Some(other) => format!(" (linkage {other})"),
                    };
                    let p = f
                        .p_other_person
                        .map_or_else(|| "     ".to_owned(), |p| format!("{p:.3}"));
                    println!(
                        "{:>6}  {:<8} {p} {:<20} {}:{}:{}:{}  …{}{}  {}  [{}]",
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
                for e in events {
                    println!(
                        "  {}  {:<10} {}  {}",
                        e.at,
                        e.action,
                        e.actor,
                        e.reason.unwrap_or_default()
                    );
                }
            }
        }
        FindingsCommand::Confirm { id, reason } => {
            let f = review(&mut conn, &keyring, id, ReviewAction::Confirm, &reason)?;
            println!("finding {} is {}", f.id, f.status);
        }
        FindingsCommand::Dismiss { id, reason } => {
            let f = review(&mut conn, &keyring, id, ReviewAction::Dismiss, &reason)?;
            println!("finding {} is {}", f.id, f.status);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A verdict and its access-log entry, in one transaction.
fn review(
    conn: &mut diesel::PgConnection,
    keyring: &shikaku_domain::Keyring,
    id: i64,
    action: ReviewAction,
    reason: &str,
) -> anyhow::Result<findings::StoredFinding> {
    use diesel::Connection;
    conn.transaction(|conn| {
        let f = findings::review(conn, id, action, reason, &super::actor("user"))?;
        logging::record(
            conn,
            keyring,
            &[logging::entry(
                &format!("finding_{action}"),
                Some(format!("person:{}", f.person_id)),
                serde_json::json!({ "finding_id": id }),
                serde_json::json!({ "status": f.status }),
                Some(reason),
            )],
        )?;
        Ok(f)
    })
}
