//! Reading an input file: the header checked against its columns, rows read in batches and
//! validated in parallel (in order), line numbers exact on CRLF files, and unreadable records
//! reported without echoing them. Shared by the imports and by files that are only read (the
//! card-registration status file).

use std::io::Read;

use rayon::prelude::*;
use shikaku_domain::records::{self, FieldError, FileSpec, Layout, Warning};

use super::{Counter, ImportContext, ImportError, IssueSink};

/// Rows validated together; large enough to keep both cores busy and COPY round trips rare,
/// small enough that memory does not depend on the file.
const BATCH_ROWS: usize = 8192;

/// One validated row, ready for staging, with the warnings it raised.
pub(crate) type Checked<T> = Result<(T, Vec<Warning>), Vec<FieldError>>;

/// Reads `input` as a `spec` file, validates every row with `check` on the rayon pool, and hands each
/// batch of valid staging rows to `stage`. Returns the number of data rows read.
///
/// Unreadable records (bad UTF-8, a wrong number of fields) are reported with their line and
/// do not stop the pass, so one run lists every problem in the file.
pub(super) fn stream_rows<R, T>(
    input: R,
    spec: FileSpec,
    ctx: &ImportContext<'_>,
    counter: &mut Counter<'_>,
    check: impl Fn(&Layout, u64, &csv::StringRecord) -> Checked<T> + Sync,
    mut stage: impl FnMut(&[T]) -> Result<(), ImportError>,
) -> Result<u64, ImportError>
where
    R: Read,
    T: Send,
{
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(CrlfToLf::new(input));
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            counter.error(1, "header", describe_csv_error(&e));
            return Ok(0);
        }
    };
    let layout = match records::layout(spec, &header) {
        Ok(layout) => layout,
        Err(errors) => {
            counter.field_errors(1, errors);
            return Ok(0);
        }
    };

    let mut rows_read = 0u64;
    let mut batch: Vec<(u64, csv::StringRecord)> = Vec::with_capacity(BATCH_ROWS);
    let mut checked: Vec<Checked<T>> = Vec::with_capacity(BATCH_ROWS);
    let mut valid: Vec<T> = Vec::with_capacity(BATCH_ROWS);
    let mut spare: Vec<csv::StringRecord> = Vec::new();
    loop {
        // Refill the batch, reusing record buffers from the previous one.
        let mut eof = false;
        while batch.len() < BATCH_ROWS {
            let mut record = spare.pop().unwrap_or_default();
            match reader.read_record(&mut record) {
                Ok(true) => {
                    rows_read += 1;
                    // The position is where the read began, before any blank lines the parser
                    // skipped; the line after the record, less its own line breaks, is exact
                    // (the max covers a last record with no line break after it).
                    let begun = record.position().map_or(0, |p| p.line());
                    let breaks: usize = record.iter().map(|f| f.matches('\n').count()).sum();
                    let line = begun.max(
                        reader
                            .position()
                            .line()
                            .saturating_sub(u64::try_from(breaks).unwrap_or(0) + 1),
                    );
                    batch.push((line, record));
                }
                Ok(false) => {
                    eof = true;
                    break;
                }
                Err(e) => {
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        return Err(ImportError::Read(e.to_string()));
                    }
                    rows_read += 1;
                    let line = e.position().map_or(0, |p| p.line());
                    counter.error(line, "record", describe_csv_error(&e));
                }
            }
        }
        if batch.is_empty() && eof {
            break;
        }

        batch
            .par_iter()
            .map(|(line, record)| check(&layout, *line, record))
            .collect_into_vec(&mut checked);
        for ((line, record), result) in batch.drain(..).zip(checked.drain(..)) {
            spare.push(record);
            match result {
                Ok((row, warnings)) => {
                    counter.field_warnings(line, warnings);
                    valid.push(row);
                }
                Err(errors) => counter.field_errors(line, errors),
            }
        }
        if !valid.is_empty() {
            stage(&valid)?;
            valid.clear();
        }
        (ctx.progress)(reader.get_ref().bytes_read);
        if eof {
            break;
        }
    }
    Ok(rows_read)
}

/// Reads a whole (small) file of `spec` with the import's reader (header checks, exact line
/// numbers on CRLF files, parallel validation) and returns its valid rows, reporting every
/// problem to `sink`; for files that are read rather than imported, such as the monthly
/// card-registration status file. Returns the rows and the number of errors reported.
pub(crate) fn read_all<R, T>(
    input: R,
    spec: FileSpec,
    sink: &mut dyn IssueSink,
    check: impl Fn(&Layout, u64, &csv::StringRecord) -> Checked<T> + Sync,
) -> Result<(Vec<T>, u64), ImportError>
where
    R: Read,
    T: Send + Clone,
{
    let ctx = ImportContext {
        actor: "",
        file_name: spec.name,
        progress: &|_| {},
        today: crate::today_tokyo(),
    };
    let mut counter = Counter::new(sink);
    let mut rows = Vec::new();
    stream_rows(input, spec, &ctx, &mut counter, check, |batch| {
        rows.extend_from_slice(batch);
        Ok(())
    })?;
    Ok((rows, counter.errors))
}

/// Hands the csv parser LF line ends. With CRLF, csv-core ends a record at the CR and counts
/// the LF only while reading the next record, so every record's `position().line()` comes out
/// one short (BurntSushi/rust-csv#395) and every issue in a CRLF file would name the wrong line.
/// A CR directly before an LF is dropped; any other CR is passed on unchanged.
struct CrlfToLf<R> {
    inner: std::io::BufReader<R>,
    /// A CR was read and held back until the next byte shows whether an LF follows.
    held_cr: bool,
    /// Bytes taken from the input (before conversion), for progress against the file size.
    bytes_read: u64,
}

impl<R: Read> CrlfToLf<R> {
    fn new(input: R) -> Self {
        CrlfToLf {
            inner: std::io::BufReader::new(input),
            held_cr: false,
            bytes_read: 0,
        }
    }
}

impl<R: Read> Read for CrlfToLf<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.inner.fill_buf()?;
            if input.is_empty() {
                // End of input: a held CR was not followed by an LF.
                return Ok(if std::mem::take(&mut self.held_cr) {
                    out[0] = b'\r';
                    1
                } else {
                    0
                });
            }
            let (mut used, mut n) = (0, 0);
            while used < input.len() && n < out.len() {
                let b = input[used];
                if std::mem::take(&mut self.held_cr) && b != b'\n' {
                    // A lone CR: emit it and look at `b` again.
                    out[n] = b'\r';
                    n += 1;
                    continue;
                }
                used += 1;
                if b == b'\r' {
                    self.held_cr = true;
                } else {
                    out[n] = b;
                    n += 1;
                }
            }
            self.inner.consume(used);
            self.bytes_read += used as u64;
            // Only a held CR came in: read on rather than signal the end with Ok(0).
            if n > 0 {
                return Ok(n);
            }
        }
    }
}

/// A csv error in words, without echoing the record (it may hold a My Number).
fn describe_csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} fields as in the header, found {len}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8 (files must be UTF-8)".to_string(),
        csv::ErrorKind::Io(err) => format!("read error: {err}"),
        _ => "malformed CSV record".to_string(),
    }
}
