//! The audit's benefit pass on a generated data set with benefits.csv: every planted benefit
//! inconsistency (a 70–74 co-pay the age rules do not allow, a 特定疾病 record running past a
//! lost qualification) is stored as a low `benefit_inconsistent` finding without a number, no
//! other record raises one, a re-run keeps them, and a corrected record resolves its finding.

use super::*;
use shikaku_fixtures::generate_with_benefits_to;

#[test]
fn planted_benefit_inconsistencies_are_found_and_nothing_else() {
    let config = Config {
        persons: 6_000,
        seed: 21,
        defect_rate: 0.02,
        variant_rate: 0.1,
        ..Config::default()
    };
    let mut bufs: [Vec<u8>; 5] = Default::default();
    let mut benefits = Vec::new();
    {
        let [insurers, p, l, r, t] = &mut bufs;
        generate_with_benefits_to(
            &config,
            Outputs {
                insurers,
                persons: p,
                linkages: l,
                residents: r,
                truth: t,
            },
            &mut benefits,
        )
        .unwrap();
    }
    let truth = read_truth_from(&bufs[4][..]).unwrap();
    let planted: BTreeSet<String> = truth
        .iter()
        .filter(|t| t.kind == "benefit_inconsistent")
        .map(truth_key)
        .collect();
    assert!(
        planted.len() >= 2,
        "the generator plants both cases: {planted:?}"
    );

    let k = Keyring::generate();
    let db = TestDb::new();
    let mut conn = db.conn();
    import_persons(&mut conn, &bufs[1]);
    import_linkages(&mut conn, &k, &bufs[2]);
    import_residents(&mut conn, &k, &bufs[3]);
    let mut sink = CollectIssues::default();
    let r = import::import_benefits(
        &mut conn,
        &import_ctx("benefits.csv"),
        &benefits[..],
        &mut sink,
    );
    let s = applied("benefits.csv", r, sink);
    assert!(s.inserted > 50, "{s:?}");

    let date = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    run(&db, date, 2);
    let found: Vec<Stored> = findings(&mut conn)
        .into_iter()
        .filter(|f| f.kind == "benefit_inconsistent")
        .collect();
    let keys: BTreeSet<String> = found.iter().map(|f| f.person_key.clone()).collect();
    assert_eq!(keys, planted, "{found:#?}");
    assert!(found
        .iter()
        .all(|f| f.severity == "low" && f.mn_last4.is_empty() && f.linkage_id.is_none()));

    // A re-run finds the same ones again; correcting one record resolves its finding.
    let run2 = run(&db, date, 2);
    let again: Vec<Stored> = findings(&mut conn)
        .into_iter()
        .filter(|f| f.kind == "benefit_inconsistent")
        .collect();
    assert_eq!(again.len(), found.len());
    assert!(again
        .iter()
        .all(|f| f.last_seen_run == run2.run_id && f.resolved_run.is_none()));
    let copay = found
        .iter()
        .find(|f| f.detail.starts_with("co-pay"))
        .expect("the copay case");
    diesel::sql_query(
        "UPDATE benefits SET value = '20' WHERE person_id = $1 AND kind = 'copay' AND value = '10'",
    )
    .bind::<BigInt, _>(copay.person_id)
    .execute(&mut conn)
    .unwrap();
    let run3 = run(&db, date, 2);
    let after = finding(&mut conn, copay.id);
    assert_eq!(after.resolved_run, Some(run3.run_id), "{after:?}");
}
