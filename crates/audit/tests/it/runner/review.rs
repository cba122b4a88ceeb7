//! Review states across runs: verdicts survive a re-run, fixed data resolves a finding and a
//! relapse reopens it, and each finding keeps the comparison and variant table of its run.

use super::*;

// ---------------------------------------------------------------------------------------------
// 3. Review states survive a re-run

#[test]
fn rerun_keeps_review_states() {
    let data = data_set(31, 1_000);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, true);
    let date = data.config.reference_date;
    let r1 = run(&db, date, 2);
    let before = findings(&mut conn);
    let dismissed = before
        .iter()
        .find(|f| f.kind == "identity_mismatch")
        .unwrap()
        .clone();
    let confirmed = before
        .iter()
        .find(|f| f.kind == "invalid_check_digit")
        .unwrap()
        .clone();

    // A review needs a reason.
    assert!(findings::review(&mut conn, dismissed.id, ReviewAction::Dismiss, " ", "r").is_err());
    let d = findings::review(
        &mut conn,
        dismissed.id,
        ReviewAction::Dismiss,
        "checked the koseki: same person, name changed by marriage",
        "reviewer-a",
    )
    .unwrap();
    assert_eq!(d.status, shikaku_domain::FindingStatus::Dismissed);
    let c = findings::review(
        &mut conn,
        confirmed.id,
        ReviewAction::Confirm,
        "number mistyped by the employer",
        "reviewer-b",
    )
    .unwrap();
    assert_eq!(c.status, shikaku_domain::FindingStatus::Confirmed);

    let r2 = run(&db, date, 2);
    assert!(r2.run_id > r1.run_id);
    let after = findings(&mut conn);
    assert_eq!(content(&after), content(&before));
    for f in &after {
        assert_eq!(f.first_seen_run, r1.run_id, "{f:#?}");
        assert_eq!(f.last_seen_run, r2.run_id, "{f:#?}");
        assert_eq!(f.resolved_run, None);
        let status = if f.id == dismissed.id {
            "dismissed"
        } else if f.id == confirmed.id {
            "confirmed"
        } else {
            "open"
        };
        assert_eq!(f.status, status, "{f:#?}");
    }
    let d = finding(&mut conn, dismissed.id);
    assert_eq!(
        d.review_reason.as_deref(),
        Some("checked the koseki: same person, name changed by marriage")
    );
    let c = finding(&mut conn, confirmed.id);
    assert_eq!(
        c.review_reason.as_deref(),
        Some("number mistyped by the employer")
    );
    let actions = |conn: &mut PgConnection, id| {
        events(conn, id)
            .into_iter()
            .map(|e| e.action)
            .collect::<Vec<_>>()
    };
    assert_eq!(actions(&mut conn, dismissed.id), ["detected", "dismissed"]);
    assert_eq!(actions(&mut conn, confirmed.id), ["detected", "confirmed"]);
    let history = findings::show(&mut conn, dismissed.id).unwrap().events;
    assert_eq!(history[1].event.actor, "reviewer-a");

    let row = run_row(&mut conn, r2.run_id);
    assert_eq!(row.status, "finished");
    assert_eq!(row.findings_new, 0);
    assert_eq!(row.findings_resolved, 0);
    assert_eq!(row.findings_detected, i64::try_from(after.len()).unwrap());
    assert_eq!(r2.merge.new, 0);
    assert_eq!(r2.merge.reopened, 0);
    assert_eq!(r2.merge.seen_again, u64::try_from(after.len()).unwrap());
}

// ---------------------------------------------------------------------------------------------
// 4. Auto-resolve and reopen

