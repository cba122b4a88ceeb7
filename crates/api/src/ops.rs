//! Operations routes: health, Prometheus metrics, the OpenAPI document and a human-readable
//! API reference rendered from that same document (no external scripts: it must work on an
//! insurer's closed network).

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse, ResponseError};
use diesel_async::RunQueryDsl;
use subtle::ConstantTimeEq;
use utoipa::OpenApi;

use crate::error::{ApiError, ErrorBody};
use crate::openapi::ApiDoc;
use crate::replica::ReadStatus;
use crate::state::AppState;

/// Health answer.
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// "ok".
    pub status: String,
    /// Where eligibility answers and staff searches read now, and why.
    pub reads: ReadStatus,
}

/// Is the service up and the primary reachable? Also says whether reads use the standby; a
/// standby that is down or behind does not make the service unhealthy, since reads then use
/// the primary.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody))
)]
#[get("/healthz")]
pub async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.conn().await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
        reads: state.read_status(),
    }))
}

/// Prometheus text exposition, for the scraper that holds the metrics token. Request counts
/// by route and status say who is being used how much, so they are not for anyone who can
/// reach the port.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, content_type = "text/plain", description = "Prometheus metrics"),
        (status = 401, description = "Without the metrics token"),
        (status = 404, description = "No metrics token is configured (SHIKAKU_METRICS_TOKEN)"),
    ),
    description = "Requires `Authorization: Bearer` with the metrics token (SHIKAKU_METRICS_TOKEN), not an API token."
)]
#[get("/metrics")]
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(expected) = state.config.metrics_token.as_deref() else {
        return ApiError::NotFound("metrics are not served (no SHIKAKU_METRICS_TOKEN)".into())
            .error_response();
    };
    let sent = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Constant time, so timing does not reveal a prefix.
    if !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
        return ApiError::Unauthorized.error_response();
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(&state))
}

/// The OpenAPI 3 document of every route.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, content_type = "application/json", description = "OpenAPI document"))
)]
#[get("/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The API reference page.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, content_type = "text/html", description = "API reference"))
)]
#[get("/docs")]
pub async fn docs() -> HttpResponse {
    let doc = ApiDoc::openapi();
    let mut rows = String::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let summary = op.summary.clone().unwrap_or_default();
            let description = op.description.clone().unwrap_or_default();
            let statuses: Vec<String> = op.responses.responses.keys().cloned().collect();
            rows.push_str(&format!(
                "<tr><td><code>{method}</code></td><td><code>{}</code></td><td>{}<br><small>{}</small></td><td>{}</td></tr>\n",
                esc(path),
                esc(&summary),
                esc(&description),
                esc(&statuses.join(" ")),
            ));
        }
    }
    let body = format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>shikaku API</title>\
         <link rel=\"stylesheet\" href=\"/console/style.css\"></head>\
         <body class=\"docs\"><h1>shikaku API {}</h1><p>Bearer tokens: <code>Authorization: Bearer shk_…</code>. \
         Errors are JSON <code>{{\"error\", \"message\"}}</code>. Personal keys go in request bodies, never URLs. \
         Machine-readable: <a href=\"/openapi.json\">/openapi.json</a>.</p>\
         <table><tr><th>Method</th><th>Path</th><th>What</th><th>Statuses</th></tr>{rows}</table></body></html>",
        esc(&doc.info.version)
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body)
}
