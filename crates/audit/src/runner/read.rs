//! Reads the registry and the register out of PostgreSQL as four single-table binary `COPY`
//! streams, each in the order of an index whose heap is laid out the same way, and joins them
//! in Rust.
//!
//! Why not one joined query: PostgreSQL runs `COPY (query)` on one core, and joining linkages
//! with persons, periods and the register by hash took 92 s of server time at 10 million
//! linkages. Each stream here is an index scan with no sort and no hash (about 4 to 9 s at 10
//! million rows), the streams run on their own connections (so both server cores work), and
//! each is decoded on its own thread. All connections read one exported snapshot
//! ([`SharedSnapshot`]), so the streams agree with each other as a single query would.
//!
//! - Linkages (by person), persons (by id) and qualification periods (by person) are merged
//!   here in person order by [`read_registry`]; that order also puts a person's numbers next to
//!   each other, which is all [`crate::engine::check_person_numbers`] needs.
//! - The register's records of the snapshot come by blind index ([`ResidentStream`]); the
//!   runner puts the linkages into blind-index order through [`super::spill`] and merges.

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::thread::Scope;

use futures_util::StreamExt;
use postgres::types::Type;
use postgres::{Client, NoTls};
use shikaku_domain::records::ResidentStatus;
use shikaku_domain::{BlindIndex, Sex};
use tokio_postgres::binary_copy::{BinaryCopyOutRow, BinaryCopyOutStream};

use shikaku_domain::{LinkageStatus, Period};

use crate::engine::{Identity, ResidentInput};

/// Rows a stream thread decodes before handing them over: large enough that the channel costs
/// nothing per row, small enough that the streams stay a few megabytes.
const STREAM_BATCH: usize = 4096;
/// Batches a stream may run ahead of its reader.
const STREAM_AHEAD: usize = 4;

/// Errors reading the streams.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database failed.
    #[error("database error while reading linkages: {0}")]
    Db(#[from] postgres::Error),
    /// A stored value broke an invariant the schema should guarantee.
    #[error("unexpected stored value: {0}")]
    Invalid(&'static str),
    /// A stream thread could not start its runtime.
    #[error("cannot start a reading thread: {0}")]
    Runtime(std::io::Error),
}

/// The planner's row estimate for `query` (a `SELECT`), from `EXPLAIN (FORMAT JSON)`; `None`
/// when the plan gives none. Used rather than `pg_class.reltuples`, which is unknown (-1) until
/// a table is first analyzed: right after a bulk import, exactly when the estimate matters.
pub fn plan_rows(client: &mut Client, query: &str) -> Result<Option<f64>, ReadError> {
    let plan = client.simple_query(&format!("EXPLAIN (FORMAT JSON) {query}"))?;
    Ok(plan.iter().find_map(|m| match m {
        postgres::SimpleQueryMessage::Row(row) => row
            .get(0)
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .and_then(|json| json[0]["Plan"]["Plan Rows"].as_f64()),
        _ => None,
    }))
}

/// A read-only transaction whose snapshot every stream connection imports
/// (`SET TRANSACTION SNAPSHOT`), as `pg_dump --jobs` does: the streams then see the database
/// as of one instant even while the registry is being edited. The snapshot lives as long as
/// this value.
pub struct SharedSnapshot {
    client: Client,
    id: String,
    url: String,
}

impl SharedSnapshot {
    /// Opens the exporting transaction on a new connection to `url`.
    pub fn open(url: &str) -> Result<Self, ReadError> {
        let mut client = Client::connect(url, NoTls)?;
        // The transaction idles while the streams work; a server-wide idle timeout must not
        // end it (the streams could no longer import the snapshot).
        client.batch_execute(
            "SET idle_in_transaction_session_timeout = 0;
             BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )?;
        let id: String = client.query_one("SELECT pg_export_snapshot()", &[])?.get(0);
        Ok(Self {
            client,
            id,
            url: url.to_string(),
        })
    }

    /// The connection holding the snapshot, for small queries that must agree with the
    /// streams.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Where streams connect to read inside the snapshot; can be sent to another thread, the
    /// snapshot's own connection cannot.
    pub fn source(&self) -> StreamSource {
        StreamSource {
            url: self.url.clone(),
            // The id comes from pg_export_snapshot(), not from a user; SET TRANSACTION
            // SNAPSHOT takes no bind parameters.
            begin: format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
                self.id.replace('\'', "")
            ),
        }
    }
}

