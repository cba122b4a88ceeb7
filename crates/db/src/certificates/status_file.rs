//! The monthly card-registration status file (card_status.csv): which persons have a usable
//! マイナ保険証. Read completely and checked before anything is issued, with the same reader,
//! header checks and line numbers as the imports, and the same row validation
//! ([`shikaku_domain::records::card_status_row`]).

use std::collections::HashMap;
use std::io::Read;

use shikaku_domain::records::{self, CARD_STATUS};

use super::due::DueError;
use crate::import::{read_all, CountedIssues, ImportError, Issue, IssueLevel};

/// How many of a status file's errors are kept for the report; the rest are counted. A whole
/// national file of bad lines must not be held in memory as messages.
pub const KEPT_ERRORS: usize = 1000;

/// One usable line: the person key as stored ('' for an absent 記号 or 枝番) and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    /// The line the row is on.
    pub line: u64,
    /// insurer_number, symbol, number, branch, card_status.
    pub columns: [String; 5],
}

/// Reads and checks the whole status file; every unusable line (and a person given twice)
/// is an error, and any error means nothing is issued.
pub fn read<R: Read>(file: &str, input: R) -> Result<Vec<StatusRow>, DueError> {
    let mut issues = CountedIssues::new(KEPT_ERRORS);
    let (rows, _) = read_all(input, CARD_STATUS, &mut issues, |layout, line, rec| {
        let row = records::card_status_row(layout, rec)?;
        let k = &row.key;
        let opt = |s: Option<&str>| s.unwrap_or("").to_string();
        Ok((
            StatusRow {
                line,
                columns: [
                    k.insurer.to_string(),
                    opt(k.symbol.as_ref().map(|s| s.as_str())),
                    k.number.to_string(),
                    opt(k.branch.as_ref().map(|b| b.as_str())),
                    row.status.as_str().to_string(),
                ],
            },
            Vec::new(),
        ))
    })
    .map_err(|e| match e {
        ImportError::Read(reason) => DueError::Read {
            file: file.to_string(),
            reason,
        },
        ImportError::Db(e) => DueError::Db(e),
    })?;
    let mut total = issues.errors;
    let mut errors: Vec<Issue> = issues
        .kept
        .into_iter()
        .filter(|i| i.level == IssueLevel::Error)
        .collect();
    let mut seen: HashMap<&[String], u64> = HashMap::new();
    for row in &rows {
        if let Some(first) = seen.insert(&row.columns[..4], row.line) {
            total += 1;
            if errors.len() < KEPT_ERRORS {
                errors.push(Issue {
                    level: IssueLevel::Error,
                    line: row.line,
                    column: "row".into(),
                    reason: format!("the same person as line {first}"),
                });
            }
        }
    }
    if total == 0 {
        Ok(rows)
    } else {
        errors.sort_by_key(|i| i.line);
        Err(DueError::File {
            file: file.to_string(),
            errors,
            total,
        })
    }
}
