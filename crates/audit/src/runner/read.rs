//! Streams every audited linkage out of PostgreSQL with binary `COPY`, already joined with its
//! person, the person's qualification periods and the register entry of the latest snapshot.
//!
//! No global sort: numbers linked to more than one person (a small set, found first with a hash
//! aggregate) are flagged in the stream and gathered into groups on the side; every other
//! linkage is a group of its own and is checked as soon as its batch is full.

use chrono::NaiveDate;
use postgres::binary_copy::BinaryCopyOutIter;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::Type;
use shikaku_domain::records::ResidentStatus;
use shikaku_domain::{BlindIndex, Sex};

use crate::engine::{Identity, LinkageInput, LinkageStatus, Period, ResidentInput};

/// One row of the stream: a linkage ready for the engine, its number's blind index, the
/// register entry for that number (if any) and whether the number is linked to several persons.
pub struct StreamRow {
    /// Keyed hash of the number.
    pub blind: BlindIndex,
    /// The linkage with its person.
    pub linkage: LinkageInput,
    /// The register's record of the number.
    pub resident: Option<ResidentInput>,
    /// The number is also linked to another person.
    pub shared: bool,
}

/// Errors reading the stream.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database failed.
    #[error("database error while reading linkages: {0}")]
    Db(#[from] postgres::Error),
    /// A stored value broke an invariant the schema should guarantee.
    #[error("unexpected stored value: {0}")]
    Invalid(&'static str),
}

const COLUMNS: [Type; 22] = [
    Type::INT8,       // linkage id
    Type::INT8,       // person id
    Type::BYTEA,      // blind index
    Type::TEXT,       // last4
    Type::BOOL,       // check digit ok
    Type::TEXT,       // linkage status
    Type::TEXT,       // person key (member identifier form)
    Type::TEXT,       // name_kanji
    Type::TEXT,       // name_kana
    Type::DATE,       // birth_date
    Type::INT2,       // sex
    Type::TEXT,       // address
    Type::DATE_ARRAY, // acquired_on, in order
    Type::DATE_ARRAY, // lost_on, same order
    Type::BOOL,       // shared number
    Type::BOOL,       // register entry present
    Type::TEXT,       // register name_kanji
    Type::TEXT,       // register name_kana
    Type::DATE,       // register birth_date
    Type::INT2,       // register sex
    Type::TEXT,       // register address
    Type::TEXT,       // register status
];

/// The stream's query. Each linkage comes with at most one qualification period: the one in
/// force on the run date (periods never overlap, so there is at most one). That is all the
/// engine needs of a number linked to one person (is the person eligible?); the full history of
/// persons whose number is shared is fetched separately ([`periods_of`]), because only there do
/// periods of different persons need comparing. Aggregating every person's periods into arrays
/// cost most of the server's time at a million linkages.
fn copy_sql(snapshot_id: Option<i64>, run_date: NaiveDate) -> String {
    let snapshot = snapshot_id.map_or_else(|| "NULL".to_string(), |id| id.to_string());
    format!(
        "COPY (
           WITH shared AS (
             SELECT mn_blind FROM linkages WHERE status <> 'revoked'
             GROUP BY mn_blind HAVING min(person_id) <> max(person_id)
           )
           SELECT l.id, l.person_id, l.mn_blind, l.mn_last4, l.check_digit_ok, l.status,
                  p.insurer_number || ':' || p.symbol || ':' || p.number || ':' || p.branch,
                  p.name_kanji, p.name_kana, p.birth_date, p.sex, p.address,
                  CASE WHEN q.person_id IS NULL THEN '{{}}'::date[] ELSE ARRAY[q.acquired_on] END,
                  CASE WHEN q.person_id IS NULL THEN '{{}}'::date[] ELSE ARRAY[q.lost_on] END,
                  s.mn_blind IS NOT NULL,
                  r.mn_blind IS NOT NULL, r.name_kanji, r.name_kana, r.birth_date, r.sex,
                  r.address, r.status
           FROM linkages l
           JOIN persons p ON p.id = l.person_id
           LEFT JOIN qualifications q ON q.person_id = l.person_id
                AND q.acquired_on <= DATE '{run_date}'
                AND (q.lost_on IS NULL OR q.lost_on > DATE '{run_date}')
           LEFT JOIN shared s ON s.mn_blind = l.mn_blind
           LEFT JOIN resident_records r ON r.snapshot_id = {snapshot} AND r.mn_blind = l.mn_blind
           WHERE l.status <> 'revoked'
         ) TO STDOUT (FORMAT binary)"
    )
}

/// Every qualification period of the given persons, in start order, keyed by person.
pub fn periods_of(
    client: &mut postgres::Client,
    person_ids: &[i64],
) -> Result<std::collections::HashMap<i64, Vec<Period>>, ReadError> {
    let mut out: std::collections::HashMap<i64, Vec<Period>> = std::collections::HashMap::new();
    for row in client.query(
        "SELECT person_id, acquired_on, lost_on FROM qualifications
         WHERE person_id = ANY($1) ORDER BY person_id, acquired_on",
        &[&person_ids],
    )? {
        out.entry(row.try_get(0)?).or_default().push(Period {
            acquired_on: row.try_get(1)?,
            lost_on: row.try_get(2)?,
        });
    }
    Ok(out)
}

