//! The OpenAPI document lists every route the service has, and only those; `/docs` shows them.

use std::collections::BTreeSet;

use crate::*;

/// Every route the service registers, as (method, OpenAPI path).
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/eligibility"),
    ("post", "/v1/eligibility/batch"),
    ("post", "/fhir/CoverageEligibilityRequest/$submit"),
    ("get", "/v1/persons/{id}"),
    ("post", "/v1/persons/search"),
    ("get", "/v1/persons/{id}/history"),
    ("post", "/v1/persons/{id}/linkages"),
    ("put", "/v1/persons/{id}/certificate-facts"),
    ("get", "/v1/persons/{id}/benefits"),
    ("post", "/v1/persons/{id}/benefits"),
    ("post", "/v1/benefits/{id}/end"),
    ("put", "/v1/benefits/{id}"),
    ("get", "/v1/linkages/{id}"),
    ("post", "/v1/linkages/{id}/suspend"),
    ("post", "/v1/linkages/{id}/confirm-identity"),
    ("post", "/v1/linkages/{id}/correct"),
    ("post", "/v1/linkages/{id}/reveal"),
    ("post", "/v1/certificates"),
    ("get", "/v1/certificates/{id}"),
    ("post", "/v1/certificates/{id}/reissue"),
    ("post", "/v1/certificates/{id}/revoke"),
    ("post", "/v1/certificates/{id}/returned"),
    ("get", "/v1/certificates/{id}/pdf"),
    ("get", "/v1/findings"),
    ("get", "/v1/findings/{id}"),
    ("post", "/v1/findings/{id}/confirm"),
    ("post", "/v1/findings/{id}/dismiss"),
    ("post", "/v1/findings/assign"),
    ("post", "/v1/findings/bulk/preview"),
    ("post", "/v1/findings/bulk"),
    ("get", "/v1/findings/bulk"),
    ("post", "/v1/findings/bulk/{id}/undo"),
    ("get", "/v1/findings/report"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
];

#[actix_web::test]
async fn the_document_lists_every_route() {
    let app = TestApp::new();
    let r = app.get(None, "/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let mut documented = BTreeSet::new();
    for (path, item) in r.json["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);
    // The matrix in roles.rs covers exactly the documented routes that need a token.
    for (method, path) in crate::roles::protected_paths() {
        assert!(
            expected.contains(&(method.to_lowercase(), path.clone())),
            "{method} {path}"
        );
    }
    // Each documented route exists: with a concrete id it is never the fallback 404.
    for (method, path) in ROUTES {
        let concrete = path.replace("{id}", "1");
        let req = match *method {
            "get" => actix_web::test::TestRequest::get(),
            "put" => actix_web::test::TestRequest::put(),
            _ => actix_web::test::TestRequest::post(),
        }
        .uri(&concrete);
        let r = app.send(req).await;
        assert!(
            !r.json["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("no route"),
            "{method} {path} is documented but not served"
        );
    }
    assert!(r.json["components"]["securitySchemes"]["bearer"].is_object());

    let r = app.get(None, "/docs").await;
    assert_eq!(r.status, StatusCode::OK);
    for (_, path) in ROUTES {
        assert!(r.text.contains(path), "/docs lacks {path}");
    }
}
