//! Actions on a single My Number linkage: register a number for a person, and after review
//! suspend it (blocks online viewing until corrected or confirmed), confirm the identity (5-item
//! match checked by a person), or correct it (the number was wrong: revoke it and link the right
//! one). Each is recorded in `linkage_events` with its reason, actor and time.
//!
//! Registering and correcting link a number to a person, so both run the registration-time
//! check first ([`crate::identity_check`]): the person's five items against the latest register
//! snapshot's record for the number, refused on a mismatch unless a 理由付き疑いなし reason is
//! given. A linkage the audit suspended for a critical finding ([`crate::findings::block`]) is
//! lifted by the reviewer's verdicts: confirming the identity dismisses the findings that block
//! it, and a correction resolves them.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Date, Integer, Jsonb, Text};
use shikaku_domain::free_text::FreeText;
use shikaku_domain::records::LinkageSource;
use shikaku_domain::{Keyring, LinkageStatus, MyNumber};

use crate::error::DbError;

/// A linkage as people may see it: never more of the number than its last 4 digits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkageView {
    /// Database id.
    pub id: i64,
    /// The person it links.
    pub person_id: i64,
    /// Last 4 digits.
    pub mn_last4: String,
    /// Whether the number passes its check digit.
    pub check_digit_ok: bool,
    /// Where the number came from.
    pub source: LinkageSource,
    /// When it was registered.
    pub linked_on: chrono::NaiveDate,
    /// Whether it is in use, blocked from online viewing, or withdrawn.
    pub status: LinkageStatus,
    /// Whether the 5 items are known to match: the register matched when the number was
    /// registered or corrected, or a person confirmed them since.
    pub identity_confirmed: bool,
    /// The critical finding that keeps it suspended (its status reason reads `finding N`);
    /// `None` unless the audit suspended it.
    pub suspended_by_finding: Option<i64>,
}

/// The row as read; [`LinkageView`] is its typed form.
#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    person_id: i64,
    #[diesel(sql_type = Text)]
    mn_last4: String,
    #[diesel(sql_type = Bool)]
    check_digit_ok: bool,
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Date)]
    linked_on: chrono::NaiveDate,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Bool)]
    identity_confirmed: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    suspended_by_finding: Option<i64>,
}

impl TryFrom<Row> for LinkageView {
    type Error = DbError;

    fn try_from(r: Row) -> Result<Self, DbError> {
        let bad =
            |what: &str| DbError::Invalid(format!("unexpected stored {what} of linkage {}", r.id));
        Ok(LinkageView {
            source: LinkageSource::parse(&r.source).map_err(|_| bad("source"))?,
            status: LinkageStatus::parse(&r.status).ok_or_else(|| bad("status"))?,
            id: r.id,
            person_id: r.person_id,
            mn_last4: r.mn_last4,
            check_digit_ok: r.check_digit_ok,
            linked_on: r.linked_on,
            identity_confirmed: r.identity_confirmed,
            suspended_by_finding: r.suspended_by_finding,
        })
    }
}

const SELECT: &str = "SELECT id, person_id, mn_last4, check_digit_ok, source, linked_on, status,
        identity_confirmed, suspended_by_finding FROM linkages";

/// One linkage.
pub fn get(conn: &mut PgConnection, id: i64) -> Result<LinkageView, DbError> {
    diesel::sql_query(format!("{SELECT} WHERE id = $1"))
        .bind::<BigInt, _>(id)
        .get_result::<Row>(conn)
        .optional()?
        .ok_or_else(|| DbError::NotFound(format!("no linkage {id}")))?
        .try_into()
}

/// The linkages of a person, any status.
pub fn of_person(conn: &mut PgConnection, person_id: i64) -> Result<Vec<LinkageView>, DbError> {
    diesel::sql_query(format!("{SELECT} WHERE person_id = $1 ORDER BY id"))
        .bind::<BigInt, _>(person_id)
        .load::<Row>(conn)?
        .into_iter()
        .map(LinkageView::try_from)
        .collect()
}

