//! Reading insured persons for staff: one person with its qualification periods, lookups by
//! person key or by kana name and birth date, and a person's change history. Writes go through
//! the imports, which keep the history, except the facts a counter learns that decide
//! certificates ([`set_certificate_facts`]), which are changed here with the same history.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Date, Jsonb, Nullable, SmallInt, Text, Timestamptz};

use shikaku_domain::{LossReason, Period};

use crate::error::DbError;

/// A person's registry record as every read selects it ([`PERSON_COLUMNS`], from `persons p
/// JOIN insurers i`): the one row shape that the staff reads, the eligibility lookup,
/// certificate issuance, the notice and the export share (each embeds it with what it adds).
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonRecord {
    /// 保険者番号.
    #[diesel(sql_type = Text)]
    pub insurer_number: String,
    /// 保険者名称.
    #[diesel(sql_type = Text)]
    pub insurer_name: String,
    /// 記号 ('' when absent).
    #[diesel(sql_type = Text)]
    pub symbol: String,
    /// 番号.
    #[diesel(sql_type = Text)]
    pub number: String,
    /// 枝番 ('' when absent).
    #[diesel(sql_type = Text)]
    pub branch: String,
    /// 1 本人, 2 家族.
    #[diesel(sql_type = SmallInt)]
    pub relationship: i16,
    /// 漢字氏名.
    #[diesel(sql_type = Text)]
    pub name_kanji: String,
    /// カナ氏名 as registered.
    #[diesel(sql_type = Text)]
    pub name_kana: String,
    /// 生年月日.
    #[diesel(sql_type = Date)]
    pub birth_date: NaiveDate,
    /// 1 male, 2 female, 3 unset.
    #[diesel(sql_type = SmallInt)]
    pub sex: i16,
    /// 郵便番号.
    #[diesel(sql_type = Nullable<Text>)]
    pub postal_code: Option<String>,
    /// 住所.
    #[diesel(sql_type = Nullable<Text>)]
    pub address: Option<String>,
    /// Co-pay rate in percent as the insurer registered it.
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub copay_rate: Option<i16>,
    /// Last day of 任意継続 (voluntary continuation), when the period is one: cuts certificates.
    #[diesel(sql_type = Nullable<Date>)]
    pub voluntary_until: Option<NaiveDate>,
    /// Last day of the residence permit (在留期間), for foreign residents: cuts certificates.
    #[diesel(sql_type = Nullable<Date>)]
    pub residence_until: Option<NaiveDate>,
    /// A 要配慮者 who asked for a 資格確認書 at every renewal, card or no card.
    #[diesel(sql_type = Bool)]
    pub certificate_requested: bool,
}

/// The select list of [`PersonRecord`], over `persons p JOIN insurers i`.
pub const PERSON_COLUMNS: &str = "p.insurer_number, i.name AS insurer_name, p.symbol, p.number,
        p.branch, p.relationship, p.name_kanji, p.name_kana, p.birth_date, p.sex, p.postal_code,
        p.address, p.copay_rate, p.voluntary_until, p.residence_until, p.certificate_requested";

impl PersonRecord {
    /// The registered co-pay as a percentage, if one is registered.
    pub fn copay_percent(&self) -> Option<u8> {
        self.copay_rate.and_then(|r| u8::try_from(r).ok())
    }

    /// The person's dated benefit `records` with what the age rule needs: the co-pay on a day
    /// is a record's, else the registered rate where the rules of the person's scheme allow it
    /// that day, else the default (a 後期 member keeps 後期 rates at any age).
    pub fn benefits<'a>(
        &self,
        records: &'a [shikaku_domain::benefit::Benefit],
    ) -> shikaku_domain::benefit::Benefits<'a> {
        shikaku_domain::benefit::Benefits {
            records,
            scheme: shikaku_domain::copay::Scheme::of_number(&self.insurer_number),
            birth: self.birth_date,
            registered: self.copay_percent(),
        }
    }

    /// The key as the JP Core member identifier `保険者番号:記号:番号:枝番`.
    pub fn member_id(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.insurer_number, self.symbol, self.number, self.branch
        )
    }
}

