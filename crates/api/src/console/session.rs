//! Console sign-in and sessions: a personal token exchanged for an HttpOnly, SameSite=Strict
//! session cookie, the signed-in [`Staff`] extractor with its role check, the per-session CSRF
//! token every POST form carries, and the page-shaped error type.
//!
//! The sign-in form, which has no session yet, is refused when its `Origin` is another site.

use crate::input::CheckedForm;
use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use maud::{html, Markup};
use serde::Deserialize;
use shikaku_db::console::{self, Session};
use shikaku_db::tokens::Role;
use subtle::ConstantTimeEq;

use super::layout::{html_response, page};
use crate::auth::{auth_failed, Caller};
use crate::error::ApiError;
use crate::guard::{client_addr, secure_request};
use crate::state::AppState;
use shikaku_db::access_log::NewEntry;

/// The session cookie's name.
pub const COOKIE: &str = "shikaku_session";

/// A signed-in console user.
pub struct Staff {
    /// The session (its CSRF token included).
    pub session: Session,
    /// The same identity as an API caller, for role checks and the access log.
    pub caller: Caller,
}

/// What a console page can fail with, rendered as a page (or a redirect to sign-in).
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No live session: go to the sign-in page.
    #[error("サインインしてください")]
    SignIn,
    /// The role may not use this page.
    #[error("この画面を利用する権限がありません（{0}）")]
    Forbidden(&'static str),
    /// A form without the session's CSRF token.
    #[error("フォームの有効期限が切れたか、不正な送信です。画面を開き直してください。")]
    Csrf,
    /// Anything the API layer reports.
    #[error("{0}")]
    Api(#[from] ApiError),
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn => StatusCode::SEE_OTHER,
            ConsoleError::Forbidden(_) | ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::Api(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ConsoleError::SignIn = self {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/console/login"))
                .finish();
        }
        if let ConsoleError::Api(ApiError::Internal(cause)) = self {
            tracing::error!(%cause, "console page failed");
        }
        let message = match self {
            ConsoleError::Api(e @ ApiError::Internal(_)) => e.to_string(),
            other => other.to_string(),
        };
        let mut res = HttpResponse::build(self.status_code());
        if let ConsoleError::Api(ApiError::RateLimited(secs)) = self {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.content_type("text/html; charset=utf-8").body(
            page(
                "エラー",
                None,
                html! {
                    h1 { "エラー" }
                    p.error role="alert" { (message) }
                    p { a href="/console" { "検索画面へ戻る" } }
                },
            )
            .into_string(),
        )
    }
}

impl From<shikaku_db::DbError> for ConsoleError {
    fn from(e: shikaku_db::DbError) -> Self {
        ConsoleError::Api(e.into())
    }
}

impl Staff {
    /// 403 unless the user has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ConsoleError> {
        if roles.contains(&self.caller.role) {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(self.caller.role.as_str()))
        }
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), ConsoleError> {
        // Constant time, so timing does not reveal a prefix.
        if bool::from(sent.as_bytes().ct_eq(self.session.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(ConsoleError::Csrf)
        }
    }
}

impl FromRequest for Staff {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Staff, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let secret = req.cookie(COOKIE).map(|c| c.value().to_string());
        let addr = state
            .as_ref()
            .and_then(|s| client_addr(req, &s.config.trusted_proxies));
        Box::pin(async move {
            let state = state.ok_or(ConsoleError::SignIn)?;
            let secret = secret.ok_or(ConsoleError::SignIn)?;
            if let Some(wait) = state.auth_throttle.blocked(addr, None) {
                return Err(ApiError::RateLimited(wait.as_secs().max(1)).into());
            }
            // A cookie that is not the shape of one we issue costs no database query.
            if !console::well_formed_secret(&secret) {
                auth_failed(&state, addr, None, "bad_session").await;
                return Err(ConsoleError::SignIn);
            }
            let (idle, max_hours) = (
                state.config.session_idle_minutes,
                state.config.session_max_hours,
            );
            let session = state
                .blocking(move |conn| Ok(console::resume(conn, &secret, idle, max_hours)?))
                .await?;
            let Some(session) = session else {
                auth_failed(&state, addr, None, "bad_session").await;
                return Err(ConsoleError::SignIn);
            };
            Ok(Staff {
                caller: Caller {
                    token_id: session.token_id,
                    name: session.name.clone(),
                    role: session.role,
                },
                session,
            })
        })
    }
}

