//! 資格確認書 lifecycle: issue, reissue (supersedes), revoke, mark returned, and reads. The
//! validity comes from the domain rules with the insurer's policy; the printed items are frozen
//! as JSON when issued. A lost qualification revokes the active certificate in the database
//! itself (trigger `certificates_revoke_on_loss`), whoever records the loss.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Jsonb, Nullable, SmallInt, Text, Timestamptz};
use serde_json::{json, Value};
use shikaku_domain::certificate::{self, Holder, Policy};
use shikaku_domain::{copay, PersonKey};

use crate::error::DbError;

/// How a certificate came to be issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 申請による交付: the person asked (lost card, renewal, 要配慮者).
    Application,
    /// 職権交付: the insurer sends it to someone without a usable マイナ保険証.
    ExOfficio,
    /// 後期高齢者 members get one regardless of card status until 2026-07-31.
    KokiAutomatic,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Application => "application",
            Kind::ExOfficio => "ex_officio",
            Kind::KokiAutomatic => "koki_automatic",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Result<Kind, DbError> {
        match s {
            "application" => Ok(Kind::Application),
            "ex_officio" => Ok(Kind::ExOfficio),
            "koki_automatic" => Ok(Kind::KokiAutomatic),
            _ => Err(DbError::Invalid(format!(
                "kind {s:?} is not one of application, ex_officio, koki_automatic"
            ))),
        }
    }
}

/// A certificate as stored.
#[derive(Debug, Clone, PartialEq, QueryableByName, serde::Serialize)]
pub struct CertificateView {
    /// Database id.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// 保険者番号.
    #[diesel(sql_type = Text)]
    pub insurer_number: String,
    /// Certificate number (unique per insurer).
    #[diesel(sql_type = Text)]
    pub number: String,
    /// The holder.
    #[diesel(sql_type = BigInt)]
    pub person_id: i64,
    /// application, ex_officio or koki_automatic.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// 交付年月日.
    #[diesel(sql_type = Date)]
    pub issued_on: NaiveDate,
    /// First valid day.
    #[diesel(sql_type = Date)]
    pub valid_from: NaiveDate,
    /// 有効期限 (last valid day).
    #[diesel(sql_type = Date)]
    pub valid_until: NaiveDate,
    /// Which rule set valid_until.
    #[diesel(sql_type = Text)]
    pub valid_until_reason: String,
    /// The printed items as printed.
    #[diesel(sql_type = Jsonb)]
    pub printed: Value,
    /// active, superseded, revoked, returned or expired.
    #[diesel(sql_type = Text)]
    pub status: String,
    /// The certificate this one replaced.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub supersedes: Option<i64>,
}

const SELECT: &str = "SELECT id, insurer_number, number, person_id, kind, issued_on, valid_from,
        valid_until, valid_until_reason, printed, status, supersedes FROM certificates";

