//! Eligibility answers over HTTP, keyed as オンライン資格確認 keys a certificate holder: 保険者番号,
//! 記号, 番号, 枝番 and the birth date, with an optional カナ氏名 that tells twins apart when the
//! card has no 枝番. Each answer also says whether online viewing of the person's records is
//! blocked by a suspended linkage (a critical audit finding awaiting review). The whole day list of a clinic (up to 1,000 queries) is
//! answered with one SQL statement (plus one more only when some answer is "lost"), and every
//! answer is in the access log before the response leaves.
//!
//! This module holds the request and response types and the handlers; the rule (validity codes
//! 1–5) is [`shikaku_domain::eligibility`], the SQL is [`shikaku_db::eligibility`].

use actix_web::{post, web, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use shikaku_db::access_log::NewEntry;
use shikaku_db::eligibility::{self as lookup, Candidate, CertificateSummary, LookupKey};
use shikaku_db::tokens::Role;
use shikaku_domain::benefit::{BenefitValue, Benefits, CopaySource, Disease};
use shikaku_domain::eligibility::{
    by_match_count, judge, narrow_by_kana, standing, OnlineViewing, Standing, Validity,
};
use shikaku_domain::{copay, kana, Branch, InsuredNumber, InsurerNumber, KanaName, Symbol};
use utoipa::ToSchema;

use crate::auth::{today_tokyo, Caller};
use crate::error::ApiError;
use crate::replica::ReadPath;
use crate::state::AppState;

/// Most queries in one batch.
pub const MAX_BATCH: usize = 1000;

/// One eligibility question. Personal keys travel in the body, never in the URL.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EligibilityQuery {
    /// 保険者番号: 8 digits, or 6 for 国保 (padded with 00).
    #[schema(example = "06130199", pattern = "^([0-9]{6}|[0-9]{8})$")]
    pub insurer_number: String,
    /// 記号, when the card has one.
    #[serde(default)]
    #[schema(max_length = 38)]
    pub symbol: Option<String>,
    /// 番号.
    #[schema(example = "187", min_length = 1, max_length = 38)]
    pub number: String,
    /// 枝番 (2 digits), when the card has one; without it every 枝番 under the 記号・番号 is a
    /// candidate and the birth date decides.
    #[serde(default)]
    #[schema(pattern = "^[0-9]{2}$")]
    pub branch: Option<String>,
    /// 生年月日: must match, or the answer is 4 and reveals nothing.
    pub birth_date: NaiveDate,
    /// The day asked about; today in Japan when absent.
    #[serde(default)]
    pub on: Option<NaiveDate>,
    /// カナ氏名 (katakana or hiragana, either width, spaces ignored), to choose between persons
    /// sharing the key and birth date, such as twins on a card without 枝番: the one whose kana
    /// matches is answered; none matching is 4, several still 5. Ignored when the key matches
    /// one person.
    #[serde(default)]
    #[schema(example = "ﾔﾏﾀﾞ ﾀﾛｳ", max_length = 100)]
    pub kana: Option<String>,
    /// The patient consented at the counter to the clinic seeing their 限度額適用区分 and
    /// 特定疾病 (as the national check asks): without it both are left out of the answer. The
    /// access log records which was asked.
    #[serde(default)]
    pub limit_consent: bool,
}

/// A clinic's day list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchQuery {
    /// Up to 1,000 queries.
    pub queries: Vec<EligibilityQuery>,
}

/// Answers in the order asked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchAnswer {
    /// One answer per query, same order.
    pub answers: Vec<Answer>,
}

/// The answer to one query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Answer {
    /// 1 valid, 2 invalid, 3 invalid with a newer qualification, 4 no match, 5 several.
    #[schema(value_type = u8, example = 1)]
    pub validity: Validity,
    /// The day answered for.
    pub on: NaiveDate,
    /// The insured person's details, only with codes 1, 2 and 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<EligiblePerson>,
    /// Whether online viewing of the person's records is blocked (a linkage suspended, by a
    /// critical audit finding or by the insurer), with the person (codes 1, 2 and 3). The
    /// validity code is the insurance standing either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_viewing: Option<OnlineViewing>,
}

