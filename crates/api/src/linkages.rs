//! My Number linkages over HTTP: register a number for a person, read a linkage, suspend,
//! correct, confirm identity, and the admin-only reveal. Numbers come in only in request
//! bodies, are answered as their last 4 digits, and are never logged; the reveal is the one
//! place a whole number goes out, to an admin, with a logged reason.
//!
//! Registering and correcting run the registration-time check (`shikaku_db::identity_check`):
//! a person who differs from the resident register on the five items is answered 409
//! [`ConflictBody::IdentityMismatch`] with the item names, and the request can be repeated with
//! `no_error_reason` (理由付き疑いなし). The refusal is logged with the items it revealed.

use crate::input::Checked;
use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shikaku_db::linkages::{self, LinkageView};
use shikaku_db::tokens::Role;
use shikaku_domain::records::LinkageSource;
use shikaku_domain::{LinkageStatus, MyNumber};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::access::entry;
use crate::auth::{today_tokyo, Caller};
use crate::error::{ApiError, ConflictBody, ErrorBody};
use crate::state::AppState;

const WRITERS: &[Role] = &[Role::Admin, Role::Clerk, Role::Auditor];

/// A linkage as answered: last 4 digits only.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Linkage {
    /// Linkage id.
    pub id: i64,
    /// Person id.
    pub person_id: i64,
    /// Last 4 digits of the number.
    pub my_number_last4: String,
    /// Whether the number passes its check digit.
    pub check_digit_ok: bool,
    /// Where the number came from.
    pub source: LinkageSource,
    /// When it was registered.
    pub linked_on: NaiveDate,
    /// In use, blocked from online viewing, or withdrawn.
    pub status: LinkageStatus,
    /// Whether the 5 items are known to match: the resident register matched when the number
    /// was registered or corrected, or a person confirmed them since. False when the register
    /// had no record yet, or when a mismatch was accepted with a 理由付き疑いなし reason (the
    /// nightly audit then still reports it for review).
    pub identity_confirmed: bool,
}

impl From<LinkageView> for Linkage {
    fn from(l: LinkageView) -> Linkage {
        Linkage {
            id: l.id,
            person_id: l.person_id,
            my_number_last4: l.mn_last4,
            check_digit_ok: l.check_digit_ok,
            source: l.source,
            linked_on: l.linked_on,
            status: l.status,
            identity_confirmed: l.identity_confirmed,
        }
    }
}

fn parse_number(s: &str) -> Result<MyNumber, ApiError> {
    // The domain error names the problem (length, digits, check digit), never the digits.
    MyNumber::parse(s).map_err(|e| ApiError::Invalid(format!("my_number: {e}")))
}

/// Registering a number for a person.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterLinkage {
    /// The 12-digit 個人番号 (check digit validated).
    #[schema(value_type = String, example = "123456789018", pattern = "^[0-9]{12}$")]
    pub my_number: Zeroizing<String>,
    /// Where the number came from.
    pub source: LinkageSource,
    /// When linked; today when absent.
    #[serde(default)]
    pub linked_on: Option<NaiveDate>,
    /// Required to link a number that is already linked to another person.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 500)]
    pub force_reason: Option<String>,
    /// 理由付き疑いなし: why the number is right although the person's five items differ from
    /// the resident register (a 409 `identity_mismatch` names the items). Recorded with the
    /// items and the actor; the linkage is stored with `identity_confirmed` false, so the
    /// nightly audit still reports it for review. One line, no My Number.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 500,
        example = "旧姓のまま登録、住基は改姓後（戸籍で確認）"
    )]
    pub no_error_reason: Option<String>,
}

