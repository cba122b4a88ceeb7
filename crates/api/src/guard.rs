//! Guards against abuse that no single request shows: guessing tokens or session cookies,
//! and guessing a person's birth date with a known 記号・番号.
//!
//! - [`client_addr`]: the address a request came from. `X-Forwarded-For` is believed only when
//!   the connection comes from a configured trusted proxy, never from anyone else.
//! - [`AuthThrottle`]: failed authentications (malformed or unknown bearer tokens, failed
//!   sign-ins, dead session cookies) counted per client address and per token prefix with
//!   `governor`; once either is spent the address or prefix is refused with 429 before any
//!   database query, until the quota refills.
//! - [`GuessGuard`]: "no match" eligibility answers counted per token and key for the day in
//!   Japan; a request that could take a key past the limit is refused with 429, so neither
//!   repeated queries nor one batch of a thousand birth dates can find the right one.
//!
//! Both keep their counts in the server's memory: several servers behind a balancer each
//! count their own share, which multiplies an attacker's budget by their number (docs/api.md).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use chrono::NaiveDate;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::state::{ApiConfig, CookieSecure};

/// The address a request came from: the peer, or, when the peer is a trusted proxy, the
/// nearest address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_addr(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|a| !trusted_proxies.contains(a))
            .unwrap_or(peer),
    )
}

/// Whether the request reached us over TLS, which decides the session cookie's `Secure` flag
/// and HSTS: always when configured so; in `auto`, only when a trusted proxy says so with
/// `X-Forwarded-Proto: https` (the service itself speaks plain HTTP). A client's own header
/// counts for nothing.
pub fn secure_request(req: &actix_web::dev::RequestHead, config: &ApiConfig) -> bool {
    match config.cookie_secure {
        CookieSecure::Always => true,
        CookieSecure::Auto => {
            let from_proxy = req
                .peer_addr
                .is_some_and(|p| config.trusted_proxies.contains(&p.ip()));
            from_proxy
                && req
                    .headers()
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
        }
    }
}

/// What a failed authentication was keyed on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Addr(IpAddr),
    Prefix(String),
}

/// Failed authentications per client address and per token prefix.
pub struct AuthThrottle {
    limiter: DefaultKeyedRateLimiter<Key>,
    blocked: Mutex<HashMap<Key, Instant>>,
}

/// The first characters of a presented secret that key the per-prefix count: enough to tell
/// tokens apart, far too few to help anyone guess one.
fn prefix(secret: &str) -> Option<Key> {
    let p: String = secret.chars().take(12).collect();
    (!p.is_empty()).then_some(Key::Prefix(p))
}

