//! 資格確認書 lifecycle: issue, renew ahead (pending), reissue (supersedes), revoke, mark
//! returned, settle (expire, revoke on a loss date, activate), and reads. The validity comes
//! from the domain rules with the insurer's policy; the printed items ([`PrintedItems`]) are
//! frozen when issued. A person holds at most one active and one pending certificate (unique
//! indexes). A recorded loss ends the certificates of the lost period in the database itself
//! (trigger `certificates_revoke_on_loss`), whoever records it: void at once when they would
//! only start on or after the loss, else valid until the day before it; [`expire`] revokes
//! them when the loss date arrives.
//!
//! - [`prepare`]: computing certificates and storing them in one statement.
//! - [`due`]: the monthly ex-officio run (職権交付).
//! - [`cut_for_benefits`]: ending certificates whose co-pay or limit category changed.
//! - [`status_file`]: reading the monthly card-registration status file.

mod cut;
pub mod due;
mod prepare;
pub mod status_file;

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Jsonb, Nullable, Text};
use serde_json::{json, Value};
use shikaku_domain::certificate::{
    next_certificate, Next, PrintedItems, Term, KOKI_TRANSITIONAL_UNTIL,
};
use shikaku_domain::free_text::FreeText;
use shikaku_domain::{CertificateKind, CertificateStatus, PersonKey};

use crate::benefits::BENEFITS_JSON;
use crate::error::DbError;
pub use crate::history::Event;
use crate::persons::{PersonRecord, PERSON_COLUMNS};
use prepare::create;

pub use cut::cut_for_benefits;
pub use due::{issue_due, preview_due, DueError, DueOptions, DueSummary};

/// A certificate as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CertificateView {
    /// Database id.
    pub id: i64,
    /// 保険者番号.
    pub insurer_number: String,
    /// Certificate number (unique per insurer).
    pub number: String,
    /// The holder.
    pub person_id: i64,
    /// How it came to be issued.
    pub kind: CertificateKind,
    /// 交付年月日.
    pub issued_on: NaiveDate,
    /// First valid day.
    pub valid_from: NaiveDate,
    /// 有効期限 (last valid day).
    pub valid_until: NaiveDate,
    /// Which rule set the expiry (policy, seventy_five, seventy, preschool, qualification_lost…).
    pub valid_until_reason: String,
    /// The printed items as printed.
    pub printed: PrintedItems,
    /// Where it stands.
    pub status: CertificateStatus,
    /// The certificate this one replaced.
    pub supersedes: Option<i64>,
}

/// The row as read; [`CertificateView`] is its typed form.
#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    insurer_number: String,
    #[diesel(sql_type = Text)]
    number: String,
    #[diesel(sql_type = BigInt)]
    person_id: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Date)]
    issued_on: NaiveDate,
    #[diesel(sql_type = Date)]
    valid_from: NaiveDate,
    #[diesel(sql_type = Date)]
    valid_until: NaiveDate,
    #[diesel(sql_type = Text)]
    valid_until_reason: String,
    #[diesel(sql_type = Jsonb)]
    printed: Value,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    supersedes: Option<i64>,
}

impl TryFrom<Row> for CertificateView {
    type Error = DbError;

    fn try_from(r: Row) -> Result<Self, DbError> {
        let bad = |what: &str| {
            DbError::Invalid(format!("unexpected stored {what} of certificate {}", r.id))
        };
        Ok(CertificateView {
            kind: r.kind.parse().map_err(|_| bad("kind"))?,
            status: CertificateStatus::parse(&r.status).ok_or_else(|| bad("status"))?,
            printed: serde_json::from_value(r.printed.clone()).map_err(|_| bad("printed items"))?,
            id: r.id,
            insurer_number: r.insurer_number,
            number: r.number,
            person_id: r.person_id,
            issued_on: r.issued_on,
            valid_from: r.valid_from,
            valid_until: r.valid_until,
            valid_until_reason: r.valid_until_reason,
            supersedes: r.supersedes,
        })
    }
}

fn typed(rows: Vec<Row>) -> Result<Vec<CertificateView>, DbError> {
    rows.into_iter().map(CertificateView::try_from).collect()
}

const SELECT: &str = "SELECT id, insurer_number, number, person_id, kind, issued_on, valid_from,
        valid_until, valid_until_reason, printed, status, supersedes FROM certificates";

