//! Dated benefits at the counter: the co-pay of the day asked (last year's rate for last
//! year), its 発効期日, the 70th birthday on the 1st and on the 2nd, the limit category and
//! 特定疾病 only with the patient's consent (and the access log saying which was asked), the
//! FHIR answer's `insurance.item`, and staff writes through the API.

use diesel::prelude::*;
use diesel::sql_types::Text;
use serde_json::{json, Value};
use shikaku_db::benefits::{self, BenefitInput};
use shikaku_db::tokens::Role;
use shikaku_domain::benefit::{BenefitKind, Disease};

use crate::*;

fn add(
    app: &TestApp,
    person: i64,
    kind: BenefitKind,
    value: &str,
    disease: Option<Disease>,
    from: &str,
    until: Option<&str>,
) {
    let input = BenefitInput {
        kind,
        value: value.into(),
        disease,
        valid_from: d(from),
        valid_until: until.map(d),
    };
    benefits::add(
        &mut app.conn(),
        person,
        &input,
        "test",
        "テスト",
        d("2026-12-01"),
    )
    .unwrap();
}

fn ask(number: &str, birth: &str, on: &str, consent: bool) -> Value {
    json!({ "insurer_number": KUMIAI, "symbol": "2001", "number": number, "birth_date": birth,
            "on": on, "limit_consent": consent })
}

/// A 72-year-old: 30% (現役並み) for fiscal 2025, 20% from August 2026, limit A03 from 2026,
/// dialysis since 2024.
fn seventy_two(app: &TestApp) -> i64 {
    let id = app.person(
        KUMIAI,
        "2001",
        "5",
        "",
        "1953-06-10",
        "シケン ゴロウ",
        &[("2000-04-01", None)],
    );
    add(
        app,
        id,
        BenefitKind::Copay,
        "30",
        None,
        "2025-08-01",
        Some("2026-07-31"),
    );
    add(app, id, BenefitKind::Copay, "20", None, "2026-08-01", None);
    add(app, id, BenefitKind::Limit, "A03", None, "2026-01-01", None);
    add(
        app,
        id,
        BenefitKind::SpecifiedDisease,
        "10000",
        Some(Disease::Dialysis),
        "2024-04-01",
        None,
    );
    id
}

