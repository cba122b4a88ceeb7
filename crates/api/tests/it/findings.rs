//! The findings queue over HTTP: filters, keyset pages with totals, one finding with its
//! history, confirm and dismiss, assignment, bulk decisions with preview and undo, the report.

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
        "INSERT INTO findings (fingerprint, kind, severity, person_id, insurer_number, linkage_id,
                               mn_last4, fields, detail, first_seen_run, last_seen_run,
                               first_seen, last_seen, comparison, p_other_person, evidence)
         SELECT 'fp-' || $1 || '-' || $2, 'identity_mismatch', 'critical', $1, p.insurer_number,
                $2, l.mn_last4, 'name_kanji;birth_date', 'registry and register differ', $3, $3,
                now(), now(), $4, $5, $6
           FROM linkages l JOIN persons p ON p.id = l.person_id WHERE l.id = $2 RETURNING id",
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

/// `n` findings of `severity` (persons numbered from `from`) on persons of one insurer, for the queue's endpoints.
pub fn seed_many(app: &TestApp, from: u64, n: u64, severity: &str) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in from..from + n {
        let person = app.person(
            KUMIAI,
            "9",
            &format!("{}", 100 + i),
            "00",
            "1975-05-05",
            "シケン",
            &[("2000-01-01", None)],
        );
        let linkage = app.link(person, &my_number(71_000_000_000 + i));
        let id = seed_finding(app, person, linkage);
        diesel::sql_query("UPDATE findings SET severity = $2 WHERE id = $1")
            .bind::<BigInt, _>(id)
            .bind::<diesel::sql_types::Text, _>(severity)
            .execute(&mut app.conn())
            .unwrap();
        ids.push(id);
    }
    ids
}

#[actix_web::test]
async fn pages_assignment_bulk_decisions_undo_and_the_report() {
    let app = TestApp::new();
    let ids = seed_many(&app, 0, 5, "medium");
    let critical = seed_many(&app, 5, 1, "critical")[0];

    // Two findings a page, in order, with the exact total and a cursor to the next page.
    let mut seen = Vec::new();
    let mut path = "/v1/findings?status=open&sort=first_seen&limit=2".to_string();
    loop {
        let r = app.get(Some(Role::Auditor), &path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["total"], 6);
        seen.extend(
            r.json["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["id"].as_i64().unwrap()),
        );
        match r.json["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/findings?status=open&sort=first_seen&limit=2&after={c}"),
            None => break,
        }
    }
    let mut all = ids.clone();
    all.push(critical);
    assert_eq!(seen, all);
    for bad in [
        "after=nonsense",
        "after=kind:identity_mismatch:1",
        "insurer=12ab",
        "assignee=%1B",
    ] {
        let r = app
            .get(Some(Role::Auditor), &format!("/v1/findings?{bad}"))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.text
        );
    }

    // Assign the medium ones, 2 each, to the auditor and the admin; "my queue" is the filter.
    let r = app
        .post(
            Some(Role::Admin),
            "/v1/findings/assign",
            json!({ "selection": { "status": "open", "severity": "medium" },
                    "reviewers": ["test-auditor", "test-admin"], "each": 2, "order": "first_seen" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["findings"], 4);
    let r = app
        .get(Some(Role::Auditor), "/v1/findings?assignee=test-auditor")
        .await;
    let mine: Vec<i64> = r.json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect();
    assert_eq!(mine, ids[..2]);
    assert_eq!(r.json["total"], 2);
    let r = app
        .get(Some(Role::Auditor), "/v1/findings?assignee=-&status=open")
        .await;
    assert_eq!(r.json["total"], 2, "{}", r.text);
    let r = app
        .post(
            Some(Role::Admin),
            "/v1/findings/assign",
            json!({ "selection": { "ids": [ids[0]] }, "reviewers": ["someone-else"] }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    // A bulk dismissal over the open queue is refused: it holds a critical finding.
    let r = app
        .post(
            Some(Role::Auditor),
            "/v1/findings/bulk/preview",
            json!({ "status": "open" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.json["decidable"].as_i64(), r.json["critical"].as_i64()),
        (Some(6), Some(1))
    );
    assert!(r.json["refused"].as_str().unwrap().contains("critical"));
    let r = app
        .post(
            Some(Role::Auditor),
            "/v1/findings/bulk",
            json!({ "selection": { "status": "open" }, "action": "dismiss",
                    "reason": "確認済み", "expected": 6 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    // The medium ones: previewed, decided, undone.
    let selection = json!({ "status": "open", "severity": "medium" });
    let r = app
        .post(
            Some(Role::Auditor),
            "/v1/findings/bulk/preview",
            selection.clone(),
        )
        .await;
    assert_eq!(r.json["decidable"], 5);
    assert_eq!(
        r.json["by_kind"],
        json!([{ "kind": "identity_mismatch", "findings": 5 }])
    );
    let r = app
        .post(
            Some(Role::Auditor),
            "/v1/findings/bulk",
            json!({ "selection": selection, "action": "dismiss", "reason": "事業所に確認済み",
                    "until": "2999-12-31", "expected": 5 }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let bulk_id = r.json["bulk_id"].as_i64().unwrap();
    assert_eq!(r.json["findings"], 5);
    let r = app
        .get(Some(Role::Auditor), &format!("/v1/findings/{}", ids[3]))
        .await;
    assert_eq!(r.json["finding"]["status"], "dismissed");
    assert_eq!(r.json["finding"]["dismissed_until"], "2999-12-31");
    assert_eq!(
        r.json["events"].as_array().unwrap().last().unwrap()["bulk_id"],
        bulk_id
    );
    let r = app.get(Some(Role::Auditor), "/v1/findings/bulk").await;
    assert_eq!(r.json[0]["id"], bulk_id, "{}", r.text);
    let r = app
        .post(
            Some(Role::Auditor),
            &format!("/v1/findings/bulk/{bulk_id}/undo"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.json["restored"].as_i64(), r.json["kept"].as_i64()),
        (Some(5), Some(0))
    );
    let r = app
        .post(
            Some(Role::Auditor),
            &format!("/v1/findings/bulk/{bulk_id}/undo"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = app
        .get(Some(Role::Auditor), "/v1/findings?status=open")
        .await;
    assert_eq!(r.json["total"], 6);
    // A clerk may not.
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/findings/bulk/preview",
            selection.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // The report: today's decisions stand at none (the only bulk action was undone).
    let today = shikaku_db::today_tokyo();
    let r = app
        .get(
            Some(Role::Auditor),
            &format!("/v1/findings/report?from={today}&to={today}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["inspection"]["found"], 6);
    assert_eq!(r.json["inspection"]["still_open"], 6);
    assert_eq!(r.json["reviewers"], json!([]));
    let r = app
        .get(
            Some(Role::Auditor),
            "/v1/findings/report?from=2026-12-02&to=2026-01-01",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // Every one of these is in the access log.
    let actions: Vec<String> = app.access_log().into_iter().map(|e| e.action).collect();
    for a in [
        "findings_assign",
        "findings_bulk_preview",
        "findings_bulk_dismiss",
        "findings_bulk_undo",
        "findings_report",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not logged");
    }
}
