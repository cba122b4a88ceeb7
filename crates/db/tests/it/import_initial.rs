//! The initial load (`--initial`): into empty tables, indexes and keys built afterwards, and
//! the same registry as the normal import, row for row and history included.

use diesel::prelude::*;
use diesel::sql_types::Text;
use shikaku_db::import::{self, CollectIssues, ImportSummary, Issue};
use shikaku_db::testing::TestDb;
use shikaku_domain::records::FileKind;
use shikaku_domain::Keyring;

use crate::util::*;

/// The three generated files of a small insurer.
struct Files {
    persons: Vec<u8>,
    linkages: Vec<u8>,
    residents: Vec<u8>,
}

fn files(persons: u64) -> (Files, shikaku_fixtures::Summary) {
    let (mut insurers, mut persons_csv, mut linkages, mut residents, mut truth) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let config = shikaku_fixtures::Config {
        persons,
        seed: 16,
        ..shikaku_fixtures::Config::default()
    };
    let out = shikaku_fixtures::Outputs {
        insurers: &mut insurers,
        persons: &mut persons_csv,
        linkages: &mut linkages,
        residents: &mut residents,
        truth: &mut truth,
    };
    let summary = shikaku_fixtures::generate_to(&config, out).unwrap();
    let files = Files {
        persons: persons_csv,
        linkages,
        residents,
    };
    (files, summary)
}

fn load(
    conn: &mut PgConnection,
    kind: FileKind,
    keyring: &Keyring,
    data: &[u8],
    initial: bool,
) -> (ImportSummary, Vec<Issue>) {
    let mut sink = CollectIssues::default();
    let ctx = ctx("file.csv");
    let keys = kind.needs_keys().then_some(keyring);
    let summary = if initial {
        import::run_initial(conn, kind, &ctx, keys, data, &mut sink)
    } else {
        import::run(conn, kind, &ctx, keys, data, &mut sink, false)
    }
    .expect("the import must judge the file");
    (summary, sink.0)
}

#[derive(QueryableByName)]
struct Columns {
    #[diesel(sql_type = Text)]
    t: String,
    #[diesel(sql_type = Text)]
    s: String,
}

/// Every row of every table, without the columns that differ between two correct loads:
/// timestamps (the clock) and sealed numbers (a fresh nonce per seal). Blind indexes, the last
/// four digits and every id are compared.
fn rows(conn: &mut PgConnection) -> String {
    let tables: Vec<Columns> = diesel::sql_query(
        "SELECT c.table_name::text AS t,
                string_agg(quote_ident(c.column_name), ', ' ORDER BY c.ordinal_position) AS s
           FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_schema, table_name)
          WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
            AND c.table_name NOT LIKE '\\_\\_%'
            AND c.data_type NOT LIKE 'timestamp%' AND c.column_name <> 'mn_sealed'
          GROUP BY c.table_name ORDER BY c.table_name",
    )
    .load(conn)
    .unwrap();
    let mut out = String::new();
    for Columns { t, s: cols } in tables {
        out.push_str(&format!("== {t}\n"));
        out.push_str(&text(
            conn,
            &format!(
                "SELECT coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '') AS s
                   FROM (SELECT {cols} FROM {t}) r"
            ),
        ));
        out.push('\n');
    }
    out
}

/// The schema's indexes, constraints (and whether they are validated) and triggers (and
/// whether they are enabled).
fn schema(conn: &mut PgConnection) -> String {
    text(
        conn,
        "SELECT string_agg(x, E'\\n' ORDER BY x) AS s FROM (
           SELECT pg_get_indexdef(i.indexrelid) AS x
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
            WHERE c.relnamespace = 'public'::regnamespace
           UNION ALL
           SELECT format('%s %s %s valid=%s', conrelid::regclass, conname,
                         pg_get_constraintdef(oid), convalidated)
             FROM pg_constraint WHERE connamespace = 'public'::regnamespace
           UNION ALL
           SELECT format('%s %s %s', tgrelid::regclass, tgname, tgenabled)
             FROM pg_trigger WHERE NOT tgisinternal) q",
    )
}

