//! The five items (5情報: 漢字氏名, カナ氏名, 生年月日, 性別, 住所) of a registry person against
//! the resident register's record, all at once.
//!
//! Since 2023 a My Number is registered only when the five items match the register
//! (domain.md, "Linkage errors and the five-item rule"); the 2021–2023 errors came from
//! registering on three. [`check_five_items`] is that rule: an item **matches** when it is
//! exact or equivalent (a spelling variant, width, small kana written large, spacing, address
//! notation, the register's ● for a character outside its set); similar and different both
//! count as **differing**, because "almost the same name" is exactly how another human's
//! number gets linked. An item that one side lacks (kana or address absent, or sex unset) is
//! **not compared**: reported, so that a reader knows the match rests on fewer items, but not
//! a mismatch, since the register legitimately omits them.
//!
//! The nightly audit compares the same way item by item, then grades a disagreement by
//! severity (docs/audit.md); registration only needs to know which items differ.

use chrono::NaiveDate;

use super::compare::{
    compare_address, compare_birth_date, compare_kana_name, compare_kanji_name, compare_sex,
    DEFAULT_SIMILARITY_THRESHOLD,
};
use super::normalize::VariantTable;
use crate::finding::{Field, FieldMatch};
use crate::person::Sex;

/// The five items of one human as one side (the registry or the register) records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiveItems {
    /// 漢字氏名 as stored (the register's may hold variant kanji and ●).
    pub name_kanji: String,
    /// カナ氏名 as stored; `None` (or blank) when the side has none.
    pub name_kana: Option<String>,
    /// 生年月日.
    pub birth_date: NaiveDate,
    /// 性別; [`Sex::Unset`] is not compared.
    pub sex: Sex,
    /// 住所; `None` (or blank) when the side has none.
    pub address: Option<String>,
}

/// Each item of the registry compared with the register; `None` means the item could not be
/// compared (absent or blank on a side, or sex unset).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FiveItemComparison {
    /// 漢字氏名.
    pub name_kanji: FieldMatch,
    /// カナ氏名.
    pub name_kana: Option<FieldMatch>,
    /// 生年月日.
    pub birth_date: FieldMatch,
    /// 性別.
    pub sex: Option<FieldMatch>,
    /// 住所.
    pub address: Option<FieldMatch>,
}

impl FiveItemComparison {
    /// Compares `registry` with `register` under `table`, grading text items against
    /// `threshold` (see [`DEFAULT_SIMILARITY_THRESHOLD`]).
    pub fn new(
        registry: &FiveItems,
        register: &FiveItems,
        table: &VariantTable,
        threshold: f64,
    ) -> Self {
        Self {
            name_kanji: compare_kanji_name(
                &registry.name_kanji,
                &register.name_kanji,
                table,
                threshold,
            ),
            name_kana: both(&registry.name_kana, &register.name_kana)
                .map(|(a, b)| compare_kana_name(a, b, threshold)),
            birth_date: compare_birth_date(registry.birth_date, register.birth_date),
            sex: compare_sex(registry.sex, register.sex),
            address: both(&registry.address, &register.address)
                .map(|(a, b)| compare_address(a, b, threshold)),
        }
    }

    /// Every item with its verdict, in [`Field`] order.
    fn items(&self) -> [(Field, Option<FieldMatch>); 5] {
        [
            (Field::NameKanji, Some(self.name_kanji)),
            (Field::NameKana, self.name_kana),
            (Field::BirthDate, Some(self.birth_date)),
            (Field::Sex, self.sex),
            (Field::Address, self.address),
        ]
    }

    /// The items that were compared and disagree (similar or different), in [`Field`] order.
    pub fn differing(&self) -> Vec<Field> {
        self.items()
            .into_iter()
            .filter(|(_, m)| m.is_some_and(FieldMatch::disagrees))
            .map(|(f, _)| f)
            .collect()
    }

    /// The items that could not be compared, in [`Field`] order.
    pub fn not_compared(&self) -> Vec<Field> {
        self.items()
            .into_iter()
            .filter(|(_, m)| m.is_none())
            .map(|(f, _)| f)
            .collect()
    }
}

