//! The access log: who read or changed what, when, and why, append-only and chained with a
//! key the database never holds.
//!
//! Each entry's link (`hash`) is an HMAC-SHA256, under a log key from the key file (its id in
//! `key_id`), of the previous entry's link and a canonical encoding of the entry (fixed field
//! order, object keys sorted, times to the microsecond PostgreSQL keeps). An edited, deleted or
//! reordered entry breaks every link after it, and without the key nobody can compute a link
//! that verifies, so a forged entry is caught too. Entries written before the log was keyed
//! (no `key_id`) keep their plain SHA-256 links and still verify; after the first keyed entry an
//! unkeyed one is a forgery.
//!
//! The database refuses UPDATE, DELETE and TRUNCATE on the table, and the application role has
//! only INSERT and SELECT there ([`crate::roles`]). Someone with the owner's rights could still
//! cut the newest entries and leave a valid shorter chain: [`checkpoint`] anchors the head
//! outside the database, signed, and [`verify`] reports a tail missing since a checkpoint.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::connection::DefaultLoadingMode;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bytea, Jsonb, Nullable, Text, Timestamptz};
use serde_json::Value;
use sha2::{Digest, Sha256};
use shikaku_domain::Keyring;

use crate::error::DbError;

pub mod checkpoint;

use checkpoint::Checkpoint;

/// Domain separation of the keyed links, so an access-log MAC can never be mistaken for any
/// other HMAC made with the same key.
const LINK_CONTEXT: &[u8] = b"shikaku-access-log/2\x1f";

/// The `prev_hash` of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// An entry before it is chained.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    /// When the answer was given (kept to the microsecond).
    pub at: DateTime<Utc>,
    /// The API token used, if any (the CLI writes without one).
    pub token_id: Option<i64>,
    /// Who: the token's name, or the CLI user.
    pub actor: String,
    /// The role the actor acted in.
    pub role: String,
    /// What: `eligibility`, `person_read`, `number_reveal`, `linkage_register`, ...
    pub action: String,
    /// Whose data, e.g. `person:42`, when one person is concerned.
    pub subject: Option<String>,
    /// What was asked (personal keys included; never a whole My Number).
    pub request: Value,
    /// What was answered (a summary: the validity code and ids, not the whole body).
    pub response: Value,
    /// The reason given, where one is required.
    pub reason: Option<String>,
}

impl NewEntry {
    /// An entry stamped now.
    pub fn now(actor: &str, role: &str, action: &str) -> NewEntry {
        NewEntry {
            at: Utc::now().trunc_subsecs(6),
            token_id: None,
            actor: actor.to_string(),
            role: role.to_string(),
            action: action.to_string(),
            subject: None,
            request: Value::Null,
            response: Value::Null,
            reason: None,
        }
    }
}

/// The canonical bytes of `entry` as number `seq`: what its link covers besides the previous
/// link.
fn canonical(seq: i64, entry: &NewEntry) -> Vec<u8> {
    let mut body = Vec::with_capacity(256);
    let fields = [
        Value::from(seq),
        Value::from(
            entry
                .at
                .trunc_subsecs(6)
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string(),
        ),
        entry.token_id.map_or(Value::Null, Value::from),
        Value::from(entry.actor.as_str()),
        Value::from(entry.role.as_str()),
        Value::from(entry.action.as_str()),
        entry.subject.as_deref().map_or(Value::Null, Value::from),
        entry.request.clone(),
        entry.response.clone(),
        entry.reason.as_deref().map_or(Value::Null, Value::from),
    ];
    write_canonical(&Value::Array(fields.to_vec()), &mut body);
    body
}

/// The plain SHA-256 link of an entry written before the log was keyed.
pub fn legacy_hash(seq: i64, prev: &[u8], entry: &NewEntry) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical(seq, entry));
    h.finalize().into()
}

