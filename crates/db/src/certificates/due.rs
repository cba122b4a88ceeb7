//! 職権交付: the monthly ex-officio run. From the national card-registration status file it
//! issues a certificate to everyone insured without a usable マイナ保険証 (a suspended linkage
//! counts as no usable card), to every 後期高齢者 member under the transitional rule, and to
//! every 要配慮者 who asked; and it issues the next certificate, valid from the day after the
//! current one ends, to each of them whose certificate ends before the next run, so that nobody
//! has a day without one. All in one transaction and set-based, so the run is the same few
//! statements for a hundred people or forty million. Who needs which certificate and when the
//! next one is due are the domain's rules ([`kind_needed`], [`next_certificate`]).

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Jsonb, Nullable, Text};
use serde_json::Value;
use shikaku_domain::certificate::{
    kind_needed, next_certificate, CardStatus, Need, Next, PrintedItems, Term,
};
use shikaku_domain::copay::Scheme;
use shikaku_domain::CertificateKind;

use super::prepare::{insert, prepare, subject_extra, Subject};
use super::status_file::{self, StatusRow};
use super::{settle, IssueOptions, Scope};
use crate::error::DbError;
use crate::import::Issue;
use crate::persons::PERSON_COLUMNS;

/// Settings of the ex-officio run.
#[derive(Debug, Clone, Copy)]
pub struct DueOptions {
    /// The issue date.
    pub on: NaiveDate,
    /// The day of the next run: a certificate ending before it is followed now by one valid
    /// from the day after it ends (normally a month on: [`super::next_run_after`]).
    pub next_run: NaiveDate,
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
    /// New certificates for 要配慮者 who asked for one at every renewal, card or no card.
    pub issued_requested: u64,
    /// Renewals issued ahead: valid from the day after the current certificate ends, which is
    /// before the next run.
    pub renewed: u64,
    /// Due persons who already hold a certificate covering the next run, or its renewal.
    pub already_holding: u64,
    /// Persons whose certificate ends before the next run and who need none after it (a 後期
    /// member with a usable card once the transitional rule ends).
    pub not_renewed: u64,
    /// Due persons for whom no validity remains (e.g. they lose the qualification tomorrow).
    pub skipped: u64,
    /// Certificates whose validity had ended before the day, marked expired first.
    pub expired: u64,
    /// Certificates ended by a loss whose date had arrived, revoked first.
    pub revoked: u64,
    /// Renewals whose first valid day had come, made active first.
    pub activated: u64,
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
    /// The registry has suspended the person's linkage and holds no active one.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    suspended: bool,
    #[diesel(sql_type = Nullable<Date>)]
    active_until: Option<NaiveDate>,
    /// The active certificate, when a change of co-pay or limit category ended it early: its
    /// replacement supersedes it (domain.md: each reissue supersedes the previous one).
    #[diesel(sql_type = Nullable<BigInt>)]
    cut_by_benefit: Option<i64>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    active_printed: Option<Value>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    has_pending: bool,
}

impl DueRow {
    /// What decides whether the person needs a certificate.
    fn need(&self) -> Need {
        let card = self
            .card_status
            .as_deref()
            .and_then(|s| CardStatus::parse(s).ok());
        Need {
            scheme: Scheme::of_number(&self.subject.person.insurer_number),
            card_usable: card.is_none_or(CardStatus::usable) && !self.suspended,
            requested: self.subject.person.certificate_requested,
        }
    }

    /// The options the active certificate was issued with, carried into its renewal.
    fn carried(&self) -> IssueOptions {
        self.active_printed
            .clone()
            .and_then(|v| serde_json::from_value::<PrintedItems>(v).ok())
            .map(|p| IssueOptions::of(&p))
            .unwrap_or_default()
    }
}

