//! The audit's findings over HTTP: the review queue with filters, one finding with its history,
//! and the two verdicts. The same repository functions as `shikaku findings` do the work.

use crate::input::Checked;
use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shikaku_db::findings::{
    self, Cursor, Filter, FindingDetail, Page, QueueOrder, StoredFinding, Verdict,
};
use shikaku_db::tokens::Role;
use shikaku_domain::finding::{FindingKind, FindingStatus, ReviewAction, Severity};
use utoipa::{IntoParams, ToSchema};

use crate::access::{entry, returned_persons};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub(crate) const REVIEWERS: &[Role] = &[Role::Admin, Role::Auditor];

/// A verdict's body: the reason, and for a dismissal optionally the last day it holds.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerdictBody {
    /// Why (required, recorded with the actor and time): one line, no My Number.
    #[schema(
        min_length = 1,
        max_length = 500,
        example = "旧姓のまま、住基で異動を確認済み"
    )]
    pub reason: String,
    /// For a dismissal: the last day it holds (after it the next audit run re-opens the
    /// finding). Must be after today.
    pub until: Option<chrono::NaiveDate>,
}

/// Filters, order and page of the queue.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FindingQuery {
    /// Only this review status.
    pub status: Option<FindingStatus>,
    /// Only this kind (formats.md).
    pub kind: Option<FindingKind>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only persons of this 保険者番号 (6 or 8 digits).
    pub insurer: Option<String>,
    /// Only findings assigned to this reviewer (a token name); `-` for unassigned ones.
    pub assignee: Option<String>,
    /// Only findings last seen by this audit run.
    pub run: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
    /// `severity` (most severe first, the default), `first_seen`, `kind`, `insurer` or
    /// `probability` (most likely another person's number first).
    pub sort: Option<QueueOrder>,
    /// The `next_cursor` of the previous page, to read the page after it.
    pub after: Option<String>,
}

/// The queue filter from query or body fields, checked by [`Filter::checked`].
pub(crate) fn filter_of(
    status: Option<FindingStatus>,
    kind: Option<FindingKind>,
    severity: Option<Severity>,
    insurer: Option<String>,
    assignee: Option<String>,
    run: Option<i64>,
) -> Result<Filter, ApiError> {
    Ok(Filter::checked(
        status,
        kind,
        severity,
        insurer,
        assignee.as_deref(),
        run,
    )?)
}

/// The review queue, a page at a time.
#[utoipa::path(
    tag = "findings",
    params(FindingQuery),
    responses((status = 200, body = Page), (status = 422, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, auditor. Keyset paging: pass `next_cursor` back as `after` \
                   (with the same filters and sort); `total` is the exact count for the filter."
)]
#[get("/v1/findings")]
pub async fn list_findings(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<FindingQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(REVIEWERS)?;
    let q = query.into_inner();
    let filter = filter_of(q.status, q.kind, q.severity, q.insurer, q.assignee, q.run)?;
    let order = q.sort.unwrap_or_default();
    let after: Option<Cursor> = q.after.as_deref().map(str::parse).transpose()?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut request = filter.describe();
    request["limit"] = json!(limit);
    request["sort"] = json!(order);
    request["after"] = json!(after.as_ref().map(ToString::to_string));
    let found = state
        .blocking(move |conn| Ok(findings::page(conn, &filter, order, after.as_ref(), limit)?))
        .await?;
    let (subject, returned) = returned_persons(found.findings.iter().map(|f| f.person_id));
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
    Ok(HttpResponse::Ok().json(found))
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
    body: VerdictBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(REVIEWERS)?;
    let actor = caller.actor();
    let c = caller.clone();
    let verdict = Verdict {
        action,
        reason: body.reason,
        until: body.until,
    };
    let finding = state
        .logged_change(move |conn| {
            let finding = findings::decide(conn, id, &verdict, &actor)?;
            let reason = &verdict.reason;
            let e = entry(
                &c,
                match action {
                    ReviewAction::Confirm => "finding_confirm",
                    ReviewAction::Dismiss => "finding_dismiss",
                },
                Some(format!("person:{}", finding.person_id)),
                json!({ "finding_id": id, "until": verdict.until }),
                json!({ "status": finding.status }),
                Some(reason),
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
    request_body = VerdictBody,
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
    body: Checked<VerdictBody>,
) -> Result<HttpResponse, ApiError> {
    verdict(
        &state,
        &caller,
        id.into_inner(),
        ReviewAction::Confirm,
        body.into_inner(),
    )
    .await
}

/// Dismisses a finding with a reason (理由付き疑いなし).
#[utoipa::path(
    tag = "findings",
    params(("id" = i64, Path, description = "Finding id")),
    request_body = VerdictBody,
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
    body: Checked<VerdictBody>,
) -> Result<HttpResponse, ApiError> {
    verdict(
        &state,
        &caller,
        id.into_inner(),
        ReviewAction::Dismiss,
        body.into_inner(),
    )
    .await
}
