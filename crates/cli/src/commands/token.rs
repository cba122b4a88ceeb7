//! `shikaku token create|revoke|list`: API bearer tokens. The secret is printed once, as the
//! last line of `create`'s output, so scripts can take it with `tail -n1`.

use clap::Subcommand;
use shikaku_db::tokens::{self, Role, TokenInfo};

use crate::config::Database;

/// Token commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is the last line printed and is not stored anywhere.
    Create {
        /// admin, clerk, auditor or provider.
        #[arg(long)]
        role: String,
        /// Who or what it is for (shown in the access log).
        #[arg(long)]
        name: String,
        /// Last day it works (YYYY-MM-DD, Asia/Tokyo).
        #[arg(long)]
        expires: Option<chrono::NaiveDate>,
    },
    /// Revoke a token by id.
    Revoke {
        /// Token id (from `token list`).
        id: i64,
    },
    /// List tokens (never their secrets).
    List,
}

fn describe(t: &TokenInfo) -> String {
    format!(
        "token {}: {} ({}), created {} by {}{}{}",
        t.id,
        t.name,
        t.role,
        t.created_at.format("%Y-%m-%d %H:%M"),
        t.created_by,
        t.expires_on
            .map(|d| format!(", expires after {d}"))
            .unwrap_or_default(),
        t.revoked_at
            .map(|d| format!(", REVOKED {}", d.format("%Y-%m-%d %H:%M")))
            .unwrap_or_default(),
    )
}

/// Runs a token command.
pub fn run(db: &Database, cmd: TokenCommand) -> anyhow::Result<()> {
    let mut conn = db.connect()?;
    match cmd {
        TokenCommand::Create {
            role,
            name,
            expires,
        } => {
            let role = Role::parse(&role)?;
            let (info, secret) =
                tokens::create(&mut conn, role, &name, expires, &super::actor("user"))?;
            println!("{}", describe(&info));
            println!("Keep the token below; it is not stored and cannot be shown again:");
            println!("{secret}");
        }
        TokenCommand::Revoke { id } => {
            let info = tokens::revoke(&mut conn, id)?;
            println!("{}", describe(&info));
        }
        TokenCommand::List => {
            for t in tokens::list(&mut conn)? {
                println!("{}", describe(&t));
            }
        }
    }
    Ok(())
}
