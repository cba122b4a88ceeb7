//! Eligibility answers, keyed as オンライン資格確認 keys a certificate holder: 保険者番号, 記号,
//! 番号, 枝番 and the birth date. The whole day list of a clinic (up to 1,000 queries) is answered
//! with one SQL statement (plus one more only when some answer is "lost"), and every answer is
//! in the access log before the response leaves.

use actix_web::{post, web, HttpResponse};
use chrono::{Days, NaiveDate};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Date, Nullable, SmallInt, Text, Untyped};
use diesel::{QueryResult, QueryableByName};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use shikaku_db::access_log::NewEntry;
use shikaku_db::tokens::Role;
use shikaku_domain::{copay, Branch, CopayRate, InsuredNumber, InsurerNumber, KanaName, Symbol};
use utoipa::ToSchema;

use crate::auth::{today_tokyo, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// Most queries in one batch.
pub const MAX_BATCH: usize = 1000;

/// One eligibility question. Personal keys travel in the body, never in the URL.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EligibilityQuery {
    /// 保険者番号: 8 digits, or 6 for 国保 (padded with 00).
    #[schema(example = "06130199")]
    pub insurer_number: String,
    /// 記号, when the card has one.
    #[serde(default)]
    pub symbol: Option<String>,
    /// 番号.
    #[schema(example = "187")]
    pub number: String,
    /// 枝番 (2 digits), when the card has one; without it every 枝番 under the 記号・番号 is a
    /// candidate and the birth date decides.
    #[serde(default)]
    pub branch: Option<String>,
    /// 生年月日: must match, or the answer is 4 and reveals nothing.
    pub birth_date: NaiveDate,
    /// The day asked about; today in Japan when absent.
    #[serde(default)]
    pub on: Option<NaiveDate>,
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

/// 資格有効性: the validity code a clinic receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(into = "u8", try_from = "u8")]
pub enum Validity {
    /// 1: insured on the day.
    Valid,
    /// 2: not insured on the day (lost, or not yet acquired).
    Invalid,
    /// 3: not insured on the day under this key, but a newer qualification exists.
    InvalidNewerExists,
    /// 4: no person with this key and birth date.
    NoMatch,
    /// 5: several persons match; the clinic must ask for the 枝番.
    SeveralMatches,
}

impl From<Validity> for u8 {
    fn from(v: Validity) -> u8 {
        match v {
            Validity::Valid => 1,
            Validity::Invalid => 2,
            Validity::InvalidNewerExists => 3,
            Validity::NoMatch => 4,
            Validity::SeveralMatches => 5,
        }
    }
}

impl TryFrom<u8> for Validity {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        Ok(match v {
            1 => Validity::Valid,
            2 => Validity::Invalid,
            3 => Validity::InvalidNewerExists,
            4 => Validity::NoMatch,
            5 => Validity::SeveralMatches,
            _ => return Err(format!("unknown validity code {v}")),
        })
    }
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
    /// 一部負担金割合 as online answers carry it: "010", "020" or "030".
    #[schema(example = "030")]
    pub copay_code: String,
    /// The same as a percentage.
    pub copay_percent: u8,
    /// 未就学者: before compulsory schooling on the day.
    pub preschool: bool,
    /// The 資格確認書 active and valid on the day, when the person holds one.
    pub certificate: Option<CertificateSummary>,
}

/// The active certificate's number and validity.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CertificateSummary {
    /// 資格確認書 number.
    pub number: String,
    /// 交付年月日.
    pub issued_on: NaiveDate,
    /// 有効開始日.
    pub valid_from: NaiveDate,
    /// 有効期限.
    pub valid_until: NaiveDate,
}

/// One qualification period, [acquired_on, lost_on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// 資格取得日.
    pub acquired_on: NaiveDate,
    /// 資格喪失日.
    pub lost_on: Option<NaiveDate>,
    /// 喪失事由.
    pub loss_reason: Option<String>,
}

/// Where a person's periods put a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The period containing the day.
    Insured(usize),
    /// The last period ended on or before the day, and a later one of the same person exists.
    LostNewerHere(usize),
    /// The last period ended on or before the day and nothing later under this key (another
    /// key with the same number may still hold a newer one).
    Lost(usize),
    /// The first period starts after the day.
    NotYet(usize),
    /// No periods at all.
    Never,
}

/// Pure: where `periods` (sorted by acquired_on) put `on`.
pub fn standing(periods: &[Period], on: NaiveDate) -> Standing {
    if let Some(i) = periods
        .iter()
        .position(|p| p.acquired_on <= on && p.lost_on.is_none_or(|l| on < l))
    {
        return Standing::Insured(i);
    }
    let last_past = periods
        .iter()
        .rposition(|p| p.lost_on.is_some_and(|l| l <= on));
    match last_past {
        Some(i) if periods.iter().any(|p| p.acquired_on > on) => Standing::LostNewerHere(i),
        Some(i) => Standing::Lost(i),
        None if periods.is_empty() => Standing::Never,
        None => Standing::NotYet(0),
    }
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
}

