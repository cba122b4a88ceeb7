//! The OpenAPI document, generated from the handlers' annotations. A test checks that it lists
//! exactly the routes the service registers.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{benefits, certificates, eligibility, fhir, findings, linkages, ops, persons, review};

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "shikaku", description = "Eligibility registry and My Number linkage audit for Japanese public health insurance."),
    paths(
        eligibility::eligibility,
        eligibility::eligibility_batch,
        fhir::submit,
        persons::get_person,
        persons::search_persons,
        persons::person_history,
        persons::set_certificate_facts,
        benefits::list_benefits,
        benefits::add_benefit,
        benefits::end_benefit,
        benefits::correct_benefit,
        linkages::register_linkage,
        linkages::get_linkage,
        linkages::suspend_linkage,
        linkages::confirm_identity,
        linkages::correct_linkage,
        linkages::reveal_number,
        certificates::issue_certificate,
        certificates::get_certificate,
        certificates::reissue_certificate,
        certificates::revoke_certificate,
        certificates::returned_certificate,
        certificates::certificate_pdf,
        findings::list_findings,
        findings::show_finding,
        findings::confirm_finding,
        findings::dismiss_finding,
        review::assign,
        review::preview,
        review::decide,
        review::today,
        review::undo,
        review::report,
        ops::healthz,
        ops::metrics,
        ops::openapi_json,
        ops::docs,
    ),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