/// Options of an issue or reissue beyond the person and the day.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct IssueOptions {
    /// Print 裏面参照 in place of the sex (the registered sex goes on the back).
    #[serde(default)]
    pub sex_on_back: bool,
    /// Last day of 任意継続, for such members: stored on the person (with history) before
    /// issuing, since every later issuance must use it.
    #[serde(default)]
    pub voluntary_until: Option<NaiveDate>,
    /// Last day of the residence permit: stored on the person like `voluntary_until`.
    #[serde(default)]
    pub residence_until: Option<NaiveDate>,
    /// 備考.
    #[serde(default)]
    pub remarks: Option<String>,
}

impl IssueOptions {
    /// The options a certificate was issued with, read back from its printed items, so that a
    /// reissue or renewal keeps 裏面参照 and the remarks. The dates that cut the validity are
    /// not carried: they are the person's, stored and possibly changed since.
    pub fn of(printed: &PrintedItems) -> IssueOptions {
        IssueOptions {
            sex_on_back: printed.sex_printed_on_back(),
            voluntary_until: None,
            residence_until: None,
            remarks: printed.remarks.clone(),
        }
    }

    /// `self` where it says something, else what the old certificate had.
    fn over(&self, old: &IssueOptions) -> IssueOptions {
        IssueOptions {
            sex_on_back: self.sex_on_back || old.sex_on_back,
            voluntary_until: self.voluntary_until.or(old.voluntary_until),
            residence_until: self.residence_until.or(old.residence_until),
            remarks: self.remarks.clone().or_else(|| old.remarks.clone()),
        }
    }
}

/// One certificate.
pub fn get(conn: &mut PgConnection, id: i64) -> Result<CertificateView, DbError> {
    diesel::sql_query(format!("{SELECT} WHERE id = $1"))
        .bind::<BigInt, _>(id)
        .get_result::<Row>(conn)
        .optional()?
        .ok_or_else(|| DbError::NotFound(format!("no certificate {id}")))?
        .try_into()
}