/// One entry of a certificate's history.
#[derive(Debug, Clone, PartialEq, QueryableByName, serde::Serialize)]
pub struct Event {
    /// issued, reissued, superseded, revoked, returned or expired.
    #[diesel(sql_type = Text)]
    pub action: String,
    /// Why.
    #[diesel(sql_type = Nullable<Text>)]
    pub reason: Option<String>,
    /// Who.
    #[diesel(sql_type = Text)]
    pub actor: String,
    /// When.
    #[diesel(sql_type = Timestamptz)]
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Options of an issue or reissue beyond the person and the day.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct IssueOptions {
    /// Print 裏面参照 in place of the sex (the registered sex goes on the back).
    #[serde(default)]
    pub sex_on_back: bool,
    /// Last day of 任意継続, for such members.
    #[serde(default)]
    pub voluntary_until: Option<NaiveDate>,
    /// Last day of the residence permit, when known.
    #[serde(default)]
    pub residence_until: Option<NaiveDate>,
    /// 備考.
    #[serde(default)]
    pub remarks: Option<String>,
}

/// The options a certificate was issued with, read back from its printed items, so that a
/// reissue or renewal keeps 裏面参照, the remarks and the dates that cut its validity.
fn options_of(printed: &Value) -> IssueOptions {
    let date = |key: &str| {
        printed
            .pointer(&format!("/options/{key}"))
            .and_then(Value::as_str)
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
    };
    IssueOptions {
        sex_on_back: printed.get("sex").and_then(Value::as_str) == Some("裏面参照"),
        voluntary_until: date("voluntary_until"),
        residence_until: date("residence_until"),
        remarks: printed
            .get("remarks")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// `new` where it says something, else what the old certificate had.
fn carried_over(old: &IssueOptions, new: &IssueOptions) -> IssueOptions {
    IssueOptions {
        sex_on_back: new.sex_on_back || old.sex_on_back,
        voluntary_until: new.voluntary_until.or(old.voluntary_until),
        residence_until: new.residence_until.or(old.residence_until),
        remarks: new.remarks.clone().or_else(|| old.remarks.clone()),
    }
}

/// One certificate.
pub fn get(conn: &mut PgConnection, id: i64) -> Result<CertificateView, DbError> {
    diesel::sql_query(format!("{SELECT} WHERE id = $1"))
        .bind::<BigInt, _>(id)
        .get_result(conn)
        .optional()?
        .ok_or_else(|| DbError::NotFound(format!("no certificate {id}")))
}

/// A certificate's history, oldest first.
pub fn events(conn: &mut PgConnection, id: i64) -> Result<Vec<Event>, DbError> {
    Ok(diesel::sql_query(
        "SELECT action, reason, actor, at FROM certificate_events
         WHERE certificate_id = $1 ORDER BY at, id",
    )
    .bind::<BigInt, _>(id)
    .load(conn)?)
}

/// A person's certificates, newest first.
pub fn of_person(conn: &mut PgConnection, person_id: i64) -> Result<Vec<CertificateView>, DbError> {
    Ok(
        diesel::sql_query(format!("{SELECT} WHERE person_id = $1 ORDER BY id DESC"))
            .bind::<BigInt, _>(person_id)
            .load(conn)?,
    )
}

/// The person with this key (JP Core member identifier form).
pub fn person_id(conn: &mut PgConnection, key: &PersonKey) -> Result<i64, DbError> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    diesel::sql_query(
        "SELECT id FROM persons
         WHERE insurer_number = $1 AND symbol = $2 AND number = $3 AND branch = $4",
    )
    .bind::<Text, _>(key.insurer.as_str())
    .bind::<Text, _>(key.symbol.as_ref().map_or("", |s| s.as_str()))
    .bind::<Text, _>(key.number.as_str())
    .bind::<Text, _>(key.branch.as_ref().map_or("", |b| b.as_str()))
    .get_result::<Id>(conn)
    .optional()?
    .map(|r| r.id)
    .ok_or_else(|| DbError::NotFound(format!("no person {key}")))
}

/// What issuing needs to know about the person, their insurer and the period on the day.
#[derive(QueryableByName)]
struct Subject {
    #[diesel(sql_type = Text)]
    insurer_number: String,
    #[diesel(sql_type = Text)]
    insurer_name: String,
    #[diesel(sql_type = Text)]
    cert_policy: String,
    #[diesel(sql_type = SmallInt)]
    cert_years: i16,
    #[diesel(sql_type = Nullable<Date>)]
    cert_fixed_until: Option<NaiveDate>,
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
    #[diesel(sql_type = Nullable<Text>)]
    postal_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    address: Option<String>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    copay_rate: Option<i16>,
    #[diesel(sql_type = Nullable<Date>)]
    acquired_on: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    lost_on: Option<NaiveDate>,
}

fn subject(conn: &mut PgConnection, person_id: i64, on: NaiveDate) -> Result<Subject, DbError> {
    diesel::sql_query(
        "SELECT p.insurer_number, i.name AS insurer_name, i.cert_policy, i.cert_years,
                i.cert_fixed_until, p.symbol, p.number, p.branch, p.relationship, p.name_kanji,
                p.name_kana, p.birth_date, p.sex, p.postal_code, p.address, p.copay_rate,
                q.acquired_on, q.lost_on
           FROM persons p JOIN insurers i ON i.insurer_number = p.insurer_number
           LEFT JOIN qualifications q ON q.person_id = p.id AND q.acquired_on <= $2
                                      AND (q.lost_on IS NULL OR q.lost_on > $2)
          WHERE p.id = $1",
    )
    .bind::<BigInt, _>(person_id)
    .bind::<Date, _>(on)
    .get_result::<Subject>(conn)
    .optional()?
    .ok_or_else(|| DbError::NotFound(format!("no person {person_id}")))
}

/// The sex as printed: 男 or 女, and blank when unset (the card leaves the field empty).
fn sex_text(code: i16) -> &'static str {
    match shikaku_domain::Sex::from_code(code) {
        Ok(sex @ (shikaku_domain::Sex::Male | shikaku_domain::Sex::Female)) => sex.label(),
        _ => "",
    }
}

/// The printed items (domain.md): what the card shows, frozen at issue.
fn printed(
    s: &Subject,
    on: NaiveDate,
    until: NaiveDate,
    acquired_on: NaiveDate,
    options: &IssueOptions,
) -> Value {
    let rate = copay::effective(
        s.birth_date,
        on,
        s.copay_rate.and_then(|r| u8::try_from(r).ok()),
    );
    let seventy = copay::seventy_rate_starts(s.birth_date);
    // 70–74: the rate's 発効期日 is printed (the day the 高齢受給者 rate started).
    let rate_from = (on >= seventy && on < copay::seventy_five_on(s.birth_date)).then_some(seventy);
    let koki = s.insurer_number.starts_with("39");
    json!({
        "name": s.name_kanji,
        "kana": s.name_kana,
        "birth_date": s.birth_date,
        "sex": if options.sex_on_back { "裏面参照" } else { sex_text(s.sex) },
        "sex_on_back": options.sex_on_back.then(|| sex_text(s.sex)),
        "insurer_number": s.insurer_number,
        "insurer_name": s.insurer_name,
        "symbol": s.symbol,
        "number": s.number,
        "branch": s.branch,
        "relationship": if koki { None } else if s.relationship == 1 { Some("本人") } else { Some("家族") },
        "issued_on": on,
        "valid_until": until,
        "acquired_on": acquired_on,
        "copay_percent": rate.percent(),
        "copay_effective_from": rate_from,
        "postal_code": s.postal_code,
        "address": s.address,
        "remarks": options.remarks,
        // Not printed: what a reissue or renewal must carry over.
        "options": {
            "voluntary_until": options.voluntary_until,
            "residence_until": options.residence_until,
        },
    })
}

fn event(
    conn: &mut PgConnection,
    id: i64,
    action: &str,
    reason: Option<&str>,
    actor: &str,
    details: Value,
) -> Result<(), DbError> {
    diesel::sql_query(
        "INSERT INTO certificate_events (certificate_id, action, reason, actor, details)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(action)
    .bind::<Nullable<Text>, _>(reason)
    .bind::<Text, _>(actor)
    .bind::<Jsonb, _>(details)
    .execute(conn)?;
    Ok(())
}

/// A certificate computed but not yet stored.
#[derive(Debug, Clone)]
struct Prepared {
    insurer_number: String,
    person_id: i64,
    kind: Kind,
    on: NaiveDate,
    until: NaiveDate,
    until_reason: &'static str,
    /// Printed items without the certificate number, which is drawn at insert.
    printed: Value,
    supersedes: Option<i64>,
}

/// Computes a certificate for the person described by `s` on `on`: pure given the row.
fn prepare(
    s: &Subject,
    person_id: i64,
    kind: Kind,
    on: NaiveDate,
    options: &IssueOptions,
    supersedes: Option<i64>,
) -> Result<Prepared, DbError> {
    let Some(acquired_on) = s.acquired_on else {
        return Err(DbError::Invalid(format!(
            "person {person_id} is not insured on {on}: no certificate can be issued"
        )));
    };
    let policy = Policy::from_columns(&s.cert_policy, s.cert_years, s.cert_fixed_until)?;
    let holder = Holder {
        birth: s.birth_date,
        lost_on: s.lost_on,
        voluntary_until: options.voluntary_until,
        residence_until: options.residence_until,
    };
    let validity = certificate::validity(policy, on, &holder)?;
    Ok(Prepared {
        insurer_number: s.insurer_number.clone(),
        person_id,
        kind,
        on,
        until: validity.until,
        until_reason: validity.reason.code(),
        printed: printed(s, on, validity.until, acquired_on, options),
        supersedes,
    })
}

/// Stores prepared certificates with one INSERT (numbers drawn from the sequence in the same
/// statement), returning them in order.
fn insert(conn: &mut PgConnection, items: &[Prepared]) -> Result<Vec<CertificateView>, DbError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let inserted: Vec<CertificateView> = diesel::sql_query(format!(
        "WITH input AS (
            SELECT *, lpad(nextval('certificate_number_seq')::text, 10, '0') AS number
              FROM unnest($1::text[], $2::bigint[], $3::text[], $4::date[], $5::date[],
                          $6::text[], $7::jsonb[], $8::bigint[])
                   WITH ORDINALITY AS t(ins, pid, kind, issued, until, reason, printed, sup, ord)
         ), c AS (
            INSERT INTO certificates (insurer_number, number, person_id, kind, issued_on,
                                      valid_from, valid_until, valid_until_reason, printed,
                                      supersedes)
            SELECT ins, number, pid, kind, issued, issued, until, reason,
                   printed || jsonb_build_object('certificate_number', number), sup
              FROM input ORDER BY ord
            RETURNING *)
         {} ORDER BY id",
        SELECT.replace("FROM certificates", "FROM c")
    ))
    .bind::<Array<Text>, _>(
        items
            .iter()
            .map(|i| i.insurer_number.as_str())
            .collect::<Vec<_>>(),
    )
    .bind::<Array<BigInt>, _>(items.iter().map(|i| i.person_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(items.iter().map(|i| i.kind.as_str()).collect::<Vec<_>>())
    .bind::<Array<Date>, _>(items.iter().map(|i| i.on).collect::<Vec<_>>())
    .bind::<Array<Date>, _>(items.iter().map(|i| i.until).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(items.iter().map(|i| i.until_reason).collect::<Vec<_>>())
    .bind::<Array<Jsonb>, _>(items.iter().map(|i| &i.printed).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(items.iter().map(|i| i.supersedes).collect::<Vec<_>>())
    .load(conn)?;
    Ok(inserted)
}

/// Inserts a new active certificate for `person_id` on `on`; the caller has checked that none
/// is active. Returns it.
fn create(
    conn: &mut PgConnection,
    person_id: i64,
    kind: Kind,
    on: NaiveDate,
    options: &IssueOptions,
    supersedes: Option<i64>,
) -> Result<CertificateView, DbError> {
    let s = subject(conn, person_id, on)?;
    let prepared = prepare(&s, person_id, kind, on, options, supersedes)?;
    insert(conn, &[prepared])?
        .pop()
        .ok_or_else(|| DbError::Invalid("the certificate was not stored".into()))
}

fn active_of(conn: &mut PgConnection, person_id: i64) -> Result<Option<CertificateView>, DbError> {
    Ok(diesel::sql_query(format!(
        "{SELECT} WHERE person_id = $1 AND status = 'active'"
    ))
    .bind::<BigInt, _>(person_id)
    .get_result(conn)
    .optional()?)
}

/// Issues a certificate to a person insured on `on`. Refused when the person is not insured
/// that day or already holds an active certificate (reissue is the way to replace one).
pub fn issue(
    conn: &mut PgConnection,
    person_id: i64,
    kind: Kind,
    on: NaiveDate,
    options: &IssueOptions,
    actor: &str,
) -> Result<CertificateView, DbError> {
    conn.transaction(|conn| {
        lock_person(conn, person_id)?;
        expire_person(conn, person_id, on, actor)?;
        if let Some(active) = active_of(conn, person_id)? {
            return Err(DbError::Conflict(format!(
                "person {person_id} already holds active certificate {} (valid until {}); \
                 reissue it instead",
                active.number, active.valid_until
            )));
        }
        let cert = create(conn, person_id, kind, on, options, None)?;
        event(
            conn,
            cert.id,
            "issued",
            None,
            actor,
            json!({ "kind": kind.as_str(), "valid_until_reason": cert.valid_until_reason }),
        )?;
        Ok(cert)
    })
}

/// Marks the person's active certificate expired when its validity ended before `on`, so that
/// a stale status (the monthly run marks expiries in bulk) never blocks a new issue.
fn expire_person(
    conn: &mut PgConnection,
    person_id: i64,
    on: NaiveDate,
    actor: &str,
) -> Result<(), DbError> {
    expire_where(conn, Some(person_id), on, actor).map(|_| ())
}

/// Marks active certificates whose validity ended before `on` as expired, with an event each:
/// one person's, or (`None`) every one, in one statement.
fn expire_where(
    conn: &mut PgConnection,
    person_id: Option<i64>,
    on: NaiveDate,
    actor: &str,
) -> Result<usize, DbError> {
    Ok(diesel::sql_query(
        "WITH e AS (UPDATE certificates SET status = 'expired', updated_at = now()
                     WHERE ($1::bigint IS NULL OR person_id = $1)
                       AND status = 'active' AND valid_until < $2
                     RETURNING id, valid_until)
         INSERT INTO certificate_events (certificate_id, action, reason, actor)
         SELECT id, 'expired', format('valid until %s', valid_until), $3 FROM e",
    )
    .bind::<Nullable<BigInt>, _>(person_id)
    .bind::<Date, _>(on)
    .bind::<Text, _>(actor)
    .execute(conn)?)
}

/// Serialises certificate changes for one person (two clerks at two counters).
fn lock_person(conn: &mut PgConnection, person_id: i64) -> Result<(), DbError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('certificate:' || $1, 0))")
        .bind::<BigInt, _>(person_id)
        .execute(conn)?;
    Ok(())
}

/// Reissues an active certificate (lost, damaged, or a change of name, address, co-pay or
/// household): the old one is superseded and a new one issued on `on` with today's printed
/// items and a validity computed afresh.
pub fn reissue(
    conn: &mut PgConnection,
    id: i64,
    on: NaiveDate,
    options: &IssueOptions,
    reason: &str,
    actor: &str,
) -> Result<CertificateView, DbError> {
    crate::error::check_reason(reason)?;
    conn.transaction(|conn| {
        let old = get(conn, id)?;
        lock_person(conn, old.person_id)?;
        let old = get(conn, id)?;
        if old.status != "active" {
            return Err(DbError::Invalid(format!(
                "certificate {} is {}; only an active certificate can be reissued",
                old.number, old.status
            )));
        }
        diesel::sql_query(
            "UPDATE certificates SET status = 'superseded', updated_at = now() WHERE id = $1",
        )
        .bind::<BigInt, _>(id)
        .execute(conn)?;
        let kind = Kind::parse(&old.kind)?;
        let options = carried_over(&options_of(&old.printed), options);
        let new = create(conn, old.person_id, kind, on, &options, Some(id))?;
        event(
            conn,
            id,
            "superseded",
            Some(reason),
            actor,
            json!({ "by": new.id }),
        )?;
        event(
            conn,
            new.id,
            "reissued",
            Some(reason),
            actor,
            json!({ "supersedes": id }),
        )?;
        Ok(new)
    })
}

/// Revokes an active certificate (it is void and must be returned).
pub fn revoke(
    conn: &mut PgConnection,
    id: i64,
    reason: &str,
    actor: &str,
) -> Result<CertificateView, DbError> {
    transition(conn, id, &["active"], "revoked", "revoked", reason, actor)
}

/// Records that the card came back. Any certificate not already returned may be.
pub fn returned(
    conn: &mut PgConnection,
    id: i64,
    reason: &str,
    actor: &str,
) -> Result<CertificateView, DbError> {
    transition(
        conn,
        id,
        &["active", "superseded", "revoked", "expired"],
        "returned",
        "returned",
        reason,
        actor,
    )
}

fn transition(
    conn: &mut PgConnection,
    id: i64,
    from: &[&str],
    to: &str,
    action: &str,
    reason: &str,
    actor: &str,
) -> Result<CertificateView, DbError> {
    crate::error::check_reason(reason)?;
    conn.transaction(|conn| {
        let cert = get(conn, id)?;
        if !from.contains(&cert.status.as_str()) {
            return Err(DbError::Invalid(format!(
                "certificate {} is {}; it cannot become {to}",
                cert.number, cert.status
            )));
        }
        diesel::sql_query("UPDATE certificates SET status = $2, updated_at = now() WHERE id = $1")
            .bind::<BigInt, _>(id)
            .bind::<Text, _>(to)
            .execute(conn)?;
        event(
            conn,
            id,
            action,
            Some(reason),
            actor,
            json!({ "from": cert.status }),
        )?;
        get(conn, id)
    })
}

/// Marks every active certificate whose validity ended before `on` as expired; returns how
/// many. Set-based: one statement whatever the registry's size.
pub fn expire(conn: &mut PgConnection, on: NaiveDate, actor: &str) -> Result<usize, DbError> {
    expire_where(conn, None, on, actor)
}

/// The card-registration statuses of the monthly national file.
pub const CARD_STATUSES: [&str; 5] = [
    "registered",
    "unregistered",
    "certificate_expired",
    "card_returned",
    "registration_cancelled",
];

/// The header of the monthly card-registration status file.
pub const STATUS_HEADER: [&str; 5] = [
    "insurer_number",
    "symbol",
    "number",
    "branch",
    "card_status",
];

/// One line of the status file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError {
    /// 1-based line (the header is line 1).
    pub line: u64,
    /// The column, or `row` for the line as a whole.
    pub column: String,
    /// What is wrong.
    pub reason: String,
}

