//! The web console for insurer staff, in Japanese, rendered on the server with maud: sign-in
//! with a personal token (exchanged for an HttpOnly, SameSite=Strict session cookie), person
//! search and detail, the eligibility check a clinic would get, and for administrators the
//! access log with its chain verification. Pages call the same repository functions and the
//! same eligibility code as the API, and every view of personal data is in the access log.
//!
//! Every POST form carries the session's CSRF token and is refused without it; the sign-in
//! form, which has no session yet, is refused when its `Origin` is another site.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use chrono::NaiveDate;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;
use serde_json::json;
use shikaku_db::console::{self, Session};
use shikaku_db::tokens::Role;
use shikaku_domain::KanaName;

use crate::access::entry;
use crate::auth::{today_tokyo, Caller};
use crate::eligibility::{answer_logged, EligibilityQuery};
use crate::error::ApiError;
use crate::state::AppState;

mod certificates;
mod findings;
mod uploads;

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
        // Compare without an early exit, so timing does not reveal a prefix.
        let a = sent.as_bytes();
        let b = self.session.csrf.as_bytes();
        let same =
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
        if same {
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

const STYLE: &str = "
:root{--fg:#1b1f24;--muted:#5b6470;--line:#d5d9de;--accent:#0b5cad;--bad:#b42318;--ok:#067647}
*{box-sizing:border-box}body{margin:0;font-family:'IPAexGothic','Noto Sans JP',sans-serif;color:var(--fg);font-size:15px;line-height:1.5}
header{display:flex;gap:1.2rem;align-items:center;padding:.6rem 1.2rem;background:#0b2540;color:#fff;flex-wrap:wrap}
header a,header button{color:#fff;text-decoration:none;background:none;border:0;font:inherit;cursor:pointer}
header .who{margin-left:auto;color:#c9d4e0}
main{max-width:1200px;margin:0 auto;padding:1rem 1.2rem}
h1{font-size:1.35rem;margin:.4rem 0 1rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem;border-bottom:1px solid var(--line)}
form.box{display:grid;grid-template-columns:repeat(auto-fit,minmax(11rem,1fr));gap:.6rem 1rem;align-items:end;padding:.8rem;border:1px solid var(--line);border-radius:6px;margin-bottom:1rem}
label{display:flex;flex-direction:column;font-size:.85rem;color:var(--muted)}
input,select{font:inherit;padding:.35rem .45rem;border:1px solid #9aa4ae;border-radius:4px;color:var(--fg)}
button.primary{font:inherit;padding:.45rem .9rem;background:var(--accent);color:#fff;border:0;border-radius:4px;cursor:pointer}
button:focus,input:focus,a:focus{outline:3px solid #f5b400;outline-offset:1px}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem}th,td{border-bottom:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f7;font-weight:600;font-size:.9rem}
.error{color:var(--bad);font-weight:600}.ok{color:var(--ok);font-weight:600}.muted{color:var(--muted)}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;background:#eef2f6;font-size:.85rem}
.badge.critical,.badge.high{background:#fde7e4;color:var(--bad)}.badge.active{background:#e3f4ea;color:var(--ok)}
dl.grid{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dl.grid dt{color:var(--muted)}
tr.diff{background:#fff4f2}form.inline{display:inline-flex;gap:.3rem;margin:.1rem 0;align-items:center}
form.inline input{width:9rem}.sr{position:absolute;left:-9999px}pre{background:#f6f8fa;padding:.6rem;overflow:auto}
@media (max-width:800px){body{font-size:16px}header{gap:.8rem}}
";

/// The page frame: header with navigation for the signed-in user, then the content.
pub(crate) fn page(title: &str, staff: Option<&Staff>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="ja" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — shikaku" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { "shikaku 資格管理" }
                    @if let Some(s) = staff {
                        nav aria-label="メニュー" {
                            a href="/console" { "被保険者検索" } " "
                            @if matches!(s.caller.role, Role::Provider | Role::Clerk | Role::Admin) {
                                a href="/console/eligibility" { "資格確認" } " "
                            }
                            @if matches!(s.caller.role, Role::Auditor | Role::Admin) {
                                a href="/console/findings" { "監査所見" } " "
                            }
                            @if matches!(s.caller.role, Role::Clerk | Role::Admin) {
                                a href="/console/issue-due" { "職権交付" } " "
                            }
                            @if s.caller.role == Role::Admin {
                                a href="/console/imports" { "取込" } " "
                                a href="/console/access-log" { "アクセスログ" }
                            }
                        }
                        span.who { (s.caller.name) "（" (s.caller.role.as_str()) "）" }
                        form method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(s.session.csrf);
                            button type="submit" { "サインアウト" }
                        }
                    }
                }
                main { (content) }
            }
        }
    }
}

pub(crate) fn html_response(markup: Markup) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
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
    form: web::Form<LoginForm>,
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

/// A form that carries only the CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session.
#[post("/console/logout")]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    staff: Staff,
    form: web::Form<CsrfForm>,
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

const READERS: &[Role] = &[Role::Admin, Role::Clerk, Role::Auditor];

fn search_forms(staff: &Staff) -> Markup {
    html! {
        h2 { "記号・番号で検索" }
        form.box method="post" action="/console/search" {
            input type="hidden" name="csrf" value=(staff.session.csrf);
            input type="hidden" name="by" value="key";
            label for="insurer_number" { "保険者番号" input #insurer_number name="insurer_number" required inputmode="numeric"; }
            label for="symbol" { "記号" input #symbol name="symbol"; }
            label for="number" { "番号" input #number name="number" required; }
            label for="branch" { "枝番" input #branch name="branch" inputmode="numeric"; }
            button.primary type="submit" { "検索" }
        }
        h2 { "カナ氏名・生年月日で検索" }
        form.box method="post" action="/console/search" {
            input type="hidden" name="csrf" value=(staff.session.csrf);
            input type="hidden" name="by" value="kana";
            label for="kana" { "カナ氏名（ひらがな・半角可）" input #kana name="kana" required; }
            label for="birth_date" { "生年月日" input #birth_date name="birth_date" type="date"; }
            button.primary type="submit" { "検索" }
        }
    }
}

/// The home page: person search.
#[get("/console")]
pub async fn home(staff: Staff) -> Result<HttpResponse, ConsoleError> {
    staff.require(READERS)?;
    Ok(html_response(page(
        "被保険者検索",
        Some(&staff),
        html! { h1 { "被保険者検索" } (search_forms(&staff)) },
    )))
}

/// A search form's body.
#[derive(Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    by: String,
    #[serde(default)]
    insurer_number: String,
    #[serde(default)]
    symbol: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    branch: String,
    #[serde(default)]
    kana: String,
    #[serde(default)]
    birth_date: String,
}

/// Runs a search (a POST, so personal keys stay out of URLs and browser history).
#[post("/console/search")]
pub async fn search(
    state: web::Data<AppState>,
    staff: Staff,
    form: web::Form<SearchForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(READERS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let invalid = |m: String| ConsoleError::Api(ApiError::Invalid(m));
    if f.by != "kana" && f.by != "key" {
        return Err(invalid("検索の種類が不正です".into()));
    }
    let found = if f.by == "kana" {
        let kana = KanaName::parse(&f.kana).map_err(|e| invalid(format!("カナ氏名: {e}")))?;
        let birth = if f.birth_date.is_empty() {
            None
        } else {
            Some(
                NaiveDate::parse_from_str(&f.birth_date, "%Y-%m-%d")
                    .map_err(|_| invalid("生年月日: YYYY-MM-DD".into()))?,
            )
        };
        state
            .blocking(move |conn| Ok(shikaku_db::persons::by_kana(conn, &kana, birth)?))
            .await?
    } else {
        let ins = shikaku_domain::InsurerNumber::parse(f.insurer_number.trim())
            .map_err(|e| invalid(format!("保険者番号: {e}")))?;
        let symbol = f.symbol.trim().to_string();
        let number = f.number.trim().to_string();
        let branch = Some(f.branch.trim().to_string()).filter(|b| !b.is_empty());
        state
            .blocking(move |conn| {
                Ok(shikaku_db::persons::by_key(
                    conn,
                    ins.as_str(),
                    &symbol,
                    &number,
                    branch.as_deref(),
                )?)
            })
            .await?
    };
    let ids: Vec<i64> = found.iter().map(|p| p.id).collect();
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            "person_search",
            (ids.len() == 1).then(|| format!("person:{}", ids[0])),
            json!({ "by": f.by, "console": true }),
            json!({ "person_ids": ids }),
            None,
        )])
        .await?;
    Ok(html_response(page(
        "検索結果",
        Some(&staff),
        html! {
            h1 { "検索結果（" (found.len()) "件）" }
            @if found.is_empty() { p { "該当する被保険者はいません。" } }
            @else {
                table {
                    thead { tr { th { "保険者" } th { "記号・番号・枝番" } th { "氏名" } th { "カナ" } th { "生年月日" } } }
                    tbody {
                        @for p in &found {
                            tr {
                                td { (p.insurer_number) " " span.muted { (p.insurer_name) } }
                                td { (p.symbol) "・" (p.number) "・" (p.branch) }
                                td { a href={ "/console/persons/" (p.id) } { (p.name_kanji) } }
                                td { (p.name_kana) }
                                td { (p.birth_date) }
                            }
                        }
                    }
                }
            }
            (search_forms(&staff))
        },
    )))
}

/// One person: identity, household, periods, co-pay, linkages, certificates, open findings.
#[get("/console/persons/{id}")]
pub async fn person(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(READERS)?;
    let id = id.into_inner();
    let (p, periods, linkages, certificates, household, findings) = state
        .blocking(move |conn| {
            let p = shikaku_db::persons::get(conn, id)?;
            let periods = shikaku_db::persons::periods(conn, id)?;
            let linkages = shikaku_db::linkages::of_person(conn, id)?;
            let certificates = shikaku_db::certificates::of_person(conn, id)?;
            let household =
                shikaku_db::persons::by_key(conn, &p.insurer_number, &p.symbol, &p.number, None)?;
            let findings = shikaku_audit::runner::review::of_person(conn, id)?;
            Ok((p, periods, linkages, certificates, household, findings))
        })
        .await?;
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            "person_read",
            Some(format!("person:{id}")),
            json!({ "person_id": id, "console": true }),
            // The household's names and birth dates are on the page too.
            json!({ "found": true, "household": household.iter().map(|m| m.id).collect::<Vec<_>>() }),
            None,
        )])
        .await?;
    let today = today_tokyo();
    let copay = crate::eligibility::effective_copay(p.birth_date, today, p.copay_rate);
    let sex = shikaku_domain::Sex::label_of(p.sex);
    Ok(html_response(page(
        &p.name_kanji,
        Some(&staff),
        html! {
            h1 { (p.name_kanji) " " span.muted { (p.name_kana) } }
            dl.grid {
                dt { "保険者" } dd { (p.insurer_number) " " (p.insurer_name) }
                dt { "記号・番号・枝番" } dd { (p.symbol) "・" (p.number) "・" (p.branch) }
                dt { "本人・家族" } dd { @if p.relationship == 1 { "本人" } @else { "家族" } }
                dt { "生年月日" } dd { (p.birth_date) }
                dt { "性別" } dd { (sex) }
                dt { "住所" } dd { (p.postal_code.clone().unwrap_or_default()) " " (p.address.clone().unwrap_or_default()) }
                dt { "一部負担金割合（本日）" } dd { (copay.percent()) "%" }
            }
            h2 { "資格の履歴" }
            table {
                thead { tr { th { "資格取得日" } th { "資格喪失日" } th { "喪失事由" } th { "本日" } } }
                tbody {
                    @for q in &periods {
                        @let current = q.acquired_on <= today && q.lost_on.is_none_or(|l| today < l);
                        tr {
                            td { (q.acquired_on) }
                            td { (q.lost_on.map(|d| d.to_string()).unwrap_or_default()) }
                            td { (q.loss_reason.clone().unwrap_or_default()) }
                            td { @if current { span.ok { "有効" } } }
                        }
                    }
                }
            }
            h2 { "世帯（同一記号・番号）" }
            table {
                thead { tr { th { "枝番" } th { "氏名" } th { "生年月日" } } }
                tbody {
                    @for m in &household {
                        tr {
                            td { (m.branch) }
                            td { @if m.id == p.id { (m.name_kanji) } @else { a href={ "/console/persons/" (m.id) } { (m.name_kanji) } } }
                            td { (m.birth_date) }
                        }
                    }
                }
            }
            h2 { "個人番号の紐付け" }
            @if linkages.is_empty() { p.muted { "紐付けはありません。" } } @else {
            table {
                thead { tr { th { "番号（下4桁）" } th { "状態" } th { "本人確認" } th { "登録元" } th { "登録日" } } }
                tbody {
                    @for l in &linkages {
                        tr {
                            td { "…" (l.mn_last4) @if !l.check_digit_ok { " " span.error { "検査数字誤り" } } }
                            td { span.badge.(l.status) { (l.status) } }
                            td { @if l.identity_confirmed { "確認済" } @else { "未確認" } }
                            td { (l.source) }
                            td { (l.linked_on) }
                        }
                    }
                }
            }
            }
            (certificates::section(&staff, p.id, &certificates))
            h2 { "未解決の監査所見" }
            @if findings.is_empty() { p.muted { "ありません。" } } @else {
            table {
                thead { tr { th { "重要度" } th { "種類" } th { "内容" } th { "状態" } } }
                tbody {
                    @for f in &findings {
                        tr {
                            td { span.badge.(f.severity) { (f.severity) } }
                            td { a href={ "/console/findings/" (f.id) } { (f.kind) } }
                            td { (f.detail) }
                            td { (f.status) }
                        }
                    }
                }
            }
            }
        },
    )))
}

/// The eligibility form's body.
#[derive(Deserialize)]
pub struct EligibilityForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    insurer_number: String,
    #[serde(default)]
    symbol: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    branch: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    on: String,
}

fn eligibility_form(staff: &Staff) -> Markup {
    html! {
        form.box method="post" action="/console/eligibility" {
            input type="hidden" name="csrf" value=(staff.session.csrf);
            label for="e_insurer" { "保険者番号" input #e_insurer name="insurer_number" required; }
            label for="e_symbol" { "記号" input #e_symbol name="symbol"; }
            label for="e_number" { "番号" input #e_number name="number" required; }
            label for="e_branch" { "枝番" input #e_branch name="branch"; }
            label for="e_birth" { "生年月日" input #e_birth name="birth_date" type="date" required; }
            label for="e_on" { "確認日（省略時は本日）" input #e_on name="on" type="date"; }
            button.primary type="submit" { "資格確認" }
        }
    }
}

/// The eligibility check form.
#[get("/console/eligibility")]
pub async fn eligibility_page(staff: Staff) -> Result<HttpResponse, ConsoleError> {
    staff.require(&[Role::Provider, Role::Clerk, Role::Admin])?;
    Ok(html_response(page(
        "資格確認",
        Some(&staff),
        html! { h1 { "資格確認（医療機関に返る内容）" } (eligibility_form(&staff)) },
    )))
}

/// Shows exactly what a clinic would receive for a key and date (the same code and log).
#[post("/console/eligibility")]
pub async fn eligibility_check(
    state: web::Data<AppState>,
    staff: Staff,
    form: web::Form<EligibilityForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(&[Role::Provider, Role::Clerk, Role::Admin])?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let date = |s: &str, field: &str| -> Result<Option<NaiveDate>, ConsoleError> {
        if s.is_empty() {
            return Ok(None);
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ConsoleError::Api(ApiError::Invalid(format!("{field}: YYYY-MM-DD"))))
    };
    let query = EligibilityQuery {
        insurer_number: f.insurer_number.trim().to_string(),
        symbol: Some(f.symbol.trim().to_string()).filter(|s| !s.is_empty()),
        number: f.number.trim().to_string(),
        branch: Some(f.branch.trim().to_string()).filter(|s| !s.is_empty()),
        birth_date: date(&f.birth_date, "birth_date")?
            .ok_or_else(|| ConsoleError::Api(ApiError::Invalid("生年月日は必須です".into())))?,
        on: date(&f.on, "on")?,
    };
    let answers = answer_logged(&state, &staff.caller, std::slice::from_ref(&query)).await?;
    let answer = answers
        .first()
        .ok_or_else(|| ConsoleError::Api(ApiError::Internal("no answer".into())))?;
    let code = u8::from(answer.validity);
    let meaning = match code {
        1 => "1 有効",
        2 => "2 無効",
        3 => "3 無効（新しい資格あり）",
        4 => "4 該当資格なし",
        _ => "5 複数該当",
    };
    let body = serde_json::to_string_pretty(answer).unwrap_or_default();
    Ok(html_response(page(
        "資格確認結果",
        Some(&staff),
        html! {
            h1 { "資格確認結果" }
            p { "確認日 " (answer.on) "： " strong.(if code == 1 { "ok" } else { "error" }) { (meaning) } }
            @if let Some(p) = &answer.person {
                dl.grid {
                    dt { "保険者" } dd { (p.insurer_number) " " (p.insurer_name) }
                    dt { "氏名" } dd { (p.name) " （" (p.kana) " / " (p.kana_half_width) "）" }
                    dt { "資格取得日" } dd { (p.acquired_on) }
                    dt { "資格喪失日" } dd { (p.lost_on.map(|d| d.to_string()).unwrap_or_default()) }
                    dt { "一部負担金割合" } dd { (p.copay_code) "（" (p.copay_percent) "%）" @if p.preschool { " 未就学者" } }
                    dt { "資格確認書" } dd {
                        @if let Some(c) = &p.certificate { (c.number) "（有効期限 " (c.valid_until) "）" }
                        @else { "なし" }
                    }
                }
            }
            h2 { "医療機関が受け取る応答（JSON）" }
            pre { (body) }
            (eligibility_form(&staff))
        },
    )))
}

/// The access log for administrators: the latest entries and the chain's state on demand.
#[get("/console/access-log")]
pub async fn access_log_page(
    state: web::Data<AppState>,
    staff: Staff,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(&[Role::Admin])?;
    let entries = state
        .blocking(|conn| Ok(shikaku_db::access_log::recent(conn, None, 200)?))
        .await?;
    Ok(html_response(access_log_markup(&staff, &entries, None)))
}

fn access_log_markup(
    staff: &Staff,
    entries: &[shikaku_db::access_log::StoredEntry],
    verification: Option<&shikaku_db::access_log::Verification>,
) -> Markup {
    page(
        "アクセスログ",
        Some(staff),
        html! {
            h1 { "アクセスログ" }
            form method="post" action="/console/access-log/verify" {
                input type="hidden" name="csrf" value=(staff.session.csrf);
                button.primary type="submit" { "改ざん検査（ハッシュチェーン）" }
            }
            @if let Some(v) = verification {
                @if v.ok() { p.ok role="status" { "チェーンは正常です（" (v.entries) "件）" } }
                @else { p.error role="alert" { "チェーンが壊れています：" (v.breaks.len()) "か所（最初は " (v.breaks[0].seq) " の " (v.breaks[0].kind) "）" } }
            }
            table {
                thead { tr { th { "番号" } th { "日時" } th { "誰が" } th { "操作" } th { "対象" } th { "理由" } } }
                tbody {
                    @for e in entries {
                        tr {
                            td { (e.seq) }
                            td { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                            td { (e.actor) " " span.muted { (e.role) } }
                            td { (e.action) }
                            td { (e.subject.clone().unwrap_or_default()) }
                            td { (e.reason.clone().unwrap_or_default()) }
                        }
                    }
                }
            }
        },
    )
}

/// Verifies the whole chain and shows the result.
#[post("/console/access-log/verify")]
pub async fn access_log_verify(
    state: web::Data<AppState>,
    staff: Staff,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(&[Role::Admin])?;
    staff.check_csrf(&form.csrf)?;
    let (entries, verification) = state
        .blocking(|conn| {
            let v = shikaku_db::access_log::verify(conn)?;
            let e = shikaku_db::access_log::recent(conn, None, 200)?;
            Ok((e, v))
        })
        .await?;
    Ok(html_response(access_log_markup(
        &staff,
        &entries,
        Some(&verification),
    )))
}

/// Registers the console's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::FormConfig::default()
            .limit(64 * 1024)
            .error_handler(|err, _| {
                ConsoleError::Api(ApiError::Invalid(crate::error::redact_numbers(&format!(
                    "フォームの内容が不正です: {err}"
                ))))
                .into()
            }),
    )
    .service(login_page)
    .service(login)
    .service(logout)
    .service(home)
    .service(search)
    .service(person)
    .service(eligibility_page)
    .service(eligibility_check)
    .service(access_log_page)
    .service(access_log_verify)
    .service(certificates::issue)
    .service(certificates::act)
    .service(certificates::pdf)
    .service(findings::queue)
    .service(findings::show)
    .service(findings::verdict)
    .service(findings::linkage_action)
    .service(uploads::imports_page)
    .service(uploads::imports_check)
    .service(uploads::imports_apply)
    .service(uploads::due_page)
    .service(uploads::due_check)
    .service(uploads::due_run)
    .service(uploads::mailing);
}
