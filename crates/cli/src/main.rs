//! `shikaku`: the one binary. Subcommands wire the domain, database, audit, API, print and
//! fixture crates to the terminal; no rule and no SQL lives here. It is the only crate that
//! depends on all the others, and nothing depends on it.

mod commands;
mod config;
mod files;
mod logging;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the audit allocates strings on its stream threads
/// and frees them on others, which glibc's allocator handled at a quarter of the run's CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Insurer-side eligibility registry and My Number linkage audit.
#[derive(Debug, Parser)]
#[command(name = "shikaku", version, about)]
struct Cli {
    /// PostgreSQL URL of the registry database, as the application role.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// PostgreSQL URL as the owner of the tables, for `migrate` only (default: DATABASE_URL).
    #[arg(
        long,
        env = "SHIKAKU_OWNER_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    owner_database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending schema migrations (under an advisory lock).
    Migrate {
        /// Only list pending migrations.
        #[arg(long)]
        status: bool,
        /// Revert every migration: drops every table, the registry and the access log with it.
        /// For scratch databases; refused unless --confirm-database names the database.
        #[arg(long, conflicts_with = "status")]
        revert_all: bool,
        /// The name of the database to destroy, typed out, for --revert-all.
        #[arg(long, requires = "revert_all")]
        confirm_database: Option<String>,
    },
    /// Database administration: the least-privilege roles.
    #[command(subcommand)]
    Db(commands::db::DbCommand),
    /// Maintain insurers (保険者).
    #[command(subcommand)]
    Insurers(commands::insurers::InsurersCommand),
    /// Import persons.csv, linkages.csv or residents.csv (all-or-nothing).
    Import(commands::import::ImportArgs),
    /// Export the registry in the interchange formats.
    #[command(subcommand)]
    Export(commands::export::ExportCommand),
    /// Generate, rotate and apply the keys that protect My Numbers.
    #[command(subcommand)]
    Keys(commands::keys::KeysCommand),
    /// The linkage audit: run it, export its findings.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Review audit findings.
    #[command(subcommand)]
    Findings(commands::findings::FindingsCommand),
    /// Act on one My Number linkage.
    #[command(subcommand)]
    Linkages(commands::linkages::LinkagesCommand),
    /// 資格確認書: issue, reissue, revoke, mark returned, list.
    #[command(subcommand)]
    Certificates(commands::certificates::CertificatesCommand),
    /// Run the eligibility API (actix-web) until SIGTERM.
    Serve(commands::serve::ServeArgs),
    /// API bearer tokens.
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// The access log: verify its chain and checkpoints, checkpoint it, read it.
    #[command(subcommand)]
    AccessLog(commands::access_log::AccessLogCommand),
    /// Synthetic data for tests, demos and benchmarks.
    #[command(subcommand)]
    Fixtures(commands::fixtures::FixturesCommand),
    /// Registry counts.
    Stats {
        /// Judge eligibility on this date (default: today in Asia/Tokyo).
        #[arg(long)]
        on: Option<chrono::NaiveDate>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let db = config::Database::new(cli.database_url, cli.owner_database_url);
    match cli.command {
        Command::Migrate {
            status,
            revert_all,
            confirm_database,
        } => commands::migrate::run(&db, status, revert_all, confirm_database.as_deref()),
        Command::Db(cmd) => commands::db::run(cmd),
        Command::Insurers(cmd) => commands::insurers::run(&db, cmd),
        Command::Import(args) => commands::import::run(&db, args),
        Command::Export(cmd) => commands::export::run(&db, cmd),
        Command::Keys(cmd) => commands::keys::run(&db, cmd),
        Command::Audit(cmd) => commands::audit::run(&db, cmd),
        Command::Findings(cmd) => commands::findings::run(&db, cmd),
        Command::Linkages(cmd) => commands::linkages::run(&db, cmd),
        Command::Fixtures(cmd) => commands::fixtures::run(cmd),
        Command::Certificates(cmd) => {
            commands::certificates::run(&db, cmd).map(|()| ExitCode::SUCCESS)
        }
        Command::Serve(args) => commands::serve::run(&db, args).map(|()| ExitCode::SUCCESS),
        Command::Token(cmd) => commands::token::run(&db, cmd).map(|()| ExitCode::SUCCESS),
        Command::AccessLog(cmd) => commands::access_log::run(&db, cmd),
        Command::Stats { on, json } => commands::stats::run(&db, on, json),
    }
}

/// Logs go to stderr so that stdout stays machine-readable (`--json`, the token lines later).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