/// Settings of the ex-officio run.
#[derive(Debug, Clone, Copy)]
pub struct DueOptions {
    /// The issue date.
    pub on: NaiveDate,
    /// Renew active certificates that expire within this many days of `on`.
    pub renew_within_days: u32,
    /// Last day on which every 後期高齢者 member gets one regardless of card status.
    pub koki_until: NaiveDate,
}

/// What the ex-officio run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DueSummary {
    /// Data lines in the status file.
    pub status_rows: u64,
    /// Lines whose key matches no person.
    pub not_in_registry: u64,
    /// New certificates for people without a usable マイナ保険証.
    pub issued_ex_officio: u64,
    /// New certificates for 後期高齢者 members under the transitional rule.
    pub issued_koki: u64,
    /// Certificates renewed because they expire soon.
    pub renewed: u64,
    /// Due persons who already hold a certificate valid beyond the renewal window.
    pub already_holding: u64,
    /// Due persons for whom no validity remains (e.g. they lose the qualification tomorrow).
    pub skipped: u64,
    /// Active certificates whose validity had ended before the day, marked expired first.
    pub expired: u64,
    /// Ids of every certificate created, for the mailing PDF.
    pub certificate_ids: Vec<i64>,
}

/// Why the ex-officio run stopped.
#[derive(Debug, thiserror::Error)]
pub enum DueError {
    /// The status file has unusable lines; nothing was issued.
    #[error("{file}: {} line(s) cannot be used; nothing was issued", .errors.len())]
    File {
        /// The file's name as given.
        file: String,
        /// Every problem found.
        errors: Vec<StatusError>,
    },
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file's name as given.
        file: String,
        /// The reader's error.
        source: csv::Error,
    },
    /// The database refused.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Reads and checks the status file completely before anything is stored.
