//! FHIR R4 eligibility: a CoverageEligibilityRequest whose insurance points at a JP Core
//! JP_Coverage (insurer number in the payor identifier, 記号/番号/枝番 in the JP Core extensions
//! or the member identifier `保険者番号:記号:番号:枝番`) and a Patient with the birth date, both
//! contained (the Patient's JP Core kana name, when given, tells twins apart on a card without
//! 枝番). Answered with a CoverageEligibilityResponse (outcome, insurance.inforce,
//! benefitPeriod, the co-pay and, with the patient's consent extension, the 限度額適用区分 and
//! 特定疾病 as `insurance.item` benefits, and an extension when online viewing is blocked); every error is an
//! OperationOutcome. No Japanese profile exists for these two
//! resources, so the base R4 resources are used (domain.md).

use actix_web::{post, web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use chrono::{Days, NaiveDate};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::eligibility::{answer_logged, Answer, EligibilityQuery};
use crate::error::{redact_numbers, ApiError};
use crate::state::AppState;
use shikaku_domain::eligibility::Validity;

/// JP Core's identifier system for 保険者番号.
pub const INSURER_SYSTEM: &str = "urn:oid:1.2.392.100495.20.3.61";
/// The FHIR JSON media type.
pub const FHIR_JSON: &str = "application/fhir+json";
/// Extension carrying the eligibility validity code (1–5) on the response.
pub const VALIDITY_EXTENSION: &str = "urn:shikaku:fhir:eligibility-validity";
/// Extension on the response when online viewing of the person's records is blocked; its
/// `valueString` is the reason (`finding N`, or `suspended by the insurer`).
pub const ONLINE_VIEWING_BLOCKED_EXTENSION: &str = "urn:shikaku:fhir:online-viewing-blocked";
/// Extension on the request: the patient consented at the counter to the clinic seeing their
/// 限度額適用区分 and 特定疾病 (`valueBoolean`); without it both are left out.
pub const LIMIT_CONSENT_EXTENSION: &str = "urn:shikaku:fhir:limit-consent";
/// Code system of the benefit categories in `insurance.item.category`: `copay`, `limit`,
/// `specified-disease`.
pub const BENEFIT_CATEGORY_SYSTEM: &str = "urn:shikaku:fhir:benefit-category";
/// Code system of the benefit types shikaku adds to HL7's: `limit-category`.
pub const BENEFIT_TYPE_SYSTEM: &str = "urn:shikaku:fhir:benefit-type";
/// HL7's benefit types (`copay-percent`, `copay-maximum`).
pub const HL7_BENEFIT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/benefit-type";
/// Extension on an `insurance.item`: the first day the benefit is in force (the co-pay's
/// 発効期日), `valueDate`.
pub const BENEFIT_FROM_EXTENSION: &str = "urn:shikaku:fhir:benefit-valid-from";
/// Extension on an `insurance.item`: the last day the benefit is in force, `valueDate`.
pub const BENEFIT_UNTIL_EXTENSION: &str = "urn:shikaku:fhir:benefit-valid-until";

/// The HL7 extension JP Core puts on a `HumanName` to say which writing it is: `SYL` for the
/// kana (syllabic) name, `IDE` for the kanji (ideographic) one.
pub const NAME_REPRESENTATION_EXTENSION: &str =
    "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation";

const EXT_SYMBOL: &str = "JP_Coverage_InsuredPersonSymbol";
const EXT_NUMBER: &str = "JP_Coverage_InsuredPersonNumber";
const EXT_BRANCH: &str = "JP_Coverage_InsuredPersonSubNumber";

/// An OperationOutcome for `err`, with its HTTP status.
pub fn outcome(err: &ApiError) -> HttpResponse {
    let code = match err {
        ApiError::Unauthorized => "login",
        ApiError::Forbidden(_) => "forbidden",
        ApiError::NotFound(_) => "not-found",
        ApiError::TooLarge(_) => "too-costly",
        ApiError::RateLimited(_) => "throttled",
        ApiError::Unavailable(_) | ApiError::KeysChanged(_) => "transient",
        ApiError::Internal(_) => "exception",
        ApiError::BadRequest(_) => "structure",
        ApiError::Invalid(_)
        | ApiError::Conflict(_)
        | ApiError::LinkedElsewhere { .. }
        | ApiError::IdentityMismatch { .. } => "invalid",
    };
    if let ApiError::Internal(cause) = err {
        tracing::error!(%cause, "FHIR request failed");
    }
    HttpResponse::build(err.status_code())
        .content_type(FHIR_JSON)
        .json(json!({
            "resourceType": "OperationOutcome",
            "issue": [{ "severity": "error", "code": code, "diagnostics": err.to_string() }]
        }))
}

fn invalid(msg: &str) -> ApiError {
    ApiError::Invalid(msg.to_string())
}

fn contained<'a>(req: &'a Value, reference: Option<&str>, kind: &str) -> Option<&'a Value> {
    let list = req.get("contained")?.as_array()?;
    let wanted = reference.and_then(|r| r.strip_prefix('#'));
    list.iter().find(|r| {
        r.get("resourceType").and_then(Value::as_str) == Some(kind)
            && wanted.is_none_or(|id| r.get("id").and_then(Value::as_str) == Some(id))
    })
}

