//! Puts the linkages, read in person order, into blind-index order without holding them all in
//! memory: each linkage goes to one of N temporary files chosen by the leading bits of its
//! blind index, so file k holds a range of blind indexes and the files follow each other in
//! blind order; each file is small enough to read back and sort in memory on its own. The
//! blind index is an HMAC, so the files come out the same size.
//!
//! The files hold names, birth dates, addresses, person keys and qualification periods (never a
//! number: only its blind index and last 4 digits), so they are unnamed files in the system
//! temporary directory (`TMPDIR`; `O_TMPFILE` on Linux, otherwise unlinked at once), readable
//! by the owner only: nothing else can open them, and the kernel reclaims them when the process
//! ends, however it ends (a kill or a crash included). Each is also freed as soon as it is read.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use shikaku_domain::{BlindIndex, Sex};

use super::read::RegistryLinkage;
use shikaku_domain::{LinkageStatus, Period};

use crate::engine::{Identity, LinkageInput};

/// Linkages per file the file count aims at by default: about 30 MB of memory when a file is
/// read back, and about 100 files at 10 million linkages.
pub const ROWS_PER_FILE: u64 = 100_000;
/// At most this many files are open at once: half the usual limit of 1,024 open files, leaving
/// room for connections (about 50 million linkages per file at 100 million).
const MAX_BUCKETS: usize = 512;

/// Errors of the temporary files.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    /// The file system refused.
    #[error("cannot use the audit's temporary files in {dir} (TMPDIR): {source}")]
    Io {
        /// The directory of the files.
        dir: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A file did not read back as it was written.
    #[error("the audit's temporary file number {file} is damaged: {source}")]
    Format {
        /// Which file.
        file: usize,
        /// What failed.
        source: postcard::Error,
    },
}

/// One linkage as written to a file. [`Record`] reads back what this writes: the two must
/// keep the same fields in the same order.
#[derive(Serialize)]
struct RecordRef<'a> {
    blind: [u8; 32],
    linkage_id: i64,
    person_id: i64,
    person_key: &'a str,
    last4: &'a str,
    check_digit_ok: bool,
    suspended: bool,
    name_kanji: &'a str,
    name_kana: Option<&'a str>,
    birth_date: i32,
    sex: i16,
    address: Option<&'a str>,
    periods: PeriodsRef<'a>,
}

/// The periods written as a sequence of `(acquired, lost)` day numbers without collecting them.
struct PeriodsRef<'a>(&'a [Period]);

impl Serialize for PeriodsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .iter()
                .map(|p| (days(p.acquired_on), p.lost_on.map(days))),
        )
    }
}

/// One linkage as read back (see [`RecordRef`]).
#[derive(Deserialize)]
struct Record<'a> {
    blind: [u8; 32],
    linkage_id: i64,
    person_id: i64,
    #[serde(borrow)]
    person_key: Cow<'a, str>,
    #[serde(borrow)]
    last4: Cow<'a, str>,
    check_digit_ok: bool,
    suspended: bool,
    #[serde(borrow)]
    name_kanji: Cow<'a, str>,
    #[serde(borrow)]
    name_kana: Option<Cow<'a, str>>,
    birth_date: i32,
    sex: i16,
    #[serde(borrow)]
    address: Option<Cow<'a, str>>,
    periods: Vec<(i32, Option<i32>)>,
}

fn days(d: NaiveDate) -> i32 {
    d.num_days_from_ce()
}

fn date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days)
}

/// The file of `blind` among `n`: the leading 16 bits scaled, so a file is a range.
fn bucket_of(blind: &BlindIndex, n: usize) -> usize {
    (usize::from(u16::from_be_bytes([blind.0[0], blind.0[1]])) * n) >> 16
}

fn io_error(source: std::io::Error) -> SpillError {
    SpillError::Io {
        dir: std::env::temp_dir(),
        source,
    }
}

/// The files being written.
pub struct Spill {
    files: Vec<BufWriter<File>>,
    /// One record's bytes, reused.
    buf: Vec<u8>,
}

