//! The review queue at a million findings (`scripts/bench queue`): the first page and pages
//! after cursors deep in the queue, for each order and the filters reviewers use, with the
//! exact totals checked against a count of the findings. Ignored in the suite: it needs
//! `SHIKAKU_BENCH_URL`, a migrated database with persons imported, and generates the
//! findings there itself (once).

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Text};
use shikaku_db::findings::{self, Assignee, Cursor, Filter, QueueOrder};
use shikaku_domain::evidence::{Channel, Evidence, Item, ItemWeight, Level};
use shikaku_domain::finding::{
    Field, FieldComparison, FieldMatch, FindingKind, FindingStatus, Severity,
};

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn scalar(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<N>(conn).unwrap().n
}

/// Generates `n` findings over the imported persons, shaped like a nightly audit's: mostly
/// identity and address mismatches with their comparison and evidence, a fifth resolved, a
/// sixth dismissed, one in ten assigned to one of 20 reviewers, first seen over 400 days.
fn generate(conn: &mut PgConnection, n: i64) {
    let item = |item, level, bits| ItemWeight { item, level, bits };
    let evidence = Evidence {
        p_other_person: 0.5,
        channel: Channel::ThreeItemLookup,
        prior_bits: -10.5,
        items: vec![
            item(Item::Name, Some(Level::NameHomophone), 15.3),
            item(Item::BirthDate, Some(Level::BirthSame), 0.0),
            item(Item::Sex, Some(Level::SexSame), 0.0),
            item(Item::Address, None, 0.0),
        ],
        frequency_bits: 0.4,
        other_channels_bits: 0.1,
    };
    let compare = |field, a: &str, b: &str| FieldComparison {
        field,
        registry: Some(a.into()),
        register: Some(b.into()),
        registry_key: Some(a.into()),
        register_key: Some(b.into()),
        verdict: Some(if a == b {
            FieldMatch::Exact
        } else {
            FieldMatch::Different { score: 0.2 }
        }),
    };
    let comparison = vec![
        compare(Field::NameKanji, "試験　花子", "見本　花子"),
        compare(Field::NameKana, "シケン　ハナコ", "ミホン　ハナコ"),
        compare(Field::BirthDate, "1980-01-02", "1980-01-02"),
        compare(Field::Sex, "2", "2"),
        compare(
            Field::Address,
            "東京都千代田区千代田1-1",
            "東京都千代田区千代田1-1",
        ),
    ];
    let run = scalar(
        conn,
        "INSERT INTO audit_runs (run_date, status, finished_at) VALUES (current_date, 'finished', now())
         RETURNING id AS n",
    );
    diesel::sql_query(
        "WITH p AS (SELECT array_agg(id ORDER BY id) AS ids,
                           array_agg(insurer_number ORDER BY id) AS ins, count(*) AS n FROM persons),
         g AS (
            SELECT g, abs(hashtext('k' || g)) % 100 AS rk, abs(hashtext('s' || g)) % 100 AS rs,
                   abs(hashtext('t' || g)) % 100 AS rt, abs(hashtext('a' || g)) % 100 AS ra,
                   1 + abs(hashtext('p' || g)) % p.n AS pi, p.ids, p.ins
              FROM generate_series(1::bigint, $1) g, p
         ), k AS (
            SELECT g.*, CASE WHEN rk < 45 THEN 'identity_mismatch' WHEN rk < 75 THEN 'address_mismatch'
                             WHEN rk < 90 THEN 'not_in_registry' WHEN rk < 94 THEN 'number_shared'
                             WHEN rk < 96 THEN 'multiple_numbers' WHEN rk < 99 THEN 'resident_removed'
                             ELSE 'invalid_check_digit' END AS kind,
                   CASE WHEN rt < 60 THEN 'open' WHEN rt < 65 THEN 'confirmed'
                        WHEN rt < 80 THEN 'dismissed' ELSE 'resolved' END AS status
              FROM g
         )
         INSERT INTO findings (fingerprint, kind, severity, person_id, insurer_number, mn_last4,
                               fields, detail, status, first_seen_run, last_seen_run, first_seen,
                               last_seen, review_reason, reviewed_by, reviewed_at, assignee,
                               comparison, p_other_person, evidence, basis)
         SELECT 'bench-' || g, kind,
                CASE WHEN kind = 'identity_mismatch' THEN
                          CASE WHEN rs < 5 THEN 'critical' WHEN rs < 65 THEN 'high' ELSE 'medium' END
                     WHEN kind = 'address_mismatch' THEN 'low'
                     WHEN kind = 'not_in_registry' THEN 'medium'
                     WHEN kind = 'number_shared' THEN CASE WHEN rs < 50 THEN 'critical' ELSE 'high' END
                     ELSE 'high' END,
                ids[pi], ins[pi], lpad((g % 10000)::text, 4, '0'),
                CASE WHEN kind IN ('identity_mismatch', 'address_mismatch') THEN 'name_kanji' ELSE '' END,
                'bench finding ' || g, status, $2, $2,
                now() - (($1 - g) * interval '400 days') / $1, now(),
                CASE WHEN status IN ('confirmed', 'dismissed') THEN 'bench review' END,
                CASE WHEN status IN ('confirmed', 'dismissed') THEN 'bench' END,
                CASE WHEN status IN ('confirmed', 'dismissed') THEN now() END,
                CASE WHEN ra < 10 THEN 'reviewer-' || lpad((g % 20)::text, 2, '0') END,
                CASE WHEN kind IN ('identity_mismatch', 'address_mismatch') THEN $3 END,
                CASE WHEN kind IN ('identity_mismatch', 'address_mismatch') THEN ((g * 7) % 1000) / 1000.0 END,
                CASE WHEN kind IN ('identity_mismatch', 'address_mismatch')
                     THEN jsonb_set($4, '{p_other_person}', to_jsonb(((g * 7) % 1000) / 1000.0)) END,
                '{}'::jsonb
           FROM k",
    )
    .bind::<BigInt, _>(n)
    .bind::<BigInt, _>(run)
    .bind::<Jsonb, _>(serde_json::to_value(&comparison).unwrap())
    .bind::<Jsonb, _>(serde_json::to_value(&evidence).unwrap())
    .execute(conn)
    .unwrap();
    diesel::sql_query("VACUUM ANALYZE findings")
        .execute(conn)
        .unwrap();
    diesel::sql_query("ANALYZE finding_counts")
        .execute(conn)
        .unwrap();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median and maximum of `runs` timings of `f`.
