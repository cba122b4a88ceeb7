//! Key rotation: re-sealing moves every linkage to the current key and keeps the numbers.

use diesel::prelude::*;
use diesel::sql_types::{Binary, Integer, Text};
use shikaku_db::keys::reseal;
use shikaku_db::testing::TestDb;
use shikaku_domain::{BlindIndex, Keyring, SealedNumber};

use crate::util::*;

#[derive(QueryableByName, Debug, Clone)]
struct Sealed {
    #[diesel(sql_type = Text)]
    mn_last4: String,
    #[diesel(sql_type = Integer)]
    mn_key_id: i32,
    #[diesel(sql_type = Binary)]
    mn_sealed: Vec<u8>,
    #[diesel(sql_type = Binary)]
    mn_blind: Vec<u8>,
}

fn sealed(conn: &mut PgConnection) -> Vec<Sealed> {
    diesel::sql_query(
        "SELECT l.mn_last4, l.mn_key_id, l.mn_sealed, l.mn_blind
         FROM linkages l JOIN persons p ON p.id = l.person_id
         ORDER BY p.number, p.branch",
    )
    .load(conn)
    .unwrap()
}

fn open(k: &Keyring, s: &Sealed) -> String {
    k.open(
        &SealedNumber {
            key_id: u32::try_from(s.mn_key_id).unwrap(),
            ciphertext: s.mn_sealed.clone(),
            bound: true,
        },
        &BlindIndex(s.mn_blind.clone().try_into().unwrap()),
    )
    .unwrap()
    .to_string()
}

#[test]
fn rotate_then_reseal_moves_every_row_to_the_new_key() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let p = household();
    import_persons_ok(&mut conn, persons_csv(&p));
    let mn3 = my_number(55_555_555_555);
    let numbers = [MN1, MN2, mn3.as_str(), &with_wrong_check_digit(MN1)];
    let mut k = Keyring::generate();
    let (s, issues) = import_linkages(
        &mut conn,
        &k,
        linkages_csv(
            p.iter()
                .zip(numbers)
                .map(|(p, n)| link(p, n, "employer", "2024-01-10")),
        ),
    );
    assert!(s.applied, "{issues:#?}");
    let before = sealed(&mut conn);
    assert_eq!(before.len(), 4);
    assert!(before.iter().all(|r| r.mn_key_id == 1));

    // Nothing to do while the current key is the one in use.
    assert_eq!(reseal(&mut conn, &k).unwrap(), 0);

    let before_rotation = Keyring::from_json(&k.to_json()).unwrap();
    assert_eq!(k.rotate(), 2);
    assert_eq!(reseal(&mut conn, &k).unwrap(), 4);
    let after = sealed(&mut conn);
    assert_eq!(after.len(), 4);
    // By person: 佐藤 (5001), then 89/00, 89/01, 89/02 (the household order of `numbers`).
    let expected = [numbers[3], numbers[0], numbers[1], numbers[2]];
    for ((old, new), digits) in before.iter().zip(&after).zip(expected) {
        assert_eq!(new.mn_key_id, 2);
        assert_ne!(new.mn_sealed, old.mn_sealed);
        assert_eq!(
            new.mn_blind, old.mn_blind,
            "the blind index must not change"
        );
        assert_eq!(new.mn_last4, old.mn_last4);
        assert_eq!(open(&k, new), digits);
        // A process that loads the rotated key file reads them too.
        assert_eq!(
            open(&Keyring::from_json(&k.to_json()).unwrap(), new),
            digits
        );
    }
    // A keyring holding only the old key can no longer open them: they really moved.
    for row in &after {
        assert!(before_rotation
            .open(
                &SealedNumber {
                    key_id: u32::try_from(row.mn_key_id).unwrap(),
                    ciphertext: row.mn_sealed.clone(),
                    bound: true,
                },
                &BlindIndex(row.mn_blind.clone().try_into().unwrap()),
            )
            .is_err());
    }

    assert_eq!(reseal(&mut conn, &k).unwrap(), 0);
    let again = sealed(&mut conn);
    for (a, b) in after.iter().zip(&again) {
        assert_eq!(a.mn_sealed, b.mn_sealed);
    }
}

/// Two people, each with a number, imported with `k`; returns their linkage ids by number.
fn two_linked(conn: &mut PgConnection, k: &Keyring) -> (i64, i64) {
    let p = household();
    import_persons_ok(conn, persons_csv(&p));
    let (s, issues) = import_linkages(
        conn,
        k,
        linkages_csv([
            link(&p[0], MN1, "employer", "2024-01-10"),
            link(&p[1], MN2, "employer", "2024-01-10"),
        ]),
    );
    assert!(s.applied, "{issues:#?}");
    let mut id = |last4: &str| -> i64 {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            id: i64,
        }
        diesel::sql_query("SELECT id FROM linkages WHERE mn_last4 = $1")
            .bind::<Text, _>(last4)
            .get_result::<Id>(conn)
            .unwrap()
            .id
    };
    (id(&MN1[8..]), id(&MN2[8..]))
}