impl Spill {
    /// Opens enough files for about `expected` linkages at `rows_per_file` each (at most
    /// 512 files).
    pub fn new(expected: u64, rows_per_file: u64) -> Result<Self, SpillError> {
        let n = usize::try_from(expected / rows_per_file.max(1) + 1)
            .unwrap_or(MAX_BUCKETS)
            .clamp(1, MAX_BUCKETS);
        // tempfile() creates the file with mode 0600 and no name.
        let files = (0..n)
            .map(|_| tempfile::tempfile().map(|f| BufWriter::with_capacity(1 << 16, f)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_error)?;
        Ok(Self {
            files,
            buf: Vec::with_capacity(512),
        })
    }

    /// Writes one linkage.
    pub fn push(&mut self, l: &RegistryLinkage<'_>) -> Result<(), SpillError> {
        let record = RecordRef {
            blind: l.blind.0,
            linkage_id: l.linkage_id,
            person_id: l.person_id,
            person_key: l.person_key,
            last4: l.last4,
            check_digit_ok: l.check_digit_ok,
            suspended: l.status == LinkageStatus::Suspended,
            name_kanji: &l.registry.name_kanji,
            name_kana: l.registry.name_kana.as_deref(),
            birth_date: days(l.registry.birth_date),
            sex: l.registry.sex.code(),
            address: l.registry.address.as_deref(),
            periods: PeriodsRef(l.periods),
        };
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let buf =
            postcard::to_extend(&record, buf).map_err(|e| io_error(std::io::Error::other(e)))?;
        let n = self.files.len();
        let written = self.files[bucket_of(&l.blind, n)].write_all(&buf);
        self.buf = buf;
        written.map_err(io_error)
    }

    /// Flushes the files for reading back.
    pub fn finish(self) -> Result<SpillReader, SpillError> {
        let files = self
            .files
            .into_iter()
            .map(|f| {
                f.into_inner()
                    .map(Some)
                    .map_err(|e| io_error(e.into_error()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SpillReader {
            files,
            buf: Vec::new(),
        })
    }
}

/// The written files, read back one at a time in blind order.
pub struct SpillReader {
    /// `None` once read (and freed).
    files: Vec<Option<File>>,
    /// The file being read, reused from file to file.
    buf: Vec<u8>,
}

impl SpillReader {
    /// How many files there are.
    pub fn buckets(&self) -> usize {
        self.files.len()
    }

    /// The linkages of file `i`, sorted by blind index and then linkage id, and frees the file
    /// (a file taken again is empty).
    pub fn take(&mut self, i: usize) -> Result<Vec<(BlindIndex, LinkageInput)>, SpillError> {
        let mut bytes = std::mem::take(&mut self.buf);
        bytes.clear();
        // Taken out, so the file is closed and its space freed when this returns.
        if let Some(mut file) = self.files.get_mut(i).and_then(Option::take) {
            file.seek(SeekFrom::Start(0))
                .and_then(|_| file.read_to_end(&mut bytes))
                .map_err(io_error)?;
        }
        let damaged = |source| SpillError::Format { file: i, source };
        let mut out = Vec::new();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let (r, tail) = postcard::take_from_bytes::<Record<'_>>(rest).map_err(damaged)?;
            rest = tail;
            let bad_value = || damaged(postcard::Error::DeserializeBadEncoding);
            let periods = r
                .periods
                .iter()
                .map(|&(a, l)| {
                    Ok(Period::new(
                        date(a).ok_or_else(bad_value)?,
                        l.map(|l| date(l).ok_or_else(bad_value)).transpose()?,
                        None,
                    ))
                })
                .collect::<Result<Vec<_>, SpillError>>()?;
            out.push((
                BlindIndex(r.blind),
                LinkageInput {
                    linkage_id: r.linkage_id,
                    person_id: r.person_id,
                    person_key: r.person_key.into_owned(),
                    last4: r.last4.into_owned(),
                    check_digit_ok: r.check_digit_ok,
                    status: if r.suspended {
                        LinkageStatus::Suspended
                    } else {
                        LinkageStatus::Active
                    },
                    registry: Identity {
                        name_kanji: r.name_kanji.into_owned(),
                        name_kana: r.name_kana.map(Cow::into_owned),
                        birth_date: date(r.birth_date).ok_or_else(bad_value)?,
                        sex: Sex::from_code(r.sex).map_err(|_| bad_value())?,
                        address: r.address.map(Cow::into_owned),
                    },
                    periods,
                },
            ));
        }
        self.buf = bytes;
        // The leading 8 bytes decide nearly every comparison; comparing them as one integer
        // first is cheaper than comparing the whole 32-byte arrays.
        let prefix = |b: &BlindIndex| {
            u64::from_be_bytes([
                b.0[0], b.0[1], b.0[2], b.0[3], b.0[4], b.0[5], b.0[6], b.0[7],
            ])
        };
        out.sort_unstable_by(|(a, x), (b, y)| {
            prefix(a)
                .cmp(&prefix(b))
                .then_with(|| a.0.cmp(&b.0))
                .then(x.linkage_id.cmp(&y.linkage_id))
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn push(spill: &mut Spill, blind: BlindIndex, l: &LinkageInput) {
        spill
            .push(&RegistryLinkage {
                blind,
                linkage_id: l.linkage_id,
                person_id: l.person_id,
                person_key: &l.person_key,
                last4: &l.last4,
                check_digit_ok: l.check_digit_ok,
                status: l.status,
                registry: &l.registry,
                periods: &l.periods,
            })
            .unwrap();
    }

    fn linkage(id: i64) -> LinkageInput {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        LinkageInput {
            linkage_id: id,
            person_id: id * 10,
            person_key: format!("06130012:記号:{id}:01"),
            last4: "1234".into(),
            check_digit_ok: id % 2 == 0,
            status: if id % 3 == 0 {
                LinkageStatus::Suspended
            } else {
                LinkageStatus::Active
            },
            registry: Identity {
                name_kanji: "髙橋 一郎".into(),
                name_kana: (id % 2 == 0).then(|| "タカハシ イチロウ".into()),
                birth_date: d(1980, 2, 29),
                sex: Sex::Male,
                address: (id % 4 != 0).then(|| "東京都千代田区1-1".into()),
            },
            periods: vec![
                Period::new(d(2001, 4, 1), Some(d(2010, 3, 31)), None),
                Period::new(d(2012, 1, 1), None, None),
            ],
        }
    }

    #[test]
    fn linkages_come_back_whole_in_blind_order() {
        let mut spill = Spill::new(1_000_000, ROWS_PER_FILE).unwrap();
        let mut written = Vec::new();
        for id in 0..2_000i64 {
            // A spread of blind indexes, two linkages sharing each.
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(
                &((id / 2) as u64)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .to_be_bytes(),
            );
            let l = linkage(id);
            push(&mut spill, BlindIndex(b), &l);
            written.push((BlindIndex(b), l));
        }
        let mut reader = spill.finish().unwrap();
        assert!(reader.buckets() > 1);
        let mut read = Vec::new();
        for i in 0..reader.buckets() {
            read.extend(reader.take(i).unwrap());
        }
        written.sort_by_key(|(b, l)| (b.0, l.linkage_id));
        assert_eq!(read, written);
    }

    #[test]
    fn a_file_is_freed_once_read() {
        let mut spill = Spill::new(10, ROWS_PER_FILE).unwrap();
        push(&mut spill, BlindIndex([7; 32]), &linkage(1));
        let mut reader = spill.finish().unwrap();
        assert_eq!(reader.buckets(), 1);
        assert_eq!(reader.take(0).unwrap().len(), 1);
        assert!(reader.files[0].is_none());
        assert!(reader.take(0).unwrap().is_empty());
    }
}
