//! The person page's benefit section: the dated co-pay, 限度額適用区分 and 特定疾病 records with
//! their history, and the forms that add, end and correct one with a reason. The writes are the
//! db crate's (history, overlap refusal, certificates cut), logged like the API's.

use actix_web::{post, web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;
use shikaku_db::benefits::{self, BenefitInput, BenefitView};
use shikaku_db::persons::Change;
use shikaku_db::tokens::Role;
use shikaku_domain::benefit::{BenefitKind, Disease};
use strum::VariantArray;

use super::session::{form_date, ConsoleError, Staff};
use crate::access::entry;
use crate::auth::today_tokyo;
use crate::error::ApiError;
use crate::input::CheckedForm;
use crate::state::AppState;

const WRITERS: &[Role] = &[Role::Admin, Role::Clerk];

fn kind_options(selected: Option<&str>) -> Markup {
    html! {
        @for k in BenefitKind::VARIANTS {
            option value=(k.as_str()) selected[selected == Some(k.as_str())] { (k.label()) }
        }
    }
}

fn disease_options(selected: Option<&str>) -> Markup {
    html! {
        option value="" { "（特定疾病のみ）" }
        @for d in Disease::VARIANTS {
            option value=(d.as_str()) selected[selected == Some(d.as_str())] { (d.label()) }
        }
    }
}

/// What the record's value shows as (`3割`, `A03`, `10,000円（人工透析…）`).
fn shown(b: &BenefitView) -> String {
    b.benefit()
        .map_or_else(|_| b.value.clone(), |x| x.value.label())
}

/// The section: records (current ones marked), their history, and, for clerks, the forms.
pub(super) fn section(
    staff: &Staff,
    person_id: i64,
    list: &[BenefitView],
    history: &[Change],
) -> Markup {
    let today = today_tokyo();
    let writer = WRITERS.contains(&staff.caller.role);
    html! {
        h2 #benefits { "給付の記録（一部負担金割合・限度額適用区分・特定疾病）" }
        @if list.is_empty() { p.muted { "記録はありません（一部負担金割合は年齢の規則で決まります）。" } } @else {
        table {
            thead { tr { th { "種類" } th { "内容" } th { "開始日" } th { "終了日" } th { "本日" } @if writer { th { "操作" } } } }
            tbody {
                @for b in list {
                    @let current = b.valid_from <= today && b.valid_until.is_none_or(|u| today <= u);
                    tr {
                        td { (BenefitKind::parse(&b.kind).map_or_else(|_| b.kind.clone(), |k| k.label().to_owned())) }
                        td { (shown(b)) }
                        td { (b.valid_from) }
                        td { (b.valid_until.map(|d| d.to_string()).unwrap_or_default()) }
                        td { @if current { span.ok { "適用中" } } }
                        @if writer {
                            td {
                                form.inline method="post" action={ "/console/benefits/" (b.id) "/end" } {
                                    input type="hidden" name="csrf" value=(staff.session.csrf);
                                    input name="valid_until" type="date" required aria-label="終了日";
                                    input name="reason" required placeholder="理由" aria-label="終了の理由";
                                    button type="submit" { "終了" }
                                }
                                details {
                                    summary { "訂正" }
                                    form method="post" action={ "/console/benefits/" (b.id) "/correct" } {
                                        (fields(staff, Some(b)))
                                        button type="submit" { "訂正する" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        }
        @if !history.is_empty() {
            details #benefit_history {
                summary { "給付の変更履歴（" (history.len()) "件）" }
                table {
                    thead { tr { th { "日時" } th { "担当" } th { "操作" } th { "内容" } } }
                    tbody {
                        @for c in history {
                            tr {
                                td { (c.changed_at.format("%Y-%m-%d %H:%M")) }
                                td { (c.actor) }
                                td { (c.action) }
                                td { code { (c.changes.to_string()) } }
                            }
                        }
                    }
                }
            }
        }
        @if writer {
            details {
                summary { "記録を追加" }
                form #benefit_add method="post" action={ "/console/persons/" (person_id) "/benefits" } {
                    (fields(staff, None))
                    button.primary type="submit" { "追加する" }
                }
            }
        }
    }
}

/// The record's fields, filled from `b` for a correction.
fn fields(staff: &Staff, b: Option<&BenefitView>) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(staff.session.csrf);
        label { "種類" select name="kind" { (kind_options(b.map(|b| b.kind.as_str()))) } }
        label { "内容（割合 10/20/30、区分 A01–B10、特定疾病は上限額 10000/20000）"
            input name="value" required value=(b.map(|b| b.value.as_str()).unwrap_or("")); }
        label { "疾病" select name="disease" { (disease_options(b.and_then(|b| b.disease.as_deref()))) } }
        label { "開始日" input name="valid_from" type="date" required value=(b.map(|b| b.valid_from.to_string()).unwrap_or_default()); }
        label { "終了日（空欄は期限なし）" input name="valid_until" type="date" value=(b.and_then(|b| b.valid_until).map(|d| d.to_string()).unwrap_or_default()); }
        label { "理由" input name="reason" required; }
    }
}

/// The add and correct forms' body.
#[derive(Deserialize)]
pub struct RecordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    disease: String,
    #[serde(default)]
    valid_from: String,
    #[serde(default)]
    valid_until: String,
    #[serde(default)]
    reason: String,
}

impl RecordForm {
    fn input(&self) -> Result<BenefitInput, ApiError> {
        Ok(BenefitInput {
            kind: BenefitKind::parse(&self.kind)
                .map_err(|e| ApiError::Invalid(format!("種類: {e}")))?,
            value: self.value.trim().to_owned(),
            disease: match self.disease.trim() {
                "" => None,
                d => Some(Disease::parse(d).map_err(|e| ApiError::Invalid(format!("疾病: {e}")))?),
            },
            valid_from: form_date(&self.valid_from, "開始日")?
                .ok_or_else(|| ApiError::Invalid("開始日は必須です".into()))?,
            valid_until: form_date(&self.valid_until, "終了日")?,
        })
    }
}

/// The end form's body.
#[derive(Deserialize)]
pub struct EndForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    valid_until: String,
    #[serde(default)]
    reason: String,
}

fn back_to(person_id: i64) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", format!("/console/persons/{person_id}#benefits")))
        .finish()
}

fn logged(
    caller: &crate::auth::Caller,
    action: &str,
    w: &benefits::Written,
    request: serde_json::Value,
    reason: &str,
) -> shikaku_db::access_log::NewEntry {
    entry(
        caller,
        action,
        Some(format!("person:{}", w.benefit.person_id)),
        request,
        json!({ "benefit_id": w.benefit.id, "certificates_cut": w.certificates_cut, "console": true }),
        Some(reason),
    )
}

/// Adds a record, then shows the person again.
#[post("/console/persons/{id}/benefits")]
pub async fn add(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
    form: CheckedForm<RecordForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(WRITERS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let person_id = id.into_inner();
    let input = f.input()?;
    let actor = staff.caller.actor();
    let s = staff.caller.clone();
    state
        .logged_change(move |conn| {
            let w = benefits::add(conn, person_id, &input, &actor, &f.reason, today_tokyo())?;
            let e = logged(
                &s,
                "benefit_add",
                &w,
                json!({ "person_id": person_id, "record": input }),
                &f.reason,
            );
            Ok(((), vec![e]))
        })
        .await?;
    Ok(back_to(person_id))
}

/// Corrects a record, then shows the person again.
#[post("/console/benefits/{id}/correct")]
pub async fn correct(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
    form: CheckedForm<RecordForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(WRITERS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let id = id.into_inner();
    let input = f.input()?;
    let actor = staff.caller.actor();
    let s = staff.caller.clone();
    let person_id = state
        .logged_change(move |conn| {
            let w = benefits::correct(conn, id, &input, &actor, &f.reason, today_tokyo())?;
            let e = logged(
                &s,
                "benefit_correct",
                &w,
                json!({ "benefit_id": id, "record": input }),
                &f.reason,
            );
            Ok((w.benefit.person_id, vec![e]))
        })
        .await?;
    Ok(back_to(person_id))
}

/// Ends a record, then shows the person again.
#[post("/console/benefits/{id}/end")]
pub async fn end(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
    form: CheckedForm<EndForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(WRITERS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let id = id.into_inner();
    let until = form_date(&f.valid_until, "終了日")?
        .ok_or_else(|| ApiError::Invalid("終了日は必須です".into()))?;
    let actor = staff.caller.actor();
    let s = staff.caller.clone();
    let person_id = state
        .logged_change(move |conn| {
            let w = benefits::end(conn, id, until, &actor, &f.reason, today_tokyo())?;
            let e = logged(
                &s,
                "benefit_end",
                &w,
                json!({ "benefit_id": id, "valid_until": until }),
                &f.reason,
            );
            Ok((w.benefit.person_id, vec![e]))
        })
        .await?;
    Ok(back_to(person_id))
}