fn field<T>(
    r: Result<T, shikaku_domain::DomainError>,
    prefix: &str,
    name: &str,
) -> Result<T, ApiError> {
    r.map_err(|e| ApiError::Invalid(format!("{prefix}{name}: {e}")))
}

impl Key {
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
        Ok(Key {
            insurer: insurer.to_string(),
            symbol,
            number: number.to_string(),
            branch,
            birth: q.birth_date,
            on: q.on.unwrap_or_else(today_tokyo),
        })
    }
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    idx: i64,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    insurer_number: String,
    #[diesel(sql_type = Text)]
    insurer_name: String,
    #[diesel(sql_type = Text)]
    symbol: String,
    #[diesel(sql_type = Text)]
    number: String,
    #[diesel(sql_type = Text)]
    branch: String,
    #[diesel(sql_type = SmallInt)]
    relationship: i16,
    #[diesel(sql_type = Text)]
    name_kanji: String,
    #[diesel(sql_type = Text)]
    name_kana: String,
    #[diesel(sql_type = Date)]
    birth_date: NaiveDate,
    #[diesel(sql_type = SmallInt)]
    sex: i16,
    #[diesel(sql_type = Nullable<SmallInt>)]
    copay_rate: Option<i16>,
    #[diesel(sql_type = Array<Date>)]
    acquired: Vec<NaiveDate>,
    #[diesel(sql_type = Array<Nullable<Date>>)]
    lost: Vec<Option<NaiveDate>>,
    #[diesel(sql_type = Array<Nullable<Text>>)]
    reasons: Vec<Option<String>>,
    #[diesel(sql_type = Nullable<Text>)]
    cert_number: Option<String>,
    #[diesel(sql_type = Nullable<Date>)]
    cert_issued_on: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    cert_valid_from: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    cert_valid_until: Option<NaiveDate>,
}

/// The lookup: keys in as arrays, matching persons with their periods out, in one statement.
/// Public so that a test can check its plan uses the person-key index.
pub const LOOKUP: &str = "
SELECT k.i AS idx, p.id, p.insurer_number, i.name AS insurer_name, p.symbol, p.number, p.branch,
       p.relationship, p.name_kanji, p.name_kana, p.birth_date, p.sex, p.copay_rate,
       coalesce(q.acquired, '{}') AS acquired, coalesce(q.lost, '{}') AS lost,
       coalesce(q.reasons, '{}') AS reasons, c.number AS cert_number,
       c.issued_on AS cert_issued_on, c.valid_from AS cert_valid_from,
       c.valid_until AS cert_valid_until
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::date[], $6::date[])
       WITH ORDINALITY AS k(ins, sym, num, br, birth, on_day, i)
  JOIN persons p ON p.insurer_number = k.ins AND p.symbol = k.sym AND p.number = k.num
                AND (k.br IS NULL OR p.branch = k.br) AND p.birth_date = k.birth
  JOIN insurers i ON i.insurer_number = p.insurer_number
  LEFT JOIN LATERAL (
       SELECT array_agg(acquired_on ORDER BY acquired_on) AS acquired,
              array_agg(lost_on ORDER BY acquired_on) AS lost,
              array_agg(loss_reason ORDER BY acquired_on) AS reasons
         FROM qualifications WHERE person_id = p.id) q ON true
  LEFT JOIN certificates c ON c.person_id = p.id AND c.status = 'active'
                          AND k.on_day BETWEEN c.valid_from AND c.valid_until";

/// Persons whose number (any non-revoked linkage) is linked to another person with a period
/// acquired on or after the given date: their lost answer becomes 3.
const NEWER_ELSEWHERE: &str = "
SELECT DISTINCT x.pid AS id
  FROM unnest($1::bigint[], $2::date[]) AS x(pid, since)
  JOIN linkages l ON l.person_id = x.pid AND l.status <> 'revoked'
  JOIN linkages o ON o.mn_blind = l.mn_blind AND o.person_id <> x.pid AND o.status <> 'revoked'
  JOIN qualifications q ON q.person_id = o.person_id AND q.acquired_on >= x.since";

/// [`LOOKUP`] as a query type of its own. diesel caches a prepared statement only for a query
/// with a static id, and `sql_query` never has one: as a `sql_query` the lookup was parsed and
/// planned on every request (about 1 ms of server CPU, measured). With this type it is
/// prepared once per connection and then only bound and executed.
struct LookupQuery<'k> {
    insurers: Vec<&'k str>,
    symbols: Vec<&'k str>,
    numbers: Vec<&'k str>,
    branches: Vec<Option<&'k str>>,
    births: Vec<NaiveDate>,
    days: Vec<NaiveDate>,
}