/// What domain.md says a clinic receives with a valid or invalid answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EligiblePerson {
    /// Database id (staff use; clinics may ignore it).
    pub person_id: i64,
    /// 保険者番号.
    pub insurer_number: String,
    /// 保険者名称.
    pub insurer_name: String,
    /// 記号.
    pub symbol: Option<String>,
    /// 番号.
    pub number: String,
    /// 枝番.
    pub branch: Option<String>,
    /// 本人・家族: 1 本人, 2 家族; absent for 後期高齢者, who have no such distinction.
    pub relationship: Option<u8>,
    /// 氏名.
    pub name: String,
    /// カナ氏名, full-width katakana.
    pub kana: String,
    /// カナ氏名, half-width katakana as clinics' systems receive it.
    pub kana_half_width: String,
    /// 性別: 1 male, 2 female, 3 unset.
    pub sex: u8,
    /// 生年月日.
    pub birth_date: NaiveDate,
    /// 資格取得日 of the period answered for.
    pub acquired_on: NaiveDate,
    /// 資格喪失日, when lost.
    pub lost_on: Option<NaiveDate>,
    /// 喪失事由 (01 death, 02 welfare, 03 other insurance, 99 other), when lost.
    pub loss_reason: Option<String>,
    /// 一部負担金割合 as online answers carry it: "010", "020" or "030", in force on the day
    /// (or on the last insured day of a lost period).
    #[schema(example = "030")]
    pub copay_code: String,
    /// The same as a percentage.
    pub copay_percent: u8,
    /// 発効期日: the first day of the stretch this rate has been in force (a dated co-pay
    /// record's start, else the age rule's: the 70–74 start, the 75th birthday, 1 April after
    /// the 6th birthday, or the 資格取得日 when later).
    pub copay_effective_from: NaiveDate,
    /// Whether the rate comes from a dated record or the age rule.
    pub copay_source: CopaySource,
    /// 限度額適用区分 in force on the day (A01–A06, B01–B10); only with `limit_consent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "A03")]
    pub limit_category: Option<String>,
    /// 特定疾病 in force on the day; only with `limit_consent` (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub specified_diseases: Vec<SpecifiedDisease>,
    /// 未就学者: before compulsory schooling on the day.
    pub preschool: bool,
    /// The 資格確認書 active and valid on the day, when the person holds one.
    pub certificate: Option<CertificateSummary>,
}

/// A 特定疾病療養受療証 in force on the day asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SpecifiedDisease {
    /// The disease, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disease: Option<Disease>,
    /// The monthly cap in yen: 10000 or 20000.
    #[schema(example = 10000)]
    pub cap_yen: u32,
    /// First day in force.
    pub valid_from: NaiveDate,
    /// Last day in force; open-ended when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
}

/// A query checked and normalised: the stored forms of the key.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    insurer: String,
    symbol: String,
    number: String,
    branch: Option<String>,
    birth: NaiveDate,
    on: NaiveDate,
    kana: Option<String>,
    consent: bool,
}

fn field<T>(
    r: Result<T, shikaku_domain::DomainError>,
    prefix: &str,
    name: &str,
) -> Result<T, ApiError> {
    r.map_err(|e| ApiError::Invalid(format!("{prefix}{name}: {e}")))
}

impl Key {
    /// What birth-date guesses are counted against: the card's 保険者番号・記号・番号, so that
    /// varying the 枝番 (or leaving it out) buys no extra guesses.
    fn card(&self) -> String {
        format!("{}:{}:{}", self.insurer, self.symbol, self.number)
    }

    pub(crate) fn parse(q: &EligibilityQuery, prefix: &str) -> Result<Key, ApiError> {
        let insurer = field(
            InsurerNumber::parse(&q.insurer_number),
            prefix,
            "insurer_number",
        )?;
        let symbol = match q.symbol.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => field(Symbol::parse(s), prefix, "symbol")?.to_string(),
            None => String::new(),
        };
        let number = field(InsuredNumber::parse(&q.number), prefix, "number")?;
        let branch = match q.branch.as_deref().filter(|s| !s.is_empty()) {
            Some(b) => Some(field(Branch::parse(b), prefix, "branch")?.to_string()),
            None => None,
        };
        let kana = match q.kana.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(k) => Some(
                field(KanaName::parse(k), prefix, "kana")?
                    .as_str()
                    .to_owned(),
            ),
            None => None,
        };
        Ok(Key {
            insurer: insurer.to_string(),
            symbol,
            number: number.to_string(),
            branch,
            birth: q.birth_date,
            on: q.on.unwrap_or_else(today_tokyo),
            kana,
            consent: q.limit_consent,
        })
    }
}

