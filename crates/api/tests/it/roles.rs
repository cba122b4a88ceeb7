//! The role-by-route matrix: every protected route answers 401 without a valid token, 403 to
//! each role that may not use it, and neither to each role that may.

use serde_json::{json, Value};
use shikaku_db::tokens::Role;

use crate::findings::seed_finding;
use crate::*;

const ALL: [Role; 4] = [Role::Admin, Role::Clerk, Role::Auditor, Role::Provider];

struct Route {
    method: &'static str,
    path: String,
    body: Value,
    allowed: &'static [Role],
}

fn routes(person: i64, linkage: i64, finding: i64, certificate: i64) -> Vec<Route> {
    use Role::*;
    let eligibility = json!({ "insurer_number": KUMIAI, "symbol": "1", "number": "1", "branch": "00", "birth_date": "1980-01-01" });
    let fhir = crate::fhir::request(KUMIAI, "1", "1", "00", "1980-01-01", "2026-01-01");
    let r = |method, path: String, body, allowed| Route {
        method,
        path,
        body,
        allowed,
    };
    vec![
        r(
            "POST",
            "/v1/eligibility".into(),
            eligibility.clone(),
            &[Provider, Clerk, Admin],
        ),
        r(
            "POST",
            "/v1/eligibility/batch".into(),
            json!({ "queries": [eligibility] }),
            &[Provider, Clerk, Admin],
        ),
        r(
            "POST",
            "/fhir/CoverageEligibilityRequest/$submit".into(),
            fhir,
            &[Provider, Clerk, Admin],
        ),
        r(
            "GET",
            format!("/v1/persons/{person}"),
            Value::Null,
            &[Admin, Clerk, Auditor],
        ),
        r(
            "POST",
            "/v1/persons/search".into(),
            json!({ "kana": "しけん たろう" }),
            &[Admin, Clerk, Auditor],
        ),
        r(
            "GET",
            format!("/v1/persons/{person}/history"),
            Value::Null,
            &[Admin, Clerk, Auditor],
        ),
        r(
            "PUT",
            format!("/v1/persons/{person}/certificate-facts"),
            json!({ "residence_until": "2030-03-31" }),
            &[Admin, Clerk],
        ),
        r(
            "GET",
            format!("/v1/persons/{person}/benefits"),
            Value::Null,
            &[Admin, Clerk, Auditor],
        ),
        r(
            "POST",
            format!("/v1/persons/{person}/benefits"),
            json!({ "record": { "kind": "limit", "value": "A03", "valid_from": "2026-01-01" }, "reason": "matrix" }),
            &[Admin, Clerk],
        ),
        r(
            "POST",
            "/v1/benefits/1/end".into(),
            json!({ "valid_until": "2026-06-30", "reason": "matrix" }),
            &[Admin, Clerk],
        ),
        r(
            "PUT",
            "/v1/benefits/1".into(),
            json!({ "record": { "kind": "limit", "value": "A04", "valid_from": "2026-01-01" }, "reason": "matrix" }),
            &[Admin, Clerk],
        ),
        r(
            "POST",
            format!("/v1/persons/{person}/linkages"),
            json!({ "my_number": my_number(55_555_555_555), "source": "applicant", "force_reason": "matrix" }),
            &[Admin, Clerk],
        ),
        r(
            "GET",
            format!("/v1/linkages/{linkage}"),
            Value::Null,
            &[Admin, Clerk, Auditor],
        ),
        r(
            "POST",
            format!("/v1/linkages/{linkage}/suspend"),
            json!({ "reason": "matrix" }),
            &[Admin, Clerk, Auditor],
        ),
        r(
            "POST",
            format!("/v1/linkages/{linkage}/confirm-identity"),
            json!({ "reason": "matrix" }),
            &[Admin, Clerk, Auditor],
        ),
        r(
            "POST",
            format!("/v1/linkages/{linkage}/correct"),
            json!({ "my_number": my_number(66_666_666_666), "reason": "matrix" }),
            &[Admin, Clerk, Auditor],
        ),
        r(
            "POST",
            format!("/v1/linkages/{linkage}/reveal"),
            json!({ "reason": "matrix" }),
            &[Admin],
        ),
        r(
            "POST",
            "/v1/certificates".into(),
            json!({ "person_id": person, "on": "2026-12-01" }),
            &[Admin, Clerk],
        ),
        r(
            "GET",
            format!("/v1/certificates/{certificate}"),
            Value::Null,
            &[Admin, Clerk],
        ),
        r(
            "POST",
            format!("/v1/certificates/{certificate}/reissue"),
            json!({ "reason": "matrix" }),
            &[Admin, Clerk],
        ),
        r(
            "POST",
            format!("/v1/certificates/{certificate}/revoke"),
            json!({ "reason": "matrix" }),
            &[Admin, Clerk],
        ),
        r(
            "POST",
            format!("/v1/certificates/{certificate}/returned"),
            json!({ "reason": "matrix" }),
            &[Admin, Clerk],
        ),
        r("GET", "/v1/findings".into(), Value::Null, &[Admin, Auditor]),
        r(
            "GET",
            format!("/v1/findings/{finding}"),
            Value::Null,
            &[Admin, Auditor],
        ),
        r(
            "POST",
            format!("/v1/findings/{finding}/confirm"),
            json!({ "reason": "matrix" }),
            &[Admin, Auditor],
        ),
        r(
            "POST",
            format!("/v1/findings/{finding}/dismiss"),
            json!({ "reason": "matrix" }),
            &[Admin, Auditor],
        ),
        r(
            "POST",
            "/v1/findings/assign".into(),
            json!({ "selection": { "ids": [finding] }, "reviewers": ["test-auditor"] }),
            &[Admin, Auditor],
        ),
        r(
            "POST",
            "/v1/findings/bulk/preview".into(),
            json!({ "status": "open" }),
            &[Admin, Auditor],
        ),
        r(
            "POST",
            "/v1/findings/bulk".into(),
            json!({ "selection": { "ids": [finding] }, "action": "dismiss",
                    "reason": "matrix", "expected": 1 }),
            &[Admin, Auditor],
        ),
        r(
            "GET",
            "/v1/findings/bulk".into(),
            Value::Null,
            &[Admin, Auditor],
        ),
        r(
            "POST",
            "/v1/findings/bulk/1/undo".into(),
            json!({}),
            &[Admin, Auditor],
        ),
        r(
            "GET",
            "/v1/findings/report?from=2026-12-01&to=2026-12-02".into(),
            Value::Null,
            &[Admin, Auditor],
        ),
    ]
}