/// The static query id of [`LookupQuery`].
struct LookupQueryId;

impl QueryId for LookupQuery<'_> {
    type QueryId = LookupQueryId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for LookupQuery<'_> {
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for LookupQuery<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // LOOKUP's text with its $1..$6 replaced by the binds, in order.
        let mut rest = LOOKUP;
        for (n, marker) in ["$1", "$2", "$3", "$4", "$5", "$6"].into_iter().enumerate() {
            let n = n + 1;
            let Some(at) = rest.find(marker) else {
                return Err(diesel::result::Error::QueryBuilderError(
                    format!("LOOKUP lacks {marker}").into(),
                ));
            };
            out.push_sql(&rest[..at]);
            match n {
                1 => out.push_bind_param::<Array<Text>, _>(&self.insurers)?,
                2 => out.push_bind_param::<Array<Text>, _>(&self.symbols)?,
                3 => out.push_bind_param::<Array<Text>, _>(&self.numbers)?,
                4 => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.branches)?,
                5 => out.push_bind_param::<Array<Date>, _>(&self.births)?,
                _ => out.push_bind_param::<Array<Date>, _>(&self.days)?,
            }
            rest = &rest[at + marker.len()..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Answers `keys` in order.
pub(crate) async fn answer(state: &AppState, keys: &[Key]) -> Result<Vec<Answer>, ApiError> {
    let mut conn = state.conn().await?;
    let lookup = LookupQuery {
        insurers: keys.iter().map(|k| k.insurer.as_str()).collect(),
        symbols: keys.iter().map(|k| k.symbol.as_str()).collect(),
        numbers: keys.iter().map(|k| k.number.as_str()).collect(),
        branches: keys.iter().map(|k| k.branch.as_deref()).collect(),
        births: keys.iter().map(|k| k.birth).collect(),
        days: keys.iter().map(|k| k.on).collect(),
    };
    let rows: Vec<Row> = lookup.load(&mut conn).await?;
    let mut by_query: Vec<Vec<Row>> = keys.iter().map(|_| Vec::new()).collect();
    for row in rows {
        let i = usize::try_from(row.idx - 1).unwrap_or(usize::MAX);
        if let Some(slot) = by_query.get_mut(i) {
            slot.push(row);
        }
    }
    // Persons lost on their day with nothing later under their own key: does their number
    // hold a newer qualification elsewhere?
    let mut lost: Vec<(i64, NaiveDate)> = Vec::new();
    for (rows, key) in by_query.iter().zip(keys) {
        if let [row] = rows.as_slice() {
            let periods = periods_of(row);
            if let Standing::Lost(i) = standing(&periods, key.on) {
                if let Some(l) = periods[i].lost_on {
                    lost.push((row.id, l));
                }
            }
        }
    }
    let newer: Vec<i64> = if lost.is_empty() {
        Vec::new()
    } else {
        diesel::sql_query(NEWER_ELSEWHERE)
            .bind::<Array<BigInt>, _>(lost.iter().map(|l| l.0).collect::<Vec<_>>())
            .bind::<Array<Date>, _>(lost.iter().map(|l| l.1).collect::<Vec<_>>())
            .load::<Id>(&mut conn)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    drop(conn);
    Ok(by_query
        .into_iter()
        .zip(keys)
        .map(|(rows, key)| build(rows, key, &newer))
        .collect())
}

fn periods_of(row: &Row) -> Vec<Period> {
    row.acquired
        .iter()
        .enumerate()
        .map(|(i, a)| Period {
            acquired_on: *a,
            lost_on: row.lost.get(i).copied().flatten(),
            loss_reason: row.reasons.get(i).cloned().flatten(),
        })
        .collect()
}

fn build(mut rows: Vec<Row>, key: &Key, newer_elsewhere: &[i64]) -> Answer {
    let on = key.on;
    let none = |validity| Answer {
        validity,
        on,
        person: None,
    };
    let row = match rows.len() {
        0 => return none(Validity::NoMatch),
        1 => rows.remove(0),
        _ => return none(Validity::SeveralMatches),
    };
    let periods = periods_of(&row);
    let (validity, period) = match standing(&periods, on) {
        Standing::Insured(i) => (Validity::Valid, Some(i)),
        Standing::LostNewerHere(i) => (Validity::InvalidNewerExists, Some(i)),
        Standing::Lost(i) if newer_elsewhere.contains(&row.id) => {
            (Validity::InvalidNewerExists, Some(i))
        }
        Standing::Lost(i) | Standing::NotYet(i) => (Validity::Invalid, Some(i)),
        Standing::Never => (Validity::Invalid, None),
    };
    let Some(period) = period.and_then(|i| periods.get(i)) else {
        return none(validity);
    };
    // The rate on the day, or on the last insured day when the period has ended.
    let rate_day = match period.lost_on {
        Some(l) if l <= on => l.checked_sub_days(Days::new(1)).unwrap_or(l),
        _ if period.acquired_on > on => period.acquired_on,
        _ => on,
    };
    let rate = effective_copay(row.birth_date, rate_day, row.copay_rate);
    let kana = KanaName::parse(&row.name_kana).ok();
    let koki = row.insurer_number.starts_with("39");
    Answer {
        validity,
        on,
        person: Some(EligiblePerson {
            person_id: row.id,
            insurer_number: row.insurer_number,
            insurer_name: row.insurer_name,
            symbol: Some(row.symbol).filter(|s| !s.is_empty()),
            number: row.number,
            branch: Some(row.branch).filter(|s| !s.is_empty()),
            relationship: (!koki).then(|| u8::try_from(row.relationship).unwrap_or(0)),
            name: row.name_kanji,
            kana: kana
                .as_ref()
                .map_or_else(|| row.name_kana.clone(), KanaName::to_full_width_katakana),
            kana_half_width: kana
                .as_ref()
                .map_or_else(|| row.name_kana.clone(), KanaName::to_half_width_katakana),
            sex: u8::try_from(row.sex).unwrap_or(3),
            birth_date: row.birth_date,
            acquired_on: period.acquired_on,
            lost_on: period.lost_on,
            loss_reason: period.loss_reason.clone(),
            copay_code: rate.online_code().to_string(),
            copay_percent: rate.percent(),
            preschool: copay::is_preschool(row.birth_date, on),
            certificate: match (
                row.cert_number,
                row.cert_issued_on,
                row.cert_valid_from,
                row.cert_valid_until,
            ) {
                (Some(number), Some(issued_on), Some(valid_from), Some(valid_until)) => {
                    Some(CertificateSummary {
                        number,
                        issued_on,
                        valid_from,
                        valid_until,
                    })
                }
                _ => None,
            },
        }),
    }
}

/// The co-pay on the day for a stored rate in percent ([`copay::effective`]).
pub fn effective_copay(birth: NaiveDate, on: NaiveDate, stored: Option<i16>) -> CopayRate {
    copay::effective(birth, on, stored.and_then(|p| u8::try_from(p).ok()))
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
            e.request = crate::access::clean(serde_json::json!({
                "insurer_number": q.insurer_number, "symbol": q.symbol, "number": q.number,
                "branch": q.branch, "birth_date": q.birth_date, "on": k.on,
            }));
            e.response = serde_json::json!({
                "validity": u8::from(a.validity), "person_id": person,
            });
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
    rate_limit(state, caller, keys.len())?;
    let answers = answer(state, &keys).await?;
    state
        .access_log
        .record(log_entries(caller, queries, &keys, &answers))
        .await?;
    Ok(answers)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn p(a: &str, l: Option<&str>) -> Period {
        Period {
            acquired_on: d(a),
            lost_on: l.map(d),
            loss_reason: l.map(|_| "03".to_string()),
        }
    }

    #[test]
    fn standing_on_dated_histories() {
        let hist = [p("2020-04-01", Some("2024-04-01")), p("2025-01-01", None)];
        assert_eq!(standing(&hist, d("2021-01-01")), Standing::Insured(0));
        // The loss date is the first day without cover.
        assert_eq!(standing(&hist, d("2024-03-31")), Standing::Insured(0));
        assert_eq!(standing(&hist, d("2024-04-01")), Standing::LostNewerHere(0));
        assert_eq!(standing(&hist, d("2025-01-01")), Standing::Insured(1));
        assert_eq!(standing(&hist, d("2019-01-01")), Standing::NotYet(0));
        let lost = [p("2020-04-01", Some("2024-04-01"))];
        assert_eq!(standing(&lost, d("2026-01-01")), Standing::Lost(0));
        assert_eq!(standing(&[], d("2026-01-01")), Standing::Never);
    }

    #[test]
    fn stored_rate_kept_only_when_the_age_allows_it() {
        // 72 years old: 30% (現役並み) is allowed, 10% is not.
        let birth = d("1954-05-10");
        let on = d("2026-11-25");
        assert_eq!(effective_copay(birth, on, Some(30)), CopayRate::Thirty);
        assert_eq!(effective_copay(birth, on, Some(10)), CopayRate::Twenty);
        assert_eq!(effective_copay(birth, on, None), CopayRate::Twenty);
        // A child registered at 20% keeps it only until the March after turning 6.
        let child = d("2019-06-01");
        assert_eq!(
            effective_copay(child, d("2026-03-31"), Some(20)),
            CopayRate::Twenty
        );
        assert_eq!(
            effective_copay(child, d("2026-04-01"), Some(20)),
            CopayRate::Thirty
        );
    }
}