/// The keyed link of `entry` as number `seq` following `prev`, under log key `key_id`.
pub fn link(
    keyring: &Keyring,
    key_id: u32,
    seq: i64,
    prev: &[u8],
    entry: &NewEntry,
) -> Result<[u8; 32], DbError> {
    Ok(keyring.log_mac(key_id, &[LINK_CONTEXT, prev, &canonical(seq, entry)])?)
}

/// The id of the key new entries are chained with, or why there is none.
fn current_key(keyring: &Keyring) -> Result<u32, DbError> {
    keyring.log_key_id().ok_or_else(|| {
        DbError::Invalid(
            "the key file has no access-log key: run `shikaku keys rotate --log-key` once".into(),
        )
    })
}

/// JSON with object keys in byte order at every level, whatever order the map type keeps:
/// jsonb hands objects back in its own order, and the hash must not depend on it.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::from(k.as_str()).to_string().as_bytes());
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// Where an appended entry landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its number in the chain.
    pub seq: i64,
    /// Its hash.
    pub hash: [u8; 32],
}

#[derive(QueryableByName)]
struct HeadRow {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Bytea)]
    hash: Vec<u8>,
}

/// The last entry of the chain: its number and hash (`(0, GENESIS)` for an empty log).
pub type Head = (i64, [u8; 32]);

/// Reads the chain's head.
pub fn head(conn: &mut PgConnection) -> Result<Head, DbError> {
    let row = diesel::sql_query("SELECT seq, hash FROM access_log ORDER BY seq DESC LIMIT 1")
        .get_result::<HeadRow>(conn)
        .optional()?;
    Ok(match row {
        Some(h) => (h.seq, h.hash.try_into().unwrap_or(GENESIS)),
        None => (0, GENESIS),
    })
}

/// What [`append_after`] can run into.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer appended after `head`: read the head again and retry.
    #[error("the access log moved on (another writer appended)")]
    Moved,
    /// Anything else.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Appends `entries` after the known `head` with one INSERT statement, which commits on its
/// own: the API's group-commit writer keeps the head in memory, so a batch costs one round trip
/// and one WAL flush. `seq` is the primary key, so a writer with a stale head (another process
/// appended meanwhile) cannot fork the chain: its INSERT fails with [`AppendError::Moved`].
pub fn append_after(
    conn: &mut PgConnection,
    keyring: &Keyring,
    head: Head,
    entries: &[NewEntry],
) -> Result<Vec<Appended>, AppendError> {
    let key_id = current_key(keyring)?;
    let (mut seq, prev0) = head;
    let mut prev: [u8; 32] = prev0;
    let n = entries.len();
    let mut out = Vec::with_capacity(n);
    let mut seqs = Vec::with_capacity(n);
    let mut ats = Vec::with_capacity(n);
    let mut tokens = Vec::with_capacity(n);
    let mut actors = Vec::with_capacity(n);
    let mut roles = Vec::with_capacity(n);
    let mut actions = Vec::with_capacity(n);
    let mut subjects = Vec::with_capacity(n);
    let mut requests = Vec::with_capacity(n);
    let mut responses = Vec::with_capacity(n);
    let mut reasons = Vec::with_capacity(n);
    let mut prevs = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    for e in entries {
        seq += 1;
        let hash = link(keyring, key_id, seq, &prev, e)?;
        out.push(Appended { seq, hash });
        seqs.push(seq);
        ats.push(e.at.trunc_subsecs(6));
        tokens.push(e.token_id);
        actors.push(e.actor.as_str());
        roles.push(e.role.as_str());
        actions.push(e.action.as_str());
        subjects.push(e.subject.as_deref());
        requests.push(&e.request);
        responses.push(&e.response);
        reasons.push(e.reason.as_deref());
        prevs.push(prev.to_vec());
        hashes.push(hash.to_vec());
        prev = hash;
    }
    if n == 0 {
        return Ok(out);
    }
    let insert = InsertBatch {
        seqs: &seqs,
        ats: &ats,
        tokens: &tokens,
        actors: &actors,
        roles: &roles,
        actions: &actions,
        subjects: &subjects,
        requests: &requests,
        responses: &responses,
        reasons: &reasons,
        prevs: &prevs,
        hashes: &hashes,
        key_id: i32::try_from(key_id).unwrap_or(i32::MAX),
    };
    let result = insert.execute(conn);
    match result {
        Ok(_) => Ok(out),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Err(AppendError::Moved),
        Err(e) => Err(AppendError::Db(e.into())),
    }
}