#[test]
fn a_ciphertext_copied_to_another_row_does_not_decrypt() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let k = Keyring::generate();
    let (a, b) = two_linked(&mut conn, &k);
    // An insider with write access copies A's sealed number (and key id) into B's row, so
    // that B's index (who the audit and lookups think it is) would open to A's number.
    diesel::sql_query(
        "UPDATE linkages b SET mn_sealed = a.mn_sealed, mn_key_id = a.mn_key_id
           FROM linkages a WHERE a.id = $1 AND b.id = $2",
    )
    .bind::<diesel::sql_types::BigInt, _>(a)
    .bind::<diesel::sql_types::BigInt, _>(b)
    .execute(&mut db.owner_conn())
    .unwrap();
    assert_eq!(
        shikaku_db::linkages::reveal(&mut conn, &k, a)
            .unwrap()
            .as_str(),
        MN1
    );
    let err = shikaku_db::linkages::reveal(&mut conn, &k, b).unwrap_err();
    assert!(err.to_string().contains("decryption failed"), "{err}");
    assert!(!err.to_string().contains(&MN1[..4]));
}

#[test]
fn reseal_binds_rows_sealed_before_binding() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let k = Keyring::generate();
    let (a, b) = two_linked(&mut conn, &k);
    // As an older version stored them: sealed without the row's index.
    for (id, number) in [(a, MN1), (b, MN2)] {
        let old = k.seal_unbound(number);
        diesel::sql_query("UPDATE linkages SET mn_sealed = $1, mn_bound = false WHERE id = $2")
            .bind::<Binary, _>(&old.ciphertext)
            .bind::<diesel::sql_types::BigInt, _>(id)
            .execute(&mut db.owner_conn())
            .unwrap();
    }
    assert_eq!(shikaku_db::migrate::unbound_seals(&mut conn).unwrap(), 2);
    // Still readable as they are (their index must match), and bound by a reseal.
    assert_eq!(
        shikaku_db::linkages::reveal(&mut conn, &k, a)
            .unwrap()
            .as_str(),
        MN1
    );
    assert_eq!(reseal(&mut conn, &k).unwrap(), 2);
    assert_eq!(shikaku_db::migrate::unbound_seals(&mut conn).unwrap(), 0);
    assert_eq!(
        shikaku_db::linkages::reveal(&mut conn, &k, b)
            .unwrap()
            .as_str(),
        MN2
    );
    assert_eq!(reseal(&mut conn, &k).unwrap(), 0);
}

#[test]
fn rotating_the_index_key_reindexes_every_number() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let mut k = Keyring::generate();
    let (a, b) = two_linked(&mut conn, &k);
    let p = household();
    let (s, _) = import_residents(
        &mut conn,
        &k,
        residents_csv([resident(
            MN1,
            "山田　太郎",
            "ヤマダ　タロウ",
            "1980-05-10",
            "1",
            "active",
        )]),
    );
    assert!(s.applied);
    let old_snapshot = s.snapshot_id;
    let before = sealed(&mut conn);
    assert_eq!(k.rotate_index_key(), 2);
    // Until the re-index, nothing that compares indexes runs with the new key.
    let mut sink = shikaku_db::import::CollectIssues::default();
    let err = shikaku_db::import::import_linkages(
        &mut conn,
        &ctx("linkages.csv"),
        &k,
        linkages_csv([link(&p[2], MN1, "employer", "2024-01-10")]).as_bytes(),
        &mut sink,
    )
    .unwrap_err();
    assert!(err.to_string().contains("rotate-index"), "{err}");
    let moved = shikaku_db::keys::reindex(&mut conn, &k).unwrap();
    assert_eq!(moved, 2);
    let after = sealed(&mut conn);
    for (old, new) in before.iter().zip(&after) {
        assert_ne!(old.mn_blind, new.mn_blind, "every index recomputed");
        assert_eq!(new.mn_blind, k.blind_index(&open(&k, new)).as_bytes());
    }
    assert_eq!(
        shikaku_db::keys::linkages_index_key(&mut conn).unwrap(),
        Some(2)
    );
    // Numbers still open, still found, and a register snapshot under the old key is refused.
    assert_eq!(
        shikaku_db::linkages::reveal(&mut conn, &k, a)
            .unwrap()
            .as_str(),
        MN1
    );
    assert_eq!(
        shikaku_db::linkages::reveal(&mut conn, &k, b)
            .unwrap()
            .as_str(),
        MN2
    );
    let err = shikaku_db::findings::runs::comparable_index(&mut conn, old_snapshot).unwrap_err();
    assert!(err.to_string().contains("new register extract"), "{err}");
    let (s, _) = import_residents(
        &mut conn,
        &k,
        residents_csv([resident(
            MN1,
            "山田　太郎",
            "ヤマダ　タロウ",
            "1980-05-10",
            "1",
            "active",
        )]),
    );
    assert!(s.applied);
    shikaku_db::findings::runs::comparable_index(&mut conn, s.snapshot_id).unwrap();
    // A process still holding the old key file is told so rather than mis-indexing.
    let stale = {
        let mut j = Keyring::from_json(&k.to_json()).unwrap();
        // The same keys but index key 1 current: what a server that was not reloaded holds.
        j = Keyring::from_json(
            &j.to_json()
                .replace("\"current_index_key\": 2", "\"current_index_key\": 1"),
        )
        .unwrap();
        j
    };
    let err = shikaku_db::keys::check_index(&mut conn, &stale, None).unwrap_err();
    assert!(matches!(err, shikaku_db::DbError::KeysChanged(_)), "{err}");
}
