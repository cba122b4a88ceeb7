//! A person's dated benefits over HTTP: read them, add one, end one, correct one, each write
//! with a reason kept in the person's history and in the access log (committed together). A
//! write that changes the co-pay rate or the limit category within a current certificate's
//! validity ends that certificate the day before the change; the answer names them.

use actix_web::{get, post, put, web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shikaku_db::benefits::{self, BenefitInput, BenefitView, Written};
use utoipa::ToSchema;

use crate::access::entry;
use crate::auth::{today_tokyo, Caller};
use crate::error::{ApiError, ErrorBody};
use crate::input::Checked;
use crate::persons::{FACT_WRITERS, READERS};
use crate::state::AppState;

/// A person's records.
#[derive(Debug, Serialize, ToSchema)]
pub struct BenefitList {
    /// By kind and start.
    pub benefits: Vec<BenefitView>,
}

/// A new or corrected record and why.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BenefitChange {
    /// The record.
    pub record: BenefitInput,
    /// Why (kept in the history; must not hold a My Number).
    #[schema(
        example = "令和8年度 所得区分の判定による",
        min_length = 1,
        max_length = 500
    )]
    pub reason: String,
}

/// Ending a record.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BenefitEnd {
    /// The last day in force.
    pub valid_until: NaiveDate,
    /// Why.
    #[schema(example = "限度額適用認定証の返還", min_length = 1, max_length = 500)]
    pub reason: String,
}

/// The access-log entry of a write.
fn write_entry(
    caller: &Caller,
    action: &str,
    written: &Written,
    request: serde_json::Value,
    reason: &str,
) -> shikaku_db::access_log::NewEntry {
    entry(
        caller,
        action,
        Some(format!("person:{}", written.benefit.person_id)),
        request,
        json!({ "benefit_id": written.benefit.id, "certificates_cut": written.certificates_cut }),
        Some(reason),
    )
}

/// A person's benefit records.
#[utoipa::path(
    tag = "registry",
    params(("id" = i64, Path, description = "Person id")),
    responses((status = 200, body = BenefitList), (status = 404, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, clerk, auditor. Logged as benefits_read."
)]
#[get("/v1/persons/{id}/benefits")]
pub async fn list_benefits(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let id = id.into_inner();
    let list = state
        .blocking(move |conn| {
            shikaku_db::persons::get(conn, id)?;
            Ok(benefits::of_person(conn, id)?)
        })
        .await?;
    state
        .access_log
        .record(vec![entry(
            &caller,
            "benefits_read",
            Some(format!("person:{id}")),
            json!({ "person_id": id }),
            json!({ "records": list.len() }),
            None,
        )])
        .await?;
    Ok(HttpResponse::Ok().json(BenefitList { benefits: list }))
}

/// Adds a record.
#[utoipa::path(
    tag = "registry",
    params(("id" = i64, Path, description = "Person id")),
    request_body = BenefitChange,
    responses((status = 200, body = Written), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, clerk. 422 when it overlaps a record of the same kind (of 特定疾病: the same disease), 409 when one starts on the same day. Logged as benefit_add."
)]
#[post("/v1/persons/{id}/benefits")]
pub async fn add_benefit(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Checked<BenefitChange>,
) -> Result<HttpResponse, ApiError> {
    caller.require(FACT_WRITERS)?;
    let person_id = id.into_inner();
    let body = body.into_inner();
    let (actor, c) = (caller.actor(), caller.clone());
    let written = state
        .logged_change(move |conn| {
            let w = benefits::add(
                conn,
                person_id,
                &body.record,
                &actor,
                &body.reason,
                today_tokyo(),
            )?;
            let e = write_entry(
                &c,
                "benefit_add",
                &w,
                json!({ "person_id": person_id, "record": body.record }),
                &body.reason,
            );
            Ok((w, vec![e]))
        })
        .await?;
    Ok(HttpResponse::Ok().json(written))
}

/// Ends a record on a day (its last day in force).
#[utoipa::path(
    tag = "registry",
    params(("id" = i64, Path, description = "Benefit record id")),
    request_body = BenefitEnd,
    responses((status = 200, body = Written), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, clerk. Logged as benefit_end."
)]
#[post("/v1/benefits/{id}/end")]
pub async fn end_benefit(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Checked<BenefitEnd>,
) -> Result<HttpResponse, ApiError> {
    caller.require(FACT_WRITERS)?;
    let id = id.into_inner();
    let body = body.into_inner();
    let (actor, c) = (caller.actor(), caller.clone());
    let written = state
        .logged_change(move |conn| {
            let w = benefits::end(
                conn,
                id,
                body.valid_until,
                &actor,
                &body.reason,
                today_tokyo(),
            )?;
            let e = write_entry(
                &c,
                "benefit_end",
                &w,
                json!({ "benefit_id": id, "valid_until": body.valid_until }),
                &body.reason,
            );
            Ok((w, vec![e]))
        })
        .await?;
    Ok(HttpResponse::Ok().json(written))
}

/// Corrects a record (the old values stay in the person's history).
#[utoipa::path(
    tag = "registry",
    params(("id" = i64, Path, description = "Benefit record id")),
    request_body = BenefitChange,
    responses((status = 200, body = Written), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, clerk. Logged as benefit_correct."
)]
#[put("/v1/benefits/{id}")]
pub async fn correct_benefit(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Checked<BenefitChange>,
) -> Result<HttpResponse, ApiError> {
    caller.require(FACT_WRITERS)?;
    let id = id.into_inner();
    let body = body.into_inner();
    let (actor, c) = (caller.actor(), caller.clone());
    let written = state
        .logged_change(move |conn| {
            let w = benefits::correct(conn, id, &body.record, &actor, &body.reason, today_tokyo())?;
            let e = write_entry(
                &c,
                "benefit_correct",
                &w,
                json!({ "benefit_id": id, "record": body.record }),
                &body.reason,
            );
            Ok((w, vec![e]))
        })
        .await?;
    Ok(HttpResponse::Ok().json(written))
}
