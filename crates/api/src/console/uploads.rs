//! File uploads in the console: CSV imports checked before anything is stored (the same import
//! code run and rolled back, so the report is exactly what applying would say), then applied;
//! and the monthly ex-officio run: upload the status file, see what would be issued, run it,
//! download the mailing PDF. Uploads wait sealed in this process's folder ([`super::store`])
//! under a random id, and are deleted once applied or once their check fails. The whole upload
//! is capped (`SHIKAKU_UPLOAD_LIMIT_MIB`), and a report keeps the first few hundred issues and
//! counts the rest.

use crate::input::CheckedForm;

use actix_multipart::Multipart;
use actix_web::{get, post, web, HttpResponse};
use futures_util::StreamExt;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;
use shikaku_db::certificates::{self, DueOptions, DueSummary};
use shikaku_db::import::{self, CountedIssues, ImportContext, ImportSummary, IssueLevel};
use shikaku_db::tokens::Role;
use shikaku_domain::FileKind;

use super::layout::{html_response, page};
use super::session::{ConsoleError, Staff};
use super::store::StoreError;
use crate::access::entry;
use crate::auth::today_tokyo;
use crate::error::ApiError;
use crate::state::AppState;

/// Issues a report shows; the rest are counted (CLI `--report` writes them all).
const SHOWN_ISSUES: usize = 500;
/// Form fields an upload may have, and the size of each besides the file.
const MAX_FIELDS: usize = 16;
const MAX_SMALL_FIELD: usize = 4 * 1024;

fn store_error(e: StoreError) -> ConsoleError {
    match e {
        StoreError::Gone => ApiError::NotFound(e.to_string()).into(),
        other => ApiError::Internal(other.to_string()).into(),
    }
}

/// The fields of an upload form.
#[derive(Default)]
struct Upload {
    csrf: String,
    kind: String,
    on: String,
    file_name: String,
    bytes: Vec<u8>,
}

/// Reads a multipart upload, refusing (413) a body over `limit` bytes in all, and refusing
/// more than a few fields or an oversized small field, before holding any of it.
async fn read_upload(mut payload: Multipart, limit: usize) -> Result<Upload, ConsoleError> {
    let mut up = Upload::default();
    let (mut total, mut fields) = (0usize, 0usize);
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| ApiError::BadRequest(format!("upload: {e}")))?;
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(ApiError::BadRequest("upload: too many form fields".into()).into());
        }
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            up.file_name = field
                .content_disposition()
                .and_then(|d| d.get_filename())
                .unwrap_or("upload.csv")
                .to_string();
        }
        let cap = if name == "file" {
            limit
        } else {
            MAX_SMALL_FIELD
        };
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("upload: {e}")))?;
            total += chunk.len();
            if total > limit || data.len() + chunk.len() > cap {
                return Err(ApiError::TooLarge(limit).into());
            }
            data.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "file" => up.bytes = data,
            "csrf" => up.csrf = String::from_utf8_lossy(&data).into_owned(),
            "kind" => up.kind = String::from_utf8_lossy(&data).into_owned(),
            "on" => up.on = String::from_utf8_lossy(&data).into_owned(),
            _ => {}
        }
    }
    // The file name is shown on the page and logged: the free-text guard applies.
    shikaku_domain::free_text::FreeText::SearchText
        .check(&up.file_name)
        .map_err(|_| {
            ApiError::Invalid("the file name is not acceptable; rename the file".into())
        })?;
    Ok(up)
}

const ADMINS: &[Role] = &[Role::Admin];

fn import_form(staff: &Staff) -> Markup {
    html! {
        form.box method="post" action="/console/imports" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(staff.session.csrf);
            label for="i_kind" { "ファイルの種類"
                select #i_kind name="kind" {
                    option value="persons" { "被保険者（persons.csv）" }
                    option value="linkages" { "個人番号の紐付け（linkages.csv）" }
                    option value="residents" { "住民基本台帳（residents.csv）" }
                    option value="benefits" { "給付の記録（benefits.csv）" }
                }
            }
            label for="i_file" { "CSVファイル" input #i_file name="file" type="file" accept=".csv,text/csv" required; }
            button.primary #i_check type="submit" { "検証する（まだ登録しません）" }
        }
    }
}

/// The import page.
#[get("/console/imports")]
pub async fn imports_page(staff: Staff) -> Result<HttpResponse, ConsoleError> {
    staff.require(ADMINS)?;
    Ok(html_response(page(
        "取込",
        Some(&staff),
        html! { h1 { "CSVの取込" } (import_form(&staff)) },
    )))
}

