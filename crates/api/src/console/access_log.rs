//! The access log for administrators: the latest entries, and the chain's verification on
//! demand.

use crate::input::CheckedForm;
use actix_web::{get, post, web, HttpResponse};
use maud::{html, Markup};
use shikaku_db::tokens::Role;

use shikaku_db::access_log::checkpoint;
use shikaku_db::access_log::StoredEntry;

use super::layout::{html_response, page};
use super::session::{ConsoleError, CsrfForm, Staff};
use crate::access::{entry, returned_persons};
use crate::error::ApiError;
use crate::state::AppState;

/// The access log for administrators: the latest entries and the chain's state on demand.
#[get("/console/access-log")]
pub async fn access_log_page(
    state: web::Data<AppState>,
    staff: Staff,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(&[Role::Admin])?;
    let entries = state
        .blocking(|conn| Ok(shikaku_db::access_log::recent(conn, None, 200)?))
        .await?;
    log_read(&state, &staff, &entries).await?;
    Ok(html_response(access_log_markup(&staff, &entries, None)))
}

fn access_log_markup(
    staff: &Staff,
    entries: &[shikaku_db::access_log::StoredEntry],
    verification: Option<&shikaku_db::access_log::Verification>,
) -> Markup {
    page(
        "アクセスログ",
        Some(staff),
        html! {
            h1 { "アクセスログ" }
            form method="post" action="/console/access-log/verify" {
                input type="hidden" name="csrf" value=(staff.session.csrf);
                button.primary type="submit" { "改ざん検査（ハッシュチェーン）" }
            }
            @if let Some(v) = verification {
                @if v.ok() { p.ok role="status" { "チェーンは正常です（" (v.entries) "件）" } }
                @else { p.error role="alert" { "チェーンが壊れています：" (v.breaks.len()) "か所（最初は " (v.breaks[0].seq) " の " (v.breaks[0].kind) "）" } }
            }
            table {
                thead { tr { th { "番号" } th { "日時" } th { "誰が" } th { "操作" } th { "対象" } th { "理由" } } }
                tbody {
                    @for e in entries {
                        tr {
                            td { (e.seq) }
                            td { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                            td { (e.actor) " " span.muted { (e.role) } }
                            td { (e.action) }
                            td { (e.subject.clone().unwrap_or_default()) }
                            td { (e.reason.clone().unwrap_or_default()) }
                        }
                    }
                }
            }
        },
    )
}

/// Verifies the whole chain and shows the result.
#[post("/console/access-log/verify")]
pub async fn access_log_verify(
    state: web::Data<AppState>,
    staff: Staff,
    form: CheckedForm<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(&[Role::Admin])?;
    staff.check_csrf(&form.csrf)?;
    let keyring = state.keyring()?;
    let checkpoints = match &state.config.checkpoint_file {
        Some(path) => checkpoint::read_file(path)
            .map_err(|e| ApiError::Invalid(format!("チェックポイントを読めません: {e}")))?,
        None => Vec::new(),
    };
    let (entries, verification) = state
        .blocking(move |conn| {
            let v = shikaku_db::access_log::verify(conn, &keyring, &checkpoints)?;
            let e = shikaku_db::access_log::recent(conn, None, 200)?;
            Ok((e, v))
        })
        .await?;
    log_read(&state, &staff, &entries).await?;
    Ok(html_response(access_log_markup(
        &staff,
        &entries,
        Some(&verification),
    )))
}

/// Reading the log shows whose data was read: the page view is an entry too, naming the
/// entries shown and the persons they are about.
async fn log_read(state: &AppState, staff: &Staff, shown: &[StoredEntry]) -> Result<(), ApiError> {
    let persons = shown.iter().filter_map(|e| {
        e.subject
            .as_deref()
            .and_then(|s| s.strip_prefix("person:"))
            .and_then(|id| id.parse::<i64>().ok())
    });
    let (_, returned) = returned_persons(persons);
    state
        .access_log
        .record(vec![entry(
            &staff.caller,
            "access_log_read",
            None,
            serde_json::json!({ "limit": 200, "console": true,
                                "from_seq": shown.last().map(|e| e.seq),
                                "to_seq": shown.first().map(|e| e.seq) }),
            returned,
            None,
        )])
        .await
}
