//! File uploads in the console: CSV imports checked before anything is stored (the same import
//! code run and rolled back, so the report is exactly what applying would say), then applied;
//! and the monthly ex-officio run: upload the status file, see what would be issued, run it,
//! download the mailing PDF. Uploads wait in a private temporary folder under a random id.

use crate::input::CheckedForm;
use std::path::PathBuf;

use actix_multipart::Multipart;
use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDate;
use futures_util::StreamExt;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;
use shikaku_db::certificates::{self, DueOptions, DueSummary};
use shikaku_db::import::{self, CollectIssues, ImportContext, ImportSummary, IssueLevel};
use shikaku_db::tokens::Role;
use shikaku_domain::FileKind;

use super::layout::{html_response, page};
use super::session::{ConsoleError, Staff};
use crate::access::entry;
use crate::auth::today_tokyo;
use crate::error::ApiError;
use crate::state::AppState;

/// Largest accepted upload (a console upload is for day-to-day files; bulk loads use the CLI).
const MAX_UPLOAD: usize = 64 * 1024 * 1024;

fn upload_dir() -> PathBuf {
    std::env::temp_dir().join("shikaku-console-uploads")
}

fn upload_path(id: &str, ext: &str) -> Result<PathBuf, ConsoleError> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(upload_dir().join(format!("{id}.{ext}")))
    } else {
        Err(ApiError::NotFound("no such upload".into()).into())
    }
}

/// A random 128-bit id for an upload, from the operating system.
fn new_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
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

async fn read_upload(mut payload: Multipart) -> Result<Upload, ConsoleError> {
    let mut up = Upload::default();
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| ApiError::BadRequest(format!("upload: {e}")))?;
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            up.file_name = field
                .content_disposition()
                .and_then(|d| d.get_filename())
                .unwrap_or("upload.csv")
                .to_string();
        }
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("upload: {e}")))?;
            if data.len() + chunk.len() > MAX_UPLOAD {
                return Err(ApiError::TooLarge(MAX_UPLOAD).into());
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
    Ok(up)
}

