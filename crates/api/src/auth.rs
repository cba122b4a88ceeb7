//! Bearer-token authentication and role checks. A token is looked up by its SHA-256 (the only
//! form stored) and cached for a short time so that a busy clinic's queries do not each cost a
//! database round trip; a revoked token stops working within that time. A malformed token is
//! refused without a query, and failures are throttled per address and token prefix
//! ([`crate::guard::AuthThrottle`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use std::net::IpAddr;

use actix_web::{web, FromRequest, HttpRequest};
use chrono::NaiveDate;
use shikaku_db::access_log::NewEntry;
use shikaku_db::tokens::{self, hash_secret, Role};

use crate::error::ApiError;
use crate::guard::client_addr;
use crate::state::AppState;

/// Who is calling: the token's id, name and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Token id (the access log's `token_id`, the rate limiter's key).
    pub token_id: i64,
    /// The token's name (the access log's actor).
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(self.role.as_str()))
        }
    }

    /// The actor string recorded in histories: `api:NAME`.
    pub fn actor(&self) -> String {
        format!("api:{}", self.name)
    }
}

/// A cached token: who it is, its last valid day, and when it was looked up.
type Cached = (Caller, Option<NaiveDate>, Instant);

/// Tokens checked recently, by hash.
pub struct TokenCache {
    ttl: Duration,
    entries: RwLock<HashMap<[u8; 32], Cached>>,
}

impl TokenCache {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> TokenCache {
        TokenCache {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, hash: &[u8; 32]) -> Option<(Caller, Option<NaiveDate>)> {
        let entries = self.entries.read().ok()?;
        let (caller, expires, at) = entries.get(hash)?;
        (at.elapsed() < self.ttl).then(|| (caller.clone(), *expires))
    }

    fn put(&self, hash: [u8; 32], caller: Caller, expires: Option<NaiveDate>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() > 10_000 {
                let ttl = self.ttl;
                entries.retain(|_, (_, _, at)| at.elapsed() < ttl);
            }
            entries.insert(hash, (caller, expires, Instant::now()));
        }
    }
}

pub use shikaku_db::today_tokyo;

/// Counts a failed authentication from `addr`; the failure that spends the quota is a
/// security event (metrics and the access log), the ones before it are not worth an entry.
pub(crate) async fn auth_failed(
    state: &AppState,
    addr: Option<IpAddr>,
    secret: Option<&str>,
    kind: &str,
) {
    state.metrics.security_event(kind);
    if let Some(wait) = state.auth_throttle.failed(addr, secret) {
        state.metrics.security_event("auth_throttled");
        let mut e = NewEntry::now("anonymous", "none", "auth_throttled");
        e.request = serde_json::json!({
            "address": addr.map(|a| a.to_string()), "kind": kind,
            // Enough to recognise a token someone keeps trying, never enough to use it.
            "token_prefix": secret.map(|s| s.chars().take(8).collect::<String>()),
        });
        e.response = serde_json::json!({ "blocked_seconds": wait.as_secs() });
        if let Err(err) = state.access_log.record(vec![e]).await {
            tracing::warn!(error = %err, "cannot log a security event");
        }
    }
}

async fn authenticate(
    state: &AppState,
    header: Option<String>,
    addr: Option<IpAddr>,
) -> Result<Caller, ApiError> {
    // No credentials at all is not a guess: 401 without counting.
    let header = header.ok_or(ApiError::Unauthorized)?;
    let secret = header.strip_prefix("Bearer ").map(str::trim).unwrap_or("");
    if let Some(wait) = state.auth_throttle.blocked(addr, Some(secret)) {
        return Err(ApiError::RateLimited(wait.as_secs().max(1)));
    }
    // Anything that is not the shape of an issued token costs no database query.
    if !tokens::well_formed(secret) {
        auth_failed(state, addr, Some(secret), "bad_token").await;
        return Err(ApiError::Unauthorized);
    }
    let hash = hash_secret(secret);
    let (caller, expires) = match state.tokens.get(&hash) {
        Some(hit) => hit,
        None => {
            let mut conn = state.conn().await?;
            let Some(row) = tokens::find_live(&mut conn, &hash).await? else {
                drop(conn);
                auth_failed(state, addr, Some(secret), "bad_token").await;
                return Err(ApiError::Unauthorized);
            };
            let caller = Caller {
                token_id: row.id,
                name: row.name,
                role: row.role,
            };
            state.tokens.put(hash, caller.clone(), row.expires_on);
            (caller, row.expires_on)
        }
    };
    if expires.is_some_and(|last| today_tokyo() > last) {
        return Err(ApiError::Unauthorized);
    }
    Ok(caller)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let addr = state
            .as_ref()
            .and_then(|s| client_addr(req, &s.config.trusted_proxies));
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            authenticate(&state, header, addr).await
        })
    }
}
