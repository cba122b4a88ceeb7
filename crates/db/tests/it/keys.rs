//! Key rotation: re-sealing moves every linkage to the current key and keeps the numbers.

use diesel::prelude::*;
use diesel::sql_types::{Binary, Integer, Text};
use shikaku_db::keys::reseal;
use shikaku_db::testing::TestDb;
use shikaku_domain::{Keyring, SealedNumber};

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
    k.open(&SealedNumber {
        key_id: u32::try_from(s.mn_key_id).unwrap(),
        ciphertext: s.mn_sealed.clone(),
    })
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
            .open(&SealedNumber {
                key_id: u32::try_from(row.mn_key_id).unwrap(),
                ciphertext: row.mn_sealed.clone(),
            })
            .is_err());
    }

    assert_eq!(reseal(&mut conn, &k).unwrap(), 0);
    let again = sealed(&mut conn);
    for (a, b) in after.iter().zip(&again) {
        assert_eq!(a.mn_sealed, b.mn_sealed);
    }
}
