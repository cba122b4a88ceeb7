//! The review report on the console (点検の集計): decisions per reviewer and per reason, the
//! median time to a decision, the open queue by age and severity, and the 総点検 numbers, for a
//! period the auditor picks (this month by default).

use actix_web::{get, web, HttpResponse};
use chrono::Datelike;
use maud::html;
use serde::Deserialize;
use serde_json::json;
use shikaku_db::findings::report::report as review_report;
use shikaku_db::tokens::Role;

use super::layout::{html_response, page};
use super::session::{form_date, ConsoleError, Staff};
use crate::access::entry;

/// The period; empty means this month so far.
#[derive(Debug, Deserialize)]
pub struct PeriodQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// The report page.
#[get("/console/findings/report")]
pub async fn report_page(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<PeriodQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(&[Role::Admin, Role::Auditor])?;
    let today = shikaku_db::today_tokyo();
    let from = form_date(&query.from, "開始日")?
        .or_else(|| today.with_day(1))
        .unwrap_or(today);
    let to = form_date(&query.to, "終了日")?.unwrap_or(today);
    let r = state
        .blocking(move |conn| Ok(review_report(conn, from, to)?))
        .await?;
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            "findings_report",
            None,
            json!({ "from": from, "to": to, "console": true }),
            json!({ "found": r.inspection.found }),
            None,
        )])
        .await?;
    let i = &r.inspection;
    Ok(html_response(page(
        "点検の集計",
        Some(&staff),
        html! {
            h1 { "点検の集計" }
            form.box method="get" action="/console/findings/report" {
                label for="from" { "開始日" input #from name="from" type="date" value=(from); }
                label for="to" { "終了日" input #to name="to" type="date" value=(to); }
                button.primary type="submit" { "集計" }
            }
            h2 { "総点検の報告数（期間中に初めて検出された所見）" }
            table #inspection {
                thead { tr { th { "検出" } th { "訂正済（解消）" } th { "理由付き疑いなし" } th { "未完了（未対応・誤り確認済）" } } }
                tbody { tr { td { (i.found) } td { (i.corrected) } td { (i.dismissed_with_reason) } td { (i.still_open) } } }
            }
            h2 { "判断の件数（担当者別）" }
            table #by_reviewer {
                thead { tr { th { "担当者" } th { "誤りを確認" } th { "理由付き疑いなし" } } }
                tbody { @for c in &r.reviewers { tr { td { (c.actor) } td { (c.confirmed) } td { (c.dismissed) } } } }
            }
            p #median { "初回検出から判断までの時間（中央値）: "
                @match r.median_hours_to_decision { Some(h) => { (format!("{:.1}", h / 24.0)) " 日" }, None => { "判断なし" } } }
            h2 { "理由別" }
            table {
                thead { tr { th { "判断" } th { "理由" } th { "件数" } } }
                tbody { @for c in &r.reasons { tr {
                    td { (if c.action == "confirmed" { "誤りを確認" } else { "理由付き疑いなし" }) }
                    td { (c.reason) } td { (c.decisions) } } } }
            }
            h2 { "未対応の所見（経過日数・重要度別、現在）" }
            table #open_by_age {
                thead { tr { th { "経過日数" } th { "重大" } th { "高" } th { "中" } th { "低" } } }
                tbody { @for a in &r.open_by_age { tr { td { (a.days) "日" } td { (a.critical) } td { (a.high) } td { (a.medium) } td { (a.low) } } } }
            }
            p { a href="/console/findings" { "一覧へ戻る" } }
        },
    )))
}

use crate::state::AppState;
