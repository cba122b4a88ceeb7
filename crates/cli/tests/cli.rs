//! The `shikaku` binary end to end against a real database: what an administrator types and
//! sees, including exit codes, the rejection report, and that no My Number is ever printed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

use shikaku_db::testing::TestDb;
use shikaku_domain::{InsurerNumber, MyNumber};

/// The binary as production runs it: the application role in `DATABASE_URL`, the owner's URL
/// for migrations, the key file, and a checkpoint file beside the key file.
fn command(db: &TestDb, key_file: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shikaku"));
    c.env("DATABASE_URL", db.url())
        .env("SHIKAKU_OWNER_DATABASE_URL", db.owner_url())
        .env("SHIKAKU_DB_ROLE_PREFIX", "shikaku_test")
        .env("SHIKAKU_KEY_FILE", key_file)
        .env(
            "SHIKAKU_CHECKPOINT_FILE",
            key_file.with_file_name("checkpoints.jsonl"),
        )
        .env_remove("SHIKAKU_KEYS")
        .env_remove("SHIKAKU_ALLOW_PRIVILEGED_ROLE")
        .env("RUST_LOG", "info");
    c
}

fn shikaku(db: &TestDb, key_file: &Path, args: &[&str]) -> Output {
    command(db, key_file)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn insurer() -> String {
    let base = "0113001";
    format!("{base}{}", InsurerNumber::check_digit(base).unwrap())
}

fn my_number(base: &str) -> String {
    let digits: [u8; 11] = base.as_bytes().try_into().unwrap();
    format!("{base}{}", MyNumber::check_digit(&digits))
}

const PERSONS_HEADER: &str = "insurer_number,symbol,number,branch,relationship,name_kanji,name_kana,birth_date,sex,postal_code,address,acquired_on,lost_on,loss_reason,copay_rate";

#[test]
fn administrator_workflow() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let ins = insurer();

    // keys generate: mode 0600, refuses to overwrite.
    let o = shikaku(
        &db,
        &keys,
        &["keys", "generate", "--out", keys.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let o = shikaku(
        &db,
        &keys,
        &["keys", "generate", "--out", keys.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("refusing to overwrite"), "{}", text(&o));

    // The template is migrated already, so migrate has nothing to do.
    let o = shikaku(&db, &keys, &["migrate"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("up to date"), "{}", text(&o));

    let o = shikaku(
        &db,
        &keys,
        &[
            "insurers",
            "add",
            &ins,
            "--name",
            "全国健康保険協会",
            "--kind",
            "kyokai",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = shikaku(&db, &keys, &["insurers", "list"]);
    assert!(text(&o).contains("全国健康保険協会"), "{}", text(&o));

    // A good persons file.
    let persons = dir.path().join("persons.csv");
    std::fs::write(
        &persons,
        format!(
            "{PERSONS_HEADER}\n\
             {ins},1234567,1,00,insured,山田　太郎,ヤマダ　タロウ,1980-05-01,1,100-0001,東京都千代田区千代田1丁目1番1号,2020-04-01,,,\n\
             {ins},1234567,1,01,dependent,山田　花子,ヤマダ　ハナコ,1982-07-02,2,,,2020-04-01,,,\n"
        ),
    )
    .unwrap();
    let o = shikaku(
        &db,
        &keys,
        &["import", "persons", persons.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 new"), "{}", text(&o));

    // A bad file: exit 1, the line and column named, the report written, nothing stored.
    let bad = dir.path().join("bad.csv");
    let report = dir.path().join("report.csv");
    std::fs::write(
        &bad,
        format!(
            "{PERSONS_HEADER}\n\
             {ins},1234567,2,00,insured,佐藤　一郎,サトウ　イチロウ,1970-01-01,1,,,2020-04-01,,,\n\
             {ins},1234567,3,00,insured,鈴木　次郎,スズキ　ジロウ,1970-13-01,1,,,2020-04-01,,,\n"
        ),
    )
    .unwrap();
    let o = shikaku(
        &db,
        &keys,
        &[
            "import",
            "persons",
            bad.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("bad.csv:3: birth_date"), "{out}");
    assert!(out.contains("REJECTED"), "{out}");
    let report = std::fs::read_to_string(&report).unwrap();
    assert!(report.starts_with("line,column,level,reason\n"), "{report}");
    assert!(report.contains("3,birth_date,error,"), "{report}");
    let o = shikaku(&db, &keys, &["stats", "--json", "--on", "2026-01-01"]);
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(stats["persons"], 2, "the rejected file stored nothing");

    // Linkages: a bad number is rejected without being echoed anywhere.
    let good_number = my_number("12345678901");
    let linkages = dir.path().join("linkages.csv");
    std::fs::write(
        &linkages,
        format!(
            "insurer_number,symbol,number,branch,my_number,source,linked_on\n\
             {ins},1234567,1,00,{good_number},employer,2020-05-01\n\
             {ins},1234567,1,01,98765432109,employer,2020-05-01\n"
        ),
    )
    .unwrap();
    let o = shikaku(
        &db,
        &keys,
        &["import", "linkages", linkages.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("linkages.csv:3: my_number"), "{out}");
    assert!(
        !out.contains("98765432109"),
        "a rejected number was echoed: {out}"
    );
    assert!(!out.contains(&good_number), "a number was echoed: {out}");

    std::fs::write(
        &linkages,
        format!(
            "insurer_number,symbol,number,branch,my_number,source,linked_on\n\
             {ins},1234567,1,00,{good_number},employer,2020-05-01\n"
        ),
    )
    .unwrap();
    let o = shikaku(
        &db,
        &keys,
        &["import", "linkages", linkages.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(&good_number));

    // Export round-trips.
    let export = dir.path().join("export.csv");
    let o = shikaku(
        &db,
        &keys,
        &[
            "export",
            "persons",
            "--out",
            export.to_str().unwrap(),
            "--reason",
            "yearly reconciliation with the employer",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = shikaku(&db, &keys, &["import", "persons", export.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("0 new, 0 updated, 2 unchanged"),
        "{}",
        text(&o)
    );

    // Rotation re-seals the stored number and keeps the old key in the file.
    let o = shikaku(
        &db,
        &keys,
        &[
            "keys",
            "rotate",
            "--key-file",
            keys.to_str().unwrap(),
            "--reason",
            "yearly rotation",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("re-sealed 1 numbers with key 2"),
        "{}",
        text(&o)
    );
    let keyring =
        shikaku_domain::Keyring::from_json(&std::fs::read_to_string(&keys).unwrap()).unwrap();
    assert_eq!(keyring.current_key_id(), 2);
    assert_eq!(keyring.key_ids(), vec![1, 2]);

    // The insured person leaves on 2026-10-01: the dependant's cover ends with it, with a
    // warning in the report naming the dependant's key (never a number).
    let loss = dir.path().join("loss.csv");
    let loss_report = dir.path().join("loss-report.csv");
    std::fs::write(
        &loss,
        format!(
            "{PERSONS_HEADER}\n\
             {ins},1234567,1,00,insured,山田　太郎,ヤマダ　タロウ,1980-05-01,1,100-0001,東京都千代田区千代田1丁目1番1号,2020-04-01,2026-10-01,03,\n"
        ),
    )
    .unwrap();
    let o = shikaku(
        &db,
        &keys,
        &[
            "import",
            "persons",
            loss.to_str().unwrap(),
            "--report",
            loss_report.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let report = std::fs::read_to_string(&loss_report).unwrap();
    assert!(
        report.contains("2,lost_on,warning,dependant 1234567・1・01")
            && report.contains("2026-10-01"),
        "{report}"
    );
    let o = shikaku(&db, &keys, &["stats", "--json", "--on", "2026-10-01"]);
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(stats["eligible"], 0, "{stats}");
}

#[test]
fn a_key_file_readable_by_others_is_refused() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let o = shikaku(
        &db,
        &keys,
        &["keys", "generate", "--out", keys.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = dir.path().join("r.csv");
        std::fs::write(&file, "my_number,name_kanji,birth_date,sex,status\n").unwrap();
        let o = shikaku(&db, &keys, &["import", "residents", file.to_str().unwrap()]);
        assert!(!o.status.success());
        assert!(text(&o).contains("chmod 600"), "{}", text(&o));
    }
}

/// A free TCP port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits for `server` to answer on `port`; fails with its log if it exits first. It waits
/// until the server answers HTTP, not merely until its port accepts: the port is bound
/// before the server installs its SIGTERM handling, and a test that signals it in between
/// kills it instead of stopping it gracefully.
fn wait_until_up(server: &mut std::process::Child, port: u16) {
    use std::io::{Read, Write};
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let mut reply = String::new();
            if write!(
                s,
                "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            )
            .is_ok()
                && s.read_to_string(&mut reply).is_ok()
                && reply.starts_with("HTTP/1.1")
            {
                return;
            }
        }
        if server.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = server.kill();
    let mut err = String::new();
    if let Some(mut e) = server.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    panic!("the server did not start: {err}");
}

/// One HTTP/1.1 request over a plain socket; returns the status line and body.
fn http(port: u16, method: &str, path: &str, token: &str, body: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.lines().next().unwrap_or("").to_string();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn tokens_serve_and_the_access_log() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    assert!(shikaku(
        &db,
        &keys,
        &["keys", "generate", "--out", keys.to_str().unwrap()]
    )
    .status
    .success());
    let ins = insurer();
    assert!(shikaku(
        &db,
        &keys,
        &["insurers", "add", &ins, "--name", "テスト組合"]
    )
    .status
    .success());
    let persons = dir.path().join("persons.csv");
    std::fs::write(
        &persons,
        format!("{PERSONS_HEADER}\n{ins},S1,77,00,insured,試験　太郎,シケン　タロウ,1980-05-05,1,,,2020-04-01,,,\n"),
    )
    .unwrap();
    assert!(shikaku(
        &db,
        &keys,
        &["import", "persons", persons.to_str().unwrap()]
    )
    .status
    .success());

    // The secret is the last line, once; it is not in the database.
    let o = shikaku(
        &db,
        &keys,
        &[
            "token", "create", "--role", "provider", "--name", "clinic-1",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let token = stdout.lines().last().unwrap().to_string();
    assert!(token.starts_with("shk_") && token.len() > 40, "{stdout}");
    let o = shikaku(&db, &keys, &["token", "list"]);
    assert!(text(&o).contains("clinic-1 (provider)") && !text(&o).contains(&token));
    let o = shikaku(
        &db,
        &keys,
        &["token", "create", "--role", "root", "--name", "x"],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("unknown role"), "{}", text(&o));

    // serve refuses to run as the owner of the tables (it could cut the access log).
    let port = free_port();
    let serve_args = [
        "serve".to_string(),
        "--bind".to_string(),
        format!("127.0.0.1:{port}"),
        "--workers".to_string(),
        "1".to_string(),
    ];
    let o = command(&db, &keys)
        .args(&serve_args)
        .env("DATABASE_URL", db.owner_url())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("owner of the tables"), "{}", text(&o));
    // ... unless development says so explicitly (as the benchmark does).
    let mut dev = command(&db, &keys)
        .args(&serve_args)
        .env("DATABASE_URL", db.owner_url())
        .env("SHIKAKU_ALLOW_PRIVILEGED_ROLE", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_up(&mut dev, port);
    Command::new("kill")
        .args(["-TERM", &dev.id().to_string()])
        .status()
        .unwrap();
    let out = dev.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("privileged"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // serve as the application role: answers over HTTP, then stops cleanly on SIGTERM.
    let mut server = command(&db, &keys)
        .args(&serve_args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_up(&mut server, port);
    let query = format!(
        r#"{{"insurer_number":"{ins}","symbol":"S1","number":"77","branch":"00","birth_date":"1980-05-05","on":"2026-01-01"}}"#
    );
    let (status, body) = http(port, "POST", "/v1/eligibility", &token, &query);
    assert!(status.contains("200"), "{status} {body}");
    assert!(body.contains("\"validity\":1"), "{body}");
    let (status, _) = http(port, "GET", "/v1/findings", &token, "");
    assert!(status.contains("403"), "{status}");

    let o = shikaku(&db, &keys, &["token", "revoke", "1"]);
    assert!(text(&o).contains("REVOKED"), "{}", text(&o));

    let kill = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = server.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped"));

    // The answer is in the log, the server checkpointed the head at shutdown, and the chain
    // verifies against it.
    let checkpoints = keys.with_file_name("checkpoints.jsonl");
    let cps = shikaku_db::access_log::checkpoint::read_file(&checkpoints).unwrap();
    assert!(!cps.is_empty(), "no checkpoint at shutdown");
    let o = shikaku(&db, &keys, &["access-log", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("chain intact")
            && text(&o).contains(&format!("newest at entry {}", cps.last().unwrap().seq)),
        "{}",
        text(&o)
    );
    let o = shikaku(&db, &keys, &["access-log", "show"]);
    assert!(
        text(&o).contains("clinic-1 (provider) eligibility"),
        "{}",
        text(&o)
    );
}

#[test]
fn certificates_at_the_counter_and_by_the_monthly_run() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    assert!(shikaku(
        &db,
        &keys,
        &["keys", "generate", "--out", keys.to_str().unwrap()]
    )
    .status
    .success());
    let ins = insurer();
    assert!(shikaku(
        &db,
        &keys,
        &[
            "insurers",
            "add",
            &ins,
            "--name",
            "テスト組合",
            "--cert-years",
            "3"
        ]
    )
    .status
    .success());
    let persons = dir.path().join("persons.csv");
    std::fs::write(
        &persons,
        format!(
            "{PERSONS_HEADER}\n\
             {ins},S1,77,00,insured,試験　太郎,シケン　タロウ,1980-05-05,1,1000001,東京都千代田区千代田1番1号,2020-04-01,,,\n\
             {ins},S1,78,00,insured,試験　花子,シケン　ハナコ,1982-02-02,2,,,2020-04-01,,,\n"
        ),
    )
    .unwrap();
    assert!(shikaku(
        &db,
        &keys,
        &["import", "persons", persons.to_str().unwrap()]
    )
    .status
    .success());
    let taro = format!("{ins}:S1:77:00");

    // issue --json prints the id, number, validity and status.
    let o = shikaku(
        &db,
        &keys,
        &[
            "certificates",
            "issue",
            &taro,
            "--on",
            "2026-12-01",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let c: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(c["valid_from"], "2026-12-01");
    assert_eq!(c["valid_until"], "2029-11-30");
    assert_eq!(c["status"], "active");
    let id = c["id"].as_i64().unwrap().to_string();
    // A second one is refused; a person key that does not exist is named.
    let o = shikaku(&db, &keys, &["certificates", "issue", &taro]);
    assert!(!o.status.success());
    assert!(text(&o).contains("reissue it instead"), "{}", text(&o));
    let o = shikaku(
        &db,
        &keys,
        &["certificates", "issue", &format!("{ins}:S1:99:00")],
    );
    assert!(text(&o).contains("no person"), "{}", text(&o));

    // print: a card PDF with the name in it.
    let pdf = dir.path().join("card.pdf");
    let o = shikaku(
        &db,
        &keys,
        &["certificates", "print", &id, "--out", pdf.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = Command::new("pdftotext")
        .args([pdf.to_str().unwrap(), "-"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("テスト組合"));

    let o = shikaku(
        &db,
        &keys,
        &[
            "certificates",
            "reissue",
            &id,
            "--reason",
            "紛失",
            "--on",
            "2027-01-05",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let new: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(new["valid_until"], "2030-01-04");
    let new_id = new["id"].as_i64().unwrap().to_string();
    let o = shikaku(
        &db,
        &keys,
        &[
            "certificates",
            "revoke",
            &new_id,
            "--reason",
            "本人申出",
            "--json",
        ],
    );
    assert!(text(&o).contains("\"revoked\""), "{}", text(&o));
    let o = shikaku(
        &db,
        &keys,
        &[
            "certificates",
            "returned",
            &new_id,
            "--reason",
            "郵送で返納",
        ],
    );
    assert!(text(&o).contains("returned"), "{}", text(&o));
    let o = shikaku(&db, &keys, &["certificates", "list", &taro, "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let statuses: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["returned", "superseded"]);

    // The monthly run: both are unregistered; 太郎 gets a new one (his were returned), 花子 too.
    let status = dir.path().join("status.csv");
    std::fs::write(
        &status,
        format!("insurer_number,symbol,number,branch,card_status\n{ins},S1,77,00,unregistered\n{ins},S1,78,00,card_returned\n"),
    )
    .unwrap();
    let mailing = dir.path().join("mailing.pdf");
    let args = [
        "certificates",
        "issue-due",
        "--status-file",
        status.to_str().unwrap(),
        "--on",
        "2027-02-01",
        "--out",
        mailing.to_str().unwrap(),
        "--reason",
        "monthly ex-officio run",
    ];
    let o = shikaku(&db, &keys, &args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("wrote 2 certificate(s) for mailing"),
        "{}",
        text(&o)
    );
    let out = Command::new("pdftotext")
        .args([mailing.to_str().unwrap(), "-"])
        .output()
        .unwrap();
    let mail: String = String::from_utf8_lossy(&out.stdout)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    assert!(
        mail.contains("資格確認書の送付について")
            && mail.contains("番号77")
            && mail.contains("番号78"),
        "{mail}"
    );
    // Again, without --force: the existing PDF is not replaced, and nothing is issued.
    let o = shikaku(&db, &keys, &args);
    assert!(
        !o.status.success() && text(&o).contains("--force"),
        "{}",
        text(&o)
    );
    // With it: nothing new.
    let mut again = args.to_vec();
    again.push("--force");
    let o = shikaku(&db, &keys, &again);
    assert!(text(&o).contains("no new certificates"), "{}", text(&o));
    // facts: the residence permit and the 要配慮者 request are stored on the person (with
    // history) and cut the next certificate; a reissue uses them.
    let hanako = format!("{ins}:S1:78:00");
    let o = shikaku(
        &db,
        &keys,
        &[
            "certificates",
            "facts",
            &hanako,
            "--residence-until",
            "2027-06-30",
            "--requested",
            "yes",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let f: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (&f["residence_until"], &f["certificate_requested"]),
        (&serde_json::json!("2027-06-30"), &serde_json::json!(true))
    );
    let o = shikaku(&db, &keys, &["certificates", "list", &hanako, "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let current = list[0]["id"].as_i64().unwrap().to_string();
    let o = shikaku(
        &db,
        &keys,
        &[
            "certificates",
            "reissue",
            &current,
            "--reason",
            "在留期間の更新",
            "--on",
            "2027-02-10",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let c: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(c["valid_until"], "2027-06-30");
    let o = shikaku(
        &db,
        &keys,
        &[
            "certificates",
            "facts",
            &hanako,
            "--clear-residence-until",
            "--json",
        ],
    );
    let f: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        f["residence_until"].is_null() && f["certificate_requested"] == true,
        "{f}"
    );
    // expire: the daily settlement marks the ended certificate expired.
    let o = shikaku(
        &db,
        &keys,
        &["certificates", "expire", "--on", "2027-07-01", "--json"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let settled: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(settled["expired"], 1, "{settled}");
    // 花子 now has a working card, but asked for a certificate at every renewal (要配慮者): the
    // monthly run issues her one all the same; 太郎, with a card and a certificate, gets none.
    std::fs::write(
        &status,
        format!("insurer_number,symbol,number,branch,card_status\n{ins},S1,77,00,registered\n{ins},S1,78,00,registered\n"),
    )
    .unwrap();
    let o = shikaku(
        &db,
        &keys,
        &[
            "certificates",
            "issue-due",
            "--status-file",
            status.to_str().unwrap(),
            "--on",
            "2027-07-05",
            "--reason",
            "monthly ex-officio run",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (&summary["issued_requested"], &summary["issued_ex_officio"]),
        (&serde_json::json!(1), &serde_json::json!(0)),
        "{summary}"
    );
    let o = shikaku(&db, &keys, &["certificates", "list", &hanako, "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list[0]["status"], "active", "{list}");
    assert_eq!(list[0]["valid_from"], "2027-07-05", "{list}");
    // A bad status file names the line and column.
    std::fs::write(
        &status,
        format!("insurer_number,symbol,number,branch,card_status\n{ins},S1,77,00,maybe\n"),
    )
    .unwrap();
    let o = shikaku(
        &db,
        &keys,
        &[
            "certificates",
            "issue-due",
            "--status-file",
            status.to_str().unwrap(),
            "--reason",
            "monthly ex-officio run",
        ],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains(":2: card_status:"), "{}", text(&o));
}

/// The access log's entries after `seq`, oldest first, as the application role reads them.
fn entries_after(db: &TestDb, seq: i64) -> Vec<shikaku_db::access_log::StoredEntry> {
    let mut all = shikaku_db::access_log::recent(&mut db.conn(), None, 10_000).unwrap();
    all.retain(|e| e.seq > seq);
    all.reverse();
    all
}

fn head_seq(db: &TestDb) -> i64 {
    shikaku_db::access_log::head(&mut db.conn())
        .map(|(seq, _)| seq)
        .unwrap_or(0)
}

#[test]
fn every_command_that_reads_or_changes_personal_data_is_logged() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let o = shikaku(&db, &keys, args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        o
    };
    run(&["keys", "generate", "--out", keys.to_str().unwrap()]);
    let ins = insurer();
    run(&["insurers", "add", &ins, "--name", "テスト組合"]);
    std::fs::write(
        path("persons.csv"),
        format!(
            "{PERSONS_HEADER}\n\
             {ins},S1,77,00,insured,試験　太郎,シケン　タロウ,1980-05-05,1,1000001,東京都千代田区千代田1番1号,2020-04-01,,,\n"
        ),
    )
    .unwrap();
    let number = my_number("12345678901");
    std::fs::write(
        path("linkages.csv"),
        format!(
            "insurer_number,symbol,number,branch,my_number,source,linked_on\n\
             {ins},S1,77,00,{number},employer,2020-05-01\n"
        ),
    )
    .unwrap();
    // The register knows the number under another name: an identity finding.
    std::fs::write(
        path("residents.csv"),
        format!(
            "my_number,name_kanji,name_kana,birth_date,sex,address,status\n\
             {number},別人　次郎,ベツジン　ジロウ,1990-01-01,1,東京都千代田区千代田1番1号,active\n"
        ),
    )
    .unwrap();
    std::fs::write(
        path("card_status.csv"),
        format!("insurer_number,symbol,number,branch,card_status\n{ins},S1,77,00,unregistered\n"),
    )
    .unwrap();
    let taro = format!("{ins}:S1:77:00");
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let actor = format!("cli:{user}");

    // Bulk exports refuse to run without a reason, and write nothing.
    let o = shikaku(&db, &keys, &["export", "persons", "--out", &path("x.csv")]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--reason"), "{}", text(&o));
    assert!(!dir.path().join("x.csv").exists());

    // (command, the actions it must log in order, whether they name the person)
    let steps: Vec<(Vec<String>, Vec<&str>, bool)> = vec![
        (
            vec!["import".into(), "persons".into(), path("persons.csv")],
            vec!["import"],
            false,
        ),
        (
            vec!["import".into(), "linkages".into(), path("linkages.csv")],
            vec!["import"],
            false,
        ),
        (
            vec!["import".into(), "residents".into(), path("residents.csv")],
            vec!["import"],
            false,
        ),
        (
            vec![
                "audit".into(),
                "run".into(),
                "--on".into(),
                "2026-12-01".into(),
            ],
            vec!["audit_run_start", "audit_run"],
            false,
        ),
        (
            vec!["findings".into(), "list".into()],
            vec!["findings_list"],
            true,
        ),
        (
            vec!["findings".into(), "show".into(), "1".into()],
            vec!["finding_read"],
            true,
        ),
        (
            vec!["linkages".into(), "show".into(), "1".into()],
            vec!["linkage_read"],
            true,
        ),
        (
            vec![
                "audit".into(),
                "export".into(),
                "--out".into(),
                path("findings.csv"),
                "--reason".into(),
                "quarterly report to the privacy officer".into(),
            ],
            vec!["export_findings", "export_findings_done"],
            false,
        ),
        (
            vec![
                "export".into(),
                "persons".into(),
                "--out".into(),
                path("export.csv"),
                "--reason".into(),
                "reconciliation with the employer".into(),
            ],
            vec!["export_persons", "export_persons_done"],
            false,
        ),
        (
            vec![
                "certificates".into(),
                "issue".into(),
                taro.clone(),
                "--on".into(),
                "2026-12-01".into(),
            ],
            vec!["certificate_issue"],
            true,
        ),
        (
            vec!["certificates".into(), "list".into(), taro.clone()],
            vec!["certificate_list"],
            true,
        ),
        (
            vec!["certificates".into(), "show".into(), "1".into()],
            vec!["certificate_read"],
            true,
        ),
        (
            vec![
                "certificates".into(),
                "print".into(),
                "1".into(),
                "--out".into(),
                path("c.pdf"),
            ],
            vec!["certificate_print"],
            true,
        ),
        // The run's critical finding blocks the linkage, and with it the notice (which prints
        // the number's last 4 digits), until it is reviewed: 理由付き疑いなし lifts the block.
        (
            vec![
                "findings".into(),
                "dismiss".into(),
                "1".into(),
                "--reason".into(),
                "koseki checked: same person".into(),
            ],
            vec!["finding_dismiss"],
            true,
        ),
        (
            vec![
                "certificates".into(),
                "notice".into(),
                taro.clone(),
                "--out".into(),
                path("n.pdf"),
            ],
            vec!["notice_print"],
            true,
        ),
        (
            vec![
                "certificates".into(),
                "issue-due".into(),
                "--status-file".into(),
                path("card_status.csv"),
                "--on".into(),
                "2026-12-01".into(),
                "--out".into(),
                path("mailing.pdf"),
                "--reason".into(),
                "monthly ex-officio run".into(),
            ],
            vec!["certificates_issue_due"],
            false,
        ),
        (
            vec![
                "keys".into(),
                "reseal".into(),
                "--reason".into(),
                "finish the rotation".into(),
            ],
            vec!["keys_reseal_start", "keys_reseal"],
            false,
        ),
        (
            vec!["access-log".into(), "show".into()],
            vec!["access_log_read"],
            false,
        ),
    ];
    let mut person = None;
    for (args, actions, names_person) in steps {
        let before = head_seq(&db);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(&args);
        assert!(!text(&o).contains(&number), "{args:?} printed a number");
        let new = entries_after(&db, before);
        let got: Vec<&str> = new.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(got, actions, "{args:?}");
        for e in &new {
            assert_eq!(e.actor, actor, "{args:?}");
            assert_eq!(e.role, "cli");
            assert!(!e.request.to_string().contains(&number));
            assert!(!e.response.to_string().contains(&number));
        }
        if names_person {
            let named = new
                .iter()
                .find_map(|e| {
                    e.subject.clone().or_else(|| {
                        e.response["person_ids"][0]
                            .as_i64()
                            .map(|id| format!("person:{id}"))
                    })
                })
                .unwrap_or_else(|| panic!("{args:?} named no person: {new:?}"));
            let person = person.get_or_insert(named.clone());
            assert_eq!(*person, named, "{args:?}");
        }
        if actions
            .iter()
            .any(|a| a.starts_with("export") || a.contains("issue_due") || a.contains("reseal"))
        {
            assert!(
                new.iter()
                    .any(|e| e.reason.as_deref().is_some_and(|r| !r.is_empty())),
                "{args:?} did not record its reason"
            );
        }
    }

    // Checkpoint, then an insider (the owner) cuts the newest entry with the triggers off:
    // `verify` on a copy of the checkpoint file names the first missing entry.
    run(&["access-log", "checkpoint"]);
    let head = head_seq(&db);
    let copy = path("auditor-copy.jsonl");
    std::fs::copy(keys.with_file_name("checkpoints.jsonl"), &copy).unwrap();
    let o = run(&["access-log", "verify", "--checkpoints", &copy]);
    assert!(text(&o).contains("chain intact"), "{}", text(&o));
    use diesel::connection::SimpleConnection;
    db.owner_conn()
        .batch_execute(&format!(
            "ALTER TABLE access_log DISABLE TRIGGER USER;
             DELETE FROM access_log WHERE seq = {head};
             ALTER TABLE access_log ENABLE TRIGGER USER;"
        ))
        .unwrap();
    let o = shikaku(
        &db,
        &keys,
        &["access-log", "verify", "--checkpoints", &copy],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("chain BROKEN from entry {head}")),
        "{}",
        text(&o)
    );
}

#[test]
fn exports_are_private_refuse_links_and_are_safe_in_spreadsheets() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let path = |name: &str| dir.path().join(name);
    let run = |args: &[&str]| shikaku(&db, &keys, args);
    assert!(run(&["keys", "generate", "--out", keys.to_str().unwrap()])
        .status
        .success());
    let ins = insurer();
    assert!(run(&["insurers", "add", &ins, "--name", "テスト組合"])
        .status
        .success());
    // A name a spreadsheet would run as a formula, and an address starting with a minus.
    std::fs::write(
        path("persons.csv"),
        format!(
            "{PERSONS_HEADER}\n\
             {ins},S1,88,00,insured,\"=HYPERLINK(\"\"http://x\"\",\"\"a\"\")\",シケン　タロウ,1980-05-05,1,,-1番地,2020-04-01,,,\n"
        ),
    )
    .unwrap();
    let o = run(&["import", "persons", path("persons.csv").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let export = |out: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "export",
            "persons",
            "--out",
            out.to_str().unwrap(),
            "--reason",
            "reconciliation",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let out = path("export.csv");
    let o = export(&out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    // Owner-only, whatever the umask.
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let csv = std::fs::read_to_string(&out).unwrap();
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    assert!(csv.contains("'-1番地"), "{csv}");
    // An existing file is not overwritten without --force, and a link never followed.
    let o = export(&out, &[]);
    assert!(
        !o.status.success() && text(&o).contains("--force"),
        "{}",
        text(&o)
    );
    assert!(export(&out, &["--force"]).status.success());
    let target = path("elsewhere.csv");
    let link = path("link.csv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = export(&link, &["--force"]);
    assert!(
        !o.status.success() && text(&o).contains("symbolic link"),
        "{}",
        text(&o)
    );
    assert!(!target.exists());
    // The round trip still holds: importing the export changes nothing.
    let o = run(&["import", "persons", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("0 new, 0 updated, 1 unchanged"),
        "{}",
        text(&o)
    );
}

#[test]
fn inline_keys_index_rotation_and_destructive_commands_need_saying_so() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let run = |args: &[&str]| shikaku(&db, &keys, args);
    assert!(run(&["keys", "generate", "--out", keys.to_str().unwrap()])
        .status
        .success());
    let json = std::fs::read_to_string(&keys).unwrap();
    // Inline keys skip the file's mode check: refused unless the environment is declared safe.
    let inline = |protected: bool| {
        let mut c = command(&db, &keys);
        c.env_remove("SHIKAKU_KEY_FILE").env("SHIKAKU_KEYS", &json);
        if protected {
            c.env("SHIKAKU_KEYS_ENV_PROTECTED", "1");
        }
        c.args(["access-log", "show"]).output().unwrap()
    };
    let o = inline(false);
    assert!(
        !o.status.success() && text(&o).contains("SHIKAKU_KEYS_ENV_PROTECTED"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains(&json[..40]));
    assert!(inline(true).status.success());
    // The index key rotates and every number is re-indexed, logged with the reason.
    let ins = insurer();
    assert!(run(&["insurers", "add", &ins, "--name", "テスト組合"])
        .status
        .success());
    let persons = dir.path().join("p.csv");
    std::fs::write(
        &persons,
        format!("{PERSONS_HEADER}\n{ins},S1,77,00,insured,試験　太郎,シケン　タロウ,1980-05-05,1,,,2020-04-01,,,\n"),
    )
    .unwrap();
    assert!(run(&["import", "persons", persons.to_str().unwrap()])
        .status
        .success());
    let linkages = dir.path().join("l.csv");
    std::fs::write(
        &linkages,
        format!(
            "insurer_number,symbol,number,branch,my_number,source,linked_on\n{ins},S1,77,00,{},employer,2020-05-01\n",
            my_number("12345678901")
        ),
    )
    .unwrap();
    assert!(run(&["import", "linkages", linkages.to_str().unwrap()])
        .status
        .success());
    let o = run(&[
        "keys",
        "rotate-index",
        "--reason",
        "yearly index key rotation",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("re-indexed 1 numbers under index key 2"),
        "{}",
        text(&o)
    );
    let k = shikaku_domain::Keyring::from_json(&std::fs::read_to_string(&keys).unwrap()).unwrap();
    assert_eq!(k.index_key_id(), 2);
    let o = run(&["access-log", "show", "--limit", "5"]);
    assert!(text(&o).contains("keys_reindex"), "{}", text(&o));
    // Dropping everything takes the database's name, typed out.
    let o = run(&["migrate", "--revert-all"]);
    assert!(
        !o.status.success() && text(&o).contains("--confirm-database"),
        "{}",
        text(&o)
    );
    let o = run(&[
        "migrate",
        "--revert-all",
        "--confirm-database",
        "not_this_one",
    ]);
    assert!(!o.status.success());
    let o = run(&["migrate", "--status"]);
    assert!(text(&o).contains("up to date"), "{}", text(&o));
    let o = run(&["migrate", "--revert-all", "--confirm-database", db.name()]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn the_five_item_check_refuses_rows_and_corrections_and_takes_a_reason() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let ins = insurer();
    let ok = |o: &Output| assert!(o.status.success(), "{}", text(o));
    ok(&shikaku(
        &db,
        &keys,
        &["keys", "generate", "--out", &path("keys.json")],
    ));
    ok(&shikaku(
        &db,
        &keys,
        &[
            "insurers", "add", &ins, "--name", "協会", "--kind", "kyokai",
        ],
    ));
    std::fs::write(
        path("persons.csv"),
        format!(
            "{PERSONS_HEADER}\n\
             {ins},77,1,00,insured,山田　太郎,ヤマダ　タロウ,1980-05-01,1,,東京都多摩市桜ヶ丘1丁目2番3号,2020-04-01,,,\n\
             {ins},77,1,01,dependent,山田　花子,ヤマダ　ハナコ,1982-07-02,2,,東京都多摩市桜ヶ丘1丁目2番3号,2020-04-01,,,\n"
        ),
    )
    .unwrap();
    ok(&shikaku(
        &db,
        &keys,
        &["import", "persons", &path("persons.csv")],
    ));
    let taro = my_number("77000000001");
    let hanako = my_number("77000000002");
    // The register knows 太郎's number as him, and the number given for 花子 as 太郎.
    std::fs::write(
        path("residents.csv"),
        format!(
            "my_number,name_kanji,name_kana,birth_date,sex,address,status\n\
             {taro},山田太郎,ﾔﾏﾀﾞ ﾀﾛｳ,1980-05-01,1,多摩市桜ケ丘1-2-3,active\n\
             {hanako},山田　太郎,ヤマダ　タロウ,1980-05-01,1,多摩市桜ケ丘1-2-3,active\n"
        ),
    )
    .unwrap();
    ok(&shikaku(
        &db,
        &keys,
        &["import", "residents", &path("residents.csv")],
    ));
    std::fs::write(
        path("linkages.csv"),
        format!(
            "insurer_number,symbol,number,branch,my_number,source,linked_on\n\
             {ins},77,1,00,{taro},employer,2020-05-01\n\
             {ins},77,1,01,{hanako},employer,2020-05-01\n"
        ),
    )
    .unwrap();
    let o = shikaku(
        &db,
        &keys,
        &[
            "import",
            "linkages",
            &path("linkages.csv"),
            "--report",
            &path("report.csv"),
        ],
    );
    // Applied without the refused row: exit 0, the row named with its file, line and items.
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("rejected: ")
            && out.contains("linkages.csv:3: name_kanji;name_kana;birth_date;sex"),
        "{out}"
    );
    assert!(out.contains("1 new") && out.contains("1 rejected"), "{out}");
    let report = std::fs::read_to_string(path("report.csv")).unwrap();
    assert!(
        report.contains("3,name_kanji;name_kana;birth_date;sex,rejected,"),
        "{report}"
    );
    for secret in [taro.as_str(), hanako.as_str(), &hanako[8..]] {
        assert!(
            !out.contains(secret) && !report.contains(secret),
            "{secret}"
        );
    }

    // Correcting 太郎's linkage (1) to a number the register holds as 花子: refused, naming the
    // items, unless the 理由付き疑いなし is given.
    let hanako_right = my_number("77000000003");
    std::fs::write(
        path("residents.csv"),
        format!(
            "my_number,name_kanji,name_kana,birth_date,sex,address,status\n\
             {taro},山田太郎,ﾔﾏﾀﾞ ﾀﾛｳ,1980-05-01,1,多摩市桜ケ丘1-2-3,active\n\
             {hanako_right},山田　花子,ヤマダ　ハナコ,1982-07-02,2,多摩市桜ケ丘1-2-3,active\n"
        ),
    )
    .unwrap();
    ok(&shikaku(
        &db,
        &keys,
        &["import", "residents", &path("residents.csv")],
    ));
    let correct = |extra: &[&str]| {
        use std::io::Write;
        let mut args = vec!["linkages", "correct", "1", "--reason", "番号の取り違え"];
        args.extend_from_slice(extra);
        let mut child = command(&db, &keys)
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{hanako_right}").unwrap();
        child.wait_with_output().unwrap()
    };
    let o = correct(&[]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("name_kanji;name_kana;birth_date;sex") && out.contains("--no-error-reason"),
        "{out}"
    );
    assert!(out.contains("漢字氏名、カナ氏名、生年月日、性別"), "{out}");
    assert!(
        !out.contains(&hanako_right) && !out.contains(&hanako_right[8..]),
        "{out}"
    );
    let o = shikaku(&db, &keys, &["linkages", "show", "1"]);
    assert!(text(&o).contains("status active"), "{}", text(&o));

    let o = correct(&["--no-error-reason", "窓口で本人確認（戸籍の記載を確認）"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("linkage 1 revoked"), "{out}");
    assert!(out.contains("identity not confirmed"), "{out}");
    let entries = entries_after(&db, 0);
    assert!(entries.iter().any(|e| e.action == "linkage_correct_refused"
        && e.response["identity_mismatch"]
            == serde_json::json!(["name_kanji", "name_kana", "birth_date", "sex"])));
}

/// Issue 18 from the command line: the audit fits and explains its evidence model, the queue
/// sorts by the probability of another person, a finding shows its waterfall, and the
/// calibration of a generated data set is reported from its truth and the exported findings.
#[test]
fn the_audit_explains_its_model_ranks_by_probability_and_is_calibrated() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let data = dir.path().join("data");
    let path = |name: &str| data.join(name).to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let o = shikaku(&db, &keys, args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    run(&["keys", "generate", "--out", keys.to_str().unwrap()]);
    run(&[
        "fixtures",
        "generate",
        "--persons",
        "1500",
        "--seed",
        "18",
        "--out",
        data.to_str().unwrap(),
    ]);
    let insurers = std::fs::read_to_string(path("insurers.csv")).unwrap();
    for line in insurers.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        run(&[
            "insurers", "add", cols[0], "--name", cols[1], "--kind", cols[2],
        ]);
    }
    for kind in ["persons", "linkages", "residents"] {
        run(&["import", kind, &path(&format!("{kind}.csv"))]);
    }

    let out = run(&["audit", "run", "--on", "2026-12-01", "--explain-model"]);
    assert!(
        out.contains("evidence model: fitted from this run's data"),
        "{out}"
    );
    assert!(
        out.contains("name_homophone") && out.contains("u:three_item_lookup"),
        "{out}"
    );
    assert!(out.contains("EM ") && out.contains("converged"), "{out}");

    // The queue by probability: the p column (after id and severity) never rises.
    let out = run(&[
        "findings",
        "list",
        "--sort",
        "probability",
        "--limit",
        "1000",
    ]);
    let shown: Vec<f64> = out
        .lines()
        .filter(|l| l.ends_with(']'))
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect();
    assert!(shown.len() > 10, "{out}");
    assert!(shown.windows(2).all(|w| w[0] >= w[1]), "{shown:?}");
    assert!(shown[0] > 0.5, "{shown:?}");
    let first = out.split_whitespace().next().unwrap();
    let show = run(&["findings", "show", first]);
    assert!(
        show.contains("p_other_person") && show.contains("prior ("),
        "{show}"
    );
    assert!(show.contains("name: ") && show.contains("bits"), "{show}");

    // A page at a time: the last line names the cursor of the next page.
    let page1 = run(&["findings", "list", "--limit", "5", "--sort", "kind"]);
    let cursor = page1
        .lines()
        .last()
        .and_then(|l| l.split("--after ").nth(1))
        .unwrap_or_else(|| panic!("{page1}"))
        .to_string();
    let page2 = run(&[
        "findings", "list", "--limit", "5", "--sort", "kind", "--after", &cursor,
    ]);
    let ids = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.ends_with(']'))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(ids(&page1).len(), 5);
    assert!(
        ids(&page2).iter().all(|id| !ids(&page1).contains(id)),
        "{page1}\n{page2}"
    );

    // A bulk dismissal over the open queue is refused (it holds critical findings); over
    // the medium ones it previews, then runs with the previewed count, then is undone.
    let refused = shikaku(
        &db,
        &keys,
        &["findings", "bulk", "dismiss", "--reason", "まとめて確認"],
    );
    assert!(!refused.status.success());
    assert!(text(&refused).contains("critical"), "{}", text(&refused));
    let preview = run(&[
        "findings",
        "bulk",
        "dismiss",
        "--severity",
        "medium",
        "--reason",
        "事業所に確認済み",
    ]);
    let expect = preview
        .split("--expect ")
        .nth(1)
        .unwrap_or_else(|| panic!("{preview}"))
        .trim()
        .to_string();
    let done = run(&[
        "findings",
        "bulk",
        "dismiss",
        "--severity",
        "medium",
        "--reason",
        "事業所に確認済み",
        "--expect",
        &expect,
    ]);
    assert!(
        done.contains(&format!("{expect} finding(s) dismissed")),
        "{done}"
    );
    let bulk_id = done
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches(':');
    let undone = run(&["findings", "undo", bulk_id]);
    assert!(
        undone.contains(&format!("{expect} finding(s) restored")),
        "{undone}"
    );
    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap())
        .date_naive()
        .to_string();
    let report = run(&["findings", "report", "--from", "2026-01-01", "--to", &today]);
    assert!(report.contains("総点検: found"), "{report}");
    run(&[
        "findings",
        "export",
        "--severity",
        "critical",
        "--out",
        &path("critical.csv"),
        "--reason",
        "総点検の報告用",
    ]);
    let critical = std::fs::read_to_string(path("critical.csv")).unwrap();
    assert!(
        critical.lines().skip(1).all(|l| l.contains(",critical,")),
        "{critical}"
    );
    assert!(critical.lines().count() > 1);

    run(&[
        "audit",
        "export",
        "--out",
        &path("findings.csv"),
        "--reason",
        "calibration check",
    ]);
    let out = run(&[
        "fixtures",
        "calibrate",
        "--truth",
        &path("truth.csv"),
        "--findings",
        &path("findings.csv"),
    ]);
    assert!(
        out.contains("Brier score") && out.contains("| 0.9–1.0 |"),
        "{out}"
    );
}

#[test]
fn the_initial_load_runs_as_the_owner_into_empty_tables_and_is_logged() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    let o = shikaku(
        &db,
        &keys,
        &["keys", "generate", "--out", keys.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    let ins = insurer();
    let persons = dir.path().join("persons.csv");
    std::fs::write(
        &persons,
        format!(
            "{PERSONS_HEADER}\n{ins},1,1,00,insured,試験　一郎,シケン イチロウ,1980-01-01,1,,,2020-04-01,,,\n\
             {ins},1,1,01,dependent,試験　花子,シケン ハナコ,1982-02-02,2,,,2020-04-01,,,\n"
        ),
    )
    .unwrap();
    let file = persons.to_str().unwrap();

    // Without the owner's URL the application role cannot rebuild indexes: it says what to set.
    let o = command(&db, &keys)
        .env_remove("SHIKAKU_OWNER_DATABASE_URL")
        .args(["import", "persons", "--initial", file])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("SHIKAKU_OWNER_DATABASE_URL"),
        "{}",
        text(&o)
    );

    let o = shikaku(&db, &keys, &["import", "persons", "--initial", file]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 new"), "{}", text(&o));
    let entries = entries_after(&db, 0);
    let logged = entries
        .iter()
        .find(|e| e.action == "import")
        .expect("the import is logged");
    assert_eq!(
        logged.request["initial"],
        serde_json::json!(true),
        "{logged:?}"
    );

    // A second first load refuses: the tables hold rows now.
    let o = shikaku(&db, &keys, &["import", "persons", "--initial", file]);
    assert!(!o.status.success());
    assert!(text(&o).contains("already holds rows"), "{}", text(&o));
    // The normal import merges as ever (nothing changed).
    let o = shikaku(&db, &keys, &["import", "persons", file]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 unchanged"), "{}", text(&o));
}
