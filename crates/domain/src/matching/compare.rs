//! Comparison of one item of the registry with the same item in the resident register.
//!
//! Each text item comes out [`FieldMatch::Exact`] (byte-identical), [`FieldMatch::Equivalent`]
//! (identical after [`super::normalize`], with the register's ● matching any one character),
//! [`FieldMatch::Similar`] (a similarity score at or above the threshold) or
//! [`FieldMatch::Different`]. Byte-identical values are recognised before any normalization,
//! because on a clean registry that is nearly every comparison and normalization costs far more.
//! The verdict type is the domain's, because the registry stores it with the finding.
//!
//! Similarity is the normalized Levenshtein similarity over the keys' characters:
//! `1 - distance / max(len_a, len_b)`, with the register's ● matching anything. See
//! [`DEFAULT_SIMILARITY_THRESHOLD`] for why the threshold is 0.85.

use crate::person::Sex;
use chrono::NaiveDate;

pub use crate::finding::FieldMatch;

use super::normalize::{address_key, is_wildcard, kana_match_key, name_key, VariantTable};

/// Similarity at or above which a non-equivalent text counts as [`FieldMatch::Similar`].
///
/// 0.85 means: at most one edit in 7–13 characters, two in 14–19. A kanji name is usually 3–6
/// characters, where one wrong character (太郎/次郎, 誠/信) is typically another person, so it
/// must count as different; twins differ in exactly one character of the given name. Kana
/// names are 5–10 characters, so one slip in a longer kana name is "similar" (typo-level).
pub const DEFAULT_SIMILARITY_THRESHOLD: f64 = 0.85;

/// Compares two comparison keys, `register` possibly holding wildcards.
fn compare_keys(registry: &str, register: &str, threshold: f64) -> FieldMatch {
    if registry == register {
        return FieldMatch::Equivalent;
    }
    let a: Vec<char> = registry.chars().collect();
    let b: Vec<char> = register.chars().collect();
    if b.iter().any(|&c| is_wildcard(c))
        && a.len() == b.len()
        && a.iter().zip(&b).all(|(&x, &y)| x == y || is_wildcard(y))
    {
        return FieldMatch::Equivalent;
    }
    let score = similarity(&a, &b);
    if score >= threshold {
        FieldMatch::Similar { score }
    } else {
        FieldMatch::Different { score }
    }
}

/// Normalized Levenshtein similarity, 1 for two empty strings; a wildcard in `b` matches any
/// character of `a`.
pub fn similarity(a: &[char], b: &[char]) -> f64 {
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let d = levenshtein(a, b);
    1.0 - d as f64 / longest as f64
}

/// Edit distance with one row of state; names are short, so the row is small.
fn levenshtein(a: &[char], b: &[char]) -> usize {
    if a.is_empty() {
        return b.len();
    }
    let mut row: Vec<usize> = (0..=a.len()).collect();
    for (j, &cb) in b.iter().enumerate() {
        let mut diag = row[0];
        row[0] = j + 1;
        for (i, &ca) in a.iter().enumerate() {
            let cost = usize::from(!(ca == cb || is_wildcard(cb)));
            let next = (diag + cost).min(row[i] + 1).min(row[i + 1] + 1);
            diag = row[i + 1];
            row[i + 1] = next;
        }
    }
    row[a.len()]
}

/// Compares 漢字氏名: the register's name may hold variant kanji and ●.
pub fn compare_kanji_name(
    registry: &str,
    register: &str,
    table: &VariantTable,
    threshold: f64,
) -> FieldMatch {
    if registry == register {
        return FieldMatch::Exact;
    }
    compare_keys(
        &name_key(registry, table),
        &name_key(register, table),
        threshold,
    )
}

/// Compares カナ氏名: the register's kana may be half-width, hiragana or large-only.
pub fn compare_kana_name(registry: &str, register: &str, threshold: f64) -> FieldMatch {
    if registry == register {
        return FieldMatch::Exact;
    }
    compare_keys(
        &kana_match_key(registry),
        &kana_match_key(register),
        threshold,
    )
}

/// Compares 住所 in normalized notation; a prefecture missing on one side is not a difference.
pub fn compare_address(registry: &str, register: &str, threshold: f64) -> FieldMatch {
    if registry == register {
        return FieldMatch::Exact;
    }
    let a = address_key(registry);
    let b = address_key(register);
    if a.matches(&b) {
        return FieldMatch::Equivalent;
    }
    compare_keys(&a.rest, &b.rest, threshold)
}

