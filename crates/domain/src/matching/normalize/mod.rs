//! Normalization of names and addresses into comparison keys.
//!
//! The resident register and the registry spell the same person differently in ways that are
//! not mismatches (domain.md, "The linkage errors of 2023"): kanji variants, width, hiragana
//! against katakana, small kana stored large, spacing, and address notation. Each function here
//! maps a value to a key so that two spellings of the same thing give the same key. Keys are
//! only for comparing; they are never shown or stored.
//!
//! Names ([`name_key`], [`kana_match_key`]); the character folds are
//! [`crate::kana`]'s:
//! 1. NFKC, after turning the spacing voicing marks ゛゜ into their combining forms so that
//!    `ｶﾞ`, `カ゛` and `ガ` all compose to `ガ`. NFKC also folds full-width Latin and digits,
//!    half-width kana and CJK compatibility ideographs. Strings that are already NFKC (the
//!    usual case) skip it, since NFKC is the most expensive step.
//! 2. Whitespace (any width), the middle dot ・ and variation selectors (IVS) are removed.
//! 3. Hiragana become katakana; small kana become large (ァィゥェォッャュョヮヵヶ, and the
//!    small katakana extension ㇰ–ㇿ); ヂ→ジ, ヅ→ズ, ヰ→イ, ヱ→エ, ヲ→オ.
//! 4. The ヴ row folds to the バ row: ヴァ→バ, ヴィ→ビ, ヴ(ゥ)→ブ, ヴェ→ベ, ヴォ→ボ (also
//!    ヷヸヹヺ). The vowel after ヴ may be small or large, since registers store small kana large.
//! 5. Long-vowel and dash marks (ー ｰ - ‐ ‑ ‒ – — ― − －) become ー.
//! 6. The iteration marks 々 and ヽ are expanded to the character before them (佐々木 = 佐佐木).
//! 7. ASCII letters are upper-cased (names of foreign residents in Latin letters).
//! 8. [`name_key`] only: each kanji is replaced by the canonical form of its [`VariantTable`]
//!    group (髙→高, 﨑→崎 …).
//!
//! Addresses ([`address_key`]): NFKC, whitespace removed, a leading prefecture split off, kanji
//! numerals before 丁目/番/号 (or in a run of numbers) turned into digits, `N丁目M番地K号`,
//! `N丁目M番K号`, `NのM` and `N-M-K` (any dash) all written `N-M-K`, and ケ/ヶ/ヵ/が/ガ between
//! kanji (桜ヶ丘, 自由が丘, 鎌ケ谷) and ノ/の between kanji (井の頭) unified.

mod address;
mod variants;

use crate::kana::{combining_voicing, fold_for_matching, fold_vu, hiragana_to_katakana};
use unicode_normalization::UnicodeNormalization;

pub use address::{address_key, AddressKey, PREFECTURES};
pub use variants::{VariantTable, VariantTableError, DEFAULT_KANJI_VARIANTS, DEFAULT_SOURCE};

/// Characters the resident register writes for a character outside its set; each matches any
/// one character of the other side (● is what J-LIS extracts use; 〓 is the older "geta" mark).
pub const WILDCARDS: [char; 2] = ['●', '〓'];

/// Whether `c` is one of the [`WILDCARDS`].
pub fn is_wildcard(c: char) -> bool {
    WILDCARDS.contains(&c)
}

/// Characters that NFKC leaves alone in any context, so a string made only of them needs no
/// NFKC: ASCII, the whitespace we drop anyway, hiragana and katakana (without the combining
/// voicing marks, which compose with the character before, and the digraphs ゟ ヿ), 々〆〇,
/// the register's wildcards and the CJK unified ideographs with extensions. Checking this
/// range list is several times cheaper than `is_nfkc_quick`, and almost every name and address
/// passes it; half-width kana, full-width Latin and digits and compatibility ideographs do not.
#[inline]
fn nfkc_stable(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{7F}'
        | '\u{3000}'
        | '\u{3005}'..='\u{3007}'
        | '\u{3013}'
        | '\u{25CF}'
        | '\u{3041}'..='\u{3096}'
        | '\u{309D}'..='\u{309E}'
        | '\u{30A1}'..='\u{30FE}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{20000}'..='\u{2A6DF}')
}

/// Feeds the NFKC form of `s` (with [`combining_voicing`] applied) to `sink`, skipping NFKC when every
/// character is [`nfkc_stable`].
#[inline]
fn for_each_nfkc(s: &str, sink: &mut impl FnMut(char, Option<char>) -> bool) {
    if s.chars().all(nfkc_stable) {
        drive(s.chars(), sink);
    } else {
        drive(s.chars().map(combining_voicing).nfkc(), sink);
    }
}

/// Calls `sink(c, next)` for each character with the one after it; `sink` returns `true` to
/// consume `next` as well.
#[inline]
fn drive<I: Iterator<Item = char>>(it: I, sink: &mut impl FnMut(char, Option<char>) -> bool) {
    let mut it = it.peekable();
    while let Some(c) = it.next() {
        if sink(c, it.peek().copied()) {
            it.next();
        }
    }
}

/// Characters that only separate parts of a name.
#[inline]
fn is_name_separator(c: char) -> bool {
    c.is_whitespace() || c == '・' || is_variation_selector(c)
}

#[inline]
fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// The folding pass shared by [`name_key`] and [`kana_match_key`].
fn fold_name(s: &str, table: Option<&VariantTable>, out: &mut String) {
    for_each_nfkc(s, &mut |c, next| {
        if is_name_separator(c) {
            return false;
        }
        let c = hiragana_to_katakana(c);
        let mut consumed = false;
        let folded = match c {
            'ヴ' => {
                let (voiced, takes_next) = fold_vu(next.map(hiragana_to_katakana));
                consumed = takes_next;
                voiced
            }
            '々' | 'ヽ' => out.chars().next_back().unwrap_or(c),
            _ => {
                let k = fold_for_matching(c);
                match table {
                    Some(t) => t.canonical(k),
                    None => k,
                }
            }
        };
        out.push(folded);
        consumed
    });
}

/// The comparison key of a kanji name (漢字氏名): every rule of the module docs, including
/// kanji variants from `table`. Wildcards (●) are kept, to be matched by the caller.
pub fn name_key(s: &str, table: &VariantTable) -> String {
    let mut out = String::with_capacity(s.len());
    fold_name(s, Some(table), &mut out);
    out
}

/// The comparison key of a kana name (カナ氏名): the module's name rules without kanji
/// variants.
pub fn kana_match_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    fold_name(s, None, &mut out);
    out
}

#[cfg(test)]
mod tests;
