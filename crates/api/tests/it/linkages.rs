//! Linkages over HTTP: registering (check digit, duplicates, forcing with a reason), the
//! review actions, and the admin-only reveal. No response or log entry carries a whole number
//! except the reveal's response.

use serde_json::json;
use shikaku_db::tokens::Role;

use crate::*;

#[actix_web::test]
async fn register_refuses_bad_and_duplicate_numbers() {
    let app = TestApp::new();
    let a = app.person(
        KUMIAI,
        "8",
        "1",
        "00",
        "1980-01-01",
        "エー",
        &[("2000-01-01", None)],
    );
    let b = app.person(
        KUMIAI,
        "8",
        "2",
        "00",
        "1981-01-01",
        "ビー",
        &[("2000-01-01", None)],
    );
    let n = my_number(80_000_000_001);
    let wrong = format!("{}{}", &n[..11], (n.as_bytes()[11] - b'0' + 1) % 10);

    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/persons/{a}/linkages"),
            json!({ "my_number": wrong, "source": "applicant" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.json["message"].as_str().unwrap().contains("my_number"));
    assert!(
        !r.text.contains(&wrong[..8]),
        "the number must not be echoed: {}",
        r.text
    );

    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/persons/{a}/linkages"),
            json!({ "my_number": n, "source": "applicant" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["my_number_last4"], &n[8..]);
    assert_eq!(r.json["source"], "applicant");
    assert!(!r.text.contains(&n), "{}", r.text);
    let first = r.json["id"].as_i64().unwrap();

    // The same number for another person: refused unless forced with a reason.
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/persons/{b}/linkages"),
            json!({ "my_number": n, "source": "employer" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = app.post(Some(Role::Clerk), &format!("/v1/persons/{b}/linkages"), json!({ "my_number": n, "source": "employer", "force_reason": "住基で同一人物と確認（二重資格）" })).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Twice for the same person: conflict.
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/persons/{a}/linkages"),
            json!({ "my_number": n, "source": "applicant" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Unknown source and unknown person.
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/persons/{a}/linkages"),
            json!({ "my_number": my_number(80_000_000_002), "source": "fax" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            Some(Role::Clerk),
            "/v1/persons/999999/linkages",
            json!({ "my_number": my_number(80_000_000_003), "source": "jlis" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = app
        .get(Some(Role::Auditor), &format!("/v1/linkages/{first}"))
        .await;
    assert_eq!(r.json["status"], "active");
    // No log entry holds the number.
    for e in app.access_log() {
        let s = format!("{} {} {:?}", e.request, e.response, e.reason);
        assert!(!s.contains(&n) && !s.contains(&wrong), "{s}");
    }
}

#[actix_web::test]
async fn suspend_confirm_correct_and_reveal() {
    let app = TestApp::new();
    let p = app.person(
        KUMIAI,
        "9",
        "1",
        "00",
        "1980-01-01",
        "シー",
        &[("2000-01-01", None)],
    );
    let n = my_number(90_000_000_001);
    let id = app.link(p, &n);

    let r = app
        .post(
            Some(Role::Auditor),
            &format!("/v1/linkages/{id}/suspend"),
            json!({ "reason": "氏名不一致の疑い" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "suspended");
    // A suspended linkage shows as such wherever it is read.
    let r = app
        .get(Some(Role::Clerk), &format!("/v1/persons/{p}"))
        .await;
    assert_eq!(r.json["linkages"][0]["status"], "suspended");
    // The eligibility key still answers: the key is the card, not the number.
    let r = app.post(Some(Role::Provider), "/v1/eligibility", json!({ "insurer_number": KUMIAI, "symbol": "9", "number": "1", "branch": "00", "birth_date": "1980-01-01" })).await;
    assert_eq!(r.json["validity"], 1);

    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/linkages/{id}/confirm-identity"),
            json!({ "reason": "窓口で本人確認" }),
        )
        .await;
    assert_eq!(r.json["status"], "active");
    assert_eq!(r.json["identity_confirmed"], true);
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/linkages/{id}/suspend"),
            json!({}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing reason: {}",
        r.text
    );

    // Reveal: admin only, reason required, logged; the whole number in this response only.
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/linkages/{id}/reveal"),
            json!({ "reason": "x" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            Some(Role::Admin),
            &format!("/v1/linkages/{id}/reveal"),
            json!({ "reason": "" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            Some(Role::Admin),
            &format!("/v1/linkages/{id}/reveal"),
            json!({ "reason": "住基照会のため" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["my_number"], n);
    let reveal = app
        .access_log()
        .into_iter()
        .find(|e| e.action == "number_reveal")
        .unwrap();
    assert_eq!(reveal.reason.as_deref(), Some("住基照会のため"));
    assert_eq!(reveal.actor, "test-admin");
    assert!(!reveal.response.to_string().contains(&n));

    let right = my_number(90_000_000_002);
    let r = app
        .post(
            Some(Role::Auditor),
            &format!("/v1/linkages/{id}/correct"),
            json!({ "my_number": right, "reason": "住基で正しい番号を確認" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["my_number_last4"], &right[8..]);
    assert_ne!(r.json["id"], id);
    let r = app
        .get(Some(Role::Auditor), &format!("/v1/linkages/{id}"))
        .await;
    assert_eq!(r.json["status"], "revoked");
}

#[actix_web::test]
async fn a_reveal_works_after_a_key_rotation_without_a_restart() {
    let app = TestApp::new();
    let person = app.person(
        KUMIAI,
        "96",
        "1",
        "00",
        "1970-01-01",
        "キー",
        &[("2000-01-01", None)],
    );
    let number = my_number(96_000_000_001);
    let id = app.link(person, &number);
    // `shikaku keys rotate` while the server runs: a new key in the file, every row resealed.
    let mut k = app.keyring();
    assert_eq!(k.rotate(), 2);
    std::fs::write(&app.key_file, k.to_json()).unwrap();
    assert_eq!(shikaku_db::keys::reseal(&mut app.conn(), &k).unwrap(), 1);
    // The server meets key 2, which it does not hold yet: it reads the file again and answers.
    let r = app
        .post(
            Some(Role::Admin),
            &format!("/v1/linkages/{id}/reveal"),
            json!({ "reason": "本人確認のため" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["my_number"], number.as_str());
    assert_eq!(app.state.keyring().unwrap().current_key_id(), 2);
    // Registrations seal with the new key from now on.
    let other = app.person(
        KUMIAI,
        "96",
        "2",
        "00",
        "1970-01-02",
        "キー",
        &[("2000-01-01", None)],
    );
    let r = app
        .post(
            Some(Role::Admin),
            &format!("/v1/persons/{other}/linkages"),
            json!({ "my_number": my_number(96_000_000_002), "source": "applicant" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// Imports a register extract (residents.csv rows `my_number,name_kanji,name_kana,birth_date,
/// sex,address,status`) as the latest snapshot.
pub fn register_extract(app: &TestApp, rows: &[String]) {
    let mut csv = String::from("my_number,name_kanji,name_kana,birth_date,sex,address,status\n");
    for r in rows {
        csv.push_str(r);
        csv.push('\n');
    }
    let mut sink = shikaku_db::import::CollectIssues::default();
    let ctx = shikaku_db::import::ImportContext {
        actor: "test",
        file_name: "residents.csv",
        progress: &|_| {},
        today: shikaku_db::today_tokyo(),
    };
    let s = shikaku_db::import::import_residents(
        &mut app.conn(),
        &ctx,
        &app.keyring(),
        csv.as_bytes(),
        &mut sink,
    )
    .unwrap();
    assert!(s.applied, "{:#?}", sink.0);
}

#[actix_web::test]
async fn registration_and_correction_are_checked_against_the_register() {
    let app = TestApp::new();
    // 試験　太郎, ヤマダ　タロウ, 1980-01-01, male, no address (app.person's defaults).
    let a = app.person(
        KUMIAI,
        "10",
        "1",
        "00",
        "1980-01-01",
        "ヤマダ　タロウ",
        &[("2000-01-01", None)],
    );
    let b = app.person(
        KUMIAI,
        "10",
        "2",
        "00",
        "1980-01-01",
        "ヤマダ　タロウ",
        &[("2000-01-01", None)],
    );
    let other = my_number(10_000_000_001);
    let own = my_number(10_000_000_002);
    register_extract(
        &app,
        &[
            format!(
                "{other},試験　次郎,ヤマダ　タロウ,1980-01-01,1,東京都新宿区西新宿2-8-1,active"
            ),
            format!("{own},試験太郎,ﾔﾏﾀﾞ ﾀﾛｳ,1980-01-01,1,東京都新宿区西新宿2-8-1,active"),
        ],
    );

    // Another human's number: 409 naming the item, never a value or the number.
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/persons/{a}/linkages"),
            json!({ "my_number": other, "source": "employer" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.json["error"], "identity_mismatch");
    assert_eq!(r.json["differing"], json!(["name_kanji"]));
    assert_eq!(r.json["not_compared"], json!(["address"]));
    assert_eq!(r.json["override_field"], "no_error_reason");
    assert!(r.json["message"]
        .as_str()
        .unwrap()
        .contains("no_error_reason"));
    for secret in [other.as_str(), &other[8..], "次郎", "西新宿"] {
        assert!(!r.text.contains(secret), "{secret} in {}", r.text);
    }
    let refused = app
        .access_log()
        .into_iter()
        .find(|e| e.action == "linkage_register_refused")
        .expect("the refusal is logged");
    assert_eq!(
        refused.subject.as_deref(),
        Some(format!("person:{a}").as_str())
    );
    assert_eq!(refused.response["identity_mismatch"], json!(["name_kanji"]));
    let r = app
        .get(Some(Role::Clerk), &format!("/v1/persons/{a}"))
        .await;
    assert_eq!(r.json["linkages"], json!([]), "nothing was stored");

    // 理由付き疑いなし: stored, unconfirmed, the reason and items kept with the actor.
    let reason = "住基の漢字が誤記（戸籍で確認）";
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/persons/{a}/linkages"),
            json!({ "my_number": other, "source": "employer", "no_error_reason": reason }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["identity_confirmed"], false);
    let accepted_id = r.json["id"].as_i64().unwrap();
    #[derive(diesel::QueryableByName)]
    struct Ev {
        #[diesel(sql_type = Text)]
        action: String,
        #[diesel(sql_type = Nullable<Text>)]
        reason: Option<String>,
        #[diesel(sql_type = Text)]
        actor: String,
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        details: Value,
    }
    let events = |id: i64| -> Vec<Ev> {
        diesel::sql_query(
            "SELECT action, reason, actor, details FROM linkage_events WHERE linkage_id = $1
              ORDER BY id",
        )
        .bind::<BigInt, _>(id)
        .load(&mut app.conn())
        .unwrap()
    };
    let ev = events(accepted_id);
    let accepted = ev
        .iter()
        .find(|e| e.action == "identity_mismatch_accepted")
        .expect("the override is recorded");
    assert_eq!(accepted.reason.as_deref(), Some(reason));
    assert_eq!(accepted.details["differing"], json!(["name_kanji"]));
    assert_eq!(accepted.actor, "api:test-clerk");

    // The person's own number, spelled the register's way: registered and confirmed.
    let r = app
        .post(
            Some(Role::Clerk),
            &format!("/v1/persons/{b}/linkages"),
            json!({ "my_number": own, "source": "applicant" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["identity_confirmed"], true);
    let own_id = r.json["id"].as_i64().unwrap();

    // A correction to another human's number: 409, nothing changes; with a reason, 200.
    let r = app
        .post(
            Some(Role::Auditor),
            &format!("/v1/linkages/{own_id}/correct"),
            json!({ "my_number": other, "reason": "番号の取り違え" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(r.json["error"], "identity_mismatch");
    assert_eq!(r.json["differing"], json!(["name_kanji"]));
    assert!(!r.text.contains(&other[8..]), "{}", r.text);
    let r = app
        .get(Some(Role::Auditor), &format!("/v1/linkages/{own_id}"))
        .await;
    assert_eq!(r.json["status"], "active");
    assert!(app
        .access_log()
        .iter()
        .any(|e| e.action == "linkage_correct_refused"
            && e.response["identity_mismatch"] == json!(["name_kanji"])));
    let r = app
        .post(
            Some(Role::Auditor),
            &format!("/v1/linkages/{own_id}/correct"),
            json!({ "my_number": other, "reason": "番号の取り違え",
                    "no_error_reason": "同一人物（通称名の登録）" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["identity_confirmed"], false);
    let corrected = r.json["id"].as_i64().unwrap();
    assert!(events(corrected)
        .iter()
        .any(|e| e.action == "identity_mismatch_accepted"));

    // No answer, log entry or event holds a whole number.
    for e in app.access_log() {
        let s = format!("{} {} {:?}", e.request, e.response, e.reason);
        assert!(!s.contains(&other) && !s.contains(&own), "{s}");
    }
}