/// How a stream connection joins a [`SharedSnapshot`]. Valid while the snapshot is open.
#[derive(Clone)]
pub struct StreamSource {
    url: String,
    begin: String,
}

/// One `COPY` decoded on its own thread into rows of type `T`, read in order.
///
/// Rows the reader is done with can be handed back ([`Stream::give_back`]) to be freed on the
/// thread that allocated them: freeing another thread's strings by the million cost the
/// allocator more than allocating them.
pub struct Stream<T> {
    rx: Receiver<Result<Vec<T>, ReadError>>,
    buf: std::vec::IntoIter<T>,
    peeked: Option<T>,
    back: Sender<Vec<T>>,
    spent: Vec<T>,
}

impl<T: Send> Stream<T> {
    /// Starts `sql` (a `COPY ... TO STDOUT (FORMAT binary)` of `types`) on a new connection in
    /// `snapshot`, decoding each row with `decode` on a thread of `scope`.
    fn spawn<'scope>(
        scope: &'scope Scope<'scope, '_>,
        source: &StreamSource,
        sql: String,
        types: &'static [Type],
        decode: fn(&BinaryCopyOutRow) -> Result<T, ReadError>,
    ) -> Self
    where
        T: 'scope,
    {
        let (tx, rx) = sync_channel(STREAM_AHEAD);
        let (back, returned) = channel();
        let url = source.url.clone();
        let begin = source.begin.clone();
        scope.spawn(move || {
            // The blocking `postgres` client enters its runtime once per row, which cost more
            // than decoding the row; one runtime per stream thread, entered once, does not.
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(ReadError::Runtime)
                .and_then(|rt| {
                    rt.block_on(pump(&url, &begin, &sql, types, decode, &tx, &returned))
                });
            if let Err(e) = result {
                // The reader may be gone already; then nobody needs the error.
                let _ = tx.send(Err(e));
            }
            drop(tx);
            // Frees what comes back until the reader is gone.
            for spent in returned {
                drop(spent);
            }
        });
        Self {
            rx,
            buf: Vec::new().into_iter(),
            peeked: None,
            back,
            spent: Vec::new(),
        }
    }

    /// Hands a row back to be freed by the stream's thread.
    pub fn give_back(&mut self, row: T) {
        self.spent.push(row);
        if self.spent.len() >= STREAM_BATCH {
            // If the thread is gone, the rows are simply freed here.
            let _ = self.back.send(std::mem::take(&mut self.spent));
        }
    }

    /// The next row, `None` at the end of the stream.
    pub fn next_row(&mut self) -> Result<Option<T>, ReadError> {
        if let Some(row) = self.peeked.take() {
            return Ok(Some(row));
        }
        loop {
            if let Some(row) = self.buf.next() {
                return Ok(Some(row));
            }
            match self.rx.recv() {
                Ok(Ok(batch)) => self.buf = batch.into_iter(),
                Ok(Err(e)) => return Err(e),
                // The thread finished: it sends its error before hanging up, and one that
                // panicked instead makes `std::thread::scope` panic when the scope ends, so a
                // stream cut short never completes a run.
                Err(_) => return Ok(None),
            }
        }
    }

    /// The next row without taking it.
    pub fn peek(&mut self) -> Result<Option<&T>, ReadError> {
        if self.peeked.is_none() {
            self.peeked = self.next_row()?;
        }
        Ok(self.peeked.as_ref())
    }
}

