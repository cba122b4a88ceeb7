//! The eligibility check as a clinic sees it: the same code, the same answer and the same
//! access-log entry as `POST /v1/eligibility`, shown as a page with the JSON the clinic gets,
//! including the optional カナ氏名 that tells twins apart and whether online viewing is blocked.
//! With the patient's consent ticked it shows both answers, with and without the 限度額適用区分
//! and 特定疾病, so staff see what consent changes.

use crate::input::CheckedForm;
use actix_web::{get, post, web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use shikaku_db::tokens::Role;
use shikaku_domain::eligibility::Validity;

use super::layout::{html_response, page};
use super::session::{ConsoleError, Staff};
use crate::eligibility::{answer_logged, EligibilityQuery};
use crate::error::ApiError;
use crate::state::AppState;

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
    #[serde(default)]
    kana: String,
    /// `on` when the patient consented to the 限度額適用区分 and 特定疾病 being shown.
    #[serde(default)]
    limit_consent: String,
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
            label for="e_kana" { "カナ氏名（枝番のない双子などの絞り込み・任意）" input #e_kana name="kana"; }
            label for="e_consent" {
                input #e_consent name="limit_consent" type="checkbox" value="on";
                " 限度額適用区分・特定疾病の提供に患者が同意（同意なしの場合は返りません）"
            }
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
    form: CheckedForm<EligibilityForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(&[Role::Provider, Role::Clerk, Role::Admin])?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let date = super::session::form_date;
    let query = EligibilityQuery {
        insurer_number: f.insurer_number.trim().to_string(),
        symbol: Some(f.symbol.trim().to_string()).filter(|s| !s.is_empty()),
        number: f.number.trim().to_string(),
        branch: Some(f.branch.trim().to_string()).filter(|s| !s.is_empty()),
        birth_date: date(&f.birth_date, "birth_date")?
            .ok_or_else(|| ConsoleError::Api(ApiError::Invalid("生年月日は必須です".into())))?,
        on: date(&f.on, "on")?,
        kana: Some(f.kana.trim().to_string()).filter(|s| !s.is_empty()),
        limit_consent: f.limit_consent == "on",
    };
    let answers = answer_logged(&state, &staff.caller, std::slice::from_ref(&query)).await?;
    let answer = answers
        .first()
        .ok_or_else(|| ConsoleError::Api(ApiError::Internal("no answer".into())))?;
    let valid = answer.validity == Validity::Valid;
    let meaning = answer.validity.label();
    let body = serde_json::to_string_pretty(answer).unwrap_or_default();
    // With consent, what the same clinic would have seen without it, side by side.
    let without = query.limit_consent.then(|| {
        serde_json::to_string_pretty(&answer.clone().without_consent()).unwrap_or_default()
    });
    Ok(html_response(page(
        "資格確認結果",
        Some(&staff),
        html! {
            h1 { "資格確認結果" }
            p { "確認日 " (answer.on) "： " strong.(if valid { "ok" } else { "error" }) { (meaning) } }
            @if let Some(v) = &answer.online_viewing {
                p #online_viewing { strong.(if v.blocked { "error" } else { "ok" }) { (v.label()) } }
            }
            @if let Some(p) = &answer.person {
                dl.grid {
                    dt { "保険者" } dd { (p.insurer_number) " " (p.insurer_name) }
                    dt { "氏名" } dd { (p.name) " （" (p.kana) " / " (p.kana_half_width) "）" }
                    dt { "資格取得日" } dd { (p.acquired_on) }
                    dt { "資格喪失日" } dd { (p.lost_on.map(|d| d.to_string()).unwrap_or_default()) }
                    dt { "一部負担金割合" } dd {
                        (p.copay_code) "（" (p.copay_percent) "%）" @if p.preschool { " 未就学者" }
                        " 発効期日 " (p.copay_effective_from)
                    }
                    dt { "限度額適用区分" } dd #limit_category {
                        @if let Some(c) = &p.limit_category { (c) }
                        @else if query.limit_consent { "なし" }
                        @else { "（同意なし: 表示されません）" }
                    }
                    dt { "特定疾病" } dd #specified_diseases {
                        @for d in &p.specified_diseases {
                            (d.disease.map(|x| x.label()).unwrap_or("特定疾病")) " 月額上限 " (d.cap_yen) "円 "
                        }
                        @if p.specified_diseases.is_empty() {
                            @if query.limit_consent { "なし" } @else { "（同意なし: 表示されません）" }
                        }
                    }
                    dt { "資格確認書" } dd {
                        @if let Some(c) = &p.certificate { (c.number) "（有効期限 " (c.valid_until) "）" }
                        @else { "なし" }
                    }
                }
            }
            @if let Some(without) = &without {
                div.grid {
                    div { h2 { "同意ありの応答（JSON）" } pre #with_consent { (body) } }
                    div { h2 { "同意なしの場合の応答（JSON）" } pre #without_consent { (without) } }
                }
            } @else {
                h2 { "医療機関が受け取る応答（JSON・同意なし）" }
                pre #without_consent { (body) }
            }
            (eligibility_form(&staff))
        },
    )))
}
