//! 資格確認書 over HTTP for clerks and admins: issue, read, reissue, revoke, mark returned. The
//! rules (eligibility on the day, one active certificate, validity) live in the db and domain
//! crates; each action is in the access log with its reason.

use crate::input::Checked;
use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shikaku_db::certificates::{self, CertificateView, Event, IssueOptions};
use shikaku_db::tokens::Role;
use shikaku_domain::CertificateKind;
use utoipa::ToSchema;

use crate::access::entry;
use crate::auth::{today_tokyo, Caller};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

const CLERKS: &[Role] = &[Role::Admin, Role::Clerk];

/// Issuing a certificate.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// The person, by id…
    #[serde(default)]
    pub person_id: Option<i64>,
    /// …or by JP Core member identifier `保険者番号:記号:番号:枝番`.
    #[serde(default)]
    pub member_id: Option<String>,
    /// How it is issued; application when absent.
    #[serde(default)]
    pub kind: Option<CertificateKind>,
    /// Issue date; today in Japan when absent.
    #[serde(default)]
    pub on: Option<NaiveDate>,
    /// Print 裏面参照 instead of the sex.
    #[serde(default)]
    pub sex_on_back: bool,
    /// Last day of 任意継続.
    #[serde(default)]
    pub voluntary_until: Option<NaiveDate>,
    /// Last day of the residence permit.
    #[serde(default)]
    pub residence_until: Option<NaiveDate>,
    /// 備考: up to 200 characters, line breaks allowed, no My Number.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub remarks: Option<String>,
}

/// Reissuing a certificate.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReissueRequest {
    /// Why: lost, damaged, change of name, address, co-pay or household (required).
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
    /// Reissue date; today in Japan when absent.
    #[serde(default)]
    pub on: Option<NaiveDate>,
    /// Print 裏面参照 instead of the sex.
    #[serde(default)]
    pub sex_on_back: bool,
    /// 備考: up to 200 characters, line breaks allowed, no My Number.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub remarks: Option<String>,
}

/// A certificate with its history.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateDetail {
    /// The certificate.
    pub certificate: CertificateView,
    /// What happened to it, oldest first.
    pub events: Vec<Event>,
}

/// The access-log entry of `action` on `cert`.
fn cert_entry(
    caller: &Caller,
    action: &str,
    cert: &CertificateView,
    request: serde_json::Value,
    reason: Option<&str>,
) -> shikaku_db::access_log::NewEntry {
    entry(
        caller,
        action,
        Some(format!("person:{}", cert.person_id)),
        request,
        json!({ "certificate_id": cert.id, "number": cert.number, "status": cert.status.as_str() }),
        reason,
    )
}

/// Logs a read of `cert` (group commit).
async fn log_read(
    state: &AppState,
    caller: &Caller,
    action: &str,
    cert: &CertificateView,
    request: serde_json::Value,
) -> Result<(), ApiError> {
    state
        .access_log
        .record(vec![cert_entry(caller, action, cert, request, None)])
        .await
}

/// Issues a certificate to a person insured on the day.
#[utoipa::path(
    tag = "certificates",
    request_body = IssueRequest,
    responses((status = 201, body = CertificateView), (status = 404, body = ErrorBody),
              (status = 409, description = "An active certificate exists; reissue it", body = ErrorBody),
              (status = 422, description = "Not insured on the day, or bad input", body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: clerk, admin. Logged as certificate_issue."
)]
#[post("/v1/certificates")]
pub async fn issue_certificate(
    state: web::Data<AppState>,
    caller: Caller,
    body: Checked<IssueRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(CLERKS)?;
    let req = body.into_inner();
    let request = serde_json::to_value(&req).unwrap_or_default();
    let kind = req.kind.unwrap_or(CertificateKind::Application);
    let member = match (&req.person_id, &req.member_id) {
        (Some(_), None) => None,
        (None, Some(m)) => Some(
            m.parse::<shikaku_domain::PersonKey>()
                .map_err(|e| ApiError::Invalid(format!("member_id: {e}")))?,
        ),
        _ => {
            return Err(ApiError::Invalid(
                "give exactly one of person_id and member_id".into(),
            ))
        }
    };
    let person_id = req.person_id;
    let on = req.on.unwrap_or_else(today_tokyo);
    let options = IssueOptions {
        sex_on_back: req.sex_on_back,
        voluntary_until: req.voluntary_until,
        residence_until: req.residence_until,
        remarks: req.remarks,
    };
    let actor = caller.actor();
    let c = caller.clone();
    let cert = state
        .logged_change(move |conn| {
            let id = match (person_id, member) {
                (Some(id), _) => id,
                (None, Some(key)) => certificates::person_id(conn, &key)?,
                (None, None) => return Err(ApiError::Invalid("no person given".into())),
            };
            let cert = certificates::issue(conn, id, kind, on, &options, &actor)?;
            let e = cert_entry(&c, "certificate_issue", &cert, request, None);
            Ok((cert, vec![e]))
        })
        .await?;
    Ok(HttpResponse::Created().json(cert))
}

/// One certificate with its printed items and history.
#[utoipa::path(
    tag = "certificates",
    params(("id" = i64, Path, description = "Certificate id")),
    responses((status = 200, body = CertificateDetail), (status = 404, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: clerk, admin. Logged as certificate_read."
)]
#[get("/v1/certificates/{id}")]
pub async fn get_certificate(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(CLERKS)?;
    let id = id.into_inner();
    let (cert, events) = state
        .blocking(move |conn| {
            let c = certificates::get(conn, id)?;
            let e = certificates::events(conn, id)?;
            Ok((c, e))
        })
        .await?;
    log_read(
        &state,
        &caller,
        "certificate_read",
        &cert,
        json!({ "certificate_id": id }),
    )
    .await?;
    Ok(HttpResponse::Ok().json(CertificateDetail {
        certificate: cert,
        events,
    }))
}

