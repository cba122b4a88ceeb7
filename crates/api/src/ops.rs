//! Operations routes: health, Prometheus metrics, the OpenAPI document and a human-readable
//! API reference rendered from that same document (no external scripts: it must work on an
//! insurer's closed network).

use actix_web::{get, web, HttpResponse};
use diesel_async::RunQueryDsl;
use utoipa::OpenApi;

use crate::error::{ApiError, ErrorBody};
use crate::openapi::ApiDoc;
use crate::state::AppState;

/// Health answer.
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// "ok".
    pub status: String,
}

/// Is the service up and the database reachable?
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
    }))
}

/// Prometheus text exposition.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, content_type = "text/plain", description = "Prometheus metrics"))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
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
         <style>body{{font-family:sans-serif;margin:2rem;max-width:72rem}}table{{border-collapse:collapse;width:100%}}\
         td,th{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}}</style></head>\
         <body><h1>shikaku API {}</h1><p>Bearer tokens: <code>Authorization: Bearer shk_…</code>. \
         Errors are JSON <code>{{\"error\", \"message\"}}</code>. Personal keys go in request bodies, never URLs. \
         Machine-readable: <a href=\"/openapi.json\">/openapi.json</a>.</p>\
         <table><tr><th>Method</th><th>Path</th><th>What</th><th>Statuses</th></tr>{rows}</table></body></html>",
        esc(&doc.info.version)
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body)
}