/// Compares 生年月日.
pub fn compare_birth_date(registry: NaiveDate, register: NaiveDate) -> FieldMatch {
    if registry == register {
        FieldMatch::Exact
    } else {
        FieldMatch::Different { score: 0.0 }
    }
}

/// Compares 性別; `None` when either side is unset (code 3), which says nothing about
/// identity.
pub fn compare_sex(registry: Sex, register: Sex) -> Option<FieldMatch> {
    if registry == Sex::Unset || register == Sex::Unset {
        None
    } else if registry == register {
        Some(FieldMatch::Exact)
    } else {
        Some(FieldMatch::Different { score: 0.0 })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const T: f64 = DEFAULT_SIMILARITY_THRESHOLD;

    fn kanji(a: &str, b: &str) -> FieldMatch {
        compare_kanji_name(a, b, &VariantTable::default(), T)
    }

    #[test]
    fn identical_is_exact() {
        assert_eq!(kanji("山田　太郎", "山田　太郎"), FieldMatch::Exact);
        assert_eq!(compare_kana_name("ヤマダ", "ヤマダ", T), FieldMatch::Exact);
        assert_eq!(compare_address("a", "a", T), FieldMatch::Exact);
    }

    #[test]
    fn spelling_variants_are_equivalent() {
        assert_eq!(kanji("髙橋　太郎", "高橋 太郎"), FieldMatch::Equivalent);
        assert_eq!(kanji("渡辺　花子", "渡邊花子"), FieldMatch::Equivalent);
        assert_eq!(
            compare_kana_name("サトウ　ショウタ", "ｻﾄｳ ｼﾖｳﾀ", T),
            FieldMatch::Equivalent
        );
        assert_eq!(
            compare_address("東京都多摩市桜ヶ丘1丁目2番3号", "多摩市桜ケ丘1-2-3", T),
            FieldMatch::Equivalent
        );
    }

    #[test]
    fn wildcard_matches_one_character() {
        assert_eq!(kanji("𠮷田　太郎", "●田　太郎"), FieldMatch::Equivalent);
        assert_eq!(kanji("山田　太郎", "山田　●郎"), FieldMatch::Equivalent);
        assert_eq!(kanji("髙橋　太郎", "高●　太郎"), FieldMatch::Equivalent);
        assert_eq!(kanji("佐々木　健", "●々木　健"), FieldMatch::Equivalent);
        // One ● stands for one character, not two.
        assert!(kanji("長谷川　太郎", "長●　太郎").disagrees());
        // ● does not excuse the other characters.
        assert!(kanji("山田　太郎", "山●　次郎").disagrees());
        // Only the register's ● is a wildcard.
        assert!(kanji("●田　太郎", "山田　太郎").disagrees());
    }

    #[test]
    fn similarity_scores() {
        let s = |a: &str, b: &str| {
            similarity(
                &a.chars().collect::<Vec<_>>(),
                &b.chars().collect::<Vec<_>>(),
            )
        };
        assert_eq!(s("", ""), 1.0);
        assert_eq!(s("abc", "abc"), 1.0);
        assert_eq!(s("abcd", "abed"), 0.75);
        assert_eq!(s("abc", ""), 0.0);
        assert!((s("ヤマダタロウ", "ヤマダジロウ") - 5.0 / 6.0).abs() < 1e-9);
        assert_eq!(s("kitten", "sitting"), 1.0 - 3.0 / 7.0);
    }

    #[test]
    fn short_names_one_character_apart_are_different() {
        // Twins: one character of the given name.
        assert!(kanji("佐藤　太郎", "佐藤　次郎").is_different());
        assert!(compare_kana_name("サトウ　タロウ", "サトウ　ジロウ", T).is_different());
    }

    #[test]
    fn long_kana_with_one_slip_is_similar() {
        let m = compare_kana_name("ハセガワ　リュウノスケ", "ハセガワ　リュウノスキ", T);
        assert!(m.is_similar(), "{m:?}");
        assert!(m.score().unwrap() >= T);
    }

    #[test]
    fn dates_and_sex() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            compare_birth_date(d("1980-01-02"), d("1980-01-02")),
            FieldMatch::Exact
        );
        assert!(compare_birth_date(d("1980-01-02"), d("1980-01-03")).is_different());
        assert_eq!(compare_sex(Sex::Male, Sex::Male), Some(FieldMatch::Exact));
        assert!(compare_sex(Sex::Male, Sex::Female).unwrap().is_different());
        assert_eq!(compare_sex(Sex::Unset, Sex::Female), None);
    }
}
