//! The API in-process against a real PostgreSQL: each test gets its own database cloned from
//! the migrated template, an `AppState` on it, and one token per role. Needs `DATABASE_URL`.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::new_without_default
)]

mod access_log;
mod benefits;
mod blocking;
mod browser;
mod certificates;
mod console;
mod eligibility;
mod errors;
mod explain;
mod fhir;
mod findings;
mod linkages;
mod openapi;
mod persons;
mod replica;
mod roles;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{test, web};
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, SmallInt, Text};
use serde_json::Value;
use shikaku_api::{ApiConfig, AppState};
use shikaku_db::testing::TestDb;
use shikaku_db::tokens::{self, Role};
use shikaku_domain::Keyring;

/// 保険者番号 with valid check digits (domain.md's examples).
pub const KUMIAI: &str = "06130199";
pub const KYOKAI: &str = "01040013";
pub const KOKI: &str = "39131016";

/// A test service and what it needs.
pub struct TestApp {
    pub db: TestDb,
    pub state: web::Data<AppState>,
    pub tokens: HashMap<Role, String>,
    pub keyring_json: String,
    /// Where this service's uploads wait (its own, so a test can look inside).
    pub uploads: tempfile::TempDir,
    /// The key file the service reloads from (SIGHUP, or a key it does not hold yet).
    pub key_file: std::path::PathBuf,
}

pub fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

impl TestApp {
    pub fn new() -> TestApp {
        TestApp::with(|_| {})
    }

    pub fn with(tune: impl FnOnce(&mut ApiConfig)) -> TestApp {
        let db = TestDb::new();
        let mut conn = db.conn();
        for (n, name, kind) in [
            (KUMIAI, "テスト健康保険組合", "kumiai"),
            (KYOKAI, "全国健康保険協会東京支部", "kyokai"),
            (KOKI, "東京都後期高齢者医療広域連合", "koki"),
        ] {
            diesel::sql_query(
                "INSERT INTO insurers (insurer_number, name, kind) VALUES ($1, $2, $3)",
            )
            .bind::<Text, _>(n)
            .bind::<Text, _>(name)
            .bind::<Text, _>(kind)
            .execute(&mut conn)
            .unwrap();
        }
        let mut tokens = HashMap::new();
        for role in Role::ALL {
            let (_, secret) =
                tokens::create(&mut conn, role, &format!("test-{role}"), None, "test").unwrap();
            tokens.insert(role, secret);
        }
        let keyring = Keyring::generate();
        let keyring_json = keyring.to_json();
        let mut config = ApiConfig::new(db.url());
        config.pool_size = 4;
        config.staff_pool_size = 2;
        let uploads = tempfile::tempdir().unwrap();
        config.upload_dir = uploads.path().to_path_buf();
        tune(&mut config);
        let font_path = std::env::var("SHIKAKU_FONT")
            .unwrap_or_else(|_| shikaku_print::DEFAULT_FONT.to_string());
        let font = std::fs::read(&font_path).unwrap_or_else(|e| {
            panic!("the PDF font {font_path} is needed (scripts/test installs it): {e}")
        });
        let key_file = uploads.path().join("keys.json");
        std::fs::write(&key_file, &keyring_json).unwrap();
        let loader_path = key_file.clone();
        let state = web::Data::new(
            AppState::new(config, keyring)
                .unwrap()
                .with_font(font)
                .with_key_loader(Box::new(move || {
                    let json = std::fs::read_to_string(&loader_path).map_err(|e| e.to_string())?;
                    Keyring::from_json(&json).map_err(|e| e.to_string())
                })),
        );
        TestApp {
            db,
            state,
            tokens,
            keyring_json,
            uploads,
            key_file,
        }
    }

    /// A connection as the application role, which the service uses too.
    pub fn conn(&self) -> PgConnection {
        self.db.conn()
    }

    /// A connection as the server's administrator: an insider who can do anything.
    pub fn admin_conn(&self) -> PgConnection {
        self.db.admin_conn()
    }

    /// The keyring the service chains the access log with.
    pub fn keyring(&self) -> Keyring {
        Keyring::from_json(&self.keyring_json).unwrap()
    }

    pub fn token(&self, role: Role) -> &str {
        &self.tokens[&role]
    }

    /// Sends one request through the full app (middleware, extractors, error handlers).
    pub async fn send(&self, req: test::TestRequest) -> Reply {
        let state = self.state.clone();
        let app = test::init_service(shikaku_api::app(state)).await;
        let res = test::call_service(&app, req.to_request()).await;
        let status = res.status();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = test::read_body(res).await;
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if content_type.starts_with("application/fhir+json") {
            keep_fhir_sample(&body);
        }
        Reply {
            status,
            content_type,
            text: String::from_utf8_lossy(&body).into_owned(),
            json,
        }
    }