/// The batch INSERT as a query type with a static id, so that diesel prepares it once per
/// connection instead of parsing and planning it for every batch (`sql_query` is never cached).
struct InsertBatch<'a> {
    seqs: &'a [i64],
    ats: &'a [DateTime<Utc>],
    tokens: &'a [Option<i64>],
    actors: &'a [&'a str],
    roles: &'a [&'a str],
    actions: &'a [&'a str],
    subjects: &'a [Option<&'a str>],
    requests: &'a [&'a Value],
    responses: &'a [&'a Value],
    reasons: &'a [Option<&'a str>],
    prevs: &'a [Vec<u8>],
    hashes: &'a [Vec<u8>],
    key_id: i32,
}

/// The static query id of [`InsertBatch`].
struct InsertBatchId;

impl QueryId for InsertBatch<'_> {
    type QueryId = InsertBatchId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for InsertBatch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO access_log (seq, at, token_id, actor, role, action, subject, request, \
             response, reason, prev_hash, hash, key_id) SELECT *, ",
        );
        out.push_bind_param::<diesel::sql_types::Integer, _>(&self.key_id)?;
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<BigInt>, _>(self.seqs)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Timestamptz>, _>(self.ats)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(self.tokens)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(self.actors)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(self.roles)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(self.actions)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(self.subjects)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Jsonb>, _>(self.requests)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Jsonb>, _>(self.responses)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(self.reasons)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Bytea>, _>(self.prevs)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Bytea>, _>(self.hashes)?;
        out.push_sql(")");
        Ok(())
    }
}

impl RunQueryDsl<PgConnection> for InsertBatch<'_> {}

/// Appends `entries` in order after whatever the log holds now, retrying when another writer
/// got there first. Inside the caller's transaction (a savepoint per attempt), so a change and
/// its entries commit together or not at all; on its own, it commits the entries. For callers
/// that append rarely: the CLI, staff writes, tests. The API's group-commit writer keeps the
/// head instead.
pub fn append(
    conn: &mut PgConnection,
    keyring: &Keyring,
    entries: &[NewEntry],
) -> Result<Vec<Appended>, DbError> {
    loop {
        let attempt = conn.transaction::<_, AppendError, _>(|conn| {
            let h = head(conn)?;
            append_after(conn, keyring, h, entries)
        });
        match attempt {
            Ok(done) => return Ok(done),
            Err(AppendError::Moved) => continue,
            Err(AppendError::Db(e)) => return Err(e),
        }
    }
}

impl From<diesel::result::Error> for AppendError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => AppendError::Moved,
            e => AppendError::Db(e.into()),
        }
    }
}

/// Most person ids an entry lists; more are counted, not listed.
pub const LISTED_IDS: usize = 100;

/// What a list or search returned, for its entry: how many rows, how many persons, the person
/// ids (distinct, the first [`LISTED_IDS`] of them) and whether there were more; with the
/// subject `person:N` when exactly one person was returned. Every interface logs lists this way.
pub fn returned_persons(ids: impl IntoIterator<Item = i64>) -> (Option<String>, Value) {
    let mut distinct: Vec<i64> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut rows = 0usize;
    for id in ids {
        rows += 1;
        if seen.insert(id) {
            distinct.push(id);
        }
    }
    let subject = match distinct.as_slice() {
        [one] => Some(format!("person:{one}")),
        _ => None,
    };
    let persons = distinct.len();
    distinct.truncate(LISTED_IDS);
    (
        subject,
        serde_json::json!({
            "rows": rows,
            "persons": persons,
            "person_ids": distinct,
            "more": persons > LISTED_IDS,
        }),
    )
}

