//! `shikaku serve`: the eligibility API. Settings come from flags or their environment
//! variables, read once here and passed to the service.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use shikaku_api::{ApiConfig, AppState};

use crate::config::{load_keyring, Database, KEYS_VAR, KEY_FILE_VAR};

/// Settings of `shikaku serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SHIKAKU_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// Worker threads (default: one per core).
    #[arg(long, env = "SHIKAKU_WORKERS")]
    workers: Option<usize>,
    /// Connections in the async pool (eligibility and token lookups).
    #[arg(long, env = "SHIKAKU_POOL_SIZE", default_value_t = 8)]
    pool_size: usize,
    /// Connections in the blocking pool (staff reads and writes).
    #[arg(long, env = "SHIKAKU_STAFF_POOL_SIZE", default_value_t = 4)]
    staff_pool_size: u32,
    /// Eligibility answers per second allowed per token.
    #[arg(long, env = "SHIKAKU_RATE_PER_SECOND", default_value_t = 50)]
    rate_per_second: u32,
    /// Answers a token may take at once (a batch of N takes N).
    #[arg(long, env = "SHIKAKU_RATE_BURST", default_value_t = 1000)]
    rate_burst: u32,
    /// Seconds a token stays cached (how long a revoked token may still work).
    #[arg(long, env = "SHIKAKU_TOKEN_CACHE_SECONDS", default_value_t = 30)]
    token_cache_seconds: u64,
    /// Seconds requests in flight get to finish after SIGTERM.
    #[arg(long, env = "SHIKAKU_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    shutdown_timeout: u64,
    /// The access log's checkpoint file, outside the database (required: without it nothing
    /// anchors the log's head).
    #[arg(long, env = "SHIKAKU_CHECKPOINT_FILE")]
    checkpoint_file: PathBuf,
    /// Seconds between checkpoints of the access log.
    #[arg(long, env = "SHIKAKU_CHECKPOINT_SECONDS", default_value_t = 300)]
    checkpoint_seconds: u64,
    /// Development only: run even when DATABASE_URL is a superuser or owns the tables (such a
    /// role could disable the access log's triggers and cut it).
    #[arg(
        long,
        env = "SHIKAKU_ALLOW_PRIVILEGED_ROLE",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    allow_privileged_role: bool,
    /// Minutes without a request after which a console session ends.
    #[arg(long, env = "SHIKAKU_SESSION_IDLE_MINUTES", default_value_t = 30)]
    session_idle_minutes: i32,
    /// Hours after sign-in after which a console session ends, however busy.
    #[arg(long, env = "SHIKAKU_SESSION_HOURS", default_value_t = 12)]
    session_hours: i32,
    /// When the session cookie is marked Secure (and HSTS sent): `always` (TLS in front), or
    /// `auto`: when a trusted proxy says the request came over HTTPS.
    #[arg(long, env = "SHIKAKU_COOKIE_SECURE", default_value = "auto")]
    cookie_secure: shikaku_api::CookieSecure,
    /// Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (comma-separated
    /// addresses); nobody else's are.
    #[arg(long, env = "SHIKAKU_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Failed authentications a minute per client address and per token prefix before they
    /// are refused with 429.
    #[arg(long, env = "SHIKAKU_AUTH_FAILURES_PER_MINUTE", default_value_t = 20)]
    auth_failures_per_minute: u32,
    /// "No match" eligibility answers a day per token and card before the card is refused
    /// with 429 (birth-date guessing).
    #[arg(long, env = "SHIKAKU_NO_MATCH_PER_DAY", default_value_t = 10)]
    no_match_per_day: u32,
    /// Bearer token that /metrics requires; without one /metrics is not served.
    #[arg(long, env = "SHIKAKU_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Largest console upload in MiB (the whole multipart body).
    #[arg(long, env = "SHIKAKU_UPLOAD_LIMIT_MIB", default_value_t = 64)]
    upload_limit_mib: usize,
    /// A streaming standby of the database for eligibility answers and staff searches
    /// (`scripts/db replica url`); writes, tokens and the access log stay on DATABASE_URL.
    #[arg(long, env = "SHIKAKU_READ_DATABASE_URL", hide_env_values = true)]
    read_database_url: Option<String>,
    /// How stale the standby may be, in milliseconds, before reads go to the primary.
    #[arg(long, env = "SHIKAKU_READ_MAX_LAG_MS", default_value_t = 5000)]
    read_max_lag_ms: u64,
    /// How often the standby's staleness is measured, in milliseconds.
    #[arg(long, env = "SHIKAKU_READ_CHECK_MS", default_value_t = 200)]
    read_check_ms: u64,
}