#[test]
fn the_initial_load_stores_what_the_normal_import_stores() {
    let (files, summary) = files(1500);
    // The comparison means something only if the files have what the merge handles: repeated
    // keys (earlier periods), planted defects and rows the identity check refuses.
    assert!(summary.persons_rows > 1500, "{summary:?}");
    assert!(summary.defects > 0, "{summary:?}");
    let keyring = Keyring::generate();
    let normal = TestDb::new();
    let initial = TestDb::new();
    let mut a = normal.conn();
    let mut b = initial.owner_conn();
    let schema_before = schema(&mut b);

    // The order of the demo: persons, the register, then the linkages checked against it.
    for (kind, data) in [
        (FileKind::Persons, &files.persons),
        (FileKind::Residents, &files.residents),
        (FileKind::Linkages, &files.linkages),
    ] {
        let (sa, ia) = load(&mut a, kind, &keyring, data, false);
        let (sb, ib) = load(&mut b, kind, &keyring, data, true);
        assert!(sa.applied && sb.applied, "{kind:?}: {ia:#?} {ib:#?}");
        assert_eq!(sa, sb, "{kind:?}: the same summary");
        assert_eq!(ia, ib, "{kind:?}: the same report, line for line");
        assert!(sa.inserted > 1000, "{kind:?}: {sa:?}");
        if kind == FileKind::Linkages {
            assert!(sa.rejected > 0, "the identity check refused some: {sa:?}");
        }
    }
    let (rows_a, rows_b) = (rows(&mut a), rows(&mut b));
    assert!(rows_a.contains("qualification_changed") || rows_a.contains("identity_not"));
    assert_eq!(rows_a, rows_b, "both paths store the same rows");
    assert_eq!(
        schema(&mut b),
        schema_before,
        "every index, key and trigger is back, validated and enabled"
    );
    // Normal imports carry on from an initial load (the rebuilt keys merge as before).
    let (again, issues) = load(&mut b, FileKind::Persons, &keyring, &files.persons, false);
    assert!(again.applied, "{issues:#?}");
    assert_eq!((again.inserted, again.updated), (0, 0), "{again:?}");
}

#[test]
fn the_initial_load_refuses_tables_that_hold_rows() {
    let db = TestDb::new();
    let mut conn = db.owner_conn();
    let keyring = Keyring::generate();
    let (files, _) = files(50);
    let (first, _) = load(&mut conn, FileKind::Persons, &keyring, &files.persons, true);
    assert!(first.applied);
    let before = dump(&mut conn);
    let mut sink = CollectIssues::default();
    let err = import::run_initial(
        &mut conn,
        FileKind::Persons,
        &ctx("persons.csv"),
        None,
        files.persons.as_slice(),
        &mut sink,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("persons already holds rows") && err.contains("without --initial"),
        "{err}"
    );
    assert_eq!(dump(&mut conn), before, "nothing changed");
}

#[test]
fn a_rejected_initial_load_stores_nothing_and_keeps_every_index() {
    let db = TestDb::new();
    let mut conn = db.owner_conn();
    let schema_before = schema(&mut conn);
    let before = dump(&mut conn);
    let mut p = Person::new(INS_A, "1", "1", "");
    p.acquired_on = "2020-04-01".into();
    let mut overlapping = p.clone();
    overlapping.acquired_on = "2021-04-01".into();
    let data = persons_csv(&[Person::new(INS_A, "1", "2", ""), p, overlapping]);
    let (summary, issues) = load(
        &mut conn,
        FileKind::Persons,
        &Keyring::generate(),
        data.as_bytes(),
        true,
    );
    assert!(!summary.applied);
    assert_eq!(errors(&issues), vec![(4, "acquired_on".to_string())]);
    assert_eq!(dump(&mut conn), before, "nothing stored");
    assert_eq!(
        schema(&mut conn),
        schema_before,
        "the indexes were put back"
    );
}

#[test]
fn the_initial_load_needs_the_owner() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let mut sink = CollectIssues::default();
    let data = persons_csv(&[Person::new(INS_A, "1", "1", "")]);
    let err = import::run_initial(
        &mut conn,
        FileKind::Persons,
        &ctx("persons.csv"),
        None,
        data.as_bytes(),
        &mut sink,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("SHIKAKU_OWNER_DATABASE_URL"), "{err}");
    assert_eq!(count(&mut conn, "persons"), 0);
}

#[test]
fn benefits_have_no_initial_load() {
    let db = TestDb::new();
    let mut conn = db.owner_conn();
    let mut sink = CollectIssues::default();
    let err = import::run_initial(
        &mut conn,
        FileKind::Benefits,
        &ctx("benefits.csv"),
        None,
        &b""[..],
        &mut sink,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("without --initial"), "{err}");
}
