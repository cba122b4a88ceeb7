//! Critical findings block online viewing (issue 13), end to end: a real audit run finds the
//! 2023 root case on a linkage, suspends it naming the finding, the eligibility answer (JSON
//! and FHIR) says viewing is blocked while the validity code stays the insurance standing, a
//! dismissal restores the linkage, and a re-run does not block it again. Confirming keeps the
//! block until the number is corrected.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Date, Integer, Nullable, SmallInt, Text};
use serde_json::json;
use shikaku_audit::runner::{run_audit, RunOptions, RunSummary};
use shikaku_audit::AuditContext;
use shikaku_db::tokens::Role;

use crate::*;

const RUN_DATE: &str = "2026-10-01";

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// An employee-insurance member with no address, as 協会けんぽ and 健保組合 registries often
/// hold them: 山田　太郎, ヤマダ　タロウ, 1980-05-17, male, insured since 2020.
fn member(app: &TestApp, number: &str) -> i64 {
    let mut conn = app.conn();
    let id = diesel::sql_query(
        "INSERT INTO persons (insurer_number, symbol, number, branch, relationship, name_kanji,
                              name_kana, kana_key, birth_date, sex, address)
         VALUES ($1, '5001', $2, '00', 1, '山田　太郎', 'ヤマダ　タロウ', 'ヤマダタロウ',
                 '1980-05-17', 1, NULL)
         RETURNING id",
    )
    .bind::<Text, _>(KUMIAI)
    .bind::<Text, _>(number)
    .get_result::<Id>(&mut conn)
    .unwrap()
    .id;
    diesel::sql_query(
        "INSERT INTO qualifications (person_id, acquired_on) VALUES ($1, '2020-04-01')",
    )
    .bind::<BigInt, _>(id)
    .execute(&mut conn)
    .unwrap();
    id
}

/// A register snapshot holding, for each number, another human with the same kana, birth date
/// and sex: 山田　太朗 living in 茅ヶ崎 (the 3-item lookup found them).
fn register_other_taro(app: &TestApp, numbers: &[&str]) {
    let k = app.keyring();
    let mut conn = app.conn();
    let import = diesel::sql_query(
        "INSERT INTO imports (kind, file_name, actor) VALUES ('residents', 'residents.csv', 'test')
         RETURNING id",
    )
    .get_result::<Id>(&mut conn)
    .unwrap()
    .id;
    let snapshot = diesel::sql_query(
        "INSERT INTO resident_snapshots (import_id, file_name, rows, index_key_id)
         VALUES ($1, 'residents.csv', $2, $3) RETURNING id",
    )
    .bind::<BigInt, _>(import)
    .bind::<BigInt, _>(i64::try_from(numbers.len()).unwrap())
    .bind::<Integer, _>(i32::try_from(k.index_key_id()).unwrap())
    .get_result::<Id>(&mut conn)
    .unwrap()
    .id;
    for n in numbers {
        diesel::sql_query(
            "INSERT INTO resident_records (snapshot_id, mn_blind, mn_last4, check_digit_ok,
                                           name_kanji, name_kana, birth_date, sex, address, status)
             VALUES ($1, $2, $3, true, '山田　太朗', 'ﾔﾏﾀﾞ ﾀﾛｳ', $4, $5, $6, 'active')",
        )
        .bind::<BigInt, _>(snapshot)
        .bind::<Bytea, _>(k.blind_index(n).as_bytes().to_vec())
        .bind::<Text, _>(&n[8..])
        .bind::<Date, _>(d("1980-05-17"))
        .bind::<SmallInt, _>(1)
        .bind::<Nullable<Text>, _>(Some("神奈川県茅ヶ崎市新栄町4丁目5番6号"))
        .execute(&mut conn)
        .unwrap();
    }
}

/// The nightly audit, on a thread of its own: its streaming client runs a runtime of its own,
/// which cannot start inside the test's.
fn audit(app: &TestApp) -> RunSummary {
    std::thread::scope(|s| {
        s.spawn(|| {
            run_audit(
                app.db.url(),
                &AuditContext::new(d(RUN_DATE)),
                &RunOptions {
                    threads: Some(1),
                    actor: "audit:test",
                    progress: &|_, _| {},
                    rows_per_file: None,
                    standby: None,
                },
            )
            .unwrap()
        })
        .join()
        .unwrap()
    })
}

