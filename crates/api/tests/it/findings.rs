//! The findings queue over HTTP: filters, one finding with its history, confirm and dismiss.

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde_json::json;
use shikaku_db::tokens::Role;

use crate::*;

/// Stores an audit run with one open identity_mismatch finding; returns the finding id.
pub fn seed_finding(app: &TestApp, person: i64, linkage: i64) -> i64 {
    seed_compared_finding(app, person, linkage, Vec::new())
}

/// A critical identity finding on the linkage with the per-item comparison an audit run would
/// have stored (empty: none), in a finished run that records the built-in variant table.
pub fn seed_compared_finding(
    app: &TestApp,
    person: i64,
    linkage: i64,
    comparison: Vec<shikaku_domain::finding::FieldComparison>,
) -> i64 {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let mut conn = app.conn();
    let run = diesel::sql_query(
        "INSERT INTO audit_runs (run_date, status, finished_at, variant_table)
         VALUES (current_date, 'finished', now(),
                 '{\"sources\": [\"built-in\"], \"characters\": 300, \"sha256\": \"00ff\"}')
         RETURNING id",
    )
    .get_result::<Id>(&mut conn)
    .unwrap()
    .id;
    // With a comparison, the evidence a run would store with it: a 3-item lookup error.
    let evidence = (!comparison.is_empty()).then(|| {
        use shikaku_domain::evidence::{Channel, Evidence, Item, ItemWeight, Level};
        let item = |item, level, bits| ItemWeight { item, level, bits };
        let e = Evidence {
            p_other_person: 0.0,
            channel: Channel::ThreeItemLookup,
            prior_bits: -10.5,
            items: vec![
                item(Item::Name, Some(Level::NameHomophone), 15.3),
                item(Item::BirthDate, Some(Level::BirthSame), 0.0),
                item(Item::Sex, Some(Level::SexSame), 0.0),
                item(Item::Address, None, 0.0),
            ],
            frequency_bits: 0.4,
            other_channels_bits: 0.1,
        };
        let odds = e.total_bits().exp2();
        Evidence {
            p_other_person: odds / (1.0 + odds),
            ..e
        }
    });
    diesel::sql_query(
        "INSERT INTO findings (fingerprint, kind, severity, person_id, linkage_id, mn_last4, fields,
                               detail, first_seen_run, last_seen_run, first_seen, last_seen,
                               comparison, p_other_person, evidence)
         SELECT 'fp-' || $1 || '-' || $2, 'identity_mismatch', 'critical', $1, $2, mn_last4,
                'name_kanji;birth_date', 'registry and register differ', $3, $3, now(), now(), $4,
                $5, $6
           FROM linkages WHERE id = $2 RETURNING id",
    )
    .bind::<BigInt, _>(person)
    .bind::<BigInt, _>(linkage)
    .bind::<BigInt, _>(run)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Jsonb>, _>(
        (!comparison.is_empty()).then(|| serde_json::to_value(&comparison).unwrap()),
    )
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Double>, _>(
        evidence.as_ref().map(|e| e.p_other_person),
    )
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Jsonb>, _>(
        evidence.map(|e| serde_json::to_value(e).unwrap()),
    )
    .get_result::<Id>(&mut conn)
    .unwrap()
    .id
}

#[actix_web::test]
async fn list_show_confirm_dismiss() {
    let app = TestApp::new();
    let person = app.person(
        KUMIAI,
        "7",
        "1",
        "00",
        "1980-01-01",
        "シケン",
        &[("2000-01-01", None)],
    );
    let linkage = app.link(person, &my_number(70_000_000_001));
    let id = seed_finding(&app, person, linkage);

    let r = app
        .get(
            Some(Role::Auditor),
            "/v1/findings?status=open&severity=critical",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let list = r.json["findings"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["linkage_status"], "active");
    let r = app
        .get(Some(Role::Auditor), "/v1/findings?kind=number_shared")
        .await;
    assert_eq!(r.json["findings"].as_array().unwrap().len(), 0);
    let r = app.get(Some(Role::Auditor), "/v1/findings?limit=abc").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = app
        .get(Some(Role::Auditor), "/v1/findings?sort=probability")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["findings"].as_array().unwrap().len(), 1);
    let r = app.get(Some(Role::Auditor), "/v1/findings?sort=age").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // Dismissal needs a reason.
    let r = app
        .post(
            Some(Role::Auditor),
            &format!("/v1/findings/{id}/dismiss"),
            json!({ "reason": " " }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            Some(Role::Auditor),
            &format!("/v1/findings/{id}/dismiss"),
            json!({ "reason": "旧姓で登録、住基と同一人物を確認" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "dismissed");
    let r = app
        .post(
            Some(Role::Admin),
            &format!("/v1/findings/{id}/confirm"),
            json!({ "reason": "再確認で別人と判明" }),
        )
        .await;
    assert_eq!(r.json["status"], "confirmed");

    let r = app
        .get(Some(Role::Auditor), &format!("/v1/findings/{id}"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let actions: Vec<&str> = r.json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["dismissed", "confirmed"]);
    assert_eq!(r.json["events"][0]["actor"], "api:test-auditor");
    let r = app.get(Some(Role::Auditor), "/v1/findings/999999").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Both verdicts are in the access log with their reasons.
    let log = app.access_log();
    let dismiss = log.iter().find(|e| e.action == "finding_dismiss").unwrap();
    assert_eq!(
        dismiss.reason.as_deref(),
        Some("旧姓で登録、住基と同一人物を確認")
    );
}
