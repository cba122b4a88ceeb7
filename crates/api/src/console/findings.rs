//! The auditors' findings queue: filters, a chart of findings by kind across runs, each finding
//! with the registry and resident-register records side by side (differing fields highlighted,
//! normalized forms shown), the verdicts, and the linkage actions that resolve a finding.

use std::collections::BTreeMap;

use actix_web::{get, post, web, HttpResponse};
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;
use serde_json::json;
use shikaku_audit::compare::{compare_address, compare_kana_name, compare_kanji_name, FieldMatch};
use shikaku_audit::normalize::{address_key, kana_key, name_key};
use shikaku_audit::runner::review::{self, Filter, ReviewAction};
use shikaku_audit::{VariantTable, DEFAULT_SIMILARITY_THRESHOLD};
use shikaku_db::tokens::Role;

use super::{html_response, page, ConsoleError, Staff};
use crate::access::entry;
use crate::error::ApiError;
use crate::state::AppState;

const REVIEWERS: &[Role] = &[Role::Admin, Role::Auditor];

const KINDS: [&str; 7] = [
    "invalid_check_digit",
    "number_shared",
    "multiple_numbers",
    "not_in_registry",
    "resident_removed",
    "identity_mismatch",
    "address_mismatch",
];
const COLORS: [&str; 7] = [
    "#8c6d1f", "#b42318", "#c4320a", "#5b6470", "#6941c6", "#d92d20", "#0b5cad",
];

/// The queue's filters (no personal data, so a GET).
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
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string()).filter(|s| !s.is_empty())
}

/// Findings by kind for each recent run, as stacked horizontal bars.
fn chart(runs: &[review::RunCounts]) -> Markup {
    let totals: Vec<BTreeMap<&str, u64>> = runs
        .iter()
        .map(|r| {
            let mut by_kind = BTreeMap::new();
            if let Some(map) = r.counts.as_object() {
                for (key, n) in map {
                    let kind = key.split('/').next().unwrap_or("");
                    if let Some(k) = KINDS.iter().find(|k| **k == kind) {
                        *by_kind.entry(*k).or_insert(0) += n.as_u64().unwrap_or(0);
                    }
                }
            }
            by_kind
        })
        .collect();
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
        for (k, color) in KINDS.iter().zip(COLORS) {
            let n = t.get(k).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let w = 560.0 * n as f64 / max as f64;
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"16\" fill=\"{color}\"><title>{k}: {n}</title></rect>"
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
            @for (k, color) in KINDS.iter().zip(COLORS) {
                span style={ "color:" (color) } { "■" } " " (k) "　"
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
        status: some(&q.status),
        kind: some(&q.kind),
        severity: some(&q.severity),
        run_id: q.run.parse().ok(),
        limit: 500,
    };
    let (found, runs) = state
        .blocking(move |conn| Ok((review::list(conn, &filter)?, review::recent_runs(conn, 12)?)))
        .await?;
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            "findings_list",
            None,
            json!({ "kind": q.kind, "severity": q.severity, "status": q.status, "run": q.run, "console": true }),
            json!({ "finding_ids": found.iter().map(|f| f.id).collect::<Vec<_>>() }),
            None,
        )])
        .await?;
    let select = |name: &str, label: &str, options: &[&str], current: &str| {
        html! {
            label for=(name) { (label)
                select #(name) name=(name) {
                    option value="" { "すべて" }
                    @for o in options { option value=(o) selected[*o == current] { (o) } }
                }
            }
        }
    };
    Ok(html_response(page(
        "監査所見",
        Some(&staff),
        html! {
            h1 { "監査所見" }
            h2 { "実行ごとの所見（種類別）" }
            (chart(&runs))
            form.box method="get" action="/console/findings" {
                (select("kind", "種類", &KINDS, &q.kind))
                (select("severity", "重要度", &["critical", "high", "medium", "low"], &q.severity))
                (select("status", "状態", &["open", "confirmed", "dismissed", "resolved"], &q.status))
                label for="run" { "実行番号" input #run name="run" value=(q.run) inputmode="numeric"; }
                button.primary type="submit" { "絞り込み" }
            }
            p { (found.len()) "件" }
            table {
                thead { tr { th { "重要度" } th { "種類" } th { "被保険者" } th { "番号下4桁" } th { "相違項目" } th { "状態" } } }
                tbody {
                    @for f in &found {
                        tr {
                            td { span.badge.(f.severity) { (f.severity) } }
                            td { a href={ "/console/findings/" (f.id) } { (f.kind) } }
                            td { (f.insurer_number) ":" (f.symbol) ":" (f.number) ":" (f.branch) }
                            td { "…" (f.mn_last4) }
                            td { (f.fields) }
                            td { (f.status) @if let Some(l) = &f.linkage_status { " " span.muted { "（紐付け: " (l) "）" } } }
                        }
                    }
                }
            }
        },
    )))
}

