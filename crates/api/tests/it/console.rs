//! The web console: in-process checks of sessions, CSRF and roles, and the main flows in a
//! real headless Chromium driven over WebDriver (Debian's chromium and chromium-driver, which
//! scripts/test installs). Screenshots of the main pages go to docs/console/ when
//! SHIKAKU_SCREENSHOTS=1 (and to target/console-screenshots/ otherwise).

use std::time::Duration;

use actix_web::test::TestRequest;
use fantoccini::{Client, ClientBuilder, Locator};
use shikaku_db::tokens::Role;

use crate::*;

/// Signs in through the form and returns the session cookie.
async fn sign_in(app: &TestApp, role: Role) -> String {
    let req = TestRequest::post()
        .uri("/console/login")
        .set_form([("token", app.token(role))]);
    let state = app.state.clone();
    let svc = actix_web::test::init_service(
        actix_web::App::new().configure(move |cfg| shikaku_api::configure(cfg, state)),
    )
    .await;
    let res = actix_web::test::call_service(&svc, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res
        .response()
        .cookies()
        .find(|c| c.name() == shikaku_api::console::COOKIE)
        .expect("a session cookie");
    assert!(cookie.http_only().unwrap_or(false));
    assert_eq!(
        cookie.same_site(),
        Some(actix_web::cookie::SameSite::Strict)
    );
    format!("{}={}", cookie.name(), cookie.value())
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..at + 64].to_string()
}

