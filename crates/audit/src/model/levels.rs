//! The comparison level of each item (docs/audit.md "Comparison levels"), built on the same
//! normalization and verdicts as the severity rules, so a spelling variant is "same" here too.

use chrono::{Datelike, NaiveDate};
use shikaku_domain::evidence::{Item, Level};
use shikaku_domain::FieldMatch;

use crate::engine::identity::{names_differ_in, NamePart};
use crate::engine::{AuditContext, Identity, IdentityComparison};
use crate::normalize::address_key;

/// The level of each item of one comparison; `None`: not compared (absent on a side, sex
/// unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Levels {
    /// 氏名 (kanji with kana).
    pub name: Level,
    /// 生年月日.
    pub birth: Level,
    /// 性別.
    pub sex: Option<Level>,
    /// 住所.
    pub address: Option<Level>,
    /// Whether both sides had a kana name: without one a homophone cannot be told from any
    /// other different kanji name, which the 3-item channel accounts for.
    pub kana_compared: bool,
}

impl Levels {
    /// The levels of `registry` against `register`, given their comparison.
    pub fn new(
        ctx: &AuditContext,
        cmp: &IdentityComparison,
        registry: &Identity,
        register: &Identity,
    ) -> Self {
        Self {
            name: name_level(ctx, cmp, registry, register),
            birth: birth_level(registry.birth_date, register.birth_date),
            sex: cmp.sex.map(|m| {
                if m.agrees() {
                    Level::SexSame
                } else {
                    Level::SexDiffers
                }
            }),
            address: cmp.address.map(|m| {
                if m.agrees() {
                    Level::AddressSame
                } else {
                    address_level(registry.address.as_deref(), register.address.as_deref())
                }
            }),
            kana_compared: cmp.name_kana.is_some(),
        }
    }

    /// Compares two records and gives their levels (the fitting's entry point).
    pub fn of(ctx: &AuditContext, registry: &Identity, register: &Identity) -> Self {
        let cmp = IdentityComparison::new(ctx, registry, register);
        Self::new(ctx, &cmp, registry, register)
    }

    /// The level of `item`.
    pub fn get(&self, item: Item) -> Option<Level> {
        match item {
            Item::Name => Some(self.name),
            Item::BirthDate => Some(self.birth),
            Item::Sex => self.sex,
            Item::Address => self.address,
        }
    }
}

fn name_level(
    ctx: &AuditContext,
    cmp: &IdentityComparison,
    registry: &Identity,
    register: &Identity,
) -> Level {
    let kanji = cmp.name_kanji;
    let kana = cmp.name_kana;
    if kanji.agrees() {
        return if kana.is_some_and(FieldMatch::disagrees) {
            Level::NameKanaDiffers
        } else {
            Level::NameSame
        };
    }
    if kana.is_some_and(FieldMatch::agrees) {
        return if kanji.is_similar() {
            Level::NameKanjiSimilar
        } else {
            Level::NameHomophone
        };
    }
    if cmp.surname_change {
        return Level::NameSurnameChange;
    }
    if names_differ_in(ctx, registry, register, NamePart::Given) {
        return Level::NameGivenNameChange;
    }
    if kanji.is_similar() && !kana.is_some_and(FieldMatch::is_different) {
        return Level::NameKanjiSimilar;
    }
    Level::NameDifferent
}

/// The birth-date level: the typing slips (one digit, day and month swapped, another year on
/// the same day) are told apart from a different date.
pub fn birth_level(a: NaiveDate, b: NaiveDate) -> Level {
    if a == b {
        Level::BirthSame
    } else if a.year() == b.year() && a.month() == b.day() && a.day() == b.month() {
        Level::BirthDayMonthSwapped
    } else if digits_differing(a, b) == 1 {
        Level::BirthOneDigit
    } else if a.month() == b.month() && a.day() == b.day() {
        Level::BirthWholeYears
    } else {
        Level::BirthDifferent
    }
}

/// How many digits of YYYYMMDD differ.
fn digits_differing(a: NaiveDate, b: NaiveDate) -> u32 {
    let code = |d: NaiveDate| d.year().unsigned_abs() * 10_000 + d.month() * 100 + d.day();
    let (mut x, mut y) = (code(a), code(b));
    let mut n = 0;
    for _ in 0..8 {
        n += u32::from(x % 10 != y % 10);
        x /= 10;
        y /= 10;
    }
    n
}

fn address_level(a: Option<&str>, b: Option<&str>) -> Level {
    let (Some(a), Some(b)) = (a, b) else {
        return Level::AddressDifferent;
    };
    let (ka, kb) = (address_key(a), address_key(b));
    let same_prefecture = match (ka.prefecture, kb.prefecture) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    if same_prefecture && municipality(&ka.rest) == municipality(&kb.rest) {
        Level::AddressSameMunicipality
    } else {
        Level::AddressDifferent
    }
}

/// The municipality at the start of a normalized address without its prefecture: up to the
/// first 市, 区, 町 or 村 after the first character (町田市 is not cut at its 町; 西多摩郡瑞穂町 is
/// cut after 町). Both sides are cut by the same rule, so an odd cut (四日市市 → 四日市) still
/// compares like with like.
pub fn municipality(rest: &str) -> &str {
    rest.char_indices()
        .skip(1)
        .find(|(_, c)| matches!(c, '市' | '区' | '町' | '村'))
        .map_or(rest, |(i, c)| &rest[..i + c.len_utf8()])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn birth_levels() {
        let b = d("1980-05-17");
        assert_eq!(birth_level(b, b), Level::BirthSame);
        assert_eq!(birth_level(b, d("1980-05-18")), Level::BirthOneDigit);
        assert_eq!(birth_level(b, d("1986-05-17")), Level::BirthOneDigit);
        assert_eq!(
            birth_level(d("1980-03-04"), d("1980-04-03")),
            Level::BirthDayMonthSwapped
        );
        assert_eq!(birth_level(b, d("1979-05-17")), Level::BirthWholeYears);
        assert_eq!(birth_level(b, d("1952-05-17")), Level::BirthWholeYears);
        assert_eq!(birth_level(b, d("1952-11-02")), Level::BirthDifferent);
    }

    #[test]
    fn municipalities() {
        assert_eq!(municipality("多摩市桜ケ丘1-2-3"), "多摩市");
        assert_eq!(municipality("町田市原町田1-2"), "町田市");
        assert_eq!(municipality("横浜市中区山下町1"), "横浜市");
        assert_eq!(municipality("西多摩郡瑞穂町箱根ケ崎2"), "西多摩郡瑞穂町");
        assert_eq!(municipality("千代田区丸の内1-1"), "千代田区");
        assert_eq!(
            address_level(
                Some("東京都多摩市桜ヶ丘1丁目2番3号"),
                Some("多摩市関戸4-5-6")
            ),
            Level::AddressSameMunicipality
        );
        assert_eq!(
            address_level(
                Some("東京都多摩市桜ヶ丘1丁目2番3号"),
                Some("神奈川県多摩市1")
            ),
            Level::AddressDifferent
        );
    }
}