/// How long an upload waits for "apply" (and a mailing PDF for its download).
const KEEP: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Removes uploads and mailing PDFs older than [`KEEP`]: checked files that were never applied
/// hold personal data and must not pile up.
fn sweep() {
    let Ok(entries) = std::fs::read_dir(upload_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > KEEP);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn save(id: &str, ext: &str, bytes: &[u8]) -> Result<(), ConsoleError> {
    sweep();
    let path = upload_path(id, ext)?;
    let dir = upload_dir();
    // Owner-only: uploads hold personal data.
    let made = std::fs::create_dir_all(&dir).and_then(|()| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
    });
    made.and_then(|()| std::fs::write(path, bytes))
        .map_err(|e| ApiError::Internal(format!("cannot keep the upload: {e}")).into())
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

fn report(summary: &ImportSummary, issues: &[import::Issue]) -> Markup {
    let errors = issues
        .iter()
        .filter(|i| i.level == IssueLevel::Error)
        .count();
    html! {
        p { "読込 " (summary.rows_read) " 行：新規 " (summary.inserted) "、更新 " (summary.updated)
            "、変更なし " (summary.unchanged) "、エラー " (errors) "、警告 " (issues.len() - errors) }
        @if !issues.is_empty() {
            table {
                thead { tr { th { "行" } th { "列" } th { "内容" } th { "種別" } } }
                tbody {
                    @for i in issues.iter().take(500) {
                        tr.diff[i.level == IssueLevel::Error] {
                            td { (i.line) } td { (i.column) } td { (i.reason) }
                            td { @if i.level == IssueLevel::Error { span.error { "エラー" } } @else { "警告" } }
                        }
                    }
                }
            }
            @if issues.len() > 500 { p.muted { "ほか " (issues.len() - 500) " 件（CLI の --report で全件を出力できます）" } }
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
) -> Result<(ImportSummary, Vec<import::Issue>), ConsoleError> {
    let keyring = if kind.needs_keys() {
        Some(state.keyring()?)
    } else {
        None
    };
    let actor = staff.caller.actor();
    let path = upload_path(&id, "csv")?;
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
                    "applied": summary.applied && !check_only,
                    "revealed_person_ids": summary.revealed_persons,
                    "revealed_more": summary.revealed_more }),
            None,
        )
    };
    let import = move |conn: &mut diesel::PgConnection| {
        let file = std::fs::File::open(&path)
            .map_err(|_| ApiError::NotFound("the upload has expired; upload again".into()))?;
        let mut sink = CollectIssues(Vec::new());
        let ctx = ImportContext {
            actor: &actor,
            file_name: &file_name,
            progress: &|_| {},
        };
        let summary = import::run(
            conn,
            kind,
            &ctx,
            keyring.as_deref(),
            std::io::BufReader::new(file),
            &mut sink,
            check_only,
        )
        .map_err(|e| match e {
            import::ImportError::Db(d) => ApiError::from(d),
            import::ImportError::Read(m) => ApiError::Invalid(m),
        })?;
        Ok::<_, ApiError>((summary, sink.0))
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
    let up = read_upload(payload).await?;
    staff.check_csrf(&up.csrf)?;
    let kind: FileKind = up
        .kind
        .parse()
        .map_err(|_| ApiError::Invalid(format!("kind: {:?}", up.kind)))?;
    let id = new_id();
    save(&id, "csv", &up.bytes)?;
    let (summary, issues) =
        run_import(&state, &staff, kind, id.clone(), up.file_name.clone(), true).await?;
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
        .map_err(|_| ApiError::Invalid(format!("kind: {:?}", f.kind)))?;
    let (summary, issues) = run_import(
        &state,
        &staff,
        kind,
        f.id.clone(),
        f.file_name.clone(),
        false,
    )
    .await?;
    let _ = std::fs::remove_file(upload_path(&f.id, "csv")?);
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
    Ok(DueOptions {
        on: if on.is_empty() {
            today_tokyo()
        } else {
            NaiveDate::parse_from_str(on, "%Y-%m-%d")
                .map_err(|_| ApiError::Invalid("交付日: YYYY-MM-DD".into()))?
        },
        renew_within_days: 30,
        koki_until: NaiveDate::from_ymd_opt(2026, 7, 31).unwrap_or(NaiveDate::MIN),
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
    let path = upload_path(&id, "csv")?;
    let actor = staff.caller.actor();
    let caller = staff.caller.clone();
    let run = move |conn: &mut diesel::PgConnection| {
        let file = std::fs::File::open(&path)
            .map_err(|_| ApiError::NotFound("the upload has expired; upload again".into()))?;
        let input = std::io::BufReader::new(file);
        let r = if preview {
            certificates::preview_due(conn, "status.csv", input, options, &actor)
        } else {
            certificates::issue_due(conn, "status.csv", input, options, &actor)
        };
        r.map_err(|e| match e {
            certificates::DueError::File { file, errors } => ApiError::Invalid(
                errors
                    .iter()
                    .take(20)
                    .map(|e| format!("{file}:{}: {}: {}", e.line, e.column, e.reason))
                    .collect::<Vec<_>>()
                    .join(" / "),
            ),
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
    let up = read_upload(payload).await?;
    staff.check_csrf(&up.csrf)?;
    let id = new_id();
    save(&id, "csv", &up.bytes)?;
    let summary = run_due(&state, &staff, id.clone(), up.on.clone(), true).await?;
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
    let summary = run_due(&state, &staff, f.id.clone(), f.on.clone(), false).await?;
    let _ = std::fs::remove_file(upload_path(&f.id, "csv")?);
    if !summary.certificate_ids.is_empty() {
        let ids = summary.certificate_ids.clone();
        let printed = state
            .blocking(move |conn| Ok(certificates::printed_of(conn, &ids)?))
            .await?;
        let pdf = state.render_pdf(printed, shikaku_print::Layout::A4).await?;
        save(&f.id, "pdf", &pdf)?;
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
                p { a #d_mailing href={ "/console/issue-due/mailing/" (f.id) } download { "郵送用PDFをダウンロード" } }
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
    let path = upload_path(&id, "pdf")?;
    let bytes = std::fs::read(path)
        .map_err(|_| ApiError::NotFound("no mailing PDF for this run".into()))?;
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