/// Runs the service until it is stopped.
pub fn run(db: &Database, args: ServeArgs) -> anyhow::Result<()> {
    let url = db.url()?.to_string();
    match db.connect() {
        Ok(mut conn) => {
            let pending = shikaku_db::migrate::pending(&mut conn)?;
            anyhow::ensure!(
                pending.is_empty(),
                "{} migration(s) pending: run `shikaku migrate` first",
                pending.len()
            );
            let standing = shikaku_db::roles::standing(&mut conn)?;
            if !standing.least_privileged() {
                let what = if standing.superuser {
                    "a superuser"
                } else {
                    "the owner of the tables"
                };
                if args.allow_privileged_role {
                    tracing::warn!(
                        role = %standing.user,
                        "running as {what} (--allow-privileged-role): development only"
                    );
                } else {
                    anyhow::bail!(
                        "DATABASE_URL connects as {} ({what}), which could disable the access \
                         log's triggers and cut it: run the server as the application role \
                         (`shikaku db roles` creates it), or pass --allow-privileged-role on a \
                         development machine",
                        standing.user
                    );
                }
            }
        }
        // The service starts anyway and answers 503 until the database is back.
        Err(e) => tracing::warn!("database not reachable at start: {e:#}"),
    }
    // The access log is chained with the key file's log key: no keys, no service.
    let keyring = load_keyring()
        .with_context(|| format!("the server needs the key file ({KEY_FILE_VAR} or {KEYS_VAR})"))?
        .0;
    let mut config = ApiConfig::new(&url);
    config.pool_size = args.pool_size.max(1);
    config.staff_pool_size = args.staff_pool_size.max(1);
    config.rate_per_second = args.rate_per_second;
    config.rate_burst = args.rate_burst;
    config.token_cache = std::time::Duration::from_secs(args.token_cache_seconds);
    config.checkpoint_file = Some(args.checkpoint_file.clone());
    config.checkpoint_every = std::time::Duration::from_secs(args.checkpoint_seconds.max(1));
    config.session_idle_minutes = args.session_idle_minutes.max(1);
    config.session_max_hours = args.session_hours.max(1);
    config.cookie_secure = args.cookie_secure;
    config.trusted_proxies = args.trusted_proxies.clone();
    config.auth_failures_per_minute = args.auth_failures_per_minute.max(1);
    config.no_match_per_day = args.no_match_per_day.max(1);
    config.metrics_token = args.metrics_token.clone().filter(|t| !t.trim().is_empty());
    config.read_database_url = args
        .read_database_url
        .clone()
        .filter(|u| !u.trim().is_empty());
    config.read_max_lag = std::time::Duration::from_millis(args.read_max_lag_ms);
    config.read_check_every = std::time::Duration::from_millis(args.read_check_ms.max(10));
    if let Some(t) = &config.metrics_token {
        anyhow::ensure!(
            t.len() >= 16,
            "SHIKAKU_METRICS_TOKEN must be at least 16 characters"
        );
    }
    config.upload_limit = args.upload_limit_mib.max(1).saturating_mul(1024 * 1024);
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let bind = args.bind.clone();
    actix_web::rt::System::new()
        .block_on(async move {
            let mut state = AppState::new(config, keyring)?.with_key_loader(Box::new(|| {
                load_keyring().map(|(k, _)| k).map_err(|e| format!("{e:#}"))
            }));
            match crate::config::load_font() {
                Ok(font) => state = state.with_font(font),
                Err(e) => tracing::warn!("certificate PDFs will answer 503: {e:#}"),
            }
            shikaku_api::serve(state, &args.bind, workers, args.shutdown_timeout)
                .await
                .map_err(anyhow::Error::from)
        })
        .with_context(|| format!("serving on {bind}"))
}