fn time(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            ms(start.elapsed())
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[t.len() - 1])
}

#[test]
#[ignore = "benchmark: scripts/bench queue"]
fn bench_queue_at_a_million_findings() {
    let url = std::env::var("SHIKAKU_BENCH_URL").expect("SHIKAKU_BENCH_URL");
    let want: i64 = std::env::var("BENCH_FINDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut conn = PgConnection::establish(&url).unwrap();
    let have = scalar(&mut conn, "SELECT count(*) AS n FROM findings");
    if have < want {
        let start = Instant::now();
        generate(&mut conn, want - have);
        eprintln!(
            "generated {} findings in {:.1} s",
            want - have,
            start.elapsed().as_secs_f64()
        );
    }
    let total = scalar(&mut conn, "SELECT count(*) AS n FROM findings");
    let insurer = diesel::sql_query(
        "SELECT insurer_number AS t FROM findings GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
    )
    .get_result::<T>(&mut conn)
    .unwrap()
    .t;
    #[derive(QueryableByName)]
    struct T {
        #[diesel(sql_type = Text)]
        t: String,
    }
    let open = Filter {
        status: Some(FindingStatus::Open),
        ..Filter::default()
    };
    let filters: Vec<(&str, Filter)> = vec![
        ("open", open.clone()),
        (
            "open, critical",
            Filter {
                severity: Some(Severity::Critical),
                ..open.clone()
            },
        ),
        (
            "open, one insurer",
            Filter {
                insurer: Some(insurer.clone()),
                ..open.clone()
            },
        ),
        (
            "open, my queue",
            Filter {
                assignee: Some(Assignee::Reviewer("reviewer-03".into())),
                ..open.clone()
            },
        ),
        (
            "open, unassigned",
            Filter {
                assignee: Some(Assignee::Nobody),
                ..open.clone()
            },
        ),
        (
            "open, invalid_check_digit",
            Filter {
                kind: Some(FindingKind::InvalidCheckDigit),
                ..open.clone()
            },
        ),
        (
            "dismissed, address",
            Filter {
                status: Some(FindingStatus::Dismissed),
                kind: Some(FindingKind::AddressMismatch),
                ..Filter::default()
            },
        ),
        ("any status", Filter::default()),
    ];
    // A line of its own: libtest has printed the test's name without a newline.
    println!();
    println!(
        "### Review queue, {total} findings ({})",
        chrono::Utc::now().date_naive()
    );
    println!();
    println!("Page of 100 (with the exact total); after-cursor is the slowest of cursors at 10%, 50%, 90% and the last page. Median / max of 5 runs, ms.");
    println!();
    println!("| filter | order | matches | first page | after cursor |");
    println!("| --- | --- | ---: | ---: | ---: |");
    let mut worst: f64 = 0.0;
    for (name, filter) in &filters {
        let exact = {
            let page = findings::page(&mut conn, filter, QueueOrder::Severity, None, 1).unwrap();
            let counted = count_by_scan(&mut conn, filter);
            assert_eq!(page.total, counted, "{name}: the total is not exact");
            counted
        };
        for order in QueueOrder::ALL {
            let first = time(5, || {
                findings::page(&mut conn, filter, *order, None, 100).unwrap();
            });
            let mut after = (0.0f64, 0.0f64);
            for at in [exact / 10, exact / 2, exact * 9 / 10, (exact - 50).max(1)] {
                let Some(cursor): Option<Cursor> =
                    findings::queue::cursor_at(&mut conn, filter, *order, at).unwrap()
                else {
                    continue;
                };
                let t = time(5, || {
                    findings::page(&mut conn, filter, *order, Some(&cursor), 100).unwrap();
                });
                if t.1 > after.1 {
                    after = t;
                }
            }
            worst = worst.max(first.1).max(after.1);
            println!(
                "| {name} | {order} | {exact} | {:.1} / {:.1} | {:.1} / {:.1} |",
                first.0, first.1, after.0, after.1
            );
        }
    }
    println!();
    println!("Slowest page: {worst:.1} ms.");
}

/// The filter's count from the findings themselves, to check the kept totals against.
fn count_by_scan(conn: &mut PgConnection, filter: &Filter) -> i64 {
    let mut with_run = filter.clone();
    // A run filter makes `count` scan the findings; the bench's single run matches all.
    with_run.run_id = Some(scalar(conn, "SELECT max(id) AS n FROM audit_runs"));
    findings::count(conn, &with_run).unwrap()
}
