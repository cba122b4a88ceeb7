//! `shikaku insurers add|list`.

use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use shikaku_db::insurers::{self, NewInsurer};
use shikaku_domain::InsurerNumber;

use crate::config::Database;

/// Insurer maintenance.
#[derive(Debug, Subcommand)]
pub enum InsurersCommand {
    /// Register an insurer, or update it when the number exists.
    Add {
        /// 保険者番号 (8 digits, or 6 for 国保).
        number: String,
        /// 保険者名称.
        #[arg(long)]
        name: String,
        /// kyokai, kumiai, kyosai, kokuho, koki or other.
        #[arg(long, default_value = "other")]
        kind: String,
        /// Certificate validity: years_from_issue, fixed_date or yearly_july.
        #[arg(long, default_value = "years_from_issue")]
        cert_policy: String,
        /// Years of validity for years_from_issue (1 to 5).
        #[arg(long, default_value_t = 5)]
        cert_years: i16,
        /// Common expiry date for fixed_date.
        #[arg(long)]
        cert_fixed_until: Option<chrono::NaiveDate>,
        /// Print the 限度額適用区分 and 特定疾病 on this insurer's certificates (optional
        /// printed items; the category is always kept with the certificate).
        #[arg(long)]
        cert_prints_benefits: bool,
    },
    /// List insurers.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an insurers subcommand.
pub fn run(db: &Database, cmd: InsurersCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        InsurersCommand::Add {
            number,
            name,
            kind,
            cert_policy,
            cert_years,
            cert_fixed_until,
            cert_prints_benefits,
        } => {
            let number = InsurerNumber::parse(&number)?;
            if !["kyokai", "kumiai", "kyosai", "kokuho", "koki", "other"].contains(&kind.as_str()) {
                bail!("--kind must be one of kyokai, kumiai, kyosai, kokuho, koki, other");
            }
            match cert_policy.as_str() {
                "years_from_issue" | "yearly_july" => {}
                "fixed_date" if cert_fixed_until.is_some() => {}
                "fixed_date" => bail!("--cert-policy fixed_date needs --cert-fixed-until"),
                _ => bail!("--cert-policy must be years_from_issue, fixed_date or yearly_july"),
            }
            if !(1..=5).contains(&cert_years) {
                bail!("--cert-years must be 1 to 5 (a certificate is valid at most 5 years)");
            }
            let mut conn = db.connect()?;
            let created = insurers::upsert(
                &mut conn,
                &NewInsurer {
                    insurer_number: number.as_str().to_string(),
                    name,
                    kind,
                    cert_policy,
                    cert_years,
                    cert_fixed_until,
                    cert_prints_benefits,
                },
            )?;
            println!(
                "{} insurer {}",
                if created { "added" } else { "updated" },
                number
            );
        }
        InsurersCommand::List { json } => {
            let mut conn = db.connect()?;
            let all = insurers::list(&mut conn)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!("{:<10} {:<8} {:<18} name", "number", "kind", "certificates");
                for i in all {
                    let policy = match i.cert_policy.as_str() {
                        "years_from_issue" => format!("{} years", i.cert_years),
                        "fixed_date" => i
                            .cert_fixed_until
                            .map_or_else(String::new, |d| format!("until {d}")),
                        other => other.to_string(),
                    };
                    println!(
                        "{:<10} {:<8} {:<18} {}",
                        i.insurer_number, i.kind, policy, i.name
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
