//! `shikaku linkages show|suspend|correct|confirm-identity`: acting on one linkage after review.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use shikaku_db::linkages::{self, LinkageView};
use shikaku_db::{identity_check, DbError};
use shikaku_domain::records::LinkageSource;
use shikaku_domain::Field;
use shikaku_domain::MyNumber;

use crate::config::{load_keyring, Database};
use crate::logging;
use diesel::Connection;

/// Linkage commands.
#[derive(Debug, Subcommand)]
pub enum LinkagesCommand {
    /// One linkage (last 4 digits only).
    Show {
        /// Linkage id.
        id: i64,
    },
    /// Block online viewing until the linkage is corrected or confirmed.
    Suspend {
        /// Linkage id.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Replace a wrong number: revokes the linkage and links the right number, read from
    /// standard input (never from the command line, where other users could see it).
    Correct {
        /// Linkage id.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Where the right number came from: employer, applicant, jlis or other.
        #[arg(long, default_value = "jlis")]
        source: LinkageSource,
        /// 理由付き疑いなし: why the right number is right although the person's 5 items differ
        /// from the resident register's record for it (the refusal names the items). The
        /// linkage is then stored without identity confirmation, for the audit to review.
        #[arg(long)]
        no_error_reason: Option<String>,
    },
    /// Record that the 5 items were checked and the number is this person's.
    ConfirmIdentity {
        /// Linkage id.
        id: i64,
        /// How it was checked.
        #[arg(long)]
        reason: String,
    },
}

fn print(l: &LinkageView) {
    println!(
        "linkage {}: person {}, number …{}{}, source {}, linked {}, status {}{}, identity {}",
        l.id,
        l.person_id,
        l.mn_last4,
        if l.check_digit_ok {
            ""
        } else {
            " (check digit wrong)"
        },
        l.source,
        l.linked_on,
        l.status,
        l.suspended_by_finding
            .map_or_else(String::new, |f| format!(" (finding {f})")),
        if l.identity_confirmed {
            "confirmed"
        } else {
            "not confirmed"
        }
    );
}

/// The refusal of a correction on the five items, in words: which items differ (by name and
/// in Japanese) and how to proceed. Names items only, never a value or the number.
fn mismatch_message(differing: &[Field], not_compared: &[Field]) -> anyhow::Error {
    let mut m = format!(
        "refused: the person's 5 items differ from the resident register's record for this \
         number on {} ({}); nothing was changed. Correct the person's registry data, or repeat \
         with --no-error-reason TEXT (理由付き疑いなし) if the number is right all the same",
        identity_check::item_names(differing),
        identity_check::item_labels(differing)
    );
    if !not_compared.is_empty() {
        m.push_str(&format!(
            "; not compared (absent on a side): {}",
            identity_check::item_names(not_compared)
        ));
    }
    anyhow::anyhow!(m)
}

/// Logs a correction refused on the five items: the refusal told the user which items of the
/// register's record for the number differ from the person, a read of that person. Written
/// after the correction's transaction rolled back, so the entry stays.
fn refused(
    conn: &mut diesel::PgConnection,
    keyring: &shikaku_domain::Keyring,
    id: i64,
    number: &MyNumber,
    reason: &str,
    differing: &[Field],
) -> anyhow::Result<()> {
    let person = linkages::get(conn, id)?.person_id;
    logging::record(
        conn,
        keyring,
        &[logging::entry(
            "linkage_correct_refused",
            Some(format!("person:{person}")),
            serde_json::json!({ "linkage_id": id, "my_number_last4": number.last4() }),
            serde_json::json!({ "identity_mismatch": differing }),
            Some(reason),
        )],
    )?;
    Ok(())
}

/// Runs a linkages subcommand. Each one reads a person's linkage and is logged; each change
/// commits with its entry.
pub fn run(db: &Database, cmd: LinkagesCommand) -> anyhow::Result<ExitCode> {
    let (keyring, _) = load_keyring()?;
    let mut conn = db.connect()?;
    let actor = super::actor("user");
    let log = |conn: &mut diesel::PgConnection,
               action: &str,
               view: &LinkageView,
               request: serde_json::Value,
               reason: Option<&str>| {
        logging::record(
            conn,
            &keyring,
            &[logging::entry(
                action,
                Some(format!("person:{}", view.person_id)),
                request,
                serde_json::json!({ "status": view.status, "linkage_id": view.id }),
                reason,
            )],
        )
    };
    let view = match cmd {
        LinkagesCommand::Show { id } => {
            let v = linkages::get(&mut conn, id)?;
            log(
                &mut conn,
                "linkage_read",
                &v,
                serde_json::json!({ "linkage_id": id }),
                None,
            )?;
            v
        }
        LinkagesCommand::Suspend { id, reason } => conn.transaction(|conn| {
            let v = linkages::suspend(conn, id, &reason, &actor)?;
            log(
                conn,
                "linkage_suspend",
                &v,
                serde_json::json!({ "linkage_id": id }),
                Some(&reason),
            )?;
            anyhow::Ok(v)
        })?,
        LinkagesCommand::ConfirmIdentity { id, reason } => conn.transaction(|conn| {
            let v = linkages::confirm_identity(conn, id, &reason, &actor)?;
            log(
                conn,
                "linkage_confirm_identity",
                &v,
                serde_json::json!({ "linkage_id": id }),
                Some(&reason),
            )?;
            anyhow::Ok(v)
        })?,
        LinkagesCommand::Correct {
            id,
            reason,
            source,
            no_error_reason,
        } => {
            let mut line = zeroize::Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the number from standard input")?;
            let number = MyNumber::parse(line.trim())
                .context("the number on standard input is not a valid My Number")?;
            let result = conn.transaction(|conn| {
                let v = linkages::correct(
                    conn,
                    &keyring,
                    id,
                    &number,
                    source,
                    &reason,
                    no_error_reason.as_deref(),
                    &actor,
                )?;
                log(
                    conn,
                    "linkage_correct",
                    &v,
                    serde_json::json!({ "linkage_id": id, "my_number_last4": number.last4(),
                                        "no_error_reason": no_error_reason }),
                    Some(&reason),
                )?;
                anyhow::Ok(v)
            });
            let new = match result {
                Ok(v) => v,
                Err(e) => match e.downcast_ref::<DbError>() {
                    // Logged on its own, since the correction's transaction rolled back.
                    Some(DbError::IdentityMismatch {
                        differing,
                        not_compared,
                    }) => {
                        refused(&mut conn, &keyring, id, &number, &reason, differing)?;
                        return Err(mismatch_message(differing, not_compared));
                    }
                    _ => return Err(e),
                },
            };
            println!("linkage {id} revoked");
            new
        }
    };
    print(&view);
    Ok(ExitCode::SUCCESS)
}
