//! Staff reads: a person, searches by key and by kana in any width, history; each logged.

use serde_json::json;
use shikaku_db::tokens::Role;

use crate::*;

#[actix_web::test]
async fn person_search_and_history() {
    let app = TestApp::new();
    let id = app.person(
        KUMIAI,
        "10",
        "3",
        "00",
        "1985-03-03",
        "ヤマダ　タロウ",
        &[("2010-04-01", Some("2020-04-01")), ("2021-04-01", None)],
    );
    app.person(
        KUMIAI,
        "10",
        "3",
        "01",
        "1987-07-07",
        "ヤマダ　ハナコ",
        &[("2010-04-01", None)],
    );

    let r = app
        .get(Some(Role::Clerk), &format!("/v1/persons/{id}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["person"]["name_kana"], "ヤマダ　タロウ");
    assert_eq!(r.json["periods"].as_array().unwrap().len(), 2);
    assert_eq!(r.json["copay_percent_today"], 30);
    assert_eq!(
        app.get(Some(Role::Clerk), "/v1/persons/999999")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(Some(Role::Clerk), "/v1/persons/abc").await.status,
        StatusCode::NOT_FOUND
    );

    // By key: the whole household without 枝番, one with it.
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/persons/search",
            json!({ "insurer_number": KUMIAI, "symbol": "10", "number": "3" }),
        )
        .await;
    assert_eq!(r.json["persons"].as_array().unwrap().len(), 2, "{}", r.text);
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/persons/search",
            json!({ "insurer_number": KUMIAI, "symbol": "10", "number": "3", "branch": "01" }),
        )
        .await;
    assert_eq!(r.json["persons"].as_array().unwrap().len(), 1);
    // By kana: hiragana, half-width, no space, all find the same person.
    for kana in ["やまだ たろう", "ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダタロウ"] {
        let r = app
            .post(
                Some(Role::Auditor),
                "/v1/persons/search",
                json!({ "kana": kana, "birth_date": "1985-03-03" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{kana}: {}", r.text);
        let found = r.json["persons"].as_array().unwrap();
        assert_eq!(found.len(), 1, "{kana}");
        assert_eq!(found[0]["id"], id);
    }
    // Neither or both forms: 422.
    let r = app
        .post(Some(Role::Clerk), "/v1/persons/search", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/persons/search",
            json!({ "kana": "ABC" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    let r = app
        .get(Some(Role::Clerk), &format!("/v1/persons/{id}/history"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json["changes"].is_array());

    let log = app.access_log();
    let reads: Vec<_> = log
        .iter()
        .filter(|e| e.subject.as_deref() == Some(&format!("person:{id}")))
        .map(|e| e.action.as_str())
        .collect();
    assert!(
        reads.contains(&"person_read")
            && reads.contains(&"person_search")
            && reads.contains(&"person_history"),
        "{reads:?}"
    );
    assert!(log.iter().all(|e| e.actor.starts_with("test-")));
}
