//! One module per subcommand group.

pub mod access_log;
pub mod audit;
pub mod certificates;
pub mod db;
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

pub use shikaku_db::today_tokyo;

/// Who is acting, as recorded in histories: `ROLE:$USER` (for example `user:tanaka`,
/// `import:tanaka`), so the same login reads the same in every table.
pub fn actor(role: &str) -> String {
    format!(
        "{role}:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}
