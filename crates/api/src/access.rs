//! Group commit for the access log. Handlers hand their entries to one writer thread and wait;
//! the writer takes everything that queued up while its previous commit was flushing, appends
//! it with one INSERT that commits on its own (synchronously: durable on disk; one round trip,
//! as the writer keeps the chain's head in memory) and only then releases the waiting
//! responses. Under load one fsync covers hundreds of answers, so logging every read
//! costs little, yet no answer leaves before its entry is stored.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use diesel::{Connection, PgConnection};
use shikaku_db::access_log::{self, NewEntry};
use shikaku_domain::Keyring;
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Entries waiting beyond this many jobs are refused with 503 rather than queued without
/// bound while the database is away.
const QUEUE: usize = 50_000;
/// Most entries in one transaction.
const MAX_BATCH: usize = 5_000;

struct Job {
    entries: Vec<NewEntry>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle handlers use; cheap to clone. The writer thread stops when every handle is gone,
/// after writing what was queued.
#[derive(Clone)]
pub struct AccessLog {
    tx: SyncSender<Job>,
    wait: Duration,
    /// The writer thread, for whoever waits for the last entries at shutdown.
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl AccessLog {
    /// Starts the writer thread for the database at `url`, chaining entries with `keyring`'s
    /// log key.
    pub fn start(url: &str, metrics: Metrics, keyring: Arc<Keyring>) -> AccessLog {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let url = url.to_string();
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer(&url, &rx, &metrics, &keyring));
        let thread = match spawned {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the access-log writer");
                None
            }
        };
        AccessLog {
            tx,
            wait: Duration::from_secs(10),
            thread: Arc::new(Mutex::new(thread)),
        }
    }

    /// The writer thread's handle, taken once: the thread ends after every handle to the log
    /// is dropped and what was queued is written, so joining it after dropping the service's
    /// state waits for the last entries.
    pub fn take_thread(&self) -> Option<JoinHandle<()>> {
        self.thread.lock().ok().and_then(|mut t| t.take())
    }

    /// Records `entries` and returns once they are committed. 503 when the log cannot be
    /// written: an answer that cannot be accounted for is not given.
    pub async fn record(&self, entries: Vec<NewEntry>) -> Result<(), ApiError> {
        if entries.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        match self.tx.try_send(Job { entries, done }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(ApiError::Unavailable("the access log is backed up".into()))
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(ApiError::Unavailable(
                    "the access log is not running".into(),
                ))
            }
        }
        match tokio::time::timeout(self.wait, wait).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => {
                tracing::warn!(error = %e, "access log write failed");
                Err(ApiError::Unavailable(
                    "the access log cannot be written".into(),
                ))
            }
            Ok(Err(_)) | Err(_) => Err(ApiError::Unavailable(
                "the access log did not answer in time".into(),
            )),
        }
    }
}

fn writer(url: &str, rx: &Receiver<Job>, metrics: &Metrics, keyring: &Keyring) {
    let mut conn: Option<PgConnection> = None;
    // The chain's head as this writer last left it; read again after any failure.
    let mut head: Option<access_log::Head> = None;
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut n = jobs[0].entries.len();
        while n < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    n += job.entries.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let result = write(url, keyring, &mut conn, &mut head, &jobs);
        if result.is_ok() {
            metrics.access_log_batches.inc();
            metrics
                .access_log_entries
                .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
            for job in jobs {
                let _ = job.done.send(Ok(()));
            }
            continue;
        }
        // Drop the connection and the head: the next write reconnects and re-reads, so a
        // restarted server is picked up without restarting the service.
        conn = None;
        head = None;
        if jobs.len() == 1 {
            for job in jobs {
                let _ = job.done.send(result.clone());
            }
            continue;
        }
        // One job the database refuses must not fail everyone else's answers: write each job
        // on its own, so only the one that cannot be stored fails.
        for job in jobs {
            let alone = std::slice::from_ref(&job);
            let r = write(url, keyring, &mut conn, &mut head, alone);
            if r.is_err() {
                conn = None;
                head = None;
            }
            let _ = job.done.send(r);
        }
    }
}

fn write(
    url: &str,
    keyring: &Keyring,
    conn: &mut Option<PgConnection>,
    head: &mut Option<access_log::Head>,
    jobs: &[Job],
) -> Result<(), String> {
    if conn.is_none() {
        *conn = Some(PgConnection::establish(url).map_err(|e| e.to_string())?);
    }
    let Some(c) = conn.as_mut() else {
        return Err("no connection".into());
    };
    let entries: Vec<NewEntry> = jobs
        .iter()
        .flat_map(|j| j.entries.iter().cloned())
        .collect();
    // Another server may append too: on a stale head, re-read it and try again.
    for _ in 0..5 {
        let known = match *head {
            Some(h) => h,
            None => access_log::head(c).map_err(|e| e.to_string())?,
        };
        match access_log::append_after(c, keyring, known, &entries) {
            Ok(done) => {
                *head = done.last().map(|a| (a.seq, a.hash)).or(Some(known));
                return Ok(());
            }
            Err(access_log::AppendError::Moved) => *head = None,
            Err(access_log::AppendError::Db(e)) => return Err(e.to_string()),
        }
    }
    Err("the access log kept moving; too many writers".into())
}

/// An entry for `caller` doing `action` about `subject`.
pub fn entry(
    caller: &crate::auth::Caller,
    action: &str,
    subject: Option<String>,
    request: serde_json::Value,
    response: serde_json::Value,
    reason: Option<&str>,
) -> NewEntry {
    let mut e = NewEntry::now(&caller.name, caller.role.as_str(), action);
    e.token_id = Some(caller.token_id);
    e.subject = subject;
    e.request = clean(request);
    e.response = clean(response);
    e.reason = reason.map(|r| r.replace('\0', ""));
    e
}

/// PostgreSQL's text and jsonb cannot hold NUL: strip it from every string, so that input
/// echoed into an entry can never make the log refuse it.
pub(crate) fn clean(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "")),
        Value::Array(a) => Value::Array(a.into_iter().map(clean).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k.replace('\0', ""), clean(v)))
                .collect(),
        ),
        other => other,
    }
}

pub use shikaku_db::access_log::{returned_persons, LISTED_IDS};
