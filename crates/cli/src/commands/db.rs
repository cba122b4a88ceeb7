//! `shikaku db roles`: creates the least-privilege roles (owner, application, reader) and hands
//! the database to the owner, as an administrator would once per database. Writes the three
//! URLs (with generated passwords) to an owner-only environment file that the scripts read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use shikaku_db::roles::{self, Passwords, Roles};

/// Database administration.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create (or update) the owner, application and reader roles, make the owner own the
    /// database and everything in it, and grant the others their privileges.
    Roles {
        /// An administrator's URL (a superuser, or a role with CREATEROLE owning the database).
        #[arg(long, env = "SHIKAKU_ADMIN_DATABASE_URL", hide_env_values = true)]
        admin_url: String,
        /// Role names are PREFIX_owner, PREFIX_app and PREFIX_reader.
        #[arg(long, env = "SHIKAKU_DB_ROLE_PREFIX", default_value = "shikaku")]
        prefix: String,
        /// Write DATABASE_URL, SHIKAKU_OWNER_DATABASE_URL and SHIKAKU_READER_DATABASE_URL here
        /// (mode 0600). Passwords already in the file are kept; missing ones are generated.
        #[arg(long)]
        env_file: PathBuf,
    },
}

/// Runs a db subcommand.
pub fn run(cmd: DbCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DbCommand::Roles {
            admin_url,
            prefix,
            env_file,
        } => {
            let roles = Roles::with_prefix(&prefix);
            let known = read_env(&env_file)?;
            let pw = |var: &str| {
                known
                    .iter()
                    .find(|(k, _)| k == var)
                    .and_then(|(_, url)| password_of(url))
                    .unwrap_or_else(roles::new_password)
            };
            let passwords = Passwords {
                owner: Some(pw("SHIKAKU_OWNER_DATABASE_URL")),
                app: Some(pw("DATABASE_URL")),
                reader: Some(pw("SHIKAKU_READER_DATABASE_URL")),
            };
            let database = database_of(&admin_url)
                .context("the admin URL must name the database (…/dbname)")?;
            let mut admin = shikaku_db::connect(&admin_url)?;
            roles::create(&mut admin, &roles, &passwords, &database)?;
            roles::transfer_ownership(&mut admin, &roles)?;
            roles::grant(&mut admin, &roles)?;
            let url = |role: &str, password: &Option<String>| {
                with_user(&admin_url, role, password.as_deref().unwrap_or(""))
            };
            let lines = [
                ("DATABASE_URL", url(&roles.app, &passwords.app)),
                (
                    "SHIKAKU_OWNER_DATABASE_URL",
                    url(&roles.owner, &passwords.owner),
                ),
                (
                    "SHIKAKU_READER_DATABASE_URL",
                    url(&roles.reader, &passwords.reader),
                ),
            ];
            write_env(&env_file, &lines)?;
            eprintln!(
                "roles {}, {} and {} ready on database {database}; URLs in {} (mode 0600)",
                roles.owner,
                roles.app,
                roles.reader,
                env_file.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `VAR=value` lines of an existing environment file (none when absent).
fn read_env(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().to_string(),
                    v.trim().trim_matches('\'').to_string(),
                )
            })
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_env(path: &Path, lines: &[(&str, String)]) -> anyhow::Result<()> {
    let mut text = zeroize::Zeroizing::new(String::from(
        "# Written by `shikaku db roles`: the least-privilege roles' URLs. Keep it private.\n",
    ));
    for (k, v) in lines {
        text.push_str(&format!("{k}='{v}'\n"));
    }
    crate::files::write_atomic_private(path, text.as_bytes())
}

/// The database name of a URL.
fn database_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = rest.split_once('/')?.1;
    let name = path.split('?').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// The password in a URL's user info.
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    let pw = userinfo.split_once(':')?.1;
    (!pw.is_empty()).then(|| pw.to_string())
}

/// `url` with its user info replaced by `user:password`.
fn with_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}:{password}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_taken_apart_and_put_together() {
        assert_eq!(
            database_of("postgres://a@h:5/db?sslmode=disable").as_deref(),
            Some("db")
        );
        assert_eq!(database_of("postgres://a@h:5"), None);
        assert_eq!(
            password_of("postgres://u:secret@h/db").as_deref(),
            Some("secret")
        );
        assert_eq!(password_of("postgres://u@h/db"), None);
        assert_eq!(
            with_user("postgres://root@127.0.0.1:5432/x", "app", "pw"),
            "postgres://app:pw@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_user("postgres://127.0.0.1/x", "app", "pw"),
            "postgres://app:pw@127.0.0.1/x"
        );
    }
}
