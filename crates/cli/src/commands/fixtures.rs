//! `shikaku fixtures generate`: synthetic data only, never real people.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

/// Fixture commands.
#[derive(Debug, Subcommand)]
pub enum FixturesCommand {
    /// Write insurers, persons, linkages, residents and truth CSVs with planted defects.
    Generate {
        /// Number of persons (insured and dependants).
        #[arg(long)]
        persons: u64,
        /// Random seed; the same seed gives byte-identical files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output directory (created).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs a fixtures subcommand.
pub fn run(cmd: FixturesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        FixturesCommand::Generate { persons, seed, out } => {
            std::fs::create_dir_all(&out)?;
            let config = shikaku_fixtures::Config {
                persons,
                seed,
                ..shikaku_fixtures::Config::default()
            };
            let started = std::time::Instant::now();
            let s = shikaku_fixtures::generate(&config, &out)?;
            eprintln!(
                "wrote {} persons rows, {} linkages, {} residents ({} planted defects, {} \
                 spelling variants) to {} in {:.1}s",
                s.persons_rows,
                s.linkages_rows,
                s.residents_rows,
                s.defects,
                s.variants,
                out.display(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
