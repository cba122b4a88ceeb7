//! The web console's main flows in a real headless Chromium driven over WebDriver (Debian's
//! chromium and chromium-driver, which scripts/test installs), one named scenario per test so
//! that each fails on its own. Every scenario starts its own database, server and browser.
//! Screenshots of the main pages go to docs/console/ when SHIKAKU_SCREENSHOTS=1 (and to
//! target/console-screenshots/ otherwise).

use std::time::Duration;

use actix_web::dev::ServerHandle;
use fantoccini::{Client, ClientBuilder, Locator};
use shikaku_db::tokens::Role;
use shikaku_domain::finding::{Field, FieldComparison, FieldMatch};

use crate::*;

/// One scenario's world: a seeded database, the service on a real port, and a browser.
struct Browser {
    app: TestApp,
    base: String,
    c: Client,
    handle: ServerHandle,
    /// The person the scenarios look at (ヤマダ　ハナコ, with a household member).
    person: i64,
    /// Their linkage, which has a critical finding against the register.
    linkage: i64,
    _driver: Driver,
}

impl Browser {
    async fn start() -> Browser {
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
        // The finding as an audit run would store it: the registry's name against the
        // register's, with both comparison keys and the verdict.
        crate::findings::seed_compared_finding(
            &app,
            person,
            linkage,
            vec![FieldComparison {
                field: Field::NameKanji,
                registry: Some("試験　太郎".into()),
                register: Some("山田　花子".into()),
                registry_key: Some("試験太郎".into()),
                register_key: Some("山田花子".into()),
                verdict: Some(FieldMatch::Different { score: 0.0 }),
            }],
        );
        let state = app.state.clone();
        // The application exactly as served, security headers (CSP) included.
        let server = actix_web::HttpServer::new(move || shikaku_api::app(state.clone()))
            .workers(1)
            .bind(("127.0.0.1", 0))
            .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let driver = chromedriver();
        let c = browser(&driver).await;
        Browser {
            app,
            base: format!("http://{addr}"),
            c,
            handle,
            person,
            linkage,
            _driver: driver,
        }
    }

