//! The reviewers' bulk work over HTTP: assigning findings, bulk decisions with their preview
//! and undo, and the review report. The same repository functions as the console and
//! `shikaku findings` do the work; every action is in the access log with its selection.

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use shikaku_db::findings::bulk::{
    self, Assignment, BulkAction, BulkOutcome, Preview, Selection, Undone,
};
use shikaku_db::findings::report::{self as review_report, Report};
use shikaku_db::findings::{QueueOrder, Verdict};
use shikaku_domain::finding::{FindingKind, FindingStatus, ReviewAction, Severity};
use utoipa::{IntoParams, ToSchema};

use crate::access::entry;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::findings::{filter_of, REVIEWERS};
use crate::input::Checked;
use crate::state::AppState;

/// Which findings: `ids` (ticked ones), or else every finding the filter fields match.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectionBody {
    /// These findings (at most 10,000); when given, the filter fields must be absent.
    pub ids: Option<Vec<i64>>,
    /// Only this review status.
    pub status: Option<FindingStatus>,
    /// Only this kind.
    pub kind: Option<FindingKind>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only persons of this 保険者番号.
    pub insurer: Option<String>,
    /// Only findings assigned to this reviewer; `-` for unassigned ones.
    pub assignee: Option<String>,
    /// Only findings last seen by this audit run.
    pub run: Option<i64>,
}

impl SelectionBody {
    fn selection(self) -> Result<Selection, ApiError> {
        match self.ids {
            Some(ids) => {
                let filtered = self.status.is_some()
                    || self.kind.is_some()
                    || self.severity.is_some()
                    || self.insurer.is_some()
                    || self.assignee.is_some()
                    || self.run.is_some();
                if filtered {
                    return Err(ApiError::Invalid(
                        "selection: give either ids or filter fields, not both".into(),
                    ));
                }
                if ids.is_empty() || ids.len() > 10_000 {
                    return Err(ApiError::Invalid(
                        "ids: between 1 and 10,000 finding ids".into(),
                    ));
                }
                Ok(Selection::Ids(ids))
            }
            None => Ok(Selection::Filter(filter_of(
                self.status,
                self.kind,
                self.severity,
                self.insurer,
                self.assignee,
                self.run,
            )?)),
        }
    }
}

/// An assignment: the selection, in `order`, `each` to each reviewer in turn; no reviewers
/// means back to the shared queue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// Which findings.
    pub selection: SelectionBody,
    /// Token names of admins or auditors; empty to unassign.
    pub reviewers: Vec<String>,
    /// How many to each (default: all of the selection, split evenly).
    #[schema(minimum = 1)]
    pub each: Option<i64>,
    /// The order the selection is taken in (default severity).
    pub order: Option<QueueOrder>,
}

/// Assigns findings to reviewers, or back to nobody.
#[utoipa::path(
    tag = "findings",
    request_body = AssignBody,
    responses((status = 200, body = BulkOutcome), (status = 422, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, auditor. Every change of assignee is in the finding's history."
)]
#[post("/v1/findings/assign")]
pub async fn assign(
    state: web::Data<AppState>,
    caller: Caller,
    body: Checked<AssignBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(REVIEWERS)?;
    let b = body.into_inner();
    let selection = b.selection.selection()?;
    let assignment = if b.reviewers.is_empty() {
        Assignment::Clear
    } else {
        Assignment::To {
            reviewers: b.reviewers,
            each: b.each,
            order: b.order.unwrap_or_default(),
        }
    };
    let (actor, c) = (caller.actor(), caller.clone());
    let outcome = state
        .logged_change(move |conn| {
            let outcome = bulk::assign(conn, &selection, &assignment, &actor)?;
            let e = entry(
                &c,
                "findings_assign",
                None,
                json!({ "selection": selection.logged(), "bulk_id": outcome.bulk_id }),
                json!({ "findings": outcome.findings }),
                None,
            );
            Ok((outcome, vec![e]))
        })
        .await?;
    Ok(HttpResponse::Ok().json(outcome))
}

