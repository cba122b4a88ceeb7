//! The page frame every console page shares: the stylesheet, the header with the navigation
//! the user's role allows, and the HTML response (never cached: pages hold personal data).

use actix_web::get;
use actix_web::http::header;
use actix_web::HttpResponse;
use maud::{html, Markup, DOCTYPE};
use shikaku_db::tokens::Role;

use super::session::Staff;

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
body.docs{margin:2rem auto;max-width:72rem;padding:0 1rem}
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
                link rel="stylesheet" href="/console/style.css";
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
                        span.who { (s.caller.name) "（" (s.caller.role.label()) "）" }
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

/// The console's (and the API reference's) stylesheet, served rather than inline so that the
/// content security policy can forbid inline style. It holds nothing personal, so browsers may
/// cache it.
#[get("/console/style.css")]
pub async fn stylesheet() -> HttpResponse {
    let mut css = String::from(STYLE);
    for (i, color) in super::queue::COLORS.iter().enumerate() {
        css.push_str(&format!(".legend-{i}{{color:{color}}}\n"));
    }
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(css)
}

pub(crate) fn html_response(markup: Markup) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}
