//! The reviewers' queue over real audit findings: keyset pages that stay stable while another
//! reviewer decides findings, exact counts after every kind of change, assignment and its
//! history, bulk decisions refused for critical findings and undone on the day, dismissals
//! re-opened by a changed register value or a passed date, and the review report.

use super::*;
use shikaku_db::findings::bulk::{self, Assignment, Selection};
use shikaku_db::findings::queue::Read;
use shikaku_db::findings::{Assignee, Cursor, Filter, QueueOrder, Verdict};
use shikaku_db::tokens::{self, Role};
use shikaku_domain::finding::{FindingStatus, Severity};

/// `finding_counts` agrees with the findings, combination by combination.
fn assert_counts_exact(conn: &mut PgConnection) {
    let differing = scalar(
        conn,
        "SELECT (SELECT count(*) FROM (
            SELECT status, severity, kind, insurer_number, coalesce(assignee, '') AS assignee,
                   count(*) AS n
              FROM findings GROUP BY 1, 2, 3, 4, 5
         ) f FULL JOIN (SELECT * FROM finding_counts WHERE n <> 0) c
           USING (status, severity, kind, insurer_number, assignee)
          WHERE f.n IS DISTINCT FROM c.n) AS n FROM (SELECT 1) one",
    );
    assert_eq!(differing, 0, "finding_counts disagrees with the findings");
}

/// Every finding `filter` matches, read a page of `limit` at a time in `order`, with the
/// totals each page reported. `between` runs after the first page. `gather` says how pages are
/// read.
fn read_all(
    conn: &mut PgConnection,
    filter: &Filter,
    order: QueueOrder,
    limit: i64,
    gather: Read,
    mut between: impl FnMut(&[i64]),
) -> (Vec<i64>, Vec<i64>) {
    let (mut ids, mut totals) = (Vec::new(), Vec::new());
    let mut after: Option<Cursor> = None;
    loop {
        let page =
            findings::queue::page_with(conn, filter, order, after.as_ref(), limit, gather).unwrap();
        totals.push(page.total);
        let first = after.is_none();
        ids.extend(page.findings.iter().map(|f| f.id));
        if first {
            between(&ids);
        }
        match page.next_cursor {
            Some(c) => after = Some(c.parse().unwrap()),
            None => break,
        }
    }
    (ids, totals)
}

fn open() -> Filter {
    Filter {
        status: Some(FindingStatus::Open),
        ..Filter::default()
    }
}