fn read_status<R: std::io::Read>(file: &str, input: R) -> Result<Vec<[String; 5]>, DueError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(input);
    let read_err = |e| DueError::Read {
        file: file.to_string(),
        source: e,
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(read_err)?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let mut errors = Vec::new();
    if header != STATUS_HEADER {
        errors.push(StatusError {
            line: 1,
            column: "header".into(),
            reason: format!("expected {}", STATUS_HEADER.join(",")),
        });
        return Err(DueError::File {
            file: file.to_string(),
            errors,
        });
    }
    let mut rows = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for record in reader.records() {
        let record = record.map_err(read_err)?;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != 5 {
            errors.push(StatusError {
                line,
                column: "row".into(),
                reason: format!("expected 5 fields, found {}", record.len()),
            });
            continue;
        }
        let mut bad = |column: &str, reason: String| {
            errors.push(StatusError {
                line,
                column: column.into(),
                reason,
            })
        };
        let insurer = shikaku_domain::InsurerNumber::parse(&record[0]);
        let symbol = if record[1].is_empty() {
            Ok(String::new())
        } else {
            shikaku_domain::Symbol::parse(&record[1]).map(|s| s.to_string())
        };
        let number = shikaku_domain::InsuredNumber::parse(&record[2]);
        let branch = if record[3].is_empty() {
            Ok(String::new())
        } else {
            shikaku_domain::Branch::parse(&record[3]).map(|b| b.to_string())
        };
        let status = record[4].trim();
        match (insurer, symbol, number, branch) {
            (Ok(i), Ok(s), Ok(n), Ok(b)) if CARD_STATUSES.contains(&status) => {
                let key = format!("{i}:{s}:{n}:{b}");
                if let Some(first) = seen.insert(key, line) {
                    bad("row", format!("the same person as line {first}"));
                } else {
                    rows.push([i.to_string(), s, n.to_string(), b, status.to_string()]);
                }
            }
            (i, s, n, b) => {
                if let Err(e) = i {
                    bad("insurer_number", e.to_string());
                }
                if let Err(e) = s {
                    bad("symbol", e.to_string());
                }
                if let Err(e) = n {
                    bad("number", e.to_string());
                }
                if let Err(e) = b {
                    bad("branch", e.to_string());
                }
                if !CARD_STATUSES.contains(&status) {
                    bad(
                        "card_status",
                        format!("{status:?} is not one of {}", CARD_STATUSES.join(", ")),
                    );
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(DueError::File {
            file: file.to_string(),
            errors,
        })
    }
}

#[derive(QueryableByName)]
struct DueRow {
    #[diesel(sql_type = BigInt)]
    person_id: i64,
    #[diesel(embed)]
    subject: Subject,
    #[diesel(sql_type = Nullable<Text>)]
    card_status: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    active_id: Option<i64>,
    #[diesel(sql_type = Nullable<Date>)]
    active_until: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    active_printed: Option<Value>,
}

/// 職権交付: reads the monthly card-registration status file and, in one transaction, issues a
/// certificate to every person insured on `on` without a usable マイナ保険証 and without an
/// active certificate, to every 後期高齢者 member (法別番号 39) until `koki_until` whatever the
/// card status, and renews the certificates of such persons that expire within the renewal
/// window. Idempotent: a second run with the same file issues nothing. A person absent from the
/// file is left alone (no information is not "no card").
pub fn issue_due<R: std::io::Read>(
    conn: &mut PgConnection,
    file: &str,
    input: R,
    options: DueOptions,
    actor: &str,
) -> Result<DueSummary, DueError> {
    let rows = read_status(file, input)?;
    let mut summary = DueSummary {
        status_rows: rows.len() as u64,
        ..DueSummary::default()
    };
    conn.transaction::<_, DueError, _>(|conn| {
        // Certificates past their expiry are expired first, so their holders count as holding
        // none and get a new one when still due.
        summary.expired = expire(conn, options.on, actor)? as u64;
        diesel::sql_query(
            "CREATE TEMP TABLE card_status (insurer_number text COLLATE \"C\", symbol text COLLATE \"C\",
                 number text COLLATE \"C\", branch text COLLATE \"C\", card_status text) ON COMMIT DROP",
        )
        .execute(conn)
        .map_err(DbError::from)?;
        for chunk in rows.chunks(10_000) {
            let col = |i: usize| chunk.iter().map(|r| r[i].as_str()).collect::<Vec<_>>();
            diesel::sql_query(
                "INSERT INTO card_status SELECT * FROM unnest($1::text[], $2::text[], $3::text[],
                                                              $4::text[], $5::text[])",
            )
            .bind::<Array<Text>, _>(col(0))
            .bind::<Array<Text>, _>(col(1))
            .bind::<Array<Text>, _>(col(2))
            .bind::<Array<Text>, _>(col(3))
            .bind::<Array<Text>, _>(col(4))
            .execute(conn)
            .map_err(DbError::from)?;
        }
        diesel::sql_query("ANALYZE card_status")
            .execute(conn)
            .map_err(DbError::from)?;
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        summary.not_in_registry = diesel::sql_query(
            "SELECT count(*) AS n FROM card_status s WHERE NOT EXISTS (
                 SELECT 1 FROM persons p WHERE p.insurer_number = s.insurer_number
                    AND p.symbol = s.symbol AND p.number = s.number AND p.branch = s.branch)",
        )
        .get_result::<Count>(conn)
        .map_err(DbError::from)?
        .n as u64;
        let due: Vec<DueRow> = diesel::sql_query(
            "SELECT p.id AS person_id, p.insurer_number, i.name AS insurer_name, i.cert_policy,
                    i.cert_years, i.cert_fixed_until, p.symbol, p.number, p.branch, p.relationship,
                    p.name_kanji, p.name_kana, p.birth_date, p.sex, p.postal_code, p.address,
                    p.copay_rate, q.acquired_on, q.lost_on, s.card_status,
                    a.id AS active_id, a.valid_until AS active_until, a.printed AS active_printed
               FROM persons p
               JOIN insurers i ON i.insurer_number = p.insurer_number
               JOIN qualifications q ON q.person_id = p.id AND q.acquired_on <= $1
                                     AND (q.lost_on IS NULL OR q.lost_on > $1)
               LEFT JOIN card_status s ON s.insurer_number = p.insurer_number
                     AND s.symbol = p.symbol AND s.number = p.number AND s.branch = p.branch
               LEFT JOIN certificates a ON a.person_id = p.id AND a.status = 'active'
              WHERE (p.insurer_number LIKE '39%' AND $1 <= $2)
                 OR s.card_status IN ('unregistered', 'certificate_expired', 'card_returned',
                                      'registration_cancelled')
              ORDER BY p.id",
        )
        .bind::<Date, _>(options.on)
        .bind::<Date, _>(options.koki_until)
        .load(conn)
        .map_err(DbError::from)?;
        let renew_by = options
            .on
            .checked_add_days(chrono::Days::new(u64::from(options.renew_within_days)))
            .unwrap_or(NaiveDate::MAX);
        let no_options = IssueOptions::default();
        let mut new = Vec::new();
        let mut superseded = Vec::new();
        for row in &due {
            let koki = row.subject.insurer_number.starts_with("39") && options.on <= options.koki_until;
            let usable = row.card_status.as_deref() == Some("registered");
            let kind = if koki && (usable || row.card_status.is_none()) {
                Kind::KokiAutomatic
            } else {
                Kind::ExOfficio
            };
            match (row.active_id, row.active_until) {
                (Some(_), Some(until)) if until > renew_by => summary.already_holding += 1,
                (active, until) => {
                    let carried = row.active_printed.as_ref().map(options_of);
                    let opts = carried.as_ref().unwrap_or(&no_options);
                    match prepare(&row.subject, row.person_id, kind, options.on, opts, active) {
                        // A renewal that would not extend the validity is no renewal.
                        Ok(p) if until.is_some_and(|u| p.until <= u) => summary.already_holding += 1,
                        Ok(p) => {
                            if let Some(old) = active {
                                superseded.push(old);
                                summary.renewed += 1;
                            } else if kind == Kind::KokiAutomatic {
                                summary.issued_koki += 1;
                            } else {
                                summary.issued_ex_officio += 1;
                            }
                            new.push(p);
                        }
                        Err(_) => summary.skipped += 1,
                    }
                }
            }
        }
        diesel::sql_query(
            "UPDATE certificates SET status = 'superseded', updated_at = now() WHERE id = ANY($1)",
        )
        .bind::<Array<BigInt>, _>(&superseded)
        .execute(conn)
        .map_err(DbError::from)?;
        for chunk in new.chunks(5_000) {
            let stored = insert(conn, chunk)?;
            diesel::sql_query(
                "INSERT INTO certificate_events (certificate_id, action, reason, actor, details)
                 SELECT id, CASE WHEN sup IS NULL THEN 'issued' ELSE 'reissued' END,
                        CASE WHEN sup IS NULL THEN $3 ELSE '有効期限到来による更新' END, $4,
                        jsonb_build_object('kind', kind, 'supersedes', sup)
                   FROM unnest($1::bigint[], $2::bigint[], $5::text[]) AS t(id, sup, kind)
                 UNION ALL
                 SELECT sup, 'superseded', '有効期限到来による更新', $4,
                        jsonb_build_object('by', id)
                   FROM unnest($1::bigint[], $2::bigint[]) AS t(id, sup) WHERE sup IS NOT NULL",
            )
            .bind::<Array<BigInt>, _>(stored.iter().map(|c| c.id).collect::<Vec<_>>())
            .bind::<Array<Nullable<BigInt>>, _>(stored.iter().map(|c| c.supersedes).collect::<Vec<_>>())
            .bind::<Text, _>(format!("職権交付 ({file})"))
            .bind::<Text, _>(actor)
            .bind::<Array<Text>, _>(stored.iter().map(|c| c.kind.as_str()).collect::<Vec<_>>())
            .execute(conn)
            .map_err(DbError::from)?;
            summary
                .certificate_ids
                .extend(stored.iter().map(|c| c.id));
        }
        Ok(())
    })?;
    Ok(summary)
}

impl From<diesel::result::Error> for DueError {
    fn from(e: diesel::result::Error) -> Self {
        DueError::Db(DbError::from(e))
    }
}

/// The printed items of these certificates, in the order given (for a mailing PDF).
pub fn printed_of(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<Value>, DbError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Jsonb)]
        printed: Value,
    }
    Ok(diesel::sql_query(
        "SELECT c.printed FROM unnest($1::bigint[]) WITH ORDINALITY AS t(id, ord)
           JOIN certificates c ON c.id = t.id ORDER BY t.ord",
    )
    .bind::<Array<BigInt>, _>(ids)
    .load::<Row>(conn)?
    .into_iter()
    .map(|r| r.printed)
    .collect())
}

