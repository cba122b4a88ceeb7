//! What every request handler shares: the two connection pools, the keyring, the token cache,
//! the rate limiter, the access-log writer and the metrics. Built once from [`ApiConfig`] and
//! passed to handlers as `web::Data<AppState>`; there are no globals.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use diesel::r2d2::{ConnectionManager, Pool as SyncPool};
use diesel::{Connection, PgConnection};
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use shikaku_db::access_log::NewEntry;
use shikaku_domain::Keyring;

use crate::access::AccessLog;
use crate::auth::TokenCache;
use crate::console::store::UploadStore;
use crate::error::ApiError;
use crate::guard::{AuthThrottle, GuessGuard};
use crate::metrics::Metrics;
use crate::replica::{ReadPath, ReadReplica, ReadStatus, StandbyState};

/// Settings of the service, read once by the binary and passed in.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// PostgreSQL URL (may hold a password; never logged).
    pub database_url: String,
    /// Connections in the async pool that serves eligibility and token lookups.
    pub pool_size: usize,
    /// Connections in the blocking pool that serves staff reads and writes.
    pub staff_pool_size: u32,
    /// Eligibility answers per second allowed per token.
    pub rate_per_second: u32,
    /// Answers a token may take at once (a clinic's day list is up to 1,000).
    pub rate_burst: u32,
    /// How long a looked-up token is trusted before it is checked again.
    pub token_cache: Duration,
    /// Largest accepted request body in bytes.
    pub body_limit: usize,
    /// How long a request waits for a connection or the access log before answering 503.
    pub wait_timeout: Duration,
    /// The access log's checkpoint file (outside the database); `None` takes no checkpoints.
    pub checkpoint_file: Option<std::path::PathBuf>,
    /// How often the running service checkpoints the access log's head.
    pub checkpoint_every: Duration,
    /// Minutes without a request after which a console session ends.
    pub session_idle_minutes: i32,
    /// Hours after sign-in after which a console session ends however busy it is.
    pub session_max_hours: i32,
    /// When the session cookie is marked `Secure` (and HSTS sent).
    pub cookie_secure: CookieSecure,
    /// Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Failed authentications a minute allowed per client address and per token prefix.
    pub auth_failures_per_minute: u32,
    /// "No match" eligibility answers a day allowed per token and key.
    pub no_match_per_day: u32,
    /// The bearer token `/metrics` requires; `None` leaves `/metrics` unserved (404).
    pub metrics_token: Option<String>,
    /// Largest console upload (the whole multipart body) in bytes.
    pub upload_limit: usize,
    /// Where console uploads wait, sealed (each process uses a folder of its own inside).
    pub upload_dir: std::path::PathBuf,
    /// A streaming standby for eligibility answers and staff searches (may hold a password;
    /// never logged); `None` reads the primary ([`crate::replica`]).
    pub read_database_url: Option<String>,
    /// How stale the standby may be before reads go back to the primary.
    pub read_max_lag: Duration,
    /// How often the standby's staleness is measured.
    pub read_check_every: Duration,
}

/// When the console's session cookie is `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum CookieSecure {
    /// Always (TLS in front, whatever the request says).
    Always,
    /// When a trusted proxy says the request came over HTTPS; never on the word of anyone else.
    Auto,
}

impl ApiConfig {
    /// Defaults for everything but the database.
    pub fn new(database_url: &str) -> ApiConfig {
        ApiConfig {
            database_url: database_url.to_string(),
            pool_size: 8,
            staff_pool_size: 4,
            rate_per_second: 50,
            rate_burst: 1000,
            token_cache: Duration::from_secs(30),
            body_limit: 512 * 1024,
            wait_timeout: Duration::from_secs(5),
            checkpoint_file: None,
            checkpoint_every: Duration::from_secs(300),
            session_idle_minutes: 30,
            session_max_hours: 12,
            cookie_secure: CookieSecure::Auto,
            trusted_proxies: Vec::new(),
            auth_failures_per_minute: 20,
            no_match_per_day: 10,
            metrics_token: None,
            upload_limit: 64 * 1024 * 1024,
            upload_dir: std::env::temp_dir().join("shikaku-console-uploads"),
            read_database_url: None,
            read_max_lag: Duration::from_secs(5),
            read_check_every: Duration::from_millis(200),
        }
    }
}

/// Reads the key file anew.
pub type KeyLoader = Box<dyn Fn() -> Result<Keyring, String> + Send + Sync>;