/// The protected routes of the matrix, for the OpenAPI test.
pub fn protected_paths() -> Vec<(&'static str, String)> {
    routes(1, 1, 1, 1)
        .into_iter()
        .map(|r| {
            (
                r.method,
                r.path
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .replace("/1/", "/{id}/")
                    .replace("/1", "/{id}"),
            )
        })
        .collect()
}

async fn call(app: &TestApp, route: &Route, auth: Option<&str>) -> Reply {
    let mut req = match route.method {
        "GET" => actix_web::test::TestRequest::get(),
        "PUT" => actix_web::test::TestRequest::put().set_json(&route.body),
        _ => actix_web::test::TestRequest::post().set_json(&route.body),
    }
    .uri(&route.path);
    if route.path.starts_with("/fhir") {
        req = req.insert_header(("content-type", "application/fhir+json"));
    }
    if let Some(token) = auth {
        req = req.insert_header(("Authorization", format!("Bearer {token}")));
    }
    app.send(req).await
}

#[actix_web::test]
async fn every_route_by_every_role() {
    // Dozens of deliberately bad tokens: the failure throttle (tested in console.rs) would
    // otherwise answer 429 before 401.
    let app = TestApp::with(|c| c.auth_failures_per_minute = 10_000);
    let person = app.person(
        KUMIAI,
        "1",
        "1",
        "00",
        "1980-01-01",
        "シケン タロウ",
        &[("2000-01-01", None)],
    );
    let linkage = app.link(person, &my_number(44_444_444_444));
    let finding = seed_finding(&app, person, linkage);
    let mut conn = app.conn();
    let certificate = shikaku_db::certificates::issue(
        &mut conn,
        person,
        shikaku_domain::CertificateKind::Application,
        d("2026-11-01"),
        &Default::default(),
        "test",
    )
    .unwrap()
    .id;
    for route in routes(person, linkage, finding, certificate) {
        for bad in [None, Some("shk_not-a-token"), Some("")] {
            let r = call(&app, &route, bad).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{} {} with {bad:?}: {}",
                route.method,
                route.path,
                r.text
            );
        }
        for role in ALL {
            let r = call(&app, &route, Some(app.token(role))).await;
            if route.allowed.contains(&role) {
                assert!(
                    r.status != StatusCode::UNAUTHORIZED
                        && r.status != StatusCode::FORBIDDEN
                        && r.status.as_u16() < 500,
                    "{} {} as {role}: {} {}",
                    route.method,
                    route.path,
                    r.status,
                    r.text
                );
            } else {
                assert_eq!(
                    r.status,
                    StatusCode::FORBIDDEN,
                    "{} {} as {role}: {}",
                    route.method,
                    route.path,
                    r.text
                );
            }
        }
    }
}