fn event(
    conn: &mut PgConnection,
    id: i64,
    action: &str,
    reason: &str,
    actor: &str,
    details: serde_json::Value,
) -> Result<(), DbError> {
    diesel::sql_query(
        "INSERT INTO linkage_events (linkage_id, action, reason, actor, details)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(action)
    .bind::<Text, _>(reason)
    .bind::<Text, _>(actor)
    .bind::<Jsonb, _>(details)
    .execute(conn)?;
    Ok(())
}

/// Suspends an active linkage: it stays stored and audited but is reported as suspended
/// wherever it is read, until it is corrected or its identity confirmed.
pub fn suspend(
    conn: &mut PgConnection,
    id: i64,
    reason: &str,
    actor: &str,
) -> Result<LinkageView, DbError> {
    FreeText::Reason.check(reason)?;
    conn.transaction(|conn| {
        let n = diesel::sql_query(
            "UPDATE linkages SET status = 'suspended', updated_at = now()
             WHERE id = $1 AND status = 'active'",
        )
        .bind::<BigInt, _>(id)
        .execute(conn)?;
        if n == 0 {
            return Err(DbError::NotFound(format!("no active linkage {id}")));
        }
        event(conn, id, "suspended", reason, actor, serde_json::json!({}))?;
        get(conn, id)
    })
}

/// Records that a person checked the 5 items against the register and the number belongs to
/// this person; a suspended linkage becomes active again. The critical findings that blocked it
/// are dismissed with the same reason (理由付き疑いなし): the check is exactly that verdict,
/// and without it the next audit run would block the linkage again.
pub fn confirm_identity(
    conn: &mut PgConnection,
    id: i64,
    reason: &str,
    actor: &str,
) -> Result<LinkageView, DbError> {
    FreeText::Reason.check(reason)?;
    conn.transaction(|conn| {
        let before = get(conn, id)?;
        if before.status == LinkageStatus::Revoked {
            return Err(DbError::Invalid(format!(
                "linkage {id} is revoked; register the right number instead"
            )));
        }
        let dismissed = crate::findings::block::dismiss_blocking(conn, id, reason, actor)?;
        diesel::sql_query(
            "UPDATE linkages SET identity_confirmed = true, status = 'active',
                    suspended_by_finding = NULL, updated_at = now()
             WHERE id = $1",
        )
        .bind::<BigInt, _>(id)
        .execute(conn)?;
        let mut details = serde_json::json!({ "previous_status": before.status.as_str() });
        if let Some(f) = before.suspended_by_finding {
            details["lifted_finding"] = serde_json::json!(f);
        }
        if !dismissed.is_empty() {
            details["dismissed_findings"] = serde_json::json!(dismissed);
        }
        event(conn, id, "identity_confirmed", reason, actor, details)?;
        get(conn, id)
    })
}

/// Corrects a wrong linkage: revokes it and links `number` to the same person instead (source
/// `jlis` by default: a correction is made against the register). Returns the new linkage.
/// The open and confirmed findings about the revoked linkage are resolved at once, which lifts
/// any block they put on it: the correction is the fix.
///
/// The right number goes through the registration-time check like any new one: refused with
/// [`DbError::IdentityMismatch`] when the person disagrees with the register's record for it,
/// unless `no_error_reason` (理由付き疑いなし) says why it is right all the same; the old
/// linkage then stays as it was.
#[allow(clippy::too_many_arguments)]
pub fn correct(
    conn: &mut PgConnection,
    keyring: &Keyring,
    id: i64,
    number: &MyNumber,
    source: LinkageSource,
    reason: &str,
    no_error_reason: Option<&str>,
    actor: &str,
) -> Result<LinkageView, DbError> {
    FreeText::Reason.check(reason)?;
    crate::identity_check::check_reason(no_error_reason)?;
    let digits = number.expose_digits();
    let blind = keyring.blind_index(digits);
    let sealed = keyring.seal(digits);
    let index_key = index_key_id(keyring)?;
    conn.transaction(|conn| {
        crate::keys::check_index(conn, keyring, None)?;
        let old = get(conn, id)?;
        if old.status == LinkageStatus::Revoked {
            return Err(DbError::Invalid(format!("linkage {id} is already revoked")));
        }
        let check =
            crate::identity_check::check(conn, keyring, old.person_id, digits, no_error_reason)?;
        diesel::sql_query(
            "UPDATE linkages SET status = 'revoked', suspended_by_finding = NULL,
                    updated_at = now()
             WHERE id = $1",
        )
        .bind::<BigInt, _>(id)
        .execute(conn)?;
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let new_id = diesel::sql_query(
            "INSERT INTO linkages (person_id, mn_blind, mn_sealed, mn_key_id, mn_last4,
                                   check_digit_ok, source, linked_on, identity_confirmed,
                                   mn_bound, mn_index_key_id)
             VALUES ($1, $2, $3, $4, $5, true, $6, (now() AT TIME ZONE 'Asia/Tokyo')::date, $8,
                     true, $7)
             ON CONFLICT ON CONSTRAINT linkages_person_number
             DO UPDATE SET status = 'active', identity_confirmed = EXCLUDED.identity_confirmed,
                           suspended_by_finding = NULL, updated_at = now()
             RETURNING id",
        )
        .bind::<BigInt, _>(old.person_id)
        .bind::<Bytea, _>(blind.as_bytes())
        .bind::<Bytea, _>(&sealed.ciphertext)
        .bind::<Integer, _>(i32::try_from(sealed.key_id).unwrap_or(i32::MAX))
        .bind::<Text, _>(number.last4())
        .bind::<Text, _>(source.as_str())
        .bind::<Integer, _>(index_key)
        .bind::<Bool, _>(check.identity_confirmed())
        .get_result::<Id>(conn)?
        .id;
        let resolved = crate::findings::block::resolve_corrected(conn, id, new_id, actor)?;
        let mut details = serde_json::json!({ "corrected_by": new_id });
        if let Some(f) = old.suspended_by_finding {
            details["lifted_finding"] = serde_json::json!(f);
        }
        if !resolved.is_empty() {
            details["resolved_findings"] = serde_json::json!(resolved);
        }
        event(conn, id, "revoked", reason, actor, details)?;
        let mut details = check.details();
        details["corrects"] = serde_json::json!(id);
        event(conn, new_id, "registered", reason, actor, details)?;
        crate::identity_check::record(conn, new_id, &check, actor)?;
        get(conn, new_id)
    })
}