#[test]
fn fixed_data_resolves_the_finding_and_a_relapse_reopens_it() {
    let data = data_set(41, 1_000);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, true);
    let date = data.config.reference_date;
    let r1 = run(&db, date, 2);
    let before = findings(&mut conn);
    let address = before
        .iter()
        .find(|f| f.kind == "address_mismatch")
        .unwrap()
        .clone();
    let missing = before
        .iter()
        .find(|f| f.kind == "not_in_registry")
        .unwrap()
        .clone();

    // Fix the data: a new register snapshot that has the missing number (with the person's
    // items), and in it the moved person's address as the registry has it.
    let digits = digits_of(&mut conn, &k, missing.linkage_id.unwrap());
    let person = items(&mut conn, missing.person_id);
    let fixed = residents_plus(&data.residents, &digits, &person);
    let snapshot = import_residents(&mut conn, &k, &fixed);
    // Edited in place as the owner: the application role may only import snapshots.
    let updated = diesel::sql_query(
        "UPDATE resident_records r SET address = p.address
         FROM linkages l JOIN persons p ON p.id = l.person_id
         WHERE l.id = $1 AND r.mn_blind = l.mn_blind AND r.snapshot_id = $2",
    )
    .bind::<BigInt, _>(address.linkage_id.unwrap())
    .bind::<BigInt, _>(snapshot)
    .execute(&mut db.owner_conn())
    .unwrap();
    assert_eq!(updated, 1);

    let r2 = run(&db, date, 2);
    assert_eq!(r2.snapshot_id, Some(snapshot));
    for f in [&address, &missing] {
        let now = finding(&mut conn, f.id);
        assert_eq!(now.status, "resolved", "{now:#?}");
        assert_eq!(now.resolved_run, Some(r2.run_id));
        assert_eq!(now.last_seen_run, r1.run_id);
        let ev = events(&mut conn, f.id);
        let last = ev.last().unwrap();
        assert_eq!(last.action, "resolved");
        assert_eq!(last.run_id, Some(r2.run_id));
        let reason = last.reason.as_deref().unwrap();
        assert!(
            reason.contains(&format!("audit run {}", r2.run_id)),
            "{reason}"
        );
    }
    // Nothing else changed: every other finding is still open and seen by the new run, and no
    // new finding appeared for the number now in the register.
    let after = findings(&mut conn);
    assert_eq!(after.len(), before.len());
    for f in &after {
        if f.id != address.id && f.id != missing.id {
            assert_eq!((f.status.as_str(), f.last_seen_run), ("open", r2.run_id));
        }
    }
    let row = run_row(&mut conn, r2.run_id);
    assert_eq!((row.findings_new, row.findings_resolved), (0, 2));
    assert_eq!(r2.merge.resolved, 2);

    // The problems come back: the next extract is the old one again.
    import_residents(&mut conn, &k, &data.residents);
    let r3 = run(&db, date, 2);
    for f in [&address, &missing] {
        let now = finding(&mut conn, f.id);
        assert_eq!(now.status, "open", "{now:#?}");
        assert_eq!(now.resolved_run, None);
        assert_eq!(now.first_seen_run, r1.run_id);
        assert_eq!(now.last_seen_run, r3.run_id);
        assert_eq!(now.fingerprint, f.fingerprint);
        let ev = events(&mut conn, f.id);
        let actions: Vec<&str> = ev.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["detected", "resolved", "reopened"]);
        assert_eq!(ev[2].run_id, Some(r3.run_id));
    }
    assert_eq!(content(&findings(&mut conn)), content(&before));
    let row = run_row(&mut conn, r3.run_id);
    assert_eq!((row.findings_new, row.findings_resolved), (0, 0));
    assert_eq!(r3.merge.reopened, 2);
}

#[test]
fn each_finding_keeps_the_comparison_and_variant_table_of_its_run() {
    let data = data_set(43, 800);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, true);
    let date = data.config.reference_date;
    let r1 = run(&db, date, 2);
    let stored = findings(&mut conn);
    let identity = stored
        .iter()
        .find(|f| f.kind == "identity_mismatch" && f.fields.contains("name_kanji"))
        .expect("an identity mismatch on the kanji name");
    let detail = findings::show(&mut conn, identity.id).unwrap();
    let c = &detail.finding.comparison;
    // All five items, in order, each with what the run saw.
    let fields: Vec<Field> = c.iter().map(|x| x.field).collect();
    assert_eq!(
        fields,
        [
            Field::NameKanji,
            Field::NameKana,
            Field::BirthDate,
            Field::Sex,
            Field::Address
        ]
    );
    let kanji = &c[0];
    assert!(kanji.verdict.unwrap().disagrees(), "{kanji:?}");
    assert!(kanji.registry.is_some() && kanji.register.is_some());
    assert_ne!(kanji.registry_key, kanji.register_key);
    let info = detail.variant_table.expect("the run's variant table");
    assert_eq!(info.sources, [DEFAULT_SOURCE]);
    assert_eq!(info.sha256, VariantTable::default().info().sha256);
    assert_eq!(detail.finding.last_seen_run, r1.run_id);
    // Findings of other kinds carry no comparison.
    let other = stored.iter().find(|f| f.kind == "not_in_registry").unwrap();
    assert!(findings::show(&mut conn, other.id)
        .unwrap()
        .finding
        .comparison
        .is_empty());

    // A run with an insurer's extra table records that table, and the finding now points at it.
    let mut ctx = AuditContext::new(date);
    ctx.variants
        .extend_from_str("/etc/shikaku/site-variants.txt", "斎 斉")
        .unwrap();
    let r2 = run_audit(
        db.url(),
        &ctx,
        &RunOptions {
            threads: Some(2),
            actor: "test",
            progress: &no_run_progress,
            rows_per_file: None,
            standby: None,
        },
    )
    .unwrap();
    let detail = findings::show(&mut conn, identity.id).unwrap();
    assert_eq!(detail.finding.last_seen_run, r2.run_id);
    let info2 = detail.variant_table.unwrap();
    assert_eq!(
        info2.sources,
        [DEFAULT_SOURCE, "/etc/shikaku/site-variants.txt"]
    );
    assert_ne!(info2.sha256, info.sha256);
    assert_eq!(info2.characters, info.characters + 1);
}
