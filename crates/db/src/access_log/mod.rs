//! The access log: who read or changed what, when, and why, append-only and hash-chained.
//!
//! Each entry's hash is SHA-256 over the previous entry's hash and a canonical encoding of the
//! entry (fixed field order, object keys sorted, times to the microsecond PostgreSQL keeps), so
//! an edited, deleted or reordered entry breaks every hash after it. The database refuses
//! UPDATE, DELETE and TRUNCATE on the table; [`verify`] catches what a superuser could still do
//! by disabling that trigger. Removing entries from the very end leaves a valid shorter chain:
//! [`Verification::head`] is printed so it can be recorded elsewhere and compared later.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::connection::DefaultLoadingMode;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bytea, Jsonb, Nullable, Text, Timestamptz};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::DbError;

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

/// The hash of `entry` as number `seq` following `prev`.
pub fn entry_hash(seq: i64, prev: &[u8], entry: &NewEntry) -> [u8; 32] {
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
    let mut h = Sha256::new();
    h.update(prev);
    h.update(&body);
    h.finalize().into()
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
    head: Head,
    entries: &[NewEntry],
) -> Result<Vec<Appended>, AppendError> {
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
        let hash = entry_hash(seq, &prev, e);
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
             response, reason, prev_hash, hash) SELECT * FROM unnest(",
        );
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
/// got there first. For callers that append rarely (tests, the CLI); the API keeps the head.
pub fn append(conn: &mut PgConnection, entries: &[NewEntry]) -> Result<Vec<Appended>, DbError> {
    loop {
        let h = head(conn)?;
        match append_after(conn, h, entries) {
            Ok(done) => return Ok(done),
            Err(AppendError::Moved) => continue,
            Err(AppendError::Db(e)) => return Err(e),
        }
    }
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
    /// This entry's hash.
    #[diesel(sql_type = Bytea)]
    #[serde(skip)]
    pub hash: Vec<u8>,
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
        reason, prev_hash, hash FROM access_log";

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
    /// `missing` (a number is skipped: deleted or reordered entries), `relinked` (its
    /// prev_hash is not the previous entry's hash) or `altered` (its content does not give its
    /// hash).
    pub kind: &'static str,
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    /// Entries read.
    pub entries: u64,
    /// The last entry's number and hash (hex), to record elsewhere.
    pub head: Option<(i64, String)>,
    /// Every break found, in order (at most 1000 kept).
    pub breaks: Vec<Break>,
}

impl Verification {
    /// True when the chain is intact.
    pub fn ok(&self) -> bool {
        self.breaks.is_empty()
    }
}

/// Reads the whole log in order, streaming, and checks every link.
pub fn verify(conn: &mut PgConnection) -> Result<Verification, DbError> {
    let mut report = Verification {
        entries: 0,
        head: None,
        breaks: Vec::new(),
    };
    let mut expected_seq = 1i64;
    let mut prev: Vec<u8> = GENESIS.to_vec();
    let query = diesel::sql_query(format!("{SELECT} ORDER BY seq"));
    for row in query.load_iter::<StoredEntry, DefaultLoadingMode>(conn)? {
        let e = row?;
        report.entries += 1;
        let mut push = |kind| {
            if report.breaks.len() < 1000 {
                report.breaks.push(Break { seq: e.seq, kind });
            }
        };
        if e.seq != expected_seq {
            push("missing");
        }
        if e.prev_hash != prev {
            push("relinked");
        }
        if entry_hash(e.seq, &e.prev_hash, &e.unchained()).as_slice() != e.hash.as_slice() {
            push("altered");
        }
        expected_seq = e.seq + 1;
        report.head = Some((e.seq, hex::encode(&e.hash)));
        prev = e.hash;
    }
    Ok(report)
}