/// What the 資格情報のお知らせ shows for a card holder on a day.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct NoticeData {
    /// 氏名.
    #[diesel(sql_type = Text)]
    pub name: String,
    /// 生年月日.
    #[diesel(sql_type = Date)]
    pub birth_date: NaiveDate,
    /// 保険者番号.
    #[diesel(sql_type = Text)]
    pub insurer_number: String,
    /// 保険者名称.
    #[diesel(sql_type = Text)]
    pub insurer_name: String,
    /// 記号.
    #[diesel(sql_type = Text)]
    pub symbol: String,
    /// 番号.
    #[diesel(sql_type = Text)]
    pub number: String,
    /// 枝番.
    #[diesel(sql_type = Text)]
    pub branch: String,
    /// 資格取得年月日 of the period in force.
    #[diesel(sql_type = Date)]
    pub acquired_on: NaiveDate,
    /// Co-pay as registered (percent), if any.
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub copay_rate: Option<i16>,
    /// Last 4 digits of the active linked number.
    #[diesel(sql_type = Text)]
    pub my_number_last4: String,
}

/// The notice data for a person insured on `on` with an active linkage; refused otherwise
/// (the notice is for マイナ保険証 holders).
pub fn notice_data(
    conn: &mut PgConnection,
    person_id: i64,
    on: NaiveDate,
) -> Result<NoticeData, DbError> {
    diesel::sql_query(
        "SELECT p.name_kanji AS name, p.birth_date, p.insurer_number, i.name AS insurer_name,
                p.symbol, p.number, p.branch, q.acquired_on, p.copay_rate, l.mn_last4 AS my_number_last4
           FROM persons p JOIN insurers i ON i.insurer_number = p.insurer_number
           JOIN qualifications q ON q.person_id = p.id AND q.acquired_on <= $2
                                AND (q.lost_on IS NULL OR q.lost_on > $2)
           JOIN LATERAL (SELECT mn_last4 FROM linkages WHERE person_id = p.id AND status = 'active'
                          ORDER BY linked_on DESC, id DESC LIMIT 1) l ON true
          WHERE p.id = $1",
    )
    .bind::<BigInt, _>(person_id)
    .bind::<Date, _>(on)
    .get_result(conn)
    .optional()?
    .ok_or_else(|| {
        DbError::Invalid(format!(
            "person {person_id} is not insured on {on} with an active My Number linkage: \
             no 資格情報のお知らせ"
        ))
    })
}

/// Signal that rolls a preview back while keeping its summary.
enum Preview {
    Done(DueSummary),
    Failed(DueError),
}

impl From<diesel::result::Error> for Preview {
    fn from(e: diesel::result::Error) -> Self {
        Preview::Failed(e.into())
    }
}

/// What [`issue_due`] would do with this file, computed exactly as for real and rolled back
/// (the certificate ids in the summary are not kept).
pub fn preview_due<R: std::io::Read>(
    conn: &mut PgConnection,
    file: &str,
    input: R,
    options: DueOptions,
    actor: &str,
) -> Result<DueSummary, DueError> {
    match conn.transaction::<(), Preview, _>(|conn| {
        match issue_due(conn, file, input, options, actor) {
            Ok(s) => Err(Preview::Done(s)),
            Err(e) => Err(Preview::Failed(e)),
        }
    }) {
        Err(Preview::Done(mut s)) => {
            s.certificate_ids.clear();
            Ok(s)
        }
        Err(Preview::Failed(e)) => Err(e),
        Ok(()) => Err(DueError::Db(DbError::Invalid(
            "the preview did not run".into(),
        ))),
    }
}
