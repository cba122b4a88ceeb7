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
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "shikaku_session";
/// Minutes without a request after which a session ends.
pub const IDLE_MINUTES: i32 = 30;

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
        HttpResponse::build(self.status_code())
            .content_type("text/html; charset=utf-8")
            .body(
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
        Box::pin(async move {
            let state = state.ok_or(ConsoleError::SignIn)?;
            let secret = secret.ok_or(ConsoleError::SignIn)?;
            let session = state
                .blocking(move |conn| Ok(console::resume(conn, &secret, IDLE_MINUTES)?))
                .await?
                .ok_or(ConsoleError::SignIn)?;
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

/// Whether cookies are marked Secure: behind TLS (the proxy says so) they must be.
fn behind_tls(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
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
    if let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    {
        let host = req.connection_info().host().to_string();
        if !origin.ends_with(&format!("//{host}")) {
            return Err(ConsoleError::Csrf);
        }
    }
    let token = form.into_inner().token;
    let signed = state
        .blocking(move |conn| Ok(console::sign_in(conn, &token)?))
        .await?;
    let Some((secret, _)) = signed else {
        return Ok(HttpResponse::Unauthorized()
            .content_type("text/html; charset=utf-8")
            .body(
                login_form(Some("トークンが無効です（期限切れまたは失効を含む）。")).into_string(),
            ));
    };
    let cookie = Cookie::build(COOKIE, secret)
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(behind_tls(&req))
        .finish();
    Ok(HttpResponse::SeeOther()
        .cookie(cookie)
        .insert_header((header::LOCATION, "/console"))
        .finish())
}

// Every form field has a default so that a post without the CSRF token is refused as such
// (403) before its other fields are judged.

/// A form with a reason (and, to correct a linkage, the right number, which is never echoed
/// or logged).
#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) reason: String,
    #[serde(default)]
    pub(crate) my_number: zeroize::Zeroizing<String>,
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