/// Supersedes an active certificate with a new one.
#[utoipa::path(
    tag = "certificates",
    params(("id" = i64, Path, description = "Certificate id")),
    request_body = ReissueRequest,
    responses((status = 201, description = "The new certificate", body = CertificateView),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: clerk, admin. Logged as certificate_reissue with the reason."
)]
#[post("/v1/certificates/{id}/reissue")]
pub async fn reissue_certificate(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Checked<ReissueRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(CLERKS)?;
    let id = id.into_inner();
    let req = body.into_inner();
    let on = req.on.unwrap_or_else(today_tokyo);
    let options = IssueOptions {
        sex_on_back: req.sex_on_back,
        remarks: req.remarks.clone(),
        ..IssueOptions::default()
    };
    let actor = caller.actor();
    let reason = req.reason.clone();
    let c = caller.clone();
    let cert = state
        .logged_change(move |conn| {
            let cert = certificates::reissue(conn, id, on, &options, &reason, &actor)?;
            let e = cert_entry(
                &c,
                "certificate_reissue",
                &cert,
                json!({ "certificate_id": id }),
                Some(&reason),
            );
            Ok((cert, vec![e]))
        })
        .await?;
    Ok(HttpResponse::Created().json(cert))
}

async fn change(
    state: &AppState,
    caller: &Caller,
    id: i64,
    reason: String,
    returned: bool,
) -> Result<HttpResponse, ApiError> {
    caller.require(CLERKS)?;
    let actor = caller.actor();
    let action = if returned {
        "certificate_returned"
    } else {
        "certificate_revoke"
    };
    let c = caller.clone();
    let cert = state
        .logged_change(move |conn| {
            let cert = if returned {
                certificates::returned(conn, id, &reason, &actor)?
            } else {
                certificates::revoke(conn, id, &reason, &actor)?
            };
            let e = cert_entry(
                &c,
                action,
                &cert,
                json!({ "certificate_id": id }),
                Some(&reason),
            );
            Ok((cert, vec![e]))
        })
        .await?;
    Ok(HttpResponse::Ok().json(cert))
}

/// Revokes an active certificate.
#[utoipa::path(
    tag = "certificates",
    params(("id" = i64, Path, description = "Certificate id")),
    request_body = crate::linkages::Reason,
    responses((status = 200, body = CertificateView), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: clerk, admin."
)]
#[post("/v1/certificates/{id}/revoke")]
pub async fn revoke_certificate(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Checked<crate::linkages::Reason>,
) -> Result<HttpResponse, ApiError> {
    change(
        &state,
        &caller,
        id.into_inner(),
        body.into_inner().reason,
        false,
    )
    .await
}

/// Records that a certificate came back.
#[utoipa::path(
    tag = "certificates",
    params(("id" = i64, Path, description = "Certificate id")),
    request_body = crate::linkages::Reason,
    responses((status = 200, body = CertificateView), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: clerk, admin."
)]
#[post("/v1/certificates/{id}/returned")]
pub async fn returned_certificate(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Checked<crate::linkages::Reason>,
) -> Result<HttpResponse, ApiError> {
    change(
        &state,
        &caller,
        id.into_inner(),
        body.into_inner().reason,
        true,
    )
    .await
}

/// The layout a query names (`card` when absent).
pub(crate) fn layout_of(name: Option<&str>) -> Result<shikaku_print::Layout, ApiError> {
    let l = name.unwrap_or("card");
    shikaku_print::Layout::parse(l)
        .ok_or_else(|| ApiError::Invalid(format!("layout: {l:?} is not card or a4")))
}

/// A certificate to print: refused unless active, since a void card must not be printable as
/// a clean one.
pub(crate) async fn printable(state: &AppState, id: i64) -> Result<CertificateView, ApiError> {
    state
        .blocking(move |conn| Ok(certificates::printable(conn, id)?))
        .await
}

/// The layout of a certificate PDF.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PdfQuery {
    /// card (85.6 × 54 mm, the default) or a4 (an A4 sheet with cut marks).
    pub layout: Option<String>,
}

/// The certificate as PDF, exactly as it was printed when issued.
#[utoipa::path(
    tag = "certificates",
    params(("id" = i64, Path, description = "Certificate id"), PdfQuery),
    responses((status = 200, content_type = "application/pdf", description = "The certificate"),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 503, description = "No font configured", body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: clerk, admin. Logged as certificate_print."
)]
#[get("/v1/certificates/{id}/pdf")]
pub async fn certificate_pdf(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    query: web::Query<PdfQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(CLERKS)?;
    let layout = layout_of(query.layout.as_deref())?;
    state.font()?;
    let cert = printable(&state, id.into_inner()).await?;
    let id = cert.id;
    let pdf = state.render_pdf(vec![cert.printed.clone()], layout).await?;
    log_read(
        &state,
        &caller,
        "certificate_print",
        &cert,
        json!({ "certificate_id": id }),
    )
    .await?;
    Ok(pdf_response(
        pdf,
        "inline",
        &format!("certificate-{}.pdf", cert.number),
    ))
}

/// A PDF answer: never cached (certificates carry personal data), shown inline or offered as
/// a download under `filename` (made of digits and ASCII only by every caller).
pub(crate) fn pdf_response(bytes: Vec<u8>, disposition: &str, filename: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Disposition",
            format!("{disposition}; filename=\"{filename}\""),
        ))
        .body(bytes)
}
