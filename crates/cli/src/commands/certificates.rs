//! `shikaku certificates issue|reissue|revoke|returned|list|show|facts|issue-due|expire`: the
//! 資格確認書 counter work and the runs.
//! A person is named by the JP Core member identifier `保険者番号:記号:番号:枝番` (empty parts
//! kept, e.g. `00012344::187:`).

use clap::{Args, Subcommand};
use shikaku_db::certificates::{self, CertificateView, IssueOptions};
use shikaku_db::persons::{self, CertificateFacts};
use shikaku_domain::CertificateKind;
use shikaku_domain::PersonKey;

use crate::config::{load_keyring, Database};
use crate::logging;
use diesel::Connection;

/// Certificate commands.
#[derive(Debug, Subcommand)]
pub enum CertificatesCommand {
    /// Issue a certificate to a person insured on the day (refused if one is active).
    Issue {
        /// The person: 保険者番号:記号:番号:枝番.
        person: String,
        /// application, ex_officio or koki_automatic.
        #[arg(long, default_value = "application")]
        kind: CertificateKind,
        #[command(flatten)]
        options: OptionArgs,
    },
    /// Replace an active certificate (lost, damaged, a change of name, address, co-pay or
    /// household); the old one is superseded.
    Reissue {
        /// Certificate id.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        options: OptionArgs,
    },
    /// Revoke an active certificate.
    Revoke {
        /// Certificate id.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Print the certificate as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Record that a certificate was returned.
    Returned {
        /// Certificate id.
        id: i64,
        /// How it came back.
        #[arg(long)]
        reason: String,
        /// Print the certificate as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show or set the facts stored on a person that decide their certificates: the end of
    /// 任意継続, the end of the residence permit, and a 要配慮者's request for a certificate at
    /// every renewal. Each change is kept in the person's history.
    Facts {
        /// The person: 保険者番号:記号:番号:枝番.
        person: String,
        /// Last day of 任意継続.
        #[arg(long, conflicts_with = "clear_voluntary_until")]
        voluntary_until: Option<chrono::NaiveDate>,
        /// Clear the end of 任意継続.
        #[arg(long)]
        clear_voluntary_until: bool,
        /// Last day of the residence permit.
        #[arg(long, conflicts_with = "clear_residence_until")]
        residence_until: Option<chrono::NaiveDate>,
        /// Clear the end of the residence permit.
        #[arg(long)]
        clear_residence_until: bool,
        /// 要配慮者's request for a certificate at every renewal: yes or no.
        #[arg(long)]
        requested: Option<YesNo>,
        /// Print the facts as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A person's certificates, newest first.
    List {
        /// The person: 保険者番号:記号:番号:枝番.
        person: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// 職権交付: issue to everyone insured without a usable マイナ保険証 (per the monthly
    /// card-registration status file, or with a suspended linkage), to every 後期高齢者 member
    /// until 2026-07-31 and to every 要配慮者 who asked; and issue the next certificate, valid
    /// from the day after the current one ends, to those whose certificate ends before the next
    /// run. Idempotent.
    IssueDue {
        /// The status file (CSV: insurer_number,symbol,number,branch,card_status).
        #[arg(long)]
        status_file: std::path::PathBuf,
        /// Issue date (default: today in Asia/Tokyo).
        #[arg(long)]
        on: Option<chrono::NaiveDate>,
        /// Day of the next run: certificates ending before it are followed now by one valid
        /// from the day after they end (default: a month after the issue date).
        #[arg(long)]
        next_run: Option<chrono::NaiveDate>,
        /// Last day of the 後期高齢者 transitional rule.
        #[arg(long, default_value = "2026-07-31")]
        koki_until: chrono::NaiveDate,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Write every new certificate to this PDF (A4 with cut marks) for mailing.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Why the run is made (recorded in the access log with what it issued).
        #[arg(long)]
        reason: String,
        /// Replace OUT if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Settle certificates on a day (run daily): those past their 有効期限 become expired,
    /// those ended by a loss of qualification whose date has come become revoked (void, to be
    /// returned), and renewals whose first valid day has come become active.
    Expire {
        /// The day (default: today in Asia/Tokyo).
        #[arg(long)]
        on: Option<chrono::NaiveDate>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a certificate as PDF: a card-size page, or an A4 sheet with cut marks.
    Print {
        /// Certificate id.
        id: i64,
        /// The PDF to write.
        #[arg(long)]
        out: std::path::PathBuf,
        /// card or a4.
        #[arg(long, default_value = "card")]
        layout: String,
        /// Replace OUT if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Write the 資格情報のお知らせ (A4, for a マイナ保険証 holder) as PDF.
    Notice {
        /// The person: 保険者番号:記号:番号:枝番.
        person: String,
        /// The PDF to write.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Date of the notice (default: today in Asia/Tokyo).
        #[arg(long)]
        on: Option<chrono::NaiveDate>,
        /// Replace OUT if it exists.
        #[arg(long)]
        force: bool,
    },
    /// One certificate with its printed items and history.
    Show {
        /// Certificate id.
        id: i64,
    },
}

/// Options shared by issue and reissue.
#[derive(Debug, Args)]
pub struct OptionArgs {
    /// Issue date (default: today in Asia/Tokyo).
    #[arg(long)]
    on: Option<chrono::NaiveDate>,
    /// Print 裏面参照 instead of the sex.
    #[arg(long)]
    sex_on_back: bool,
    /// Last day of 任意継続 (stored on the person, with history, for every later issue).
    #[arg(long)]
    voluntary_until: Option<chrono::NaiveDate>,
    /// Last day of the residence permit (stored on the person like --voluntary-until).
    #[arg(long)]
    residence_until: Option<chrono::NaiveDate>,
    /// 備考.
    #[arg(long)]
    remarks: Option<String>,
    /// Print the resulting certificate as JSON.
    #[arg(long)]
    json: bool,
}

impl OptionArgs {
    fn options(&self) -> IssueOptions {
        IssueOptions {
            sex_on_back: self.sex_on_back,
            voluntary_until: self.voluntary_until,
            residence_until: self.residence_until,
            remarks: self.remarks.clone(),
        }
    }
}

/// The `--json` form: what a script needs to follow up.
fn json(c: &CertificateView) -> serde_json::Value {
    serde_json::json!({
        "id": c.id,
        "number": c.number,
        "valid_from": c.valid_from,
        "valid_until": c.valid_until,
        "status": c.status,
    })
}

fn print(c: &CertificateView, as_json: bool) {
    if as_json {
        println!("{}", json(c));
    } else {
        println!(
            "certificate {} (id {}): {} for person {}, issued {}, valid {} to {} ({}), {}",
            c.number,
            c.id,
            c.kind,
            c.person_id,
            c.issued_on,
            c.valid_from,
            c.valid_until,
            c.valid_until_reason,
            c.status
        );
    }
}

/// A yes/no flag on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum YesNo {
    /// Yes.
    Yes,
    /// No.
    No,
}

fn key(s: &str) -> anyhow::Result<PersonKey> {
    s.parse::<PersonKey>()
        .map_err(|e| anyhow::anyhow!("{s:?} is not a person key 保険者番号:記号:番号:枝番 ({e})"))
}

/// The access-log entry of `action` on `cert`.
fn cert_entry(
    action: &str,
    c: &CertificateView,
    reason: Option<&str>,
) -> shikaku_db::access_log::NewEntry {
    logging::entry(
        action,
        Some(format!("person:{}", c.person_id)),
        serde_json::json!({ "certificate_id": c.id }),
        serde_json::json!({ "number": c.number, "status": c.status }),
        reason,
    )
}

/// Runs a certificates command. Every command reads or changes a person's certificate and is
/// logged; a change commits with its entry.
pub fn run(db: &Database, cmd: CertificatesCommand) -> anyhow::Result<()> {
    let (keyring, _) = load_keyring()?;
    let mut conn = db.connect()?;
    let actor = super::actor("user");
    // A change and its entry, in one transaction.
    let mut change =
        |action: &str,
         reason: Option<&str>,
         f: &dyn Fn(&mut diesel::PgConnection) -> Result<CertificateView, shikaku_db::DbError>|
         -> anyhow::Result<CertificateView> {
            conn.transaction(|conn| {
                let c = f(conn)?;
                logging::record(conn, &keyring, &[cert_entry(action, &c, reason)])?;
                anyhow::Ok(c)
            })
        };
    match cmd {
        CertificatesCommand::Issue {
            person,
            kind,
            options,
        } => {
            let key = key(&person)?;
            let on = options.on.unwrap_or_else(super::today_tokyo);
            let opts = options.options();
            let c = change("certificate_issue", None, &|conn| {
                let id = certificates::person_id(conn, &key)?;
                certificates::issue(conn, id, kind, on, &opts, &actor)
            })?;
            print(&c, options.json);
        }
        CertificatesCommand::Reissue {
            id,
            reason,
            options,
        } => {
            let on = options.on.unwrap_or_else(super::today_tokyo);
            let opts = options.options();
            let c = change("certificate_reissue", Some(&reason), &|conn| {
                certificates::reissue(conn, id, on, &opts, &reason, &actor)
            })?;
            print(&c, options.json);
        }
        CertificatesCommand::Revoke { id, reason, json } => {
            let c = change("certificate_revoke", Some(&reason), &|conn| {
                certificates::revoke(conn, id, &reason, &actor)
            })?;
            print(&c, json);
        }
        CertificatesCommand::Returned { id, reason, json } => {
            let c = change("certificate_returned", Some(&reason), &|conn| {
                certificates::returned(conn, id, &reason, &actor)
            })?;
            print(&c, json);
        }
        CertificatesCommand::Facts {
            person,
            voluntary_until,
            clear_voluntary_until,
            residence_until,
            clear_residence_until,
            requested,
            json,
        } => {
            let key = key(&person)?;
            let changing = voluntary_until.is_some()
                || clear_voluntary_until
                || residence_until.is_some()
                || clear_residence_until
                || requested.is_some();
            let facts = conn.transaction(|conn| {
                let id = certificates::person_id(conn, &key)?;
                let stored = persons::get(conn, id)?;
                let mut facts = CertificateFacts::of(&stored.record);
                if changing {
                    if clear_voluntary_until {
                        facts.voluntary_until = None;
                    }
                    facts.voluntary_until = voluntary_until.or(facts.voluntary_until);
                    if clear_residence_until {
                        facts.residence_until = None;
                    }
                    facts.residence_until = residence_until.or(facts.residence_until);
                    if let Some(r) = requested {
                        facts.certificate_requested = r == YesNo::Yes;
                    }
                    persons::set_certificate_facts(conn, id, &facts, &actor)?;
                }
                logging::record(
                    conn,
                    &keyring,
                    &[logging::entry(
                        if changing {
                            "person_update"
                        } else {
                            "person_read"
                        },
                        Some(format!("person:{id}")),
                        serde_json::json!({ "person_id": id, "certificate_facts": changing }),
                        serde_json::json!({ "found": true }),
                        None,
                    )],
                )?;
                anyhow::Ok(facts)
            })?;
            if json {
                println!("{}", serde_json::to_string(&facts)?);
            } else {
                let date =
                    |d: Option<chrono::NaiveDate>| d.map_or("-".to_string(), |d| d.to_string());
                println!("任意継続の終了日     {}", date(facts.voluntary_until));
                println!("在留期間の満了日     {}", date(facts.residence_until));
                println!(
                    "要配慮者の交付希望   {}",
                    if facts.certificate_requested {
                        "yes"
                    } else {
                        "no"
                    }
                );
            }
        }
        CertificatesCommand::List { person, json } => {
            let id = certificates::person_id(&mut conn, &key(&person)?)?;
            let list = certificates::of_person(&mut conn, id)?;
            logging::record(
                &mut conn,
                &keyring,
                &[logging::entry(
                    "certificate_list",
                    Some(format!("person:{id}")),
                    serde_json::json!({ "person_id": id }),
                    serde_json::json!({ "certificates": list.len() }),
                    None,
                )],
            )?;
            if json {
                println!(
                    "{}",
                    serde_json::Value::Array(list.iter().map(self::json).collect())
                );
            } else {
                for c in &list {
                    print(c, false);
                }
            }
        }
        CertificatesCommand::IssueDue {
            status_file,
            on,
            next_run,
            koki_until,
            json,
            out,
            reason,
            force,
        } => {
            shikaku_domain::free_text::FreeText::Reason.check(&reason)?;
            // The run commits before the PDF is written: find out now whether it can be.
            if let Some(out) = &out {
                crate::files::check_writable(out, force)?;
            }
            let name = status_file.display().to_string();
            let input = std::fs::File::open(&status_file)
                .map_err(|e| anyhow::anyhow!("cannot open {name}: {e}"))?;
            let on = on.unwrap_or_else(super::today_tokyo);
            let options = certificates::DueOptions {
                on,
                next_run: next_run.unwrap_or_else(|| certificates::next_run_after(on)),
                koki_until,
            };
            // The run and its entry commit together: certificates issued are personal data
            // printed and mailed.
            let run = conn.transaction(|conn| {
                let summary = certificates::issue_due(
                    conn,
                    &name,
                    std::io::BufReader::new(input),
                    options,
                    &super::actor("batch"),
                )?;
                shikaku_db::access_log::append(
                    conn,
                    &keyring,
                    &[logging::entry(
                        "certificates_issue_due",
                        None,
                        serde_json::json!({ "status_file": name, "on": options.on,
                                            "mailing_pdf": out.as_ref().map(|o| o.display().to_string()) }),
                        serde_json::json!({ "issued": summary.certificate_ids.len(),
                                            "renewed": summary.renewed,
                                            "certificate_ids": summary.certificate_ids.iter()
                                                .take(shikaku_db::access_log::LISTED_IDS)
                                                .collect::<Vec<_>>() }),
                        Some(&reason),
                    )],
                )?;
                Ok::<_, certificates::DueError>(summary)
            });
            let summary = match run {
                Ok(s) => s,
                Err(certificates::DueError::File {
                    file,
                    errors,
                    total,
                }) => {
                    for e in errors.iter().take(20) {
                        eprintln!("error: {file}:{}: {}: {}", e.line, e.column, e.reason);
                    }
                    anyhow::bail!("{file}: {total} line(s) cannot be used; nothing was issued");
                }
                Err(e) => return Err(e.into()),
            };
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                println!(
                    "ex-officio run on {} ({name}, {} status lines)",
                    options.on, summary.status_rows
                );
                println!(
                    "  issued (no usable card)      {:>8}",
                    summary.issued_ex_officio
                );
                println!("  issued (後期高齢者)          {:>8}", summary.issued_koki);
                println!(
                    "  issued (要配慮者, requested) {:>8}",
                    summary.issued_requested
                );
                println!("  renewed ahead (pending)      {:>8}", summary.renewed);
                println!(
                    "  already holding one          {:>8}",
                    summary.already_holding
                );
                println!("  no validity left (skipped)   {:>8}", summary.skipped);
                println!("  not renewed (no longer due)  {:>8}", summary.not_renewed);
                println!("  expired before the run       {:>8}", summary.expired);
                println!("  revoked (loss date reached)  {:>8}", summary.revoked);
                println!("  renewals now in force        {:>8}", summary.activated);
                println!(
                    "  status lines not in registry {:>8}",
                    summary.not_in_registry
                );
            }
            if let Some(out) = out {
                if summary.certificate_ids.is_empty() {
                    println!("no new certificates: {} not written", out.display());
                } else {
                    let printed = certificates::printed_of(&mut conn, &summary.certificate_ids)?;
                    let pdf = shikaku_print::certificates_pdf(
                        &crate::config::load_font()?,
                        &printed,
                        shikaku_print::Layout::A4,
                    )?;
                    crate::files::write_private(&out, &pdf, force)?;
                    println!(
                        "wrote {} certificate(s) for mailing to {}",
                        printed.len(),
                        out.display()
                    );
                }
            }
        }
        CertificatesCommand::Expire { on, json } => {
            let on = on.unwrap_or_else(super::today_tokyo);
            let settled = certificates::expire(&mut conn, on, &super::actor("batch"))?;
            if json {
                println!("{}", serde_json::to_string(&settled)?);
            } else {
                println!("certificates settled on {on}");
                println!("  expired                      {:>8}", settled.expired);
                println!("  revoked (loss date reached)  {:>8}", settled.revoked);
                println!("  renewals now in force        {:>8}", settled.activated);
            }
        }
        CertificatesCommand::Print {
            id,
            out,
            layout,
            force,
        } => {
            let layout = shikaku_print::Layout::parse(&layout)
                .ok_or_else(|| anyhow::anyhow!("--layout must be card or a4"))?;
            let cert = certificates::printable(&mut conn, id)?;
            logging::record(
                &mut conn,
                &keyring,
                &[cert_entry("certificate_print", &cert, None)],
            )?;
            let pdf = shikaku_print::certificates_pdf(
                &crate::config::load_font()?,
                std::slice::from_ref(&cert.printed),
                layout,
            )?;
            crate::files::write_private(&out, &pdf, force)?;
            println!("wrote certificate {} to {}", cert.number, out.display());
        }
        CertificatesCommand::Notice {
            person,
            out,
            on,
            force,
        } => {
            let id = certificates::person_id(&mut conn, &key(&person)?)?;
            let on = on.unwrap_or_else(super::today_tokyo);
            let n = certificates::notice_data(&mut conn, id, on)?;
            logging::record(
                &mut conn,
                &keyring,
                &[logging::entry(
                    "notice_print",
                    Some(format!("person:{id}")),
                    serde_json::json!({ "person_id": id, "on": on }),
                    serde_json::json!({ "my_number_last4": n.my_number_last4 }),
                    None,
                )],
            )?;
            let rate = n.copay_on(on)?;
            let notice = shikaku_print::Notice {
                name: n.person.name_kanji,
                birth_date: n.person.birth_date,
                insurer_number: n.person.insurer_number,
                insurer_name: n.person.insurer_name,
                symbol: n.person.symbol,
                number: n.person.number,
                branch: n.person.branch,
                acquired_on: n.acquired_on,
                copay_percent: rate.percent(),
                my_number_last4: n.my_number_last4,
                issued_on: on,
            };
            let pdf = shikaku_print::notice_pdf(&crate::config::load_font()?, &notice)?;
            crate::files::write_private(&out, &pdf, force)?;
            println!("wrote 資格情報のお知らせ for {person} to {}", out.display());
        }
        CertificatesCommand::Show { id } => {
            let c = certificates::get(&mut conn, id)?;
            logging::record(
                &mut conn,
                &keyring,
                &[cert_entry("certificate_read", &c, None)],
            )?;
            print(&c, false);
            println!("printed: {}", serde_json::to_string_pretty(&c.printed)?);
            for e in certificates::events(&mut conn, id)? {
                println!(
                    "  {} {} by {}{}",
                    e.at.format("%Y-%m-%d %H:%M"),
                    e.action,
                    e.actor,
                    e.reason.map(|r| format!(": {r}")).unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
