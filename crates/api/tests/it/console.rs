//! The web console in process: sessions, CSRF and roles. The flows in a real browser are in
//! [`crate::browser`].

use actix_web::test::TestRequest;
use shikaku_db::tokens::Role;

use crate::*;

/// Signs in through the form and returns the session cookie.
async fn sign_in(app: &TestApp, role: Role) -> String {
    let req = TestRequest::post()
        .uri("/console/login")
        .set_form([("token", app.token(role))]);
    let state = app.state.clone();
    let svc = actix_web::test::init_service(shikaku_api::app(state)).await;
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

/// The console's eligibility result page for the form `fields`, as a clerk sees it.
pub async fn eligibility_page(app: &TestApp, fields: &[(&str, &str)]) -> String {
    let clerk = sign_in(app, Role::Clerk).await;
    let form = app
        .send(
            TestRequest::get()
                .uri("/console/eligibility")
                .insert_header(("Cookie", clerk.clone())),
        )
        .await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.text.contains("name=\"kana\""), "{}", form.text);
    let csrf = csrf_of(&form.text);
    let mut body = vec![("csrf", csrf.as_str())];
    body.extend_from_slice(fields);
    let r = app
        .send(
            TestRequest::post()
                .uri("/console/eligibility")
                .insert_header(("Cookie", clerk))
                .set_form(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.text
}

/// [`eligibility_page`] for the blocking tests' member (記号 5001, born 1980-05-17).
pub async fn eligibility_page_for(app: &TestApp, number: &str) -> String {
    eligibility_page(
        app,
        &[
            ("insurer_number", KUMIAI),
            ("symbol", "5001"),
            ("number", number),
            ("branch", "00"),
            ("birth_date", "1980-05-17"),
            ("on", "2026-10-01"),
        ],
    )
    .await
}

#[actix_web::test]
async fn the_eligibility_screen_narrows_twins_by_kana() {
    let app = TestApp::new();
    for (branch, kana) in [("01", "ヤマダ　タロウ"), ("02", "ヤマダ　ジロウ")] {
        app.person(
            KUMIAI,
            "61",
            "2",
            branch,
            "2016-03-03",
            kana,
            &[("2016-04-01", None)],
        );
    }
    let key = [
        ("insurer_number", KUMIAI),
        ("number", "2"),
        ("symbol", "61"),
        ("birth_date", "2016-03-03"),
        ("on", "2026-01-01"),
    ];
    let page = eligibility_page(&app, &key).await;
    assert!(page.contains("5 複数該当"), "{page}");
    let mut with_kana = key.to_vec();
    with_kana.push(("kana", "やまだ じろう"));
    let page = eligibility_page(&app, &with_kana).await;
    assert!(page.contains("1 有効"), "{page}");
    assert!(page.contains("ヤマダ　ジロウ"), "{page}");
    assert!(page.contains("オンライン閲覧可"), "{page}");
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

#[actix_web::test]
async fn a_session_ends_after_its_absolute_lifetime_however_busy() {
    let app = TestApp::new();
    let busy = sign_in(&app, Role::Clerk).await;
    let get = |cookie: &str| {
        TestRequest::get()
            .uri("/console")
            .insert_header(("Cookie", cookie.to_string()))
    };
    assert_eq!(app.send(get(&busy)).await.status, StatusCode::OK);
    // Opened 13 hours ago, used a minute ago: over the 12-hour lifetime.
    diesel::sql_query(
        "UPDATE console_sessions SET created_at = now() - interval '13 hours',
                                    last_seen_at = now() - interval '1 minute'",
    )
    .execute(&mut app.conn())
    .unwrap();
    let r = app.send(get(&busy)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
}

#[actix_web::test]
async fn failed_sign_ins_are_logged_and_throttled_per_address() {
    let app = TestApp::with(|c| c.auth_failures_per_minute = 5);
    let attacker: std::net::SocketAddr = "192.0.2.66:40000".parse().unwrap();
    let clinic: std::net::SocketAddr = "198.51.100.7:40000".parse().unwrap();
    let attempt = |token: &str, peer| {
        TestRequest::post()
            .uri("/console/login")
            .peer_addr(peer)
            .set_form([("token", token.to_string())])
    };
    let mut statuses = Vec::new();
    for i in 0..8 {
        let guess = format!("shk_{i:0>43}");
        statuses.push(app.send(attempt(&guess, attacker)).await.status.as_u16());
    }
    // Five failures are allowed a minute; then the address waits, before any database query.
    assert_eq!(statuses[..5], [401; 5]);
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // Even the right token is refused from that address now, but not from another one.
    let good = app.token(Role::Clerk).to_string();
    let r = app.send(attempt(&good, attacker)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let r = app.send(attempt(&good, clinic)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    // Each failed sign-in is in the access log with its address; the throttling too.
    let log = app.access_log();
    let failed: Vec<_> = log
        .iter()
        .filter(|e| e.action == "sign_in_failed")
        .collect();
    assert_eq!(failed.len(), 5);
    assert_eq!(failed[0].request["address"], "192.0.2.66");
    assert!(!failed[0].request.to_string().contains("0000000000"));
    assert!(log.iter().any(|e| e.action == "auth_throttled"));
    assert!(log
        .iter()
        .any(|e| e.action == "sign_in" && e.actor == "test-clerk"));
}

#[actix_web::test]
async fn bad_bearer_tokens_cost_no_query_and_are_throttled() {
    let app = TestApp::with(|c| c.auth_failures_per_minute = 3);
    let peer: std::net::SocketAddr = "192.0.2.77:1234".parse().unwrap();
    let call = |token: &str| {
        TestRequest::get()
            .uri("/v1/findings")
            .peer_addr(peer)
            .insert_header(("Authorization", format!("Bearer {token}")))
    };
    // With the database gone, a malformed token is still a clean 401: no query was made.
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let name = app.db.name().to_string();
    diesel::PgConnection::establish(&std::env::var("DATABASE_URL").unwrap())
        .unwrap()
        .batch_execute(&format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        ))
        .unwrap();
    for bad in ["x", "shk_short", &"shk_".repeat(20)] {
        assert_eq!(
            app.send(call(bad)).await.status,
            StatusCode::UNAUTHORIZED,
            "{bad}"
        );
    }
    // Three failures spent the quota: the address waits.
    let r = app.send(call("shk_again")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
}

/// A multipart/form-data body of `fields` (name, file name, content).
fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "shikakuTestBoundary7MA4YWxk";
    let mut body = Vec::new();
    for (name, file, content) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[actix_web::test]
async fn uploads_wait_sealed_and_go_once_applied_or_refused() {
    let app = TestApp::with(|c| c.upload_limit = 64 * 1024);
    let person = app.person(
        KUMIAI,
        "90",
        "1",
        "00",
        "1970-01-01",
        "アップ",
        &[("2000-01-01", None)],
    );
    let _ = person;
    let admin = sign_in(&app, Role::Admin).await;
    let page = app
        .send(
            TestRequest::get()
                .uri("/console/imports")
                .insert_header(("Cookie", admin.clone())),
        )
        .await;
    let csrf = csrf_of(&page.text);
    let number = my_number(90_000_000_001);
    let header = "insurer_number,symbol,number,branch,my_number,source,linked_on";
    let upload = |csv: String| {
        let (ct, body) = multipart(&[
            ("csrf", None, csrf.as_bytes()),
            ("kind", None, b"linkages"),
            ("file", Some("linkages.csv"), csv.as_bytes()),
        ]);
        TestRequest::post()
            .uri("/console/imports")
            .insert_header(("Cookie", admin.clone()))
            .insert_header(("content-type", ct))
            .set_payload(body)
    };
    let store = &app.state.uploads;
    // A file with an error: reported, and not kept a moment longer.
    let bad = format!("{header}\n{KUMIAI},90,1,00,{number},employer,2020-13-01\n");
    let r = app.send(upload(bad)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("linked_on"), "{}", r.text);
    assert_eq!(store.files(), 0);
    // A good file waits for its apply, sealed: the number is nowhere on disk.
    let good = format!("{header}\n{KUMIAI},90,1,00,{number},employer,2020-05-01\n");
    let r = app.send(upload(good)).await;
    assert!(r.text.contains("i_apply"), "{}", r.text);
    assert_eq!(store.files(), 1);
    for entry in std::fs::read_dir(store.dir()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(12).any(|w| w == number.as_bytes()));
    }
    let at = r.text.find("name=\"id\" value=\"").unwrap() + 17;
    let id = r.text[at..at + 32].to_string();
    let r = app
        .send(
            TestRequest::post()
                .uri("/console/imports/apply")
                .insert_header(("Cookie", admin.clone()))
                .set_form([
                    ("csrf", csrf.as_str()),
                    ("id", id.as_str()),
                    ("kind", "linkages"),
                    ("file_name", "linkages.csv"),
                ]),
        )
        .await;
    assert!(r.text.contains("登録しました"), "{}", r.text);
    assert_eq!(store.files(), 0);
    // Applying again finds nothing.
    let again = app
        .send(
            TestRequest::post()
                .uri("/console/imports/apply")
                .insert_header(("Cookie", admin.clone()))
                .set_form([
                    ("csrf", csrf.as_str()),
                    ("id", id.as_str()),
                    ("kind", "linkages"),
                ]),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.text);
    // Over the upload limit: refused before anything is kept.
    let huge = format!("{header}\n{}", "x\n".repeat(40 * 1024));
    let r = app.send(upload(huge)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(store.files(), 0);
    // A file of thousands of bad lines: the report counts what it does not show.
    let many = format!(
        "{header}\n{}",
        format!("{KUMIAI},90,1,00,x,employer,2020-05-01\n").repeat(900)
    );
    let r = app.send(upload(many)).await;
    assert!(
        r.text.contains("ほか 400 件"),
        "{}",
        &r.text[..r.text.len().min(2000)]
    );
    assert_eq!(store.files(), 0);
}

#[actix_web::test]
async fn certificate_facts_are_edited_on_the_person_page_with_history() {
    let app = TestApp::new();
    let p = app.person(
        KUMIAI,
        "61",
        "1",
        "00",
        "1990-09-09",
        "ザイリュウ",
        &[("2020-04-01", None)],
    );
    let clerk = sign_in(&app, Role::Clerk).await;
    let page = app
        .send(
            TestRequest::get()
                .uri(&format!("/console/persons/{p}"))
                .insert_header(("Cookie", clerk.clone())),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("交付に関わる情報"), "{}", page.text);
    let csrf = csrf_of(&page.text);
    let post = |fields: Vec<(&'static str, String)>| {
        let clerk = clerk.clone();
        let app = &app;
        async move {
            app.send(
                TestRequest::post()
                    .uri(&format!("/console/persons/{p}/certificate-facts"))
                    .insert_header(("Cookie", clerk))
                    .set_form(fields),
            )
            .await
        }
    };
    // A bad date is refused with the field named; nothing is stored.
    let r = post(vec![
        ("csrf", csrf.clone()),
        ("residence_until", "2027-02-30".into()),
    ])
    .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert!(r.text.contains("在留期間の満了日"), "{}", r.text);
    let r = post(vec![
        ("csrf", csrf.clone()),
        ("residence_until", "2028-06-30".into()),
        ("certificate_requested", "1".into()),
    ])
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let mut conn = app.conn();
    let stored = shikaku_db::persons::get(&mut conn, p).unwrap().record;
    assert_eq!(
        (stored.residence_until, stored.certificate_requested),
        (Some(d("2028-06-30")), true)
    );
    let history = shikaku_db::persons::history(&mut conn, p).unwrap();
    assert_eq!(
        history.last().unwrap().changes["residence_until"]["new"],
        "2028-06-30"
    );
    assert!(app.access_log().iter().any(|e| e.action == "person_update"));
    // An auditor sees the facts but gets no form.
    let auditor = sign_in(&app, Role::Auditor).await;
    let page = app
        .send(
            TestRequest::get()
                .uri(&format!("/console/persons/{p}"))
                .insert_header(("Cookie", auditor)),
        )
        .await;
    assert!(page.text.contains("2028-06-30") && !page.text.contains("certificate-facts"));
}

#[actix_web::test]
async fn a_correction_refused_on_the_five_items_names_them_and_offers_the_reason_field() {
    let app = TestApp::new();
    let p = app.person(
        KUMIAI,
        "61",
        "1",
        "00",
        "1980-01-01",
        "ヤマダ　タロウ",
        &[("2020-04-01", None)],
    );
    let wrong = my_number(61_000_000_001);
    let other = my_number(61_000_000_002);
    let id = app.link(p, &wrong);
    // The register knows `other` as another human: same kana and birth date, another kanji
    // name, born female.
    crate::linkages::register_extract(
        &app,
        &[format!(
            "{other},試験　花子,ヤマダ　タロウ,1980-01-01,2,,active"
        )],
    );
    let auditor = sign_in(&app, Role::Auditor).await;
    let home = app
        .send(
            TestRequest::get()
                .uri("/console")
                .insert_header(("Cookie", auditor.clone())),
        )
        .await;
    let csrf = csrf_of(&home.text);
    let correct = |no_error: &'static str| {
        TestRequest::post()
            .uri(&format!("/console/linkages/{id}/correct"))
            .insert_header(("Cookie", auditor.clone()))
            .set_form([
                ("csrf", csrf.as_str()),
                ("reason", "番号の取り違え"),
                ("my_number", other.as_str()),
                ("no_error_reason", no_error),
            ])
    };
    let r = app.send(correct("")).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("漢字氏名、性別"), "{}", r.text);
    assert!(r.text.contains("理由付き疑いなし"), "{}", r.text);
    assert!(r.text.contains("name=\"no_error_reason\""), "{}", r.text);
    // The reason typed is offered again; the number never is, nor the register's values.
    assert!(r.text.contains("番号の取り違え"), "{}", r.text);
    // (The session's CSRF token is hex: taken out so that it cannot hold the digits by chance.)
    let page = r.text.replace(&csrf, "");
    for secret in [other.as_str(), &other[8..], "花子"] {
        assert!(!page.contains(secret), "{secret} in the page");
    }
    let r = app
        .get(Some(Role::Auditor), &format!("/v1/linkages/{id}"))
        .await;
    assert_eq!(r.json["status"], "active", "nothing changed");

    let r = app.send(correct("同一人物（性別変更の届出を確認）")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let r = app
        .get(Some(Role::Auditor), &format!("/v1/persons/{p}"))
        .await;
    let linkages = r.json["linkages"].as_array().unwrap();
    assert_eq!(linkages.len(), 2, "{}", r.text);
    let new = linkages.iter().find(|l| l["status"] == "active").unwrap();
    assert_eq!(new["identity_confirmed"], false);
    assert_eq!(new["mn_last4"], &other[8..]);
    let refused = app
        .access_log()
        .into_iter()
        .find(|e| e.action == "linkage_correct_refused")
        .expect("the refusal is logged");
    assert_eq!(
        refused.response["identity_mismatch"],
        serde_json::json!(["name_kanji", "sex"])
    );
}

#[actix_web::test]
async fn benefits_are_added_ended_and_corrected_on_the_person_page() {
    let app = TestApp::new();
    let p = app.person(
        KUMIAI,
        "62",
        "1",
        "00",
        "1953-06-10",
        "キュウフ",
        &[("2000-04-01", None)],
    );
    let clerk = sign_in(&app, Role::Clerk).await;
    let page = |cookie: String| {
        let app = &app;
        async move {
            app.send(
                TestRequest::get()
                    .uri(&format!("/console/persons/{p}"))
                    .insert_header(("Cookie", cookie)),
            )
            .await
        }
    };
    let first = page(clerk.clone()).await;
    assert!(first.text.contains("給付の記録"), "{}", first.text);
    assert!(first.text.contains("id=\"benefit_add\""), "{}", first.text);
    let csrf = csrf_of(&first.text);
    let post = |uri: String, fields: Vec<(&'static str, String)>| {
        let clerk = clerk.clone();
        let app = &app;
        async move {
            app.send(
                TestRequest::post()
                    .uri(&uri)
                    .insert_header(("Cookie", clerk))
                    .set_form(fields),
            )
            .await
        }
    };
    let record = |value: &str, from: &str, reason: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("kind", "copay".into()),
            ("value", value.into()),
            ("disease", String::new()),
            ("valid_from", from.into()),
            ("valid_until", String::new()),
            ("reason", reason.into()),
        ]
    };
    // A value that does not fit the kind is refused, naming it; nothing is stored.
    let r = post(
        format!("/console/persons/{p}/benefits"),
        record("25", "2025-08-01", "所得判定"),
    )
    .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    let r = post(
        format!("/console/persons/{p}/benefits"),
        record("30", "2025-08-01", "所得判定"),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let id = shikaku_db::benefits::of_person(&mut app.conn(), p).unwrap()[0].id;
    let r = post(
        format!("/console/benefits/{id}/end"),
        vec![
            ("csrf", csrf.clone()),
            ("valid_until", "2026-07-31".into()),
            ("reason", "年度末".into()),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let mut fix = record("20", "2025-08-01", "誤登録の訂正");
    fix[5] = ("valid_until", "2026-07-31".into());
    let r = post(format!("/console/benefits/{id}/correct"), fix).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let shown = page(clerk.clone()).await;
    assert!(shown.text.contains("2割"), "{}", shown.text);
    assert!(
        shown.text.contains("誤登録の訂正"),
        "the history shows the reason"
    );
    let actions: Vec<String> = app.access_log().iter().map(|e| e.action.clone()).collect();
    for a in ["benefit_add", "benefit_end", "benefit_correct"] {
        assert!(actions.iter().any(|x| x == a), "{a} not in {actions:?}");
    }
    // An auditor sees the records but gets no forms.
    let auditor = sign_in(&app, Role::Auditor).await;
    let seen = page(auditor).await;
    assert!(seen.text.contains("2割") && !seen.text.contains("id=\"benefit_add\""));
}

#[actix_web::test]
async fn the_eligibility_screen_shows_both_answers_with_consent() {
    let app = TestApp::new();
    let p = app.person(
        KUMIAI,
        "63",
        "1",
        "00",
        "1980-01-01",
        "ドウイ",
        &[("2000-04-01", None)],
    );
    let input = shikaku_db::benefits::BenefitInput {
        kind: shikaku_domain::benefit::BenefitKind::Limit,
        value: "A03".into(),
        disease: None,
        valid_from: d("2026-01-01"),
        valid_until: None,
    };
    shikaku_db::benefits::add(&mut app.conn(), p, &input, "t", "申請", d("2026-12-01")).unwrap();
    let base = [
        ("insurer_number", KUMIAI),
        ("symbol", "63"),
        ("number", "1"),
        ("branch", "00"),
        ("birth_date", "1980-01-01"),
        ("on", "2026-11-20"),
    ];
    let without = eligibility_page(&app, &base).await;
    assert!(without.contains("同意なし: 表示されません"), "{without}");
    assert!(!without.contains("A03"), "{without}");
    let mut fields = base.to_vec();
    fields.push(("limit_consent", "on"));
    let with = eligibility_page(&app, &fields).await;
    assert!(with.contains("id=\"with_consent\""), "{with}");
    assert!(with.contains("id=\"without_consent\""), "{with}");
    let (a, b) = with.split_once("id=\"without_consent\"").unwrap();
    assert!(
        a.contains("A03") && !b.split("</pre>").next().unwrap().contains("A03"),
        "{with}"
    );
}
