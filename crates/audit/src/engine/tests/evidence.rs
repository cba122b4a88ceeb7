//! Severity from evidence (issue 18) under the documented default parameters: the cases the
//! hand rules misrated, each with its probability of another person, and the waterfall adding
//! up to it.

use super::*;
use shikaku_domain::evidence::{Channel, Level};

/// The single identity or address finding of `registry` against `register`.
fn one(registry: Identity, register: Identity) -> Finding {
    let f = check_group(
        &ctx(),
        &group(1, vec![link(1, 1, registry)], resident(register)),
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    f.into_iter().next().unwrap()
}

fn p(f: &Finding) -> f64 {
    f.evidence.as_ref().unwrap().p_other_person
}

fn no_address(i: Identity) -> Identity {
    Identity { address: None, ..i }
}

#[test]
fn same_name_decades_apart_is_another_person_not_an_entry_error() {
    // Was H1 "probably an entry error on the right person: correct the registry".
    let other = Identity {
        birth_date: d("1948-11-02"),
        address: Some("大阪府大阪市北区梅田5丁目1番1号".into()),
        ..taro()
    };
    let f = one(taro(), other.clone());
    assert_eq!(f.severity, Severity::Critical, "{}", f.detail);
    assert!(p(&f) > 0.9, "{}", f.detail);
    assert_eq!(f.evidence.as_ref().unwrap().channel, Channel::NameLookup);
    assert!(f.detail.contains("another person's number"), "{}", f.detail);
    // Without addresses (employee insurance) the name and the date still decide.
    let f = one(no_address(taro()), no_address(other));
    assert_eq!(f.severity, Severity::Critical, "{}", f.detail);
}

#[test]
fn the_2023_root_case_is_critical_whatever_the_addresses() {
    let root = Identity {
        name_kanji: "山田　太朗".into(),
        ..taro()
    };
    let elsewhere = Identity {
        address: Some("神奈川県茅ヶ崎市新栄町4丁目5番6号".into()),
        ..root.clone()
    };
    // At the same address the evidence leans to an IME slip on the right person: high, with
    // the warning not to copy the register's values.
    let f = one(taro(), root.clone());
    assert_eq!(f.severity, Severity::High, "{}", f.detail);
    assert!(
        f.detail.contains("never copy the register's values"),
        "{}",
        f.detail
    );
    for (registry, register) in [
        (taro(), elsewhere.clone()),
        (no_address(taro()), elsewhere),
        (no_address(taro()), no_address(root.clone())),
        (taro(), no_address(root)),
    ] {
        let f = one(registry, register);
        assert_eq!(f.severity, Severity::Critical, "{}", f.detail);
        assert_eq!(
            f.evidence.as_ref().unwrap().channel,
            Channel::ThreeItemLookup
        );
        assert_eq!(
            f.evidence.as_ref().unwrap().items[0].level,
            Some(Level::NameHomophone)
        );
    }
}

#[test]
fn a_surname_change_is_high_with_the_hint_never_critical() {
    let hanako = hanako();
    let married = Identity {
        name_kanji: "鈴木　花子".into(),
        name_kana: Some("スズキ　ハナコ".into()),
        ..hanako.clone()
    };
    for (registry, register) in [
        (hanako.clone(), married.clone()),
        (no_address(hanako), married),
    ] {
        let f = one(registry, register);
        assert_eq!(f.severity, Severity::High, "{}", f.detail);
        assert!(p(&f) < UNCERTAIN, "{}", f.detail);
        assert!(f.detail.contains("name change?"), "{}", f.detail);
    }
}

const UNCERTAIN: f64 = crate::model::UNCERTAIN_P;

#[test]
fn entry_errors_on_the_right_person_are_high_and_unlikely_another() {
    for register in [
        Identity {
            birth_date: d("1980-05-18"),
            ..taro()
        },
        Identity {
            birth_date: d("1986-05-17"),
            ..taro()
        },
        Identity {
            birth_date: d("1979-05-17"),
            ..taro()
        },
        Identity {
            sex: Sex::Female,
            ..taro()
        },
    ] {
        for (registry, register) in [
            (taro(), register.clone()),
            (no_address(taro()), no_address(register)),
        ] {
            let f = one(registry, register);
            assert_eq!(f.severity, Severity::High, "{}", f.detail);
            assert!(p(&f) < UNCERTAIN, "{}", f.detail);
            assert!(f.detail.contains("entry error"), "{}", f.detail);
        }
    }
    // Day and month swapped.
    let may_seventh = Identity {
        birth_date: d("1980-05-07"),
        ..taro()
    };
    let f = one(
        may_seventh,
        Identity {
            birth_date: d("1980-07-05"),
            ..taro()
        },
    );
    assert_eq!(
        f.evidence.as_ref().unwrap().items[1].level,
        Some(Level::BirthDayMonthSwapped)
    );
    assert_eq!(f.severity, Severity::High, "{}", f.detail);
}

#[test]
fn a_twin_and_a_dependant_are_another_person() {
    let twin = Identity {
        name_kanji: "山田　次郎".into(),
        name_kana: Some("ヤマダ　ジロウ".into()),
        ..taro()
    };
    let f = one(taro(), twin);
    assert_eq!(f.severity, Severity::Critical, "{}", f.detail);
    assert_eq!(f.evidence.as_ref().unwrap().channel, Channel::Twin);
    // A child given the insured's number: the register holds the parent.
    let child = ident(
        "山田　花子",
        "ヤマダ　ハナコ",
        "2012-09-30",
        Sex::Female,
        "東京都多摩市桜ヶ丘1丁目2番3号",
    );
    let f = one(child, taro());
    assert_eq!(f.severity, Severity::Critical, "{}", f.detail);
    assert_eq!(f.evidence.as_ref().unwrap().channel, Channel::Household);
}

#[test]
fn an_address_change_alone_is_low() {
    let moved = Identity {
        address: Some("東京都多摩市関戸4丁目5番6号".into()),
        ..taro()
    };
    let f = one(taro(), moved);
    assert_eq!(f.severity, Severity::Low);
    assert_eq!(
        f.evidence.as_ref().unwrap().items[3].level,
        Some(Level::AddressSameMunicipality)
    );
}

#[test]
fn the_waterfall_adds_up_to_the_probability() {
    for register in [
        Identity {
            name_kanji: "山田　太朗".into(),
            ..taro()
        },
        Identity {
            birth_date: d("1980-05-18"),
            ..taro()
        },
        Identity {
            name_kanji: "鈴木　一郎".into(),
            name_kana: Some("スズキ　イチロウ".into()),
            ..taro()
        },
    ] {
        let f = one(taro(), register);
        let e = f.evidence.unwrap();
        // Each step is rounded to 1/1000 bit.
        let logit = (e.p_other_person / (1.0 - e.p_other_person)).log2();
        assert!(
            (e.total_bits() - logit).abs() < 0.01,
            "{} vs {logit}",
            e.total_bits()
        );
        assert!(e.other_channels_bits >= 0.0);
    }
}

#[test]
fn other_kinds_carry_no_probability() {
    let mut l = link(1, 1, taro());
    l.check_digit_ok = false;
    let f = check_group(&ctx(), &group(1, vec![l], None));
    assert!(f.iter().all(|f| f.evidence.is_none()), "{f:#?}");
}