/// One stored entry, as read back.
#[derive(Debug, Clone, QueryableByName, serde::Serialize)]
pub struct StoredEntry {
    /// Its number in the chain.
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    /// When.
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    /// Token used.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub token_id: Option<i64>,
    /// Who.
    #[diesel(sql_type = Text)]
    pub actor: String,
    /// In which role.
    #[diesel(sql_type = Text)]
    pub role: String,
    /// What.
    #[diesel(sql_type = Text)]
    pub action: String,
    /// Whose data.
    #[diesel(sql_type = Nullable<Text>)]
    pub subject: Option<String>,
    /// What was asked.
    #[diesel(sql_type = Jsonb)]
    pub request: Value,
    /// What was answered.
    #[diesel(sql_type = Jsonb)]
    pub response: Value,
    /// Why.
    #[diesel(sql_type = Nullable<Text>)]
    pub reason: Option<String>,
    /// The previous entry's hash.
    #[diesel(sql_type = Bytea)]
    #[serde(skip)]
    pub prev_hash: Vec<u8>,
    /// This entry's link: a keyed MAC, or a SHA-256 from before the log was keyed.
    #[diesel(sql_type = Bytea)]
    #[serde(skip)]
    pub hash: Vec<u8>,
    /// The log key its link was made with; `None` for an entry from before the log was keyed.
    #[diesel(sql_type = Nullable<diesel::sql_types::Integer>)]
    #[serde(skip)]
    pub key_id: Option<i32>,
}

impl StoredEntry {
    fn unchained(&self) -> NewEntry {
        NewEntry {
            at: self.at,
            token_id: self.token_id,
            actor: self.actor.clone(),
            role: self.role.clone(),
            action: self.action.clone(),
            subject: self.subject.clone(),
            request: self.request.clone(),
            response: self.response.clone(),
            reason: self.reason.clone(),
        }
    }
}

const SELECT: &str = "SELECT seq, at, token_id, actor, role, action, subject, request, response,
        reason, prev_hash, hash, key_id FROM access_log";

/// The most recent entries, optionally only those about one subject.
pub fn recent(
    conn: &mut PgConnection,
    subject: Option<&str>,
    limit: i64,
) -> Result<Vec<StoredEntry>, DbError> {
    Ok(diesel::sql_query(format!(
        "{SELECT} WHERE ($1::text IS NULL OR subject = $1) ORDER BY seq DESC LIMIT $2"
    ))
    .bind::<Nullable<Text>, _>(subject)
    .bind::<BigInt, _>(limit)
    .load(conn)?)
}

/// What is wrong at one place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Break {
    /// The entry where the chain stops holding.
    pub seq: i64,
    /// What is wrong (see [`BreakKind`]).
    pub kind: BreakKind,
}

/// The ways the log can fail to verify.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, strum::Display, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum BreakKind {
    /// A number is skipped: entries were deleted or reordered.
    Missing,
    /// Its `prev_hash` is not the previous entry's link.
    Relinked,
    /// Its content does not give its link: edited, or forged without the key.
    Altered,
    /// An entry without a log key after the log was keyed, or under a key the key file does not
    /// hold: it cannot have been written by shikaku.
    Unkeyed,
    /// A checkpoint names an entry the log no longer has: its tail was cut.
    TailMissing,
    /// The entry at a checkpoint's number is not the one checkpointed: rewritten since.
    Rewritten,
    /// A checkpoint whose signature does not verify: the checkpoint file was tampered with.
    BadCheckpoint,
}