/// One compared field: label, registry value, register value, their normalized forms, and
/// the verdict (`None` when one side is missing or unset).
type Compared = (
    &'static str,
    String,
    String,
    String,
    String,
    Option<FieldMatch>,
);

fn verdict_text(m: FieldMatch) -> (&'static str, bool) {
    match m {
        FieldMatch::Exact => ("一致", false),
        FieldMatch::Equivalent => ("同一（表記ゆれ）", false),
        FieldMatch::Similar { .. } => ("類似", true),
        FieldMatch::Different { .. } => ("相違", true),
    }
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
    let (finding, events, person, linkage, register) = state
        .blocking(move |conn| {
            let (finding, events) = review::show(conn, id)?;
            let linkage = match finding.linkage_id {
                Some(l) => Some(shikaku_db::linkages::get(conn, l)?),
                None => None,
            };
            let person = match &linkage {
                Some(l) => Some(shikaku_db::persons::get(conn, l.person_id)?),
                None => shikaku_db::persons::by_key(
                    conn,
                    &finding.insurer_number,
                    &finding.symbol,
                    &finding.number,
                    Some(&finding.branch),
                )?
                .into_iter()
                .next(),
            };
            let register = match finding.linkage_id {
                Some(l) => shikaku_db::linkages::register_record(conn, l)?,
                None => None,
            };
            Ok((finding, events, person, linkage, register))
        })
        .await?;
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            "finding_read",
            person.as_ref().map(|p| format!("person:{}", p.id)),
            json!({ "finding_id": id, "console": true }),
            json!({ "status": finding.status }),
            None,
        )])
        .await?;
    let table = VariantTable::default();
    let t = DEFAULT_SIMILARITY_THRESHOLD;
    let rows: Vec<Compared> = match (&person, &register) {
        (Some(p), Some(r)) => {
            let kana = r.name_kana.clone().unwrap_or_default();
            let addr_p = p.address.clone().unwrap_or_default();
            let addr_r = r.address.clone().unwrap_or_default();
            vec![
                (
                    "漢字氏名",
                    p.name_kanji.clone(),
                    r.name_kanji.clone(),
                    name_key(&p.name_kanji, &table),
                    name_key(&r.name_kanji, &table),
                    Some(compare_kanji_name(&p.name_kanji, &r.name_kanji, &table, t)),
                ),
                (
                    "カナ氏名",
                    p.name_kana.clone(),
                    kana.clone(),
                    kana_key(&p.name_kana),
                    kana_key(&kana),
                    (!kana.is_empty()).then(|| compare_kana_name(&p.name_kana, &kana, t)),
                ),
                (
                    "生年月日",
                    p.birth_date.to_string(),
                    r.birth_date.to_string(),
                    String::new(),
                    String::new(),
                    Some(if p.birth_date == r.birth_date {
                        FieldMatch::Exact
                    } else {
                        FieldMatch::Different { score: 0.0 }
                    }),
                ),
                (
                    "性別",
                    shikaku_domain::Sex::label_of(p.sex).to_string(),
                    shikaku_domain::Sex::label_of(r.sex).to_string(),
                    String::new(),
                    String::new(),
                    (p.sex != 3).then_some(if p.sex == r.sex {
                        FieldMatch::Exact
                    } else {
                        FieldMatch::Different { score: 0.0 }
                    }),
                ),
                (
                    "住所",
                    addr_p.clone(),
                    addr_r.clone(),
                    address_key(&addr_p).rest,
                    address_key(&addr_r).rest,
                    (!addr_p.is_empty() && !addr_r.is_empty())
                        .then(|| compare_address(&addr_p, &addr_r, t)),
                ),
            ]
        }
        _ => Vec::new(),
    };
    Ok(html_response(page(
        "監査所見",
        Some(&staff),
        html! {
            h1 { "所見 #" (finding.id) " " span.badge.(finding.severity) { (finding.severity) } " " (finding.kind) }
            p { (finding.detail) }
            dl.grid {
                dt { "被保険者" } dd {
                    @if let Some(p) = &person { a href={ "/console/persons/" (p.id) } { (p.name_kanji) } " " }
                    (finding.insurer_number) ":" (finding.symbol) ":" (finding.number) ":" (finding.branch)
                }
                dt { "番号（下4桁）" } dd { "…" (finding.mn_last4) }
                dt { "状態" } dd { (finding.status) @if let Some(r) = &finding.review_reason { "（" (r) "）" } }
                @if let Some(l) = &linkage { dt { "紐付け" } dd { span.badge.(l.status) { (l.status) } @if l.identity_confirmed { " 本人確認済" } } }
            }
            h2 { "登録内容と住民基本台帳の比較" }
            @if rows.is_empty() { p.muted { "比較できる住民基本台帳の記録はありません（" (register.as_ref().map_or("未収録", |r| r.status.as_str())) "）。" } }
            @else {
                table {
                    thead { tr { th { "項目" } th { "被保険者台帳" } th { "住民基本台帳" } th { "正規化（台帳）" } th { "正規化（住基）" } th { "判定" } } }
                    tbody {
                        @for (label, a, b, na, nb, m) in &rows {
                            @let (text, differs) = m.map_or(("比較不能", false), verdict_text);
                            tr.diff[differs] {
                                th { (label) }
                                td { (a) } td { (b) }
                                td.muted { (na) } td.muted { (nb) }
                                td { @if differs { strong.error { (text) } } @else { (text) }
                                     @if let Some(s) = m.and_then(FieldMatch::score) { " (" (format!("{s:.2}")) ")" } }
                            }
                        }
                    }
                }
            }
            h2 { "判定" }
            @if finding.status != "resolved" {
                @for (action, label) in [("confirm", "誤りを確認"), ("dismiss", "理由付き疑いなし")] {
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
                @if l.status != "revoked" {
                    h2 { "紐付けの操作" }
                    @for (action, label) in [("suspend", "閲覧停止"), ("confirm-identity", "本人確認済とする")] {
                        form.box method="post" action={ "/console/linkages/" (l.id) "/" (action) "?finding=" (finding.id) } {
                            input type="hidden" name="csrf" value=(staff.session.csrf);
                            label for={ "l_" (action) } { (label) "の理由" input id={ "l_" (action) } name="reason" required; }
                            button.primary type="submit" { (label) }
                        }
                    }
                    form.box method="post" action={ "/console/linkages/" (l.id) "/correct?finding=" (finding.id) } autocomplete="off" {
                        input type="hidden" name="csrf" value=(staff.session.csrf);
                        label for="l_number" { "正しい個人番号（12桁・表示されません）"
                            input #l_number name="my_number" type="password" inputmode="numeric" autocomplete="off" required;
                        }
                        label for="l_correct" { "訂正の理由" input #l_correct name="reason" required; }
                        button.primary type="submit" { "番号を訂正" }
                    }
                }
            }
            h2 { "履歴" }
            table {
                thead { tr { th { "日時" } th { "操作" } th { "誰が" } th { "理由" } } }
                tbody { @for e in &events { tr { td { (e.at.format("%Y-%m-%d %H:%M")) } td { (e.action) } td { (e.actor) } td { (e.reason.clone().unwrap_or_default()) } } } }
            }
        },
    )))
}

/// A reason form's body (and, to correct a linkage, the right number, which is never echoed
/// or logged).
#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    my_number: zeroize::Zeroizing<String>,
}

