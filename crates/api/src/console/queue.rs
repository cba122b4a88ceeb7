//! The auditors' review queue: filters, five orders, a page at a time with the exact count,
//! "my queue", ticking findings, assigning them, bulk decisions through a preview, today's
//! bulk actions with their undo, and the CSV export of the filtered queue (with a reason, in
//! the access log). The repository functions are the API's; this is their Japanese face.

use std::collections::{BTreeMap, HashMap};

use actix_web::{get, post, web, HttpResponse};
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;
use serde_json::json;
use shikaku_db::findings::bulk::{self, Assignment, Preview, Selection};
use shikaku_db::findings::{self, runs, Cursor, Filter, QueueOrder, Verdict};
use shikaku_db::tokens::Role;
use shikaku_domain::finding::{FindingKind, FindingStatus, ReviewAction, Severity};
use strum::VariantArray;

use super::findings::fields_label;
use super::layout::{html_response, page};
use super::session::{form_date, ConsoleError, Staff};
use crate::access::{entry, returned_persons};
use crate::error::ApiError;
use crate::findings::filter_of;
use crate::state::AppState;

const REVIEWERS: &[Role] = &[Role::Admin, Role::Auditor];

/// Findings per page.
const PAGE: i64 = 100;

/// One colour per kind, in [`FindingKind::ALL`] order.
pub(super) const COLORS: [&str; 7] = [
    "#8c6d1f", "#b42318", "#c4320a", "#5b6470", "#6941c6", "#d92d20", "#0b5cad",
];

/// The queue's filters, order and page (no personal data, so a GET). An empty or unknown
/// kind, severity, status or order means any (or the default order); `assignee` is a
/// reviewer's name, `-` for unassigned.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    insurer: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    run: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    after: String,
}

