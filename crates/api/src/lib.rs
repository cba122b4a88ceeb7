//! The HTTP service of shikaku: eligibility answers for clinics (JSON and FHIR), registry reads
//! and linkage actions for staff, the audit's findings, the web console ([`console`]), and
//! operations routes. Every read of personal data and every write goes to the hash-chained
//! access log before the response leaves.
//!
//! HTTP concerns only: request and response types (with their OpenAPI schemas), roles, the
//! rate limit, the access-log writer, and handlers that validate input into domain types and
//! call the db crate's repositories. The rules live in the domain crate and the SQL in the db
//! crate. Depends on domain, db and print; it must not depend on the audit crate (the findings
//! it shows are the db crate's), and only the binary depends on it.

pub mod access;
pub mod auth;
pub mod benefits;
pub mod certificates;
pub mod console;
pub mod eligibility;
pub mod error;
pub mod fhir;
pub mod findings;
pub mod guard;
pub mod headers;
pub mod input;
pub mod linkages;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod persons;
pub mod replica;
pub mod review;
pub mod state;

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

pub use error::ApiError;
pub use state::{ApiConfig, AppState, CookieSecure};

/// Registers every route and the extractor settings that turn bad input into 4xx answers.
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    let limit = state.config.body_limit;
    cfg.app_data(state)
        .app_data(
            web::JsonConfig::default()
                .limit(limit)
                .error_handler(move |err, _req| error::json_error(err, limit).into()),
        )
        .app_data(web::PayloadConfig::default().limit(limit))
        .app_data(web::PathConfig::default().error_handler(|err, _req| {
            ApiError::NotFound(error::redact_numbers(&format!("no such resource: {err}"))).into()
        }))
        .app_data(web::QueryConfig::default().error_handler(|err, _req| {
            ApiError::Invalid(error::redact_numbers(&format!("invalid query: {err}"))).into()
        }))
        .service(eligibility::eligibility_batch)
        .service(eligibility::eligibility)
        .service(fhir::submit)
        .service(persons::search_persons)
        .service(persons::person_history)
        .service(persons::set_certificate_facts)
        .service(persons::get_person)
        .service(linkages::register_linkage)
        .service(linkages::get_linkage)
        .service(linkages::suspend_linkage)
        .service(linkages::confirm_identity)
        .service(linkages::correct_linkage)
        .service(linkages::reveal_number)
        .service(benefits::list_benefits)
        .service(benefits::add_benefit)
        .service(benefits::end_benefit)
        .service(benefits::correct_benefit)
        .service(certificates::issue_certificate)
        .service(certificates::get_certificate)
        .service(certificates::reissue_certificate)
        .service(certificates::revoke_certificate)
        .service(certificates::returned_certificate)
        .service(certificates::certificate_pdf)
        .service(findings::list_findings)
        // Before `/v1/findings/{id}`, whose pattern would take `report` and `bulk` as ids.
        .service(review::report)
        .service(review::today)
        .service(review::decide)
        .service(review::preview)
        .service(review::assign)
        .service(review::undo)
        .service(findings::show_finding)
        .service(findings::confirm_finding)
        .service(findings::dismiss_finding)
        .service(ops::healthz)
        .service(ops::metrics)
        .service(ops::openapi_json)
        .service(ops::docs)
        .configure(console::configure)
        .default_service(web::to(not_found));
}

/// The whole application as the server runs it: the security headers and the metrics around
/// every route. Tests build theirs with this too, so they see what clients see.
pub fn app(
    state: web::Data<AppState>,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .wrap(actix_web::middleware::from_fn(headers::security_headers))
        .wrap(actix_web::middleware::from_fn(metrics::track))
        .configure(move |cfg| configure(cfg, state))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::NotFound(error::redact_numbers(&format!(
        "no route {} {}",
        req.method(),
        req.path()
    )))
    .error_response()
}

/// Runs the service until SIGTERM or SIGINT, then stops accepting connections, lets requests
/// in flight finish (up to `shutdown_timeout` seconds), flushes the access log and takes a last
/// checkpoint of it. SIGHUP reloads the key file. While it runs, a checkpoint is taken every `checkpoint_every` (when a
/// checkpoint file is configured).
pub async fn serve(
    state: AppState,
    bind: &str,
    workers: usize,
    shutdown_timeout: u64,
) -> std::io::Result<()> {
    let checkpoints = checkpointer(&state);
    let state = web::Data::new(state);
    let app_state = state.clone();
    // `kill -HUP` after `shikaku keys rotate`: read the key file again without a restart.
    // A weak reference: the listener must not keep the state (and with it the access-log
    // writer, which shutdown waits for) alive.
    let reload_state = std::sync::Arc::downgrade(&state.clone().into_inner());
    actix_web::rt::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: keys reload only on demand");
            return;
        };
        while hangups.recv().await.is_some() {
            let Some(state) = reload_state.upgrade() else {
                return;
            };
            if let Err(e) = state.reload_keys() {
                tracing::error!(error = %e, "SIGHUP: the key file was not reloaded");
            }
        }
    });
    let server = actix_web::HttpServer::new(move || app(app_state.clone()))
        .workers(workers.max(1))
        .shutdown_timeout(shutdown_timeout)
        .bind(bind)?;
    for addr in server.addrs() {
        tracing::info!(%addr, workers, "listening");
    }
    server.run().await?;
    // The writer thread ends once the last handle to the log is gone and what was queued is
    // written; the last checkpoint must come after that.
    let writer = state.access_log.take_thread();
    drop(state);
    if let Some(w) = writer {
        let _ = w.join();
    }
    if let Some((stop, thread)) = checkpoints {
        drop(stop);
        let _ = thread.join();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Starts the checkpoint thread: a checkpoint every `checkpoint_every`, and one more when the
/// returned sender is dropped (at shutdown). `None` without a checkpoint file.
fn checkpointer(
    state: &AppState,
) -> Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)> {
    let path = state.config.checkpoint_file.clone()?;
    let every = state.config.checkpoint_every;
    let url = state.config.database_url.clone();
    let keyring = state
        .keyring()
        .map_err(|e| tracing::error!(error = %e, "no keyring for checkpoints"))
        .ok()?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let take = move || {
        let result = diesel::Connection::establish(&url)
            .map_err(|e| e.to_string())
            .and_then(|mut conn: diesel::PgConnection| {
                shikaku_db::access_log::checkpoint::take(&mut conn, &keyring, &path)
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(Some(c)) => tracing::info!(seq = c.seq, "access log checkpoint"),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot checkpoint the access log"),
        }
    };
    let thread = std::thread::Builder::new()
        .name("checkpoint".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every)
            {
                take();
            }
            take();
        })
        .ok()?;
    Some((stop, thread))
}
