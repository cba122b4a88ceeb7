//! 資格確認書 over HTTP: issue, refusals, reissue, revoke, returned, the automatic revocation on
//! a lost qualification, and the eligibility answer showing the active certificate.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Text};
use serde_json::json;
use shikaku_db::tokens::Role;

use crate::*;

fn policy(app: &TestApp, insurer: &str, policy: &str, years: i16) {
    let mut conn = app.conn();
    diesel::sql_query(
        "UPDATE insurers SET cert_policy = $2, cert_years = $3, cert_fixed_until = date '2029-11-30'
         WHERE insurer_number = $1",
    )
    .bind::<Text, _>(insurer)
    .bind::<Text, _>(policy)
    .bind::<diesel::sql_types::SmallInt, _>(years)
    .execute(&mut conn)
    .unwrap();
}

#[actix_web::test]
async fn issue_reissue_revoke_returned() {
    let app = TestApp::new();
    policy(&app, KUMIAI, "years_from_issue", 5);
    let p = app.person(
        KUMIAI,
        "50",
        "1",
        "00",
        "1980-05-05",
        "シカク タロウ",
        &[("2020-04-01", None)],
    );

    // Not insured on the day: refused.
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/certificates",
            json!({ "person_id": p, "on": "2019-01-01" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    let r = app.post(Some(Role::Clerk), "/v1/certificates", json!({ "member_id": format!("{KUMIAI}:50:1:00"), "on": "2026-12-01", "sex_on_back": true })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let first = r.json.clone();
    assert_eq!(first["status"], "active");
    assert_eq!(first["valid_from"], "2026-12-01");
    assert_eq!(first["valid_until"], "2031-11-30");
    assert_eq!(first["valid_until_reason"], "policy");
    assert_eq!(first["printed"]["name"], "試験　太郎");
    assert_eq!(first["printed"]["sex"], "裏面参照");
    assert_eq!(first["printed"]["insurer_name"], "テスト健康保険組合");
    assert_eq!(first["printed"]["relationship"], "本人");
    assert_eq!(first["printed"]["copay_percent"], 30);
    let id = first["id"].as_i64().unwrap();

    // A second active certificate: refused, reissue is the way.
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/certificates",
            json!({ "person_id": p, "on": "2026-12-02" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);

    // The eligibility answer shows it.
    let q = json!({ "insurer_number": KUMIAI, "symbol": "50", "number": "1", "branch": "00", "birth_date": "1980-05-05", "on": "2026-12-05" });
    let r = app
        .post(Some(Role::Provider), "/v1/eligibility", q.clone())
        .await;
    assert_eq!(r.json["person"]["certificate"]["number"], first["number"]);
    assert_eq!(r.json["person"]["certificate"]["valid_until"], "2031-11-30");

    // The printed items stay as printed when the person changes.
    let mut conn = app.conn();
    diesel::sql_query("UPDATE persons SET name_kanji = '試験　次郎' WHERE id = $1")
        .bind::<BigInt, _>(p)
        .execute(&mut conn)
        .unwrap();
    let r = app
        .get(Some(Role::Clerk), &format!("/v1/certificates/{id}"))
        .await;
    assert_eq!(r.json["certificate"]["printed"]["name"], "試験　太郎");

    // Reissue (name change): the old is superseded, the new prints the new name.
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/certificates/{id}/reissue"),
            json!({ "reason": "氏名変更", "on": "2027-01-10" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["supersedes"], id);
    assert_eq!(r.json["printed"]["name"], "試験　次郎");
    assert_eq!(r.json["valid_until"], "2032-01-09");
    let second = r.json["id"].as_i64().unwrap();
    assert_ne!(r.json["number"], first["number"]);
    let r = app
        .get(Some(Role::Admin), &format!("/v1/certificates/{id}"))
        .await;
    assert_eq!(r.json["certificate"]["status"], "superseded");
    let actions: Vec<&str> = r.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["issued", "superseded"]);
    // Only an active certificate can be reissued or revoked; a reason is required.
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/certificates/{id}/reissue"),
            json!({ "reason": "紛失" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/certificates/{second}/revoke"),
            json!({ "reason": "" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/certificates/{second}/revoke"),
            json!({ "reason": "本人申出" }),
        )
        .await;
    assert_eq!(r.json["status"], "revoked");
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/certificates/{second}/revoke"),
            json!({ "reason": "再度" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/certificates/{second}/returned"),
            json!({ "reason": "窓口で返納" }),
        )
        .await;
    assert_eq!(r.json["status"], "returned");
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/certificates/{second}/returned"),
            json!({ "reason": "二度目" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // No active certificate now: the answer shows none.
    let r = app.post(Some(Role::Provider), "/v1/eligibility", q).await;
    assert!(r.json["person"]["certificate"].is_null());
    assert!(app
        .access_log()
        .iter()
        .any(|e| e.action == "certificate_reissue" && e.reason.as_deref() == Some("氏名変更")));
}

#[actix_web::test]
async fn a_loss_recorded_in_advance_ends_the_certificate_on_the_loss_date() {
    let app = TestApp::new();
    let p = app.person(
        KUMIAI,
        "51",
        "1",
        "00",
        "1980-05-05",
        "ソウシツ",
        &[("2020-04-01", None)],
    );
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/certificates",
            json!({ "person_id": p, "on": "2026-12-01" }),
        )
        .await;
    let id = r.json["id"].as_i64().unwrap();
    // Whoever records the loss (here plain SQL, as an import's merge does): on 2027-02-01,
    // ahead of the day.
    let mut conn = app.conn();
    diesel::sql_query(
        "UPDATE qualifications SET lost_on = $2, loss_reason = '03' WHERE person_id = $1",
    )
    .bind::<BigInt, _>(p)
    .bind::<Date, _>(d("2027-02-01"))
    .execute(&mut conn)
    .unwrap();
    // Still insured until then: the certificate stays in force, valid until 31 January.
    let r = app
        .get(Some(Role::Clerk), &format!("/v1/certificates/{id}"))
        .await;
    assert_eq!(r.json["certificate"]["status"], "active");
    assert_eq!(r.json["certificate"]["valid_until"], "2027-01-31");
    assert_eq!(
        r.json["certificate"]["valid_until_reason"],
        "qualification_lost"
    );
    let last = r.json["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "shortened");
    assert_eq!(last["actor"], "system:qualification_lost");
    let ask = |on: &str| {
        json!({ "insurer_number": KUMIAI, "symbol": "51", "number": "1", "branch": "00",
                "birth_date": "1980-05-05", "on": on })
    };
    let r = app
        .post(Some(Role::Provider), "/v1/eligibility", ask("2027-01-31"))
        .await;
    assert_eq!(r.json["validity"], 1, "{}", r.text);
    assert_eq!(r.json["person"]["certificate"]["valid_until"], "2027-01-31");
    let r = app
        .post(Some(Role::Provider), "/v1/eligibility", ask("2027-02-01"))
        .await;
    assert_eq!(r.json["validity"], 2, "{}", r.text);
    assert!(r.json["person"]["certificate"].is_null());
    // The daily settlement on the loss date revokes it: void, to be returned.
    shikaku_db::certificates::expire(&mut conn, d("2027-02-01"), "batch").unwrap();
    let r = app
        .get(Some(Role::Clerk), &format!("/v1/certificates/{id}"))
        .await;
    assert_eq!(r.json["certificate"]["status"], "revoked");
    let last = r.json["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "revoked");
    assert_eq!(last["actor"], "system:qualification_lost");
    assert!(last["reason"].as_str().unwrap().contains("2027-02-01"));
}

#[actix_web::test]
async fn certificate_facts_are_stored_with_history_and_used_by_the_counter() {
    let app = TestApp::new();
    let p = app.person(
        KUMIAI,
        "55",
        "1",
        "00",
        "1980-05-05",
        "ニンイ",
        &[("2020-04-01", None)],
    );
    let path = format!("/v1/persons/{p}/certificate-facts");
    let put = |role, body: serde_json::Value| app.put(Some(role), &path, body);
    let r = put(
        Role::Provider,
        json!({ "voluntary_until": "2027-09-30", "certificate_requested": true }),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = put(Role::Clerk, json!({ "voluntary_until": "2027-02-30" })).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = put(
        Role::Clerk,
        json!({ "voluntary_until": "2027-09-30", "certificate_requested": true }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["voluntary_until"], "2027-09-30");
    assert_eq!(r.json["certificate_requested"], true);
    let h = app
        .get(Some(Role::Admin), &format!("/v1/persons/{p}/history"))
        .await;
    let last = h.json["changes"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["changes"]["voluntary_until"]["new"], "2027-09-30");
    assert!(last["actor"].as_str().unwrap().contains("clerk"), "{last}");
    assert!(app.access_log().iter().any(|e| e.action == "person_update"));
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/certificates",
            json!({ "person_id": p, "on": "2026-12-01" }),
        )
        .await;
    assert_eq!(r.json["valid_until"], "2027-09-30", "{}", r.text);
    assert_eq!(r.json["valid_until_reason"], "voluntary_continuation");
}

#[actix_web::test]
async fn validity_follows_the_insurer_policy_and_age() {
    let app = TestApp::new();
    policy(&app, KUMIAI, "yearly_july", 1);
    policy(&app, KYOKAI, "fixed_date", 5);
    let a = app.person(
        KUMIAI,
        "52",
        "1",
        "00",
        "1980-05-05",
        "ア",
        &[("2020-04-01", None)],
    );
    let b = app.person(
        KYOKAI,
        "52",
        "1",
        "00",
        "1980-05-05",
        "イ",
        &[("2020-04-01", None)],
    );
    // A 後期 member of 73 (admitted by disability certification): 75 on 2028-03-10, which
    // changes nothing for a member already in 後期, so no cut there.
    let c = app.person(
        KOKI,
        "",
        "53",
        "",
        "1953-03-10",
        "ウ",
        &[("2020-04-01", None)],
    );
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/certificates",
            json!({ "person_id": a, "on": "2026-12-01" }),
        )
        .await;
    assert_eq!(r.json["valid_until"], "2027-07-31");
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/certificates",
            json!({ "person_id": b, "on": "2026-12-01" }),
        )
        .await;
    assert_eq!(r.json["valid_until"], "2029-11-30");
    // The transitional certificate ends with the rule on 2026-07-31, not five years on.
    let r = app
        .post(
            Some(Role::Admin),
            "/v1/certificates",
            json!({ "person_id": c, "on": "2026-07-20", "kind": "koki_automatic" }),
        )
        .await;
    assert_eq!(r.json["valid_until"], "2026-07-31", "{}", r.text);
    assert_eq!(r.json["valid_until_reason"], "koki_transitional");
    assert_eq!(r.json["kind"], "koki_automatic");
    assert_eq!(r.json["printed"]["copay_percent"], 10);
    assert!(r.json["printed"]["relationship"].is_null());
    // Asked for at the counter, the next one starts on 1 August and runs the insurer's five
    // years: neither the 70 nor the 75 step cuts a 後期 member.
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/certificates",
            json!({ "person_id": c, "on": "2026-07-25" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["status"], "pending");
    assert_eq!(r.json["valid_from"], "2026-08-01");
    assert_eq!(r.json["valid_until"], "2031-07-31", "{}", r.text);
    assert_eq!(r.json["valid_until_reason"], "policy");
    assert_eq!(r.json["printed"]["copay_percent"], 10);
    assert!(r.json["printed"]["copay_effective_from"].is_null());
    // After the rule a transitional certificate has no validity left.
    let d2 = app.person(
        KOKI,
        "",
        "54",
        "",
        "1950-01-10",
        "エ",
        &[("2020-04-01", None)],
    );
    let r = app
        .post(
            Some(Role::Admin),
            "/v1/certificates",
            json!({ "person_id": d2, "on": "2026-12-01", "kind": "koki_automatic" }),
        )
        .await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.text);
    assert!(r.text.contains("no validity left"), "{}", r.text);
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/certificates",
            json!({ "person_id": a, "kind": "postcard" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[actix_web::test]
async fn the_pdf_shows_what_was_printed() {
    let app = TestApp::new();
    let p = app.person(
        KUMIAI,
        "54",
        "7",
        "00",
        "1980-05-05",
        "プリント",
        &[("2020-04-01", None)],
    );
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/certificates",
            json!({ "person_id": p, "on": "2026-12-01" }),
        )
        .await;
    let id = r.json["id"].as_i64().unwrap();
    let number = r.json["number"].as_str().unwrap().to_string();
    for layout in ["card", "a4"] {
        let req = actix_web::test::TestRequest::get()
            .uri(&format!("/v1/certificates/{id}/pdf?layout={layout}"))
            .insert_header((
                "Authorization",
                format!("Bearer {}", app.token(Role::Clerk)),
            ));
        let state = app.state.clone();
        let svc = actix_web::test::init_service(
            actix_web::App::new().configure(move |cfg| shikaku_api::configure(cfg, state)),
        )
        .await;
        let res = actix_web::test::call_service(&svc, req.to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers().get("content-type").unwrap(),
            "application/pdf"
        );
        let body = actix_web::test::read_body(res).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pdf");
        std::fs::write(&path, &body).unwrap();
        let out = std::process::Command::new("pdftotext")
            .args([path.to_str().unwrap(), "-"])
            .output()
            .expect("pdftotext (poppler-utils) is needed; scripts/test installs it");
        let text: String = String::from_utf8_lossy(&out.stdout)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        assert!(text.contains(&number), "{layout}: {text}");
        assert!(
            text.contains("テスト健康保険組合") && text.contains("番号7"),
            "{layout}: {text}"
        );
    }
    let r = app
        .get(
            Some(Role::Clerk),
            &format!("/v1/certificates/{id}/pdf?layout=poster"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(app
        .access_log()
        .iter()
        .any(|e| e.action == "certificate_print"));
}
