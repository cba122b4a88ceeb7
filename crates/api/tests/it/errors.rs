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
    let app = TestApp::with(|c| c.metrics_token = Some("metrics-secret-1".into()));
    app.get(None, "/healthz").await;
    app.get(Some(Role::Clerk), "/v1/persons/1").await;
    let metrics = |token: Option<&str>| {
        let mut req = TestRequest::get().uri("/metrics");
        if let Some(t) = token {
            req = req.insert_header(("Authorization", format!("Bearer {t}")));
        }
        req
    };
    // Not for anyone who can reach the port, nor for an API token.
    assert_eq!(
        app.send(metrics(None)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let admin = app.token(Role::Admin).to_string();
    assert_eq!(
        app.send(metrics(Some(&admin))).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = app.send(metrics(Some("metrics-secret-1"))).await;
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
    // Without a configured token there are no metrics at all.
    let closed = TestApp::new();
    assert_eq!(
        closed.get(None, "/metrics").await.status,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::new();
    let person = app.person(
        KUMIAI,
        "32",
        "1",
        "00",
        "1970-01-01",
        "ヘッダ",
        &[("2000-01-01", None)],
    );
    let admin = app.token(Role::Admin).to_string();
    let check = |headers: &actix_web::http::header::HeaderMap, what: &str, store: bool| {
        let h = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let csp = h("content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(h("referrer-policy"), "no-referrer", "{what}");
        assert_eq!(h("x-frame-options"), "DENY", "{what}");
        if store {
            assert_eq!(h("cache-control"), "no-store", "{what}");
        }
        // Plain HTTP with no trusted proxy: no HSTS.
        assert_eq!(h("strict-transport-security"), "", "{what}");
    };
    let service = actix_web::test::init_service(shikaku_api::app(app.state.clone())).await;
    // A JSON answer with personal data.
    let req = TestRequest::get()
        .uri(&format!("/v1/persons/{person}"))
        .insert_header(("Authorization", format!("Bearer {admin}")))
        .to_request();
    let res = actix_web::test::call_service(&service, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    check(res.headers(), "JSON", true);
    // A console page, signed in.
    let req = TestRequest::post()
        .uri("/console/login")
        .set_form([("token", admin.as_str())])
        .to_request();
    let res = actix_web::test::call_service(&service, req).await;
    let cookie = res.response().cookies().next().unwrap().into_owned();
    assert!(!cookie.secure().unwrap_or(false));
    let req = TestRequest::get()
        .uri(&format!("/console/persons/{person}"))
        .cookie(cookie)
        .to_request();
    let res = actix_web::test::call_service(&service, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    check(res.headers(), "console page", true);
    // The stylesheet is the only thing that may be cached.
    let res = actix_web::test::call_service(
        &service,
        TestRequest::get().uri("/console/style.css").to_request(),
    )
    .await;
    check(res.headers(), "stylesheet", false);
    assert!(res
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("public")));
    // Errors too.
    let res =
        actix_web::test::call_service(&service, TestRequest::get().uri("/v1/nothing").to_request())
            .await;
    check(res.headers(), "404", true);
}

#[actix_web::test]
async fn secure_cookies_and_hsts_follow_configuration_not_client_headers() {
    let proxy: std::net::SocketAddr = "10.0.0.5:443".parse().unwrap();
    let login = |token: &str, peer: std::net::SocketAddr, proto: Option<&str>| {
        let mut req = TestRequest::post()
            .uri("/console/login")
            .peer_addr(peer)
            .set_form([("token", token)]);
        if let Some(p) = proto {
            req = req.insert_header(("x-forwarded-proto", p));
        }
        req.to_request()
    };
    let outsider: std::net::SocketAddr = "192.0.2.10:5000".parse().unwrap();
    // auto, behind a trusted proxy: the proxy's word counts, a client's does not.
    let app = TestApp::with(|c| c.trusted_proxies = vec![proxy.ip()]);
    let token = app.token(Role::Clerk).to_string();
    let service = actix_web::test::init_service(shikaku_api::app(app.state.clone())).await;
    for (peer, proto, secure) in [
        (outsider, Some("https"), false),
        (proxy, Some("https"), true),
        (proxy, Some("http"), false),
        (proxy, None, false),
    ] {
        let res = actix_web::test::call_service(&service, login(&token, peer, proto)).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let cookie = res.response().cookies().next().unwrap().into_owned();
        assert_eq!(cookie.secure().unwrap_or(false), secure, "{peer} {proto:?}");
        assert_eq!(
            res.headers().contains_key("strict-transport-security"),
            secure,
            "{peer} {proto:?}"
        );
    }
    // always: Secure whatever the request says.
    let app = TestApp::with(|c| c.cookie_secure = shikaku_api::CookieSecure::Always);
    let token = app.token(Role::Clerk).to_string();
    let service = actix_web::test::init_service(shikaku_api::app(app.state.clone())).await;
    let res = actix_web::test::call_service(&service, login(&token, outsider, None)).await;
    let cookie = res.response().cookies().next().unwrap().into_owned();
    assert_eq!(cookie.secure(), Some(true));
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
