//! The read path: eligibility answers and staff searches from a streaming standby when one is
//! configured (`SHIKAKU_READ_DATABASE_URL`) and fresh enough, from the primary otherwise.
//! Writes, token checks and the access log always stay on the primary.
//!
//! A monitor thread measures the standby's staleness every [`ApiConfig::read_check_every`]
//! ([`shikaku_db::replica::LagTracker`]): reads go to the standby only while it holds every
//! transaction the primary committed [`ApiConfig::read_max_lag`] ago. A read that fails on
//! the standby (it stopped, it restarted) is run again on the primary and the standby is set
//! aside until the monitor sees it healthy again, so a lost standby costs a retry, never an
//! error. `/healthz` and `/metrics` say which path reads take and why.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use diesel::r2d2::{ConnectionManager, Pool as SyncPool};
use diesel::{Connection, PgConnection};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::AsyncPgConnection;
use shikaku_db::replica::{self, LagTracker};

use crate::state::ApiConfig;

/// Where reads go.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReadPath {
    /// The primary (no standby configured, or it is not fit to answer).
    Primary,
    /// The standby.
    Standby,
}

/// What the monitor last found on the standby.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum StandbyState {
    /// No standby is configured: everything reads the primary.
    Off,
    /// Not measured yet: reads use the primary until it is.
    Starting,
    /// Within the lag bound: reads use it.
    Ok,
    /// Further behind than the bound: reads use the primary.
    Lagging,
    /// Not reachable, or a read on it failed: reads use the primary.
    Unreachable,
}

impl StandbyState {
    fn code(self) -> u8 {
        match self {
            StandbyState::Off => 0,
            StandbyState::Starting => 1,
            StandbyState::Ok => 2,
            StandbyState::Lagging => 3,
            StandbyState::Unreachable => 4,
        }
    }

    fn of_code(code: u8) -> StandbyState {
        match code {
            1 => StandbyState::Starting,
            2 => StandbyState::Ok,
            3 => StandbyState::Lagging,
            4 => StandbyState::Unreachable,
            _ => StandbyState::Off,
        }
    }
}

/// The read path as `/healthz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ReadStatus {
    /// Where reads go now.
    pub path: ReadPath,
    /// The standby's state.
    pub standby: StandbyState,
    /// The standby's staleness in seconds when last measured (absent when unknown).
    pub lag_seconds: Option<f64>,
    /// The bound above which reads leave the standby, in seconds (absent without a standby).
    pub max_lag_seconds: Option<f64>,
}

/// Shared between the monitor thread and the request handlers.
#[derive(Debug)]
struct Health {
    state: AtomicU8,
    /// Milliseconds; `u64::MAX` when unknown.
    lag_ms: AtomicU64,
}

impl Health {
    fn state(&self) -> StandbyState {
        StandbyState::of_code(self.state.load(Ordering::Acquire))
    }

    fn set(&self, state: StandbyState) {
        self.state.store(state.code(), Ordering::Release);
    }
}

/// The standby's pools and health; `None` in [`crate::AppState`] when none is configured.
pub struct ReadReplica {
    /// Async connections for eligibility answers.
    pub pool: Pool<AsyncPgConnection>,
    /// Blocking connections for staff searches.
    pub staff_pool: SyncPool<ConnectionManager<PgConnection>>,
    health: Arc<Health>,
    max_lag: Duration,
}

impl ReadReplica {
    /// Takes the standby's pools (built like the primary's, connecting lazily) and starts the
    /// monitor, which stops by itself when this value is dropped.
    pub fn start(
        config: &ApiConfig,
        url: &str,
        pool: Pool<AsyncPgConnection>,
        staff_pool: SyncPool<ConnectionManager<PgConnection>>,
    ) -> ReadReplica {
        let health = Arc::new(Health {
            state: AtomicU8::new(StandbyState::Starting.code()),
            lag_ms: AtomicU64::new(u64::MAX),
        });
        let monitor = Monitor {
            health: Arc::downgrade(&health),
            primary_url: config.database_url.clone(),
            standby_url: url.to_string(),
            max_lag: config.read_max_lag,
            every: config.read_check_every,
        };
        if let Err(e) = std::thread::Builder::new()
            .name("replica-monitor".into())
            .spawn(move || monitor.run())
        {
            tracing::error!(error = %e, "cannot start the standby monitor; reads use the primary");
            health.set(StandbyState::Unreachable);
        }
        ReadReplica {
            pool,
            staff_pool,
            health,
            max_lag: config.read_max_lag,
        }
    }

