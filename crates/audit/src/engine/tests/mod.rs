#![allow(clippy::unwrap_used)]

use super::*;
use shikaku_domain::Sex;

mod evidence;
mod rules;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn ctx() -> AuditContext {
    AuditContext::new(d("2026-10-01"))
}

fn ident(kanji: &str, kana: &str, birth: &str, sex: Sex, address: &str) -> Identity {
    Identity {
        name_kanji: kanji.to_owned(),
        name_kana: (!kana.is_empty()).then(|| kana.to_owned()),
        birth_date: d(birth),
        sex,
        address: (!address.is_empty()).then(|| address.to_owned()),
    }
}

fn taro() -> Identity {
    ident(
        "山田　太郎",
        "ヤマダ　タロウ",
        "1980-05-17",
        Sex::Male,
        "東京都多摩市桜ヶ丘1丁目2番3号",
    )
}

/// 山田　花子, born 1985-02-03, at 桜ヶ丘: the registry side of the name-change cases.
fn hanako() -> Identity {
    ident(
        "山田　花子",
        "ヤマダ　ハナコ",
        "1985-02-03",
        Sex::Female,
        "東京都多摩市桜ヶ丘1丁目2番3号",
    )
}

fn current() -> Vec<Period> {
    vec![Period::new(d("2020-04-01"), None, None)]
}

fn link(id: i64, person: i64, registry: Identity) -> LinkageInput {
    LinkageInput {
        linkage_id: id,
        person_id: person,
        person_key: format!("01130012:1234567:{person}:00"),
        last4: "1234".to_owned(),
        check_digit_ok: true,
        status: LinkageStatus::Active,
        registry,
        periods: current(),
    }
}

fn resident(identity: Identity) -> Option<ResidentInput> {
    Some(ResidentInput {
        identity,
        status: ResidentStatus::Active,
    })
}

fn group(blind: u8, linkages: Vec<LinkageInput>, resident: Option<ResidentInput>) -> NumberGroup {
    NumberGroup {
        blind: BlindIndex([blind; 32]),
        linkages,
        resident,
    }
}

/// The findings of one person linked to a number whose register entry is `register`.
fn audit_one(register: Identity) -> Vec<Finding> {
    check_group(
        &ctx(),
        &group(1, vec![link(1, 1, taro())], resident(register)),
    )
}

fn kinds(f: &[Finding]) -> Vec<(FindingKind, Severity)> {
    f.iter().map(|f| (f.kind, f.severity)).collect()
}

#[test]
fn clean_record_raises_nothing() {
    assert!(audit_one(taro()).is_empty());
}

#[test]
fn every_spelling_variant_raises_nothing() {
    let base = taro();
    let variants: Vec<(&str, Identity)> = vec![
        (
            "kanji_variant",
            Identity {
                name_kanji: "山田　太郎".into(),
                ..base.clone()
            },
        ),
        (
            "unknown_char",
            Identity {
                name_kanji: "山●　太郎".into(),
                ..base.clone()
            },
        ),
        (
            "no_space",
            Identity {
                name_kanji: "山田太郎".into(),
                ..base.clone()
            },
        ),
        (
            "halfwidth_space",
            Identity {
                name_kanji: "山田 太郎".into(),
                ..base.clone()
            },
        ),
        (
            "halfwidth_kana",
            Identity {
                name_kana: Some("ﾔﾏﾀﾞ ﾀﾛｳ".into()),
                ..base.clone()
            },
        ),
        (
            "hiragana_kana",
            Identity {
                name_kana: Some("やまだ　たろう".into()),
                ..base.clone()
            },
        ),
        (
            "kana_absent",
            Identity {
                name_kana: None,
                ..base.clone()
            },
        ),
        (
            "address_hyphen",
            Identity {
                address: Some("東京都多摩市桜ヶ丘1-2-3".into()),
                ..base.clone()
            },
        ),
        (
            "address_kanji_numeral",
            Identity {
                address: Some("東京都多摩市桜ヶ丘一丁目2番3号".into()),
                ..base.clone()
            },
        ),
        (
            "address_ke",
            Identity {
                address: Some("東京都多摩市桜ケ丘1丁目2番3号".into()),
                ..base.clone()
            },
        ),
        (
            "address_no_prefecture",
            Identity {
                address: Some("多摩市桜ヶ丘1丁目2番3号".into()),
                ..base.clone()
            },
        ),
        (
            "address_absent",
            Identity {
                address: None,
                ..base.clone()
            },
        ),
        (
            "two_variants",
            Identity {
                name_kanji: "山田太郎".into(),
                address: Some("多摩市桜が丘1-2-3".into()),
                ..base.clone()
            },
        ),
    ];
    for (name, register) in variants {
        assert!(audit_one(register).is_empty(), "{name}");
    }
}

