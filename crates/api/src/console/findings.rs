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
use std::collections::BTreeMap;

use actix_web::{get, post, web, HttpResponse};
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;
use serde_json::json;
use shikaku_db::findings::{self, runs, Filter};
use shikaku_db::identity_check::item_labels;
use shikaku_db::tokens::Role;
use shikaku_domain::finding::{
    Field, FieldMatch, FindingKind, FindingStatus, ReviewAction, Severity,
};
use shikaku_domain::records::LinkageSource;
use shikaku_domain::LinkageStatus;
use strum::VariantArray;

use super::layout::{html_response, page};
use super::session::{ConsoleError, ReasonForm, Staff};
use crate::access::{entry, returned_persons};
use crate::error::ApiError;
use crate::state::AppState;

const REVIEWERS: &[Role] = &[Role::Admin, Role::Auditor];

/// One colour per kind, in [`FindingKind::ALL`] order.
pub(super) const COLORS: [&str; 7] = [
    "#8c6d1f", "#b42318", "#c4320a", "#5b6470", "#6941c6", "#d92d20", "#0b5cad",
];

/// The queue's filters (no personal data, so a GET). An empty or unknown value means any.
#[derive(Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    run: String,
    /// `probability` sorts by the probability of another person; anything else by severity.
    #[serde(default)]
    sort: String,
}

/// Findings by kind for each recent run, as stacked horizontal bars.
fn chart(runs: &[runs::RunCounts]) -> Markup {
    let totals: Vec<&BTreeMap<FindingKind, u64>> = runs.iter().map(|r| &r.by_kind).collect();
    let max = totals
        .iter()
        .map(|t| t.values().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let row_h = 22.0;
    let height = row_h * runs.len() as f64 + 30.0;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"実行ごとの所見数（種類別）\" viewBox=\"0 0 760 {height}\" width=\"100%\" height=\"{height}\">"
    );
    for (i, (run, t)) in runs.iter().zip(&totals).enumerate() {
        let y = 4.0 + row_h * i as f64;
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\" font-size=\"12\">#{} {}</text>",
            y + 14.0,
            run.id,
            run.run_date
        ));
        let mut x = 140.0;
        for (k, color) in FindingKind::ALL.iter().zip(COLORS) {
            let n = t.get(k).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let w = 560.0 * n as f64 / max as f64;
            let label = k.label();
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"16\" fill=\"{color}\"><title>{label}: {n}</title></rect>"
            ));
            x += w;
        }
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{}</text>",
            x + 4.0,
            y + 13.0,
            t.values().sum::<u64>()
        ));
    }
    svg.push_str("</svg>");
    html! {
        (PreEscaped(svg))
        p.muted {
            @for (i, k) in FindingKind::ALL.iter().enumerate() {
                // A class, not a style attribute: the content security policy allows no inline
                // style (the colours are in the stylesheet, from the same COLORS).
                span class={ "legend-" (i) } { "■" } " " (k.label()) "　"
            }
        }
    }
}

/// The queue.
#[get("/console/findings")]
pub async fn queue(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(REVIEWERS)?;
    let q = query.into_inner();
    let filter = Filter {
        status: FindingStatus::parse(&q.status),
        kind: FindingKind::parse(&q.kind),
        severity: Severity::parse(&q.severity),
        run_id: q.run.parse().ok(),
        limit: 500,
        order: q.sort.parse().unwrap_or_default(),
    };
    let (found, recent) = state
        .blocking(move |conn| Ok((findings::list(conn, &filter)?, runs::recent(conn, 12)?)))
        .await?;
    let (subject, returned) = returned_persons(found.iter().map(|f| f.person_id));
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            "findings_list",
            subject,
            json!({ "kind": q.kind, "severity": q.severity, "status": q.status, "run": q.run, "sort": q.sort, "console": true }),
            returned,
            None,
        )])
        .await?;
    // Options as (stored name, Japanese label).
    let select = |name: &str, label: &str, options: &[(&str, &str)], current: &str| {
        html! {
            label for=(name) { (label)
                select #(name) name=(name) {
                    option value="" { "すべて" }
                    @for (value, text) in options { option value=(value) selected[*value == current] { (text) } }
                }
            }
        }
    };
    let kinds: Vec<(&str, &str)> = FindingKind::ALL
        .iter()
        .map(|k| (k.as_str(), k.label()))
        .collect();
    let severities: Vec<(&str, &str)> = Severity::MOST_SEVERE_FIRST
        .iter()
        .map(|s| (s.as_str(), s.label()))
        .collect();
    let statuses: Vec<(&str, &str)> = FindingStatus::VARIANTS
        .iter()
        .map(|s| (s.as_str(), s.label()))
        .collect();
    Ok(html_response(page(
        "監査所見",
        Some(&staff),
        html! {
            h1 { "監査所見" }
            h2 { "実行ごとの所見（種類別）" }
            (chart(&recent))
            form.box method="get" action="/console/findings" {
                (select("kind", "種類", &kinds, &q.kind))
                (select("severity", "重要度", &severities, &q.severity))
                (select("status", "状態", &statuses, &q.status))
                label for="run" { "実行番号" input #run name="run" value=(q.run) inputmode="numeric"; }
                label for="sort" { "並び順"
                    select #sort name="sort" {
                        option value="severity" selected[q.sort != "probability"] { "重要度順" }
                        option value="probability" selected[q.sort == "probability"] { "他人の可能性が高い順" }
                    }
                }
                button.primary type="submit" { "絞り込み" }
            }
            p { (found.len()) "件" }
            table {
                thead { tr { th { "重要度" } th { a #sort_probability href=(sort_link(&q)) { "他人の可能性" } } th { "種類" } th { "被保険者" } th { "番号下4桁" } th { "相違項目" } th { "状態" } } }
                tbody {
                    @for f in &found {
                        tr {
                            td { span.badge.(f.severity.as_str()) { (f.severity.label()) } }
                            td.p_other { @if let Some(p) = f.p_other_person { (super::waterfall::percent(p)) } }
                            td { a href={ "/console/findings/" (f.id) } { (f.kind.label()) } }
                            td { (f.person_key()) }
                            td { "…" (f.mn_last4) }
                            td { (fields_label(&f.fields)) }
                            td { (f.status.label()) @if let Some(l) = f.linkage_status { " " span.muted { "（紐付け: " (l.label()) "）" } } }
                        }
                    }
                }
            }
        },
    )))
}

/// The queue with the same filters, sorted by the probability of another person.
fn sort_link(q: &QueueQuery) -> String {
    let query = serde_urlencoded::to_string([
        ("kind", q.kind.as_str()),
        ("severity", q.severity.as_str()),
        ("status", q.status.as_str()),
        ("run", q.run.as_str()),
        ("sort", "probability"),
    ])
    .unwrap_or_default();
    format!("/console/findings?{query}")
}

/// The differing items, in Japanese, `、`-separated.
fn fields_label(fields: &[shikaku_domain::finding::Field]) -> String {
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
                dt { "状態" } dd { (finding.status.label()) @if let Some(r) = &finding.review_reason { "（" (r) "）" } }
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
                tbody { @for e in events { tr { td { (e.at.format("%Y-%m-%d %H:%M")) } td { (e.action) } td { (e.actor) } td { (e.reason.clone().unwrap_or_default()) } } } }
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
            let finding = findings::review(conn, id, review_action, &f.reason, &actor)?;
            let e = entry(
                &caller,
                &format!("finding_{review_action}"),
                Some(format!("person:{}", finding.person_id)),
                json!({ "finding_id": id, "console": true }),
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