/// What a bulk decision would change: how many open findings, of which kinds, and whether it
/// would be refused (a critical finding in the selection).
#[utoipa::path(
    tag = "findings",
    request_body = SelectionBody,
    responses((status = 200, body = Preview), (status = 422, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, auditor."
)]
#[post("/v1/findings/bulk/preview")]
pub async fn preview(
    state: web::Data<AppState>,
    caller: Caller,
    body: Checked<SelectionBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(REVIEWERS)?;
    let selection = body.into_inner().selection()?;
    let request = selection.logged();
    let p = state
        .blocking(move |conn| Ok(bulk::preview(conn, &selection)?))
        .await?;
    state
        .access_log
        .record(vec![entry(
            &caller,
            "findings_bulk_preview",
            None,
            request,
            json!({ "decidable": p.decidable, "critical": p.critical }),
            None,
        )])
        .await?;
    Ok(HttpResponse::Ok().json(p))
}

/// A bulk decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    /// Which findings (only the open ones are decided).
    pub selection: SelectionBody,
    /// `confirm` or `dismiss`.
    pub action: ReviewAction,
    /// The shared reason (required): one line, no My Number.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
    /// For a dismissal: the last day it holds.
    pub until: Option<chrono::NaiveDate>,
    /// The preview's `decidable`: the decision is refused if the selection changed since.
    pub expected: i64,
}

/// Confirms or dismisses every open finding of the selection with one reason. Refused (409)
/// when the selection holds a critical finding or no longer matches the preview.
#[utoipa::path(
    tag = "findings",
    request_body = BulkBody,
    responses((status = 200, body = BulkOutcome), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, auditor."
)]
#[post("/v1/findings/bulk")]
pub async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    body: Checked<BulkBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(REVIEWERS)?;
    let b = body.into_inner();
    let selection = b.selection.selection()?;
    let verdict = Verdict {
        action: b.action,
        reason: b.reason,
        until: b.until,
    };
    let (actor, c, expected) = (caller.actor(), caller.clone(), b.expected);
    let outcome = state
        .logged_change(move |conn| {
            let outcome = bulk::decide(conn, &selection, &verdict, expected, &actor)?;
            let e = entry(
                &c,
                &format!("findings_bulk_{}", verdict.action),
                None,
                json!({ "selection": selection.logged(), "bulk_id": outcome.bulk_id,
                        "until": verdict.until }),
                json!({ "findings": outcome.findings }),
                Some(&verdict.reason),
            );
            Ok((outcome, vec![e]))
        })
        .await?;
    Ok(HttpResponse::Ok().json(outcome))
}

/// Today's bulk actions, newest first.
#[utoipa::path(
    tag = "findings",
    responses((status = 200, body = Vec<BulkAction>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, auditor."
)]
#[get("/v1/findings/bulk")]
pub async fn today(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(REVIEWERS)?;
    let actions = state.blocking(|conn| Ok(bulk::today(conn)?)).await?;
    Ok(HttpResponse::Ok().json(actions))
}

/// Undoes a bulk action made today: every finding nothing has changed since goes back.
#[utoipa::path(
    tag = "findings",
    params(("id" = i64, Path, description = "Bulk action id")),
    responses((status = 200, body = Undone), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, auditor."
)]
#[post("/v1/findings/bulk/{id}/undo")]
pub async fn undo(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(REVIEWERS)?;
    let (id, actor, c) = (id.into_inner(), caller.actor(), caller.clone());
    let undone = state
        .logged_change(move |conn| {
            let undone = bulk::undo(conn, id, &actor)?;
            let e = entry(
                &c,
                "findings_bulk_undo",
                None,
                json!({ "bulk_id": id }),
                json!({ "restored": undone.restored, "kept": undone.kept }),
                None,
            );
            Ok((undone, vec![e]))
        })
        .await?;
    Ok(HttpResponse::Ok().json(undone))
}

/// The report's period.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// First day (inclusive).
    pub from: chrono::NaiveDate,
    /// Last day (inclusive).
    pub to: chrono::NaiveDate,
}

/// The review report for a period.
#[utoipa::path(
    tag = "findings",
    params(Period),
    responses((status = 200, body = Report), (status = 422, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, auditor."
)]
#[get("/v1/findings/report")]
pub async fn report(
    state: web::Data<AppState>,
    caller: Caller,
    period: web::Query<Period>,
) -> Result<HttpResponse, ApiError> {
    caller.require(REVIEWERS)?;
    let Period { from, to } = period.into_inner();
    let r = state
        .blocking(move |conn| Ok(review_report::report(conn, from, to)?))
        .await?;
    state
        .access_log
        .record(vec![entry(
            &caller,
            "findings_report",
            None,
            json!({ "from": from, "to": to }),
            json!({ "found": r.inspection.found }),
            None,
        )])
        .await?;
    Ok(HttpResponse::Ok().json(r))
}