#[test]
fn pages_stay_stable_while_another_reviewer_decides_findings() {
    let data = data_set(51, 1_500);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, true);
    run(&db, data.config.reference_date, 2);
    assert_counts_exact(&mut conn);
    let mut other = db.conn();
    // Both ways of reading a page: gathering the matches, and walking the order's index.
    let ways = QueueOrder::ALL
        .iter()
        .flat_map(|o| [(*o, Read::Gather), (*o, Read::Walk)]);
    for (n, (order, gather)) in ways.enumerate() {
        let order = &order;
        // The whole open queue in this order, read once undisturbed.
        let (before, totals) = read_all(&mut conn, &open(), *order, 1000, gather, |_| {});
        assert_eq!(totals, [before.len() as i64]);
        assert!(before.len() > 40, "{}", before.len());
        // Read again 10 at a time; after the first page another reviewer dismisses two
        // findings already shown and two not yet shown.
        let mut decided = Vec::new();
        let (paged, totals) = read_all(&mut conn, &open(), *order, 10, gather, |shown| {
            let ahead = &before[shown.len() + 5..];
            for id in [shown[1], shown[7], ahead[0], ahead[ahead.len() / 2]] {
                findings::review(
                    &mut other,
                    id,
                    ReviewAction::Dismiss,
                    &format!("checked ({n})"),
                    "reviewer-b",
                )
                .unwrap();
                decided.push(id);
            }
        });
        // Nothing shown twice, nothing open skipped, and the two decided ahead never shown.
        let unique: BTreeSet<i64> = paged.iter().copied().collect();
        assert_eq!(unique.len(), paged.len(), "{order}: a finding shown twice");
        let expected: Vec<i64> = before
            .iter()
            .copied()
            .filter(|id| !decided[2..].contains(id))
            .collect();
        assert_eq!(paged, expected, "{order} ({gather:?})");
        // Both ways agree on a filtered queue too, page by page.
        let narrow = Filter {
            severity: Some(Severity::High),
            ..open()
        };
        let walked = read_all(&mut conn, &narrow, *order, 7, Read::Walk, |_| {}).0;
        let gathered = read_all(&mut conn, &narrow, *order, 7, Read::Gather, |_| {}).0;
        assert_eq!(walked, gathered, "{order}");
        assert!(!walked.is_empty());
        // The first page counted the queue before the decisions, the later ones after.
        assert_eq!(totals[0], before.len() as i64);
        assert!(totals[1..].iter().all(|t| *t == before.len() as i64 - 4));
        assert_counts_exact(&mut conn);
    }
    // The five orders sort what they say.
    let all: Vec<_> = findings::page(&mut conn, &open(), QueueOrder::Kind, None, 1000)
        .unwrap()
        .findings;
    assert!(all
        .windows(2)
        .all(|w| (w[0].kind.as_str(), w[0].id) < (w[1].kind.as_str(), w[1].id)));
    let all = findings::page(&mut conn, &open(), QueueOrder::Severity, None, 1000)
        .unwrap()
        .findings;
    assert!(all.windows(2).all(|w| w[0].severity >= w[1].severity));
    // A cursor of one order is refused for another, and a made-up one is refused.
    let c: Cursor = "kind:identity_mismatch:1".parse().unwrap();
    assert!(findings::page(&mut conn, &open(), QueueOrder::Severity, Some(&c), 10).is_err());
    assert!("severity:1:1 OR 1=1".parse::<Cursor>().is_err());
}

