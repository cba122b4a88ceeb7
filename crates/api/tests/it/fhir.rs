//! The FHIR round trip: a CoverageEligibilityRequest with a contained JP_Coverage and Patient
//! in, a CoverageEligibilityResponse out; errors as OperationOutcome.

use serde_json::{json, Value};
use shikaku_db::tokens::Role;

use crate::*;

const EXT: &str = "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/";

/// A request as a clinic system would send it.
pub fn request(
    insurer: &str,
    symbol: &str,
    number: &str,
    branch: &str,
    birth: &str,
    on: &str,
) -> Value {
    json!({
        "resourceType": "CoverageEligibilityRequest",
        "id": "req-1",
        "status": "active",
        "purpose": ["validation"],
        "servicedDate": on,
        "created": "2026-11-25",
        "patient": { "reference": "#pat" },
        "insurer": { "identifier": { "system": "urn:oid:1.2.392.100495.20.3.61", "value": insurer } },
        "contained": [
            { "resourceType": "Patient", "id": "pat", "birthDate": birth },
            {
                "resourceType": "Coverage", "id": "cov", "status": "active",
                "extension": [
                    { "url": format!("{EXT}JP_Coverage_InsuredPersonSymbol"), "valueString": symbol },
                    { "url": format!("{EXT}JP_Coverage_InsuredPersonNumber"), "valueString": number },
                    { "url": format!("{EXT}JP_Coverage_InsuredPersonSubNumber"), "valueString": branch },
                ],
                "beneficiary": { "reference": "#pat" },
                "payor": [{ "identifier": { "system": "urn:oid:1.2.392.100495.20.3.61", "value": insurer } }],
            },
        ],
        "insurance": [{ "coverage": { "reference": "#cov" } }],
    })
}

async fn submit(app: &TestApp, body: &Value) -> Reply {
    let req = actix_web::test::TestRequest::post()
        .uri("/fhir/CoverageEligibilityRequest/$submit")
        .insert_header(("content-type", "application/fhir+json"))
        .insert_header((
            "Authorization",
            format!("Bearer {}", app.token(Role::Provider)),
        ))
        .set_payload(body.to_string());
    app.send(req).await
}

