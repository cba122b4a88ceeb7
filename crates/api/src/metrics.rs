//! Prometheus instruments: requests by route pattern and status, latency histograms, pool
//! usage and access-log throughput, served as text at `/metrics`. Route labels are the
//! patterns (`/v1/persons/{id}`), never concrete paths, so no identifier becomes a label.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::state::AppState;

/// The registry and its instruments; clones share them.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool: IntGaugeVec,
    /// Access-log transactions committed.
    pub access_log_batches: IntCounter,
    /// Access-log entries committed.
    pub access_log_entries: IntCounter,
    /// Security events by kind (auth_throttled, sign_in_failed, guessing_refused).
    pub security_events: IntCounterVec,
    /// Reads that went to the primary although a standby is configured, by the standby's state.
    read_fallbacks: IntCounterVec,
    /// 1 while reads use the standby.
    read_standby: IntGauge,
    /// The standby's staleness in seconds (-1 when unknown or none).
    read_lag: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh instruments in a fresh registry (one per service, so tests do not share counts).
    #[allow(clippy::expect_used)]
    pub fn new() -> Metrics {
        let registry = Registry::new();
        // These constructors fail only on malformed names, which are constants here.
        let requests = IntCounterVec::new(
            Opts::new(
                "shikaku_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("shikaku_http_request_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["method", "route"],
        )
        .expect("valid metric");
        let pool = IntGaugeVec::new(
            Opts::new(
                "shikaku_db_pool_connections",
                "Database pool connections by state",
            ),
            &["pool", "state"],
        )
        .expect("valid metric");
        let access_log_batches = IntCounter::new(
            "shikaku_access_log_commits_total",
            "Access-log transactions committed",
        )
        .expect("valid metric");
        let access_log_entries = IntCounter::new(
            "shikaku_access_log_entries_total",
            "Access-log entries committed",
        )
        .expect("valid metric");
        let security_events = IntCounterVec::new(
            Opts::new(
                "shikaku_security_events_total",
                "Refused or suspicious requests by kind",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let read_fallbacks = IntCounterVec::new(
            Opts::new(
                "shikaku_read_fallbacks_total",
                "Reads sent to the primary although a standby is configured, by the standby's state",
            ),
            &["standby"],
        )
        .expect("valid metric");
        let read_standby = IntGauge::new(
            "shikaku_read_path_standby",
            "1 while eligibility answers and staff searches read the standby, 0 on the primary",
        )
        .expect("valid metric");
        let read_lag = Gauge::new(
            "shikaku_read_standby_lag_seconds",
            "How stale the standby is (-1 when unknown or not configured)",
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(read_fallbacks.clone()),
            Box::new(read_standby.clone()),
            Box::new(read_lag.clone()),
            Box::new(security_events.clone()),
            Box::new(latency.clone()),
            Box::new(pool.clone()),
            Box::new(access_log_batches.clone()),
            Box::new(access_log_entries.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        Metrics {
            registry,
            requests,
            latency,
            pool,
            access_log_batches,
            access_log_entries,
            security_events,
            read_fallbacks,
            read_standby,
            read_lag,
        }
    }

    /// Counts a read sent to the primary while the standby is in `state`.
    pub fn read_fallback(&self, state: crate::replica::StandbyState) {
        self.read_fallbacks
            .with_label_values(&[<&str>::from(state)])
            .inc();
    }

    /// Counts one security event of `kind`.
    pub fn security_event(&self, kind: &str) {
        self.security_events.with_label_values(&[kind]).inc();
    }

    /// The text exposition, with the pool gauges read now.
    pub fn render(&self, state: &AppState) -> String {
        let status = state.pool.status();
        let set = |pool: &str, s: &str, v: usize| {
            self.pool
                .with_label_values(&[pool, s])
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        set("async", "size", status.size);
        set("async", "available", status.available);
        set("async", "max", status.max_size);
        set("async", "waiting", status.waiting);
        let staff = state.staff_pool.state();
        set("staff", "size", staff.connections as usize);
        set("staff", "available", staff.idle_connections as usize);
        set("staff", "max", state.staff_pool.max_size() as usize);
        let reads = state.read_status();
        self.read_standby
            .set(i64::from(reads.path == crate::replica::ReadPath::Standby));
        self.read_lag.set(reads.lag_seconds.unwrap_or(-1.0));
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Middleware counting and timing every request.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let res = next.call(req).await?;
    if let Some(m) = metrics {
        let status = res.status().as_u16().to_string();
        m.requests
            .with_label_values(&[&method, &route, &status])
            .inc();
        m.latency
            .with_label_values(&[&method, &route])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(res)
}
