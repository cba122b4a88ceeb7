//! 資格取得日 to 資格喪失日: the qualification period, the one model of "insured when" that the
//! eligibility answer, the audit, the registry reads and the fixture generator share.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::person::LossReason;

/// A qualification period. The loss date is the first day without eligibility, so the period
/// covers `[acquired_on, lost_on)`; an open period has no loss date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Period {
    /// 資格取得日.
    pub acquired_on: NaiveDate,
    /// 資格喪失日, if lost (or known in advance).
    pub lost_on: Option<NaiveDate>,
    /// 喪失事由, when lost and known.
    pub loss_reason: Option<LossReason>,
}

impl Period {
    /// An open period from `acquired_on`.
    pub fn open(acquired_on: NaiveDate) -> Self {
        Self {
            acquired_on,
            lost_on: None,
            loss_reason: None,
        }
    }

    /// A period from `acquired_on`, lost on `lost_on` (when given) for `reason`.
    pub fn new(
        acquired_on: NaiveDate,
        lost_on: Option<NaiveDate>,
        loss_reason: Option<LossReason>,
    ) -> Self {
        Self {
            acquired_on,
            lost_on,
            loss_reason,
        }
    }

    /// Whether the person is eligible on `day` under this period.
    #[inline]
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.acquired_on <= day && self.lost_on.is_none_or(|l| day < l)
    }

    /// Whether the two periods share at least one day.
    #[inline]
    pub fn overlaps(&self, other: &Period) -> bool {
        self.lost_on.is_none_or(|l| other.acquired_on < l)
            && other.lost_on.is_none_or(|l| self.acquired_on < l)
    }

    /// The last day covered, when the period is closed.
    pub fn last_day(&self) -> Option<NaiveDate> {
        self.lost_on
            .map(|l| l.checked_sub_days(Days::new(1)).unwrap_or(l))
    }

    /// The day whose terms (co-pay, age) describe this period as seen on `on`: `on` itself
    /// while covered, the last insured day once the period has ended, and the first day when
    /// it has not begun.
    pub fn terms_day(&self, on: NaiveDate) -> NaiveDate {
        match self.lost_on {
            Some(l) if l <= on => self.last_day().unwrap_or(l),
            _ if self.acquired_on > on => self.acquired_on,
            _ => on,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn covers_is_half_open() {
        let p = Period::new(d("2020-04-01"), Some(d("2024-04-01")), None);
        assert!(!p.covers(d("2020-03-31")));
        assert!(p.covers(d("2020-04-01")));
        assert!(p.covers(d("2024-03-31")));
        assert!(!p.covers(d("2024-04-01")));
        assert!(Period::open(d("2020-04-01")).covers(d("2099-01-01")));
    }

    #[test]
    fn overlaps_needs_a_shared_day() {
        let a = Period::new(d("2020-04-01"), Some(d("2024-04-01")), None);
        let b = Period::open(d("2024-04-01"));
        let c = Period::open(d("2024-03-31"));
        assert!(!a.overlaps(&b) && !b.overlaps(&a));
        assert!(a.overlaps(&c) && c.overlaps(&a));
        assert!(b.overlaps(&c));
    }

    #[test]
    fn terms_day() {
        let p = Period::new(d("2020-04-01"), Some(d("2024-04-01")), None);
        assert_eq!(p.terms_day(d("2022-01-01")), d("2022-01-01"));
        assert_eq!(p.terms_day(d("2025-01-01")), d("2024-03-31"));
        assert_eq!(p.terms_day(d("2019-01-01")), d("2020-04-01"));
        assert_eq!(p.last_day(), Some(d("2024-03-31")));
    }
}