#[test]
fn kanji_variant_and_large_kana_raise_nothing() {
    let registry = ident(
        "髙橋　翔太",
        "タカハシ　ショウタ",
        "1990-01-01",
        Sex::Male,
        "",
    );
    let register = ident(
        "高橋　翔太",
        "タカハシ　シヨウタ",
        "1990-01-01",
        Sex::Male,
        "",
    );
    let g = group(1, vec![link(1, 1, registry)], resident(register));
    assert!(check_group(&ctx(), &g).is_empty());
    for (a, b) in [
        ("渡辺", "渡邊"),
        ("斉藤", "齊藤"),
        ("斎藤", "齋藤"),
        ("吉田", "𠮷田"),
        ("山崎", "山﨑"),
    ] {
        let registry = ident(&format!("{a}　花子"), "", "1990-01-01", Sex::Female, "");
        let register = ident(&format!("{b}　花子"), "", "1990-01-01", Sex::Female, "");
        let g = group(1, vec![link(1, 1, registry)], resident(register));
        assert!(check_group(&ctx(), &g).is_empty(), "{a}/{b}");
    }
}

#[test]
fn invalid_check_digit() {
    let mut l = link(1, 1, taro());
    l.check_digit_ok = false;
    let f = check_group(&ctx(), &group(1, vec![l], resident(taro())));
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::InvalidCheckDigit, Severity::High)]
    );
    assert!(f[0].detail.contains("…1234"));
    assert_eq!(f[0].linkage_id, Some(1));
}

#[test]
fn not_in_registry_only_while_eligible() {
    let f = check_group(&ctx(), &group(1, vec![link(1, 1, taro())], None));
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::NotInRegistry, Severity::Medium)]
    );
    let mut lost = link(1, 1, taro());
    lost.periods[0].lost_on = Some(d("2025-01-01"));
    assert!(check_group(&ctx(), &group(1, vec![lost], None)).is_empty());
}

#[test]
fn resident_removed_while_eligible() {
    let removed = Some(ResidentInput {
        identity: taro(),
        status: ResidentStatus::Removed,
    });
    let f = check_group(&ctx(), &group(1, vec![link(1, 1, taro())], removed.clone()));
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::ResidentRemoved, Severity::High)]
    );
    // Died and lost the qualification on the run date itself: no longer eligible.
    let mut died = link(1, 1, taro());
    died.periods[0].lost_on = Some(ctx().run_date);
    assert!(check_group(&ctx(), &group(1, vec![died], removed)).is_empty());
}

#[test]
fn address_mismatch_is_low_and_only_while_eligible() {
    let moved = Identity {
        address: Some("大阪府大阪市北区梅田5丁目1番1号".into()),
        ..taro()
    };
    let f = audit_one(moved.clone());
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::AddressMismatch, Severity::Low)]
    );
    assert_eq!(f[0].fields, vec![Field::Address]);
    assert!(f[0].detail.starts_with("[L1 p=0.0"), "{}", f[0].detail);
    let mut lost = link(1, 1, taro());
    lost.periods[0].lost_on = Some(d("2025-01-01"));
    assert!(check_group(&ctx(), &group(1, vec![lost], resident(moved))).is_empty());
}

fn shared_pair() -> (LinkageInput, LinkageInput) {
    let insured = link(1, 1, taro());
    let dependant = link(
        2,
        2,
        ident(
            "山田　花子",
            "ヤマダ　ハナコ",
            "1982-02-02",
            Sex::Female,
            "東京都多摩市桜ヶ丘1丁目2番3号",
        ),
    );
    (insured, dependant)
}

