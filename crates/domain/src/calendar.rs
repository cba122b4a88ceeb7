//! The registry's calendar: every date in it (資格取得日, certificate validity, the audit's run
//! date) is a date in Japan.

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// The date in Asia/Tokyo at instant `now`. Japan has had no daylight saving time since 1951,
/// so a fixed +09:00 offset is exact and no time zone database is needed.
pub fn tokyo_date(now: DateTime<Utc>) -> NaiveDate {
    (now + Duration::hours(9)).date_naive()
}

/// Seconds from `now` until the next day begins in Japan (at least 1): how long a limit that
/// counts per Japanese day still applies.
pub fn seconds_until_tokyo_midnight(now: DateTime<Utc>) -> u64 {
    let local = now + Duration::hours(9);
    let next = local
        .date_naive()
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    next.map_or(1, |n| (n - local).num_seconds().max(1).unsigned_abs())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_day_turns_at_15_00_utc() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(tokyo_date(at("2026-11-25T14:59:59Z")), day("2026-11-25"));
        assert_eq!(tokyo_date(at("2026-11-25T15:00:00Z")), day("2026-11-26"));
        assert_eq!(tokyo_date(at("2026-12-31T15:00:00Z")), day("2027-01-01"));
    }

    #[test]
    fn a_japanese_day_ends_at_15_00_utc() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(seconds_until_tokyo_midnight(at("2026-11-25T14:59:00Z")), 60);
        assert_eq!(
            seconds_until_tokyo_midnight(at("2026-11-25T15:00:00Z")),
            86_400
        );
    }
}
