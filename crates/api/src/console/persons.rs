//! Person search and the person page: search by 記号・番号 or by kana name and birth date
//! (POST, so personal keys stay out of URLs and browser history), and one person with
//! identity, household, periods, co-pay, linkages, certificates and open findings. Every view
//! is in the access log.

use crate::input::CheckedForm;
use actix_web::{get, post, web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;
use shikaku_db::tokens::Role;
use shikaku_domain::free_text::FreeText;
use shikaku_domain::{KanaName, LossReason, Relationship, Sex};

use super::layout::{html_response, page};
use super::session::{ConsoleError, Staff};
use crate::access::{entry, returned_persons};
use crate::auth::today_tokyo;
use crate::error::ApiError;
use crate::state::AppState;

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
    form: CheckedForm<SearchForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(READERS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let invalid = |m: String| ConsoleError::Api(ApiError::Invalid(m));
    if f.by != "kana" && f.by != "key" {
        return Err(invalid("検索の種類が不正です".into()));
    }
    // The terms are logged as typed, so none may hold a My Number typed by mistake.
    for term in [
        &f.insurer_number,
        &f.symbol,
        &f.number,
        &f.branch,
        &f.kana,
        &f.birth_date,
    ] {
        FreeText::SearchText
            .check(term)
            .map_err(|e| invalid(e.to_string()))?;
    }
    let found = if f.by == "kana" {
        let kana = KanaName::parse(&f.kana).map_err(|e| invalid(format!("カナ氏名: {e}")))?;
        let birth = super::session::form_date(&f.birth_date, "生年月日")?;
        state
            // A search: the read path (a standby when one is fit to answer).
            .blocking_read(move |conn| Ok(shikaku_db::persons::by_kana(conn, &kana, birth)?))
            .await?
    } else {
        let ins = shikaku_domain::InsurerNumber::parse(f.insurer_number.trim())
            .map_err(|e| invalid(format!("保険者番号: {e}")))?;
        let symbol = f.symbol.trim().to_string();
        let number = f.number.trim().to_string();
        let branch = Some(f.branch.trim().to_string()).filter(|b| !b.is_empty());
        state
            .blocking_read(move |conn| {
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
    // The terms are logged as typed: a key or a kana name and birth date, checked above to hold
    // no My Number (the console has no search by number).
    let terms = if f.by == "kana" {
        json!({ "by": "kana", "kana": f.kana, "birth_date": f.birth_date, "console": true })
    } else {
        json!({ "by": "key", "insurer_number": f.insurer_number, "symbol": f.symbol,
                "number": f.number, "branch": f.branch, "console": true })
    };
    let (subject, returned) = returned_persons(found.iter().map(|p| p.id));
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            "person_search",
            subject,
            terms,
            returned,
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
                                td { (p.record.insurer_number) " " span.muted { (p.record.insurer_name) } }
                                td { (p.record.symbol) "・" (p.record.number) "・" (p.record.branch) }
                                td { a href={ "/console/persons/" (p.id) } { (p.record.name_kanji) } }
                                td { (p.record.name_kana) }
                                td { (p.record.birth_date) }
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
    let (p, periods, linkages, certificates, household, findings, benefits, benefit_history) =
        state
            .blocking(move |conn| {
                let p = shikaku_db::persons::get(conn, id)?;
                let periods = shikaku_db::persons::periods(conn, id)?;
                let linkages = shikaku_db::linkages::of_person(conn, id)?;
                let certificates = shikaku_db::certificates::of_person(conn, id)?;
                let household = shikaku_db::persons::by_key(
                    conn,
                    &p.record.insurer_number,
                    &p.record.symbol,
                    &p.record.number,
                    None,
                )?;
                let findings = shikaku_db::findings::of_person(conn, id)?;
                let benefits = shikaku_db::benefits::of_person(conn, id)?;
                let benefit_history: Vec<shikaku_db::persons::Change> =
                    shikaku_db::persons::history(conn, id)?
                        .into_iter()
                        .filter(|c| c.action.starts_with("benefit_"))
                        .collect();
                Ok((
                    p,
                    periods,
                    linkages,
                    certificates,
                    household,
                    findings,
                    benefits,
                    benefit_history,
                ))
            })
            .await?;
    // The household's names and birth dates are on the page too: each member shown gets an
    // entry of their own, so "who read this person's data?" finds it.
    let mut entries = vec![entry(
        &staff.caller,
        "person_read",
        Some(format!("person:{id}")),
        json!({ "person_id": id, "console": true }),
        json!({ "found": true, "household": household.iter().map(|m| m.id).collect::<Vec<_>>() }),
        None,
    )];
    entries.extend(household.iter().filter(|m| m.id != id).map(|m| {
        entry(
            &staff.caller,
            "person_household_read",
            Some(format!("person:{}", m.id)),
            json!({ "shown_on_person": id, "console": true }),
            json!({ "fields": ["branch", "name_kanji", "birth_date"] }),
            None,
        )
    }));
    state.access_log.record(entries).await?;
    let today = today_tokyo();
    let records = benefits
        .iter()
        .map(shikaku_db::benefits::BenefitView::benefit)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::from)?;
    let copay = p.record.benefits(&records).rate_on(today);
    let sex = Sex::label_of(p.record.sex);
    let relationship =
        Relationship::from_code(p.record.relationship).map_or("", Relationship::label);
    Ok(html_response(page(
        &p.record.name_kanji,
        Some(&staff),
        html! {
            h1 { (p.record.name_kanji) " " span.muted { (p.record.name_kana) } }
            dl.grid {
                dt { "保険者" } dd { (p.record.insurer_number) " " (p.record.insurer_name) }
                dt { "記号・番号・枝番" } dd { (p.record.symbol) "・" (p.record.number) "・" (p.record.branch) }
                dt { "本人・家族" } dd { (relationship) }
                dt { "生年月日" } dd { (p.record.birth_date) }
                dt { "性別" } dd { (sex) }
                dt { "住所" } dd { (p.record.postal_code.clone().unwrap_or_default()) " " (p.record.address.clone().unwrap_or_default()) }
                dt { "一部負担金割合（本日）" } dd { (copay.percent()) "%" }
            }
            h2 { "資格の履歴" }
            table {
                thead { tr { th { "資格取得日" } th { "資格喪失日" } th { "喪失事由" } th { "本日" } } }
                tbody {
                    @for q in &periods {
                        @let current = q.covers(today);
                        tr {
                            td { (q.acquired_on) }
                            td { (q.lost_on.map(|d| d.to_string()).unwrap_or_default()) }
                            td { (q.loss_reason.map_or("", LossReason::label)) }
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
                            td { (m.record.branch) }
                            td { @if m.id == p.id { (m.record.name_kanji) } @else { a href={ "/console/persons/" (m.id) } { (m.record.name_kanji) } } }
                            td { (m.record.birth_date) }
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
                            td { span.badge.(l.status.as_str()) { (l.status.label()) }
                                 @if let Some(f) = l.suspended_by_finding { " " a href={ "/console/findings/" (f) } { "（監査所見 #" (f) "）" } } }
                            td { @if l.identity_confirmed { "確認済" } @else { "未確認" } }
                            td { (source_label(l.source)) }
                            td { (l.linked_on) }
                        }
                    }
                }
            }
            }
            (super::benefits::section(&staff, p.id, &benefits, &benefit_history))
            (super::certificates::section(&staff, &p.record, p.id, &certificates))
            h2 { "未解決の監査所見" }
            @if findings.is_empty() { p.muted { "ありません。" } } @else {
            table {
                thead { tr { th { "重要度" } th { "種類" } th { "内容" } th { "状態" } } }
                tbody {
                    @for f in &findings {
                        tr {
                            td { span.badge.(f.severity.as_str()) { (f.severity.label()) } }
                            td { a href={ "/console/findings/" (f.id) } { (f.kind.label()) } }
                            td { (f.detail) }
                            td { (f.status.label()) }
                        }
                    }
                }
            }
            }
        },
    )))
}

/// Where a linked number came from, as the console names it.
fn source_label(source: shikaku_domain::records::LinkageSource) -> &'static str {
    use shikaku_domain::records::LinkageSource;
    match source {
        LinkageSource::Employer => "事業主",
        LinkageSource::Applicant => "本人申告",
        LinkageSource::Jlis => "J-LIS照会",
        LinkageSource::Other => "その他",
    }
}