/// The linkage's status and the finding it names.
fn linkage_state(app: &TestApp, id: i64) -> (String, Option<i64>) {
    let l = shikaku_db::linkages::get(&mut app.conn(), id).unwrap();
    (l.status.as_str().to_owned(), l.suspended_by_finding)
}

/// The linkage's events as (action, reason), oldest first.
fn linkage_events(app: &TestApp, id: i64) -> Vec<(String, String)> {
    #[derive(QueryableByName)]
    struct Event {
        #[diesel(sql_type = Text)]
        action: String,
        #[diesel(sql_type = Nullable<Text>)]
        reason: Option<String>,
    }
    diesel::sql_query("SELECT action, reason FROM linkage_events WHERE linkage_id = $1 ORDER BY id")
        .bind::<BigInt, _>(id)
        .load::<Event>(&mut app.conn())
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.reason.unwrap_or_default()))
        .collect()
}

/// The one critical finding of the run.
fn critical_finding(app: &TestApp) -> shikaku_db::findings::StoredFinding {
    let all = shikaku_db::findings::page(
        &mut app.conn(),
        &shikaku_db::findings::Filter::default(),
        shikaku_db::findings::QueueOrder::Severity,
        None,
        100,
    )
    .unwrap()
    .findings;
    assert_eq!(all.len(), 1, "{all:#?}");
    all.into_iter().next().unwrap()
}