#[test]
fn bulk_decisions_refuse_critical_findings_and_are_undone_on_the_day() {
    let data = data_set(53, 1_500);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, true);
    run(&db, data.config.reference_date, 2);
    let all = findings(&mut conn);
    let critical = all
        .iter()
        .find(|f| f.severity == "critical")
        .unwrap()
        .clone();
    let medium: Vec<i64> = all
        .iter()
        .filter(|f| f.severity == "medium")
        .map(|f| f.id)
        .collect();
    assert!(medium.len() >= 3);
    let dismiss = Verdict {
        action: ReviewAction::Dismiss,
        reason: "checked with the employer: numbers pending J-LIS lookup".into(),
        until: None,
    };

    // The open queue holds critical findings: the preview says so and the action is refused.
    let everything = Selection::Filter(open());
    let p = bulk::preview(&mut conn, &everything).unwrap();
    assert!(p.critical > 0);
    assert!(p.refused.as_deref().unwrap().contains("critical"), "{p:?}");
    let refused = bulk::decide(&mut conn, &everything, &dismiss, p.decidable, "reviewer-a");
    assert!(
        matches!(&refused, Err(shikaku_db::DbError::Conflict(m)) if m.contains("critical")),
        "{refused:?}"
    );
    // So is a ticked selection with one critical finding among them.
    let ticked = Selection::Ids(vec![medium[0], critical.id]);
    assert!(bulk::decide(&mut conn, &ticked, &dismiss, 2, "reviewer-a").is_err());
    assert_eq!(finding(&mut conn, critical.id).status, "open");
    assert_eq!(finding(&mut conn, medium[0]).status, "open");

    // The medium ones: previewed, then decided with the count the preview showed.
    let selection = Selection::Filter(Filter {
        severity: Some(Severity::Medium),
        ..open()
    });
    let p = bulk::preview(&mut conn, &selection).unwrap();
    assert_eq!(
        (p.decidable, p.critical, p.refused.clone()),
        (medium.len() as i64, 0, None)
    );
    assert_eq!(
        p.by_kind.iter().map(|k| k.findings).sum::<i64>(),
        medium.len() as i64
    );
    let stale = bulk::decide(
        &mut conn,
        &selection,
        &dismiss,
        p.decidable + 1,
        "reviewer-a",
    );
    assert!(
        matches!(&stale, Err(shikaku_db::DbError::Conflict(m)) if m.contains("changed since the preview")),
        "{stale:?}"
    );
    let done = bulk::decide(&mut conn, &selection, &dismiss, p.decidable, "reviewer-a").unwrap();
    assert_eq!(done.findings, medium.len() as i64);
    for id in &medium {
        let d = findings::show(&mut conn, *id).unwrap();
        assert_eq!(d.finding.status, FindingStatus::Dismissed);
        assert_eq!(
            d.finding.review_reason.as_deref(),
            Some(dismiss.reason.as_str())
        );
        let last = d.events.last().unwrap();
        assert_eq!(
            (last.event.action.as_str(), last.bulk_id),
            ("dismissed", Some(done.bulk_id))
        );
    }
    assert_counts_exact(&mut conn);

    // Another reviewer changes one of them afterwards: the undo leaves that one alone.
    findings::review(
        &mut conn,
        medium[0],
        ReviewAction::Confirm,
        "mistyped after all",
        "reviewer-b",
    )
    .unwrap();
    let undone = bulk::undo(&mut conn, done.bulk_id, "reviewer-a").unwrap();
    assert_eq!((undone.restored, undone.kept), (medium.len() as i64 - 1, 1));
    assert_eq!(finding(&mut conn, medium[0]).status, "confirmed");
    for id in &medium[1..] {
        let d = findings::show(&mut conn, *id).unwrap();
        assert_eq!(d.finding.status, FindingStatus::Open);
        assert_eq!(d.finding.review_reason, None);
        let actions: Vec<&str> = d.events.iter().map(|e| e.event.action.as_str()).collect();
        assert_eq!(actions, ["detected", "dismissed", "undone"]);
    }
    assert!(bulk::undo(&mut conn, done.bulk_id, "reviewer-a").is_err());
    assert_counts_exact(&mut conn);

    // A bulk action of an earlier day cannot be undone.
    let again = bulk::decide(
        &mut conn,
        &Selection::Ids(medium[1..].to_vec()),
        &dismiss,
        medium.len() as i64 - 1,
        "reviewer-a",
    )
    .unwrap();
    diesel::sql_query("UPDATE finding_bulk_actions SET at = at - interval '1 day' WHERE id = $1")
        .bind::<BigInt, _>(again.bulk_id)
        .execute(&mut db.owner_conn())
        .unwrap();
    let late = bulk::undo(&mut conn, again.bulk_id, "reviewer-a");
    assert!(
        matches!(&late, Err(shikaku_db::DbError::Conflict(m)) if m.contains("today")),
        "{late:?}"
    );

    // The report counts the decisions that stand: the undone action's are not among them.
    let today = shikaku_db::today_tokyo();
    let r = findings::report::report(&mut conn, today, today).unwrap();
    let a = r
        .reviewers
        .iter()
        .find(|c| c.actor == "reviewer-a")
        .unwrap();
    let b = r
        .reviewers
        .iter()
        .find(|c| c.actor == "reviewer-b")
        .unwrap();
    assert_eq!((a.confirmed, a.dismissed), (0, medium.len() as i64 - 1));
    assert_eq!((b.confirmed, b.dismissed), (1, 0));
    let i = &r.inspection;
    assert_eq!(i.found, all.len() as i64);
    assert_eq!(
        i.found,
        i.corrected + i.dismissed_with_reason + i.still_open
    );
    assert_eq!(i.dismissed_with_reason, medium.len() as i64 - 1);
    let open_now: i64 = r
        .open_by_age
        .iter()
        .map(|a| a.critical + a.high + a.medium + a.low)
        .sum();
    assert_eq!(open_now, findings::count(&mut conn, &open()).unwrap());
    assert!(r.median_hours_to_decision.is_some());
}

