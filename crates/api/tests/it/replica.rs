//! The read path against a real streaming standby (issue 16): answers equal to the primary's,
//! a write visible through it within the lag bound, a lagging standby left for the primary,
//! and a standby stopped mid-load costing no errors. The audit streams from it too.
//!
//! They need a standby of the test server: `SHIKAKU_TEST_STANDBY_URL` names it (any database;
//! `scripts/test` starts one with `scripts/db replica start` and sets it). Ignored otherwise,
//! and run by `scripts/test` with `--ignored`. They run one at a time: one stops the standby.

// Each test holds the lock for its whole run on a runtime of its own: across awaits on
// purpose, and no other task of that runtime ever waits for it.
#![allow(clippy::await_holding_lock)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{test, web};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde_json::{json, Value};
use shikaku_api::replica::{ReadPath, StandbyState};
use shikaku_api::AppState;
use shikaku_db::tokens::Role;

use crate::{TestApp, KUMIAI};

/// One test at a time: one of them stops and restarts the standby.
static STANDBY: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    STANDBY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The standby's `host:port`.
fn standby_server() -> String {
    let url = std::env::var("SHIKAKU_TEST_STANDBY_URL").expect(
        "SHIKAKU_TEST_STANDBY_URL: a standby of DATABASE_URL's server (scripts/db replica url)",
    );
    server_of(&url).to_string()
}

fn server_of(url: &str) -> &str {
    let rest = url.split_once('@').map_or(url, |(_, r)| r);
    let rest = rest.strip_prefix("postgres://").unwrap_or(rest);
    rest.split('/').next().unwrap_or(rest)
}

/// `url` (a test database on the primary) on the standby: same role, same database.
fn on_standby(url: &str) -> String {
    url.replacen(server_of(url), &standby_server(), 1)
}

fn app_with_standby(max_lag: Duration) -> TestApp {
    app_checking_every(max_lag, Duration::from_millis(50))
}

fn app_checking_every(max_lag: Duration, every: Duration) -> TestApp {
    TestApp::with(|c| {
        c.read_database_url = Some(on_standby(&c.database_url));
        c.read_max_lag = max_lag;
        c.read_check_every = every;
    })
}

/// Polls `/healthz` until reads take `path`; panics after `within`.
async fn wait_for_path(app: &TestApp, path: ReadPath, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let r = app.get(None, "/healthz").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if r.json["reads"]["path"] == json!(path) {
            return r.json;
        }
        assert!(
            started.elapsed() < within,
            "reads never went to {path:?}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn query(number: &str) -> Value {
    json!({ "insurer_number": KUMIAI, "symbol": "2001", "number": number,
            "birth_date": "1985-03-03", "on": "2026-06-01" })
}

fn add_person(app: &TestApp, number: &str, lost: Option<&str>) -> i64 {
    app.person(
        KUMIAI,
        "2001",
        number,
        "00",
        "1985-03-03",
        "シケン ハナコ",
        &[("2020-04-01", lost)],
    )
}

/// The answer as a clinic sees it, without the fields that differ per request.
fn answer(reply: &crate::Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    comparable(reply.json.clone())
}

/// `v` without the fields that differ per request.
fn comparable(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("request_id");
        o.remove("answered_at");
    }
    v
}

/// Sessions of this test's database open on the standby: proof that reads went there.
fn standby_sessions(app: &TestApp) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let admin = on_standby(&app.db.admin_url());
    let mut conn = PgConnection::establish(&admin).unwrap();
    diesel::sql_query(format!(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
        app.db.name()
    ))
    .get_result::<N>(&mut conn)
    .unwrap()
    .n
}

