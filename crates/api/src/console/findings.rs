//! The auditors' findings queue: filters, a chart of findings by kind across runs, each finding
//! with the registry and resident-register values side by side as its audit run compared them
//! (differing fields highlighted, normalized forms shown, the run's variant table named), the
//! verdicts, and the linkage actions that resolve a finding.
//!
//! Correcting a number runs the registration-time check: when the person's five items differ
//! from the register's record for the right number, the page says which items (in Japanese)
//! and offers the correction again with a 理由付き疑いなし field; the number is never echoed
//! back into the form.

use crate::input::CheckedForm;

use actix_web::{get, post, web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;
use shikaku_db::findings;
use shikaku_db::identity_check::item_labels;
use shikaku_db::tokens::Role;
use shikaku_domain::finding::{Field, FieldMatch, FindingStatus, ReviewAction};
use shikaku_domain::records::LinkageSource;
use shikaku_domain::LinkageStatus;

use super::layout::{html_response, page};
use super::session::{ConsoleError, ReasonForm, Staff};
use crate::access::entry;
use crate::error::ApiError;
use crate::state::AppState;

const REVIEWERS: &[Role] = &[Role::Admin, Role::Auditor];

/// The differing items, in Japanese, `、`-separated.
pub(super) fn fields_label(fields: &[shikaku_domain::finding::Field]) -> String {
    let labels: Vec<&str> = fields.iter().map(|f| f.label()).collect();
    labels.join("、")
}

/// One finding, the two records side by side, and the actions.
#[get("/console/findings/{id}")]
pub async fn show(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(REVIEWERS)?;
    let id = id.into_inner();
    let (detail, person, linkage) = state
        .blocking(move |conn| {
            let detail = findings::show(conn, id)?;
            let linkage = match detail.finding.linkage_id {
                Some(l) => Some(shikaku_db::linkages::get(conn, l)?),
                None => None,
            };
            let person = shikaku_db::persons::get(conn, detail.finding.person_id)?;
            Ok((detail, person, linkage))
        })
        .await?;
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            "finding_read",
            Some(format!("person:{}", person.id)),
            json!({ "finding_id": id, "console": true }),
            json!({ "status": detail.finding.status }),
            None,
        )])
        .await?;
    let finding = &detail.finding;
    let events = &detail.events;
    Ok(html_response(page(
        "監査所見",
        Some(&staff),
        html! {
            h1 { "所見 #" (finding.id) " " span.badge.(finding.severity.as_str()) { (finding.severity.label()) } " " (finding.kind.label()) }
            p { (finding.detail) }
            dl.grid {
                dt { "被保険者" } dd {
                    a href={ "/console/persons/" (person.id) } { (person.record.name_kanji) } " "
                    (finding.person_key())
                }
                dt { "番号（下4桁）" } dd { "…" (finding.mn_last4) }
                dt { "状態" } dd { (finding.status.label()) @if let Some(r) = &finding.review_reason { "（" (r) "）" }
                    @if let Some(u) = finding.dismissed_until { " " span.muted { (u) " まで" } } }
                dt { "担当" } dd { (finding.assignee.clone().unwrap_or_else(|| "未割当".into())) }
                @if let Some(l) = &linkage { dt { "紐付け" } dd { span.badge.(l.status.as_str()) { (l.status.label()) } @if l.identity_confirmed { " 本人確認済" }
                    @if let Some(by) = l.suspended_by_finding {
                        " " span #blocked_by {
                            @if by == finding.id { "（この重大所見によりオンライン閲覧を停止中：理由付き疑いなしで解除、本人確認済または番号訂正でも解除）" }
                            @else { "（所見 #" (by) " によりオンライン閲覧を停止中）" }
                        }
                    }
                } }
            }
            h2 { "登録内容と住民基本台帳の比較（監査実行 #" (finding.last_seen_run) " の判定）" }
            @if finding.comparison.is_empty() { p.muted { "この所見には項目ごとの比較はありません。" } }
            @else {
                table {
                    thead { tr { th { "項目" } th { "被保険者台帳" } th { "住民基本台帳" } th { "正規化（台帳）" } th { "正規化（住基）" } th { "判定" } } }
                    tbody {
                        @for c in &finding.comparison {
                            @let differs = c.verdict.is_some_and(FieldMatch::disagrees);
                            @let text = c.verdict.map_or("比較不能", FieldMatch::label);
                            tr.diff[differs] {
                                th { (c.field.label()) }
                                td { (c.registry.clone().unwrap_or_default()) }
                                td { (c.register.clone().unwrap_or_default()) }
                                td.muted { (c.registry_key.clone().unwrap_or_default()) }
                                td.muted { (c.register_key.clone().unwrap_or_default()) }
                                td { @if differs { strong.error { (text) } } @else { (text) }
                                     @if let Some(s) = c.verdict.and_then(FieldMatch::score) { " (" (format!("{s:.2}")) ")" } }
                            }
                        }
                    }
                }
                @if let Some(t) = &detail.variant_table {
                    p.muted { "異体字表: " (t.sources.join(" + ")) "（" (t.characters) "字、SHA-256 " (t.sha256.get(..12).unwrap_or("")) "…）" }
                }
            }
            @if let Some(e) = &finding.evidence {
                h2 { "他人の番号である可能性（根拠の内訳）" }
                (super::waterfall::waterfall(e))
            }
            h2 { "判定" }
            @if finding.status != FindingStatus::Resolved {
                @for action in [ReviewAction::Confirm, ReviewAction::Dismiss] {
                    @let label = action.label();
                    form.box method="post" action={ "/console/findings/" (finding.id) "/" (action) } {
                        input type="hidden" name="csrf" value=(staff.session.csrf);
                        label for={ "reason_" (action) } { (label) "の理由"
                            input id={ "reason_" (action) } name="reason" required;
                        }
                        @if action == ReviewAction::Dismiss {
                            label for="until_dismiss" { "期限（任意。この日を過ぎると再び未対応に戻ります）"
                                input #until_dismiss name="until" type="date";
                            }
                        }
                        button.primary type="submit" id={ "do_" (action) } { (label) }
                    }
                }
            }
            @if let Some(l) = &linkage {
                @if l.status != LinkageStatus::Revoked {
                    h2 { "紐付けの操作" }
                    @for (action, label) in [("suspend", "閲覧停止"), ("confirm-identity", "本人確認済とする")] {
                        form.box method="post" action={ "/console/linkages/" (l.id) "/" (action) "?finding=" (finding.id) } {
                            input type="hidden" name="csrf" value=(staff.session.csrf);
                            label for={ "l_" (action) } { (label) "の理由" input id={ "l_" (action) } name="reason" required; }
                            button.primary type="submit" { (label) }
                        }
                    }
                    (correct_form(&staff.session.csrf, l.id, finding.id, ""))
                }
            }
            h2 { "履歴" }
            table {
                thead { tr { th { "日時" } th { "操作" } th { "誰が" } th { "理由" } } }
                tbody { @for e in events { tr {
                    td { (e.event.at.format("%Y-%m-%d %H:%M")) } td { (e.event.action) } td { (e.event.actor) }
                    td { (e.event.reason.clone().unwrap_or_default())
                         @if let Some(a) = &e.assignee { "担当: " (a) }
                         @if let Some(b) = e.bulk_id { " " span.muted { "（一括操作 #" (b) "）" } } }
                } } }
            }
        },
    )))
}