/// Shared by all handlers.
pub struct AppState {
    /// Settings.
    pub config: ApiConfig,
    /// Async connections: the hot path (eligibility, tokens).
    pub pool: Pool<AsyncPgConnection>,
    /// Blocking connections for the staff routes, which reuse the same repository functions as
    /// the CLI (so each rule has one implementation) and are not latency-critical.
    pub staff_pool: SyncPool<ConnectionManager<PgConnection>>,
    /// The key file's keys: sealing and opening numbers, and chaining the access log (which is
    /// why the service does not start without them). Replaced whole when reloaded.
    keys: std::sync::RwLock<Arc<Keyring>>,
    /// Reads the key file again (SIGHUP, or a sealed number under a key not held yet).
    key_loader: Option<KeyLoader>,
    /// Recently checked tokens.
    pub tokens: TokenCache,
    /// Eligibility answers per token.
    pub limiter: DefaultKeyedRateLimiter<i64>,
    /// The group-commit writer of the access log.
    pub access_log: AccessLog,
    /// Prometheus registry and instruments.
    pub metrics: Metrics,
    /// The Japanese font embedded in certificate PDFs; `None` makes the PDF route answer 503.
    pub font: Option<Arc<Vec<u8>>>,
    /// Failed authentications per address and token prefix.
    pub auth_throttle: AuthThrottle,
    /// "No match" answers per token and key.
    pub guesses: GuessGuard,
    /// Console uploads waiting for their apply, sealed.
    pub uploads: UploadStore,
    /// The standby reads may use; `None` without `read_database_url`.
    pub reads: Option<ReadReplica>,
}

impl AppState {
    /// Builds the pools (lazily connecting: the service starts even while the database is
    /// down and recovers when it returns) and starts the access-log writer.
    pub fn new(config: ApiConfig, keyring: Keyring) -> Result<AppState, ApiError> {
        if keyring.log_key_id().is_none() {
            return Err(ApiError::Internal(
                "the key file has no access-log key: run `shikaku keys rotate --log-key`".into(),
            ));
        }
        let keyring = Arc::new(keyring);
        let pool = async_pool(&config, &config.database_url, config.wait_timeout)?;
        // A standby that does not answer at once is set aside for the primary: a short wait.
        let reads = match &config.read_database_url {
            Some(url) => Some(ReadReplica::start(
                &config,
                url,
                async_pool(&config, url, Duration::from_millis(500))?,
                staff_pool(&config, url),
            )),
            None => None,
        };
        let staff_pool = staff_pool(&config, &config.database_url);
        let rate = NonZeroU32::new(config.rate_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.rate_burst).unwrap_or(NonZeroU32::MIN);
        let metrics = Metrics::new();
        Ok(AppState {
            access_log: AccessLog::start(&config.database_url, metrics.clone(), keyring.clone()),
            tokens: TokenCache::new(config.token_cache),
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            auth_throttle: AuthThrottle::new(config.auth_failures_per_minute),
            guesses: GuessGuard::new(config.no_match_per_day),
            uploads: UploadStore::open(&config.upload_dir).map_err(|e| {
                ApiError::Internal(format!(
                    "cannot use the upload folder {}: {e}",
                    config.upload_dir.display()
                ))
            })?,
            keys: std::sync::RwLock::new(keyring),
            key_loader: None,
            metrics,
            font: None,
            pool,
            staff_pool,
            reads,
            config,
        })
    }

    /// A connection for a read-only answer: the standby's when it is fit to answer, the
    /// primary's otherwise. A read that fails on the standby is run again on the primary after
    /// [`AppState::standby_failed`].
    pub async fn read_conn(&self) -> Result<(Object<AsyncPgConnection>, ReadPath), ApiError> {
        if let Some(reads) = self.reads.as_ref() {
            if reads.usable() {
                match reads.pool.get().await {
                    Ok(conn) => return Ok((conn, ReadPath::Standby)),
                    Err(e) => {
                        tracing::warn!(error = %e, "standby connection failed; reading the primary");
                        self.standby_failed();
                    }
                }
            } else {
                self.metrics.read_fallback(reads.state());
            }
        }
        Ok((self.conn().await?, ReadPath::Primary))
    }