#[test]
fn number_shared_between_overlapping_persons() {
    let (a, b) = shared_pair();
    let f = check_group(&ctx(), &group(1, vec![a, b], resident(taro())));
    assert_eq!(
        kinds(&f),
        vec![
            (FindingKind::NumberShared, Severity::Critical),
            (FindingKind::NumberShared, Severity::Critical),
            (FindingKind::IdentityMismatch, Severity::Critical),
        ]
    );
    assert_eq!(f[0].person_id, 1);
    assert_eq!(f[1].person_id, 2);
    assert_eq!(f[2].person_id, 2);
    assert!(
        f[0].detail.contains("01130012:1234567:2:00"),
        "{}",
        f[0].detail
    );
    assert_ne!(f[0].fingerprint, f[1].fingerprint);
}

#[test]
fn reenrolment_is_not_shared() {
    let mut old = link(1, 1, taro());
    old.periods = vec![Period::new(d("2015-04-01"), Some(d("2024-03-01")), None)];
    let mut new = link(2, 2, taro());
    new.periods = vec![Period::new(d("2024-03-01"), None, None)];
    let g = group(1, vec![old.clone(), new.clone()], resident(taro()));
    assert!(check_group(&ctx(), &g).is_empty());
    // Loss not recorded: the same human under two overlapping keys is high, not critical.
    old.periods[0].lost_on = None;
    let f = check_group(&ctx(), &group(1, vec![old, new], resident(taro())));
    assert_eq!(
        kinds(&f),
        vec![
            (FindingKind::NumberShared, Severity::High),
            (FindingKind::NumberShared, Severity::High),
        ]
    );
}

#[test]
fn periods_touching_do_not_overlap() {
    let a = Period::new(d("2020-01-01"), Some(d("2021-01-01")), None);
    let b = Period::new(d("2021-01-01"), None, None);
    assert!(!a.overlaps(&b) && !b.overlaps(&a));
    let c = Period::new(d("2020-12-31"), Some(d("2022-01-01")), None);
    assert!(a.overlaps(&c) && c.overlaps(&a) && b.overlaps(&c));
    assert!(b.covers(d("2021-01-01")) && !a.covers(d("2021-01-01")));
}

#[test]
fn suspended_is_checked_revoked_is_not() {
    let moved = Identity {
        birth_date: d("1981-01-01"),
        ..taro()
    };
    let mut l = link(1, 1, taro());
    l.status = LinkageStatus::Suspended;
    let f = check_group(&ctx(), &group(1, vec![l.clone()], resident(moved.clone())));
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::IdentityMismatch, Severity::High)]
    );
    l.status = LinkageStatus::Revoked;
    l.check_digit_ok = false;
    assert!(check_group(&ctx(), &group(1, vec![l], resident(moved))).is_empty());
    // A revoked link does not make the number shared.
    let (a, mut b) = shared_pair();
    b.status = LinkageStatus::Revoked;
    assert!(check_group(&ctx(), &group(1, vec![a, b], resident(taro()))).is_empty());
}

#[test]
fn multiple_numbers() {
    let b1 = BlindIndex([1; 32]);
    let b2 = BlindIndex([2; 32]);
    let f = check_person_numbers("k", 7, &[("5678", b2), ("1234", b1)]).unwrap();
    assert_eq!(
        (f.kind, f.severity),
        (FindingKind::MultipleNumbers, Severity::High)
    );
    assert_eq!(f.last4, "1234");
    assert_eq!(f.linkage_id, None);
    assert!(f.detail.contains("…1234, …5678"), "{}", f.detail);
    // Order of input does not matter; the same number twice is one number.
    let g = check_person_numbers("k", 7, &[("1234", b1), ("5678", b2), ("1234", b1)]).unwrap();
    assert_eq!(f, g);
    assert!(check_person_numbers("k", 7, &[("1234", b1), ("1234", b1)]).is_none());
    assert!(check_person_numbers::<&str>("k", 7, &[]).is_none());
    // A different set of numbers is a different problem.
    let h = check_person_numbers("k", 7, &[("1234", b1), ("9999", BlindIndex([3; 32]))]).unwrap();
    assert_ne!(f.fingerprint, h.fingerprint);
}