/// Streams every audited linkage into `sink`, in no particular order. Returns the rows read.
pub fn stream_linkages(
    client: &mut postgres::Client,
    snapshot_id: Option<i64>,
    run_date: NaiveDate,
    mut sink: impl FnMut(StreamRow) -> Result<(), ReadError>,
) -> Result<u64, ReadError> {
    let reader = client.copy_out(copy_sql(snapshot_id, run_date).as_str())?;
    let mut rows = BinaryCopyOutIter::new(reader, &COLUMNS);
    let mut n = 0u64;
    while let Some(row) = rows.next()? {
        n += 1;
        let blind_bytes: &[u8] = row.try_get(2)?;
        let blind = BlindIndex(
            blind_bytes
                .try_into()
                .map_err(|_| ReadError::Invalid("blind index is not 32 bytes"))?,
        );
        let status =
            LinkageStatus::parse(row.try_get(5)?).ok_or(ReadError::Invalid("linkage status"))?;
        let acquired: Vec<NaiveDate> = row.try_get(12)?;
        let lost: Vec<Option<NaiveDate>> = row.try_get(13)?;
        let periods = acquired
            .into_iter()
            .zip(lost)
            .map(|(acquired_on, lost_on)| Period {
                acquired_on,
                lost_on,
            })
            .collect();
        let linkage = LinkageInput {
            linkage_id: row.try_get(0)?,
            person_id: row.try_get(1)?,
            person_key: row.try_get::<&str>(6)?.to_string(),
            last4: row.try_get::<&str>(3)?.to_string(),
            check_digit_ok: row.try_get(4)?,
            status,
            registry: Identity {
                name_kanji: row.try_get::<&str>(7)?.to_string(),
                name_kana: Some(row.try_get::<&str>(8)?.to_string()),
                birth_date: row.try_get(9)?,
                sex: sex(row.try_get(10)?)?,
                address: row.try_get::<Option<&str>>(11)?.map(str::to_string),
            },
            periods,
        };
        let resident = if row.try_get::<bool>(15)? {
            Some(ResidentInput {
                identity: Identity {
                    name_kanji: row.try_get::<&str>(16)?.to_string(),
                    name_kana: row.try_get::<Option<&str>>(17)?.map(str::to_string),
                    birth_date: row.try_get(18)?,
                    sex: sex(row.try_get(19)?)?,
                    address: row.try_get::<Option<&str>>(20)?.map(str::to_string),
                },
                status: match row.try_get::<&str>(21)? {
                    "removed" => ResidentStatus::Removed,
                    _ => ResidentStatus::Active,
                },
            })
        } else {
            None
        };
        sink(StreamRow {
            blind,
            linkage,
            resident,
            shared: row.try_get(14)?,
        })?;
    }
    Ok(n)
}

fn sex(code: i16) -> Result<Sex, ReadError> {
    Sex::from_code(code).map_err(|_| ReadError::Invalid("sex code"))
}

/// A person holding several active numbers, for `check_person_numbers`.
pub struct PersonNumbers {
    /// The person.
    pub person_id: i64,
    /// Member identifier form of the person key.
    pub person_key: String,
    /// (last 4 digits, blind index) of each non-revoked number.
    pub numbers: Vec<(String, BlindIndex)>,
}

/// The numbers of the given persons (their non-revoked linkages), for `check_person_numbers`.
/// The runner finds the candidates itself while streaming (a person id seen twice), so this
/// query only touches their rows, through the `(person_id, mn_blind)` index.
pub fn numbers_of(
    client: &mut postgres::Client,
    person_ids: &[i64],
) -> Result<Vec<PersonNumbers>, ReadError> {
    let rows = client.query(
        "SELECT l.person_id,
                p.insurer_number || ':' || p.symbol || ':' || p.number || ':' || p.branch,
                array_agg(l.mn_last4 ORDER BY l.mn_blind), array_agg(l.mn_blind ORDER BY l.mn_blind)
         FROM linkages l JOIN persons p ON p.id = l.person_id
         WHERE l.person_id = ANY($1) AND l.status <> 'revoked'
         GROUP BY l.person_id, p.insurer_number, p.symbol, p.number, p.branch
         ORDER BY l.person_id",
        &[&person_ids],
    )?;
    rows.iter()
        .map(|row| {
            let last4: Vec<String> = row.try_get(2)?;
            let blinds: Vec<Vec<u8>> = row.try_get(3)?;
            let numbers = last4
                .into_iter()
                .zip(blinds)
                .map(|(l, b)| {
                    let bytes: [u8; 32] = b
                        .try_into()
                        .map_err(|_| ReadError::Invalid("blind index is not 32 bytes"))?;
                    Ok((l, BlindIndex(bytes)))
                })
                .collect::<Result<Vec<_>, ReadError>>()?;
            Ok(PersonNumbers {
                person_id: row.try_get(0)?,
                person_key: row.try_get(1)?,
                numbers,
            })
        })
        .collect()
}