fn extension<'a>(coverage: &'a Value, suffix: &str) -> Option<&'a str> {
    coverage
        .get("extension")?
        .as_array()?
        .iter()
        .find(|e| {
            e.get("url")
                .and_then(Value::as_str)
                .is_some_and(|u| u.ends_with(suffix))
        })?
        .get("valueString")?
        .as_str()
}

fn insurer_of(req: &Value, coverage: &Value) -> Option<String> {
    let from_identifier = |v: &Value| -> Option<String> {
        let ids = match v.get("identifier")? {
            Value::Array(a) => a.clone(),
            one => vec![one.clone()],
        };
        ids.iter()
            .find(|i| i.get("system").and_then(Value::as_str) == Some(INSURER_SYSTEM))?
            .get("value")?
            .as_str()
            .map(str::to_string)
    };
    for payor in coverage.get("payor")?.as_array()? {
        if let Some(n) = from_identifier(payor) {
            return Some(n);
        }
        let reference = payor.get("reference").and_then(Value::as_str);
        if let Some(org) = contained(req, reference, "Organization") {
            if let Some(n) = from_identifier(org) {
                return Some(n);
            }
        }
    }
    None
}

/// The Patient's カナ氏名 as JP Core writes it: the `name` whose representation extension is
/// `SYL`, as its `text`, else its `family` and `given` joined by spaces.
fn kana_of(patient: &Value) -> Option<String> {
    let name = patient.get("name")?.as_array()?.iter().find(|n| {
        n.get("extension")
            .and_then(Value::as_array)
            .is_some_and(|exts| {
                exts.iter().any(|e| {
                    e.get("url").and_then(Value::as_str) == Some(NAME_REPRESENTATION_EXTENSION)
                        && e.get("valueCode").and_then(Value::as_str) == Some("SYL")
                })
            })
    })?;
    if let Some(text) = name.get("text").and_then(Value::as_str) {
        return Some(text.to_owned());
    }
    let mut parts: Vec<&str> = name
        .get("family")
        .and_then(Value::as_str)
        .into_iter()
        .collect();
    parts.extend(
        name.get("given")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str),
    );
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Reads the query out of a CoverageEligibilityRequest.
pub fn parse_request(req: &Value) -> Result<EligibilityQuery, ApiError> {
    if req.get("resourceType").and_then(Value::as_str) != Some("CoverageEligibilityRequest") {
        return Err(invalid("resourceType must be CoverageEligibilityRequest"));
    }
    let purposes = req.get("purpose").and_then(Value::as_array);
    if !purposes.is_some_and(|p| p.iter().any(|x| x.as_str() == Some("validation"))) {
        return Err(invalid(
            "purpose must include \"validation\"; only eligibility validation is answered",
        ));
    }
    let on = match req.get("servicedDate") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                .ok_or_else(|| invalid("servicedDate must be a date (YYYY-MM-DD)"))?,
        ),
    };
    let patient_ref = req.pointer("/patient/reference").and_then(Value::as_str);
    let patient = contained(req, patient_ref, "Patient")
        .ok_or_else(|| invalid("patient must reference a contained Patient"))?;
    let birth_date = patient
        .get("birthDate")
        .and_then(Value::as_str)
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .ok_or_else(|| invalid("Patient.birthDate (YYYY-MM-DD) is required"))?;
    let coverage_ref = req
        .pointer("/insurance/0/coverage/reference")
        .and_then(Value::as_str);
    let coverage = contained(req, coverage_ref, "Coverage")
        .ok_or_else(|| invalid("insurance[0].coverage must reference a contained Coverage"))?;
    // The member identifier form, when present, gives all four parts at once.
    let member = coverage
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("value").and_then(Value::as_str))
        .find_map(|v| v.parse::<shikaku_domain::PersonKey>().ok());
    let (insurer_number, symbol, number, branch) = match member {
        Some(k) => (
            k.insurer.to_string(),
            k.symbol.map(|s| s.to_string()),
            k.number.to_string(),
            k.branch.map(|b| b.to_string()),
        ),
        None => (
            insurer_of(req, coverage).ok_or_else(|| {
                invalid(
                    "Coverage.payor needs an identifier with system urn:oid:1.2.392.100495.20.3.61",
                )
            })?,
            extension(coverage, EXT_SYMBOL).map(str::to_string),
            extension(coverage, EXT_NUMBER)
                .ok_or_else(|| {
                    invalid("Coverage needs the JP_Coverage_InsuredPersonNumber extension")
                })?
                .to_string(),
            extension(coverage, EXT_BRANCH).map(str::to_string),
        ),
    };
    Ok(EligibilityQuery {
        insurer_number,
        symbol,
        number,
        branch,
        birth_date,
        on,
        kana: kana_of(patient),
        limit_consent: limit_consent(req)?,
    })
}