async fn ask(app: &TestApp, number: &str) -> serde_json::Value {
    let r = app
        .post(
            Some(Role::Provider),
            "/v1/eligibility",
            json!({ "insurer_number": KUMIAI, "symbol": "5001", "number": number,
                    "branch": "00", "birth_date": "1980-05-17", "on": RUN_DATE }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json
}

#[actix_web::test]
async fn a_critical_finding_blocks_viewing_until_dismissed_and_a_rerun_keeps_it_lifted() {
    let app = TestApp::new();
    let person = member(&app, "101");
    let number = my_number(31_415_926_535);
    let linkage = app.link(person, &number);
    register_other_taro(&app, &[&number]);

    // Before any audit: insured, viewing open.
    let a = ask(&app, "101").await;
    assert_eq!(a["validity"], 1);
    assert_eq!(a["online_viewing"], json!({ "blocked": false }));

    // The root case with no address in the registry is critical (C4), and blocks the linkage.
    let run1 = audit(&app);
    assert_eq!(run1.merge.linkages.suspended, 1);
    let f = critical_finding(&app);
    assert_eq!(
        (f.kind.as_str(), f.severity.as_str()),
        ("identity_mismatch", "critical")
    );
    assert!(f.detail.starts_with("[C4 p="), "{}", f.detail);
    assert_eq!(f.linkage_id, Some(linkage));
    assert_eq!(f.linkage_blocked_by, Some(f.id));
    assert_eq!(
        linkage_state(&app, linkage),
        ("suspended".into(), Some(f.id))
    );
    let reason = format!("finding {}", f.id);
    assert_eq!(
        linkage_events(&app, linkage).last().unwrap(),
        &("suspended".to_owned(), reason.clone())
    );

    // The clinic is told: still insured (1), but online viewing blocked by the finding.
    let a = ask(&app, "101").await;
    assert_eq!(a["validity"], 1, "{a}");
    assert_eq!(
        a["online_viewing"],
        json!({ "blocked": true, "reason": reason, "finding_id": f.id })
    );
    // FHIR says it too.
    let fhir = app
        .send(
            actix_web::test::TestRequest::post()
                .uri("/fhir/CoverageEligibilityRequest/$submit")
                .insert_header(("content-type", "application/fhir+json"))
                .insert_header((
                    "Authorization",
                    format!("Bearer {}", app.token(Role::Provider)),
                ))
                .set_payload(
                    crate::fhir::request(KUMIAI, "5001", "101", "00", "1980-05-17", RUN_DATE)
                        .to_string(),
                ),
        )
        .await;
    assert_eq!(fhir.status, StatusCode::OK, "{}", fhir.text);
    let blocked = fhir.json["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == "urn:shikaku:fhir:online-viewing-blocked")
        .unwrap_or_else(|| panic!("{}", fhir.text));
    assert_eq!(blocked["valueString"], reason);
    assert_eq!(fhir.json["insurance"][0]["inforce"], true);
    // The access log records that the answer was a blocked one.
    let last = app
        .access_log()
        .into_iter()
        .rfind(|e| e.action == "eligibility")
        .unwrap();
    assert_eq!(last.response["online_viewing_blocked"], json!(reason));
    // The console says it in Japanese.
    let page = crate::console::eligibility_page_for(&app, "101").await;
    assert!(
        page.contains(&format!(
            "オンライン閲覧停止中（監査所見 #{} の確認待ち）",
            f.id
        )),
        "{page}"
    );

    // 理由付き疑いなし: the linkage is active again, and says why.
    let r = app
        .post(
            Some(Role::Auditor),
            &format!("/v1/findings/{}/dismiss", f.id),
            json!({ "reason": "住基の異動履歴で本人と確認（漢字の誤登録は住基側）" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "dismissed");
    assert_eq!(r.json["linkage_status"], "active");
    assert_eq!(linkage_state(&app, linkage), ("active".into(), None));
    assert_eq!(
        linkage_events(&app, linkage).last().unwrap(),
        &(
            "restored".to_owned(),
            format!("finding {} dismissed (理由付き疑いなし)", f.id)
        )
    );
    assert_eq!(
        ask(&app, "101").await["online_viewing"],
        json!({ "blocked": false })
    );

    // The next night's run sees the same mismatch, keeps the verdict and does not block again.
    let events_before = linkage_events(&app, linkage).len();
    let run2 = audit(&app);
    assert_eq!(run2.merge.new, 0);
    assert_eq!(run2.merge.linkages, Default::default());
    let again = critical_finding(&app);
    assert_eq!((again.id, again.status.as_str()), (f.id, "dismissed"));
    assert_eq!(again.last_seen_run, run2.run_id);
    assert_eq!(linkage_state(&app, linkage), ("active".into(), None));
    assert_eq!(linkage_events(&app, linkage).len(), events_before);
    assert_eq!(ask(&app, "101").await["online_viewing"]["blocked"], false);
}

#[actix_web::test]
async fn confirmed_stays_blocked_until_the_number_is_corrected() {
    let app = TestApp::new();
    let person = member(&app, "102");
    let wrong = my_number(27_182_818_284);
    let linkage = app.link(person, &wrong);
    register_other_taro(&app, &[&wrong]);
    audit(&app);
    let f = critical_finding(&app);

    // Confirmed: the problem is real; the block stays, and a re-run leaves it.
    let r = app
        .post(
            Some(Role::Auditor),
            &format!("/v1/findings/{}/confirm", f.id),
            json!({ "reason": "J-LIS: the number belongs to another 山田太朗" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["linkage_status"], "suspended");
    let run = audit(&app);
    assert_eq!(run.merge.linkages, Default::default());
    assert_eq!(
        linkage_state(&app, linkage),
        ("suspended".into(), Some(f.id))
    );
    assert_eq!(ask(&app, "102").await["online_viewing"]["blocked"], true);

    // The correction revokes the wrong link, resolves the finding and lifts the block at once.
    let right = my_number(16_180_339_887);
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/linkages/{linkage}/correct"),
            json!({ "my_number": right, "reason": "J-LIS照会で正しい番号を確認" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(linkage_state(&app, linkage), ("revoked".into(), None));
    let now = shikaku_db::findings::get(&mut app.conn(), f.id).unwrap();
    assert_eq!(now.status.as_str(), "resolved");
    let a = ask(&app, "102").await;
    assert_eq!(
        (a["validity"].as_u64(), &a["online_viewing"]),
        (Some(1), &json!({ "blocked": false }))
    );
}

#[actix_web::test]
async fn a_reviewers_own_suspension_is_neither_taken_over_nor_lifted() {
    let app = TestApp::new();
    let person = member(&app, "103");
    let number = my_number(14_142_135_623);
    let linkage = app.link(person, &number);
    shikaku_db::linkages::suspend(&mut app.conn(), linkage, "窓口で本人から申出", "user:clerk")
        .unwrap();
    register_other_taro(&app, &[&number]);
    let run = audit(&app);
    assert_eq!(run.merge.linkages.suspended, 0);
    let f = critical_finding(&app);
    assert_eq!(linkage_state(&app, linkage), ("suspended".into(), None));
    let a = ask(&app, "103").await;
    assert_eq!(
        a["online_viewing"],
        json!({ "blocked": true, "reason": "suspended by the insurer" })
    );
    // Dismissing the finding does not lift what the reviewer suspended.
    shikaku_db::findings::review(
        &mut app.conn(),
        f.id,
        shikaku_domain::finding::ReviewAction::Dismiss,
        "checked",
        "user:auditor",
    )
    .unwrap();
    assert_eq!(linkage_state(&app, linkage), ("suspended".into(), None));
}