impl Key {
    fn lookup(&self) -> LookupKey<'_> {
        LookupKey {
            insurer: &self.insurer,
            symbol: &self.symbol,
            number: &self.number,
            branch: self.branch.as_deref(),
            birth: self.birth,
            on: self.on,
        }
    }
}

/// Answers `keys` in order, from the standby when it is fit to answer ([`crate::replica`]);
/// a lookup that fails there is answered from the primary.
pub(crate) async fn answer(state: &AppState, keys: &[Key]) -> Result<Vec<Answer>, ApiError> {
    let (mut conn, path) = state.read_conn().await?;
    match answer_on(&mut conn, keys).await {
        Err(ApiError::Unavailable(_) | ApiError::Internal(_)) if path == ReadPath::Standby => {
            drop(conn);
            tracing::warn!(
                "an eligibility lookup failed on the standby; answering from the primary"
            );
            state.standby_failed();
            let mut conn = state.conn().await?;
            answer_on(&mut conn, keys).await
        }
        other => other,
    }
}

/// [`answer`] on one connection.
async fn answer_on(
    conn: &mut diesel_async::AsyncPgConnection,
    keys: &[Key],
) -> Result<Vec<Answer>, ApiError> {
    let lookups: Vec<LookupKey<'_>> = keys.iter().map(Key::lookup).collect();
    // Twins without a 枝番: the clinic's kana, when given, chooses between them.
    let found: Vec<Vec<Candidate>> = lookup::lookup(conn, &lookups)
        .await?
        .into_iter()
        .zip(keys)
        .map(|(candidates, key)| {
            narrow_by_kana(candidates, key.kana.as_deref(), |c| c.name_kana.as_str())
        })
        .collect();
    // Persons lost on their day with nothing later under their own key: does their number
    // hold a newer qualification elsewhere?
    let mut lost: Vec<(i64, NaiveDate)> = Vec::new();
    for (candidates, key) in found.iter().zip(keys) {
        if let [c] = candidates.as_slice() {
            if let Standing::Lost(i) = standing(&c.periods, key.on) {
                if let Some(l) = c.periods[i].lost_on {
                    lost.push((c.person_id, l));
                }
            }
        }
    }
    let newer = lookup::newer_elsewhere(conn, &lost).await?;
    Ok(found
        .into_iter()
        .zip(keys)
        .map(|(candidates, key)| build(candidates, key, &newer))
        .collect())
}

