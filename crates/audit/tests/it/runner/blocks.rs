//! Critical findings block their linkages (issue 13) across a generated data set: the run
//! suspends exactly the linkages of open critical findings, set-based in its transaction; a
//! re-run changes nothing; a verdict or fixed data lifts the block, and a dismissal is never
//! undone by the next run.

use super::*;

/// (linkage id, status, the finding it names) for every linkage, by id.
fn linkage_blocks(conn: &mut PgConnection) -> Vec<(i64, String, Option<i64>)> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = Nullable<BigInt>)]
        suspended_by_finding: Option<i64>,
    }
    diesel::sql_query("SELECT id, status, suspended_by_finding FROM linkages ORDER BY id")
        .load::<Row>(conn)
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.status, r.suspended_by_finding))
        .collect()
}

/// What the blocking rule says each linkage should be: suspended by its lowest open or
/// confirmed critical finding, else active.
fn expected_blocks(conn: &mut PgConnection) -> Vec<(i64, String, Option<i64>)> {
    let stored = findings(conn);
    linkage_blocks(conn)
        .into_iter()
        .map(|(id, _, _)| {
            let by = stored
                .iter()
                .filter(|f| {
                    f.linkage_id == Some(id)
                        && f.severity == "critical"
                        && (f.status == "open" || f.status == "confirmed")
                })
                .map(|f| f.id)
                .min();
            let status = if by.is_some() { "suspended" } else { "active" };
            (id, status.to_owned(), by)
        })
        .collect()
}

#[test]
fn the_run_blocks_exactly_the_linkages_of_critical_findings() {
    let data = data_set(71, 1_000);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, true);
    let date = data.config.reference_date;
    let r1 = run(&db, date, 2);
    let blocks = linkage_blocks(&mut conn);
    assert_eq!(blocks, expected_blocks(&mut conn));
    let suspended = blocks.iter().filter(|b| b.2.is_some()).count();
    assert!(suspended >= 3, "{blocks:?}");
    assert_eq!(
        r1.merge.linkages.suspended,
        u64::try_from(suspended).unwrap()
    );
    // Each suspension is an event naming the finding and the run.
    let events = scalar(
        &mut conn,
        "SELECT count(*) AS n FROM linkage_events e JOIN linkages l ON l.id = e.linkage_id
          WHERE e.action = 'suspended' AND e.reason = 'finding ' || l.suspended_by_finding
            AND e.details ->> 'finding_id' = l.suspended_by_finding::text
            AND e.details ? 'run_id'",
    );
    assert_eq!(events, i64::try_from(suspended).unwrap());

    // The next night, nothing changed: nothing to suspend or lift.
    let r2 = run(&db, date, 2);
    assert_eq!(r2.merge.linkages, Default::default());
    assert_eq!(linkage_blocks(&mut conn), blocks);

    // Dismiss one blocking finding: its linkage is restored (or passes to another critical
    // finding about it), and stays so after the next run.
    let stored = findings(&mut conn);
    let blocking = stored
        .iter()
        .find(|f| blocks.iter().any(|b| b.2 == Some(f.id)))
        .unwrap()
        .clone();
    let linkage = blocking.linkage_id.unwrap();
    findings::review(
        &mut conn,
        blocking.id,
        ReviewAction::Dismiss,
        "J-LIS: the number is this person's",
        "reviewer",
    )
    .unwrap();
    let after = expected_blocks(&mut conn);
    assert_eq!(linkage_blocks(&mut conn), after);
    let r3 = run(&db, date, 2);
    assert_eq!(r3.merge.linkages, Default::default());
    assert_eq!(linkage_blocks(&mut conn), after);
    assert_eq!(finding(&mut conn, blocking.id).status, "dismissed");
    let still = after.iter().find(|b| b.0 == linkage).unwrap();
    assert_ne!(still.2, Some(blocking.id));
}

#[test]
fn fixed_data_resolves_the_finding_and_lifts_the_block() {
    let data = data_set(73, 1_000);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, true);
    let date = data.config.reference_date;
    run(&db, date, 2);
    // A linkage blocked by exactly one finding, an identity mismatch.
    let stored = findings(&mut conn);
    let f = stored
        .iter()
        .find(|f| {
            f.kind == "identity_mismatch"
                && f.severity == "critical"
                && stored
                    .iter()
                    .filter(|g| g.linkage_id == f.linkage_id && g.severity == "critical")
                    .count()
                    == 1
        })
        .unwrap()
        .clone();
    let linkage = f.linkage_id.unwrap();
    assert!(linkage_blocks(&mut conn).contains(&(linkage, "suspended".into(), Some(f.id))));

    // The register is corrected: the entry now holds the registry's own five items.
    let snapshot = scalar(&mut conn, "SELECT max(id) AS n FROM resident_snapshots");
    let fixed = diesel::sql_query(
        "UPDATE resident_records r
            SET name_kanji = p.name_kanji, name_kana = p.name_kana, birth_date = p.birth_date,
                sex = CASE WHEN p.sex IN (1, 2) THEN p.sex ELSE r.sex END, address = p.address
           FROM linkages l JOIN persons p ON p.id = l.person_id
          WHERE l.id = $1 AND r.mn_blind = l.mn_blind AND r.snapshot_id = $2",
    )
    .bind::<BigInt, _>(linkage)
    .bind::<BigInt, _>(snapshot)
    .execute(&mut db.owner_conn())
    .unwrap();
    assert_eq!(fixed, 1);
    let r2 = run(&db, date, 2);
    assert_eq!(finding(&mut conn, f.id).status, "resolved");
    assert!(r2.merge.linkages.restored >= 1);
    assert!(linkage_blocks(&mut conn).contains(&(linkage, "active".into(), None)));
    #[derive(QueryableByName)]
    struct Reason {
        #[diesel(sql_type = Nullable<Text>)]
        reason: Option<String>,
    }
    let last = diesel::sql_query(
        "SELECT reason FROM linkage_events WHERE linkage_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind::<BigInt, _>(linkage)
    .get_result::<Reason>(&mut conn)
    .unwrap();
    assert_eq!(
        last.reason.as_deref(),
        Some(format!("finding {} resolved", f.id).as_str())
    );
}

#[test]
fn confirming_the_identity_dismisses_the_blocking_findings_and_a_rerun_keeps_them_so() {
    let data = data_set(79, 1_000);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, true);
    let date = data.config.reference_date;
    run(&db, date, 2);
    let (linkage, _, by) = linkage_blocks(&mut conn)
        .into_iter()
        .find(|b| b.2.is_some())
        .unwrap();
    let by = by.unwrap();
    let v = shikaku_db::linkages::confirm_identity(
        &mut conn,
        linkage,
        "5 items checked with J-LIS by phone",
        "reviewer",
    )
    .unwrap();
    assert_eq!(
        (
            v.status.as_str(),
            v.suspended_by_finding,
            v.identity_confirmed
        ),
        ("active", None, true)
    );
    // Every critical finding about the linkage is dismissed with the reviewer's reason.
    for f in findings(&mut conn)
        .iter()
        .filter(|f| f.linkage_id == Some(linkage) && f.severity == "critical")
    {
        assert_eq!(f.status, "dismissed", "{f:#?}");
        assert_eq!(
            f.review_reason.as_deref(),
            Some("5 items checked with J-LIS by phone")
        );
    }
    assert_eq!(finding(&mut conn, by).status, "dismissed");
    let r2 = run(&db, date, 2);
    assert_eq!(r2.merge.linkages, Default::default());
    assert!(linkage_blocks(&mut conn).contains(&(linkage, "active".into(), None)));
}