    /// Whether reads may use the standby now.
    pub fn usable(&self) -> bool {
        self.health.state() == StandbyState::Ok
    }

    /// The standby's state now.
    pub fn state(&self) -> StandbyState {
        self.health.state()
    }

    /// Sets the standby aside after a read on it failed; the monitor brings it back.
    pub fn failed(&self) {
        self.health.set(StandbyState::Unreachable);
    }

    /// The status `/healthz` shows.
    pub fn status(&self) -> ReadStatus {
        let lag_ms = self.health.lag_ms.load(Ordering::Acquire);
        ReadStatus {
            path: if self.usable() {
                ReadPath::Standby
            } else {
                ReadPath::Primary
            },
            standby: self.state(),
            lag_seconds: (lag_ms != u64::MAX).then(|| Duration::from_millis(lag_ms).as_secs_f64()),
            max_lag_seconds: Some(self.max_lag.as_secs_f64()),
        }
    }
}

/// The status without a standby.
pub fn primary_only() -> ReadStatus {
    ReadStatus {
        path: ReadPath::Primary,
        standby: StandbyState::Off,
        lag_seconds: None,
        max_lag_seconds: None,
    }
}

/// Measures the standby's staleness against the primary's WAL position, on its own thread
/// with its own two connections (never the request pools: a slow standby must not starve
/// them).
struct Monitor {
    health: Weak<Health>,
    primary_url: String,
    standby_url: String,
    max_lag: Duration,
    every: Duration,
}

impl Monitor {
    fn run(self) {
        let mut tracker = LagTracker::new();
        let mut primary: Option<PgConnection> = None;
        let mut standby: Option<PgConnection> = None;
        // Enough history to tell "behind by the bound" from "behind by more".
        let keep = self.max_lag.saturating_mul(4).max(Duration::from_secs(10));
        while let Some(health) = self.health.upgrade() {
            match position(&mut primary, &self.primary_url) {
                Some(lsn) => tracker.sample(Instant::now(), lsn, keep),
                None => tracing::debug!("replica monitor: the primary did not answer"),
            }
            let state = match position(&mut standby, &self.standby_url) {
                None => {
                    health.lag_ms.store(u64::MAX, Ordering::Release);
                    StandbyState::Unreachable
                }
                Some(replayed) => match tracker.lag(Instant::now(), replayed) {
                    None => StandbyState::Starting,
                    Some(lag) => {
                        let ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX - 1);
                        health.lag_ms.store(ms, Ordering::Release);
                        if lag <= self.max_lag {
                            StandbyState::Ok
                        } else {
                            StandbyState::Lagging
                        }
                    }
                },
            };
            let before = health.state();
            if before != state {
                tracing::info!(
                    from = <&str>::from(before),
                    to = <&str>::from(state),
                    "read path: standby state changed"
                );
            }
            health.set(state);
            drop(health);
            std::thread::sleep(self.every);
        }
    }
}

/// The server's WAL position on a kept connection, reconnecting when needed; `None` (and the
/// connection dropped) when it does not answer.
fn position(conn: &mut Option<PgConnection>, url: &str) -> Option<replica::Lsn> {
    if conn.is_none() {
        *conn = PgConnection::establish(url).ok();
    }
    let c = conn.as_mut()?;
    match replica::position(c) {
        Ok(lsn) => lsn,
        Err(_) => {
            *conn = None;
            None
        }
    }
}