impl AuthThrottle {
    /// Allows `per_minute` failures a minute per address and per prefix (refilled evenly): the
    /// failure that spends the last of them blocks the key, so the next attempt is refused.
    pub fn new(per_minute: u32) -> AuthThrottle {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        // A burst of one fewer: governor refuses the check after the cells are spent, and the
        // n-th failure is the one that must trip the block.
        let burst = NonZeroU32::new(per_minute.saturating_sub(1)).unwrap_or(NonZeroU32::MIN);
        AuthThrottle {
            limiter: RateLimiter::keyed(Quota::per_minute(n).allow_burst(burst)),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// How long `addr` (or the secret's prefix) must still wait, if it is blocked.
    pub fn blocked(&self, addr: Option<IpAddr>, secret: Option<&str>) -> Option<Duration> {
        let now = Instant::now();
        let blocked = self.blocked.lock().ok()?;
        [addr.map(Key::Addr), secret.and_then(prefix)]
            .into_iter()
            .flatten()
            .filter_map(|k| blocked.get(&k))
            .filter(|until| **until > now)
            .map(|until| *until - now)
            .max()
    }

    /// Counts a failure; returns how long the address or prefix is now blocked when this
    /// failure spent its quota (the moment to record a security event).
    pub fn failed(&self, addr: Option<IpAddr>, secret: Option<&str>) -> Option<Duration> {
        let clock = DefaultClock::default();
        let mut tripped = None;
        for key in [addr.map(Key::Addr), secret.and_then(prefix)]
            .into_iter()
            .flatten()
        {
            if let Err(not_until) = self.limiter.check_key(&key) {
                let wait = not_until
                    .wait_time_from(clock.now())
                    .max(Duration::from_secs(1));
                if let Ok(mut blocked) = self.blocked.lock() {
                    let now = Instant::now();
                    blocked.retain(|_, until| *until > now);
                    blocked.insert(key, now + wait);
                }
                tripped = Some(tripped.map_or(wait, |w: Duration| w.max(wait)));
            }
        }
        tripped
    }
}

/// One day's "no match" counts by (token id, card).
type DayCounts = (NaiveDate, HashMap<(i64, String), u32>);

/// "No match" answers per token and card, for one day in Japan.
pub struct GuessGuard {
    limit: u32,
    state: Mutex<DayCounts>,
}

/// Past this many counted (token, key) pairs in a day the guard stops adding new ones and says
/// so in the log: the general rate limit makes this an attack on the guard itself.
const MAX_TRACKED: usize = 2_000_000;

impl GuessGuard {
    /// A guard refusing a key after `limit` "no match" answers in a day.
    pub fn new(limit: u32) -> GuessGuard {
        GuessGuard {
            limit,
            state: Mutex::new((NaiveDate::MIN, HashMap::new())),
        }
    }

    /// The limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The first card already at the limit today, with its misses: such a request is refused
    /// before any lookup.
    pub fn blocked(&self, today: NaiveDate, token: i64, cards: &[String]) -> Option<(String, u32)> {
        let mut state = self.state.lock().ok()?;
        if state.0 != today {
            *state = (today, HashMap::new());
        }
        let mut at_limit: Vec<(String, u32)> = cards
            .iter()
            .filter_map(|c| {
                let misses = state.1.get(&(token, c.clone())).copied().unwrap_or(0);
                (misses >= self.limit).then(|| (c.clone(), misses))
            })
            .collect();
        at_limit.sort();
        at_limit.into_iter().next()
    }

    /// Counts a request's "no match" answers (`missed`: the card of each) and returns the
    /// first card they took past the limit, with its misses now: that request's answers must
    /// not be given (a batch of guesses would otherwise hold the right one), and the card
    /// stays refused for the day.
    pub fn record(&self, today: NaiveDate, token: i64, missed: &[String]) -> Option<(String, u32)> {
        let mut state = self.state.lock().ok()?;
        if state.0 != today {
            *state = (today, HashMap::new());
        }
        let mut over = None;
        for c in missed {
            let full = state.1.len() >= MAX_TRACKED;
            let n = match state.1.get_mut(&(token, c.clone())) {
                Some(n) => {
                    *n = n.saturating_add(1);
                    *n
                }
                None if full => {
                    tracing::warn!("birth-date guard is full for today; new cards are not counted");
                    continue;
                }
                None => {
                    state.1.insert((token, c.clone()), 1);
                    1
                }
            };
            if n > self.limit && over.is_none() {
                over = Some(c.clone());
            }
        }
        over.map(|c| {
            let n = state.1.get(&(token, c.clone())).copied().unwrap_or(0);
            (c, n)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_eleventh_guess_is_refused_and_the_next_day_starts_afresh() {
        let g = GuessGuard::new(10);
        let card = "06130199:1:1".to_string();
        let day = d("2026-12-01");
        for _ in 0..10 {
            assert_eq!(g.blocked(day, 7, std::slice::from_ref(&card)), None);
            assert_eq!(g.record(day, 7, std::slice::from_ref(&card)), None);
        }
        assert_eq!(
            g.blocked(day, 7, std::slice::from_ref(&card)),
            Some((card.clone(), 10))
        );
        // Another token, another card: their own counts.
        assert_eq!(g.blocked(day, 8, std::slice::from_ref(&card)), None);
        assert_eq!(g.blocked(day, 7, &["06130199:1:2".to_string()]), None);
        assert_eq!(
            g.blocked(d("2026-12-02"), 7, std::slice::from_ref(&card)),
            None
        );
    }

    #[test]
    fn a_batch_counts_each_miss() {
        let g = GuessGuard::new(10);
        let day = d("2026-12-01");
        let card = "06130199:1:1".to_string();
        // Ten misses in one batch are within the day's allowance …
        assert_eq!(g.record(day, 1, &vec![card.clone(); 10]), None);
        // … an eleventh is not, and the card is refused from then on.
        assert_eq!(
            g.record(day, 1, std::slice::from_ref(&card)),
            Some((card.clone(), 11))
        );
        assert!(g.blocked(day, 1, std::slice::from_ref(&card)).is_some());
        // A thousand guesses at once go over at once.
        assert_eq!(
            g.record(day, 2, &vec![card.clone(); 1000]),
            Some((card, 1000))
        );
    }

    #[test]
    fn failures_block_the_address_and_the_prefix() {
        let t = AuthThrottle::new(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..2 {
            assert_eq!(t.blocked(Some(a), Some(&format!("shk_x{i}"))), None);
            assert_eq!(t.failed(Some(a), Some(&format!("shk_aaaaaaaa{i}"))), None);
        }
        // The third failure spends the quota and blocks the address.
        assert!(t.failed(Some(a), Some("shk_zzzzzzzzz")).is_some());
        assert!(t.blocked(Some(a), None).is_some());
        assert!(t.blocked(Some(b), None).is_none());
        // The same token prefix from many addresses is blocked too.
        let t = AuthThrottle::new(2);
        for i in 0..3u8 {
            t.failed(
                Some(IpAddr::from([198, 51, 100, i])),
                Some("shk_sameprefix-1"),
            );
        }
        assert!(t.blocked(Some(b), Some("shk_sameprefix-2")).is_some());
    }
}