impl QueueQuery {
    fn filter(&self) -> Result<Filter, ApiError> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        filter_of(
            FindingStatus::parse(&self.status),
            FindingKind::parse(&self.kind),
            Severity::parse(&self.severity),
            text(&self.insurer),
            text(&self.assignee),
            self.run.trim().parse().ok(),
        )
    }

    fn order(&self) -> QueueOrder {
        self.sort.parse().unwrap_or_default()
    }

    /// The filter fields as (name, value) pairs, for links and hidden fields.
    fn pairs(&self) -> [(&'static str, &str); 7] {
        [
            ("kind", &self.kind),
            ("severity", &self.severity),
            ("status", &self.status),
            ("insurer", &self.insurer),
            ("assignee", &self.assignee),
            ("run", &self.run),
            ("sort", &self.sort),
        ]
    }

    /// The queue with these filters, from the start or after `after`.
    fn link(&self, after: Option<&str>) -> String {
        let mut pairs: Vec<(&str, &str)> = self.pairs().to_vec();
        if let Some(a) = after {
            pairs.push(("after", a));
        }
        format!(
            "/console/findings?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }

    fn hidden(&self) -> Markup {
        html! { @for (name, value) in self.pairs() { input type="hidden" name=(name) value=(value); } }
    }
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

/// The queue, a page at a time.
#[get("/console/findings")]
pub async fn queue(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(REVIEWERS)?;
    let q = query.into_inner();
    let filter = q.filter()?;
    let order = q.order();
    let after: Option<Cursor> = match q.after.trim() {
        "" => None,
        a => Some(a.parse().map_err(ApiError::from)?),
    };
    let mut request = filter.describe();
    request["sort"] = json!(order);
    request["after"] = json!(q.after);
    request["console"] = json!(true);
    let (found, recent) = state
        .blocking(move |conn| {
            let page = findings::page(conn, &filter, order, after.as_ref(), PAGE)?;
            Ok((page, runs::recent(conn, 12)?))
        })
        .await?;
    let (subject, returned) = returned_persons(found.findings.iter().map(|f| f.person_id));
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            "findings_list",
            subject,
            request,
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
    let mine = QueueQuery {
        assignee: staff.caller.name.clone(),
        status: "open".into(),
        ..QueueQuery::default()
    };
    let by_probability = QueueQuery {
        sort: "probability".into(),
        after: String::new(),
        ..q.clone()
    };
    Ok(html_response(page(
        "監査所見",
        Some(&staff),
        html! {
            h1 { "監査所見" }
            p { a #my_queue href=(mine.link(None)) { "自分の担当（未対応）" } "　"
                a href="/console/findings/bulk" { "本日の一括操作" } "　"
                a #report_link href="/console/findings/report" { "点検の集計" } }
            h2 { "実行ごとの所見（種類別）" }
            (chart(&recent))
            form.box method="get" action="/console/findings" {
                (select("kind", "種類", &kinds, &q.kind))
                (select("severity", "重要度", &severities, &q.severity))
                (select("status", "状態", &statuses, &q.status))
                label for="insurer" { "保険者番号" input #insurer name="insurer" value=(q.insurer) inputmode="numeric"; }
                label for="assignee" { "担当（- は未割当）" input #assignee name="assignee" value=(q.assignee); }
                label for="run" { "実行番号" input #run name="run" value=(q.run) inputmode="numeric"; }
                label for="sort" { "並び順"
                    select #sort name="sort" {
                        @for o in QueueOrder::ALL {
                            option value=(o.as_str()) selected[*o == order] { (o.label()) "順" }
                        }
                    }
                }
                button.primary type="submit" { "絞り込み" }
            }
            p #total { "該当 " strong { (found.total) } " 件" @if !q.after.is_empty() { "（続きのページ）" } }
            form #bulk method="post" action="/console/findings/bulk/preview" {
                input type="hidden" name="csrf" value=(staff.session.csrf);
                (q.hidden())
                table {
                    thead { tr { th { "選択" } th { "重要度" } th { a #sort_probability href=(by_probability.link(None)) { "他人の可能性" } } th { "種類" } th { "被保険者" } th { "番号下4桁" } th { "相違項目" } th { "担当" } th { "状態" } } }
                    tbody {
                        @for f in &found.findings {
                            tr {
                                td { input type="checkbox" name={ "pick_" (f.id) } value="on" aria-label={ "所見 #" (f.id) " を選択" }; }
                                td { span.badge.(f.severity.as_str()) { (f.severity.label()) } }
                                td.p_other { @if let Some(p) = f.p_other_person { (super::waterfall::percent(p)) } }
                                td { a href={ "/console/findings/" (f.id) } { (f.kind.label()) } }
                                td { (f.person_key()) }
                                td { "…" (f.mn_last4) }
                                td { (fields_label(&f.fields)) }
                                td.assignee { (f.assignee.clone().unwrap_or_default()) }
                                td { (f.status.label()) @if let Some(l) = f.linkage_status { " " span.muted { "（紐付け: " (l.label()) "）" } } }
                            }
                        }
                    }
                }
                p {
                    @if !q.after.is_empty() { a href=(q.link(None)) { "先頭へ" } "　" }
                    @if let Some(next) = &found.next_cursor { a #next_page href=(q.link(Some(next))) { "次の" (PAGE) "件" } }
                }
                fieldset.box {
                    legend { "一括操作（重大の所見は含められません。一件ずつ判断してください）" }
                    label { input type="radio" name="scope" value="picked" checked; " チェックした所見" }
                    label { input type="radio" name="scope" value="filter"; " 絞り込み条件に該当するすべて（" (found.total) "件）" }
                    label for="bulk_action" { "判断"
                        select #bulk_action name="action" {
                            option value="dismiss" { (ReviewAction::Dismiss.label()) }
                            option value="confirm" { (ReviewAction::Confirm.label()) }
                        }
                    }
                    label for="bulk_reason" { "共通の理由" input #bulk_reason name="reason"; }
                    label for="bulk_until" { "期限（疑いなしの場合・任意）" input #bulk_until name="until" type="date"; }
                    button.primary #bulk_preview type="submit" { "内容を確認" }
                    label for="reviewers" { "担当者（トークン名、カンマ区切り。空欄で割当解除）" input #reviewers name="reviewers"; }
                    label for="each" { "一人あたりの件数（空欄で均等）" input #each name="each" inputmode="numeric"; }
                    button #assign type="submit" formaction="/console/findings/assign" { "担当を割り当て" }
                    label for="export_reason" { "CSV出力の理由" input #export_reason name="export_reason"; }
                    button #export type="submit" formaction="/console/findings/export" { "絞り込み結果をCSVで出力" }
                }
            }
        },
    )))
}

/// The bulk form: the queue's filters, the ticked findings (`pick_ID`), and what to do.
#[derive(Debug, Deserialize)]
pub struct BulkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    expected: String,
    #[serde(default)]
    reviewers: String,
    #[serde(default)]
    each: String,
    #[serde(default)]
    export_reason: String,
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

impl BulkForm {
    /// The queue filters carried in the form.
    fn query(&self) -> QueueQuery {
        let get = |k: &str| self.rest.get(k).cloned().unwrap_or_default();
        QueueQuery {
            kind: get("kind"),
            severity: get("severity"),
            status: get("status"),
            insurer: get("insurer"),
            assignee: get("assignee"),
            run: get("run"),
            sort: get("sort"),
            after: String::new(),
        }
    }

    fn picked(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .rest
            .keys()
            .filter_map(|k| k.strip_prefix("pick_")?.parse().ok())
            .collect();
        ids.sort_unstable();
        ids
    }

    fn selection(&self) -> Result<Selection, ApiError> {
        if self.scope == "filter" {
            Ok(Selection::Filter(self.query().filter()?))
        } else {
            let ids = self.picked();
            if ids.is_empty() {
                return Err(ApiError::Invalid(
                    "所見が選択されていません（チェックするか「絞り込み条件に該当するすべて」を選んでください）".into(),
                ));
            }
            Ok(Selection::Ids(ids))
        }
    }

    fn verdict(&self) -> Result<Verdict, ApiError> {
        let action: ReviewAction = self
            .action
            .parse()
            .map_err(|_| ApiError::Invalid("判断を選んでください".into()))?;
        if self.reason.trim().is_empty() {
            return Err(ApiError::Invalid("共通の理由を入力してください".into()));
        }
        Ok(Verdict {
            action,
            reason: self.reason.trim().to_owned(),
            until: form_date(&self.until, "期限")?,
        })
    }

    /// Every field again, for the preview's confirmation form.
    fn hidden(&self) -> Markup {
        html! {
            input type="hidden" name="scope" value=(self.scope);
            input type="hidden" name="action" value=(self.action);
            input type="hidden" name="reason" value=(self.reason);
            input type="hidden" name="until" value=(self.until);
            (self.query().hidden())
            @for id in self.picked() { input type="hidden" name={ "pick_" (id) } value="on"; }
        }
    }
}

/// What a bulk decision would do: how many, which kinds, refused for critical findings.
#[post("/console/findings/bulk/preview")]
pub async fn preview(
    state: web::Data<AppState>,
    staff: Staff,
    form: crate::input::CheckedForm<BulkForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(REVIEWERS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let verdict = f.verdict()?;
    verdict.check().map_err(ApiError::from)?;
    let selection = f.selection()?;
    let logged = selection.logged();
    let p: Preview = state
        .blocking(move |conn| Ok(bulk::preview(conn, &selection)?))
        .await?;
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            "findings_bulk_preview",
            None,
            json!({ "selection": logged, "console": true }),
            json!({ "decidable": p.decidable, "critical": p.critical }),
            None,
        )])
        .await?;
    Ok(html_response(page(
        "一括操作の確認",
        Some(&staff),
        html! {
            h1 { "一括操作の確認：" (verdict.action.label()) }
            p #preview_counts { "選択された所見 " (p.selected) " 件のうち、未対応 " strong { (p.decidable) } " 件が対象です（未対応以外は変更しません）。" }
            table {
                thead { tr { th { "種類" } th { "件数" } } }
                tbody { @for k in &p.by_kind { tr { td { (k.kind.label()) } td { (k.findings) } } } }
            }
            p { "理由: " (verdict.reason) @if let Some(u) = verdict.until { "　期限: " (u) } }
            @if let Some(why) = &p.refused {
                p.error #refused role="alert" { "実行できません: " (why) }
            } @else {
                form.box method="post" action="/console/findings/bulk" {
                    input type="hidden" name="csrf" value=(staff.session.csrf);
                    input type="hidden" name="expected" value=(p.decidable);
                    (f.hidden())
                    button.primary #bulk_confirm type="submit" { (p.decidable) " 件を一括で「" (verdict.action.label()) "」とする" }
                }
            }
            p { a href=(f.query().link(None)) { "一覧へ戻る" } }
        },
    )))
}

/// Makes the bulk decision the preview showed.
#[post("/console/findings/bulk")]
pub async fn decide(
    state: web::Data<AppState>,
    staff: Staff,
    form: crate::input::CheckedForm<BulkForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(REVIEWERS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let verdict = f.verdict()?;
    let selection = f.selection()?;
    let expected: i64 = f
        .expected
        .parse()
        .map_err(|_| ApiError::Invalid("確認画面からやり直してください".into()))?;
    let (actor, caller) = (staff.caller.actor(), staff.caller.clone());
    state
        .logged_change(move |conn| {
            let outcome = bulk::decide(conn, &selection, &verdict, expected, &actor)?;
            let e = entry(
                &caller,
                &format!("findings_bulk_{}", verdict.action),
                None,
                json!({ "selection": selection.logged(), "bulk_id": outcome.bulk_id,
                        "until": verdict.until, "console": true }),
                json!({ "findings": outcome.findings }),
                Some(&verdict.reason),
            );
            Ok((outcome, vec![e]))
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", "/console/findings/bulk"))
        .finish())
}

/// Assigns the ticked or filtered findings to reviewers (or back to nobody).
#[post("/console/findings/assign")]
pub async fn assign(
    state: web::Data<AppState>,
    staff: Staff,
    form: crate::input::CheckedForm<BulkForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(REVIEWERS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let selection = f.selection()?;
    let reviewers: Vec<String> = f
        .reviewers
        .split([',', '、', ' ', '　'])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    let each = match f.each.trim() {
        "" => None,
        n => Some(
            n.parse::<i64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| ApiError::Invalid("一人あたりの件数は1以上の数字です".into()))?,
        ),
    };
    let assignment = if reviewers.is_empty() {
        Assignment::Clear
    } else {
        Assignment::To {
            reviewers,
            each,
            order: f.query().order(),
        }
    };
    let (actor, caller) = (staff.caller.actor(), staff.caller.clone());
    state
        .logged_change(move |conn| {
            let outcome = bulk::assign(conn, &selection, &assignment, &actor)?;
            let e = entry(
                &caller,
                "findings_assign",
                None,
                json!({ "selection": selection.logged(), "bulk_id": outcome.bulk_id,
                        "console": true }),
                json!({ "findings": outcome.findings }),
                None,
            );
            Ok((outcome, vec![e]))
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", f.query().link(None)))
        .finish())
}

/// Today's bulk actions, with their undo.
#[get("/console/findings/bulk")]
pub async fn today(state: web::Data<AppState>, staff: Staff) -> Result<HttpResponse, ConsoleError> {
    staff.require(REVIEWERS)?;
    let actions = state.blocking(|conn| Ok(bulk::today(conn)?)).await?;
    let jst = chrono::FixedOffset::east_opt(9 * 3600);
    let label = |a: &str| match a {
        "confirmed" => ReviewAction::Confirm.label(),
        "dismissed" => ReviewAction::Dismiss.label(),
        _ => "担当割当",
    };
    Ok(html_response(page(
        "本日の一括操作",
        Some(&staff),
        html! {
            h1 { "本日の一括操作" }
            p.muted { "一括操作はその日のうちに限り取り消せます。一括操作の後に別の操作があった所見は、取り消してもそのままです。" }
            table #bulk_actions {
                thead { tr { th { "番号" } th { "時刻" } th { "操作" } th { "理由" } th { "件数" } th { "操作者" } th { "" } } }
                tbody { @for a in &actions { tr {
                    td { "#" (a.id) } td { @if let Some(z) = jst { (a.at.with_timezone(&z).format("%H:%M")) } }
                    td { (label(&a.action)) } td { (a.reason.clone().unwrap_or_default()) } td { (a.findings) } td { (a.actor) }
                    td { @if a.undone_at.is_some() { "取り消し済み" } @else {
                        form method="post" action={ "/console/findings/bulk/" (a.id) "/undo" } {
                            input type="hidden" name="csrf" value=(staff.session.csrf);
                            button #{ "undo_" (a.id) } type="submit" { "取り消す" }
                        }
                    } }
                } } }
            }
            p { a href="/console/findings" { "一覧へ戻る" } }
        },
    )))
}

/// The CSRF token alone.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Undoes one of today's bulk actions.
#[post("/console/findings/bulk/{id}/undo")]
pub async fn undo(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
    form: crate::input::CheckedForm<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(REVIEWERS)?;
    staff.check_csrf(&form.csrf)?;
    let (id, actor, caller) = (id.into_inner(), staff.caller.actor(), staff.caller.clone());
    state
        .logged_change(move |conn| {
            let undone = bulk::undo(conn, id, &actor)?;
            let e = entry(
                &caller,
                "findings_bulk_undo",
                None,
                json!({ "bulk_id": id, "console": true }),
                json!({ "restored": undone.restored, "kept": undone.kept }),
                None,
            );
            Ok((undone, vec![e]))
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", "/console/findings/bulk"))
        .finish())
}

/// The filtered queue as findings.csv (formats.md), with a reason, in the access log. Built
/// on a blocking thread and sent as it is written, so a large queue is never held whole.
#[post("/console/findings/export")]
pub async fn export(
    state: web::Data<AppState>,
    staff: Staff,
    form: crate::input::CheckedForm<BulkForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(REVIEWERS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let reason = f.export_reason.trim().to_owned();
    if reason.is_empty() {
        return Err(ApiError::Invalid("CSV出力の理由を入力してください".into()).into());
    }
    shikaku_domain::free_text::FreeText::Reason
        .check(&reason)
        .map_err(|e| ApiError::Invalid(format!("CSV出力の理由: {e}")))?;
    let filter = f.query().filter()?;
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            "export_findings",
            None,
            json!({ "filter": filter.describe(), "console": true }),
            serde_json::Value::Null,
            Some(&reason),
        )])
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<web::Bytes, std::io::Error>>(16);
    let writer = ChannelWriter {
        tx: tx.clone(),
        buf: Vec::new(),
    };
    let state = state.clone();
    actix_web::rt::spawn(async move {
        let result = state
            .blocking(move |conn| {
                shikaku_db::findings::export::export_findings(conn, &filter, writer)
                    .map_err(|e| ApiError::Internal(e.to_string()))
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "findings export failed");
            let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"findings.csv\"",
        ))
        .insert_header(("Cache-Control", "no-store"))
        .streaming(body))
}

/// Sends what the CSV writer writes to the response, 64 KiB at a time.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<web::Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = web::Bytes::from(std::mem::take(&mut self.buf));
            self.tx
                .blocking_send(Ok(chunk))
                .map_err(|_| std::io::Error::other("the client went away"))?;
        }
        Ok(())
    }
}
