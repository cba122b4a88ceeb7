//! `shikaku linkages show|suspend|correct|confirm-identity`: acting on one linkage after review.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use shikaku_db::linkages::{self, LinkageView};
use shikaku_domain::records::LinkageSource;
use shikaku_domain::MyNumber;

use crate::config::{load_keyring, Database};

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
        "linkage {}: person {}, number …{}{}, source {}, linked {}, status {}, identity {}",
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
        if l.identity_confirmed {
            "confirmed"
        } else {
            "not confirmed"
        }
    );
}

/// Runs a linkages subcommand.
pub fn run(db: &Database, cmd: LinkagesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LinkagesCommand::Show { id } => print(&linkages::get(&mut db.connect()?, id)?),
        LinkagesCommand::Suspend { id, reason } => {
            print(&linkages::suspend(
                &mut db.connect()?,
                id,
                &reason,
                &super::actor("user"),
            )?);
        }
        LinkagesCommand::ConfirmIdentity { id, reason } => {
            print(&linkages::confirm_identity(
                &mut db.connect()?,
                id,
                &reason,
                &super::actor("user"),
            )?);
        }
        LinkagesCommand::Correct { id, reason, source } => {
            let (keyring, _) = load_keyring()?;
            let mut line = zeroize::Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the number from standard input")?;
            let number = MyNumber::parse(line.trim())
                .context("the number on standard input is not a valid My Number")?;
            let new = linkages::correct(
                &mut db.connect()?,
                &keyring,
                id,
                &number,
                source,
                &reason,
                &super::actor("user"),
            )?;
            println!("linkage {id} revoked");
            print(&new);
        }
    }
    Ok(ExitCode::SUCCESS)
}