    async fn goto(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn page(&self) -> String {
        self.c.source().await.unwrap()
    }

    async fn click(&self, css: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn type_into(&self, css: &str, text: &str) {
        self.c
            .find(Locator::Css(css))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }

    async fn wait_for(&self, css: &str) {
        if let Err(e) = self.c.wait().for_element(Locator::Css(css)).await {
            panic!("{e}: {}", self.page().await);
        }
    }

    /// Waits until the page holds `text` (a new page after a click may not be there yet, and
    /// an element the old page also had would match too soon).
    async fn wait_for_text(&self, text: &str) {
        for _ in 0..100 {
            if self.page().await.contains(text) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("timeout waiting for {text:?}: {}", self.page().await);
    }

    /// Signs in through the form as a token of `role`, ending on the search page.
    async fn sign_in(&self, role: Role) {
        self.goto("/console/login").await;
        self.type_into("#token", self.app.token(role)).await;
        self.click("form.box button[type=submit]").await;
        self.wait_for("#kana").await;
    }

    /// Fetches `href` in the page (with its cookies) and returns the status and the first four
    /// bytes of the body.
    async fn fetch_head(&self, href: &str) -> serde_json::Value {
        self.c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch(arguments[0]).then(async r => {
                   const b = new Uint8Array(await r.arrayBuffer());
                   done([r.status, r.headers.get('content-type'), String.fromCharCode(...b.slice(0, 4)), b.length]);
                 });",
                vec![serde_json::json!(href)],
            )
            .await
            .unwrap()
    }

    async fn finish(self) {
        self.c.close().await.unwrap();
        self.handle.stop(true).await;
    }
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
async fn browser_sign_in_search_and_person_page() {
    let b = Browser::start().await;
    b.goto("/console").await;
    assert!(b
        .c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("/console/login"));
    shot(&b.c, "01-sign-in").await;
    b.sign_in(Role::Clerk).await;
    shot(&b.c, "02-search").await;

    // Search by hiragana name and birth date, open the person.
    b.type_into("#kana", "やまだ　はなこ").await;
    set_date(&b.c, "#birth_date", "1985-03-03").await;
    let forms = b.c.find_all(Locator::Css("form.box")).await.unwrap();
    forms[1]
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let link =
        b.c.wait()
            .for_element(Locator::LinkText("試験　太郎"))
            .await
            .unwrap();
    assert!(b.page().await.contains("検索結果（1件）"));
    link.click().await.unwrap();
    b.wait_for("dl.grid").await;
    let page = b.page().await;
    assert!(
        page.contains("資格の履歴") && page.contains("2016-04-01") && page.contains("2015-04-01")
    );
    assert!(page.contains("世帯") && page.contains("2015-06-06"));
    let last4 = &my_number(61_000_000_003)[8..];
    assert!(page.contains(&format!("…{last4}")));
    assert!(!page.contains(&my_number(61_000_000_003)));
    // Labels are Japanese: the linkage's status, the finding's severity and kind.
    assert!(page.contains("有効") && page.contains("重大") && page.contains("本人情報の不一致"));
    assert!(!page.contains(">critical<") && !page.contains(">identity_mismatch<"));
    shot(&b.c, "03-person").await;
    b.finish().await;
}

#[actix_web::test]
async fn browser_eligibility_check_as_a_clinic_sees_it() {
    let b = Browser::start().await;
    b.sign_in(Role::Clerk).await;
    b.goto("/console/eligibility").await;
    b.type_into("#e_insurer", KUMIAI).await;
    b.type_into("#e_symbol", "61").await;
    b.type_into("#e_number", "3").await;
    b.type_into("#e_branch", "00").await;
    set_date(&b.c, "#e_birth", "1985-03-03").await;
    b.click("form.box button[type=submit]").await;
    b.wait_for("pre").await;
    assert!(b.page().await.contains("1 有効"));
    shot(&b.c, "04-eligibility").await;
    b.finish().await;
}

#[actix_web::test]
async fn browser_roles_and_csrf_are_enforced() {
    let b = Browser::start().await;
    b.sign_in(Role::Clerk).await;
    // A clerk is refused the administrators' page.
    b.goto("/console/access-log").await;
    assert!(b.page().await.contains("権限がありません"));
    // A form posted without the CSRF token is refused (the browser sends the cookie).
    b.goto("/console").await;
    let status: serde_json::Value = b
        .c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/console/search', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                    body: 'by=kana&kana=%E3%82%84%E3%81%BE%E3%81%A0'}).then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, serde_json::json!(403));
    // Signing out ends the session.
    b.click("header form button").await;
    b.wait_for("#token").await;
    b.goto("/console").await;
    assert!(b
        .c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("/console/login"));
    b.finish().await;
}

#[actix_web::test]
async fn browser_admin_verifies_the_access_log() {
    let b = Browser::start().await;
    b.sign_in(Role::Admin).await;
    b.goto(&format!("/console/persons/{}", b.person)).await;
    b.goto("/console/access-log").await;
    b.click("main form button").await;
    b.wait_for("p.ok").await;
    let page = b.page().await;
    assert!(page.contains("チェーンは正常です") && page.contains("person_read"));
    shot(&b.c, "05-access-log").await;
    b.finish().await;
}

#[actix_web::test]
async fn browser_import_report_then_apply() {
    let b = Browser::start().await;
    b.sign_in(Role::Admin).await;
    let dir = tempfile::tempdir().unwrap();
    let header = "insurer_number,symbol,number,branch,relationship,name_kanji,name_kana,birth_date,sex,postal_code,address,acquired_on,lost_on,loss_reason,copay_rate";
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, format!("{header}\n{KUMIAI},62,1,00,insured,取込　一郎,トリコミ　イチロウ,1990-13-01,1,,,2020-04-01,,,\n")).unwrap();
    let good = dir.path().join("good.csv");
    std::fs::write(&good, format!("{header}\n{KUMIAI},62,1,00,insured,取込　一郎,トリコミ　イチロウ,1990-01-01,1,,,2020-04-01,,,\n")).unwrap();
    // A file with an error is reported by line and column and cannot be applied.
    b.goto("/console/imports").await;
    b.type_into("#i_file", bad.to_str().unwrap()).await;
    b.click("#i_check").await;
    b.wait_for("p.error").await;
    let page = b.page().await;
    assert!(page.contains("birth_date") && page.contains("登録できません"));
    assert!(b.c.find(Locator::Css("#i_apply")).await.is_err());
    shot(&b.c, "09-import-report").await;
    // A good one is checked, then applied.
    b.type_into("#i_file", good.to_str().unwrap()).await;
    b.click("#i_check").await;
    b.wait_for("#i_apply").await;
    b.click("#i_apply").await;
    b.wait_for_text("登録しました").await;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n = diesel::sql_query("SELECT count(*) AS n FROM persons WHERE name_kanji = '取込　一郎'")
        .get_result::<N>(&mut b.app.conn())
        .unwrap()
        .n;
    assert_eq!(n, 1);
    b.finish().await;
}

#[actix_web::test]
async fn browser_monthly_run_from_an_uploaded_status_file() {
    let b = Browser::start().await;
    b.sign_in(Role::Admin).await;
    let dir = tempfile::tempdir().unwrap();
    let status = dir.path().join("status.csv");
    std::fs::write(
        &status,
        format!("insurer_number,symbol,number,branch,card_status\n{KUMIAI},61,3,00,unregistered\n"),
    )
    .unwrap();
    b.goto("/console/issue-due").await;
    b.type_into("#d_file", status.to_str().unwrap()).await;
    b.click("#d_check").await;
    b.wait_for("#d_run").await;
    assert!(b.page().await.contains("まだ交付していません"));
    shot(&b.c, "10-issue-due").await;
    b.click("#d_run").await;
    b.wait_for("#d_mailing").await;
    let href =
        b.c.find(Locator::Css("#d_mailing"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
    let fetched = b.fetch_head(&href).await;
    assert_eq!(fetched[0], 200, "{fetched}");
    assert_eq!(fetched[2], "%PDF");
    b.finish().await;
}

#[actix_web::test]
async fn browser_certificate_issue_pdf_and_revoke() {
    let b = Browser::start().await;
    b.sign_in(Role::Clerk).await;
    b.goto(&format!("/console/persons/{}", b.person)).await;
    // The residence permit ends on 2027-06-30: stored on the person, it cuts the certificate.
    // (A date input takes keystrokes in the browser's locale; the value is set directly.)
    b.c.execute(
        "document.getElementById('f_residence').value = '2027-06-30';",
        vec![],
    )
    .await
    .unwrap();
    b.click("#facts").await;
    b.wait_for("#issue").await;
    assert!(b.page().await.contains("2027-06-30"));
    b.click("#issue").await;
    b.wait_for("a[download]").await;
    assert!(
        b.page().await.matches("2027-06-30").count() >= 2,
        "the certificate ends with the permit"
    );
    let href =
        b.c.find(Locator::Css("a[download]"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
    let page = b.page().await;
    assert!(page.contains("有効") && page.contains("申請"));
    shot(&b.c, "06-certificate").await;
    let fetched = b.fetch_head(&href).await;
    assert_eq!(fetched[0], 200, "{fetched}");
    assert_eq!(fetched[1], "application/pdf");
    assert_eq!(fetched[2], "%PDF");
    assert!(fetched[3].as_u64().unwrap() > 1000);
    // Revoke it with a reason, from the same page.
    b.type_into(
        "form.inline[action$='/revoke'] input[name=reason]",
        "本人申出",
    )
    .await;
    b.click("form.inline[action$='/revoke'] button").await;
    b.wait_for("span.badge.revoked").await;
    assert!(b.page().await.contains("無効"));
    b.finish().await;
}

#[actix_web::test]
async fn browser_auditor_reviews_a_finding_side_by_side() {
    let b = Browser::start().await;
    b.sign_in(Role::Auditor).await;
    // The queue sorted by the probability of another person, chosen in the form.
    b.goto("/console/findings").await;
    b.c.find(Locator::Css("#sort"))
        .await
        .unwrap()
        .select_by_value("probability")
        .await
        .unwrap();
    b.click("form.box button.primary").await;
    b.wait_for("td.p_other").await;
    let queue = b.page().await;
    assert!(b
        .c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains("sort=probability"));
    let shown: Vec<f64> = queue
        .split("<td class=\"p_other\">")
        .skip(1)
        .filter_map(|cell| cell.split('%').next()?.parse().ok())
        .collect();
    assert!(!shown.is_empty(), "{queue}");
    assert!(shown.windows(2).all(|w| w[0] >= w[1]), "{shown:?}");
    b.goto("/console/findings?severity=critical").await;
    shot(&b.c, "07-findings").await;
    b.c.find(Locator::LinkText("本人情報の不一致"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for("#reason_dismiss").await;
    let page = b.page().await;
    assert!(page.contains("登録内容と住民基本台帳の比較"));
    // What the run stored is shown: both values, both keys and the verdict.
    assert!(page.contains("山田　花子") && page.contains("山田花子") && page.contains("相違"));
    assert!(page.contains("tr class=\"diff\""));
    // The evidence behind the severity: the probability and each item's weight.
    assert!(page.contains("id=\"p_other_person\""), "{page}");
    assert!(page.contains("事前確率") && page.contains("氏名: ") && page.contains("生年月日: "));
    shot(&b.c, "08-finding").await;
    b.type_into("#reason_dismiss", "旧姓で登録、同一人物と確認")
        .await;
    b.click("#do_dismiss").await;
    b.c.wait()
        .for_element(Locator::XPath("//dd[contains(., '理由付き疑いなし')]"))
        .await
        .unwrap();
    assert!(b.page().await.contains("旧姓で登録、同一人物と確認"));
    // Correct the linkage's number from the finding page: the number is typed, never shown.
    let right = my_number(61_000_000_004);
    b.type_into("#l_number", &right).await;
    b.type_into("#l_correct", "住基照会で正しい番号を確認")
        .await;
    b.click("form[action*='/correct'] button").await;
    b.wait_for("span.badge.revoked").await;
    assert!(
        !b.page().await.contains(&right),
        "the number must not be shown"
    );
    assert!(b
        .app
        .access_log()
        .iter()
        .any(|e| e.action == "linkage_correct"
            && e.subject.as_deref() == Some(format!("person:{}", b.person).as_str())
            && !e.request.to_string().contains(&right)));
    let _ = b.linkage;
    b.finish().await;
}

#[actix_web::test]
async fn browser_reviewer_works_the_queue_in_pages_and_in_bulk() {
    let b = Browser::start().await;
    let medium = crate::findings::seed_many(&b.app, 0, 120, "medium");
    b.sign_in(Role::Auditor).await;
    b.goto("/console/findings?status=open").await;
    b.wait_for("#total").await;
    let total =
        b.c.find(Locator::Css("#total"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(total.contains("121"), "{total}");
    shot(&b.c, "11-queue").await;
    // A hundred a page; the next page continues where this one ended.
    let ids = |page: &str| -> Vec<String> {
        page.split("name=\"pick_")
            .skip(1)
            .filter_map(|s| s.split('"').next().map(str::to_owned))
            .collect()
    };
    let first = ids(&b.page().await);
    assert_eq!(first.len(), 100);
    b.click("#next_page").await;
    b.wait_for_text("続きのページ").await;
    let second = ids(&b.page().await);
    assert_eq!(second.len(), 21);
    assert!(second.iter().all(|id| !first.contains(id)));

    // Tick two, dismiss them together through the preview, then undo.
    b.goto("/console/findings?status=open&severity=medium")
        .await;
    b.wait_for("#total").await;
    for id in &medium[..2] {
        b.click(&format!("input[name='pick_{id}']")).await;
    }
    b.type_into("#bulk_reason", "事業所に確認済み（一括）")
        .await;
    b.click("#bulk_preview").await;
    b.wait_for("#preview_counts").await;
    let preview = b.page().await;
    assert!(
        preview.contains("未対応 <strong>2</strong> 件"),
        "{preview}"
    );
    shot(&b.c, "12-bulk-preview").await;
    b.click("#bulk_confirm").await;
    b.wait_for("#bulk_actions").await;
    assert!(b.page().await.contains("事業所に確認済み（一括）"));
    shot(&b.c, "13-bulk-today").await;
    b.click("button[id^='undo_']").await;
    b.wait_for_text("取り消し済み").await;
    let mut conn = b.app.conn();
    for id in &medium[..2] {
        let f = shikaku_db::findings::get(&mut conn, *id).unwrap();
        assert_eq!(f.status, shikaku_domain::FindingStatus::Open);
    }

    // The whole open queue holds the critical finding: the preview refuses.
    b.goto("/console/findings?status=open").await;
    b.wait_for("#total").await;
    b.click("input[name='scope'][value='filter']").await;
    b.type_into("#bulk_reason", "まとめて確認").await;
    b.click("#bulk_preview").await;
    b.wait_for("#refused").await;
    assert!(b.page().await.contains("一件ずつ"));
    assert!(b.c.find(Locator::Css("#bulk_confirm")).await.is_err());

    // Three of the medium ones to this auditor; "my queue" shows them.
    b.goto("/console/findings?status=open&severity=medium&sort=first_seen")
        .await;
    b.wait_for("#total").await;
    b.click("input[name='scope'][value='filter']").await;
    b.type_into("#reviewers", "test-auditor").await;
    b.type_into("#each", "3").await;
    b.click("#assign").await;
    b.wait_for_text("test-auditor</td>").await;
    b.click("#my_queue").await;
    b.wait_for_text("該当 <strong>3</strong> 件").await;
    let mine = ids(&b.page().await);
    let expected: Vec<String> = medium[..3].iter().map(ToString::to_string).collect();
    assert_eq!(mine, expected);

    // The filtered queue as CSV, with a reason, from the same form.
    let csv =
        b.c.execute_async(
            "const done = arguments[arguments.length - 1];
             const form = new FormData(document.querySelector('#bulk'));
             form.set('export_reason', '総点検の報告用');
             fetch('/console/findings/export', { method: 'POST', body: new URLSearchParams(form) })
               .then(async r => done([r.status, await r.text()]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(csv[0], 200, "{csv}");
    let text = csv[1].as_str().unwrap();
    assert!(text.starts_with("finding_id,kind,severity"), "{text}");
    assert_eq!(text.lines().count(), 4, "header and my three: {text}");
    assert!(b
        .app
        .access_log()
        .iter()
        .any(|e| e.action == "export_findings" && e.reason.as_deref() == Some("総点検の報告用")));

    // The report.
    b.click("#report_link").await;
    b.wait_for("#inspection").await;
    let report = b.page().await;
    assert!(report.contains("<td>121</td>"), "{report}");
    shot(&b.c, "14-report").await;
    b.finish().await;
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