/// The import's counts and its issues. A rejected row (a linkage refused by the five-item
/// check) is not an error of the file: the rest is applied, and the row is listed as 却下.
fn report(summary: &ImportSummary, issues: &CountedIssues) -> Markup {
    html! {
        p { "読込 " (summary.rows_read) " 行：新規 " (summary.inserted) "、更新 " (summary.updated)
            "、変更なし " (summary.unchanged) "、エラー " (issues.errors)
            @if issues.rejected > 0 { "、却下 " (issues.rejected) }
            "、警告 " (issues.warnings) }
        @if issues.rejected > 0 {
            p.error role="alert" { "住民基本台帳と5情報が一致しない紐付け " (issues.rejected) " 件は登録されません（他の行は登録されます）。"
                "被保険者の登録内容を直すか、誤りがないことを確認のうえ理由付き疑いなしとして個別に登録してください。" }
        }
        @if !issues.kept.is_empty() {
            table {
                thead { tr { th { "行" } th { "列" } th { "内容" } th { "種別" } } }
                tbody {
                    @for i in &issues.kept {
                        tr.diff[i.level != IssueLevel::Warning] {
                            td { (i.line) } td { (i.column) } td { (i.reason) }
                            td { @match i.level {
                                IssueLevel::Error => span.error { "エラー" },
                                IssueLevel::Rejected => span.error { "却下" },
                                IssueLevel::Warning => "警告",
                            } }
                        }
                    }
                }
            }
            @if issues.dropped() > 0 { p.muted { "ほか " (issues.dropped()) " 件（CLI の --report で全件を出力できます）" } }
        }
    }
}

async fn run_import(
    state: &AppState,
    staff: &Staff,
    kind: FileKind,
    id: String,
    file_name: String,
    check_only: bool,
) -> Result<(ImportSummary, CountedIssues), ConsoleError> {
    let keyring = if kind.needs_keys() {
        Some(state.keyring()?)
    } else {
        None
    };
    let actor = staff.caller.actor();
    let bytes = state.uploads.get(&id).map_err(store_error)?;
    let caller = staff.caller.clone();
    let file_name_logged = file_name.clone();
    // What the report reveals (persons already holding a number of the file) is logged as read;
    // an applied import is logged in the transaction that stores it.
    let entry_of = move |summary: &ImportSummary| {
        entry(
            &caller,
            if check_only { "import_check" } else { "import" },
            None,
            json!({ "kind": kind.as_str(), "file_name": file_name_logged, "console": true }),
            json!({ "import_id": summary.import_id, "rows": summary.rows_read,
                    "applied": summary.applied && !check_only, "rejected": summary.rejected,
                    "revealed_person_ids": summary.revealed_persons,
                    "revealed_more": summary.revealed_more }),
            None,
        )
    };
    let import = move |conn: &mut diesel::PgConnection| {
        let mut sink = CountedIssues::new(SHOWN_ISSUES);
        let ctx = ImportContext {
            actor: &actor,
            file_name: &file_name,
            progress: &|_| {},
            today: shikaku_db::today_tokyo(),
        };
        let summary = import::run(
            conn,
            kind,
            &ctx,
            keyring.as_deref(),
            std::io::Cursor::new(bytes.as_slice()),
            &mut sink,
            check_only,
        )
        .map_err(|e| match e {
            import::ImportError::Db(d) => ApiError::from(d),
            import::ImportError::Read(m) => ApiError::Invalid(m),
        })?;
        Ok::<_, ApiError>((summary, sink))
    };
    if check_only {
        let (summary, issues) = state.blocking(import).await?;
        state.access_log.record(vec![entry_of(&summary)]).await?;
        Ok((summary, issues))
    } else {
        Ok(state
            .logged_change(move |conn| {
                let (summary, issues) = import(conn)?;
                let e = entry_of(&summary);
                Ok(((summary, issues), vec![e]))
            })
            .await?)
    }
}

/// Checks an uploaded file and shows the report; nothing is stored.
#[post("/console/imports")]
pub async fn imports_check(
    state: web::Data<AppState>,
    staff: Staff,
    payload: Multipart,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(ADMINS)?;
    let up = read_upload(payload, state.config.upload_limit).await?;
    staff.check_csrf(&up.csrf)?;
    let kind: FileKind = up
        .kind
        .parse()
        .map_err(|_| ApiError::Invalid("kind: not a file kind".into()))?;
    let id = state.uploads.put(&up.bytes).map_err(store_error)?;
    drop(up.bytes);
    let checked = run_import(&state, &staff, kind, id.clone(), up.file_name.clone(), true).await;
    // A file that cannot be applied is not kept a moment longer.
    if !checked.as_ref().is_ok_and(|(summary, _)| summary.applied) {
        state.uploads.remove(&id);
    }
    let (summary, issues) = checked?;
    Ok(html_response(page(
        "取込の検証",
        Some(&staff),
        html! {
            h1 { "検証結果：" (up.file_name) }
            (report(&summary, &issues))
            @if summary.applied {
                p.ok { "エラーはありません。登録できます。" }
                form.box method="post" action="/console/imports/apply" {
                    input type="hidden" name="csrf" value=(staff.session.csrf);
                    input type="hidden" name="id" value=(id);
                    input type="hidden" name="kind" value=(up.kind);
                    input type="hidden" name="file_name" value=(up.file_name);
                    button.primary #i_apply type="submit" { "登録する" }
                }
            } @else {
                p.error role="alert" { "エラーがあるため登録できません。ファイルを直して再度取り込んでください。" }
            }
            (import_form(&staff))
        },
    )))
}