#[test]
fn assignment_and_every_change_of_it_is_in_the_history() {
    let data = data_set(55, 1_500);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, true);
    run(&db, data.config.reference_date, 2);
    for name in ["reviewer-a", "reviewer-b"] {
        tokens::create(&mut conn, Role::Auditor, name, None, "admin").unwrap();
    }
    tokens::create(&mut conn, Role::Clerk, "clerk-c", None, "admin").unwrap();
    let high = Filter {
        severity: Some(Severity::High),
        assignee: Some(Assignee::Nobody),
        ..open()
    };
    let queue: Vec<i64> = findings::page(&mut conn, &high, QueueOrder::FirstSeen, None, 1000)
        .unwrap()
        .findings
        .iter()
        .map(|f| f.id)
        .collect();
    assert!(queue.len() >= 7, "{}", queue.len());
    let to = |reviewers: &[&str], each| Assignment::To {
        reviewers: reviewers.iter().map(|r| r.to_string()).collect(),
        each,
        order: QueueOrder::FirstSeen,
    };

    // "All open high unassigned, 3 each to A and B", in queue order.
    let first = bulk::assign(
        &mut conn,
        &Selection::Filter(high.clone()),
        &to(&["reviewer-a", "reviewer-b"], Some(3)),
        "lead",
    )
    .unwrap();
    assert_eq!(first.findings, 6);
    let mine = |conn: &mut PgConnection, who: &str| {
        let f = Filter {
            assignee: Some(Assignee::Reviewer(who.into())),
            ..open()
        };
        let page = findings::page(conn, &f, QueueOrder::FirstSeen, None, 100).unwrap();
        assert_eq!(page.total, page.findings.len() as i64);
        page.findings.iter().map(|f| f.id).collect::<Vec<_>>()
    };
    assert_eq!(mine(&mut conn, "reviewer-a"), queue[..3]);
    assert_eq!(mine(&mut conn, "reviewer-b"), queue[3..6]);
    assert_eq!(
        findings::count(&mut conn, &high).unwrap(),
        queue.len() as i64 - 6
    );
    assert_counts_exact(&mut conn);

    // Reassigned, then returned to the shared queue: each change is an event.
    bulk::assign(
        &mut conn,
        &Selection::Ids(vec![queue[0]]),
        &to(&["reviewer-b"], None),
        "lead",
    )
    .unwrap();
    bulk::assign(
        &mut conn,
        &Selection::Ids(vec![queue[0]]),
        &Assignment::Clear,
        "lead",
    )
    .unwrap();
    let d = findings::show(&mut conn, queue[0]).unwrap();
    assert_eq!(d.finding.assignee, None);
    let history: Vec<(&str, Option<&str>, &str)> = d
        .events
        .iter()
        .map(|e| {
            (
                e.event.action.as_str(),
                e.assignee.as_deref(),
                e.event.actor.as_str(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("detected", None, "test"),
            ("assigned", Some("reviewer-a"), "lead"),
            ("assigned", Some("reviewer-b"), "lead"),
            ("unassigned", None, "lead"),
        ]
    );
    assert_eq!(d.events[1].bulk_id, Some(first.bulk_id));
    // Assigning to someone already holding it changes nothing and records nothing.
    let same = bulk::assign(
        &mut conn,
        &Selection::Ids(vec![queue[1]]),
        &to(&["reviewer-a"], None),
        "lead",
    )
    .unwrap();
    assert_eq!(same.findings, 0);
    // Only live admins and auditors can be given findings.
    for who in ["nobody-known", "clerk-c"] {
        let refused = bulk::assign(
            &mut conn,
            &Selection::Ids(vec![queue[1]]),
            &to(&[who], None),
            "lead",
        );
        assert!(
            matches!(refused, Err(shikaku_db::DbError::Invalid(_))),
            "{who}"
        );
    }
    // Undoing the first assignment gives back what nobody has changed since.
    let undone = bulk::undo(&mut conn, first.bulk_id, "lead").unwrap();
    assert_eq!((undone.restored, undone.kept), (5, 1));
    assert!(mine(&mut conn, "reviewer-a").is_empty());
    assert!(mine(&mut conn, "reviewer-b").is_empty());
    assert_counts_exact(&mut conn);
}

#[test]
fn a_dismissal_reopens_when_the_register_value_changes_or_its_date_passes() {
    let data = data_set(57, 1_500);
    let k = Keyring::generate();
    let (db, mut conn) = load(&data, &k, true);
    let date = data.config.reference_date;
    run(&db, date, 2);
    let identity: Vec<Stored> = findings(&mut conn)
        .into_iter()
        .filter(|f| f.kind == "identity_mismatch" && f.fields.contains("name_kanji"))
        .collect();
    assert!(identity.len() >= 3, "{}", identity.len());
    let (changed, steady, dated) = (&identity[0], &identity[1], &identity[2]);
    for f in [changed, steady] {
        findings::review(
            &mut conn,
            f.id,
            ReviewAction::Dismiss,
            "same person: 旧字体",
            "reviewer-a",
        )
        .unwrap();
    }
    let tomorrow = shikaku_db::today_tokyo().succ_opt().unwrap();
    findings::decide(
        &mut conn,
        dated.id,
        &Verdict {
            action: ReviewAction::Dismiss,
            reason: "awaiting the register's correction".into(),
            until: Some(tomorrow),
        },
        "reviewer-a",
    )
    .unwrap();
    // A date that is not in the future is refused.
    let today = Verdict {
        action: ReviewAction::Dismiss,
        reason: "x".into(),
        until: Some(shikaku_db::today_tokyo()),
    };
    assert!(findings::decide(&mut conn, steady.id, &today, "reviewer-a").is_err());

    // The next extract has a new address for the first person on the register side; the
    // dated dismissal's day has passed (set back as the owner: time passing).
    let snapshot = import_residents(&mut conn, &k, &data.residents);
    let moved = diesel::sql_query(
        "UPDATE resident_records r SET address = '北海道札幌市中央区北1条西2丁目（転居）'
         FROM linkages l WHERE l.id = $1 AND r.mn_blind = l.mn_blind AND r.snapshot_id = $2",
    )
    .bind::<BigInt, _>(changed.linkage_id.unwrap())
    .bind::<BigInt, _>(snapshot)
    .execute(&mut db.owner_conn())
    .unwrap();
    assert_eq!(moved, 1);
    diesel::sql_query("UPDATE findings SET dismissed_until = current_date - 1 WHERE id = $1")
        .bind::<BigInt, _>(dated.id)
        .execute(&mut db.owner_conn())
        .unwrap();

    let r2 = run(&db, date, 2);
    assert_eq!(r2.merge.dismissals_reopened, 2);
    let reopened = findings::show(&mut conn, changed.id).unwrap();
    assert_eq!(reopened.finding.status, FindingStatus::Open);
    let last = reopened.events.last().unwrap();
    assert_eq!(last.event.action, "reopened");
    let why = last.event.reason.as_deref().unwrap();
    assert!(why.contains("住所（住基）"), "{why}");
    assert!(!why.contains("氏名"), "only the address changed: {why}");
    let expired = findings::show(&mut conn, dated.id).unwrap();
    assert_eq!(expired.finding.status, FindingStatus::Open);
    assert_eq!(expired.finding.dismissed_until, None);
    let why = expired.events.last().unwrap().event.reason.clone().unwrap();
    assert!(why.contains("held until"), "{why}");
    // Nothing it judged changed: the other dismissal stands.
    assert_eq!(finding(&mut conn, steady.id).status, "dismissed");
    assert_counts_exact(&mut conn);

    // And a third run changes nothing more.
    let r3 = run(&db, date, 2);
    assert_eq!(r3.merge.dismissals_reopened, 0);
    assert_eq!(finding(&mut conn, steady.id).status, "dismissed");
}
