//! 職権交付: the monthly ex-officio run. From the national card-registration status file it
//! issues a certificate to everyone insured without a usable マイナ保険証, to every 後期高齢者
//! member under the transitional rule, and renews certificates that expire soon, all in one
//! transaction and set-based, so the run is the same few statements for a hundred people or
//! forty million.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Jsonb, Nullable, Text};
use serde_json::Value;
use shikaku_domain::certificate::{CardStatus, PrintedItems};
use shikaku_domain::{CertificateKind, InsurerNumber};

use super::prepare::{insert, prepare, Subject, SUBJECT_EXTRA};
use super::status_file::{self, StatusRow};
use super::{expire, IssueOptions};
use crate::error::DbError;
use crate::import::Issue;
use crate::persons::PERSON_COLUMNS;

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
    #[error("{file}: {total} line(s) cannot be used; nothing was issued")]
    File {
        /// The file's name as given.
        file: String,
        /// The first problems found (at most [`super::status_file::KEPT_ERRORS`]), by line.
        errors: Vec<Issue>,
        /// How many there are in all.
        total: u64,
    },
    /// The file could not be read.
    #[error("{file}: {reason}")]
    Read {
        /// The file's name as given.
        file: String,
        /// Why.
        reason: String,
    },
    /// The database refused.
    #[error(transparent)]
    Db(#[from] DbError),
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

impl DueRow {
    /// The options the active certificate was issued with, carried into its renewal.
    fn carried(&self) -> IssueOptions {
        self.active_printed
            .clone()
            .and_then(|v| serde_json::from_value::<PrintedItems>(v).ok())
            .map(|p| IssueOptions::of(&p))
            .unwrap_or_default()
    }
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
    let rows: Vec<StatusRow> = status_file::read(file, input)?;
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
            let col = |i: usize| chunk.iter().map(|r| r.columns[i].as_str()).collect::<Vec<_>>();
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
        let due: Vec<DueRow> = diesel::sql_query(format!(
            "SELECT p.id AS person_id, {PERSON_COLUMNS}, {SUBJECT_EXTRA}, s.card_status,
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
              ORDER BY p.id"
        ))
        .bind::<Date, _>(options.on)
        .bind::<Date, _>(options.koki_until)
        .load(conn)
        .map_err(DbError::from)?;
        let renew_by = options
            .on
            .checked_add_days(chrono::Days::new(u64::from(options.renew_within_days)))
            .unwrap_or(NaiveDate::MAX);
        let mut new = Vec::new();
        let mut superseded = Vec::new();
        for row in &due {
            let koki = InsurerNumber::parse(&row.subject.person.insurer_number)
                .is_ok_and(|i| i.is_koki())
                && options.on <= options.koki_until;
            let card = row.card_status.as_deref().and_then(|s| CardStatus::parse(s).ok());
            let kind = if koki && card.is_none_or(CardStatus::usable) {
                CertificateKind::KokiAutomatic
            } else {
                CertificateKind::ExOfficio
            };
            match (row.active_id, row.active_until) {
                (Some(_), Some(until)) if until > renew_by => summary.already_holding += 1,
                (active, until) => {
                    let opts = row.carried();
                    match prepare(&row.subject, row.person_id, kind, options.on, &opts, active) {
                        // A renewal that would not extend the validity is no renewal.
                        Ok(p) if until.is_some_and(|u| p.until <= u) => summary.already_holding += 1,
                        Ok(p) => {
                            if let Some(old) = active {
                                superseded.push(old);
                                summary.renewed += 1;
                            } else if kind == CertificateKind::KokiAutomatic {
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
