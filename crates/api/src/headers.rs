//! Headers every answer carries, set in one middleware so no route can forget them.
//!
//! - `Content-Security-Policy`: nothing loads but this origin's stylesheet and images; no
//!   script at all (the console has none), no inline style, no framing, forms post only here.
//! - `X-Frame-Options: DENY` for browsers that predate `frame-ancestors`.
//! - `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` (a console URL holds
//!   record ids, which are nobody else's business).
//! - `Cache-Control: no-store` unless the route chose otherwise: answers hold personal data,
//!   and a shared cache or the browser's disk must not keep them. Only the stylesheet opts out.
//! - `Strict-Transport-Security` when the request came over TLS
//!   ([`crate::guard::secure_request`]).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::guard::secure_request;
use crate::state::AppState;

/// The content security policy of every answer.
///
/// `connect-src 'self'` lets a script of this origin fetch from it, which matters to nothing
/// here (no script of ours exists and `script-src` falls back to `'none'`) except the browser
/// tests, whose WebDriver-injected fetches check downloads with the session's cookies.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                       base-uri 'none'";

/// Middleware adding the security headers.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let secure = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| secure_request(req.head(), &s.config));
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if secure {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    Ok(res)
}
