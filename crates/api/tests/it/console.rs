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