/// A certificate to print: refused unless active or pending (a renewal is mailed ahead), since
/// a void card must never leave the counter looking like a valid one.
pub fn printable(conn: &mut PgConnection, id: i64) -> Result<CertificateView, DbError> {
    let cert = get(conn, id)?;
    if cert.status.printable() {
        Ok(cert)
    } else {
        Err(DbError::Invalid(format!(
            "certificate {} is {}; only an active or pending certificate is printed",
            cert.number, cert.status
        )))
    }
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
    typed(
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

/// The day a clerk's or a run's renewal must cover up to: the next monthly run, a month on.
pub fn next_run_after(on: NaiveDate) -> NaiveDate {
    on.checked_add_months(chrono::Months::new(1))
        .unwrap_or(NaiveDate::MAX)
}

/// Issues a certificate to a person insured on `on`. With no certificate it is valid from
/// `on`; when the active one ends before the next monthly run, the next one is issued now,
/// valid from the day after it ends (pending), so the person has no day without one. Refused
/// when the person is not insured then, or already holds a certificate covering the next run
/// or its renewal (reissue is the way to replace one). A 任意継続 or residence-permit end typed
/// at the counter is stored on the person first (with history), so the monthly run uses it too.
pub fn issue(
    conn: &mut PgConnection,
    person_id: i64,
    kind: CertificateKind,
    on: NaiveDate,
    options: &IssueOptions,
    actor: &str,
) -> Result<CertificateView, DbError> {
    conn.transaction(|conn| {
        lock_person(conn, person_id)?;
        settle(conn, Scope::Person(person_id), on, actor)?;
        store_counter_dates(conn, person_id, options, actor)?;
        let (active, pending) = current_of(conn, person_id)?;
        let term = match next_certificate(
            active.as_ref().map(|a| a.valid_until),
            pending.is_some(),
            next_run_after(on),
        ) {
            Next::Now => Term::issued_on(on),
            Next::From(from) => Term::starting(on, from),
            Next::Nothing => {
                let held = pending.as_ref().or(active.as_ref());
                return Err(DbError::Conflict(match held {
                    Some(c) if c.status == CertificateStatus::Pending => format!(
                        "person {person_id} already holds certificate {} and its renewal {} \
                         (valid from {}); reissue one of them instead",
                        active.as_ref().map_or("-", |a| a.number.as_str()),
                        c.number,
                        c.valid_from
                    ),
                    Some(c) => format!(
                        "person {person_id} already holds active certificate {} (valid until \
                         {}); reissue it instead",
                        c.number, c.valid_until
                    ),
                    None => format!("person {person_id} already holds a certificate"),
                }));
            }
        };
        let cert = create_logged(conn, person_id, kind, term, options, actor)?;
        // One ending before the next run (issued in July for a cycle ending 31 July) is
        // followed at once by the next one, when there is any validity for it.
        if cert.status == CertificateStatus::Active && cert.valid_until < next_run_after(on) {
            if let Some(from) = cert.valid_until.succ_opt() {
                let ahead = Term::starting(on, from);
                conn.transaction(|conn| {
                    create_logged(conn, person_id, kind, ahead, options, actor)
                })
                .map(|_| ())
                .or_else(|e| match e {
                    // Nothing left (lost, permit ended): the current one is all there is.
                    DbError::Invalid(_) => Ok(()),
                    e => Err(e),
                })?;
            }
        }
        Ok(cert)
    })
}

/// Creates a certificate of `kind` with `term` and records its issue.
fn create_logged(
    conn: &mut PgConnection,
    person_id: i64,
    kind: CertificateKind,
    term: Term,
    options: &IssueOptions,
    actor: &str,
) -> Result<CertificateView, DbError> {
    let term = term.of_kind(kind, KOKI_TRANSITIONAL_UNTIL);
    let cert = create(conn, person_id, kind, term, options, None)?;
    event(
        conn,
        cert.id,
        "issued",
        None,
        actor,
        json!({ "kind": kind.as_str(), "valid_until_reason": cert.valid_until_reason,
                "valid_from": cert.valid_from }),
    )?;
    Ok(cert)
}

/// Stores a 任意継続 or residence-permit end given at the counter on the person (with
/// history), so that every later issuance uses it.
fn store_counter_dates(
    conn: &mut PgConnection,
    person_id: i64,
    options: &IssueOptions,
    actor: &str,
) -> Result<(), DbError> {
    if options.voluntary_until.is_none() && options.residence_until.is_none() {
        return Ok(());
    }
    let person = crate::persons::get(conn, person_id)?;
    let mut facts = crate::persons::CertificateFacts::of(&person.record);
    facts.voluntary_until = options.voluntary_until.or(facts.voluntary_until);
    facts.residence_until = options.residence_until.or(facts.residence_until);
    crate::persons::set_certificate_facts(conn, person_id, &facts, actor).map(|_| ())
}

/// The person's active and pending certificates.
fn current_of(
    conn: &mut PgConnection,
    person_id: i64,
) -> Result<(Option<CertificateView>, Option<CertificateView>), DbError> {
    let rows = typed(
        diesel::sql_query(format!(
            "{SELECT} WHERE person_id = $1 AND status IN ('active', 'pending') ORDER BY valid_from"
        ))
        .bind::<BigInt, _>(person_id)
        .load(conn)?,
    )?;
    let mut active = None;
    let mut pending = None;
    for c in rows {
        match c.status {
            CertificateStatus::Pending => pending = Some(c),
            _ => active = Some(c),
        }
    }
    Ok((active, pending))
}

/// What settling certificates on a day did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Settled {
    /// Certificates past their 有効期限, marked expired.
    pub expired: u64,
    /// Certificates ended by a loss of qualification whose loss date has arrived: revoked
    /// (void, to be returned).
    pub revoked: u64,
    /// Pending renewals whose first valid day has come, now active.
    pub activated: u64,
}

/// Whose certificates to settle.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope {
    /// Every certificate (the daily command, the monthly run).
    All,
    /// One person's (before the counter issues or reissues).
    Person(i64),
    /// The persons whose losses the persons import in this transaction staged (its own rows
    /// and the dependants that followed), read from its temporary tables rather than from the
    /// history, which only grows.
    StagedLosses,
}

impl Scope {
    /// The SQL condition on `certificates.person_id`; $1 is the person or import id.
    fn condition(self) -> &'static str {
        match self {
            Scope::All => "$1::bigint IS NULL",
            Scope::Person(_) => "person_id = $1",
            Scope::StagedLosses => {
                "$1::bigint IS NULL AND person_id IN (
                    SELECT person_id FROM stage_periods WHERE lost_on IS NOT NULL
                    UNION ALL SELECT person_id FROM stage_follow)"
            }
        }
    }

    fn id(self) -> Option<i64> {
        match self {
            Scope::All | Scope::StagedLosses => None,
            Scope::Person(id) => Some(id),
        }
    }
}

