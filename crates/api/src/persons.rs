//! Staff reads of the registry: a person with periods and linkages, searches by key or by kana
//! name and birth date, and the change history; and the one write the counter makes on a
//! person, the facts that decide certificates. Every read of personal data is logged.

use crate::input::Checked;
use actix_web::{get, post, put, web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shikaku_db::benefits::BenefitView;
use shikaku_db::linkages::LinkageView;
use shikaku_db::persons::{self, CertificateFacts, Change, PersonView};
use shikaku_db::tokens::Role;
use shikaku_domain::free_text::FreeText;
use shikaku_domain::{Branch, InsuredNumber, InsurerNumber, KanaName, Period, Symbol};
use utoipa::ToSchema;

use crate::access::{entry, returned_persons};
use crate::auth::{today_tokyo, Caller};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Roles that may read persons.
pub const READERS: &[Role] = &[Role::Admin, Role::Clerk, Role::Auditor];

/// Roles that may set a person's certificate facts: the registry's administrators and the
/// certificate clerks who learn them at the counter.
pub const FACT_WRITERS: &[Role] = &[Role::Admin, Role::Clerk];

/// A person with everything staff see on one page.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonDetail {
    /// The registry record.
    pub person: PersonView,
    /// Qualification periods, oldest first.
    pub periods: Vec<Period>,
    /// Linkages: last 4 digits only.
    pub linkages: Vec<LinkageView>,
    /// Co-pay rate today, in percent (a dated record's, else the age rule's).
    pub copay_percent_today: u8,
    /// Dated benefit records (co-pay, 限度額適用区分, 特定疾病), by kind and start.
    pub benefits: Vec<BenefitView>,
}

impl PersonDetail {
    fn new(
        person: PersonView,
        periods: Vec<Period>,
        linkages: Vec<LinkageView>,
        benefits: Vec<BenefitView>,
    ) -> Result<Self, ApiError> {
        let records = benefits
            .iter()
            .map(BenefitView::benefit)
            .collect::<Result<Vec<_>, _>>()?;
        let copay_percent_today = person
            .record
            .benefits(&records)
            .rate_on(today_tokyo())
            .percent();
        Ok(PersonDetail {
            person,
            periods,
            linkages,
            copay_percent_today,
            benefits,
        })
    }
}

/// One person.
#[utoipa::path(
    tag = "registry",
    params(("id" = i64, Path, description = "Person id")),
    responses((status = 200, body = PersonDetail), (status = 404, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, clerk, auditor. Logged as person_read."
)]
#[get("/v1/persons/{id}")]
pub async fn get_person(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let id = id.into_inner();
    let (person, periods, linkages, benefits) = state
        .blocking(move |conn| {
            let person = persons::get(conn, id)?;
            let periods = persons::periods(conn, id)?;
            let linkages = shikaku_db::linkages::of_person(conn, id)?;
            let benefits = shikaku_db::benefits::of_person(conn, id)?;
            Ok((person, periods, linkages, benefits))
        })
        .await?;
    let detail = PersonDetail::new(person, periods, linkages, benefits)?;
    state
        .access_log
        .record(vec![entry(
            &caller,
            "person_read",
            Some(format!("person:{id}")),
            json!({ "person_id": id }),
            json!({ "found": true }),
            None,
        )])
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// A search by key (記号・番号, optionally 枝番) or by kana name (any width, hiragana or
/// katakana) and birth date. Exactly one of the two forms.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonSearch {
    /// 保険者番号 (key search).
    #[serde(default)]
    #[schema(pattern = "^([0-9]{6}|[0-9]{8})$")]
    pub insurer_number: Option<String>,
    /// 記号 (key search).
    #[serde(default)]
    #[schema(max_length = 38)]
    pub symbol: Option<String>,
    /// 番号 (key search).
    #[serde(default)]
    #[schema(max_length = 38)]
    pub number: Option<String>,
    /// 枝番 (key search).
    #[serde(default)]
    #[schema(pattern = "^[0-9]{2}$")]
    pub branch: Option<String>,
    /// カナ氏名 in any width, hiragana or katakana (name search).
    #[serde(default)]
    #[schema(max_length = 100)]
    pub kana: Option<String>,
    /// 生年月日 (narrows a name search).
    #[serde(default)]
    pub birth_date: Option<NaiveDate>,
}

/// Search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    /// Matching persons, at most 100.
    pub persons: Vec<PersonView>,
}

fn invalid(field: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Invalid(format!("{field}: {e}"))
}