/// 職権交付: reads the monthly card-registration status file and, in one transaction, settles
/// the certificates on `on` (expire, revoke on arrived losses, activate renewals), then issues a
/// certificate to every person insured on `on` who needs one and holds none: without a usable
/// マイナ保険証 (or with a suspended linkage), every 後期高齢者 member (法別番号 39) until
/// `koki_until`, every 要配慮者 who asked. To each of them whose certificate ends before
/// `next_run` it issues the next one now, valid from the day after (pending). Idempotent: a
/// second run with the same file issues nothing. A person absent from the file is judged by
/// the registry alone (no information is not "no card").
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
        let settled = settle(conn, Scope::All, options.on, actor)?;
        summary.expired = settled.expired;
        summary.revoked = settled.revoked;
        summary.activated = settled.activated;
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
        // A suspended linkage (a critical finding, a reviewer) cannot be viewed online, so the
        // card is of no use at the counter until it is restored.
        let due: Vec<DueRow> = diesel::sql_query(format!(
            "WITH suspended AS (
                SELECT DISTINCT l.person_id FROM linkages l
                 WHERE l.status = 'suspended'
                   AND NOT EXISTS (SELECT 1 FROM linkages a
                                    WHERE a.person_id = l.person_id AND a.status = 'active'))
             SELECT p.id AS person_id, {PERSON_COLUMNS}, {extra}, s.card_status,
                    (x.person_id IS NOT NULL) AS suspended,
                    a.valid_until AS active_until, a.printed AS active_printed,
                    CASE WHEN a.valid_until_reason = 'benefit_change' THEN a.id END
                        AS cut_by_benefit,
                    EXISTS (SELECT 1 FROM certificates n
                             WHERE n.person_id = p.id AND n.status = 'pending') AS has_pending
               FROM persons p
               JOIN insurers i ON i.insurer_number = p.insurer_number
               JOIN qualifications q ON q.person_id = p.id AND q.acquired_on <= $1
                                     AND (q.lost_on IS NULL OR q.lost_on > $1)
               LEFT JOIN card_status s ON s.insurer_number = p.insurer_number
                     AND s.symbol = p.symbol AND s.number = p.number AND s.branch = p.branch
               LEFT JOIN suspended x ON x.person_id = p.id
               LEFT JOIN certificates a ON a.person_id = p.id AND a.status = 'active'
              WHERE (p.insurer_number LIKE '39%' AND $1 <= $2)
                 OR s.card_status IN ('unregistered', 'certificate_expired', 'card_returned',
                                      'registration_cancelled')
                 OR p.certificate_requested
                 OR x.person_id IS NOT NULL
              ORDER BY p.id",
            extra = subject_extra()
        ))
        .bind::<Date, _>(options.on)
        .bind::<Date, _>(options.koki_until)
        .load(conn)
        .map_err(DbError::from)?;
        let mut new = Vec::new();
        for row in &due {
            let need = row.need();
            let carried = row.carried();
            // A certificate issued now that ends before the next run is followed at once by the
            // next one (a first issue in a July run ends on 31 July): at most two per person.
            let (mut active_until, mut has_pending) = (row.active_until, row.has_pending);
            for step in 0..2 {
                let (term, ahead) =
                    match next_certificate(active_until, has_pending, options.next_run) {
                        Next::Nothing => {
                            if step == 0 {
                                summary.already_holding += 1;
                            }
                            break;
                        }
                        Next::Now => (Term::issued_on(options.on), false),
                        Next::From(from) => (Term::starting(options.on, from), true),
                    };
                let Some(kind) = kind_needed(&need, term.from, options.koki_until) else {
                    summary.not_renewed += 1;
                    break;
                };
                let term = term.of_kind(kind, options.koki_until);
                let supersedes = if ahead { row.cut_by_benefit } else { None };
                let Ok(p) = prepare(&row.subject, row.person_id, kind, term, &carried, supersedes)
                else {
                    if step == 0 {
                        summary.skipped += 1;
                    }
                    break;
                };
                match (ahead, kind) {
                    (true, _) => summary.renewed += 1,
                    (false, CertificateKind::KokiAutomatic) => summary.issued_koki += 1,
                    (false, CertificateKind::Application) => summary.issued_requested += 1,
                    (false, CertificateKind::ExOfficio) => summary.issued_ex_officio += 1,
                }
                if ahead {
                    has_pending = true;
                } else {
                    active_until = Some(p.until);
                }
                new.push(p);
            }
        }
        for chunk in new.chunks(5_000) {
            let stored = insert(conn, chunk)?;
            diesel::sql_query(
                "INSERT INTO certificate_events (certificate_id, action, reason, actor, details)
                 SELECT id, 'issued',
                        CASE WHEN vfrom > issued THEN format('有効期限到来による更新 (%s)', $2)
                             ELSE format('職権交付 (%s)', $2) END, $3,
                        jsonb_build_object('kind', kind, 'valid_from', vfrom)
                   FROM unnest($1::bigint[], $4::text[], $5::date[], $6::date[])
                        AS t(id, kind, vfrom, issued)",
            )
            .bind::<Array<BigInt>, _>(stored.iter().map(|c| c.id).collect::<Vec<_>>())
            .bind::<Text, _>(file)
            .bind::<Text, _>(actor)
            .bind::<Array<Text>, _>(stored.iter().map(|c| c.kind.as_str()).collect::<Vec<_>>())
            .bind::<Array<Date>, _>(stored.iter().map(|c| c.valid_from).collect::<Vec<_>>())
            .bind::<Array<Date>, _>(stored.iter().map(|c| c.issued_on).collect::<Vec<_>>())
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