/// One insured person as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonView {
    /// Database id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// The registry record.
    #[diesel(embed)]
    #[serde(flatten)]
    pub record: PersonRecord,
    /// Last change.
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A stored qualification period; [`Period`] is its typed form.
#[derive(QueryableByName)]
struct PeriodRow {
    #[diesel(sql_type = Date)]
    acquired_on: NaiveDate,
    #[diesel(sql_type = Nullable<Date>)]
    lost_on: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Text>)]
    loss_reason: Option<String>,
}

/// [`PersonView`]'s select, to be followed by a WHERE clause.
fn select() -> String {
    format!(
        "SELECT p.id, {PERSON_COLUMNS}, p.updated_at
           FROM persons p JOIN insurers i ON i.insurer_number = p.insurer_number"
    )
}

/// One person.
pub fn get(conn: &mut PgConnection, id: i64) -> Result<PersonView, DbError> {
    diesel::sql_query(format!("{} WHERE p.id = $1", select()))
        .bind::<BigInt, _>(id)
        .get_result(conn)
        .optional()?
        .ok_or_else(|| DbError::NotFound(format!("no person {id}")))
}

/// A person's qualification periods, oldest first.
pub fn periods(conn: &mut PgConnection, person_id: i64) -> Result<Vec<Period>, DbError> {
    diesel::sql_query(
        "SELECT acquired_on, lost_on, loss_reason FROM qualifications
         WHERE person_id = $1 ORDER BY acquired_on",
    )
    .bind::<BigInt, _>(person_id)
    .load::<PeriodRow>(conn)?
    .into_iter()
    .map(|r| {
        let reason = match r.loss_reason {
            Some(code) => Some(LossReason::parse(&code).map_err(|_| {
                DbError::Invalid(format!("unexpected stored loss reason {code:?}"))
            })?),
            None => None,
        };
        Ok(Period::new(r.acquired_on, r.lost_on, reason))
    })
    .collect()
}

/// The persons under a 記号・番号, or the one with the given 枝番 too. `symbol` and `branch`
/// are '' when absent, as stored.
pub fn by_key(
    conn: &mut PgConnection,
    insurer_number: &str,
    symbol: &str,
    number: &str,
    branch: Option<&str>,
) -> Result<Vec<PersonView>, DbError> {
    Ok(diesel::sql_query(format!(
        "{} WHERE p.insurer_number = $1 AND p.symbol = $2 AND p.number = $3
                    AND ($4::text IS NULL OR p.branch = $4)
         ORDER BY p.branch LIMIT 100",
        select()
    ))
    .bind::<Text, _>(insurer_number)
    .bind::<Text, _>(symbol)
    .bind::<Text, _>(number)
    .bind::<Nullable<Text>, _>(branch)
    .load(conn)?)
}

/// The persons with this kana name (any width, hiragana or katakana; spaces ignored), born on
/// `birth_date` when given.
pub fn by_kana(
    conn: &mut PgConnection,
    kana: &shikaku_domain::KanaName,
    birth_date: Option<NaiveDate>,
) -> Result<Vec<PersonView>, DbError> {
    let key = kana.search_key();
    Ok(diesel::sql_query(format!(
        "{} WHERE p.kana_key = $1 AND ($2::date IS NULL OR p.birth_date = $2)
         ORDER BY p.birth_date, p.id LIMIT 100",
        select()
    ))
    .bind::<Text, _>(key)
    .bind::<Nullable<Date>, _>(birth_date)
    .load(conn)?)
}