/// The answer for one key from the persons matching it.
fn build(mut candidates: Vec<Candidate>, key: &Key, newer_elsewhere: &[i64]) -> Answer {
    let on = key.on;
    let none = |validity| Answer {
        validity,
        on,
        person: None,
        online_viewing: None,
    };
    if let Some(v) = by_match_count(candidates.len()) {
        return none(v);
    }
    let c = candidates.remove(0);
    let judgement = judge(
        standing(&c.periods, on),
        newer_elsewhere.contains(&c.person_id),
    );
    let Some(period) = judgement.period.and_then(|i| c.periods.get(i)).copied() else {
        return none(judgement.validity);
    };
    // The terms on the day, or on the last insured day when the period has ended.
    let day = period.terms_day(on);
    let benefits = Benefits {
        records: &c.benefits,
        scheme: copay::Scheme::of_number(&c.insurer_number),
        birth: c.birth_date,
        registered: c.copay_rate,
    };
    let copay = benefits.copay_on(day, period.acquired_on);
    let rate = copay.rate;
    let limit_category = benefits.limit_on(day).map(|(c, _)| c.code());
    let specified_diseases = benefits
        .diseases_on(day)
        .into_iter()
        .filter_map(|b| match b.value {
            BenefitValue::SpecifiedDisease { cap, disease } => Some(SpecifiedDisease {
                disease,
                cap_yen: cap.yen(),
                valid_from: b.valid_from,
                valid_until: b.valid_until,
            }),
            _ => None,
        })
        .collect();
    let koki = InsurerNumber::parse(&c.insurer_number).is_ok_and(|i| i.is_koki());
    let answer = Answer {
        validity: judgement.validity,
        on,
        online_viewing: Some(OnlineViewing::new(c.suspended_linkages, c.blocking_finding)),
        person: Some(EligiblePerson {
            person_id: c.person_id,
            insurer_number: c.insurer_number,
            insurer_name: c.insurer_name,
            symbol: Some(c.symbol).filter(|s| !s.is_empty()),
            number: c.number,
            branch: Some(c.branch).filter(|s| !s.is_empty()),
            relationship: (!koki).then(|| u8::try_from(c.relationship.code()).unwrap_or(0)),
            name: c.name_kanji,
            kana: kana::to_full_width_katakana(&c.name_kana),
            kana_half_width: kana::to_half_width_katakana(&c.name_kana),
            sex: u8::try_from(c.sex.code()).unwrap_or(3),
            birth_date: c.birth_date,
            acquired_on: period.acquired_on,
            lost_on: period.lost_on,
            loss_reason: period.loss_reason.map(|r| r.as_str().to_string()),
            copay_code: rate.online_code().to_string(),
            copay_percent: rate.percent(),
            copay_effective_from: copay.effective_from,
            copay_source: copay.source,
            limit_category,
            specified_diseases,
            preschool: copay::is_preschool(c.birth_date, on),
            certificate: c.certificate,
        }),
    };
    if key.consent {
        answer
    } else {
        answer.without_consent()
    }
}

impl Answer {
    /// The answer as a clinic sees it without the patient's consent: the 限度額適用区分 and the
    /// 特定疾病 left out (the one home of that rule; the console shows both views with it).
    pub fn without_consent(mut self) -> Answer {
        if let Some(p) = self.person.as_mut() {
            p.limit_category = None;
            p.specified_diseases.clear();
        }
        self
    }
}

fn log_entries(
    caller: &Caller,
    queries: &[EligibilityQuery],
    keys: &[Key],
    answers: &[Answer],
) -> Vec<NewEntry> {
    queries
        .iter()
        .zip(keys)
        .zip(answers)
        .map(|((q, k), a)| {
            let mut e = NewEntry::now(&caller.name, caller.role.as_str(), "eligibility");
            e.token_id = Some(caller.token_id);
            let person = a.person.as_ref().map(|p| p.person_id);
            e.subject = person.map(|id| format!("person:{id}"));
            let mut request = serde_json::json!({
                "insurer_number": q.insurer_number, "symbol": q.symbol, "number": q.number,
                "branch": q.branch, "birth_date": q.birth_date, "on": k.on,
            });
            if let Some(kana) = &k.kana {
                request["kana"] = serde_json::json!(kana);
            }
            request["limit_consent"] = serde_json::json!(k.consent);
            e.request = crate::access::clean(request);
            e.response = serde_json::json!({
                "validity": u8::from(a.validity), "person_id": person,
            });
            if let Some(v) = a.online_viewing.as_ref().filter(|v| v.blocked) {
                e.response["online_viewing_blocked"] = serde_json::json!(v.reason);
            }
            e
        })
        .collect()
}