/// The stream thread's loop. Returns quietly when the reader hangs up.
///
/// Handing a full batch to the reader blocks this thread, runtime and all: the thread runs
/// nothing else, and the server simply waits, which is the back pressure wanted.
async fn pump<T>(
    url: &str,
    begin: &str,
    sql: &str,
    types: &[Type],
    decode: fn(&BinaryCopyOutRow) -> Result<T, ReadError>,
    tx: &SyncSender<Result<Vec<T>, ReadError>>,
    returned: &Receiver<Vec<T>>,
) -> Result<(), ReadError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    client.batch_execute(begin).await?;
    let rows = BinaryCopyOutStream::new(client.copy_out(sql).await?, types);
    let mut rows = std::pin::pin!(rows);
    let mut batch = Vec::with_capacity(STREAM_BATCH);
    while let Some(row) = rows.next().await {
        batch.push(decode(&row?)?);
        if batch.len() == STREAM_BATCH {
            while let Ok(spent) = returned.try_recv() {
                drop(spent);
            }
            let full = std::mem::replace(&mut batch, Vec::with_capacity(STREAM_BATCH));
            if tx.send(Ok(full)).is_err() {
                // The reader is gone (it failed): drop the connection mid-COPY.
                connection.abort();
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(Ok(batch));
    }
    // A clean goodbye (Terminate), so the server logs no lost connection.
    drop(client);
    let _ = connection.await;
    Ok(())
}

fn blind(row: &BinaryCopyOutRow, idx: usize) -> Result<BlindIndex, ReadError> {
    let bytes: &[u8] = row.try_get(idx)?;
    Ok(BlindIndex(bytes.try_into().map_err(|_| {
        ReadError::Invalid("blind index is not 32 bytes")
    })?))
}

fn sex(code: i16) -> Result<Sex, ReadError> {
    Sex::from_code(code).map_err(|_| ReadError::Invalid("sex code"))
}

/// A non-revoked linkage, without its person.
struct LinkageRow {
    id: i64,
    person_id: i64,
    blind: BlindIndex,
    last4: String,
    check_digit_ok: bool,
    status: LinkageStatus,
}

const LINKAGE_TYPES: &[Type] = &[
    Type::INT8,
    Type::INT8,
    Type::BYTEA,
    Type::TEXT,
    Type::BOOL,
    Type::TEXT,
];

fn linkage_row(row: &BinaryCopyOutRow) -> Result<LinkageRow, ReadError> {
    Ok(LinkageRow {
        id: row.try_get(0)?,
        person_id: row.try_get(1)?,
        blind: blind(row, 2)?,
        last4: row.try_get(3)?,
        check_digit_ok: row.try_get(4)?,
        status: LinkageStatus::parse(row.try_get(5)?)
            .ok_or(ReadError::Invalid("linkage status"))?,
    })
}

/// A person: the key in member identifier form and the five items.
struct PersonRow {
    id: i64,
    key: String,
    identity: Identity,
}

const PERSON_TYPES: &[Type] = &[
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::DATE,
    Type::INT2,
    Type::TEXT,
];

fn person_row(row: &BinaryCopyOutRow) -> Result<PersonRow, ReadError> {
    // Joined here rather than by `||` in SQL: concatenating in the server cost a third of the
    // persons stream's time.
    let mut key = String::with_capacity(40);
    for i in 1..=4 {
        if i > 1 {
            key.push(':');
        }
        key.push_str(row.try_get::<&str>(i)?);
    }
    Ok(PersonRow {
        id: row.try_get(0)?,
        key,
        identity: Identity {
            name_kanji: row.try_get(5)?,
            name_kana: Some(row.try_get(6)?),
            birth_date: row.try_get(7)?,
            sex: sex(row.try_get(8)?)?,
            address: row.try_get(9)?,
        },
    })
}

const PERIOD_TYPES: &[Type] = &[Type::INT8, Type::DATE, Type::DATE];

fn period_row(row: &BinaryCopyOutRow) -> Result<(i64, Period), ReadError> {
    Ok((
        row.try_get(0)?,
        Period::new(row.try_get(1)?, row.try_get(2)?, None),
    ))
}

/// A person holding several non-revoked numbers, for `check_person_numbers`.
pub struct PersonNumbers {
    /// The person.
    pub person_id: i64,
    /// Member identifier form of the person key.
    pub person_key: String,
    /// (last 4 digits, blind index) of each non-revoked number.
    pub numbers: Vec<(String, BlindIndex)>,
}

/// One linkage with its person, lent by [`read_registry`] (no copy of the person per linkage).
pub struct RegistryLinkage<'a> {
    /// Keyed hash of the number.
    pub blind: BlindIndex,
    /// `linkages.id`.
    pub linkage_id: i64,
    /// `persons.id`.
    pub person_id: i64,
    /// Member identifier form of the person key.
    pub person_key: &'a str,
    /// Last 4 digits of the number.
    pub last4: &'a str,
    /// Whether the number passes the check digit.
    pub check_digit_ok: bool,
    /// Active or suspended.
    pub status: LinkageStatus,
    /// The person's five items.
    pub registry: &'a Identity,
    /// Every qualification period of the person.
    pub periods: &'a [Period],
}