/// The result of checking the whole chain against the checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    /// Entries read.
    pub entries: u64,
    /// The last entry's number and link (hex).
    pub head: Option<(i64, String)>,
    /// The first keyed entry, when there is one (entries before it are from before the log
    /// was keyed).
    pub keyed_from: Option<i64>,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// The newest checkpoint's number, when there is one.
    pub checkpointed: Option<i64>,
    /// Every break found, in order of number (at most 1000 kept).
    pub breaks: Vec<Break>,
}

impl Verification {
    /// True when the chain is intact and agrees with every checkpoint.
    pub fn ok(&self) -> bool {
        self.breaks.is_empty()
    }

    /// The first bad entry, when there is one.
    pub fn first_bad(&self) -> Option<&Break> {
        self.breaks.iter().min_by_key(|b| b.seq)
    }
}

/// Reads the whole log in order, streaming, checks every link (with the keyring's log keys),
/// and then every checkpoint: its signature, and that the log still holds the entry it names
/// with the link it recorded.
pub fn verify(
    conn: &mut PgConnection,
    keyring: &Keyring,
    checkpoints: &[Checkpoint],
) -> Result<Verification, DbError> {
    let mut report = Verification {
        entries: 0,
        head: None,
        keyed_from: None,
        checkpoints: checkpoints.len(),
        checkpointed: checkpoints.iter().map(|c| c.seq).max(),
        breaks: Vec::new(),
    };
    // The links the checkpoints name, to compare on the way.
    let mut wanted: std::collections::BTreeMap<i64, Vec<&Checkpoint>> = Default::default();
    let push = |breaks: &mut Vec<Break>, seq, kind| {
        if breaks.len() < 1000 {
            breaks.push(Break { seq, kind });
        }
    };
    for c in checkpoints {
        if c.valid(keyring) {
            wanted.entry(c.seq).or_default().push(c);
        } else {
            push(&mut report.breaks, c.seq, BreakKind::BadCheckpoint);
        }
    }
    let mut expected_seq = 1i64;
    let mut prev: Vec<u8> = GENESIS.to_vec();
    let query = diesel::sql_query(format!("{SELECT} ORDER BY seq"));
    for row in query.load_iter::<StoredEntry, DefaultLoadingMode>(conn)? {
        let e = row?;
        report.entries += 1;
        if e.seq != expected_seq {
            push(&mut report.breaks, e.seq, BreakKind::Missing);
        }
        if e.prev_hash != prev {
            push(&mut report.breaks, e.seq, BreakKind::Relinked);
        }
        let entry = e.unchained();
        let computed = match e.key_id.and_then(|k| u32::try_from(k).ok()) {
            Some(k) => {
                report.keyed_from.get_or_insert(e.seq);
                link(keyring, k, e.seq, &e.prev_hash, &entry).ok()
            }
            // Unkeyed entries verify only before the first keyed one.
            None if report.keyed_from.is_none() => Some(legacy_hash(e.seq, &e.prev_hash, &entry)),
            None => None,
        };
        match computed {
            Some(h) if h.as_slice() == e.hash.as_slice() => {}
            Some(_) => push(&mut report.breaks, e.seq, BreakKind::Altered),
            None => push(&mut report.breaks, e.seq, BreakKind::Unkeyed),
        }
        if let Some(cs) = wanted.remove(&e.seq) {
            if cs.iter().any(|c| c.mac != e.hash) {
                push(&mut report.breaks, e.seq, BreakKind::Rewritten);
            }
        }
        expected_seq = e.seq + 1;
        report.head = Some((e.seq, hex::encode(&e.hash)));
        prev = e.hash;
    }
    // Checkpointed entries the walk never met: past the end (the tail was cut) or deleted.
    for seq in wanted.into_keys() {
        let kind = if report.head.as_ref().is_none_or(|(h, _)| seq > *h) {
            BreakKind::TailMissing
        } else {
            BreakKind::Missing
        };
        push(&mut report.breaks, seq, kind);
    }
    report.breaks.sort_by_key(|b| b.seq);
    Ok(report)
}
