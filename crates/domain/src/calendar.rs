//! The registry's calendar: every date in it (資格取得日, certificate validity, the audit's run
//! date) is a date in Japan.

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// The date in Asia/Tokyo at instant `now`. Japan has had no daylight saving time since 1951,
/// so a fixed +09:00 offset is exact and no time zone database is needed.
pub fn tokyo_date(now: DateTime<Utc>) -> NaiveDate {
    (now + Duration::hours(9)).date_naive()
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
}