#[actix_web::test]
async fn round_trip() {
    let app = TestApp::new();
    app.person(
        KUMIAI,
        "30",
        "4",
        "00",
        "1988-08-08",
        "エフ",
        &[("2019-04-01", Some("2025-10-01"))],
    );

    let r = submit(
        &app,
        &request(KUMIAI, "30", "4", "00", "1988-08-08", "2025-06-01"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.content_type.starts_with("application/fhir+json"),
        "{}",
        r.content_type
    );
    let res = &r.json;
    assert_eq!(res["resourceType"], "CoverageEligibilityResponse");
    assert_eq!(res["outcome"], "complete");
    assert_eq!(res["purpose"], json!(["validation"]));
    assert_eq!(res["servicedDate"], "2025-06-01");
    assert_eq!(
        res["request"]["reference"],
        "CoverageEligibilityRequest/req-1"
    );
    assert_eq!(res["insurer"]["identifier"]["value"], KUMIAI);
    assert_eq!(res["insurance"][0]["inforce"], true);
    assert_eq!(res["insurance"][0]["coverage"]["reference"], "#coverage");
    // The references resolve: the Patient and Coverage asked about are contained.
    assert_eq!(res["patient"]["reference"], "#patient");
    assert_eq!(res["contained"][0]["birthDate"], "1988-08-08");
    assert_eq!(res["contained"][1]["id"], "coverage");
    assert_eq!(
        res["contained"][1]["identifier"][0]["value"],
        format!("{KUMIAI}:30:4:00")
    );
    // FHIR periods are inclusive: the day before 資格喪失日.
    assert_eq!(
        res["insurance"][0]["benefitPeriod"],
        json!({ "start": "2019-04-01", "end": "2025-09-30" })
    );
    assert_eq!(res["extension"][0]["valueCode"], "1");

    // After the loss: not in force.
    let r = submit(
        &app,
        &request(KUMIAI, "30", "4", "00", "1988-08-08", "2026-01-01"),
    )
    .await;
    assert_eq!(r.json["insurance"][0]["inforce"], false);
    assert_eq!(r.json["extension"][0]["valueCode"], "2");
    // No match: outcome error, nothing about anyone.
    let r = submit(
        &app,
        &request(KUMIAI, "30", "4", "00", "1988-08-09", "2026-01-01"),
    )
    .await;
    assert_eq!(r.json["outcome"], "error");
    assert!(r.json.get("insurance").is_none());
    // The insurer asked about is still named (FHIR requires it), with no name to give away.
    assert_eq!(r.json["insurer"]["identifier"]["value"], KUMIAI);
    assert_eq!(r.json["contained"].as_array().unwrap().len(), 1);
    // An insurer registered without a name: the display is left out, never sent empty.
    diesel::connection::SimpleConnection::batch_execute(
        &mut app.conn(),
        &format!("UPDATE insurers SET name = '' WHERE insurer_number = '{KUMIAI}'"),
    )
    .unwrap();
    let r = submit(
        &app,
        &request(KUMIAI, "30", "4", "00", "1988-08-08", "2025-06-01"),
    )
    .await;
    assert_eq!(r.json["outcome"], "complete", "{}", r.text);
    assert!(r.json["insurer"].get("display").is_none(), "{}", r.text);
    // The member identifier form works too.
    let mut by_member = request(KUMIAI, "", "", "", "1988-08-08", "2025-06-01");
    by_member["contained"][1] = json!({ "resourceType": "Coverage", "id": "cov",
        "identifier": [{ "value": format!("{KUMIAI}:30:4:00") }] });
    let r = submit(&app, &by_member).await;
    assert_eq!(r.json["insurance"][0]["inforce"], true, "{}", r.text);
    // The answer is logged like any eligibility answer.
    assert_eq!(
        app.access_log()
            .iter()
            .filter(|e| e.action == "eligibility")
            .count(),
        5
    );
}

#[actix_web::test]
async fn errors_are_operation_outcomes() {
    let app = TestApp::new();
    let mut wrong_purpose = request(KUMIAI, "1", "1", "00", "1980-01-01", "2026-01-01");
    wrong_purpose["purpose"] = json!(["benefits"]);
    let mut no_patient = request(KUMIAI, "1", "1", "00", "1980-01-01", "2026-01-01");
    no_patient["contained"].as_array_mut().unwrap().remove(0);
    let cases = [
        (
            json!({ "resourceType": "Patient" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (wrong_purpose, StatusCode::UNPROCESSABLE_ENTITY),
        (no_patient, StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (body, status) in cases {
        let r = submit(&app, &body).await;
        assert_eq!(r.status, status, "{}", r.text);
        assert_eq!(r.json["resourceType"], "OperationOutcome");
        assert_eq!(r.json["issue"][0]["severity"], "error");
    }
    let req = actix_web::test::TestRequest::post()
        .uri("/fhir/CoverageEligibilityRequest/$submit")
        .insert_header(("content-type", "application/fhir+json"))
        .insert_header((
            "Authorization",
            format!("Bearer {}", app.token(Role::Provider)),
        ))
        .set_payload("{not json");
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    let req = actix_web::test::TestRequest::post()
        .uri("/fhir/CoverageEligibilityRequest/$submit")
        .insert_header(("content-type", "application/fhir+json"))
        .insert_header((
            "Authorization",
            format!("Bearer {}", app.token(Role::Provider)),
        ))
        .set_payload(format!("{{\"padding\": \"{}\"}}", "x".repeat(600 * 1024)));
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json["resourceType"], "OperationOutcome");
    let req = actix_web::test::TestRequest::post()
        .uri("/fhir/CoverageEligibilityRequest/$submit")
        .set_payload("{}");
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json["issue"][0]["code"], "login");
}

/// `request` without a 枝番, with the Patient's names as JP Core writes them: the kanji name
/// (`IDE`) and the kana name (`SYL`), each marked by the iso21090 representation extension.
pub fn request_with_kana(
    insurer: &str,
    symbol: &str,
    number: &str,
    birth: &str,
    on: &str,
    kana: &str,
) -> Value {
    let mut req = request(insurer, symbol, number, "", birth, on);
    let representation = |code: &str| {
        json!([{
            "url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation",
            "valueCode": code,
        }])
    };
    let (family, given) = kana.split_once(' ').unwrap();
    req["contained"][0]["name"] = json!([
        { "extension": representation("IDE"), "use": "official", "text": "山田 次郎" },
        { "extension": representation("SYL"), "use": "official", "family": family, "given": [given] },
    ]);
    let exts = req["contained"][1]["extension"].as_array_mut().unwrap();
    exts.retain(|e| !e["url"].as_str().unwrap().ends_with("SubNumber"));
    req
}

#[actix_web::test]
async fn twins_are_told_apart_by_the_patients_kana_name() {
    let app = TestApp::new();
    for (branch, kana) in [("01", "ヤマダ　タロウ"), ("02", "ヤマダ　ジロウ")] {
        app.person(
            KUMIAI,
            "31",
            "5",
            branch,
            "2016-03-03",
            kana,
            &[("2016-04-01", None)],
        );
    }
    let validity = |r: &Reply| {
        r.json["extension"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == "urn:shikaku:fhir:eligibility-validity")
            .unwrap()["valueCode"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // No name: several matches.
    let mut plain = request(KUMIAI, "31", "5", "", "2016-03-03", "2026-01-01");
    plain["contained"][1]["extension"]
        .as_array_mut()
        .unwrap()
        .retain(|e| !e["url"].as_str().unwrap().ends_with("SubNumber"));
    let r = submit(&app, &plain).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(validity(&r), "5");
    // The kana name picks the twin, in half-width as clinics' systems often hold it.
    let r = submit(
        &app,
        &request_with_kana(KUMIAI, "31", "5", "2016-03-03", "2026-01-01", "ﾔﾏﾀﾞ ｼﾞﾛｳ"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(validity(&r), "1");
    assert_eq!(r.json["outcome"], "complete");
    let member = r.json["contained"][1]["identifier"][0]["value"]
        .as_str()
        .unwrap();
    assert!(member.ends_with(":31:5:02"), "{member}");
    // A kana neither twin has: no match.
    let r = submit(
        &app,
        &request_with_kana(
            KUMIAI,
            "31",
            "5",
            "2016-03-03",
            "2026-01-01",
            "スズキ ハナコ",
        ),
    )
    .await;
    assert_eq!(validity(&r), "4");
    assert_eq!(r.json["outcome"], "error");
}