/// The apply form's body.
#[derive(Deserialize)]
pub struct ApplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    file_name: String,
}

/// Applies a checked upload.
#[post("/console/imports/apply")]
pub async fn imports_apply(
    state: web::Data<AppState>,
    staff: Staff,
    form: CheckedForm<ApplyForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(ADMINS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let kind: FileKind = f
        .kind
        .parse()
        .map_err(|_| ApiError::Invalid("kind: not a file kind".into()))?;
    let applied = run_import(
        &state,
        &staff,
        kind,
        f.id.clone(),
        f.file_name.clone(),
        false,
    )
    .await;
    state.uploads.remove(&f.id);
    let (summary, issues) = applied?;
    Ok(html_response(page(
        "取込結果",
        Some(&staff),
        html! {
            h1 { "取込結果：" (f.file_name) }
            @if summary.applied { p.ok role="status" { "登録しました（取込番号 " (summary.import_id.unwrap_or_default()) "）。" } }
            @else { p.error role="alert" { "登録できませんでした。" } }
            (report(&summary, &issues))
            (import_form(&staff))
        },
    )))
}

const CLERKS: &[Role] = &[Role::Admin, Role::Clerk];

fn due_form(staff: &Staff) -> Markup {
    html! {
        form.box method="post" action="/console/issue-due" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(staff.session.csrf);
            label for="d_file" { "登録状況ファイル（CSV）" input #d_file name="file" type="file" accept=".csv,text/csv" required; }
            label for="d_on" { "交付日（省略時は本日）" input #d_on name="on" type="date"; }
            button.primary #d_check type="submit" { "交付対象を確認する" }
        }
    }
}

/// The ex-officio page.
#[get("/console/issue-due")]
pub async fn due_page(staff: Staff) -> Result<HttpResponse, ConsoleError> {
    staff.require(CLERKS)?;
    Ok(html_response(page(
        "職権交付",
        Some(&staff),
        html! { h1 { "資格確認書の職権交付（月次）" } (due_form(&staff)) },
    )))
}

fn due_summary(s: &DueSummary) -> Markup {
    html! {
        table {
            tbody {
                tr { th { "登録状況ファイルの行数" } td { (s.status_rows) } }
                tr { th { "交付（利用できるマイナ保険証なし）" } td { (s.issued_ex_officio) } }
                tr { th { "交付（後期高齢者）" } td { (s.issued_koki) } }
                tr { th { "更新（有効期限間近）" } td { (s.renewed) } }
                tr { th { "交付済み（対象外）" } td { (s.already_holding) } }
                tr { th { "有効期間が残らない（対象外）" } td { (s.skipped) } }
                tr { th { "期限切れとして処理" } td { (s.expired) } }
                tr { th { "台帳にない行" } td { (s.not_in_registry) } }
            }
        }
    }
}

fn due_options(on: &str) -> Result<DueOptions, ConsoleError> {
    let on = super::session::form_date(on, "交付日")?.unwrap_or_else(today_tokyo);
    Ok(DueOptions {
        on,
        next_run: certificates::next_run_after(on),
        koki_until: shikaku_domain::certificate::KOKI_TRANSITIONAL_UNTIL,
    })
}

async fn run_due(
    state: &AppState,
    staff: &Staff,
    id: String,
    on: String,
    preview: bool,
) -> Result<DueSummary, ConsoleError> {
    let options = due_options(&on)?;
    let bytes = state.uploads.get(&id).map_err(store_error)?;
    let actor = staff.caller.actor();
    let caller = staff.caller.clone();
    let run = move |conn: &mut diesel::PgConnection| {
        let input = std::io::Cursor::new(bytes.as_slice());
        let r = if preview {
            certificates::preview_due(conn, "status.csv", input, options, &actor)
        } else {
            certificates::issue_due(conn, "status.csv", input, options, &actor)
        };
        r.map_err(|e| match e {
            certificates::DueError::File {
                file,
                errors,
                total,
            } => ApiError::Invalid(format!(
                "{total} line(s) cannot be used: {}",
                errors
                    .iter()
                    .take(20)
                    .map(|e| format!("{file}:{}: {}: {}", e.line, e.column, e.reason))
                    .collect::<Vec<_>>()
                    .join(" / ")
            )),
            certificates::DueError::Read { file, reason } => {
                ApiError::Invalid(format!("{file}: {reason}"))
            }
            certificates::DueError::Db(d) => ApiError::from(d),
        })
    };
    // The run issues certificates (personal data printed and mailed): it commits with its entry.
    let entry_of = move |summary: &DueSummary| {
        entry(
            &caller,
            if preview {
                "certificates_issue_due_preview"
            } else {
                "certificates_issue_due"
            },
            None,
            json!({ "on": on, "console": true }),
            json!({ "issued": summary.certificate_ids.len(),
                    "certificate_ids": summary.certificate_ids.iter().take(crate::access::LISTED_IDS).collect::<Vec<_>>(),
                    "renewed": summary.renewed }),
            None,
        )
    };
    if preview {
        let summary = state.blocking(run).await?;
        state.access_log.record(vec![entry_of(&summary)]).await?;
        Ok(summary)
    } else {
        Ok(state
            .logged_change(move |conn| {
                let summary = run(conn)?;
                let e = entry_of(&summary);
                Ok((summary, vec![e]))
            })
            .await?)
    }
}

/// Shows what the run would issue for an uploaded status file; nothing is stored.
#[post("/console/issue-due")]
pub async fn due_check(
    state: web::Data<AppState>,
    staff: Staff,
    payload: Multipart,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(CLERKS)?;
    let up = read_upload(payload, state.config.upload_limit).await?;
    staff.check_csrf(&up.csrf)?;
    let id = state.uploads.put(&up.bytes).map_err(store_error)?;
    let previewed = run_due(&state, &staff, id.clone(), up.on.clone(), true).await;
    if previewed.is_err() {
        state.uploads.remove(&id);
    }
    let summary = previewed?;
    Ok(html_response(page(
        "職権交付の確認",
        Some(&staff),
        html! {
            h1 { "職権交付の確認：" (up.file_name) }
            p { "この内容で交付します（まだ交付していません）。" }
            (due_summary(&summary))
            form.box method="post" action="/console/issue-due/run" {
                input type="hidden" name="csrf" value=(staff.session.csrf);
                input type="hidden" name="id" value=(id);
                input type="hidden" name="on" value=(up.on);
                button.primary #d_run type="submit" { "交付を実行" }
            }
        },
    )))
}

/// The run form's body.
#[derive(Deserialize)]
pub struct RunForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    on: String,
}

/// Runs the batch and offers the mailing PDF.
#[post("/console/issue-due/run")]
pub async fn due_run(
    state: web::Data<AppState>,
    staff: Staff,
    form: CheckedForm<RunForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(CLERKS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    // The font first: once the run has committed, a missing font must not hide its result.
    state.font()?;
    let ran = run_due(&state, &staff, f.id.clone(), f.on.clone(), false).await;
    state.uploads.remove(&f.id);
    let summary = ran?;
    let mut mailing_id = None;
    if !summary.certificate_ids.is_empty() {
        let ids = summary.certificate_ids.clone();
        let printed = state
            .blocking(move |conn| Ok(certificates::printed_of(conn, &ids)?))
            .await?;
        let pdf = state.render_pdf(printed, shikaku_print::Layout::A4).await?;
        mailing_id = Some(state.uploads.put(&pdf).map_err(store_error)?);
    }
    Ok(html_response(page(
        "職権交付の結果",
        Some(&staff),
        html! {
            h1 { "職権交付の結果" }
            (due_summary(&summary))
            @if summary.certificate_ids.is_empty() { p { "新たに交付したものはありません。" } }
            @else {
                p.ok role="status" { (summary.certificate_ids.len()) " 件を交付しました。" }
                @if let Some(m) = &mailing_id {
                    p { a #d_mailing href={ "/console/issue-due/mailing/" (m) } download { "郵送用PDFをダウンロード" } }
                }
            }
        },
    )))
}

/// The mailing PDF of a run.
#[get("/console/issue-due/mailing/{id}")]
pub async fn mailing(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(CLERKS)?;
    let bytes = state.uploads.get(&id).map_err(store_error)?.to_vec();
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            "certificate_mailing_download",
            None,
            json!({ "run": id.into_inner(), "console": true }),
            json!({ "bytes": bytes.len() }),
            None,
        )])
        .await?;
    Ok(crate::certificates::pdf_response(
        bytes,
        "attachment",
        "mailing.pdf",
    ))
}
