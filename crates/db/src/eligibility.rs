//! The eligibility lookup: the persons matching a clinic's keys (保険者番号, 記号, 番号,
//! optional 枝番, birth date) with their qualification periods, the certificate valid on the
//! day asked and whether a suspended linkage blocks online viewing, for a whole day list in one
//! statement; and, for persons lost on their day, whether
//! their number holds a newer qualification under another key. The rule that turns these
//! facts into a validity code is [`shikaku_domain::eligibility`]'s.
//!
//! The API runs these on its async pool ([`diesel_async`]): this is the hot path, and async
//! connections measured far better tail latency than blocking ones on a thread pool.

use chrono::NaiveDate;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Date, Nullable, Text, Untyped};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use shikaku_domain::{LossReason, Period, Relationship, Sex};

use crate::error::DbError;
use crate::persons::PersonRecord;

/// One key as stored: 記号 is '' when absent, 枝番 is `None` when the query has none (any 枝番
/// matches, and the birth date decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupKey<'a> {
    /// 保険者番号, 8 digits.
    pub insurer: &'a str,
    /// 記号 ('' when absent).
    pub symbol: &'a str,
    /// 番号.
    pub number: &'a str,
    /// 枝番, when asked.
    pub branch: Option<&'a str>,
    /// 生年月日: must match.
    pub birth: NaiveDate,
    /// The day asked about.
    pub on: NaiveDate,
}

/// The 資格確認書 active and valid on the day asked, as the answer shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A person matching a key, with what the answer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `persons.id`.
    pub person_id: i64,
    /// 保険者番号.
    pub insurer_number: String,
    /// 保険者名称.
    pub insurer_name: String,
    /// 記号 ('' when absent).
    pub symbol: String,
    /// 番号.
    pub number: String,
    /// 枝番 ('' when absent).
    pub branch: String,
    /// 本人・家族.
    pub relationship: Relationship,
    /// 漢字氏名.
    pub name_kanji: String,
    /// カナ氏名 as stored.
    pub name_kana: String,
    /// 生年月日.
    pub birth_date: NaiveDate,
    /// 性別.
    pub sex: Sex,
    /// Co-pay as the insurer registered it (percent).
    pub copay_rate: Option<u8>,
    /// Every qualification period, oldest first.
    pub periods: Vec<Period>,
    /// The certificate valid on the day asked.
    pub certificate: Option<CertificateSummary>,
    /// How many of the person's linkages are suspended (blocked from online viewing).
    pub suspended_linkages: i64,
    /// The critical finding that suspended one of them, the lowest id when several did;
    /// `None` when none is suspended by a finding (a reviewer may still have suspended one).
    pub blocking_finding: Option<i64>,
    /// The person's dated benefit records (co-pay, 限度額適用区分, 特定疾病).
    pub benefits: Vec<shikaku_domain::benefit::Benefit>,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    idx: i64,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(embed)]
    person: PersonRecord,
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
    #[diesel(sql_type = BigInt)]
    suspended_linkages: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    blocking_finding: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    benefits: serde_json::Value,
}

impl Row {
    fn into_candidate(self) -> Result<Candidate, DbError> {
        let bad = |what: &str| DbError::Invalid(format!("unexpected stored {what}"));
        let periods = self
            .acquired
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let reason = match self.reasons.get(i).cloned().flatten() {
                    Some(r) => Some(LossReason::parse(&r).map_err(|_| bad("loss reason"))?),
                    None => None,
                };
                Ok(Period::new(a, self.lost.get(i).copied().flatten(), reason))
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        let certificate = match (
            self.cert_number,
            self.cert_issued_on,
            self.cert_valid_from,
            self.cert_valid_until,
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
        };
        let benefits = crate::benefits::parse_json(&self.benefits)?;
        let p = self.person;
        Ok(Candidate {
            benefits,
            person_id: self.id,
            relationship: Relationship::from_code(p.relationship)
                .map_err(|_| bad("relationship"))?,
            sex: Sex::from_code(p.sex).map_err(|_| bad("sex"))?,
            copay_rate: p.copay_percent(),
            insurer_number: p.insurer_number,
            insurer_name: p.insurer_name,
            symbol: p.symbol,
            number: p.number,
            branch: p.branch,
            name_kanji: p.name_kanji,
            name_kana: p.name_kana,
            birth_date: p.birth_date,
            periods,
            certificate,
            suspended_linkages: self.suspended_linkages,
            blocking_finding: self.blocking_finding,
        })
    }
}