/// Settles certificates in `scope` on `on`, set-based: those ended by a loss and past their
/// last day are revoked, other ended ones expired, and pending renewals whose first day has
/// come become active, in that order (the unique index allows one active certificate, and the
/// renewal starts the day after the old one ends).
pub(crate) fn settle(
    conn: &mut PgConnection,
    scope: Scope,
    on: NaiveDate,
    actor: &str,
) -> Result<Settled, DbError> {
    let cond = scope.condition();
    let ended = |status: &str, lost: bool| {
        format!(
            "WITH e AS (UPDATE certificates SET status = '{status}', updated_at = now()
                         WHERE {cond}
                           AND status IN ('active', 'pending') AND valid_until < $2
                           AND (valid_until_reason = 'qualification_lost') = {lost}
                         RETURNING id, valid_until)
             INSERT INTO certificate_events (certificate_id, action, reason, actor)
             SELECT id, '{action}', {reason}, $3 FROM e",
            action = if lost { "revoked" } else { "expired" },
            reason = if lost {
                "format('qualification lost on %s (資格喪失): the certificate is void and must be \
                 returned', valid_until + 1)"
            } else {
                "format('valid until %s', valid_until)"
            }
        )
    };
    let run = |conn: &mut PgConnection, sql: &str, actor: &str| -> Result<u64, DbError> {
        Ok(diesel::sql_query(sql)
            .bind::<Nullable<BigInt>, _>(scope.id())
            .bind::<Date, _>(on)
            .bind::<Text, _>(actor)
            .execute(conn)? as u64)
    };
    // A revocation for a loss is the registry's own doing, as when the trigger voids one.
    let revoked = run(conn, &ended("revoked", true), "system:qualification_lost")?;
    let expired = run(conn, &ended("expired", false), actor)?;
    let activated = run(
        conn,
        &format!(
            "WITH a AS (UPDATE certificates SET status = 'active', updated_at = now()
                         WHERE {cond} AND status = 'pending' AND valid_from <= $2
                         RETURNING id, valid_from)
             INSERT INTO certificate_events (certificate_id, action, reason, actor)
             SELECT id, 'activated', format('valid from %s', valid_from), $3 FROM a"
        ),
        actor,
    )?;
    Ok(Settled {
        expired,
        revoked,
        activated,
    })
}

/// Serialises certificate changes for one person (two clerks at two counters).
fn lock_person(conn: &mut PgConnection, person_id: i64) -> Result<(), DbError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('certificate:' || $1, 0))")
        .bind::<BigInt, _>(person_id)
        .execute(conn)?;
    Ok(())
}