/// Registers a number for a person.
#[utoipa::path(
    tag = "linkages",
    params(("id" = i64, Path, description = "Person id")),
    request_body = RegisterLinkage,
    responses((status = 201, body = Linkage), (status = 404, body = ErrorBody),
              (status = 409, description = "`conflict`: linked to another person (give force_reason) or already to this one; `identity_mismatch`: the person's five items differ from the resident register on the items listed (correct the person, or give no_error_reason)", body = ConflictBody),
              (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, clerk. The person's five items are compared with the latest resident register record for the number (spelling variants, width, small kana, spacing, address notation and the register's ● are not mismatches); a mismatch is refused with 409 identity_mismatch unless no_error_reason is given. Logged as linkage_register (last 4 digits only), a refusal as linkage_register_refused."
)]
#[post("/v1/persons/{id}/linkages")]
pub async fn register_linkage(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Checked<RegisterLinkage>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Clerk])?;
    let person_id = id.into_inner();
    let body = body.into_inner();
    let number = parse_number(&body.my_number)?;
    let actor = caller.actor();
    let source = body.source;
    let force = body.force_reason.clone();
    let no_error = body.no_error_reason.clone();
    let linked_on = body.linked_on.unwrap_or_else(today_tokyo);
    let last4 = number.last4().to_string();
    let number_last4 = last4.clone();
    let request = json!({ "person_id": person_id, "my_number_last4": last4,
                          "source": body.source.as_str(), "forced": body.force_reason.is_some(),
                          "no_error_reason": body.no_error_reason });
    // Keys rotated while this server ran: reload the key file and register again, once.
    let result = state
        .with_current_keys(|keyring| {
            let (c, actor, number, force, no_error, request) = (
                caller.clone(),
                actor.clone(),
                number.clone(),
                force.clone(),
                no_error.clone(),
                request.clone(),
            );
            state.logged_change(move |conn| {
                let view = linkages::register(
                    conn,
                    &keyring,
                    person_id,
                    &number,
                    source,
                    linked_on,
                    force.as_deref(),
                    no_error.as_deref(),
                    &actor,
                )?;
                let e = entry(
                    &c,
                    "linkage_register",
                    Some(format!("person:{person_id}")),
                    request,
                    json!({ "linkage_id": view.id,
                            "identity_confirmed": view.identity_confirmed }),
                    force.as_deref().or(no_error.as_deref()),
                );
                Ok((view, vec![e]))
            })
        })
        .await;
    let view = match result {
        Ok(view) => view,
        // Refused because the number is another person's: the attempt itself tells the caller
        // something about that person, so it is logged with both subjects.
        Err(ApiError::LinkedElsewhere {
            message,
            person_ids,
        }) => {
            state
                .access_log
                .record(vec![entry(
                    &caller,
                    "linkage_register_refused",
                    Some(format!("person:{person_id}")),
                    json!({ "person_id": person_id, "my_number_last4": number_last4 }),
                    json!({ "linked_to": person_ids }),
                    None,
                )])
                .await?;
            return Err(ApiError::Conflict(message));
        }
        // Refused on the five items: the answer tells the caller which items of the register's
        // record for the number differ from this person, so it is logged as a read of them.
        Err(ApiError::IdentityMismatch {
            differing,
            not_compared,
        }) => {
            state
                .access_log
                .record(vec![entry(
                    &caller,
                    "linkage_register_refused",
                    Some(format!("person:{person_id}")),
                    json!({ "person_id": person_id, "my_number_last4": number_last4 }),
                    json!({ "identity_mismatch": differing }),
                    None,
                )])
                .await?;
            return Err(ApiError::IdentityMismatch {
                differing,
                not_compared,
            });
        }
        Err(e) => return Err(e),
    };
    Ok(HttpResponse::Created().json(Linkage::from(view)))
}

/// One linkage.
#[utoipa::path(
    tag = "linkages",
    params(("id" = i64, Path, description = "Linkage id")),
    responses((status = 200, body = Linkage), (status = 404, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, clerk, auditor. Logged as linkage_read."
)]
#[get("/v1/linkages/{id}")]
pub async fn get_linkage(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(WRITERS)?;
    let id = id.into_inner();
    let view = state
        .blocking(move |conn| Ok(linkages::get(conn, id)?))
        .await?;
    state
        .access_log
        .record(vec![entry(
            &caller,
            "linkage_read",
            Some(format!("person:{}", view.person_id)),
            json!({ "linkage_id": id }),
            json!({ "status": view.status }),
            None,
        )])
        .await?;
    Ok(HttpResponse::Ok().json(Linkage::from(view)))
}

/// A reason for an action.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why (required, recorded with the actor and time): one line, no My Number.
    #[schema(min_length = 1, max_length = 500, example = "転記誤り（末尾9018）")]
    pub reason: String,
}

async fn act(
    state: &AppState,
    caller: &Caller,
    action: &'static str,
    id: i64,
    reason: String,
) -> Result<HttpResponse, ApiError> {
    caller.require(WRITERS)?;
    let actor = caller.actor();
    let c = caller.clone();
    let view = state
        .logged_change(move |conn| {
            let view = match action {
                "linkage_suspend" => linkages::suspend(conn, id, &reason, &actor)?,
                _ => linkages::confirm_identity(conn, id, &reason, &actor)?,
            };
            let e = entry(
                &c,
                action,
                Some(format!("person:{}", view.person_id)),
                json!({ "linkage_id": id }),
                json!({ "status": view.status }),
                Some(&reason),
            );
            Ok((view, vec![e]))
        })
        .await?;
    Ok(HttpResponse::Ok().json(Linkage::from(view)))
}

/// Suspends a linkage (blocks online viewing until corrected or confirmed).
#[utoipa::path(
    tag = "linkages",
    params(("id" = i64, Path, description = "Linkage id")),
    request_body = Reason,
    responses((status = 200, body = Linkage), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, clerk, auditor."
)]
#[post("/v1/linkages/{id}/suspend")]
pub async fn suspend_linkage(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Checked<Reason>,
) -> Result<HttpResponse, ApiError> {
    act(
        &state,
        &caller,
        "linkage_suspend",
        id.into_inner(),
        body.into_inner().reason,
    )
    .await
}

/// Records that the 5 items were checked and the number belongs to this person.
#[utoipa::path(
    tag = "linkages",
    params(("id" = i64, Path, description = "Linkage id")),
    request_body = Reason,
    responses((status = 200, body = Linkage), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, clerk, auditor."
)]
#[post("/v1/linkages/{id}/confirm-identity")]
pub async fn confirm_identity(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Checked<Reason>,
) -> Result<HttpResponse, ApiError> {
    act(
        &state,
        &caller,
        "linkage_confirm_identity",
        id.into_inner(),
        body.into_inner().reason,
    )
    .await
}