    /// Sets the standby aside after a read on it failed (the monitor brings it back).
    pub fn standby_failed(&self) {
        if let Some(reads) = self.reads.as_ref() {
            reads.failed();
            self.metrics.read_fallback(StandbyState::Unreachable);
        }
    }

    /// Where reads go now, for `/healthz` and `/metrics`.
    pub fn read_status(&self) -> ReadStatus {
        self.reads
            .as_ref()
            .map_or_else(crate::replica::primary_only, ReadReplica::status)
    }

    /// Runs a read-only repository function on the blocking pool, on the standby when it is fit
    /// to answer, and once more on the primary when that fails (the standby stopped).
    pub async fn blocking_read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: Fn(&mut PgConnection) -> Result<T, ApiError> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        if let Some(reads) = self.reads.as_ref().filter(|r| r.usable()) {
            let pool = reads.staff_pool.clone();
            let g = f.clone();
            let result = actix_web::web::block(move || {
                let mut conn = pool
                    .get()
                    .map_err(|e| ApiError::Unavailable(format!("standby: {e}")))?;
                g(&mut conn)
            })
            .await
            .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?;
            match result {
                Err(ApiError::Unavailable(_) | ApiError::Internal(_)) => {
                    tracing::warn!("a read failed on the standby; reading the primary");
                    self.standby_failed();
                }
                other => return other,
            }
        } else if let Some(reads) = self.reads.as_ref() {
            self.metrics.read_fallback(reads.state());
        }
        self.blocking(move |conn| f(conn)).await
    }

    /// The same state with the font for PDFs (read by the binary, which owns configuration and
    /// the files it names).
    pub fn with_font(mut self, font: Vec<u8>) -> AppState {
        self.font = Some(Arc::new(font));
        self
    }

    /// An async connection, or 503 when none comes within the wait timeout.
    pub async fn conn(&self) -> Result<Object<AsyncPgConnection>, ApiError> {
        self.pool.get().await.map_err(|e| {
            tracing::warn!(error = %e, "no database connection");
            ApiError::Unavailable("the database is unavailable".into())
        })
    }

    /// Runs a blocking repository function on the blocking pool with a staff connection.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConnection) -> Result<T, ApiError> + Send + 'static,
    {
        let pool = self.staff_pool.clone();
        let result = actix_web::web::block(move || {
            let mut conn = pool.get().map_err(|e| {
                tracing::warn!(error = %e, "no staff database connection");
                ApiError::Unavailable("the database is unavailable".into())
            })?;
            f(&mut conn)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?;
        // A number sealed with a key this server does not hold yet, or index keys rotated:
        // read the key file again, so the next request (or the handler's retry) succeeds.
        if let Err(ApiError::KeysChanged(_)) = &result {
            let _ = self.reload_keys();
        }
        result
    }

    /// Runs `attempt` with the current keyring, and once more after reloading the key file
    /// when the keys changed under it (the operator ran `keys rotate` while this server ran).
    pub async fn with_current_keys<T, F, Fut>(&self, attempt: F) -> Result<T, ApiError>
    where
        F: Fn(Arc<Keyring>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        match attempt(self.keyring()?).await {
            // `blocking` has reloaded the keys already.
            Err(ApiError::KeysChanged(_)) => attempt(self.keyring()?).await,
            other => other,
        }
    }

    /// The PDF font, or 503 when the service has none.
    pub fn font(&self) -> Result<Arc<Vec<u8>>, ApiError> {
        self.font.clone().ok_or_else(|| {
            ApiError::Unavailable(
                "this service was started without a PDF font (SHIKAKU_FONT)".into(),
            )
        })
    }

    /// Renders certificates' printed items as one PDF on the blocking pool (a PDF with an
    /// embedded font takes milliseconds of CPU, too long for an async worker).
    pub async fn render_pdf(
        &self,
        printed: Vec<shikaku_domain::certificate::PrintedItems>,
        layout: shikaku_print::Layout,
    ) -> Result<Vec<u8>, ApiError> {
        let font = self.font()?;
        actix_web::web::block(move || shikaku_print::certificates_pdf(&font, &printed, layout))
            .await
            .map_err(|e| ApiError::Internal(format!("PDF task failed: {e}")))?
            .map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// The keyring as it is now.
    pub fn keyring(&self) -> Result<Arc<Keyring>, ApiError> {
        self.keys
            .read()
            .map(|k| k.clone())
            .map_err(|_| ApiError::Internal("the keyring lock is poisoned".into()))
    }

    /// The same state with a way to read the key file again (the binary's, which owns the
    /// configuration naming it).
    pub fn with_key_loader(mut self, loader: KeyLoader) -> AppState {
        self.key_loader = Some(loader);
        self
    }

    /// Reads the key file again and uses it from now on: after `shikaku keys rotate` (or
    /// `rotate-index`) a running server must seal with the new key and open what was sealed
    /// with it. Requests in flight keep the keyring they started with.
    pub fn reload_keys(&self) -> Result<(), ApiError> {
        let loader = self
            .key_loader
            .as_ref()
            .ok_or_else(|| ApiError::Unavailable("this server cannot reload its keys".into()))?;
        let keyring = loader().map_err(|e| {
            tracing::error!(error = %e, "cannot reload the key file");
            ApiError::Unavailable("the key file cannot be read".into())
        })?;
        if keyring.log_key_id().is_none() {
            return Err(ApiError::Unavailable(
                "the reloaded key file has no access-log key".into(),
            ));
        }
        tracing::info!(
            key = keyring.current_key_id(),
            index_key = keyring.index_key_id(),
            "key file reloaded"
        );
        let mut keys = self
            .keys
            .write()
            .map_err(|_| ApiError::Internal("the keyring lock is poisoned".into()))?;
        *keys = Arc::new(keyring);
        Ok(())
    }

    /// Runs a change on the blocking pool and records the access-log entries it returns in the
    /// same transaction: the change and its entries commit together or not at all, so no
    /// change is ever left without its entry (and a log that cannot be written stops the
    /// change). Reads use [`AccessLog::record`]'s group commit instead.
    pub async fn logged_change<T, F>(&self, change: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConnection) -> Result<(T, Vec<NewEntry>), ApiError> + Send + 'static,
    {
        let keyring = self.keyring()?;
        self.blocking(move |conn| {
            conn.transaction(|conn| {
                let (value, entries) = change(conn)?;
                // Whatever stops the entry (the database, a rule on the log) is the service's
                // failure, not the caller's: 503, and the change is rolled back with it.
                shikaku_db::access_log::append(conn, &keyring, &entries).map_err(|e| {
                    tracing::error!(error = %e, "cannot write the access log");
                    ApiError::Unavailable("the access log cannot be written".into())
                })?;
                Ok(value)
            })
        })
        .await
    }
}

/// The async pool of the hot path on `url`; `create_timeout` bounds a new connection.
fn async_pool(
    config: &ApiConfig,
    url: &str,
    create_timeout: Duration,
) -> Result<Pool<AsyncPgConnection>, ApiError> {
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    // No test query on every checkout (the default costs a round trip per request): a dead
    // connection fails its first query, which answers 503 (or is retried on the primary, for a
    // standby's), and is then discarded.
    manager_config.recycling_method = RecyclingMethod::Fast;
    manager_config.custom_setup = Box::new(setup_connection);
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, manager_config);
    Pool::builder(manager)
        .max_size(config.pool_size)
        .wait_timeout(Some(config.wait_timeout))
        .create_timeout(Some(create_timeout))
        .runtime(deadpool_runtime())
        .build()
        .map_err(|e| ApiError::Internal(format!("cannot build the pool: {e}")))
}

/// The blocking pool of the staff routes on `url`, connecting lazily.
fn staff_pool(config: &ApiConfig, url: &str) -> SyncPool<ConnectionManager<PgConnection>> {
    SyncPool::builder()
        .max_size(config.staff_pool_size)
        .min_idle(Some(0))
        .connection_timeout(config.wait_timeout)
        .build_unchecked(ConnectionManager::new(url))
}

/// Opens an async connection for the hot path. Its statements are prepared once and then only
/// bound; `force_generic_plan` stops PostgreSQL from re-planning the array-keyed eligibility
/// lookup at every bind (measured at 0.4–0.6 ms of server CPU per answer), since the generic
/// plan, index probes per key, is the right one for any key.
fn setup_connection(url: &str) -> BoxFuture<'_, diesel::ConnectionResult<AsyncPgConnection>> {
    async move {
        let mut conn = AsyncPgConnection::establish(url).await?;
        conn.batch_execute("SET plan_cache_mode = force_generic_plan")
            .await
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
        Ok(conn)
    }
    .boxed()
}

fn deadpool_runtime() -> deadpool::Runtime {
    deadpool::Runtime::Tokio1
}