/// What the registration-time check concludes about a registry person and a register record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemsVerdict {
    /// Items that disagree beyond spelling variants; empty when the person matches.
    pub differing: Vec<Field>,
    /// Items one side lacks, which the match does not rest on.
    pub not_compared: Vec<Field>,
}

impl ItemsVerdict {
    /// Whether every compared item is exact or equivalent.
    pub fn matches(&self) -> bool {
        self.differing.is_empty()
    }
}

/// The five-item rule: which items of the registry person differ from the register record,
/// and which could not be compared. `table` is the kanji variant table (the built-in one
/// unless the insurer extends it).
///
/// The similarity threshold does not change the verdict (similar and different both differ);
/// the default is used so that the comparison is the audit's, score for score.
pub fn check_five_items(
    registry: &FiveItems,
    register: &FiveItems,
    table: &VariantTable,
) -> ItemsVerdict {
    let c = FiveItemComparison::new(registry, register, table, DEFAULT_SIMILARITY_THRESHOLD);
    ItemsVerdict {
        differing: c.differing(),
        not_compared: c.not_compared(),
    }
}

/// Both values, when both sides have one that is not blank.
fn both<'a>(a: &'a Option<String>, b: &'a Option<String>) -> Option<(&'a str, &'a str)> {
    match (a.as_deref(), b.as_deref()) {
        // "Has a non-space character", stopping at the first one (trim would scan both ends).
        (Some(x), Some(y))
            if x.chars().any(|c| !c.is_whitespace()) && y.chars().any(|c| !c.is_whitespace()) =>
        {
            Some((x, y))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The registry's person of docs/audit.md's worked examples.
    fn taro() -> FiveItems {
        FiveItems {
            name_kanji: "山田　太郎".into(),
            name_kana: Some("ヤマダ　タロウ".into()),
            birth_date: NaiveDate::from_ymd_opt(1980, 5, 17).unwrap(),
            sex: Sex::Male,
            address: Some("東京都多摩市桜ヶ丘1丁目2番3号".into()),
        }
    }

    /// The register's record: the registry's person with `edit` applied.
    fn register(edit: impl FnOnce(&mut FiveItems)) -> FiveItems {
        let mut r = taro();
        edit(&mut r);
        r
    }

    fn verdict(registry: &FiveItems, register: &FiveItems) -> ItemsVerdict {
        check_five_items(registry, register, &VariantTable::default())
    }

    use Field::{Address, BirthDate, NameKana, NameKanji, Sex as SexField};

    #[test]
    fn spelling_is_never_a_mismatch() {
        type Edit = fn(&mut FiveItems);
        let cases: &[(&str, Edit)] = &[
            ("identical", |_| {}),
            ("no space", |r| r.name_kanji = "山田太郎".into()),
            ("half-width space", |r| r.name_kanji = "山田 太郎".into()),
            ("half-width kana", |r| r.name_kana = Some("ﾔﾏﾀﾞ ﾀﾛｳ".into())),
            ("hiragana kana", |r| {
                r.name_kana = Some("やまだ　たろう".into())
            }),
            ("wildcard ●", |r| r.name_kanji = "山●　太郎".into()),
            ("address hyphens", |r| {
                r.address = Some("東京都多摩市桜ヶ丘1-2-3".into())
            }),
            ("address ケ and no prefecture", |r| {
                r.address = Some("多摩市桜ケ丘1-2-3".into())
            }),
            ("address kanji numeral", |r| {
                r.address = Some("東京都多摩市桜ヶ丘一丁目2番3号".into())
            }),
            ("full-width digits", |r| {
                r.address = Some("東京都多摩市桜ヶ丘１丁目２番３号".into())
            }),
        ];
        for (what, edit) in cases {
            let v = verdict(&taro(), &register(*edit));
            assert!(v.matches(), "{what}: {v:?}");
            assert!(v.not_compared.is_empty(), "{what}: {v:?}");
        }
    }

    #[test]
    fn kanji_variants_and_small_kana_match() {
        let registry = FiveItems {
            name_kanji: "髙﨑　渡邊".into(),
            name_kana: Some("タカサキ　ショウイチ".into()),
            ..taro()
        };
        let reg = FiveItems {
            name_kanji: "高崎　渡辺".into(),
            name_kana: Some("ﾀｶｻｷ ｼﾖｳｲﾁ".into()),
            ..taro()
        };
        assert!(verdict(&registry, &reg).matches());
        // ● for a character outside the register's set, next to a variant.
        let reg = FiveItems {
            name_kanji: "高●　渡邉".into(),
            ..reg
        };
        assert!(verdict(&registry, &reg).matches());
    }

    #[test]
    fn a_real_mismatch_in_each_item_is_reported_alone() {
        type Edit = fn(&mut FiveItems);
        let cases: &[(Field, Edit)] = &[
            (NameKanji, |r| r.name_kanji = "山田　次郎".into()),
            (NameKana, |r| r.name_kana = Some("ヤマダ　ジロウ".into())),
            (BirthDate, |r| {
                r.birth_date = NaiveDate::from_ymd_opt(1980, 5, 18).unwrap()
            }),
            (SexField, |r| r.sex = Sex::Female),
            (Address, |r| {
                r.address = Some("大阪府大阪市北区梅田5丁目1番1号".into())
            }),
        ];
        for (field, edit) in cases {
            let v = verdict(&taro(), &register(*edit));
            assert_eq!(v.differing, vec![*field], "{field}");
            assert!(!v.matches());
        }
    }

    #[test]
    fn similar_counts_as_differing() {
        // One slip in a ten-character kana name is "similar" to the audit (medium); the
        // registration check still refuses it.
        let registry = FiveItems {
            name_kana: Some("ハセガワ　リュウノスケ".into()),
            ..taro()
        };
        let reg = FiveItems {
            name_kana: Some("ハセガワ　リュウノスキ".into()),
            ..taro()
        };
        let c = FiveItemComparison::new(
            &registry,
            &reg,
            &VariantTable::default(),
            DEFAULT_SIMILARITY_THRESHOLD,
        );
        assert!(c.name_kana.unwrap().is_similar());
        assert_eq!(verdict(&registry, &reg).differing, vec![NameKana]);
    }

    #[test]
    fn several_items_come_in_field_order() {
        // The 2023 three-item lookup error: same kana, sex and birth date, another human.
        let reg = register(|r| {
            r.name_kanji = "山田　太朗".into();
            r.address = Some("神奈川県茅ヶ崎市新栄町4丁目5番6号".into());
        });
        assert_eq!(verdict(&taro(), &reg).differing, vec![NameKanji, Address]);
        // A wildcard excuses one character, not the rest.
        let reg = register(|r| r.name_kanji = "山●　次郎".into());
        assert_eq!(verdict(&taro(), &reg).differing, vec![NameKanji]);
    }

    #[test]
    fn an_item_one_side_lacks_is_not_compared_and_not_a_mismatch() {
        let cases: [(FiveItems, FiveItems, Vec<Field>); 5] = [
            (taro(), register(|r| r.address = None), vec![Address]),
            (
                FiveItems {
                    address: None,
                    ..taro()
                },
                taro(),
                vec![Address],
            ),
            (
                taro(),
                register(|r| r.address = Some("　".into())),
                vec![Address],
            ),
            (taro(), register(|r| r.name_kana = None), vec![NameKana]),
            (
                FiveItems {
                    sex: Sex::Unset,
                    ..taro()
                },
                taro(),
                vec![SexField],
            ),
        ];
        for (registry, reg, not_compared) in cases {
            let v = verdict(&registry, &reg);
            assert!(v.matches(), "{v:?}");
            assert_eq!(v.not_compared, not_compared);
        }
        // Not compared does not hide a mismatch elsewhere.
        let reg = register(|r| {
            r.address = None;
            r.sex = Sex::Female;
        });
        let v = verdict(&taro(), &reg);
        assert_eq!(
            (v.differing, v.not_compared),
            (vec![SexField], vec![Address])
        );
    }

    #[test]
    fn only_the_register_wildcard_is_a_wildcard() {
        let registry = FiveItems {
            name_kanji: "●田　太郎".into(),
            ..taro()
        };
        assert_eq!(verdict(&registry, &taro()).differing, vec![NameKanji]);
    }
}