/// Finds persons. Personal keys are in the body, not the URL.
#[utoipa::path(
    tag = "registry",
    request_body = PersonSearch,
    responses((status = 200, body = SearchResult), (status = 422, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, clerk, auditor. Logged as person_search."
)]
#[post("/v1/persons/search")]
pub async fn search_persons(
    state: web::Data<AppState>,
    caller: Caller,
    search: Checked<PersonSearch>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let s = search.into_inner();
    // The request is logged as sent, so no term may hold a My Number typed by mistake.
    for (field, term) in [
        ("insurer_number", &s.insurer_number),
        ("symbol", &s.symbol),
        ("number", &s.number),
        ("branch", &s.branch),
        ("kana", &s.kana),
    ] {
        if let Some(t) = term {
            FreeText::SearchText
                .check(t)
                .map_err(|e| invalid(field, e.problem))?;
        }
    }
    let request = serde_json::to_value(&s).unwrap_or_default();
    let found = match (&s.kana, &s.number) {
        (Some(kana), None) => {
            let kana = KanaName::parse(kana).map_err(|e| invalid("kana", e))?;
            let birth = s.birth_date;
            state
                // A search: the read path (a standby when one is fit to answer).
                .blocking_read(move |conn| Ok(persons::by_kana(conn, &kana, birth)?))
                .await?
        }
        (None, Some(number)) => {
            let insurer = s
                .insurer_number
                .as_deref()
                .ok_or_else(|| invalid("insurer_number", "required with number"))?;
            let insurer =
                InsurerNumber::parse(insurer).map_err(|e| invalid("insurer_number", e))?;
            let symbol = match s.symbol.as_deref().filter(|x| !x.is_empty()) {
                Some(x) => Symbol::parse(x)
                    .map_err(|e| invalid("symbol", e))?
                    .to_string(),
                None => String::new(),
            };
            let number = InsuredNumber::parse(number).map_err(|e| invalid("number", e))?;
            let branch = match s.branch.as_deref().filter(|x| !x.is_empty()) {
                Some(b) => Some(
                    Branch::parse(b)
                        .map_err(|e| invalid("branch", e))?
                        .to_string(),
                ),
                None => None,
            };
            state
                .blocking_read(move |conn| {
                    Ok(persons::by_key(
                        conn,
                        insurer.as_str(),
                        &symbol,
                        number.as_str(),
                        branch.as_deref(),
                    )?)
                })
                .await?
        }
        _ => {
            return Err(ApiError::Invalid(
                "give either number (with insurer_number, symbol, branch) or kana (with \
                 birth_date)"
                    .into(),
            ))
        }
    };
    let (subject, returned) = returned_persons(found.iter().map(|p| p.id));
    state
        .access_log
        .record(vec![entry(
            &caller,
            "person_search",
            subject,
            request,
            returned,
            None,
        )])
        .await?;
    Ok(HttpResponse::Ok().json(SearchResult { persons: found }))
}

/// A person's change history.
#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    /// Changes, oldest first.
    pub changes: Vec<Change>,
}

/// What changed in a person's record, when and by whom.
#[utoipa::path(
    tag = "registry",
    params(("id" = i64, Path, description = "Person id")),
    responses((status = 200, body = History), (status = 404, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, clerk, auditor. Logged as person_history."
)]
#[get("/v1/persons/{id}/history")]
pub async fn person_history(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let id = id.into_inner();
    let changes: Vec<Change> = state
        .blocking(move |conn| Ok(persons::history(conn, id)?))
        .await?;
    state
        .access_log
        .record(vec![entry(
            &caller,
            "person_history",
            Some(format!("person:{id}")),
            json!({ "person_id": id }),
            json!({ "changes": changes.len() }),
            None,
        )])
        .await?;
    Ok(HttpResponse::Ok().json(History { changes }))
}

/// Sets the facts that decide a person's certificates: the end of 任意継続, the end of the
/// residence permit, and a 要配慮者's request for a certificate at every renewal. The whole set
/// is given (an absent date clears it); every change is kept in the person's history under the
/// caller's name, and every later issue (the counter, the monthly run) uses them.
#[utoipa::path(
    tag = "registry",
    params(("id" = i64, Path, description = "Person id")),
    request_body = CertificateFacts,
    responses((status = 200, body = PersonView), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)),
    security(("bearer" = [])),
    description = "Roles: admin, clerk. Logged as person_update."
)]
#[put("/v1/persons/{id}/certificate-facts")]
pub async fn set_certificate_facts(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
    facts: Checked<CertificateFacts>,
) -> Result<HttpResponse, ApiError> {
    caller.require(FACT_WRITERS)?;
    let id = id.into_inner();
    let facts = facts.into_inner();
    let actor = caller.actor();
    let c = caller.clone();
    // The change and its access-log entry commit together, as every other change does.
    let person = state
        .logged_change(move |conn| {
            let person = persons::set_certificate_facts(conn, id, &facts, &actor)?;
            let e = entry(
                &c,
                "person_update",
                Some(format!("person:{id}")),
                json!({ "person_id": id, "certificate_facts": facts }),
                json!({ "found": true }),
                None,
            );
            Ok((person, vec![e]))
        })
        .await?;
    Ok(HttpResponse::Ok().json(person))
}
