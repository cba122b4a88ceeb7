//! Error answers: the pinned JSON body, 4xx for every kind of bad input (never a 500), 503
//! while the database is away and recovery without a restart; health and metrics.

use actix_web::test::TestRequest;
use diesel::connection::SimpleConnection;
use serde_json::json;
use shikaku_db::tokens::Role;

use crate::*;

fn eligibility(app: &TestApp, body: &str) -> TestRequest {
    TestRequest::post()
        .uri("/v1/eligibility")
        .insert_header(("content-type", "application/json"))
        .insert_header((
            "Authorization",
            format!("Bearer {}", app.token(Role::Provider)),
        ))
        .set_payload(body.to_string())
}

#[actix_web::test]
async fn bad_input_gets_4xx_with_the_pinned_body() {
    let app = TestApp::with(|c| c.body_limit = 4096);
    let cases = [
        ("{\"insurer_number\": ", StatusCode::BAD_REQUEST, "bad_request"),
        ("not json", StatusCode::BAD_REQUEST, "bad_request"),
        ("{\"insurer_number\": 6130199, \"number\": \"1\", \"birth_date\": \"1980-01-01\"}", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("{\"insurer_number\": \"06130199\", \"number\": \"1\", \"birth_date\": \"1980-13-01\"}", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("{\"insurer_number\": \"06130199\", \"number\": \"1\", \"birth_date\": \"1980-01-01\", \"extra\": 1}", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("{\"insurer_number\": \"06130198\", \"number\": \"1\", \"birth_date\": \"1980-01-01\"}", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("{\"insurer_number\": \"06130199\", \"number\": \"1 2\", \"birth_date\": \"1980-01-01\"}", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ("[]", StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
    ];
    for (body, status, code) in cases {
        let r = app.send(eligibility(&app, body)).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        // The body is exactly {error, message}.
        let obj = r.json.as_object().unwrap();
        assert_eq!(obj.len(), 2, "{}", r.text);
        assert_eq!(r.json["error"], code);
        assert!(!r.json["message"].as_str().unwrap().is_empty());
    }
    let big = format!("{{\"insurer_number\": \"{}\"}}", "1".repeat(10_000));
    let r = app.send(eligibility(&app, &big)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(r.json["error"], "payload_too_large");
    // A whole number sent in the wrong type is not echoed back.
    let r = app
        .send(eligibility(&app, "{\"insurer_number\": 123456789018}"))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!r.text.contains("123456789018"), "{}", r.text);
    // Wrong content type.
    let req = TestRequest::post()
        .uri("/v1/eligibility")
        .insert_header(("content-type", "text/plain"))
        .insert_header((
            "Authorization",
            format!("Bearer {}", app.token(Role::Provider)),
        ))
        .set_payload("{}");
    assert_eq!(app.send(req).await.status, StatusCode::BAD_REQUEST);
    // Unknown route and wrong method: JSON 404.
    let r = app.get(Some(Role::Admin), "/v1/nothing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["error"], "not_found");
    let r = app.get(Some(Role::Provider), "/v1/eligibility").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // 401 carries the scheme.
    let r = app.post(None, "/v1/eligibility", json!({})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json,
        json!({ "error": "unauthorized", "message": "a valid bearer token is required" })
    );
}

#[actix_web::test]
async fn database_away_answers_503_and_recovers() {
    let app = TestApp::new();
    app.person(
        KUMIAI,
        "40",
        "1",
        "00",
        "1970-01-01",
        "ダウン",
        &[("2000-01-01", None)],
    );
    let body = json!({ "insurer_number": KUMIAI, "symbol": "40", "number": "1", "birth_date": "1970-01-01" });
    assert_eq!(
        app.post(Some(Role::Provider), "/v1/eligibility", body.clone())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(app.get(None, "/healthz").await.status, StatusCode::OK);

    // Refuse new connections and kill the pool's: the database is "away".
    let name = app.db.url().rsplit('/').next().unwrap().to_string();
    let mut admin =
        diesel::PgConnection::establish(&std::env::var("DATABASE_URL").unwrap()).unwrap();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        ))
        .unwrap();
    for _ in 0..3 {
        let r = app
            .post(Some(Role::Provider), "/v1/eligibility", body.clone())
            .await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
        assert_eq!(r.json["error"], "unavailable");
        assert_eq!(
            app.get(None, "/healthz").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    // Back: the same service answers again without a restart.
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .unwrap();
    // Each broken pooled connection fails once and is dropped; then fresh ones are opened.
    let mut ok = false;
    for _ in 0..10 {
        let r = app
            .post(Some(Role::Provider), "/v1/eligibility", body.clone())
            .await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            r.text
        );
        if r.status == StatusCode::OK {
            ok = true;
            break;
        }
    }
    assert!(ok, "the service did not recover");
    assert_eq!(app.get(None, "/healthz").await.status, StatusCode::OK);
}

#[actix_web::test]
async fn metrics_count_routes_and_pools() {
    let app = TestApp::new();
    app.get(None, "/healthz").await;
    app.get(Some(Role::Clerk), "/v1/persons/1").await;
    let r = app.get(None, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text.contains(
            "shikaku_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ),
        "{}",
        r.text
    );
    // Route patterns, never concrete ids.
    assert!(
        r.text.contains("route=\"/v1/persons/{id}\",status=\"404\""),
        "{}",
        r.text
    );
    assert!(r.text.contains("shikaku_http_request_seconds_bucket"));
    assert!(r
        .text
        .contains("shikaku_db_pool_connections{pool=\"async\",state=\"max\"} 4"));
}

#[actix_web::test]
async fn free_text_and_staff_bodies_are_refused_with_422_never_500() {
    let app = TestApp::new();
    let person = app.person(
        KUMIAI,
        "31",
        "1",
        "00",
        "1970-01-01",
        "テキスト",
        &[("2000-01-01", None)],
    );
    let linkage = app.link(person, &my_number(31_000_000_001));
    let before = app.access_log().len();
    let cases = [
        // A number typed with an IME's full-width hyphens.
        (
            format!("/v1/linkages/{linkage}/suspend"),
            json!({ "reason": "番号1234－5678－9018は誤り" }),
            "My Number",
        ),
        (
            format!("/v1/linkages/{linkage}/suspend"),
            json!({ "reason": "a\u{0}b" }),
            "control characters",
        ),
        (
            format!("/v1/linkages/{linkage}/confirm-identity"),
            json!({ "reason": "ok\u{1b}[2J" }),
            "control characters",
        ),
        (
            format!("/v1/linkages/{linkage}/suspend"),
            json!({ "reason": "one\ntwo" }),
            "one line",
        ),
        (
            format!("/v1/linkages/{linkage}/correct"),
            json!({ "my_number": my_number(31_000_000_002), "reason": "typo", "source": "bogus" }),
            "source",
        ),
        (
            "/v1/certificates".to_string(),
            json!({ "person_id": person, "remarks": "番号 1234 5678 9018" }),
            "My Number",
        ),
        (
            "/v1/certificates".to_string(),
            json!({ "person_id": person, "remarks": "\u{0}" }),
            "control characters",
        ),
        (
            "/v1/persons/search".to_string(),
            json!({ "insurer_number": KUMIAI, "number": "123456789018" }),
            "My Number",
        ),
        (
            "/v1/persons/search".to_string(),
            json!({ "kana": "ア\u{0}" }),
            "control characters",
        ),
    ];
    for (path, body, says) in cases {
        let r = app.post(Some(Role::Admin), &path, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}: {}",
            r.text
        );
        assert!(r.text.contains(says), "{path} {body}: {}", r.text);
        assert!(
            !r.text.contains("9018"),
            "{path}: the number was echoed: {}",
            r.text
        );
    }
    // Nothing was changed or logged, and the linkage is still active.
    assert_eq!(app.access_log().len(), before);
    let r = app
        .get(Some(Role::Admin), &format!("/v1/linkages/{linkage}"))
        .await;
    assert_eq!(r.json["status"], "active", "{}", r.text);
}