/// The lookup: keys in as arrays, matching persons with their periods out, in one statement.
/// Public so that a test can check its plan uses the person-key index.
pub const LOOKUP: &str = concat!(
    "
SELECT k.i AS idx, p.id, p.insurer_number, i.name AS insurer_name, p.symbol, p.number, p.branch,
       p.relationship, p.name_kanji, p.name_kana, p.birth_date, p.sex, p.postal_code, p.address,
       p.copay_rate, p.voluntary_until, p.residence_until, p.certificate_requested,
       coalesce(q.acquired, '{}') AS acquired, coalesce(q.lost, '{}') AS lost,
       coalesce(q.reasons, '{}') AS reasons, c.number AS cert_number,
       c.issued_on AS cert_issued_on, c.valid_from AS cert_valid_from,
       c.valid_until AS cert_valid_until, s.suspended_linkages, s.blocking_finding,
       ",
    crate::benefits::benefits_json!(),
    " AS benefits
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
  LEFT JOIN certificates c ON c.person_id = p.id AND c.status IN ('active', 'pending', 'expired')
                          AND k.on_day BETWEEN c.valid_from AND c.valid_until
  CROSS JOIN LATERAL (
       SELECT count(*) AS suspended_linkages, min(suspended_by_finding) AS blocking_finding
         FROM linkages WHERE person_id = p.id AND status = 'suspended') s"
);

/// The SQL of [`LOOKUP`] cut at its bind markers, once: `LOOKUP_PARTS[n]` is the text before
/// `$n+1`, and the last part the text after `$6`.
fn lookup_parts() -> &'static [&'static str; 7] {
    static PARTS: std::sync::OnceLock<[&'static str; 7]> = std::sync::OnceLock::new();
    PARTS.get_or_init(|| {
        let mut parts = [""; 7];
        let mut rest = LOOKUP;
        for (n, marker) in ["$1", "$2", "$3", "$4", "$5", "$6"].into_iter().enumerate() {
            // LOOKUP is a constant holding each marker once, in order (a unit test checks it).
            let at = rest.find(marker).unwrap_or(rest.len());
            parts[n] = &rest[..at];
            rest = rest.get(at + marker.len()..).unwrap_or("");
        }
        parts[6] = rest;
        parts
    })
}

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
        let parts = lookup_parts();
        out.push_sql(parts[0]);
        out.push_bind_param::<Array<Text>, _>(&self.insurers)?;
        out.push_sql(parts[1]);
        out.push_bind_param::<Array<Text>, _>(&self.symbols)?;
        out.push_sql(parts[2]);
        out.push_bind_param::<Array<Text>, _>(&self.numbers)?;
        out.push_sql(parts[3]);
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.branches)?;
        out.push_sql(parts[4]);
        out.push_bind_param::<Array<Date>, _>(&self.births)?;
        out.push_sql(parts[5]);
        out.push_bind_param::<Array<Date>, _>(&self.days)?;
        out.push_sql(parts[6]);
        Ok(())
    }
}

/// The persons matching each key, in the order of `keys` (one list per key).
pub async fn lookup(
    conn: &mut AsyncPgConnection,
    keys: &[LookupKey<'_>],
) -> Result<Vec<Vec<Candidate>>, DbError> {
    let query = LookupQuery {
        insurers: keys.iter().map(|k| k.insurer).collect(),
        symbols: keys.iter().map(|k| k.symbol).collect(),
        numbers: keys.iter().map(|k| k.number).collect(),
        branches: keys.iter().map(|k| k.branch).collect(),
        births: keys.iter().map(|k| k.birth).collect(),
        days: keys.iter().map(|k| k.on).collect(),
    };
    let rows: Vec<Row> = query.load(conn).await?;
    let mut by_key: Vec<Vec<Candidate>> = keys.iter().map(|_| Vec::new()).collect();
    for row in rows {
        let i = usize::try_from(row.idx - 1).unwrap_or(usize::MAX);
        if let Some(slot) = by_key.get_mut(i) {
            slot.push(row.into_candidate()?);
        }
    }
    Ok(by_key)
}

/// Persons whose number (any non-revoked linkage) is linked to another person with a period
/// acquired on or after the given date: their lost answer becomes 3.
const NEWER_ELSEWHERE: &str = "
SELECT DISTINCT x.pid AS id
  FROM unnest($1::bigint[], $2::date[]) AS x(pid, since)
  JOIN linkages l ON l.person_id = x.pid AND l.status <> 'revoked'
  JOIN linkages o ON o.mn_blind = l.mn_blind AND o.person_id <> x.pid AND o.status <> 'revoked'
  JOIN qualifications q ON q.person_id = o.person_id AND q.acquired_on >= x.since";

/// Of the persons lost on `(person_id, loss date)`, those whose number holds a newer
/// qualification under another key.
pub async fn newer_elsewhere(
    conn: &mut AsyncPgConnection,
    lost: &[(i64, NaiveDate)],
) -> Result<Vec<i64>, DbError> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    if lost.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diesel::sql_query(NEWER_ELSEWHERE)
        .bind::<Array<BigInt>, _>(lost.iter().map(|l| l.0).collect::<Vec<_>>())
        .bind::<Array<Date>, _>(lost.iter().map(|l| l.1).collect::<Vec<_>>())
        .load::<Id>(conn)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_cut_at_each_marker_once() {
        let parts = lookup_parts();
        let mut joined = String::new();
        for (n, part) in parts.iter().enumerate() {
            joined.push_str(part);
            if n < 6 {
                joined.push_str(&format!("${}", n + 1));
            }
        }
        assert_eq!(joined, LOOKUP);
        assert!(parts.iter().all(|p| !p.contains('$')));
    }
}
