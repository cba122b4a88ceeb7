//! Registry counts after imports.

use chrono::NaiveDate;
use shikaku_db::stats::registry_stats;
use shikaku_db::testing::TestDb;
use shikaku_domain::Keyring;

use crate::util::*;

#[test]
fn stats_count_what_the_imports_stored() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let empty = registry_stats(&mut conn, NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()).unwrap();
    assert_eq!(
        (
            empty.insurers,
            empty.persons,
            empty.qualifications,
            empty.residents_latest
        ),
        (0, 0, 0, 0)
    );

    let mut p = household();
    // 佐藤: 2019-10-01..2022-04-01 and 2023-01-01..(open); 花子 lost on 2024-10-01.
    p[3].lost_on = "2022-04-01".into();
    p[3].loss_reason = "03".into();
    let mut again = p[3].clone();
    again.acquired_on = "2023-01-01".into();
    again.lost_on = String::new();
    again.loss_reason = String::new();
    p.push(again);
    import_persons_ok(&mut conn, persons_csv(&p));
    // A second import changes 太郎's address: one person change.
    let mut next = p.clone();
    next[0].address = "東京都港区芝公園4-2-8".into();
    import_persons_ok(&mut conn, persons_csv(&next));
    let mut lost = next.clone();
    lost[1].lost_on = "2024-10-01".into();
    lost[1].loss_reason = "99".into();
    import_persons_ok(&mut conn, persons_csv(&lost));

    let k = Keyring::generate();
    let (s, _) = import_linkages(
        &mut conn,
        &k,
        linkages_csv([
            link(&p[0], MN1, "employer", "2024-01-10"),
            link(&p[1], MN2, "employer", "2024-01-10"),
            link(
                &p[3],
                &with_wrong_check_digit(MN1),
                "employer",
                "2024-01-10",
            ),
        ]),
    );
    assert!(s.applied);
    import_residents(
        &mut conn,
        &k,
        residents_csv([
            resident(MN1, "山田 太郎", "", "1980-05-05", "1", "active"),
            resident(MN2, "山田 花子", "", "1982-03-03", "2", "active"),
        ]),
    );
    let (s, _) = import_residents(
        &mut conn,
        &k,
        residents_csv([resident(MN1, "山田 太郎", "", "1980-05-05", "1", "active")]),
    );
    assert!(s.applied);

    let on = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let st = registry_stats(&mut conn, on(2024, 1, 1)).unwrap();
    assert_eq!(st.insurers, 2);
    assert_eq!(st.persons, 4);
    assert_eq!(st.qualifications, 5);
    // 2024-01-01: 太郎, 花子, 次郎 (2020-04-01..) and 佐藤 (2023-01-01..).
    assert_eq!(st.eligible, 4);
    assert_eq!(st.linkages, 3);
    assert_eq!(st.linkages_active, 3);
    assert_eq!(st.linkages_bad_check_digit, 1);
    assert_eq!(st.resident_snapshots, 2);
    assert_eq!(st.residents_latest, 1);
    // The address change and 花子's loss.
    assert_eq!(st.person_changes, 2);

    // 2022-06-01: 佐藤 between periods. 2025-01-01: 花子 lost.
    assert_eq!(
        registry_stats(&mut conn, on(2022, 6, 1)).unwrap().eligible,
        3
    );
    assert_eq!(
        registry_stats(&mut conn, on(2025, 1, 1)).unwrap().eligible,
        3
    );
    // Before anyone acquired.
    assert_eq!(
        registry_stats(&mut conn, on(2019, 9, 30)).unwrap().eligible,
        0
    );
    assert_eq!(
        registry_stats(&mut conn, on(2019, 10, 1)).unwrap().eligible,
        1
    );
}
