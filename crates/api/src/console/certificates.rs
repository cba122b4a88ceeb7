//! 資格確認書 at the counter: issue, reissue with a reason, revoke, mark returned, and the PDF
//! (card or A4) to preview or download. The rules are the db crate's, as for the API and CLI.

use crate::input::CheckedForm;
use actix_web::{get, post, web, HttpResponse};
use chrono::NaiveDate;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;
use shikaku_db::certificates::{self, CertificateView, IssueOptions};
use shikaku_db::persons::{self, CertificateFacts, PersonRecord};
use shikaku_db::tokens::Role;
use shikaku_domain::{CertificateKind, CertificateStatus};
use strum::VariantArray;

use super::session::{form_date, ConsoleError, ReasonForm, Staff};
use crate::access::entry;
use crate::auth::today_tokyo;
use crate::error::ApiError;
use crate::state::AppState;

const CLERKS: &[Role] = &[Role::Admin, Role::Clerk];

/// The person page's certificate section, with the actions the user may take, and the facts
/// stored on the person that decide certificates (editable by clerks, with history).
pub(super) fn section(
    staff: &Staff,
    person: &PersonRecord,
    person_id: i64,
    list: &[CertificateView],
) -> Markup {
    let may_act = CLERKS.contains(&staff.caller.role);
    // The counter may issue while no renewal is pending: with an active certificate ending
    // before the next run, the issue is that renewal (the database refuses anything more).
    let has_pending = list.iter().any(|c| c.status == CertificateStatus::Pending);
    let date = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    html! {
        h2 { "資格確認書" }
        @if list.is_empty() { p.muted { "交付はありません。" } } @else {
            table {
                thead { tr { th { "番号" } th { "状態" } th { "交付日" } th { "有効開始日" } th { "有効期限" } th { "種別" } th { "PDF" }
                    @if may_act { th { "操作" } } } }
                tbody {
                    @for c in list {
                        tr {
                            td { (c.number) }
                            td { span.badge.(c.status.as_str()) { (c.status.label()) } }
                            td { (c.issued_on) }
                            td { (c.valid_from) }
                            td { (c.valid_until) }
                            td { (c.kind.label()) }
                            td {
                                @if may_act && c.status.printable() {
                                    a href={ "/console/certificates/" (c.id) "/pdf?layout=card" } { "カード" } " / "
                                    a href={ "/console/certificates/" (c.id) "/pdf?layout=a4" } download { "A4" }
                                }
                            }
                            @if may_act {
                                td {
                                    @for (action, label) in actions(c.status) {
                                        form.inline method="post" action={ "/console/certificates/" (c.id) "/" (action) } {
                                            input type="hidden" name="csrf" value=(staff.session.csrf);
                                            label { span.sr { (label) "の理由" }
                                                input name="reason" required placeholder={ (label) "の理由" } aria-label={ (label) "の理由" };
                                            }
                                            button type="submit" { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h3 { "交付に関わる情報" }
        dl.grid {
            dt { "任意継続の終了日" } dd { (date(person.voluntary_until)) }
            dt { "在留期間の満了日" } dd { (date(person.residence_until)) }
            dt { "要配慮者（更新ごとに交付）" } dd { @if person.certificate_requested { "希望あり" } @else { "—" } }
        }
        @if may_act {
            form.box method="post" action={ "/console/persons/" (person_id) "/certificate-facts" } {
                input type="hidden" name="csrf" value=(staff.session.csrf);
                label for="f_voluntary" { "任意継続の終了日" input #f_voluntary name="voluntary_until" type="date" value=(date(person.voluntary_until)); }
                label for="f_residence" { "在留期間の満了日" input #f_residence name="residence_until" type="date" value=(date(person.residence_until)); }
                label for="f_requested" { "要配慮者：更新ごとに資格確認書を交付する"
                    input #f_requested name="certificate_requested" type="checkbox" value="1" checked[person.certificate_requested];
                }
                button #facts type="submit" { "交付に関わる情報を保存" }
            }
        }
        @if may_act && !has_pending {
            form.box method="post" action={ "/console/persons/" (person_id) "/certificates" } {
                input type="hidden" name="csrf" value=(staff.session.csrf);
                label for="c_kind" { "種別"
                    select #c_kind name="kind" {
                        @for k in CertificateKind::VARIANTS { option value=(k.as_str()) { (k.label()) } }
                    }
                }
                label for="c_on" { "交付日（省略時は本日）" input #c_on name="on" type="date"; }
                label for="c_remarks" { "備考" input #c_remarks name="remarks"; }
                label for="c_sex" { "性別を裏面参照にする" input #c_sex name="sex_on_back" type="checkbox" value="1"; }
                button.primary #issue type="submit" { "資格確認書を交付" }
            }
        }
    }
}

/// The actions a certificate in `status` allows, as (path, label).
fn actions(status: CertificateStatus) -> Vec<(&'static str, &'static str)> {
    match status {
        CertificateStatus::Active | CertificateStatus::Pending => vec![
            ("reissue", "再交付"),
            ("revoke", "無効化"),
            ("returned", "返納"),
        ],
        CertificateStatus::Returned => vec![],
        _ => vec![("returned", "返納")],
    }
}

/// The issue form's body.
#[derive(Deserialize)]
pub struct IssueForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    on: String,
    #[serde(default)]
    remarks: String,
    #[serde(default)]
    sex_on_back: Option<String>,
}

fn back_to(person_id: i64) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", format!("/console/persons/{person_id}")))
        .finish()
}

/// Issues a certificate, then shows the person again.
#[post("/console/persons/{id}/certificates")]
pub async fn issue(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
    form: CheckedForm<IssueForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(CLERKS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let person_id = id.into_inner();
    let kind = if f.kind.is_empty() {
        CertificateKind::Application
    } else {
        f.kind
            .parse()
            .map_err(|_| ApiError::Invalid("種別が不正です".into()))?
    };
    let on = form_date(&f.on, "交付日")?.unwrap_or_else(today_tokyo);
    let options = IssueOptions {
        sex_on_back: f.sex_on_back.is_some(),
        remarks: Some(f.remarks.trim().to_string()).filter(|r| !r.is_empty()),
        ..IssueOptions::default()
    };
    let actor = staff.caller.actor();
    let caller = staff.caller.clone();
    state
        .logged_change(move |conn| {
            let cert = certificates::issue(conn, person_id, kind, on, &options, &actor)?;
            let e = cert_entry(&caller, "certificate_issue", &cert, None);
            Ok(((), vec![e]))
        })
        .await?;
    Ok(back_to(person_id))
}

/// The certificate-facts form's body.
#[derive(Deserialize)]
pub struct FactsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    voluntary_until: String,
    #[serde(default)]
    residence_until: String,
    #[serde(default)]
    certificate_requested: Option<String>,
}

/// Stores the facts that decide the person's certificates (with history), then shows the
/// person again.
#[post("/console/persons/{id}/certificate-facts")]
pub async fn set_facts(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
    form: CheckedForm<FactsForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(CLERKS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let person_id = id.into_inner();
    let facts = CertificateFacts {
        voluntary_until: form_date(&f.voluntary_until, "任意継続の終了日")?,
        residence_until: form_date(&f.residence_until, "在留期間の満了日")?,
        certificate_requested: f.certificate_requested.is_some(),
    };
    let actor = staff.caller.actor();
    let caller = staff.caller.clone();
    state
        .logged_change(move |conn| {
            persons::set_certificate_facts(conn, person_id, &facts, &actor)?;
            let e = entry(
                &caller,
                "person_update",
                Some(format!("person:{person_id}")),
                json!({ "person_id": person_id, "certificate_facts": facts, "console": true }),
                json!({ "found": true }),
                None,
            );
            Ok(((), vec![e]))
        })
        .await?;
    Ok(back_to(person_id))
}

/// The access-log entry of `action` on `cert` from the console.
fn cert_entry(
    caller: &crate::auth::Caller,
    action: &str,
    cert: &CertificateView,
    reason: Option<&str>,
) -> shikaku_db::access_log::NewEntry {
    entry(
        caller,
        action,
        Some(format!("person:{}", cert.person_id)),
        json!({ "certificate_id": cert.id, "console": true }),
        json!({ "number": cert.number, "status": cert.status }),
        reason,
    )
}

/// Reissue, revoke or mark returned, with a reason; then the person again.
#[post("/console/certificates/{id}/{action}")]
pub async fn act(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(i64, String)>,
    form: CheckedForm<ReasonForm>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(CLERKS)?;
    let f = form.into_inner();
    staff.check_csrf(&f.csrf)?;
    let (id, action) = path.into_inner();
    let actor = staff.caller.actor();
    let caller = staff.caller.clone();
    let cert = state
        .logged_change(move |conn| {
            let cert = match action.as_str() {
                "reissue" => certificates::reissue(
                    conn,
                    id,
                    today_tokyo(),
                    &IssueOptions::default(),
                    &f.reason,
                    &actor,
                )?,
                "revoke" => certificates::revoke(conn, id, &f.reason, &actor)?,
                "returned" => certificates::returned(conn, id, &f.reason, &actor)?,
                other => return Err(ApiError::NotFound(format!("no action {other}"))),
            };
            let e = cert_entry(
                &caller,
                &format!("certificate_{action}"),
                &cert,
                Some(&f.reason),
            );
            Ok((cert, vec![e]))
        })
        .await?;
    Ok(back_to(cert.person_id))
}

/// The layout asked for.
#[derive(Deserialize)]
pub struct PdfQuery {
    layout: Option<String>,
}

/// The certificate's PDF, for preview (card, inline) or download (A4).
#[get("/console/certificates/{id}/pdf")]
pub async fn pdf(
    state: web::Data<AppState>,
    staff: Staff,
    id: web::Path<i64>,
    query: web::Query<PdfQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(CLERKS)?;
    let layout = crate::certificates::layout_of(query.layout.as_deref())?;
    state.font()?;
    let cert = crate::certificates::printable(&state, id.into_inner()).await?;
    let bytes = state.render_pdf(vec![cert.printed.clone()], layout).await?;
    state
        .access_log
        .record(vec![cert_entry(
            &staff.caller,
            "certificate_print",
            &cert,
            None,
        )])
        .await?;
    let disposition = if layout == shikaku_print::Layout::A4 {
        "attachment"
    } else {
        "inline"
    };
    Ok(crate::certificates::pdf_response(
        bytes,
        disposition,
        &format!("certificate-{}.pdf", cert.number),
    ))
}
