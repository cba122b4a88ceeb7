//! The severity rules C1–L1 one by one, and the worked examples of docs/audit.md.

use super::*;

fn rule_of(register: Identity) -> (Option<Rule>, Vec<Field>) {
    let c = IdentityComparison::new(&ctx(), &taro(), &register);
    (c.rule(), c.differing())
}

#[test]
fn c1_birth_or_sex_with_a_name() {
    let r = Identity {
        name_kanji: "山田　花子".into(),
        name_kana: Some("ヤマダ　ハナコ".into()),
        sex: Sex::Female,
        ..taro()
    };
    assert_eq!(
        rule_of(r),
        (
            Some(Rule::BirthOrSexAndName),
            vec![Field::NameKanji, Field::NameKana, Field::Sex]
        )
    );
    let r = Identity {
        name_kanji: "山田　次郎".into(),
        birth_date: d("1982-03-01"),
        ..taro()
    };
    assert_eq!(rule_of(r).0, Some(Rule::BirthOrSexAndName));
}

#[test]
fn c2_both_names_different() {
    let r = Identity {
        name_kanji: "鈴木　一郎".into(),
        name_kana: Some("スズキ　イチロウ".into()),
        ..taro()
    };
    assert_eq!(rule_of(r).0, Some(Rule::BothNamesDifferent));
}

#[test]
fn c3_birth_and_sex() {
    let r = Identity {
        birth_date: d("1979-05-17"),
        sex: Sex::Female,
        ..taro()
    };
    assert_eq!(rule_of(r).0, Some(Rule::BirthAndSex));
}

#[test]
fn c4_three_item_lookup_error() {
    // Same kana, birth date and sex; another 山田 太朗 living elsewhere.
    let r = Identity {
        name_kanji: "山田　太朗".into(),
        address: Some("神奈川県茅ヶ崎市新栄町4丁目5番6号".into()),
        ..taro()
    };
    let (rule, fields) = rule_of(r.clone());
    assert_eq!(rule, Some(Rule::ThreeItemLookup));
    assert_eq!(fields, vec![Field::NameKanji, Field::Address]);
    let f = audit_one(r);
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::IdentityMismatch, Severity::Critical)]
    );
    assert!(
        f[0].detail
            .contains("registry 山田　太郎 / register 山田　太朗"),
        "{}",
        f[0].detail
    );
}

#[test]
fn h1_entry_error() {
    let r = Identity {
        birth_date: d("1980-05-18"),
        ..taro()
    };
    assert_eq!(
        rule_of(r.clone()),
        (Some(Rule::EntryError), vec![Field::BirthDate])
    );
    let f = audit_one(r);
    assert_eq!(
        kinds(&f),
        vec![(FindingKind::IdentityMismatch, Severity::High)]
    );
    assert!(f[0]
        .detail
        .contains("birth_date differs: registry 1980-05-17 / register 1980-05-18"));
    let r = Identity {
        sex: Sex::Female,
        name_kanji: "山田太郎".into(),
        ..taro()
    };
    assert_eq!(rule_of(r), (Some(Rule::EntryError), vec![Field::Sex]));
}

#[test]
fn h2_kanji_name_different() {
    let r = Identity {
        name_kanji: "山田　太朗".into(),
        ..taro()
    };
    assert_eq!(rule_of(r).0, Some(Rule::KanjiNameDifferent));
}

#[test]
fn h3_names_disagree() {
    let long = ident(
        "長谷川　龍之介",
        "ハセガワ　リュウノスケ",
        "1980-05-17",
        Sex::Male,
        "",
    );
    let r = Identity {
        name_kanji: "長谷川　竜之助".into(),
        name_kana: Some("ハセガワ　リュウノスキ".into()),
        ..long.clone()
    };
    let c = IdentityComparison::new(&ctx(), &long, &r);
    assert!(c.name_kana.unwrap().is_similar());
    assert_eq!(c.rule(), Some(Rule::NamesDisagree));
}

#[test]
fn m1_kanji_name_similar() {
    let long = ident("勅使河原　龍之介", "", "1980-05-17", Sex::Male, "");
    let r = Identity {
        name_kanji: "勅使河原　龍乃介".into(),
        ..long.clone()
    };
    let c = IdentityComparison::new(&ctx(), &long, &r);
    assert!(c.name_kanji.is_similar(), "{c:?}");
    assert_eq!(c.rule(), Some(Rule::KanjiNameSimilar));
    assert_eq!(Rule::KanjiNameSimilar.severity(), Severity::Medium);
}