#[test]
fn fingerprints_are_stable() {
    let register = Identity {
        birth_date: d("1980-05-18"),
        ..taro()
    };
    let a = audit_one(register.clone());
    let b = audit_one(register);
    assert_eq!(a, b);
    // A different severity or detail for the same problem keeps the fingerprint, so a
    // review status survives the data changing shape.
    let c = audit_one(Identity {
        birth_date: d("1970-01-01"),
        name_kanji: "山田　次郎".into(),
        name_kana: Some("ヤマダ　ジロウ".into()),
        ..taro()
    });
    assert_ne!(a[0].severity, c[0].severity);
    assert_eq!(a[0].fingerprint, c[0].fingerprint);
    // Another person or another number is another problem.
    let mut other = link(1, 2, taro());
    other.registry.birth_date = d("1999-01-01");
    let e = check_group(&ctx(), &group(1, vec![other], resident(taro())));
    assert_ne!(a[0].fingerprint, e[0].fingerprint);
    let mut l = link(1, 1, taro());
    l.registry.birth_date = d("1980-05-18");
    let f = check_group(&ctx(), &group(9, vec![l], resident(taro())));
    assert_ne!(a[0].fingerprint, f[0].fingerprint);
    assert_eq!(
        a[0].fingerprint,
        fingerprint(
            FindingKind::IdentityMismatch,
            &a[0].person_key,
            &hex::encode([1u8; 32])
        )
    );
}

/// A mixed batch: clean, variant, and every kind of problem.
fn batch(n: usize) -> Vec<NumberGroup> {
    let registers = [
        taro(),
        Identity {
            name_kanji: "山田太郎".into(),
            name_kana: Some("ﾔﾏﾀﾞ ﾀﾛｳ".into()),
            ..taro()
        },
        Identity {
            birth_date: d("1980-05-18"),
            ..taro()
        },
        Identity {
            name_kanji: "山田　太朗".into(),
            address: Some("大阪府大阪市北区梅田1-1-1".into()),
            ..taro()
        },
        Identity {
            address: Some("多摩市関戸2-2-2".into()),
            ..taro()
        },
    ];
    (0..n)
        .map(|i| {
            let mut l = link(i as i64, i as i64, taro());
            l.check_digit_ok = i % 13 != 0;
            let mut linkages = vec![l];
            if i % 17 == 0 {
                linkages.push(link(
                    i as i64 + 1_000_000,
                    i as i64 + 1_000_000,
                    registers[3].clone(),
                ));
            }
            let resident = if i % 11 == 0 {
                None
            } else {
                resident(registers[i % registers.len()].clone())
            };
            let b = (i as u32).to_be_bytes();
            let mut blind = [0u8; 32];
            blind[..4].copy_from_slice(&b);
            NumberGroup {
                blind: BlindIndex(blind),
                linkages,
                resident,
            }
        })
        .collect()
}

#[test]
fn one_thread_and_many_give_identical_findings() {
    let groups = batch(5_000);
    let c = ctx();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| audit_groups(&c, &groups));
    let four = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap()
        .install(|| audit_groups(&c, &groups));
    assert!(one.len() > 3_000, "{}", one.len());
    assert_eq!(one, four);
    let sequential: Vec<Finding> = groups.iter().flat_map(|g| check_group(&c, g)).collect();
    assert_eq!(one, sequential);
}

#[test]
fn detail_is_one_line_and_shows_last4_only() {
    for f in audit_groups(&ctx(), &batch(200)) {
        assert!(!f.detail.contains('\n'));
        assert!(f.detail.contains("…1234"), "{}", f.detail);
        assert_eq!(f.last4, "1234");
    }
}

/// The worked examples of docs/audit.md, so the document cannot drift from the code.
#[test]
fn dummy_number_shared_by_thousands() {
    let linkages: Vec<LinkageInput> = (0..3_000)
        .map(|i| {
            let mut l = link(i, i, taro());
            l.registry.birth_date = d("1950-01-01") + chrono::Days::new(i as u64);
            l
        })
        .collect();
    let f = check_group(&ctx(), &group(1, linkages, resident(taro())));
    let shared = f
        .iter()
        .filter(|f| f.kind == FindingKind::NumberShared)
        .count();
    assert_eq!(shared, 3_000);
    assert!(
        f[0].detail.contains("2999 other person(s)"),
        "{}",
        f[0].detail
    );
    assert!(f[0].detail.contains(", …)"), "{}", f[0].detail);
}
