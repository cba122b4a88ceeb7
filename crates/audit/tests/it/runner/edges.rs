//! Edges of a run: no register at all, revoked and suspended linkages, and findings.csv.

use super::*;

// ---------------------------------------------------------------------------------------------
// 5. No register at all

#[test]
fn a_run_without_any_resident_snapshot() {
    let data = data_set(51, 1_000);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, false);
    let date = data.config.reference_date;
    let s = run(&db, date, 2);
    assert_eq!(s.snapshot_id, None);
    let row = run_row(&mut conn, s.run_id);
    assert_eq!(row.status, "finished");
    assert_eq!(row.snapshot_id, None);

    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let eligible: BTreeSet<i64> = diesel::sql_query(
        "SELECT l.id FROM linkages l
         WHERE l.status <> 'revoked' AND EXISTS (
             SELECT 1 FROM qualifications q
             WHERE q.person_id = l.person_id AND q.acquired_on <= $1
               AND (q.lost_on IS NULL OR q.lost_on > $1))",
    )
    .bind::<Date, _>(date)
    .load::<Id>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|r| r.id)
    .collect();
    let all = scalar(&mut conn, "SELECT count(*) AS n FROM linkages");
    assert!(
        !eligible.is_empty() && i64::try_from(eligible.len()).unwrap() < all,
        "the data set must have both eligible and former members"
    );
    let stored = findings(&mut conn);
    let not_in_registry: BTreeSet<i64> = stored
        .iter()
        .filter(|f| f.kind == "not_in_registry")
        .map(|f| f.linkage_id.unwrap())
        .collect();
    assert_eq!(not_in_registry, eligible);
    for f in &stored {
        assert!(
            [
                "not_in_registry",
                "invalid_check_digit",
                "number_shared",
                "multiple_numbers"
            ]
            .contains(&f.kind.as_str()),
            "nothing to compare with, yet {f:#?}"
        );
        if f.kind == "not_in_registry" {
            assert_eq!(f.severity, "medium");
        }
    }
    assert!(stored.iter().any(|f| f.kind == "number_shared"));
    assert!(stored.iter().any(|f| f.kind == "invalid_check_digit"));
    assert_eq!(s.counts, counts_by_kind(&mut conn, s.run_id));
}

// ---------------------------------------------------------------------------------------------
// 6. Revoked and suspended linkages

#[test]
fn revoked_linkages_are_not_audited_and_suspended_ones_are() {
    let data = data_set(61, 1_000);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, true);
    let date = data.config.reference_date;
    let r1 = run(&db, date, 2);
    let before = findings(&mut conn);
    let pick = |kind: &str| before.iter().find(|f| f.kind == kind).unwrap().clone();

    // Suspended: a wrong identity and one of a person's two numbers. The identity finding must
    // not sit on a shared number, which is revoked below (the keyring is random, so the order
    // of findings, and with it a plain first pick, changes from run to run), and must not be
    // critical: the run has already suspended those linkages itself (docs/audit.md,
    // "Blocking").
    let identity = before
        .iter()
        .find(|f| {
            f.kind == "identity_mismatch"
                && f.severity != "critical"
                && !before
                    .iter()
                    .any(|s| s.kind == "number_shared" && s.linkage_id == f.linkage_id)
        })
        .unwrap()
        .clone();
    let multiple = pick("multiple_numbers");
    let suspended = [
        identity.linkage_id.unwrap(),
        shikaku_db::linkages::of_person(&mut conn, multiple.person_id).unwrap()[1].id,
    ];
    for id in suspended {
        let v = shikaku_db::linkages::suspend(&mut conn, id, "pending J-LIS check", "reviewer")
            .unwrap();
        assert_eq!(v.status, shikaku_domain::LinkageStatus::Suspended);
    }

    // Revoked: a number failing its check digit, and one side of a shared number.
    let check_digit = pick("invalid_check_digit");
    let shared = pick("number_shared");
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let shared_linkages: Vec<i64> = diesel::sql_query(
        "SELECT o.id FROM linkages o JOIN linkages l ON l.mn_blind = o.mn_blind
         WHERE l.id = $1 ORDER BY o.id",
    )
    .bind::<BigInt, _>(shared.linkage_id.unwrap())
    .load::<Id>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|r| r.id)
    .collect();
    assert_eq!(shared_linkages.len(), 2, "{shared_linkages:?}");
    let revoked = [check_digit.linkage_id.unwrap(), shared_linkages[1]];
    for id in revoked {
        // A revoked linkage names no blocking finding (a CHECK constraint).
        let n = diesel::sql_query(
            "UPDATE linkages SET status = 'revoked', suspended_by_finding = NULL WHERE id = $1",
        )
        .bind::<BigInt, _>(id)
        .execute(&mut conn)
        .unwrap();
        assert_eq!(n, 1);
    }

    let r2 = run(&db, date, 2);
    assert_eq!(r2.linkages_checked, r1.linkages_checked - 2);
    assert_eq!(
        run_row(&mut conn, r2.run_id).linkages_checked,
        i64::try_from(r1.linkages_checked - 2).unwrap()
    );
    let after = findings(&mut conn);
    let shared_fingerprints: Vec<&Stored> = before
        .iter()
        .filter(|f| f.kind == "number_shared" && shared_linkages.contains(&f.linkage_id.unwrap()))
        .collect();
    assert_eq!(shared_fingerprints.len(), 2, "{shared_fingerprints:#?}");
    for f in &after {
        let was = before.iter().find(|b| b.id == f.id).unwrap();
        let on_revoked = f.linkage_id.is_some_and(|l| revoked.contains(&l));
        let gone = on_revoked || shared_fingerprints.iter().any(|s| s.id == f.id);
        if gone {
            // Revoked linkages are not checked, and no longer make their number shared.
            assert_eq!(f.status, "resolved", "{f:#?}");
            assert_eq!(f.resolved_run, Some(r2.run_id));
        } else {
            // Suspended linkages are checked like active ones.
            assert_eq!(f.status, "open", "{f:#?}");
            assert_eq!(f.last_seen_run, r2.run_id, "{f:#?}");
            // The probability may move a little: the evidence model is refitted to the data,
            // which the revocations changed.
            assert_eq!(
                (&f.severity, &f.fields, without_p(&f.detail)),
                (&was.severity, &was.fields, without_p(&was.detail))
            );
        }
    }
    for id in [identity.id, multiple.id] {
        assert_eq!(finding(&mut conn, id).status, "open");
    }
    assert_eq!(finding(&mut conn, check_digit.id).status, "resolved");
    assert_eq!(finding(&mut conn, shared.id).status, "resolved");
    assert_eq!(r2.merge.new, 0, "{:#?}", findings(&mut conn));
}

