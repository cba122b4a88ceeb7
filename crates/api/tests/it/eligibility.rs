//! Validity codes on dated histories, the fields of an answer, batches and the rate limit.

use serde_json::json;
use shikaku_db::tokens::Role;

use crate::*;

fn q(
    insurer: &str,
    symbol: &str,
    number: &str,
    branch: Option<&str>,
    birth: &str,
    on: &str,
) -> serde_json::Value {
    let mut v =
        json!({ "insurer_number": insurer, "number": number, "birth_date": birth, "on": on });
    if !symbol.is_empty() {
        v["symbol"] = json!(symbol);
    }
    if let Some(b) = branch {
        v["branch"] = json!(b);
    }
    v
}

async fn validity(app: &TestApp, body: serde_json::Value) -> (u64, serde_json::Value) {
    let r = app
        .post(Some(Role::Provider), "/v1/eligibility", body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    (r.json["validity"].as_u64().unwrap(), r.json)
}

#[actix_web::test]
async fn validity_codes_on_dated_histories() {
    let app = TestApp::new();
    // Insured 2020-04-01 .. lost 2024-04-01, re-enrolled under the same key 2025-01-01.
    let re = app.person(
        KUMIAI,
        "1001",
        "77",
        "00",
        "1980-05-05",
        "シケン タロウ",
        &[("2020-04-01", Some("2024-04-01")), ("2025-01-01", None)],
    );
    // Lost for good.
    app.person(
        KUMIAI,
        "1001",
        "78",
        "00",
        "1975-01-01",
        "シケン ハナコ",
        &[("2010-04-01", Some("2023-10-01"))],
    );
    let k = |n, on| {
        q(
            KUMIAI,
            "1001",
            n,
            Some("00"),
            if n == "77" {
                "1980-05-05"
            } else {
                "1975-01-01"
            },
            on,
        )
    };

    // Past: insured then.
    let (v, a) = validity(&app, k("77", "2021-06-01")).await;
    assert_eq!(v, 1);
    assert_eq!(a["person"]["person_id"], re);
    assert_eq!(a["person"]["acquired_on"], "2020-04-01");
    // The loss date is the first day without cover; the day before is still valid.
    assert_eq!(validity(&app, k("77", "2024-03-31")).await.0, 1);
    // Between the periods: invalid, and a newer qualification exists under the key.
    let (v, a) = validity(&app, k("77", "2024-06-01")).await;
    assert_eq!(v, 3);
    assert_eq!(a["person"]["lost_on"], "2024-04-01");
    assert_eq!(a["person"]["loss_reason"], "03");
    // Current.
    let (v, a) = validity(&app, k("77", "2026-11-01")).await;
    assert_eq!(v, 1);
    assert_eq!(a["person"]["acquired_on"], "2025-01-01");
    assert!(a["person"]["lost_on"].is_null());
    // Lost, nothing newer.
    let (v, a) = validity(&app, k("78", "2026-11-01")).await;
    assert_eq!(v, 2);
    assert_eq!(a["person"]["lost_on"], "2023-10-01");
    // Before the first period: invalid.
    assert_eq!(validity(&app, k("78", "2009-01-01")).await.0, 2);
}

#[actix_web::test]
async fn re_enrolled_under_a_new_key_with_the_same_number_answers_3() {
    let app = TestApp::new();
    let old = app.person(
        KUMIAI,
        "2001",
        "5",
        "00",
        "1990-02-02",
        "アイダ ケン",
        &[("2015-04-01", Some("2025-04-01"))],
    );
    let new = app.person(
        KYOKAI,
        "3001",
        "9",
        "00",
        "1990-02-02",
        "アイダ ケン",
        &[("2025-04-01", None)],
    );
    let n = my_number(12_345_678_901);
    app.link(old, &n);
    app.link(new, &n);
    let (v, a) = validity(
        &app,
        q(KUMIAI, "2001", "5", Some("00"), "1990-02-02", "2026-01-10"),
    )
    .await;
    assert_eq!(v, 3, "{a}");
    // The answer is about the queried key, not the new insurer's.
    assert_eq!(a["person"]["insurer_number"], KUMIAI);
    // Without the other linkage it would be 2: revoke it and ask again.
    let mut conn = app.conn();
    diesel::sql_query("UPDATE linkages SET status = 'revoked' WHERE person_id = $1")
        .bind::<diesel::sql_types::BigInt, _>(new)
        .execute(&mut conn)
        .unwrap();
    assert_eq!(
        validity(
            &app,
            q(KUMIAI, "2001", "5", Some("00"), "1990-02-02", "2026-01-10")
        )
        .await
        .0,
        2
    );
}

#[actix_web::test]
async fn wrong_birth_date_and_several_matches() {
    let app = TestApp::new();
    // Twins under one 記号・番号, 枝番 01 and 02, same birth date.
    app.person(
        KUMIAI,
        "4001",
        "12",
        "01",
        "2015-07-07",
        "フタゴ イチ",
        &[("2015-08-01", None)],
    );
    app.person(
        KUMIAI,
        "4001",
        "12",
        "02",
        "2015-07-07",
        "フタゴ ニ",
        &[("2015-08-01", None)],
    );
    // A wrong birth date answers 4 and reveals nothing.
    let (v, a) = validity(
        &app,
        q(KUMIAI, "4001", "12", Some("01"), "2015-07-08", "2026-01-01"),
    )
    .await;
    assert_eq!(v, 4);
    assert!(a.get("person").is_none(), "{a}");
    // Without 枝番 both match: 5, nothing revealed.
    let (v, a) = validity(
        &app,
        q(KUMIAI, "4001", "12", None, "2015-07-07", "2026-01-01"),
    )
    .await;
    assert_eq!(v, 5);
    assert!(a.get("person").is_none());
    // With 枝番: exactly one.
    let (v, a) = validity(
        &app,
        q(KUMIAI, "4001", "12", Some("02"), "2015-07-07", "2026-01-01"),
    )
    .await;
    assert_eq!(v, 1);
    assert_eq!(a["person"]["branch"], "02");
    assert_eq!(a["person"]["relationship"], 2);
    // Unknown key.
    assert_eq!(
        validity(
            &app,
            q(KUMIAI, "4001", "99", None, "2015-07-07", "2026-01-01")
        )
        .await
        .0,
        4
    );
}

#[actix_web::test]
async fn twins_without_branch_are_told_apart_by_kana() {
    let app = TestApp::new();
    // Twins under one 記号・番号 and birth date; the card the clinic holds has no 枝番.
    let taro = app.person(
        KUMIAI,
        "4002",
        "21",
        "01",
        "2016-03-03",
        "ヤマダ　タロウ",
        &[("2016-04-01", None)],
    );
    let jiro = app.person(
        KUMIAI,
        "4002",
        "21",
        "02",
        "2016-03-03",
        "ヤマダ　ジロウ",
        &[("2016-04-01", None)],
    );
    let ask = |kana: Option<&str>| {
        let mut body = q(KUMIAI, "4002", "21", None, "2016-03-03", "2026-01-01");
        if let Some(k) = kana {
            body["kana"] = json!(k);
        }
        body
    };
    // Without kana: several matches, nothing revealed.
    let (v, a) = validity(&app, ask(None)).await;
    assert_eq!(v, 5);
    assert!(
        a.get("person").is_none() && a.get("online_viewing").is_none(),
        "{a}"
    );
    // With kana, in whatever width, script or spacing the clinic's system has: the right twin.
    for (kana, want) in [
        ("ヤマダ　ジロウ", jiro),
        ("ﾔﾏﾀﾞ ｼﾞﾛｳ", jiro),
        ("やまだたろう", taro),
        ("ヤマダ タロウ", taro),
    ] {
        let (v, a) = validity(&app, ask(Some(kana))).await;
        assert_eq!(v, 1, "{kana}: {a}");
        assert_eq!(a["person"]["person_id"], want, "{kana}");
        assert_eq!(a["online_viewing"]["blocked"], false);
    }
    // A kana neither twin has: no match, nothing revealed.
    let (v, a) = validity(&app, ask(Some("スズキ　ハナコ"))).await;
    assert_eq!(v, 4);
    assert!(a.get("person").is_none(), "{a}");
    // Not kana at all: refused, naming the field.
    let r = app
        .post(
            Some(Role::Provider),
            "/v1/eligibility",
            ask(Some("山田次郎")),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.json["message"].as_str().unwrap().starts_with("kana:"),
        "{}",
        r.text
    );
    // With the 枝番, the kana is not needed and a different one does not undo the match.
    let mut body = q(KUMIAI, "4002", "21", Some("02"), "2016-03-03", "2026-01-01");
    body["kana"] = json!("ヤマダ　タロウ");
    let (v, a) = validity(&app, body).await;
    assert_eq!((v, a["person"]["person_id"].as_i64()), (1, Some(jiro)));
    // The kana asked is in the access log with the answer.
    let logged = app
        .access_log()
        .into_iter()
        .filter(|e| e.action == "eligibility" && e.request.get("kana").is_some())
        .count();
    assert_eq!(logged, 6);
}

#[actix_web::test]
async fn answer_carries_the_fields_a_clinic_receives() {
    let app = TestApp::new();
    // Born 2020-06-15: preschool (20%) until 2027-03-31.
    app.person(
        KYOKAI,
        "1234567",
        "8",
        "00",
        "2020-06-15",
        "やまだ　はなこ",
        &[("2020-07-01", None)],
    );
    let (v, a) = validity(
        &app,
        q(
            KYOKAI,
            "1234567",
            "8",
            Some("00"),
            "2020-06-15",
            "2026-11-25",
        ),
    )
    .await;
    assert_eq!(v, 1);
    let p = &a["person"];
    assert_eq!(p["insurer_name"], "全国健康保険協会東京支部");
    assert_eq!(p["symbol"], "1234567");
    assert_eq!(p["number"], "8");
    assert_eq!(p["kana"], "ヤマダ　ハナコ");
    assert_eq!(p["kana_half_width"], "ﾔﾏﾀﾞ ﾊﾅｺ");
    assert_eq!(p["copay_code"], "020");
    assert_eq!(p["copay_percent"], 20);
    assert_eq!(p["preschool"], true);
    assert_eq!(p["sex"], 1);
    assert_eq!(p["birth_date"], "2020-06-15");
    assert!(p["certificate"].is_null());
    // From 1 April after the 6th birthday: 30%, no longer preschool.
    let (_, a) = validity(
        &app,
        q(
            KYOKAI,
            "1234567",
            "8",
            Some("00"),
            "2020-06-15",
            "2027-04-01",
        ),
    )
    .await;
    assert_eq!(a["person"]["copay_code"], "030");
    assert_eq!(a["person"]["preschool"], false);
    // 国保 6-digit numbers are accepted and padded.
    let r = app
        .post(
            Some(Role::Provider),
            "/v1/eligibility",
            q("132241", "", "1", None, "2000-01-01", "2026-01-01"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["validity"], 4);
}

#[actix_web::test]
async fn koki_members_have_no_relationship() {
    let app = TestApp::new();
    app.person(
        KOKI,
        "",
        "10007919",
        "",
        "1940-08-06",
        "ハシモト オサム",
        &[("2015-08-06", None)],
    );
    let (v, a) = validity(
        &app,
        q(KOKI, "", "10007919", None, "1940-08-06", "2026-11-25"),
    )
    .await;
    assert_eq!(v, 1);
    assert!(a["person"]["relationship"].is_null());
    assert!(a["person"]["symbol"].is_null());
    assert!(a["person"]["branch"].is_null());
    assert_eq!(a["person"]["copay_code"], "010");
}

#[actix_web::test]
async fn batch_answers_in_order_and_refuses_over_1000() {
    let app = TestApp::with(|c| c.rate_burst = 5000);
    app.person(
        KUMIAI,
        "5001",
        "1",
        "00",
        "1970-01-01",
        "バッチ イチ",
        &[("2000-01-01", None)],
    );
    app.person(
        KUMIAI,
        "5001",
        "2",
        "00",
        "1970-01-02",
        "バッチ ニ",
        &[("2000-01-01", Some("2020-01-01"))],
    );
    let queries = vec![
        q(KUMIAI, "5001", "2", Some("00"), "1970-01-02", "2026-01-01"),
        q(KUMIAI, "5001", "9", Some("00"), "1970-01-02", "2026-01-01"),
        q(KUMIAI, "5001", "1", Some("00"), "1970-01-01", "2026-01-01"),
    ];
    let r = app
        .post(
            Some(Role::Provider),
            "/v1/eligibility/batch",
            json!({ "queries": queries }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let codes: Vec<u64> = r.json["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["validity"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [2, 4, 1]);
    // Every answer is logged.
    let log = app.access_log();
    assert_eq!(log.iter().filter(|e| e.action == "eligibility").count(), 3);

    let many = vec![q(KUMIAI, "5001", "1", None, "1970-01-01", "2026-01-01"); 1001];
    let r = app
        .post(
            Some(Role::Provider),
            "/v1/eligibility/batch",
            json!({ "queries": many }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // A bad query names its index and field, and nothing is answered.
    let bad = vec![
        q(KUMIAI, "5001", "1", None, "1970-01-01", "2026-01-01"),
        q("12345678", "5001", "1", None, "1970-01-01", "2026-01-01"),
    ];
    let r = app
        .post(
            Some(Role::Provider),
            "/v1/eligibility/batch",
            json!({ "queries": bad }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .starts_with("queries[1].insurer_number"),
        "{}",
        r.text
    );
    let full = vec![q(KUMIAI, "5001", "1", None, "1970-01-01", "2026-01-01"); 1000];
    let r = app
        .post(
            Some(Role::Provider),
            "/v1/eligibility/batch",
            json!({ "queries": full }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["answers"].as_array().unwrap().len(), 1000);
}

#[actix_web::test]
async fn rate_limit_per_token() {
    let app = TestApp::with(|c| {
        c.rate_per_second = 1;
        c.rate_burst = 3;
    });
    app.person(
        KUMIAI,
        "6001",
        "1",
        "00",
        "1970-01-01",
        "レート",
        &[("2000-01-01", None)],
    );
    let body = q(KUMIAI, "6001", "1", Some("00"), "1970-01-01", "2026-01-01");
    for _ in 0..3 {
        assert_eq!(
            app.post(Some(Role::Provider), "/v1/eligibility", body.clone())
                .await
                .status,
            StatusCode::OK
        );
    }
    let r = app
        .post(Some(Role::Provider), "/v1/eligibility", body.clone())
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.json["error"], "rate_limited");
    // Another token has its own budget.
    assert_eq!(
        app.post(Some(Role::Clerk), "/v1/eligibility", body)
            .await
            .status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn guessing_birth_dates_is_refused_after_ten_misses_a_day() {
    let app = TestApp::new();
    app.person(
        KUMIAI,
        "77",
        "5",
        "00",
        "1980-05-05",
        "ゲス",
        &[("2000-01-01", None)],
    );
    let body = |birth: &str, branch: Option<&str>| {
        let mut b = json!({ "insurer_number": KUMIAI, "symbol": "77", "number": "5",
                            "birth_date": birth, "on": "2026-06-01" });
        if let Some(br) = branch {
            b["branch"] = json!(br);
        }
        b
    };
    // Ten wrong birth dates (the 枝番 varied or left out: the card is what counts).
    for day in 1..=10 {
        let branch = [None, Some("00"), Some("01")][day % 3];
        let r = app
            .post(
                Some(Role::Provider),
                "/v1/eligibility",
                body(&format!("1980-01-{day:02}"), branch),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["validity"], 4);
    }
    // The eleventh is refused, even with the right date.
    let r = app
        .post(
            Some(Role::Provider),
            "/v1/eligibility",
            body("1980-05-05", Some("00")),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(r.json.get("person").is_none());
    // Another token has its own count.
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/eligibility",
            body("1980-05-05", Some("00")),
        )
        .await;
    assert_eq!(r.json["validity"], 1, "{}", r.text);
    // A batch of many dates for one card is refused whole, the right one among them: each
    // miss counts.
    let queries: Vec<_> = (1..=28)
        .map(|d| body(&format!("1980-05-{d:02}"), Some("00")))
        .collect();
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/eligibility/batch",
            json!({ "queries": queries }),
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(!r.text.contains("ゲス"));
    // Each refusal is a security event in the access log, and nothing was answered for it.
    let log = app.access_log();
    let refused: Vec<_> = log
        .iter()
        .filter(|e| e.action == "eligibility_guessing_refused")
        .collect();
    assert_eq!(refused.len(), 2);
    assert_eq!(refused[0].request["card"], format!("{KUMIAI}:77:5"));
    assert_eq!(refused[0].response["no_match_today"], 10);
    assert_eq!(log.iter().filter(|e| e.action == "eligibility").count(), 11);
}

#[actix_web::test]
async fn a_koki_member_of_66_keeps_the_stored_ten_percent() {
    let app = TestApp::new();
    // Admitted to 後期 at 65 by disability certification, registered at 10%.
    let p = app.person(
        KOKI,
        "",
        "20001",
        "",
        "1960-03-10",
        "コウキ ハナコ",
        &[("2025-03-10", None)],
    );
    let mut conn = app.conn();
    diesel::sql_query("UPDATE persons SET copay_rate = 10 WHERE id = $1")
        .bind::<diesel::sql_types::BigInt, _>(p)
        .execute(&mut conn)
        .unwrap();
    // At 66, on the day the 70–74 rate would start elsewhere (2030-04-01), and at 75.
    for on in ["2026-11-25", "2030-04-01", "2035-03-10"] {
        let (v, a) = validity(&app, q(KOKI, "", "20001", None, "1960-03-10", on)).await;
        assert_eq!(v, 1, "{on}");
        assert_eq!(a["person"]["copay_code"], "010", "{on}");
        assert_eq!(a["person"]["copay_percent"], 10, "{on}");
    }
}