/// One recorded change to a person or its periods.
#[derive(Debug, Clone, PartialEq, QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    /// When.
    #[diesel(sql_type = Timestamptz)]
    pub changed_at: chrono::DateTime<chrono::Utc>,
    /// Who (an import or a named user).
    #[diesel(sql_type = Text)]
    pub actor: String,
    /// updated, qualification_added or qualification_changed.
    #[diesel(sql_type = Text)]
    pub action: String,
    /// Field → its change: `{"old": …, "new": …}` for an update, the value for an added
    /// period. The values are the stored ones, of the field's own type.
    #[diesel(sql_type = Jsonb)]
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::HashMap<String, serde_json::Value>))]
    pub changes: serde_json::Value,
}

/// A person's change history, oldest first.
pub fn history(conn: &mut PgConnection, person_id: i64) -> Result<Vec<Change>, DbError> {
    get(conn, person_id)?;
    Ok(diesel::sql_query(
        "SELECT changed_at, actor, action, changes FROM person_changes
         WHERE person_id = $1 ORDER BY changed_at, id",
    )
    .bind::<BigInt, _>(person_id)
    .load(conn)?)
}

/// The facts about a person that decide their 資格確認書 beyond the period: the ends of 任意継続
/// and of the residence permit (each cuts a certificate short) and a 要配慮者's standing request
/// for a certificate at every renewal. Set as a whole: what is absent is cleared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CertificateFacts {
    /// Last day of 任意継続 (voluntary continuation), when the period is one.
    #[serde(default)]
    pub voluntary_until: Option<NaiveDate>,
    /// Last day of the residence permit (在留期間), for foreign residents.
    #[serde(default)]
    pub residence_until: Option<NaiveDate>,
    /// A 要配慮者 who asked for a certificate at every renewal.
    #[serde(default)]
    pub certificate_requested: bool,
}

impl CertificateFacts {
    /// The facts as stored on `person`.
    pub fn of(person: &PersonRecord) -> CertificateFacts {
        CertificateFacts {
            voluntary_until: person.voluntary_until,
            residence_until: person.residence_until,
            certificate_requested: person.certificate_requested,
        }
    }
}

/// Sets a person's certificate facts, recording the old and new value of each that changed
/// (action `updated`, like an import's correction) under `actor`. Returns the person as stored;
/// nothing is written when nothing changes.
pub fn set_certificate_facts(
    conn: &mut PgConnection,
    person_id: i64,
    facts: &CertificateFacts,
    actor: &str,
) -> Result<PersonView, DbError> {
    conn.transaction(|conn| {
        diesel::sql_query(
            "WITH old AS (SELECT id, voluntary_until, residence_until, certificate_requested
                            FROM persons WHERE id = $1 FOR UPDATE),
                  diff AS (
                    SELECT o.id, jsonb_object_agg(x.key, jsonb_build_object('old', x.old, 'new', x.new))
                           AS changes
                      FROM old o,
                           LATERAL (VALUES
                             ('voluntary_until', to_jsonb(o.voluntary_until), to_jsonb($2::date)),
                             ('residence_until', to_jsonb(o.residence_until), to_jsonb($3::date)),
                             ('certificate_requested', to_jsonb(o.certificate_requested),
                              to_jsonb($4::boolean))) AS x(key, old, new)
                     WHERE x.old IS DISTINCT FROM x.new
                     GROUP BY o.id),
                  upd AS (
                    UPDATE persons p SET voluntary_until = $2, residence_until = $3,
                                         certificate_requested = $4, updated_at = now()
                      FROM diff WHERE p.id = diff.id RETURNING p.id)
             INSERT INTO person_changes (person_id, actor, action, changes)
             SELECT id, $5, 'updated', changes FROM diff",
        )
        .bind::<BigInt, _>(person_id)
        .bind::<Nullable<Date>, _>(facts.voluntary_until)
        .bind::<Nullable<Date>, _>(facts.residence_until)
        .bind::<Bool, _>(facts.certificate_requested)
        .bind::<Text, _>(actor)
        .execute(conn)?;
        get(conn, person_id)
    })
}