/// Reissues an active or pending certificate (lost, damaged, or a change of name, address,
/// co-pay or household): the old one is superseded and a new one issued on `on` with today's
/// printed items and a validity computed afresh; a pending one's replacement starts when it
/// did, and an active one's ends before a pending renewal starts.
pub fn reissue(
    conn: &mut PgConnection,
    id: i64,
    on: NaiveDate,
    options: &IssueOptions,
    reason: &str,
    actor: &str,
) -> Result<CertificateView, DbError> {
    FreeText::Reason.check(reason)?;
    conn.transaction(|conn| {
        let old = get(conn, id)?;
        lock_person(conn, old.person_id)?;
        settle(conn, Scope::Person(old.person_id), on, actor)?;
        let old = get(conn, id)?;
        if !old.status.current() {
            return Err(DbError::Invalid(format!(
                "certificate {} is {}; only an active or pending certificate can be reissued",
                old.number, old.status
            )));
        }
        store_counter_dates(conn, old.person_id, options, actor)?;
        let (_, pending) = current_of(conn, old.person_id)?;
        let term = if old.status == CertificateStatus::Pending {
            Term::starting(on, old.valid_from)
        } else {
            Term::issued_on(on).followed_on(pending.map(|p| p.valid_from))
        }
        .of_kind(old.kind, KOKI_TRANSITIONAL_UNTIL);
        diesel::sql_query(
            "UPDATE certificates SET status = 'superseded', updated_at = now() WHERE id = $1",
        )
        .bind::<BigInt, _>(id)
        .execute(conn)?;
        let options = options.over(&IssueOptions::of(&old.printed));
        let new = create(conn, old.person_id, old.kind, term, &options, Some(id))?;
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

/// Revokes an active or pending certificate (it is void and must be returned). Revoking the
/// active one revokes its pending renewal too: the renewal only continued it.
pub fn revoke(
    conn: &mut PgConnection,
    id: i64,
    reason: &str,
    actor: &str,
) -> Result<CertificateView, DbError> {
    conn.transaction(|conn| {
        let cert = transition(
            conn,
            id,
            &[CertificateStatus::Active, CertificateStatus::Pending],
            CertificateStatus::Revoked,
            "revoked",
            reason,
            actor,
        )?;
        diesel::sql_query(
            "WITH r AS (UPDATE certificates SET status = 'revoked', updated_at = now()
                         WHERE person_id = $1 AND status = 'pending' RETURNING id)
             INSERT INTO certificate_events (certificate_id, action, reason, actor, details)
             SELECT id, 'revoked', $2, $3, jsonb_build_object('with', $4::bigint) FROM r",
        )
        .bind::<BigInt, _>(cert.person_id)
        .bind::<Text, _>(reason)
        .bind::<Text, _>(actor)
        .bind::<BigInt, _>(id)
        .execute(conn)?;
        Ok(cert)
    })
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
        &[
            CertificateStatus::Active,
            CertificateStatus::Pending,
            CertificateStatus::Superseded,
            CertificateStatus::Revoked,
            CertificateStatus::Expired,
        ],
        CertificateStatus::Returned,
        "returned",
        reason,
        actor,
    )
}

fn transition(
    conn: &mut PgConnection,
    id: i64,
    from: &[CertificateStatus],
    to: CertificateStatus,
    action: &str,
    reason: &str,
    actor: &str,
) -> Result<CertificateView, DbError> {
    FreeText::Reason.check(reason)?;
    conn.transaction(|conn| {
        let cert = get(conn, id)?;
        if !from.contains(&cert.status) {
            return Err(DbError::Invalid(format!(
                "certificate {} is {}; it cannot become {to}",
                cert.number, cert.status
            )));
        }
        diesel::sql_query("UPDATE certificates SET status = $2, updated_at = now() WHERE id = $1")
            .bind::<BigInt, _>(id)
            .bind::<Text, _>(to.as_str())
            .execute(conn)?;
        event(
            conn,
            id,
            action,
            Some(reason),
            actor,
            json!({ "from": cert.status.as_str() }),
        )?;
        get(conn, id)
    })
}

/// Settles every certificate on `on` (the daily `shikaku certificates expire`, the monthly run
/// and an import that records losses run it): ended by a loss and past → revoked, otherwise
/// past → expired, pending and begun → active. Set-based: three statements whatever the
/// registry's size.
pub fn expire(conn: &mut PgConnection, on: NaiveDate, actor: &str) -> Result<Settled, DbError> {
    conn.transaction(|conn| settle(conn, Scope::All, on, actor))
}

/// The printed items of these certificates, in the order given (for a mailing PDF).
pub fn printed_of(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<PrintedItems>, DbError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Jsonb)]
        printed: Value,
    }
    diesel::sql_query(
        "SELECT c.printed FROM unnest($1::bigint[]) WITH ORDINALITY AS t(id, ord)
           JOIN certificates c ON c.id = t.id ORDER BY t.ord",
    )
    .bind::<Array<BigInt>, _>(ids)
    .load::<Row>(conn)?
    .into_iter()
    .map(|r| {
        serde_json::from_value(r.printed)
            .map_err(|e| DbError::Invalid(format!("unexpected stored printed items: {e}")))
    })
    .collect()
}

/// What the 資格情報のお知らせ shows for a card holder on a day.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct NoticeData {
    /// The holder's registry record.
    #[diesel(embed)]
    pub person: PersonRecord,
    /// 資格取得年月日 of the period in force.
    #[diesel(sql_type = Date)]
    pub acquired_on: NaiveDate,
    /// Last 4 digits of the active linked number.
    #[diesel(sql_type = Text)]
    pub my_number_last4: String,
    /// The holder's dated benefit records ([`crate::benefits::BENEFITS_JSON`]).
    #[diesel(sql_type = Jsonb)]
    pub benefits: Value,
}

impl NoticeData {
    /// The co-pay rate on `on`, dated records first.
    pub fn copay_on(&self, on: NaiveDate) -> Result<shikaku_domain::CopayRate, DbError> {
        let records = crate::benefits::parse_json(&self.benefits)?;
        Ok(self.person.benefits(&records).rate_on(on))
    }
}

/// The notice data for a person insured on `on` with an active linkage; refused otherwise
/// (the notice is for マイナ保険証 holders).
pub fn notice_data(
    conn: &mut PgConnection,
    person_id: i64,
    on: NaiveDate,
) -> Result<NoticeData, DbError> {
    diesel::sql_query(format!(
        "SELECT {PERSON_COLUMNS}, q.acquired_on, l.mn_last4 AS my_number_last4,
                {BENEFITS_JSON} AS benefits
           FROM persons p JOIN insurers i ON i.insurer_number = p.insurer_number
           JOIN qualifications q ON q.person_id = p.id AND q.acquired_on <= $2
                                AND (q.lost_on IS NULL OR q.lost_on > $2)
           JOIN LATERAL (SELECT mn_last4 FROM linkages WHERE person_id = p.id AND status = 'active'
                          ORDER BY linked_on DESC, id DESC LIMIT 1) l ON true
          WHERE p.id = $1"
    ))
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