// ---------------------------------------------------------------------------------------------
// 7. Export

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn export_has_the_documented_columns_and_never_a_whole_number() {
    let data = data_set(71, 1_000);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, true);
    let s = run(&db, data.config.reference_date, 2);
    let stored = findings(&mut conn);
    findings::review(
        &mut conn,
        stored[0].id,
        ReviewAction::Dismiss,
        "verified, no error",
        "reviewer",
    )
    .unwrap();

    let mut out = Vec::new();
    let n = findings::export::export_findings(&mut conn, &findings::Filter::default(), &mut out)
        .unwrap();
    assert_eq!(n, u64::try_from(stored.len()).unwrap());
    let text = std::str::from_utf8(&out).unwrap();
    assert_eq!(
        text.lines().next().unwrap(),
        "finding_id,kind,severity,insurer_number,symbol,number,branch,my_number_last4,fields,detail,status,p_other_person,first_seen,last_seen"
    );

    let mut rdr = csv::Reader::from_reader(&out[..]);
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), stored.len());
    let by_fingerprint: BTreeMap<&str, &Stored> =
        stored.iter().map(|f| (f.fingerprint.as_str(), f)).collect();
    let mut ids = BTreeSet::new();
    for row in &rows {
        assert_eq!(row.len(), 14, "{row:?}");
        let f = by_fingerprint[&row[0]];
        assert!(ids.insert(row[0].to_string()), "duplicate {}", &row[0]);
        assert_eq!(&row[1], f.kind);
        assert_eq!(&row[2], f.severity);
        assert_eq!(
            format!("{}:{}:{}:{}", &row[3], &row[4], &row[5], &row[6]),
            f.person_key
        );
        let last4 = &row[7];
        assert!(
            last4.len() == 4 && last4.bytes().all(|b| b.is_ascii_digit()),
            "{last4}"
        );
        assert_eq!(last4, f.mn_last4);
        assert_eq!(&row[8], f.fields);
        assert_eq!(&row[9], f.detail);
        let status = if f.id == stored[0].id {
            "dismissed"
        } else {
            "open"
        };
        assert_eq!(&row[10], status);
        // Three decimals for the five-item findings, empty for the other kinds.
        let p = &row[11];
        if matches!(f.kind.as_str(), "identity_mismatch" | "address_mismatch") {
            let v: f64 = p.parse().unwrap_or_else(|_| panic!("{p:?}"));
            assert!((0.0..=1.0).contains(&v) && p.len() == 5, "{p}");
        } else {
            assert_eq!(p, "", "{f:?}");
        }
        for ts in [&row[12], &row[13]] {
            assert!(
                chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%SZ").is_ok(),
                "{ts}"
            );
        }
    }
    assert!(s.detected() > 0);

    // No whole number of linkages.csv appears anywhere in the export.
    let mut rdr = csv::Reader::from_reader(&data.linkages[..]);
    let col = rdr
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "my_number")
        .unwrap();
    let mut numbers = 0;
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let number = &rec[col];
        assert_eq!(number.len(), 12);
        assert!(!contains(&out, number.as_bytes()), "whole number exported");
        numbers += 1;
    }
    assert!(numbers > 500);
}

/// A finding's detail without its probability (`[C4 p=0.948]` → `[C4]`).
fn without_p(detail: &str) -> String {
    match (detail.find(" p="), detail.find(']')) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &detail[..a], &detail[b..]),
        _ => detail.to_owned(),
    }
}