/// A correction: the right number and why.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    /// The right 12-digit number.
    #[schema(value_type = String, pattern = "^[0-9]{12}$")]
    pub my_number: Zeroizing<String>,
    /// Why: one line, no My Number.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
    /// Source of the right number; jlis when absent.
    #[serde(default)]
    pub source: Option<LinkageSource>,
    /// 理由付き疑いなし: why the right number is right although the person's five items differ
    /// from the resident register's record for it (a 409 `identity_mismatch` names the items).
    /// One line, no My Number.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 500)]
    pub no_error_reason: Option<String>,
}

/// Revokes a wrong linkage and links the right number to the same person.
#[utoipa::path(
    tag = "linkages",
    params(("id" = i64, Path, description = "Linkage id")),
    request_body = Correction,
    responses((status = 200, description = "The new linkage", body = Linkage), (status = 404, body = ErrorBody),
              (status = 409, description = "`identity_mismatch`: the person's five items differ from the resident register's record for the right number (correct the person, or give no_error_reason); nothing changed", body = ConflictBody),
              (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, clerk, auditor. The right number goes through the same five-item check as a registration. Logged as linkage_correct, a refusal as linkage_correct_refused."
)]
#[post("/v1/linkages/{id}/correct")]
pub async fn correct_linkage(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Checked<Correction>,
) -> Result<HttpResponse, ApiError> {
    caller.require(WRITERS)?;
    let id = id.into_inner();
    let body = body.into_inner();
    let number = parse_number(&body.my_number)?;
    let actor = caller.actor();
    let reason = body.reason.clone();
    let no_error = body.no_error_reason.clone();
    let source = body.source.unwrap_or(LinkageSource::Jlis);
    let last4 = number.last4().to_string();
    let result = state
        .with_current_keys(|keyring| {
            let (c, actor, number, reason, no_error, last4) = (
                caller.clone(),
                actor.clone(),
                number.clone(),
                reason.clone(),
                no_error.clone(),
                last4.clone(),
            );
            state.logged_change(move |conn| {
                let view = linkages::correct(
                    conn,
                    &keyring,
                    id,
                    &number,
                    source,
                    &reason,
                    no_error.as_deref(),
                    &actor,
                )?;
                let e = entry(
                    &c,
                    "linkage_correct",
                    Some(format!("person:{}", view.person_id)),
                    json!({ "linkage_id": id, "my_number_last4": last4,
                            "no_error_reason": no_error }),
                    json!({ "new_linkage_id": view.id,
                            "identity_confirmed": view.identity_confirmed }),
                    Some(&reason),
                );
                Ok((view, vec![e]))
            })
        })
        .await;
    let view = match result {
        Ok(view) => view,
        // The refusal names items of the register's record for the number: logged as read.
        Err(ApiError::IdentityMismatch {
            differing,
            not_compared,
        }) => {
            let person = state
                .blocking(move |conn| Ok(linkages::get(conn, id)?.person_id))
                .await?;
            state
                .access_log
                .record(vec![entry(
                    &caller,
                    "linkage_correct_refused",
                    Some(format!("person:{person}")),
                    json!({ "linkage_id": id, "my_number_last4": last4 }),
                    json!({ "identity_mismatch": differing }),
                    Some(&reason),
                )])
                .await?;
            return Err(ApiError::IdentityMismatch {
                differing,
                not_compared,
            });
        }
        Err(e) => return Err(e),
    };
    Ok(HttpResponse::Ok().json(Linkage::from(view)))
}

/// The whole number, for an admin with a reason.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Revealed {
    /// Linkage id.
    pub linkage_id: i64,
    /// The 12-digit number.
    pub my_number: String,
}

/// Reveals a linkage's whole number: admin only, reason required, logged before it is sent.
#[utoipa::path(
    tag = "linkages",
    params(("id" = i64, Path, description = "Linkage id")),
    request_body = Reason,
    responses((status = 200, body = Revealed), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Role: admin. Logged as number_reveal with the reason."
)]
#[post("/v1/linkages/{id}/reveal")]
pub async fn reveal_number(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    body: Checked<Reason>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let id = id.into_inner();
    let reason = body.into_inner().reason;
    shikaku_domain::free_text::FreeText::Reason
        .check(&reason)
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    // A row resealed with a key added while this server ran: reload the key file, once.
    let (view, digits) = state
        .with_current_keys(|keyring| {
            state.blocking(move |conn| {
                let view = linkages::get(conn, id)?;
                let digits = linkages::reveal(conn, &keyring, id)?;
                Ok((view, digits))
            })
        })
        .await?;
    state
        .access_log
        .record(vec![entry(
            &caller,
            "number_reveal",
            Some(format!("person:{}", view.person_id)),
            json!({ "linkage_id": id }),
            json!({ "my_number_last4": view.mn_last4 }),
            Some(&reason),
        )])
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Revealed {
            linkage_id: id,
            my_number: digits.to_string(),
        }))
}
