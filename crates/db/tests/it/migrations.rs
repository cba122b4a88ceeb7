//! Embedded migrations: down then up restores exactly the same schema; an up-to-date database
//! has nothing pending.

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use shikaku_db::migrate;
use shikaku_db::testing::TestDb;

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// Columns, indexes and constraints of the public schema, one line each, sorted.
fn schema_dump(conn: &mut PgConnection) -> Vec<String> {
    diesel::sql_query(
        "SELECT line FROM (
            SELECT 'column ' || table_name || '.' || column_name || ' #' || ordinal_position
                   || ' ' || data_type || ' nullable=' || is_nullable
                   || ' default=' || coalesce(column_default, '-') AS line
            FROM information_schema.columns WHERE table_schema = 'public'
            UNION ALL
            SELECT 'index ' || tablename || '.' || indexname || ' ' || indexdef
            FROM pg_indexes WHERE schemaname = 'public'
            UNION ALL
            SELECT 'constraint ' || conrelid::regclass::text || '.' || conname || ' '
                   || pg_get_constraintdef(oid)
            FROM pg_constraint WHERE connamespace = 'public'::regnamespace
            UNION ALL
            SELECT 'trigger ' || tgrelid::regclass::text || '.' || tgname || ' '
                   || pg_get_triggerdef(oid)
            FROM pg_trigger WHERE NOT tgisinternal
            UNION ALL
            SELECT 'function ' || p.proname || ' ' || md5(pg_get_functiondef(p.oid))
            FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f'
              AND NOT EXISTS (SELECT 1 FROM pg_depend d
                              WHERE d.objid = p.oid AND d.deptype = 'e')
         ) d ORDER BY line",
    )
    .load::<Line>(conn)
    .unwrap()
    .into_iter()
    .map(|l| l.line)
    .collect()
}

fn table_exists(conn: &mut PgConnection, name: &str) -> bool {
    #[derive(QueryableByName)]
    struct E {
        #[diesel(sql_type = Bool)]
        e: bool,
    }
    diesel::sql_query("SELECT to_regclass($1) IS NOT NULL AS e")
        .bind::<Text, _>(format!("public.{name}"))
        .get_result::<E>(conn)
        .unwrap()
        .e
}

#[test]
fn revert_all_then_run_pending_restores_the_same_schema() {
    let db = TestDb::new();
    let mut conn = db.owner_conn();
    let before = schema_dump(&mut conn);
    // The dump must actually see the schema, or equality would prove nothing.
    for needle in [
        "column persons.kana_key",
        "index persons.persons_kana_birth",
        "index linkages.linkages_blind",
        "constraint persons.persons_key UNIQUE (insurer_number, symbol, number, branch)",
        "constraint qualifications.qualifications_person_acquired UNIQUE (person_id, acquired_on)",
        "trigger qualifications.qualifications_no_overlap_insert",
        "trigger qualifications.qualifications_no_overlap_update",
        "function qualifications_refuse_overlap",
    ] {
        assert!(
            before.iter().any(|l| l.starts_with(needle)),
            "{needle} missing from {before:#?}"
        );
    }

    let reverted = migrate::revert_all(&mut conn).unwrap();
    // One per migration directory under schema/.
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(reverted.len(), migrations, "{reverted:?}");
    let later = [
        "audit_runs",
        "findings",
        "api_tokens",
        "access_log",
        "certificates",
        "certificate_events",
    ];
    for t in crate::util::TABLES.iter().chain(later.iter()) {
        assert!(!table_exists(&mut conn, t), "{t} survived revert_all");
    }
    assert_eq!(migrate::pending(&mut conn).unwrap().len(), migrations);
    assert!(!schema_dump(&mut conn).iter().any(|l| l.contains("persons")));

    let applied = migrate::run_pending(&mut conn).unwrap();
    // Reverted newest first, applied oldest first.
    let mut expected = reverted.clone();
    expected.reverse();
    assert_eq!(applied, expected);
    let after = schema_dump(&mut conn);
    assert_eq!(before, after);
}

#[test]
fn run_pending_on_an_up_to_date_database_applies_nothing() {
    let db = TestDb::new();
    let mut conn = db.owner_conn();
    let before = schema_dump(&mut conn);
    assert_eq!(migrate::pending(&mut conn).unwrap(), Vec::<String>::new());
    assert_eq!(
        migrate::run_pending(&mut conn).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(schema_dump(&mut conn), before);
    for t in crate::util::TABLES {
        assert!(table_exists(&mut conn, t), "{t} missing");
    }
}
