//! `shikaku stats`.

use std::process::ExitCode;

use crate::config::Database;

/// Prints registry counts.
pub fn run(db: &Database, on: Option<chrono::NaiveDate>, json: bool) -> anyhow::Result<ExitCode> {
    let on = on.unwrap_or_else(super::today_tokyo);
    let mut conn = db.connect()?;
    let s = shikaku_db::stats::registry_stats(&mut conn, on)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("registry on {on}");
    let rows = [
        ("insurers", s.insurers),
        ("persons (keys)", s.persons),
        ("qualification periods", s.qualifications),
        ("eligible persons", s.eligible),
        ("linkages", s.linkages),
        ("  active", s.linkages_active),
        ("  failing check digit", s.linkages_bad_check_digit),
        ("resident snapshots", s.resident_snapshots),
        ("  records in latest", s.residents_latest),
        ("recorded person changes", s.person_changes),
    ];
    for (label, n) in rows {
        println!("  {label:<26} {n:>12}");
    }
    Ok(ExitCode::SUCCESS)
}
