//! One module per subcommand group.

pub mod access_log;
pub mod audit;
pub mod certificates;
pub mod export;
pub mod findings;
pub mod fixtures;
pub mod import;
pub mod insurers;
pub mod keys;
pub mod linkages;
pub mod migrate;
pub mod serve;
pub mod stats;
pub mod token;

/// Today in Asia/Tokyo, the date every eligibility rule is judged in. Japan has had no DST
/// since 1951, so a fixed +09:00 offset is exact.
pub fn today_tokyo() -> chrono::NaiveDate {
    (chrono::Utc::now().naive_utc() + chrono::Duration::hours(9)).date()
}

/// Who is acting, as recorded in histories: `ROLE:$USER` (for example `user:tanaka`,
/// `import:tanaka`), so the same login reads the same in every table.
pub fn actor(role: &str) -> String {
    format!(
        "{role}:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}