#[actix_web::test]
async fn sessions_csrf_and_roles() {
    let app = TestApp::new();
    app.person(
        KUMIAI,
        "60",
        "1",
        "00",
        "1980-05-05",
        "ヤマダ　タロウ",
        &[("2020-04-01", None)],
    );
    // Without a session: to the sign-in page.
    let r = app.send(TestRequest::get().uri("/console")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // A bad token: 401 with the form again.
    let r = app
        .send(
            TestRequest::post()
                .uri("/console/login")
                .set_form([("token", "shk_nope")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text.contains("トークンが無効です"));
    // A sign-in posted from another site is refused.
    let r = app
        .send(
            TestRequest::post()
                .uri("/console/login")
                .insert_header(("Origin", "https://evil.example"))
                .set_form([("token", app.token(Role::Clerk))]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let clerk = sign_in(&app, Role::Clerk).await;
    let home = app
        .send(
            TestRequest::get()
                .uri("/console")
                .insert_header(("Cookie", clerk.clone())),
        )
        .await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text.contains("被保険者検索"));
    let csrf = csrf_of(&home.text);
    // A search without the CSRF token, or with another, is refused; with it, it works.
    for bad in [
        "",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let r = app
            .send(
                TestRequest::post()
                    .uri("/console/search")
                    .insert_header(("Cookie", clerk.clone()))
                    .set_form([("csrf", bad), ("by", "kana"), ("kana", "やまだ たろう")]),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    }
    let r = app
        .send(
            TestRequest::post()
                .uri("/console/search")
                .insert_header(("Cookie", clerk.clone()))
                .set_form([
                    ("csrf", csrf.as_str()),
                    ("by", "kana"),
                    ("kana", "やまだ たろう"),
                ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("検索結果（1件）"), "{}", r.text);
    // A clerk may not open the access log; an admin may.
    let r = app
        .send(
            TestRequest::get()
                .uri("/console/access-log")
                .insert_header(("Cookie", clerk.clone())),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let admin = sign_in(&app, Role::Admin).await;
    let r = app
        .send(
            TestRequest::get()
                .uri("/console/access-log")
                .insert_header(("Cookie", admin)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("person_search"));
    // Signing out ends the session.
    let r = app
        .send(
            TestRequest::post()
                .uri("/console/logout")
                .insert_header(("Cookie", clerk.clone()))
                .set_form([("csrf", csrf.as_str())]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = app
        .send(
            TestRequest::get()
                .uri("/console")
                .insert_header(("Cookie", clerk)),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // An idle session ends after 30 minutes.
    let idle = sign_in(&app, Role::Admin).await;
    diesel::sql_query(
        "UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes' WHERE ended_at IS NULL",
    )
    .execute(&mut app.conn())
    .unwrap();
    let r = app
        .send(
            TestRequest::get()
                .uri("/console")
                .insert_header(("Cookie", idle)),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // A revoked token's session ends too.
    let auditor = sign_in(&app, Role::Auditor).await;
    let mut conn = app.conn();
    diesel::sql_query("UPDATE api_tokens SET revoked_at = now() WHERE name = 'test-auditor'")
        .execute(&mut conn)
        .unwrap();
    let r = app
        .send(
            TestRequest::get()
                .uri("/console")
                .insert_header(("Cookie", auditor)),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

/// A running chromedriver, killed on drop.
struct Driver {
    child: std::process::Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chromedriver() -> Driver {
    let port = free_port();
    let child = std::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromedriver (Debian: chromium-driver) is needed; scripts/test installs it");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver { child, port }
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--lang=ja"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("cannot start headless Chromium through chromedriver")
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    let dir = if std::env::var_os("SHIKAKU_SCREENSHOTS").is_some() {
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/console"))
    } else {
        std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/console-screenshots"
        ))
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Typing into a date input depends on the browser's locale; set the value as a form would
/// submit it.
async fn set_date(c: &Client, css: &str, value: &str) {
    c.execute(
        "document.querySelector(arguments[0]).value = arguments[1];",
        vec![serde_json::json!(css), serde_json::json!(value)],
    )
    .await
    .unwrap();
}

#[actix_web::test]
async fn in_a_real_browser() {
    let app = TestApp::new();
    let person = app.person(
        KUMIAI,
        "61",
        "3",
        "00",
        "1985-03-03",
        "ヤマダ　ハナコ",
        &[("2010-04-01", Some("2015-04-01")), ("2016-04-01", None)],
    );
    app.person(
        KUMIAI,
        "61",
        "3",
        "01",
        "2015-06-06",
        "ヤマダ　タロウ",
        &[("2015-06-06", None)],
    );
    let linkage = app.link(person, &my_number(61_000_000_003));
    crate::findings::seed_finding(&app, person, linkage);
    // The register's record for that number, with another name: the finding's other side.
    let mut conn = app.conn();
    diesel::sql_query(
        "WITH i AS (INSERT INTO imports (kind, file_name, actor) VALUES ('residents', 'r.csv', 't') RETURNING id),
              s AS (INSERT INTO resident_snapshots (import_id, file_name) SELECT id, 'r.csv' FROM i RETURNING id)
         INSERT INTO resident_records (snapshot_id, mn_blind, mn_last4, check_digit_ok, name_kanji, name_kana,
                                       birth_date, sex, address, status)
         SELECT s.id, l.mn_blind, l.mn_last4, true, '山田　花子', 'ヤマダ　ハナコ', '1985-03-03', 2,
                '東京都千代田区千代田一丁目1番1号', 'active'
           FROM s, linkages l WHERE l.id = $1",
    )
    .bind::<diesel::sql_types::BigInt, _>(linkage)
    .execute(&mut conn)
    .unwrap();

    // The service on a real port.
    let state = app.state.clone();
    let server = actix_web::HttpServer::new(move || {
        let state = state.clone();
        actix_web::App::new().configure(move |cfg| shikaku_api::configure(cfg, state))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let base = format!("http://{addr}");

    let driver = chromedriver();
    let c = browser(&driver).await;

    // Sign in with a clerk token.
    c.goto(&format!("{base}/console")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("/console/login"));
    shot(&c, "01-sign-in").await;
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(app.token(Role::Clerk))
        .await
        .unwrap();
    c.find(Locator::Css("form.box button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#kana")).await.unwrap();
    shot(&c, "02-search").await;

    // Search by hiragana name and birth date, open the person.
    c.find(Locator::Css("#kana"))
        .await
        .unwrap()
        .send_keys("やまだ　はなこ")
        .await
        .unwrap();
    set_date(&c, "#birth_date", "1985-03-03").await;
    let forms = c.find_all(Locator::Css("form.box")).await.unwrap();
    forms[1]
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let link = c
        .wait()
        .for_element(Locator::LinkText("試験　太郎"))
        .await
        .unwrap();
    let page = c.source().await.unwrap();
    assert!(page.contains("検索結果（1件）"), "{page}");
    link.click().await.unwrap();
    c.wait().for_element(Locator::Css("dl.grid")).await.unwrap();
    let page = c.source().await.unwrap();
    assert!(
        page.contains("資格の履歴") && page.contains("2016-04-01") && page.contains("2015-04-01")
    );
    assert!(page.contains("世帯") && page.contains("2015-06-06"));
    let last4 = &my_number(61_000_000_003)[8..];
    assert!(page.contains(&format!("…{last4}")));
    assert!(!page.contains(&my_number(61_000_000_003)));
    shot(&c, "03-person").await;

    // The eligibility check shows what a clinic receives.
    c.goto(&format!("{base}/console/eligibility"))
        .await
        .unwrap();
    c.find(Locator::Css("#e_insurer"))
        .await
        .unwrap()
        .send_keys(KUMIAI)
        .await
        .unwrap();
    c.find(Locator::Css("#e_symbol"))
        .await
        .unwrap()
        .send_keys("61")
        .await
        .unwrap();
    c.find(Locator::Css("#e_number"))
        .await
        .unwrap()
        .send_keys("3")
        .await
        .unwrap();
    c.find(Locator::Css("#e_branch"))
        .await
        .unwrap()
        .send_keys("00")
        .await
        .unwrap();
    set_date(&c, "#e_birth", "1985-03-03").await;
    c.find(Locator::Css("form.box button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("pre")).await.unwrap();
    let page = c.source().await.unwrap();
    assert!(page.contains("1 有効"), "{page}");
    shot(&c, "04-eligibility").await;

    // A clerk is refused the administrators' page.
    c.goto(&format!("{base}/console/access-log")).await.unwrap();
    let page = c.source().await.unwrap();
    assert!(page.contains("権限がありません"), "{page}");

    // A form posted without the CSRF token is refused (the browser sends the cookie).
    let status: serde_json::Value = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/console/search', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                    body: 'by=kana&kana=%E3%82%84%E3%81%BE%E3%81%A0'}).then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, serde_json::json!(403));

    // Sign out, then an admin signs in and verifies the access log's chain.
    c.goto(&format!("{base}/console")).await.unwrap();
    c.find(Locator::Css("header form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#token")).await.unwrap();
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(app.token(Role::Admin))
        .await
        .unwrap();
    c.find(Locator::Css("form.box button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#kana")).await.unwrap();
    c.goto(&format!("{base}/console/access-log")).await.unwrap();
    c.find(Locator::Css("main form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("p.ok")).await.unwrap();
    let page = c.source().await.unwrap();
    assert!(
        page.contains("チェーンは正常です") && page.contains("person_read"),
        "{page}"
    );
    shot(&c, "05-access-log").await;

    // Imports: a file with an error is reported by line and column and cannot be applied; a
    // good one is checked, then applied.
    let dir = tempfile::tempdir().unwrap();
    let header = "insurer_number,symbol,number,branch,relationship,name_kanji,name_kana,birth_date,sex,postal_code,address,acquired_on,lost_on,loss_reason,copay_rate";
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, format!("{header}\n{KUMIAI},62,1,00,insured,取込　一郎,トリコミ　イチロウ,1990-13-01,1,,,2020-04-01,,,\n")).unwrap();
    let good = dir.path().join("good.csv");
    std::fs::write(&good, format!("{header}\n{KUMIAI},62,1,00,insured,取込　一郎,トリコミ　イチロウ,1990-01-01,1,,,2020-04-01,,,\n")).unwrap();
    c.goto(&format!("{base}/console/imports")).await.unwrap();
    c.find(Locator::Css("#i_file"))
        .await
        .unwrap()
        .send_keys(bad.to_str().unwrap())
        .await
        .unwrap();
    c.find(Locator::Css("#i_check"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("p.error")).await.unwrap();
    let page = c.source().await.unwrap();
    assert!(
        page.contains("birth_date") && page.contains("登録できません"),
        "{page}"
    );
    assert!(c.find(Locator::Css("#i_apply")).await.is_err());
    shot(&c, "09-import-report").await;
    c.find(Locator::Css("#i_file"))
        .await
        .unwrap()
        .send_keys(good.to_str().unwrap())
        .await
        .unwrap();
    c.find(Locator::Css("#i_check"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("#i_apply"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("p.ok")).await.unwrap();
    let page = c.source().await.unwrap();
    assert!(page.contains("登録しました"), "{page}");
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n = diesel::sql_query("SELECT count(*) AS n FROM persons WHERE name_kanji = '取込　一郎'")
        .get_result::<N>(&mut app.conn())
        .unwrap()
        .n;
    assert_eq!(n, 1);

    // The monthly run from an uploaded status file: preview, run, mailing PDF.
    let status = dir.path().join("status.csv");
    std::fs::write(
        &status,
        format!("insurer_number,symbol,number,branch,card_status\n{KUMIAI},62,1,00,unregistered\n"),
    )
    .unwrap();
    c.goto(&format!("{base}/console/issue-due")).await.unwrap();
    c.find(Locator::Css("#d_file"))
        .await
        .unwrap()
        .send_keys(status.to_str().unwrap())
        .await
        .unwrap();
    c.find(Locator::Css("#d_check"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#d_run")).await.unwrap();
    let page = c.source().await.unwrap();
    assert!(page.contains("まだ交付していません"), "{page}");
    shot(&c, "10-issue-due").await;
    c.find(Locator::Css("#d_run"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let link = match c.wait().for_element(Locator::Css("#d_mailing")).await {
        Ok(l) => l,
        Err(e) => panic!("{e}: {}", c.source().await.unwrap()),
    };
    let href = link.attr("href").await.unwrap().unwrap();
    let fetched: serde_json::Value = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(async r => {
               const b = new Uint8Array(await r.arrayBuffer());
               done([r.status, String.fromCharCode(...b.slice(0, 4))]);
             });",
            vec![serde_json::json!(href)],
        )
        .await
        .unwrap();
    assert_eq!(fetched, serde_json::json!([200, "%PDF"]));

    // As a clerk again: issue a certificate on the person's page and download its PDF.
    c.goto(&format!("{base}/console")).await.unwrap();
    c.find(Locator::Css("header form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#token")).await.unwrap();
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(app.token(Role::Clerk))
        .await
        .unwrap();
    c.find(Locator::Css("form.box button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#kana")).await.unwrap();
    c.goto(&format!("{base}/console/persons/{person}"))
        .await
        .unwrap();
    c.find(Locator::Css("#issue"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let pdf_link = c
        .wait()
        .for_element(Locator::Css("a[download]"))
        .await
        .unwrap();
    let href = pdf_link.attr("href").await.unwrap().unwrap();
    let page = c.source().await.unwrap();
    assert!(
        page.contains("active") && page.contains("application"),
        "{page}"
    );
    shot(&c, "06-certificate").await;
    let fetched: serde_json::Value = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(async r => {
               const b = new Uint8Array(await r.arrayBuffer());
               done([r.status, r.headers.get('content-type'), String.fromCharCode(...b.slice(0, 4)), b.length]);
             });",
            vec![serde_json::json!(href)],
        )
        .await
        .unwrap();
    assert_eq!(fetched[0], 200, "{fetched}");
    assert_eq!(fetched[1], "application/pdf");
    assert_eq!(fetched[2], "%PDF");
    assert!(fetched[3].as_u64().unwrap() > 1000);
    // Revoke it with a reason, from the same page.
    c.find(Locator::Css(
        "form.inline[action$='/revoke'] input[name=reason]",
    ))
    .await
    .unwrap()
    .send_keys("本人申出")
    .await
    .unwrap();
    c.find(Locator::Css("form.inline[action$='/revoke'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("span.badge.revoked"))
        .await
        .unwrap();

    // As an auditor: the queue, the finding side by side, dismissed with a reason.
    c.goto(&format!("{base}/console")).await.unwrap();
    c.find(Locator::Css("header form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#token")).await.unwrap();
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(app.token(Role::Auditor))
        .await
        .unwrap();
    c.find(Locator::Css("form.box button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#kana")).await.unwrap();
    c.goto(&format!("{base}/console/findings?severity=critical"))
        .await
        .unwrap();
    shot(&c, "07-findings").await;
    c.find(Locator::LinkText("identity_mismatch"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("#reason_dismiss"))
        .await
        .unwrap();
    let page = c.source().await.unwrap();
    assert!(page.contains("登録内容と住民基本台帳の比較"), "{page}");
    assert!(
        page.contains("山田　花子") && page.contains("tr class=\"diff\""),
        "{page}"
    );
    shot(&c, "08-finding").await;
    c.find(Locator::Css("#reason_dismiss"))
        .await
        .unwrap()
        .send_keys("旧姓で登録、同一人物と確認")
        .await
        .unwrap();
    c.find(Locator::Css("#do_dismiss"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::XPath("//dd[contains(., 'dismissed')]"))
        .await
        .unwrap();
    let page = c.source().await.unwrap();
    assert!(page.contains("旧姓で登録、同一人物と確認"), "{page}");
    // Correct the linkage's number from the finding page: the number is typed, never shown.
    let right = my_number(61_000_000_004);
    c.find(Locator::Css("#l_number"))
        .await
        .unwrap()
        .send_keys(&right)
        .await
        .unwrap();
    c.find(Locator::Css("#l_correct"))
        .await
        .unwrap()
        .send_keys("住基照会で正しい番号を確認")
        .await
        .unwrap();
    c.find(Locator::Css("form[action*='/correct'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("span.badge.revoked"))
        .await
        .unwrap();
    let page = c.source().await.unwrap();
    assert!(!page.contains(&right), "the number must not be shown");
    assert!(app
        .access_log()
        .iter()
        .any(|e| e.action == "linkage_correct" && !e.request.to_string().contains(&right)));

    c.close().await.unwrap();
    handle.stop(true).await;
}