/// Whether a form post comes from this site. The `Origin` must name this host; browsers send
/// `Origin: null` for posts under `Referrer-Policy: no-referrer` (which every page here has),
/// and then `Sec-Fetch-Site: same-origin` (sent by browsers, not settable by a page) vouches
/// instead. A request with neither header is not a browser's cross-site post, so it passes.
fn same_site_post(req: &HttpRequest) -> bool {
    let header = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let fetch_site = header(header::HeaderName::from_static("sec-fetch-site"));
    if fetch_site
        .as_deref()
        .is_some_and(|s| s != "same-origin" && s != "none")
    {
        return false;
    }
    match header(header::ORIGIN).as_deref() {
        None => true,
        Some("null") => fetch_site.as_deref() == Some("same-origin"),
        Some(origin) => {
            let host = req.connection_info().host().to_string();
            origin.ends_with(&format!("//{host}"))
        }
    }
}

/// The sign-in page.
#[get("/console/login")]
pub async fn login_page() -> HttpResponse {
    html_response(login_form(None))
}

fn login_form(error: Option<&str>) -> Markup {
    page(
        "サインイン",
        None,
        html! {
            h1 { "サインイン" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.box method="post" action="/console/login" {
                label for="token" { "個人用トークン"
                    input #token name="token" type="password" autocomplete="off" required autofocus;
                }
                button.primary type="submit" { "サインイン" }
            }
            p.muted { "トークンは管理者が " code { "shikaku token create" } " で発行します。" }
        },
    )
}

/// The sign-in form's body.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// Exchanges a token for a session cookie.
#[post("/console/login")]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: CheckedForm<LoginForm>,
) -> Result<HttpResponse, ConsoleError> {
    // No session yet, so no CSRF token: refuse a sign-in posted from another site.
    if !same_site_post(&req) {
        return Err(ConsoleError::Csrf);
    }
    let addr = client_addr(&req, &state.config.trusted_proxies);
    if let Some(wait) = state.auth_throttle.blocked(addr, None) {
        return Err(ApiError::RateLimited(wait.as_secs().max(1)).into());
    }
    let token = form.into_inner().token.trim().to_string();
    let prefix: String = token.chars().take(8).collect();
    let signed = if shikaku_db::tokens::well_formed(&token) {
        state
            .blocking(move |conn| Ok(console::sign_in(conn, &token)?))
            .await?
    } else {
        None
    };
    let Some((secret, session)) = signed else {
        // Every failed sign-in is in the access log, with where it came from.
        let mut e = NewEntry::now("anonymous", "none", "sign_in_failed");
        e.request = serde_json::json!({
            "address": addr.map(|a| a.to_string()), "token_prefix": prefix, "console": true,
        });
        state.access_log.record(vec![e]).await?;
        auth_failed(&state, addr, None, "sign_in_failed").await;
        return Ok(HttpResponse::Unauthorized()
            .content_type("text/html; charset=utf-8")
            .body(
                login_form(Some("トークンが無効です（期限切れまたは失効を含む）。")).into_string(),
            ));
    };
    let mut e = NewEntry::now(&session.name, session.role.as_str(), "sign_in");
    e.token_id = Some(session.token_id);
    e.request = serde_json::json!({ "address": addr.map(|a| a.to_string()), "console": true });
    state.access_log.record(vec![e]).await?;
    let cookie = Cookie::build(COOKIE, secret)
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure_request(req.head(), &state.config))
        .finish();
    Ok(HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, "/console"))
        .finish())
}

// Every form field has a default so that a post without the CSRF token is refused as such
// (403) before its other fields are judged.

/// A form with a reason (and, to correct a linkage, the right number, which is never echoed
/// or logged, and an optional 理由付き疑いなし for a number whose register record differs).
#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) reason: String,
    #[serde(default)]
    pub(crate) my_number: zeroize::Zeroizing<String>,
    #[serde(default)]
    pub(crate) no_error_reason: String,
    /// For a dismissal: the last day it holds (empty for none).
    #[serde(default)]
    pub(crate) until: String,
}

/// An optional date field of a console form: empty is none, anything else must be
/// YYYY-MM-DD, refused with the field's `label` named. One reading for every form, so the
/// screens cannot disagree on what a date is.
pub(crate) fn form_date(value: &str, label: &str) -> Result<Option<chrono::NaiveDate>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| ApiError::Invalid(format!("{label}: YYYY-MM-DD")))
}

/// A form that carries only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: String,
}

/// Ends the session.
#[post("/console/logout")]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: Staff,
    form: CheckedForm<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.check_csrf(&form.csrf)?;
    if let Some(secret) = req.cookie(COOKIE).map(|c| c.value().to_string()) {
        state
            .blocking(move |conn| Ok(console::sign_out(conn, &secret)?))
            .await?;
    }
    let mut gone = Cookie::build(COOKIE, "").path("/console").finish();
    gone.make_removal();
    Ok(HttpResponse::SeeOther()
        .cookie(gone)
        .insert_header((header::LOCATION, "/console/login"))
        .finish())
}