    pub async fn post(&self, role: Option<Role>, path: &str, body: Value) -> Reply {
        let mut req = test::TestRequest::post().uri(path).set_json(body);
        if let Some(r) = role {
            req = req.insert_header(("Authorization", format!("Bearer {}", self.token(r))));
        }
        self.send(req).await
    }

    pub async fn put(&self, role: Option<Role>, path: &str, body: Value) -> Reply {
        let mut req = test::TestRequest::put().uri(path).set_json(body);
        if let Some(r) = role {
            req = req.insert_header(("Authorization", format!("Bearer {}", self.token(r))));
        }
        self.send(req).await
    }

    pub async fn get(&self, role: Option<Role>, path: &str) -> Reply {
        let mut req = test::TestRequest::get().uri(path);
        if let Some(r) = role {
            req = req.insert_header(("Authorization", format!("Bearer {}", self.token(r))));
        }
        self.send(req).await
    }

    /// Inserts a person with its periods; returns the id.
    #[allow(clippy::too_many_arguments)]
    pub fn person(
        &self,
        insurer: &str,
        symbol: &str,
        number: &str,
        branch: &str,
        birth: &str,
        kana: &str,
        periods: &[(&str, Option<&str>)],
    ) -> i64 {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let mut conn = self.conn();
        let kana_key: String = kana.chars().filter(|c| !c.is_whitespace()).collect();
        let id = diesel::sql_query(
            "INSERT INTO persons (insurer_number, symbol, number, branch, relationship, name_kanji,
                                  name_kana, kana_key, birth_date, sex, copay_rate)
             VALUES ($1, $2, $3, $4, $5, '試験　太郎', $6, $7, $8, 1, $9) RETURNING id",
        )
        .bind::<Text, _>(insurer)
        .bind::<Text, _>(symbol)
        .bind::<Text, _>(number)
        .bind::<Text, _>(branch)
        .bind::<SmallInt, _>(if branch == "00" || branch.is_empty() {
            1
        } else {
            2
        })
        .bind::<Text, _>(kana)
        .bind::<Text, _>(kana_key)
        .bind::<Date, _>(d(birth))
        .bind::<Nullable<SmallInt>, _>(None::<i16>)
        .get_result::<Id>(&mut conn)
        .unwrap()
        .id;
        for (acquired, lost) in periods {
            diesel::sql_query(
                "INSERT INTO qualifications (person_id, acquired_on, lost_on, loss_reason)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind::<BigInt, _>(id)
            .bind::<Date, _>(d(acquired))
            .bind::<Nullable<Date>, _>(lost.map(d))
            .bind::<Nullable<Text>, _>(lost.map(|_| "03"))
            .execute(&mut conn)
            .unwrap();
        }
        id
    }

    /// Links `number` to a person directly (as an import would).
    pub fn link(&self, person_id: i64, number: &str) -> i64 {
        let keyring = Keyring::from_json(&self.keyring_json).unwrap();
        let n = shikaku_domain::MyNumber::parse(number).unwrap();
        let mut conn = self.conn();
        shikaku_db::linkages::register(
            &mut conn,
            &keyring,
            person_id,
            &n,
            shikaku_domain::records::LinkageSource::Employer,
            d("2025-01-01"),
            Some("test set-up"),
            None,
            "test",
        )
        .unwrap()
        .id
    }

    pub fn access_log(&self) -> Vec<shikaku_db::access_log::StoredEntry> {
        let mut conn = self.conn();
        let mut v = shikaku_db::access_log::recent(&mut conn, None, 100_000).unwrap();
        v.reverse();
        v
    }
}

/// A response, read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
    pub json: Value,
}

/// A My Number with a valid check digit made from `base` (11 digits).
pub fn my_number(base: u64) -> String {
    let base = format!("{base:011}");
    let arr: [u8; 11] = base.as_bytes().try_into().unwrap();
    format!("{base}{}", shikaku_domain::MyNumber::check_digit(&arr))
}

/// Every FHIR resource the API answers with in these tests, kept in `SHIKAKU_FHIR_SAMPLES` when
/// set: scripts/test validates them with an external FHIR R4 library afterwards
/// (scripts/lib/fhir_validate.py), beyond what these tests assert field by field.
fn keep_fhir_sample(body: &[u8]) {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let Some(dir) = std::env::var_os("SHIKAKU_FHIR_SAMPLES") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = dir.join(format!("{}-{n}.json", std::process::id()));
    std::fs::write(file, body).unwrap();
}