/// Checks the role and rate, answers, logs, and returns the answers.
pub(crate) async fn answer_logged(
    state: &AppState,
    caller: &Caller,
    queries: &[EligibilityQuery],
) -> Result<Vec<Answer>, ApiError> {
    caller.require(&[Role::Provider, Role::Clerk, Role::Admin])?;
    let keys = if queries.len() == 1 {
        vec![Key::parse(&queries[0], "")?]
    } else {
        queries
            .iter()
            .enumerate()
            .map(|(i, q)| Key::parse(q, &format!("queries[{i}].")))
            .collect::<Result<Vec<_>, _>>()?
    };
    let today = today_tokyo();
    let cards: Vec<String> = keys.iter().map(Key::card).collect();
    if let Some((card, misses)) = state.guesses.blocked(today, caller.token_id, &cards) {
        return Err(guessing_refused(state, caller, &card, misses, keys.len()).await);
    }
    rate_limit(state, caller, keys.len())?;
    let answers = answer(state, &keys).await?;
    let missed: Vec<String> = answers
        .iter()
        .zip(cards)
        .filter(|(a, _)| a.validity == Validity::NoMatch)
        .map(|(_, card)| card)
        .collect();
    // A request whose misses go past the day's allowance gets no answers at all: a batch of
    // guessed birth dates would otherwise carry the right one.
    if let Some((card, misses)) = state.guesses.record(today, caller.token_id, &missed) {
        return Err(guessing_refused(state, caller, &card, misses, keys.len()).await);
    }
    state
        .access_log
        .record(log_entries(caller, queries, &keys, &answers))
        .await?;
    Ok(answers)
}

/// Records a refused birth-date guess (metrics and the access log, where the privacy officer
/// looks) and returns the 429, which lasts until the day ends in Japan.
async fn guessing_refused(
    state: &AppState,
    caller: &Caller,
    card: &str,
    misses: u32,
    queries: usize,
) -> ApiError {
    state.metrics.security_event("guessing_refused");
    let mut e = NewEntry::now(
        &caller.name,
        caller.role.as_str(),
        "eligibility_guessing_refused",
    );
    e.token_id = Some(caller.token_id);
    e.request = serde_json::json!({ "card": card, "queries": queries });
    e.response = serde_json::json!({ "no_match_today": misses, "limit": state.guesses.limit() });
    if let Err(err) = state.access_log.record(vec![e]).await {
        return err;
    }
    ApiError::RateLimited(shikaku_domain::calendar::seconds_until_tokyo_midnight(
        chrono::Utc::now(),
    ))
}

fn rate_limit(state: &AppState, caller: &Caller, n: usize) -> Result<(), ApiError> {
    let cells = std::num::NonZeroU32::new(u32::try_from(n).unwrap_or(u32::MAX))
        .unwrap_or(std::num::NonZeroU32::MIN);
    match state.limiter.check_key_n(&caller.token_id, cells) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(not_until)) => {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            Err(ApiError::RateLimited(wait.as_secs().max(1)))
        }
        Err(_) => Err(ApiError::Invalid(format!(
            "a batch of {n} exceeds this token's burst of {}",
            state.config.rate_burst
        ))),
    }
}

/// Is this person insured on the day, and on what terms?
#[utoipa::path(
    tag = "eligibility",
    request_body = EligibilityQuery,
    responses(
        (status = 200, description = "The answer; validity 4 and 5 carry no person", body = Answer),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
    description = "Roles: provider, clerk, admin."
)]
#[post("/v1/eligibility")]
pub async fn eligibility(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Json<EligibilityQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let mut answers = answer_logged(&state, &caller, std::slice::from_ref(&query)).await?;
    let answer = answers
        .pop()
        .ok_or_else(|| ApiError::Internal("no answer".into()))?;
    Ok(HttpResponse::Ok().json(answer))
}

/// A clinic's day list in one round trip.
#[utoipa::path(
    tag = "eligibility",
    request_body = BatchQuery,
    responses(
        (status = 200, body = BatchAnswer),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
    description = "Up to 1,000 queries. Roles: provider, clerk, admin."
)]
#[post("/v1/eligibility/batch")]
pub async fn eligibility_batch(
    state: web::Data<AppState>,
    caller: Caller,
    batch: web::Json<BatchQuery>,
) -> Result<HttpResponse, ApiError> {
    let batch = batch.into_inner();
    if batch.queries.is_empty() {
        return Err(ApiError::Invalid(
            "queries: at least one query is required".into(),
        ));
    }
    if batch.queries.len() > MAX_BATCH {
        return Err(ApiError::Invalid(format!(
            "queries: at most {MAX_BATCH} per batch, got {}",
            batch.queries.len()
        )));
    }
    let answers = answer_logged(&state, &caller, &batch.queries).await?;
    Ok(HttpResponse::Ok().json(BatchAnswer { answers }))
}