/// Registers `number` for a person. A number already linked (not revoked) to another person is
/// refused unless `force_reason` says why both are right (the 2023 errors were exactly such
/// double links); the same number twice for one person is refused outright.
///
/// Then the registration-time check ([`crate::identity_check`]): a person who disagrees with the
/// latest register snapshot's record for the number on any of the five items is refused with
/// [`DbError::IdentityMismatch`], unless `no_error_reason` gives the 理由付き疑いなし.
#[allow(clippy::too_many_arguments)]
pub fn register(
    conn: &mut PgConnection,
    keyring: &Keyring,
    person_id: i64,
    number: &MyNumber,
    source: LinkageSource,
    linked_on: chrono::NaiveDate,
    force_reason: Option<&str>,
    no_error_reason: Option<&str>,
    actor: &str,
) -> Result<LinkageView, DbError> {
    if let Some(r) = force_reason {
        FreeText::Reason.check(r)?;
    }
    crate::identity_check::check_reason(no_error_reason)?;
    let digits = number.expose_digits();
    let blind = keyring.blind_index(digits);
    let sealed = keyring.seal(digits);
    let index_key = index_key_id(keyring)?;
    conn.transaction(|conn| {
        // Indexed under the key the registry is under, or the number would not be found again.
        crate::keys::check_index(conn, keyring, None)?;
        #[derive(QueryableByName)]
        struct Holder {
            #[diesel(sql_type = BigInt)]
            person_id: i64,
        }
        let exists = diesel::sql_query("SELECT id AS person_id FROM persons WHERE id = $1")
            .bind::<BigInt, _>(person_id)
            .get_result::<Holder>(conn)
            .optional()?;
        if exists.is_none() {
            return Err(DbError::NotFound(format!("no person {person_id}")));
        }
        // Serialises registrations of the same number so two clerks cannot both pass the check.
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended(encode($1, 'hex'), 7))")
            .bind::<Bytea, _>(blind.as_bytes())
            .execute(conn)?;
        // Under every index key held: rows not yet re-indexed after a rotation count too.
        let holders = diesel::sql_query(
            "SELECT person_id FROM linkages WHERE mn_blind = ANY($1) AND status <> 'revoked'",
        )
        .bind::<Array<Bytea>, _>(&every_index(keyring, digits))
        .load::<Holder>(conn)?;
        if holders.iter().any(|h| h.person_id == person_id) {
            return Err(DbError::Conflict(format!(
                "person {person_id} already has this number linked"
            )));
        }
        if !holders.is_empty() && force_reason.is_none() {
            return Err(DbError::LinkedElsewhere {
                message: format!(
                    "this number is already linked to another person ({} linkage(s)); \
                     give a reason to link it anyway",
                    holders.len()
                ),
                person_ids: holders.iter().map(|h| h.person_id).collect(),
            });
        }
        let check =
            crate::identity_check::check(conn, keyring, person_id, digits, no_error_reason)?;
        // A revoked linkage of the same pair comes back to life: it is checked like a new one.
        let new_id = diesel::sql_query(
            "INSERT INTO linkages (person_id, mn_blind, mn_sealed, mn_key_id, mn_last4,
                                   check_digit_ok, source, linked_on, mn_bound, mn_index_key_id,
                                   identity_confirmed)
             VALUES ($1, $2, $3, $4, $5, true, $6, $7, true, $8, $9)
             ON CONFLICT ON CONSTRAINT linkages_person_number
             DO UPDATE SET status = 'active', source = EXCLUDED.source,
                           linked_on = EXCLUDED.linked_on, suspended_by_finding = NULL,
                           identity_confirmed = EXCLUDED.identity_confirmed, updated_at = now()
             RETURNING id",
        )
        .bind::<BigInt, _>(person_id)
        .bind::<Bytea, _>(blind.as_bytes())
        .bind::<Bytea, _>(&sealed.ciphertext)
        .bind::<Integer, _>(i32::try_from(sealed.key_id).unwrap_or(i32::MAX))
        .bind::<Text, _>(number.last4())
        .bind::<Text, _>(source.as_str())
        .bind::<Date, _>(linked_on)
        .bind::<Integer, _>(index_key)
        .bind::<Bool, _>(check.identity_confirmed())
        .get_result::<NewId>(conn)?
        .id;
        let mut details = check.details();
        details["source"] = serde_json::json!(source.as_str());
        details["forced"] = serde_json::json!(force_reason.is_some());
        details["other_holders"] = serde_json::json!(holders.len());
        event(
            conn,
            new_id,
            "registered",
            force_reason.unwrap_or(""),
            actor,
            details,
        )?;
        crate::identity_check::record(conn, new_id, &check, actor)?;
        get(conn, new_id)
    })
}