/// Reads every non-revoked linkage with its person and every qualification period of the
/// person, in person order, handing each to `linkage`, and each person with several numbers to
/// `several`. Returns the linkages read.
pub fn read_registry(
    source: &StreamSource,
    mut linkage: impl FnMut(&RegistryLinkage<'_>) -> Result<(), ReadError>,
    mut several: impl FnMut(PersonNumbers),
) -> Result<u64, ReadError> {
    std::thread::scope(|scope| {
        // Each ORDER BY is the order of an index (linkages_person_number, persons_pkey,
        // qualifications_person_acquired) on a heap loaded in that order, so the server walks
        // the index instead of sorting.
        let mut linkages = Stream::spawn(
            scope,
            source,
            "COPY (SELECT id, person_id, mn_blind, mn_last4, check_digit_ok, status
                   FROM linkages WHERE status <> 'revoked'
                   ORDER BY person_id, mn_blind) TO STDOUT (FORMAT binary)"
                .to_string(),
            LINKAGE_TYPES,
            linkage_row,
        );
        let mut persons = Stream::spawn(
            scope,
            source,
            "COPY (SELECT id, insurer_number, symbol, number, branch, name_kanji, name_kana,
                          birth_date, sex, address
                   FROM persons ORDER BY id) TO STDOUT (FORMAT binary)"
                .to_string(),
            PERSON_TYPES,
            person_row,
        );
        let mut periods = Stream::spawn(
            scope,
            source,
            "COPY (SELECT person_id, acquired_on, lost_on FROM qualifications
                   ORDER BY person_id, acquired_on) TO STDOUT (FORMAT binary)"
                .to_string(),
            PERIOD_TYPES,
            period_row,
        );

        let mut n = 0u64;
        let mut person: Option<PersonRow> = None;
        let mut person_periods: Vec<Period> = Vec::new();
        // The current person's linkages, kept until the person changes: only then is it known
        // whether the person has several numbers.
        let mut pending: Vec<LinkageRow> = Vec::new();
        while let Some(l) = linkages.next_row()? {
            n += 1;
            if person.as_ref().is_none_or(|p| p.id != l.person_id) {
                flush(person.as_ref(), &mut pending, &mut linkages, &mut several);
                // Persons without a linkage are passed over.
                let found = loop {
                    match persons.next_row()? {
                        Some(p) if p.id < l.person_id => persons.give_back(p),
                        Some(p) if p.id == l.person_id => break p,
                        _ => return Err(ReadError::Invalid("a linkage's person is missing")),
                    }
                };
                person_periods.clear();
                while let Some(&(pid, _)) = periods.peek()? {
                    if pid > l.person_id {
                        break;
                    }
                    if let Some((pid, period)) = periods.next_row()? {
                        if pid == l.person_id {
                            person_periods.push(period);
                        }
                    }
                }
                if let Some(old) = person.replace(found) {
                    persons.give_back(old);
                }
            }
            let Some(p) = person.as_ref() else {
                return Err(ReadError::Invalid("a linkage's person is missing"));
            };
            linkage(&RegistryLinkage {
                blind: l.blind,
                linkage_id: l.id,
                person_id: l.person_id,
                person_key: &p.key,
                last4: &l.last4,
                check_digit_ok: l.check_digit_ok,
                status: l.status,
                registry: &p.identity,
                periods: &person_periods,
            })?;
            pending.push(l);
        }
        flush(person.as_ref(), &mut pending, &mut linkages, &mut several);
        Ok(n)
    })
}

