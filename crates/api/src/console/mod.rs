//! The web console for insurer staff, in Japanese, rendered on the server with maud. Pages call
//! the same repository functions and the same eligibility code as the API, and every view of
//! personal data is in the access log. Every POST form carries the session's CSRF token.
//!
//! - [`session`]: sign-in, sessions, CSRF, the page-shaped error.
//! - [`layout`]: the page frame and stylesheet.
//! - [`persons`]: person search and the person page.
//! - [`eligibility`]: the eligibility check as a clinic sees it.
//! - [`certificates`]: certificates at the counter.
//! - [`queue`]: the auditors' review queue: paging, assignment, bulk decisions, export.
//! - [`findings`]: one finding, its verdicts and the linkage actions that resolve it.
//! - [`report`]: the review report (点検の集計).
//! - [`waterfall`]: the evidence behind an identity finding, item by item.
//! - [`uploads`]: CSV imports and the monthly ex-officio run from uploaded files.
//! - [`store`]: where uploads wait, sealed with a key only this process holds.
//! - [`access_log`]: the access log and its verification.

use actix_web::web;

use crate::error::ApiError;

pub mod access_log;
pub mod benefits;
pub mod certificates;
pub mod eligibility;
pub mod findings;
pub mod layout;
pub mod persons;
pub mod queue;
pub mod report;
pub mod session;
pub mod store;
pub mod uploads;
pub mod waterfall;

pub use session::{ConsoleError, Staff, COOKIE};

/// Registers the console's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::FormConfig::default()
            .limit(64 * 1024)
            .error_handler(|err, _| {
                ConsoleError::Api(ApiError::Invalid(crate::error::redact_numbers(&format!(
                    "フォームの内容が不正です: {err}"
                ))))
                .into()
            }),
    )
    .service(layout::stylesheet)
    .service(session::login_page)
    .service(session::login)
    .service(session::logout)
    .service(persons::home)
    .service(persons::search)
    .service(persons::person)
    .service(eligibility::eligibility_page)
    .service(eligibility::eligibility_check)
    .service(access_log::access_log_page)
    .service(access_log::access_log_verify)
    .service(benefits::add)
    .service(benefits::correct)
    .service(benefits::end)
    .service(certificates::issue)
    .service(certificates::set_facts)
    .service(certificates::act)
    .service(certificates::pdf)
    .service(queue::queue)
    // Before `/console/findings/{id}` (and `{id}/{action}`), whose patterns would take
    // `report` and `bulk` as ids.
    .service(report::report_page)
    .service(queue::today)
    .service(queue::preview)
    .service(queue::decide)
    .service(queue::assign)
    .service(queue::export)
    .service(queue::undo)
    .service(findings::show)
    .service(findings::verdict)
    .service(findings::linkage_action)
    .service(uploads::imports_page)
    .service(uploads::imports_check)
    .service(uploads::imports_apply)
    .service(uploads::due_page)
    .service(uploads::due_check)
    .service(uploads::due_run)
    .service(uploads::mailing);
}