/// The same service without a standby, over the same database.
async fn primary_only(app: &TestApp, body: Value) -> Value {
    let mut config = shikaku_api::ApiConfig::new(app.db.url());
    config.upload_dir = app.uploads.path().join("primary-only");
    let state = web::Data::new(AppState::new(config, app.keyring()).unwrap());
    let service = test::init_service(shikaku_api::app(state)).await;
    let req = test::TestRequest::post()
        .uri("/v1/eligibility")
        .insert_header((
            "Authorization",
            format!("Bearer {}", app.token(Role::Provider)),
        ))
        .set_json(body)
        .to_request();
    let res = test::call_service(&service, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    comparable(test::read_body_json(res).await)
}

#[actix_web::test]
#[ignore = "needs a standby: SHIKAKU_TEST_STANDBY_URL (scripts/test starts one)"]
async fn answers_from_the_standby_equal_the_primarys() {
    let _one = lock();
    let app = app_with_standby(Duration::from_secs(5));
    add_person(&app, "1", None);
    add_person(&app, "2", Some("2026-01-01"));
    let dependant = app.person(
        KUMIAI,
        "2001",
        "3",
        "01",
        "2010-07-07",
        "シケン ジロウ",
        &[("2020-04-01", None)],
    );
    app.link(dependant, "123456789018");
    wait_for_path(&app, ReadPath::Standby, Duration::from_secs(20)).await;
    let mut bodies: Vec<Value> = ["1", "2", "3", "404"].iter().map(|n| query(n)).collect();
    bodies[2]["branch"] = json!("01");
    bodies[2]["birth_date"] = json!("2010-07-07");
    for body in bodies {
        let via_standby = app
            .post(Some(Role::Provider), "/v1/eligibility", body.clone())
            .await;
        assert_eq!(
            answer(&via_standby),
            primary_only(&app, body.clone()).await,
            "{body}"
        );
    }
    assert!(
        standby_sessions(&app) > 0,
        "the answers were read on the standby"
    );
    let health = app.get(None, "/healthz").await.json;
    assert_eq!(
        health["reads"]["standby"],
        json!(StandbyState::Ok),
        "{health}"
    );
    assert!(
        health["reads"]["lag_seconds"].as_f64().unwrap() <= 5.0,
        "{health}"
    );
    // Staff searches take the read path too.
    let found = app
        .post(
            Some(Role::Clerk),
            "/v1/persons/search",
            json!({ "kana": "シケン ハナコ", "birth_date": "1985-03-03" }),
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    assert_eq!(
        found.json["persons"].as_array().map(Vec::len),
        Some(2),
        "{}",
        found.text
    );
    let by_key = app
        .post(
            Some(Role::Clerk),
            "/v1/persons/search",
            json!({ "insurer_number": KUMIAI, "symbol": "2001", "number": "1" }),
        )
        .await;
    assert_eq!(by_key.status, StatusCode::OK, "{}", by_key.text);
    assert_eq!(
        by_key.json["persons"].as_array().map(Vec::len),
        Some(1),
        "{}",
        by_key.text
    );
}

#[actix_web::test]
#[ignore = "needs a standby: SHIKAKU_TEST_STANDBY_URL (scripts/test starts one)"]
async fn a_write_is_visible_through_the_read_path_after_the_lag_bound() {
    let _one = lock();
    let bound = Duration::from_millis(800);
    let app = app_with_standby(bound);
    wait_for_path(&app, ReadPath::Standby, Duration::from_secs(20)).await;
    for n in 10..15 {
        let number = n.to_string();
        add_person(&app, &number, None);
        tokio::time::sleep(bound + Duration::from_millis(100)).await;
        let r = app
            .post(Some(Role::Provider), "/v1/eligibility", query(&number))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(
            r.json["person"].is_object(),
            "person {number} found: {}",
            r.text
        );
    }
}

#[actix_web::test]
#[ignore = "needs a standby: SHIKAKU_TEST_STANDBY_URL (scripts/test starts one)"]
async fn a_standby_behind_the_bound_leaves_reads_to_the_primary() {
    let _one = lock();
    let app = app_with_standby(Duration::from_millis(500));
    wait_for_path(&app, ReadPath::Standby, Duration::from_secs(20)).await;
    let admin = on_standby(&app.db.admin_url());
    let mut standby = PgConnection::establish(&admin).unwrap();
    standby
        .batch_execute("SELECT pg_wal_replay_pause()")
        .unwrap();
    let resume = Resume(admin);
    add_person(&app, "20", None);
    let health = wait_for_path(&app, ReadPath::Primary, Duration::from_secs(10)).await;
    assert_eq!(
        health["reads"]["standby"],
        json!(StandbyState::Lagging),
        "{health}"
    );
    // The person the paused standby has not seen is answered, from the primary.
    let r = app
        .post(Some(Role::Provider), "/v1/eligibility", query("20"))
        .await;
    assert!(r.json["person"].is_object(), "{}", r.text);
    let metrics = app.state.metrics.render(&app.state);
    assert!(
        metrics.contains("shikaku_read_path_standby 0")
            && metrics.contains("shikaku_read_fallbacks_total{standby=\"lagging\"}"),
        "{metrics}"
    );
    drop(resume);
    wait_for_path(&app, ReadPath::Standby, Duration::from_secs(20)).await;
}

/// Resumes replay on the standby when dropped, whatever the test did.
struct Resume(String);

impl Drop for Resume {
    fn drop(&mut self) {
        if let Ok(mut c) = PgConnection::establish(&self.0) {
            let _ = c.batch_execute("SELECT pg_wal_replay_resume()");
        }
    }
}

/// `scripts/db replica start|stop`.
fn replica(command: &str) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/db");
    let status = std::process::Command::new(script)
        .args(["replica", command])
        .status()
        .unwrap();
    assert!(status.success(), "scripts/db replica {command} failed");
}

/// Starts the standby again when dropped, so a failing test leaves it running for the next.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        replica("start");
    }
}