/// The request's consent extension: `valueBoolean`, false when absent.
fn limit_consent(req: &Value) -> Result<bool, ApiError> {
    let Some(ext) = req
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(LIMIT_CONSENT_EXTENSION))
    else {
        return Ok(false);
    };
    ext.get("valueBoolean")
        .and_then(Value::as_bool)
        .ok_or_else(|| invalid("the limit-consent extension needs a valueBoolean"))
}

/// The `insurance.item` entries of an answer: the co-pay (HL7 `copay-percent`, with its
/// 発効期日), and with consent the 限度額適用区分 (`limit-category`, a string) and each 特定疾病
/// (HL7 `copay-maximum`, the monthly cap in JPY). docs/api.md has the mapping.
fn benefit_items(p: &crate::eligibility::EligiblePerson) -> Vec<Value> {
    let dated = |from: NaiveDate, until: Option<NaiveDate>| {
        let mut ext = vec![json!({ "url": BENEFIT_FROM_EXTENSION, "valueDate": from.to_string() })];
        if let Some(u) = until {
            ext.push(json!({ "url": BENEFIT_UNTIL_EXTENSION, "valueDate": u.to_string() }));
        }
        ext
    };
    let category = |code: &str, display: &str| json!({ "coding": [{ "system": BENEFIT_CATEGORY_SYSTEM, "code": code, "display": display }] });
    let mut items = vec![json!({
        "extension": dated(p.copay_effective_from, None),
        "category": category("copay", "一部負担金割合"),
        "benefit": [{
            "type": { "coding": [{ "system": HL7_BENEFIT_TYPE, "code": "copay-percent" }] },
            "allowedUnsignedInt": p.copay_percent,
        }],
    })];
    if let Some(limit) = &p.limit_category {
        items.push(json!({
            "category": category("limit", "限度額適用区分"),
            "benefit": [{
                "type": { "coding": [{ "system": BENEFIT_TYPE_SYSTEM, "code": "limit-category" }] },
                "allowedString": limit,
            }],
        }));
    }
    for d in &p.specified_diseases {
        let mut item = json!({
            "extension": dated(d.valid_from, d.valid_until),
            "category": category("specified-disease", "特定疾病"),
            "benefit": [{
                "type": { "coding": [{ "system": HL7_BENEFIT_TYPE, "code": "copay-maximum" }] },
                "allowedMoney": { "value": d.cap_yen, "currency": "JPY" },
            }],
        });
        if let Some(disease) = d.disease {
            item["description"] = json!(disease.label());
        }
        items.push(item);
    }
    items
}

