//! `shikaku fixtures generate`: synthetic data only, never real people.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

/// Fixture commands.
#[derive(Debug, Subcommand)]
pub enum FixturesCommand {
    /// Write insurers, persons, linkages, residents, benefits and truth CSVs with planted
    /// defects.
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
    /// Calibration of the audit's p_other_person on a generated data set: the Brier score and
    /// a reliability table (Markdown), from its truth.csv and an exported findings.csv.
    Calibrate {
        /// The data set's truth.csv.
        #[arg(long)]
        truth: PathBuf,
        /// findings.csv from `shikaku audit export` after auditing the data set.
        #[arg(long)]
        findings: PathBuf,
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
                "wrote {} persons rows, {} linkages, {} residents, {} benefit records ({} planted \
                 defects, {} spelling variants) to {} in {:.1}s",
                s.persons_rows,
                s.linkages_rows,
                s.residents_rows,
                s.benefits_rows,
                s.defects,
                s.variants,
                out.display(),
                started.elapsed().as_secs_f64()
            );
        }
        FixturesCommand::Calibrate { truth, findings } => {
            let truth = shikaku_fixtures::read_truth_from(
                std::fs::File::open(&truth)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", truth.display()))?,
            )?;
            let mut rdr = csv::Reader::from_path(&findings)
                .map_err(|e| anyhow::anyhow!("{}: {e}", findings.display()))?;
            let headers = rdr.headers()?.clone();
            let col = |name: &str| {
                headers
                    .iter()
                    .position(|h| h == name)
                    .ok_or_else(|| anyhow::anyhow!("{}: no column {name}", findings.display()))
            };
            let cols = [
                col("insurer_number")?,
                col("symbol")?,
                col("number")?,
                col("branch")?,
                col("p_other_person")?,
            ];
            let mut scored: Vec<(String, f64)> = Vec::new();
            for (line, rec) in rdr.records().enumerate() {
                let rec = rec?;
                let p = &rec[cols[4]];
                if p.is_empty() {
                    continue;
                }
                let p: f64 = p.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "{}: line {}: p_other_person {p:?} is not a number",
                        findings.display(),
                        line + 2
                    )
                })?;
                let key = format!(
                    "{}:{}:{}:{}",
                    &rec[cols[0]], &rec[cols[1]], &rec[cols[2]], &rec[cols[3]]
                );
                scored.push((key, p));
            }
            let c = shikaku_fixtures::calibration::calibrate(
                &truth,
                scored.iter().map(|(k, p)| (k.as_str(), *p)),
            );
            print!("{}", c.markdown());
        }
    }
    Ok(ExitCode::SUCCESS)
}