/// Ends a person in [`read_registry`]: reports the person if they hold several numbers, and
/// hands their linkage rows back to be freed.
fn flush(
    person: Option<&PersonRow>,
    pending: &mut Vec<LinkageRow>,
    linkages: &mut Stream<LinkageRow>,
    several: &mut impl FnMut(PersonNumbers),
) {
    if let (Some(p), true) = (person, pending.len() > 1) {
        several(PersonNumbers {
            person_id: p.id,
            person_key: p.key.clone(),
            numbers: pending.iter().map(|l| (l.last4.clone(), l.blind)).collect(),
        });
    }
    for l in pending.drain(..) {
        linkages.give_back(l);
    }
}

/// The register's records of one snapshot, by blind index.
pub struct ResidentStream {
    stream: Stream<(BlindIndex, ResidentInput)>,
}

const RESIDENT_TYPES: &[Type] = &[
    Type::BYTEA,
    Type::TEXT,
    Type::TEXT,
    Type::DATE,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
];

fn resident_row(row: &BinaryCopyOutRow) -> Result<(BlindIndex, ResidentInput), ReadError> {
    Ok((
        blind(row, 0)?,
        ResidentInput {
            identity: Identity {
                name_kanji: row.try_get(1)?,
                name_kana: row.try_get(2)?,
                birth_date: row.try_get(3)?,
                sex: sex(row.try_get(4)?)?,
                address: row.try_get(5)?,
            },
            status: match row.try_get::<&str>(6)? {
                "removed" => ResidentStatus::Removed,
                _ => ResidentStatus::Active,
            },
        },
    ))
}

impl ResidentStream {
    /// Starts streaming snapshot `snapshot_id` (none: an empty stream) on a thread of `scope`.
    pub fn spawn<'scope>(
        scope: &'scope Scope<'scope, '_>,
        source: &StreamSource,
        snapshot_id: Option<i64>,
    ) -> Self {
        // The records are stored in blind-index order per snapshot (the import inserts them
        // so), so the primary key walk reads the heap front to back.
        let sql = format!(
            "COPY (SELECT mn_blind, name_kanji, name_kana, birth_date, sex, address, status
                   FROM resident_records WHERE snapshot_id = {}
                   ORDER BY mn_blind) TO STDOUT (FORMAT binary)",
            snapshot_id.map_or_else(|| "NULL".to_string(), |id| id.to_string())
        );
        Self {
            stream: Stream::spawn(scope, source, sql, RESIDENT_TYPES, resident_row),
        }
    }

    /// Hands a record back to be freed by the stream's thread.
    pub fn give_back(&mut self, blind: BlindIndex, record: ResidentInput) {
        self.stream.give_back((blind, record));
    }

    /// The record of `blind`, if the register has it. Calls must come in ascending blind order;
    /// records passed over (numbers nobody is linked to) are dropped.
    pub fn find(&mut self, blind: &BlindIndex) -> Result<Option<ResidentInput>, ReadError> {
        while let Some((b, _)) = self.stream.peek()? {
            if b > blind {
                return Ok(None);
            }
            if let Some((b, r)) = self.stream.next_row()? {
                if &b == blind {
                    return Ok(Some(r));
                }
                self.stream.give_back((b, r));
            }
        }
        Ok(None)
    }
}