#[test]
fn m2_kana_only() {
    let r = Identity {
        name_kana: Some("ヤマダ　タロ".into()),
        ..taro()
    };
    assert_eq!(rule_of(r), (Some(Rule::KanaOnly), vec![Field::NameKana]));
}

#[test]
fn unset_sex_is_not_compared() {
    let r = Identity {
        sex: Sex::Unset,
        ..taro()
    };
    assert_eq!(rule_of(r), (None, vec![]));
}

#[test]
fn docs_worked_examples() {
    let e = |kanji: &str, kana: &str, birth: &str, sex: Sex, address: &str| {
        ident(kanji, kana, birth, sex, address)
    };
    let cases: Vec<(Identity, Option<Rule>, &str)> = vec![
        (
            e(
                "山田太郎",
                "ﾔﾏﾀﾞ ﾀﾛｳ",
                "1980-05-17",
                Sex::Male,
                "多摩市桜ケ丘1-2-3",
            ),
            None,
            "",
        ),
        (
            e(
                "山●　太郎",
                "やまだ　たろう",
                "1980-05-17",
                Sex::Male,
                "東京都多摩市桜ヶ丘一丁目2番3号",
            ),
            None,
            "",
        ),
        (
            e(
                "山田　花子",
                "ヤマダ　ハナコ",
                "1980-05-17",
                Sex::Female,
                "東京都多摩市桜ヶ丘1丁目2番3号",
            ),
            Some(Rule::BirthOrSexAndName),
            "name_kanji;name_kana;sex",
        ),
        (
            e(
                "山田　次郎",
                "ヤマダ　タロウ",
                "1982-03-01",
                Sex::Male,
                "東京都多摩市桜ヶ丘1丁目2番3号",
            ),
            Some(Rule::BirthOrSexAndName),
            "name_kanji;birth_date",
        ),
        (
            e(
                "鈴木　一郎",
                "スズキ　イチロウ",
                "1980-05-17",
                Sex::Male,
                "東京都多摩市桜ヶ丘1丁目2番3号",
            ),
            Some(Rule::BothNamesDifferent),
            "name_kanji;name_kana",
        ),
        (
            e(
                "山田　太郎",
                "ヤマダ　タロウ",
                "1979-05-17",
                Sex::Female,
                "東京都多摩市桜ヶ丘1丁目2番3号",
            ),
            Some(Rule::BirthAndSex),
            "birth_date;sex",
        ),
        (
            e(
                "山田　太朗",
                "ヤマダ　タロウ",
                "1980-05-17",
                Sex::Male,
                "神奈川県茅ヶ崎市新栄町4丁目5番6号",
            ),
            Some(Rule::ThreeItemLookup),
            "name_kanji;address",
        ),
        (
            e(
                "山田　太郎",
                "ヤマダ　タロウ",
                "1980-05-18",
                Sex::Male,
                "東京都多摩市桜ヶ丘1丁目2番3号",
            ),
            Some(Rule::EntryError),
            "birth_date",
        ),
        (
            e(
                "山田太郎",
                "ヤマダ　タロウ",
                "1980-05-17",
                Sex::Female,
                "東京都多摩市桜ヶ丘1丁目2番3号",
            ),
            Some(Rule::EntryError),
            "sex",
        ),
        (
            e(
                "山田　太朗",
                "ヤマダ　タロウ",
                "1980-05-17",
                Sex::Male,
                "東京都多摩市桜ヶ丘1丁目2番3号",
            ),
            Some(Rule::KanjiNameDifferent),
            "name_kanji",
        ),
        (
            e(
                "山田　太郎",
                "ヤマダ　タロ",
                "1980-05-17",
                Sex::Male,
                "東京都多摩市桜ヶ丘1丁目2番3号",
            ),
            Some(Rule::KanaOnly),
            "name_kana",
        ),
        (
            e(
                "山田　太郎",
                "ヤマダ　タロウ",
                "1980-05-17",
                Sex::Male,
                "大阪府大阪市北区梅田5丁目1番1号",
            ),
            Some(Rule::AddressOnly),
            "address",
        ),
    ];
    for (register, rule, fields) in cases {
        let c = IdentityComparison::new(&ctx(), &taro(), &register);
        let got: Vec<&str> = c.differing().iter().map(|f| f.as_str()).collect();
        assert_eq!(
            (c.rule(), got.join(";").as_str()),
            (rule, fields),
            "{register:?}"
        );
    }
}