/// The blind index of `digits` under every index key the keyring holds.
fn every_index(keyring: &Keyring, digits: &str) -> Vec<Vec<u8>> {
    keyring
        .blind_indexes(digits)
        .iter()
        .map(|b| b.as_bytes().to_vec())
        .collect()
}

fn index_key_id(keyring: &Keyring) -> Result<i32, DbError> {
    i32::try_from(keyring.index_key_id())
        .map_err(|_| DbError::Invalid("index key id out of range".into()))
}

#[derive(QueryableByName)]
struct NewId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Opens the sealed number of a linkage, for the admin-only reveal. The caller logs the reveal
/// with its reason before showing it.
pub fn reveal(
    conn: &mut PgConnection,
    keyring: &Keyring,
    id: i64,
) -> Result<zeroize::Zeroizing<String>, DbError> {
    #[derive(QueryableByName)]
    struct Sealed {
        #[diesel(sql_type = Bytea)]
        mn_blind: Vec<u8>,
        #[diesel(sql_type = Bytea)]
        mn_sealed: Vec<u8>,
        #[diesel(sql_type = Integer)]
        mn_key_id: i32,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        mn_bound: bool,
    }
    let row = diesel::sql_query(
        "SELECT mn_blind, mn_sealed, mn_key_id, mn_bound FROM linkages WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .get_result::<Sealed>(conn)
    .optional()?
    .ok_or_else(|| DbError::NotFound(format!("no linkage {id}")))?;
    let sealed = shikaku_domain::SealedNumber {
        key_id: u32::try_from(row.mn_key_id).unwrap_or(u32::MAX),
        ciphertext: row.mn_sealed,
        bound: row.mn_bound,
    };
    let blind = <[u8; 32]>::try_from(row.mn_blind.as_slice())
        .map(shikaku_domain::BlindIndex)
        .map_err(|_| DbError::Invalid(format!("linkage {id} has a malformed index")))?;
    // The row's own index goes into the decryption: a ciphertext copied from another row
    // does not open here.
    Ok(keyring.open(&sealed, &blind)?)
}

/// What the latest resident-register snapshot holds for a linkage's number.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRecord {
    /// The snapshot it comes from.
    #[diesel(sql_type = BigInt)]
    pub snapshot_id: i64,
    /// 漢字氏名 as registered (may hold ● for characters outside the register's set).
    #[diesel(sql_type = Text)]
    pub name_kanji: String,
    /// カナ氏名, when the extract carries it.
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub name_kana: Option<String>,
    /// 生年月日.
    #[diesel(sql_type = Date)]
    pub birth_date: chrono::NaiveDate,
    /// 1 male, 2 female.
    #[diesel(sql_type = diesel::sql_types::SmallInt)]
    pub sex: i16,
    /// 住所.
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub address: Option<String>,
    /// active or removed.
    #[diesel(sql_type = Text)]
    pub status: String,
}

/// The latest snapshot's record for the linkage's number, if the register has it.
pub fn register_record(
    conn: &mut PgConnection,
    linkage_id: i64,
) -> Result<Option<RegisterRecord>, DbError> {
    Ok(diesel::sql_query(
        "SELECT r.snapshot_id, r.name_kanji, r.name_kana, r.birth_date, r.sex, r.address, r.status
           FROM linkages l
           JOIN resident_records r ON r.mn_blind = l.mn_blind
          WHERE l.id = $1 AND r.snapshot_id = (SELECT max(id) FROM resident_snapshots)",
    )
    .bind::<BigInt, _>(linkage_id)
    .get_result(conn)
    .optional()?)
}