/// JP Core's extension URLs, written in full on the way out (read by suffix on the way in).
const JP_CORE_EXTENSION: &str = "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/";

/// Whether `id` is a FHIR id (`[A-Za-z0-9\-\.]{1,64}`), fit to be echoed in a reference.
fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Builds the CoverageEligibilityResponse for `answer` to `query`.
///
/// Everything in it is built from parsed values, never echoed from the request, so whatever
/// else a client sent cannot make the answer invalid FHIR: the Patient and the Coverage asked
/// about are contained again (FHIR requires `patient` and `insurer`, and a reference to a
/// contained resource must resolve), and absent values are left out rather than sent empty
/// (FHIR forbids empty strings).
pub fn response(request_id: Option<&str>, query: &EligibilityQuery, answer: &Answer) -> Value {
    let validity = u8::from(answer.validity);
    let request_ref = match request_id.filter(|id| is_fhir_id(id)) {
        Some(id) => json!({ "reference": format!("CoverageEligibilityRequest/{id}") }),
        None => json!({ "display": "submitted CoverageEligibilityRequest" }),
    };
    let insurer_number = answer
        .person
        .as_ref()
        .map_or(query.insurer_number.as_str(), |p| p.insurer_number.as_str());
    let mut insurer =
        json!({ "identifier": { "system": INSURER_SYSTEM, "value": insurer_number } });
    if let Some(name) = answer
        .person
        .as_ref()
        .map(|p| p.insurer_name.trim())
        .filter(|n| !n.is_empty())
    {
        insurer["display"] = json!(name);
    }
    let mut contained = vec![json!({
        "resourceType": "Patient",
        "id": "patient",
        "birthDate": query.birth_date.to_string(),
    })];
    let text = match answer.validity {
        Validity::Valid => "資格有効",
        Validity::Invalid => "資格無効",
        Validity::InvalidNewerExists => "資格無効（新しい資格あり）",
        Validity::NoMatch => "該当資格なし",
        Validity::SeveralMatches => "複数該当",
    };
    let blocked = answer.online_viewing.as_ref().filter(|v| v.blocked);
    let disposition = match blocked {
        Some(v) => format!("{text}（{}）", v.label()),
        None => text.to_owned(),
    };
    let mut extension =
        vec![json!({ "url": VALIDITY_EXTENSION, "valueCode": validity.to_string() })];
    if let Some(reason) = blocked.and_then(|v| v.reason.as_deref()) {
        extension.push(json!({ "url": ONLINE_VIEWING_BLOCKED_EXTENSION, "valueString": reason }));
    }
    let mut res = json!({
        "resourceType": "CoverageEligibilityResponse",
        "status": "active",
        "purpose": ["validation"],
        "patient": { "reference": "#patient" },
        "servicedDate": answer.on.to_string(),
        "created": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "request": request_ref,
        "insurer": insurer,
        "disposition": disposition,
        "extension": extension,
    });
    match &answer.person {
        Some(p) => {
            let mut extension = Vec::new();
            for (suffix, value) in [
                (EXT_SYMBOL, p.symbol.as_deref()),
                (EXT_NUMBER, Some(p.number.as_str())),
                (EXT_BRANCH, p.branch.as_deref()),
            ] {
                if let Some(v) = value.filter(|v| !v.is_empty()) {
                    extension.push(json!({
                        "url": format!("{JP_CORE_EXTENSION}{suffix}"),
                        "valueString": v,
                    }));
                }
            }
            // JP Core's member identifier keeps empty parts: `00012345::187:`.
            let member = format!(
                "{}:{}:{}:{}",
                p.insurer_number,
                p.symbol.as_deref().unwrap_or(""),
                p.number,
                p.branch.as_deref().unwrap_or("")
            );
            let mut coverage = json!({
                "resourceType": "Coverage",
                "id": "coverage",
                "status": "active",
                "identifier": [{ "value": member }],
                "beneficiary": { "reference": "#patient" },
                "payor": [{ "identifier": { "system": INSURER_SYSTEM, "value": p.insurer_number } }],
            });
            if !extension.is_empty() {
                coverage["extension"] = json!(extension);
            }
            contained.push(coverage);
            let mut period = json!({ "start": p.acquired_on.to_string() });
            if let Some(end) = p.lost_on.and_then(|l| l.checked_sub_days(Days::new(1))) {
                period["end"] = json!(end.to_string());
            }
            res["outcome"] = json!("complete");
            res["insurance"] = json!([{
                "coverage": { "reference": "#coverage" },
                "inforce": answer.validity == Validity::Valid,
                "benefitPeriod": period,
                "item": benefit_items(p),
            }]);
        }
        None => {
            res["outcome"] = json!("error");
            res["error"] = json!([{ "code": { "text": text } }]);
        }
    }
    res["contained"] = json!(contained);
    res
}