#[actix_web::test]
#[ignore = "needs a standby: SHIKAKU_TEST_STANDBY_URL (scripts/test starts one)"]
async fn a_standby_stopped_mid_load_gives_primary_answers_not_errors() {
    let _one = lock();
    // A slow monitor: the requests, not the monitor, are the first to meet the stopped
    // standby, so what keeps them answering is the retry on the primary.
    let app = app_checking_every(Duration::from_secs(5), Duration::from_secs(3));
    for n in 30..40 {
        add_person(&app, &n.to_string(), None);
    }
    wait_for_path(&app, ReadPath::Standby, Duration::from_secs(20)).await;
    let expected: Vec<Value> = {
        let mut v = Vec::new();
        for n in 30..40 {
            v.push(primary_only(&app, query(&n.to_string())).await);
        }
        v
    };
    let restart = Restart;
    let mut answered = 0;
    let mut stopping = None;
    let mut after_stop = 0;
    let mut round = 0;
    // Load before, during and after the stop: the rounds go on until 20 have run on a standby
    // that is down for certain.
    while after_stop < 20 {
        if round == 10 {
            stopping = Some(std::thread::spawn(|| replica("stop")));
        }
        if stopping
            .as_ref()
            .is_some_and(std::thread::JoinHandle::is_finished)
        {
            after_stop += 1;
        }
        for (i, n) in (30..40).enumerate() {
            let r = app
                .post(
                    Some(Role::Provider),
                    "/v1/eligibility",
                    query(&n.to_string()),
                )
                .await;
            assert_eq!(answer(&r), expected[i], "round {round}, person {n}");
            answered += 1;
        }
        round += 1;
    }
    assert!(answered >= 300, "{answered}");
    if let Some(t) = stopping {
        t.join().unwrap();
    }
    let health = app.get(None, "/healthz").await.json;
    assert_eq!(
        health["reads"]["path"],
        json!(ReadPath::Primary),
        "{health}"
    );
    assert_eq!(
        health["reads"]["standby"],
        json!(StandbyState::Unreachable),
        "{health}"
    );
    drop(restart);
    // Back once it is up and caught up.
    wait_for_path(&app, ReadPath::Standby, Duration::from_secs(60)).await;
}

#[core::prelude::v1::test]
#[ignore = "needs a standby: SHIKAKU_TEST_STANDBY_URL (scripts/test starts one)"]
fn the_audit_streams_from_the_standby_and_writes_findings_to_the_primary() {
    let _one = lock();
    let db = shikaku_db::testing::TestDb::new();
    let keyring = shikaku_domain::Keyring::generate();
    let mut conn = db.conn();
    import_fixtures(&mut conn, &keyring, 400);
    // The audit's streaming client runs a runtime of its own: a thread of its own too.
    let audit = |standby: Option<shikaku_audit::runner::Standby<'_>>| {
        std::thread::scope(|s| {
            s.spawn(|| {
                shikaku_audit::runner::run_audit(
                    db.url(),
                    &shikaku_audit::AuditContext::new(crate::d("2026-06-01")),
                    &shikaku_audit::runner::RunOptions {
                        threads: Some(2),
                        actor: "test",
                        progress: &|_, _| {},
                        rows_per_file: None,
                        standby,
                    },
                )
            })
            .join()
            .unwrap()
            .unwrap()
        })
    };
    let standby_url = on_standby(db.url());
    let from_standby = audit(Some(shikaku_audit::runner::Standby {
        url: &standby_url,
        max_lag: Duration::from_secs(10),
    }));
    assert!(from_standby.read_from_standby);
    assert!(from_standby.detected() > 0, "{:?}", from_standby.counts);
    assert_eq!(
        from_standby.merge.new,
        from_standby.detected(),
        "stored on the primary"
    );
    let from_primary = audit(None);
    assert!(!from_primary.read_from_standby);
    assert_eq!(
        from_primary.counts, from_standby.counts,
        "the same findings"
    );
    assert_eq!(from_primary.merge.new, 0, "all seen in the standby's run");
}

/// A generated insurer of `persons` people with its linkages and register, imported.
fn import_fixtures(conn: &mut PgConnection, keyring: &shikaku_domain::Keyring, persons: u64) {
    use shikaku_domain::records::FileKind;
    let (mut insurers, mut people, mut linkages, mut residents, mut truth) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    shikaku_fixtures::generate_to(
        &shikaku_fixtures::Config {
            persons,
            seed: 61,
            ..shikaku_fixtures::Config::default()
        },
        shikaku_fixtures::Outputs {
            insurers: &mut insurers,
            persons: &mut people,
            linkages: &mut linkages,
            residents: &mut residents,
            truth: &mut truth,
        },
    )
    .unwrap();
    let ctx = shikaku_db::import::ImportContext {
        actor: "test",
        file_name: "fixtures",
        progress: &|_| {},
        today: crate::d("2026-06-01"),
    };
    for (kind, data) in [
        (FileKind::Persons, &people),
        (FileKind::Residents, &residents),
        (FileKind::Linkages, &linkages),
    ] {
        let mut sink = shikaku_db::import::CollectIssues::default();
        let summary = shikaku_db::import::run(
            conn,
            kind,
            &ctx,
            Some(keyring),
            data.as_slice(),
            &mut sink,
            false,
        )
        .unwrap();
        assert!(summary.applied, "{kind:?}: {:?}", sink.0);
    }
}
