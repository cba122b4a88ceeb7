//! The audit's findings over HTTP: the review queue with filters, one finding with its history,
//! and the two verdicts. The same repository functions as `shikaku findings` do the work.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shikaku_audit::runner::review::{self, Filter, ReviewAction};
use shikaku_db::tokens::Role;
use utoipa::{IntoParams, ToSchema};

use crate::access::entry;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::linkages::Reason;
use crate::state::AppState;

const REVIEWERS: &[Role] = &[Role::Admin, Role::Auditor];

/// Filters for the queue.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FindingQuery {
    /// open, confirmed, dismissed or resolved.
    pub status: Option<String>,
    /// A finding kind (formats.md).
    pub kind: Option<String>,
    /// critical, high, medium or low.
    pub severity: Option<String>,
    /// Only findings last seen by this audit run.
    pub run: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// The queue.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FindingList {
    /// Most severe first.
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<serde_json::Value>,
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
    };
    let found = state
        .blocking(move |conn| Ok(review::list(conn, &filter)?))
        .await?;
    state
        .access_log
        .record(vec![entry(
            &caller,
            "findings_list",
            None,
            json!({}),
            json!({ "findings": found.len() }),
            None,
        )])
        .await?;
    Ok(HttpResponse::Ok().json(FindingList {
        findings: found
            .iter()
            .map(|f| serde_json::to_value(f).unwrap_or_default())
            .collect(),
    }))
}

/// One finding and its history.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FindingDetail {
    /// The finding.
    #[schema(value_type = Object)]
    pub finding: serde_json::Value,
    /// What happened to it.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
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
    let (finding, events) = state
        .blocking(move |conn| Ok(review::show(conn, id)?))
        .await?;
    state
        .access_log
        .record(vec![entry(
            &caller,
            "finding_read",
            None,
            json!({ "finding_id": id }),
            json!({ "status": finding.status }),
            None,
        )])
        .await?;
    Ok(HttpResponse::Ok().json(FindingDetail {
        finding: serde_json::to_value(&finding).unwrap_or_default(),
        events: events
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or_default())
            .collect(),
    }))
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
    let r = reason.clone();
    let finding = state
        .blocking(move |conn| Ok(review::review(conn, id, action, &r, &actor)?))
        .await?;
    state
        .access_log
        .record(vec![entry(
            caller,
            match action {
                ReviewAction::Confirm => "finding_confirm",
                ReviewAction::Dismiss => "finding_dismiss",
            },
            None,
            json!({ "finding_id": id }),
            json!({ "status": finding.status }),
            Some(&reason),
        )])
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::to_value(&finding).unwrap_or_default()))
}

/// Confirms a finding: the problem is real.
#[utoipa::path(
    tag = "findings",
    params(("id" = i64, Path, description = "Finding id")),
    request_body = Reason,
    responses((status = 200, description = "The finding"), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, auditor."
)]
#[post("/v1/findings/{id}/confirm")]
pub async fn confirm_finding(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: web::Json<Reason>,
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
    responses((status = 200, description = "The finding"), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, auditor."
)]
#[post("/v1/findings/{id}/dismiss")]
pub async fn dismiss_finding(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: web::Json<Reason>,
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