/// Confirm or dismiss (理由付き疑いなし) with a reason.
#[post("/console/findings/{id}/{action}")]
pub async fn verdict(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(i64, String)>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(REVIEWERS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let (id, action) = path.into_inner();
    let review_action = match action.as_str() {
        "confirm" => ReviewAction::Confirm,
        "dismiss" => ReviewAction::Dismiss,
        other => return Err(ApiError::NotFound(format!("no action {other}")).into()),
    };
    let actor = staff.caller.actor();
    let reason = f.reason.clone();
    let finding = state
        .blocking(move |conn| Ok(review::review(conn, id, review_action, &reason, &actor)?))
        .await?;
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            &format!("finding_{action}"),
            None,
            json!({ "finding_id": id, "console": true }),
            json!({ "status": finding.status }),
            Some(&f.reason),
        )])
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", format!("/console/findings/{id}")))
        .finish())
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
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(&[Role::Admin, Role::Auditor, Role::Clerk])?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let (id, action) = path.into_inner();
    let actor = staff.caller.actor();
    let reason = f.reason.clone();
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
    let view = state
        .blocking(move |conn| {
            Ok(match a.as_str() {
                "correct" => match (number, keyring) {
                    (Some(n), Some(k)) => {
                        shikaku_db::linkages::correct(conn, &k, id, &n, "jlis", &reason, &actor)?
                    }
                    _ => return Err(ApiError::Invalid("個人番号がありません".into())),
                },
                "suspend" => shikaku_db::linkages::suspend(conn, id, &reason, &actor)?,
                "confirm-identity" => {
                    shikaku_db::linkages::confirm_identity(conn, id, &reason, &actor)?
                }
                other => return Err(ApiError::NotFound(format!("no action {other}"))),
            })
        })
        .await?;
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            &format!("linkage_{}", action.replace('-', "_")),
            Some(format!("person:{}", view.person_id)),
            json!({ "linkage_id": id, "console": true }),
            json!({ "status": view.status }),
            Some(&f.reason),
        )])
        .await?;
    let to = match back.finding {
        Some(f) => format!("/console/findings/{f}"),
        None => format!("/console/persons/{}", view.person_id),
    };
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish())
}