/// FHIR `$submit` of a CoverageEligibilityRequest.
#[utoipa::path(
    tag = "fhir",
    request_body(content = Object, content_type = "application/fhir+json",
                 description = "FHIR R4 CoverageEligibilityRequest with contained JP_Coverage and Patient"),
    responses(
        (status = 200, content_type = "application/fhir+json", description = "CoverageEligibilityResponse"),
        (status = 400, content_type = "application/fhir+json", description = "OperationOutcome"),
        (status = 401, content_type = "application/fhir+json", description = "OperationOutcome"),
        (status = 422, content_type = "application/fhir+json", description = "OperationOutcome"),
    ),
    security(("bearer" = [])),
    description = "Roles: provider, clerk, admin. Logged like any eligibility answer."
)]
#[post("/fhir/CoverageEligibilityRequest/$submit")]
pub async fn submit(req: HttpRequest, body: web::Payload) -> HttpResponse {
    match handle(&req, body).await {
        Ok(v) => HttpResponse::Ok().content_type(FHIR_JSON).json(v),
        Err(e) => outcome(&e),
    }
}

async fn handle(req: &HttpRequest, mut payload: web::Payload) -> Result<Value, ApiError> {
    use futures_util::StreamExt;
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
    let caller = Caller::extract(req).await?;
    // Read the body here rather than through an extractor, so that even an oversized body is
    // answered with an OperationOutcome.
    let limit = state.config.body_limit;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(redact_numbers(&format!("malformed JSON: {e}"))))?;
    let query = parse_request(&doc)?;
    let answers = answer_logged(&state, &caller, std::slice::from_ref(&query)).await?;
    let answer = answers
        .first()
        .ok_or_else(|| ApiError::Internal("no answer".into()))?;
    Ok(response(
        doc.get("id").and_then(Value::as_str),
        &query,
        answer,
    ))
}