#[actix_web::test]
async fn the_answer_carries_the_terms_of_the_day_and_consent_decides_the_limit() {
    let app = TestApp::new();
    seventy_two(&app);
    let post = |body: Value| app.post(Some(Role::Provider), "/v1/eligibility", body);

    // Last year: last year's rate, from its record.
    let r = post(ask("5", "1953-06-10", "2025-11-20", false)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = &r.json["person"];
    assert_eq!(p["copay_code"], "030");
    assert_eq!(p["copay_effective_from"], "2025-08-01");
    assert_eq!(p["copay_source"], "record");
    // Without consent neither the category nor the 特定疾病 is sent.
    assert!(p.get("limit_category").is_none(), "{p}");
    assert!(p.get("specified_diseases").is_none(), "{p}");

    // This year, with consent: this year's rate, the category and the dialysis cap.
    let r = post(ask("5", "1953-06-10", "2026-11-20", true)).await;
    let p = &r.json["person"];
    assert_eq!(p["copay_code"], "020");
    assert_eq!(p["copay_effective_from"], "2026-08-01");
    assert_eq!(p["limit_category"], "A03");
    assert_eq!(p["specified_diseases"][0]["disease"], "dialysis");
    assert_eq!(p["specified_diseases"][0]["cap_yen"], 10000);
    // The category was not in force in 2025.
    let r = post(ask("5", "1953-06-10", "2025-11-20", true)).await;
    assert!(r.json["person"].get("limit_category").is_none());

    // The batch answers the same, per query.
    let r = app
        .post(
            Some(Role::Provider),
            "/v1/eligibility/batch",
            json!({ "queries": [ask("5", "1953-06-10", "2026-11-20", false), ask("5", "1953-06-10", "2026-11-20", true)] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.json["answers"][0]["person"]
        .get("limit_category")
        .is_none());
    assert_eq!(r.json["answers"][1]["person"]["limit_category"], "A03");

    // The access log records whether consent was asked for, answer by answer.
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        consent: String,
    }
    let asked: Vec<String> = diesel::sql_query(
        "SELECT request ->> 'limit_consent' AS consent FROM access_log
          WHERE action = 'eligibility' ORDER BY seq",
    )
    .load::<Row>(&mut app.conn())
    .unwrap()
    .into_iter()
    .map(|r| r.consent)
    .collect();
    assert_eq!(asked, ["false", "true", "true", "false", "true"]);
}

#[actix_web::test]
async fn the_seventieth_birthday_on_the_first_and_on_the_second() {
    let app = TestApp::new();
    app.person(
        KUMIAI,
        "2001",
        "11",
        "",
        "1956-07-01",
        "シケン イチ",
        &[("2000-04-01", None)],
    );
    app.person(
        KUMIAI,
        "2001",
        "12",
        "",
        "1956-07-02",
        "シケン ニ",
        &[("2000-04-01", None)],
    );
    let code = |number: &'static str, birth: &'static str, on: &'static str| {
        let app = &app;
        async move {
            let r = app
                .post(
                    Some(Role::Provider),
                    "/v1/eligibility",
                    ask(number, birth, on, false),
                )
                .await;
            (
                r.json["person"]["copay_code"].as_str().unwrap().to_owned(),
                r.json["person"]["copay_effective_from"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        }
    };
    // Born on the 1st: 20% from the 1st of the birthday month.
    assert_eq!(code("11", "1956-07-01", "2026-06-30").await.0, "030");
    assert_eq!(
        code("11", "1956-07-01", "2026-07-01").await,
        ("020".into(), "2026-07-01".into())
    );
    // Born on the 2nd: from the month after.
    assert_eq!(code("12", "1956-07-02", "2026-07-31").await.0, "030");
    assert_eq!(
        code("12", "1956-07-02", "2026-08-01").await,
        ("020".into(), "2026-08-01".into())
    );
}

#[actix_web::test]
async fn fhir_carries_the_benefits_as_insurance_items() {
    let app = TestApp::new();
    seventy_two(&app);
    let mut req = crate::fhir::request(KUMIAI, "2001", "5", "", "1953-06-10", "2026-11-20");
    let send = |body: Value| {
        let app = &app;
        async move {
            let r = actix_web::test::TestRequest::post()
                .uri("/fhir/CoverageEligibilityRequest/$submit")
                .insert_header(("content-type", "application/fhir+json"))
                .insert_header((
                    "Authorization",
                    format!("Bearer {}", app.token(Role::Provider)),
                ))
                .set_payload(body.to_string());
            app.send(r).await
        }
    };
    let r = send(req.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let items = r.json["insurance"][0]["item"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "without consent only the co-pay: {items:?}");
    assert_eq!(
        items[0]["benefit"][0]["type"]["coding"][0]["code"],
        "copay-percent"
    );
    assert_eq!(items[0]["benefit"][0]["allowedUnsignedInt"], 20);
    assert_eq!(items[0]["extension"][0]["valueDate"], "2026-08-01");

    req["extension"] = json!([{ "url": "urn:shikaku:fhir:limit-consent", "valueBoolean": true }]);
    let r = send(req.clone()).await;
    let items = r.json["insurance"][0]["item"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[1]["benefit"][0]["allowedString"], "A03");
    assert_eq!(items[2]["benefit"][0]["allowedMoney"]["value"], 10000);
    assert_eq!(items[2]["benefit"][0]["allowedMoney"]["currency"], "JPY");
    assert_eq!(items[2]["description"], "人工透析を要する慢性腎不全");

    req["extension"] = json!([{ "url": "urn:shikaku:fhir:limit-consent", "valueString": "yes" }]);
    let r = send(req).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.json["resourceType"], "OperationOutcome");
}

#[actix_web::test]
async fn staff_add_end_and_correct_records_with_reasons() {
    let app = TestApp::new();
    let id = app.person(
        KUMIAI,
        "2001",
        "21",
        "",
        "1980-01-01",
        "シケン サブロウ",
        &[("2000-04-01", None)],
    );
    let body = json!({ "record": { "kind": "limit", "value": "A04", "valid_from": "2026-01-01" },
                       "reason": "限度額適用認定の申請" });
    let r = app
        .post(
            Some(Role::Provider),
            &format!("/v1/persons/{id}/benefits"),
            body.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/persons/{id}/benefits"),
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let bid = r.json["benefit"]["id"].as_i64().unwrap();
    // An overlapping record of the same kind is refused, naming the rule.
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/persons/{id}/benefits"),
            json!({ "record": { "kind": "limit", "value": "A03", "valid_from": "2026-06-01" }, "reason": "重複" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("benefits_no_overlap"), "{}", r.text);
    // A bad value names the field; a reason is required.
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/persons/{id}/benefits"),
            json!({ "record": { "kind": "limit", "value": "A09", "valid_from": "2027-01-01" }, "reason": "x" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("value"), "{}", r.text);
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/benefits/{bid}/end"),
            json!({ "valid_until": "2026-05-31", "reason": "" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/benefits/{bid}/end"),
            json!({ "valid_until": "2026-05-31", "reason": "認定証の返還" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .put(
            Some(Role::Admin),
            &format!("/v1/benefits/{bid}"),
            json!({ "record": { "kind": "limit", "value": "A05", "valid_from": "2026-01-01", "valid_until": "2026-05-31" },
                    "reason": "区分の誤登録の訂正" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .get(Some(Role::Auditor), &format!("/v1/persons/{id}/benefits"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["benefits"][0]["value"], "A05");
    assert_eq!(r.json["benefits"][0]["valid_until"], "2026-05-31");
    let r = app
        .get(Some(Role::Auditor), &format!("/v1/persons/{id}/history"))
        .await;
    let actions: Vec<&str> = r.json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        ["benefit_added", "benefit_ended", "benefit_changed"]
    );
    assert_eq!(
        r.json["changes"][2]["changes"]["reason"],
        "区分の誤登録の訂正"
    );
    // Every read and write is in the access log with the person.
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        action: String,
    }
    let logged: Vec<String> = diesel::sql_query(format!(
        "SELECT action FROM access_log WHERE subject = 'person:{id}' ORDER BY seq"
    ))
    .load::<Row>(&mut app.conn())
    .unwrap()
    .into_iter()
    .map(|r| r.action)
    .collect();
    for a in [
        "benefit_add",
        "benefit_end",
        "benefit_correct",
        "benefits_read",
    ] {
        assert!(logged.iter().any(|l| l == a), "{a} not in {logged:?}");
    }
}