/// The roles an operation's description in the OpenAPI document names ("Roles: a, b." or
/// "Role: a."): what clients read, and what scripts/fuzz-api fuzzes each role with.
fn documented_roles(method: &str, template: &str) -> Vec<String> {
    use utoipa::OpenApi;
    let doc = shikaku_api::openapi::ApiDoc::openapi();
    let item = doc
        .paths
        .paths
        .get(template)
        .unwrap_or_else(|| panic!("{template} is not in the OpenAPI document"));
    let op = match method {
        "GET" => item.get.as_ref(),
        "PUT" => item.put.as_ref(),
        _ => item.post.as_ref(),
    }
    .unwrap_or_else(|| panic!("{method} {template} is not in the OpenAPI document"));
    let description = op.description.clone().unwrap_or_default();
    let list = description
        .split_once("Roles: ")
        .or_else(|| description.split_once("Role: "))
        .map(|(_, rest)| rest.split('.').next().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("{method} {template}: no \"Roles:\" in {description:?}"));
    let mut roles: Vec<String> = list.split(',').map(|r| r.trim().to_string()).collect();
    roles.sort();
    roles
}

#[::core::prelude::v1::test]
fn the_document_names_exactly_the_roles_each_route_allows() {
    for route in routes(1, 1, 1, 1) {
        let template: String = route
            .path
            .split('?')
            .next()
            .unwrap_or_default()
            .split('/')
            .map(|seg| {
                if seg.parse::<i64>().is_ok() {
                    "{id}"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let mut allowed: Vec<String> = route.allowed.iter().map(ToString::to_string).collect();
        allowed.sort();
        assert_eq!(
            documented_roles(route.method, &template),
            allowed,
            "{} {template}",
            route.method
        );
    }
}

#[actix_web::test]
async fn expired_and_revoked_tokens_are_refused() {
    let app = TestApp::new();
    let mut conn = app.conn();
    let (_, expired) =
        shikaku_db::tokens::create(&mut conn, Role::Provider, "old", Some(d("2020-01-01")), "t")
            .unwrap();
    let (info, revoked) =
        shikaku_db::tokens::create(&mut conn, Role::Provider, "gone", None, "t").unwrap();
    shikaku_db::tokens::revoke(&mut conn, info.id).unwrap();
    for token in [expired, revoked] {
        let req = actix_web::test::TestRequest::get()
            .uri("/v1/findings")
            .insert_header(("Authorization", format!("Bearer {token}")));
        let r = app.send(req).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.json["error"], "unauthorized");
    }
}
