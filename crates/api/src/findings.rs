//! The audit's findings over HTTP: the review queue with filters, one finding with its history,
//! and the two verdicts. The same repository functions as `shikaku findings` do the work.

use crate::input::Checked;
use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shikaku_db::findings::{self, Filter, FindingDetail, QueueOrder, StoredFinding};
use shikaku_db::tokens::Role;
use shikaku_domain::finding::{FindingKind, FindingStatus, ReviewAction, Severity};
use utoipa::{IntoParams, ToSchema};

use crate::access::{entry, returned_persons};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::linkages::Reason;
use crate::state::AppState;

const REVIEWERS: &[Role] = &[Role::Admin, Role::Auditor];

/// Filters for the queue.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FindingQuery {
    /// Only this review status.
    pub status: Option<FindingStatus>,
    /// Only this kind (formats.md).
    pub kind: Option<FindingKind>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only findings last seen by this audit run.
    pub run: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
    /// `severity` (most severe first, the default) or `probability` (most likely another
    /// person's number first).
    pub sort: Option<QueueOrder>,
}

/// The queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct FindingList {
    /// In the requested order (most severe first by default).
    pub findings: Vec<StoredFinding>,
}

/// The review queue.
#[utoipa::path(
    tag = "findings",
    params(FindingQuery),
    responses((status = 200, body = FindingList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, auditor."
)]
#[get("/v1/findings")]
pub async fn list_findings(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<FindingQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(REVIEWERS)?;
    let q = query.into_inner();
    let filter = Filter {
        status: q.status,
        kind: q.kind,
        severity: q.severity,
        run_id: q.run,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
        order: q.sort.unwrap_or_default(),
    };
    let request = json!({ "status": filter.status, "kind": filter.kind,
                          "severity": filter.severity, "run": filter.run_id,
                          "limit": filter.limit });
    let found = state
        .blocking(move |conn| Ok(findings::list(conn, &filter)?))
        .await?;
    let (subject, returned) = returned_persons(found.iter().map(|f| f.person_id));
    state
        .access_log
        .record(vec![entry(
            &caller,
            "findings_list",
            subject,
            request,
            returned,
            None,
        )])
        .await?;
    Ok(HttpResponse::Ok().json(FindingList { findings: found }))
}

/// One finding.
#[utoipa::path(
    tag = "findings",
    params(("id" = i64, Path, description = "Finding id")),
    responses((status = 200, body = FindingDetail), (status = 404, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, auditor."
)]
#[get("/v1/findings/{id}")]
pub async fn show_finding(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(REVIEWERS)?;
    let id = id.into_inner();
    let detail = state
        .blocking(move |conn| Ok(findings::show(conn, id)?))
        .await?;
    state
        .access_log
        .record(vec![entry(
            &caller,
            "finding_read",
            Some(format!("person:{}", detail.finding.person_id)),
            json!({ "finding_id": id }),
            json!({ "status": detail.finding.status }),
            None,
        )])
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}

async fn verdict(
    state: &AppState,
    caller: &Caller,
    id: i64,
    action: ReviewAction,
    reason: String,
) -> Result<HttpResponse, ApiError> {
    caller.require(REVIEWERS)?;
    let actor = caller.actor();
    let c = caller.clone();
    let finding = state
        .logged_change(move |conn| {
            let finding = findings::review(conn, id, action, &reason, &actor)?;
            let e = entry(
                &c,
                match action {
                    ReviewAction::Confirm => "finding_confirm",
                    ReviewAction::Dismiss => "finding_dismiss",
                },
                Some(format!("person:{}", finding.person_id)),
                json!({ "finding_id": id }),
                json!({ "status": finding.status }),
                Some(&reason),
            );
            Ok((finding, vec![e]))
        })
        .await?;
    Ok(HttpResponse::Ok().json(finding))
}

/// Confirms a finding: the problem is real.
#[utoipa::path(
    tag = "findings",
    params(("id" = i64, Path, description = "Finding id")),
    request_body = Reason,
    responses((status = 200, description = "The finding", body = StoredFinding), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, auditor."
)]
#[post("/v1/findings/{id}/confirm")]
pub async fn confirm_finding(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Checked<Reason>,
) -> Result<HttpResponse, ApiError> {
    verdict(
        &state,
        &caller,
        id.into_inner(),
        ReviewAction::Confirm,
        body.into_inner().reason,
    )
    .await
}

/// Dismisses a finding with a reason (理由付き疑いなし).
#[utoipa::path(
    tag = "findings",
    params(("id" = i64, Path, description = "Finding id")),
    request_body = Reason,
    responses((status = 200, description = "The finding", body = StoredFinding), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, auditor."
)]
#[post("/v1/findings/{id}/dismiss")]
pub async fn dismiss_finding(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Checked<Reason>,
) -> Result<HttpResponse, ApiError> {
    verdict(
        &state,
        &caller,
        id.into_inner(),
        ReviewAction::Dismiss,
        body.into_inner().reason,
    )
    .await
}
