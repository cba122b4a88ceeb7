//! How far a streaming standby is behind its primary, for the read path (issue 16).
//!
//! Lag is measured as staleness, not as WAL bytes or the standby's own clock: the primary's WAL
//! position is sampled with the time it was read ([`LagTracker::sample`]), and the standby's
//! lag is how long ago the newest sample it has replayed was taken. A standby with lag `d`
//! holds every transaction the primary had committed `d` ago, whatever the load, and an idle
//! primary does not make a caught-up standby look stale (which `now() -
//! pg_last_xact_replay_timestamp()` does). The estimate errs high by at most one sampling
//! interval, never low.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};

use crate::error::DbError;

/// A position in the WAL, in bytes from its start.
pub type Lsn = i64;

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = Nullable<BigInt>)]
    lsn: Option<i64>,
}

/// The WAL position of the server: on a primary the current write position, on a standby the
/// last replayed one. `None` for a standby that has replayed nothing yet.
pub fn position(conn: &mut PgConnection) -> Result<Option<Lsn>, DbError> {
    let p: Position = diesel::sql_query(
        "SELECT pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                                     ELSE pg_current_wal_lsn() END, '0/0')::bigint AS lsn",
    )
    .get_result(conn)?;
    Ok(p.lsn)
}

/// Waits until `standby` has replayed everything `primary` had written when the wait began,
/// polling every 20 ms for at most `bound`. Returns how long it took, or `None` when the
/// standby did not catch up in time (a reader then uses the primary). Readers that need a
/// view no older than their own start (the audit's snapshot) wait on this.
pub fn wait_for_replay(
    primary: &mut PgConnection,
    standby: &mut PgConnection,
    bound: Duration,
) -> Result<Option<Duration>, DbError> {
    let started = Instant::now();
    let Some(target) = position(primary)? else {
        return Ok(None);
    };
    loop {
        if position(standby)?.is_some_and(|at| at >= target) {
            return Ok(Some(started.elapsed()));
        }
        if started.elapsed() >= bound {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Samples of the primary's WAL position over time, from which a standby's staleness follows.
#[derive(Debug, Default)]
pub struct LagTracker {
    samples: VecDeque<(Instant, Lsn)>,
}

impl LagTracker {
    /// An empty tracker.
    pub fn new() -> LagTracker {
        LagTracker::default()
    }

    /// Records the primary's position `lsn` read at `at`. Samples older than `keep` are
    /// dropped (the oldest kept one still bounds the lag from below).
    pub fn sample(&mut self, at: Instant, lsn: Lsn, keep: Duration) {
        self.samples.push_back((at, lsn));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| at.saturating_duration_since(*t) > keep)
        {
            self.samples.pop_front();
        }
    }

    /// The standby's staleness at `now` given its replayed position: the age of the newest
    /// sample it has reached. Behind every sample kept, it is at least as stale as the oldest,
    /// which is what is returned (a bound that only grows while it stays behind).
    pub fn lag(&self, now: Instant, replayed: Lsn) -> Option<Duration> {
        let newest_reached = self
            .samples
            .iter()
            .rev()
            .find(|(_, lsn)| *lsn <= replayed)
            .or_else(|| self.samples.front())?;
        Some(now.saturating_duration_since(newest_reached.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_standby_that_replayed_the_newest_sample_is_as_stale_as_that_sample() {
        let t0 = Instant::now();
        let mut t = LagTracker::new();
        t.sample(t0, 100, ms(60_000));
        t.sample(t0 + ms(500), 200, ms(60_000));
        t.sample(t0 + ms(1000), 300, ms(60_000));
        let now = t0 + ms(1100);
        assert_eq!(t.lag(now, 300), Some(ms(100)));
        assert_eq!(
            t.lag(now, 250),
            Some(ms(600)),
            "between samples: the older one"
        );
        assert_eq!(t.lag(now, 200), Some(ms(600)));
        assert_eq!(t.lag(now, 99), Some(ms(1100)), "behind all: the oldest");
    }

    #[test]
    fn an_idle_primary_does_not_make_a_caught_up_standby_stale() {
        let t0 = Instant::now();
        let mut t = LagTracker::new();
        for i in 0..10 {
            t.sample(t0 + ms(i * 1000), 500, ms(60_000));
        }
        assert_eq!(t.lag(t0 + ms(9_000), 500), Some(Duration::ZERO));
    }

    #[test]
    fn old_samples_are_dropped_but_a_stuck_standby_stays_stale() {
        let t0 = Instant::now();
        let mut t = LagTracker::new();
        for i in 0..100u64 {
            t.sample(
                t0 + ms(i * 1000),
                i64::try_from(i).unwrap_or(0) * 10,
                ms(5_000),
            );
        }
        assert!(t.samples.len() <= 8, "{}", t.samples.len());
        let lag = t.lag(t0 + ms(99_000), 0).unwrap_or_default();
        assert!(lag >= ms(5_000), "{lag:?}");
    }

    #[test]
    fn no_sample_no_lag() {
        assert_eq!(LagTracker::new().lag(Instant::now(), 0), None);
    }
}