/// Confirm or dismiss (理由付き疑いなし) with a reason.
#[post("/console/findings/{id}/{action}")]
pub async fn verdict(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(i64, String)>,
    form: CheckedForm<ReasonForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(REVIEWERS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let (id, action) = path.into_inner();
    let review_action: ReviewAction = action
        .parse()
        .map_err(|_| ApiError::NotFound(format!("no action {action}")))?;
    let actor = staff.caller.actor();
    let caller = staff.caller.clone();
    state
        .logged_change(move |conn| {
            let verdict = findings::Verdict {
                action: review_action,
                reason: f.reason.clone(),
                until: super::session::form_date(&f.until, "期限")?,
            };
            let finding = findings::decide(conn, id, &verdict, &actor)?;
            let e = entry(
                &caller,
                &format!("finding_{review_action}"),
                Some(format!("person:{}", finding.person_id)),
                json!({ "finding_id": id, "console": true, "until": verdict.until }),
                json!({ "status": finding.status }),
                Some(&f.reason),
            );
            Ok(((), vec![e]))
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/console/findings/{id}")))
        .finish())
}

/// The correction form: the right number (never echoed back), the reason, and the optional
/// 理由付き疑いなし for a number whose register record differs from the person.
fn correct_form(csrf: &str, linkage: i64, finding: i64, reason: &str) -> Markup {
    html! {
        form.box method="post" action={ "/console/linkages/" (linkage) "/correct?finding=" (finding) } autocomplete="off" {
            input type="hidden" name="csrf" value=(csrf);
            label for="l_number" { "正しい個人番号（12桁・表示されません）"
                input #l_number name="my_number" type="password" inputmode="numeric" autocomplete="off" required;
            }
            label for="l_correct" { "訂正の理由" input #l_correct name="reason" value=(reason) required; }
            label for="l_no_error" { "理由付き疑いなし（住基と5情報が一致しなくても登録する理由。通常は空欄）"
                input #l_no_error name="no_error_reason";
            }
            button.primary type="submit" { "番号を訂正" }
        }
    }
}

/// The answer to a correction refused on the five items: which items differ, in Japanese, and
/// the form again with the 理由付き疑いなし field to fill in (the number must be typed again:
/// it is never put into a page).
fn mismatch_page(
    staff: &Staff,
    linkage: i64,
    finding: Option<i64>,
    reason: &str,
    differing: &[Field],
    not_compared: &[Field],
) -> HttpResponse {
    let back = finding.map_or_else(
        || "/console".to_string(),
        |f| format!("/console/findings/{f}"),
    );
    let body = page(
        "住基と不一致",
        Some(staff),
        html! {
            h1 { "住民基本台帳と5情報が一致しません" }
            p.error role="alert" {
                "入力された個人番号の住基の記録と、この被保険者の次の項目が一致しないため、訂正を登録していません: "
                strong { (item_labels(differing)) }
            }
            @if !not_compared.is_empty() {
                p.muted { "比較できなかった項目（どちらかに記録がない）: " (item_labels(not_compared)) }
            }
            p { "表記の違い（異体字、全角・半角、小書きの仮名、空白、住所の表記、住基の●）は不一致としていません。"
                "被保険者の登録内容を確認して訂正するか、誤りがないことを確認したうえで理由（理由付き疑いなし）を入力して、もう一度登録してください。"
                "この場合も本人確認済とはならず、夜間の監査で所見として確認されます。" }
            (correct_form(&staff.session.csrf, linkage, finding.unwrap_or_default(), reason))
            p { a href=(back) { "所見へ戻る" } }
        },
    );
    HttpResponse::Conflict()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body.into_string())
}

/// Where to go back to after a linkage action.
#[derive(Deserialize)]
pub struct Back {
    finding: Option<i64>,
}

/// Suspend a linkage, confirm its identity, or correct its number (revoking it and linking the
/// right one), with a reason.
#[post("/console/linkages/{id}/{action}")]
pub async fn linkage_action(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(i64, String)>,
    back: web::Query<Back>,
    form: CheckedForm<ReasonForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(&[Role::Admin, Role::Auditor, Role::Clerk])?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let (id, action) = path.into_inner();
    let actor = staff.caller.actor();
    let reason = f.reason.clone();
    let no_error = Some(f.no_error_reason.trim().to_string()).filter(|r| !r.is_empty());
    let a = action.clone();
    let number = if a == "correct" {
        Some(
            shikaku_domain::MyNumber::parse(f.my_number.trim())
                .map_err(|e| ApiError::Invalid(format!("個人番号: {e}")))?,
        )
    } else {
        None
    };
    let keyring = if number.is_some() {
        Some(state.keyring()?)
    } else {
        None
    };
    let caller = staff.caller.clone();
    let (reason_shown, no_error_logged) = (f.reason.clone(), no_error.clone());
    let result = state
        .logged_change(move |conn| {
            let view = match a.as_str() {
                "correct" => match (number, keyring) {
                    (Some(n), Some(k)) => shikaku_db::linkages::correct(
                        conn,
                        &k,
                        id,
                        &n,
                        LinkageSource::Jlis,
                        &reason,
                        no_error.as_deref(),
                        &actor,
                    )?,
                    _ => return Err(ApiError::Invalid("個人番号がありません".into())),
                },
                "suspend" => shikaku_db::linkages::suspend(conn, id, &reason, &actor)?,
                "confirm-identity" => {
                    shikaku_db::linkages::confirm_identity(conn, id, &reason, &actor)?
                }
                other => return Err(ApiError::NotFound(format!("no action {other}"))),
            };
            let e = entry(
                &caller,
                &format!("linkage_{}", a.replace('-', "_")),
                Some(format!("person:{}", view.person_id)),
                json!({ "linkage_id": id, "console": true, "no_error_reason": no_error }),
                json!({ "status": view.status, "identity_confirmed": view.identity_confirmed }),
                Some(&reason),
            );
            Ok((view, vec![e]))
        })
        .await;
    let view = match result {
        Ok(view) => view,
        // Refused on the five items: the page names items of the register's record for the
        // number, so the refusal is logged as a read of the person.
        Err(ApiError::IdentityMismatch {
            differing,
            not_compared,
        }) => {
            let person = state
                .blocking(move |conn| Ok(shikaku_db::linkages::get(conn, id)?.person_id))
                .await?;
            state
                .access_log
                .record(vec![entry(
                    &staff.caller,
                    "linkage_correct_refused",
                    Some(format!("person:{person}")),
                    json!({ "linkage_id": id, "console": true,
                            "no_error_reason": no_error_logged }),
                    json!({ "identity_mismatch": differing }),
                    Some(&reason_shown),
                )])
                .await?;
            return Ok(mismatch_page(
                &staff,
                id,
                back.finding,
                &reason_shown,
                &differing,
                &not_compared,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let to = match back.finding {
        Some(f) => format!("/console/findings/{f}"),
        None => format!("/console/persons/{}", view.person_id),
    };
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish())
}
