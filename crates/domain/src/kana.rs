//! Kana: the character classes, the width and script conversions, and the folds that make two
//! spellings of one reading compare equal. The one home of kana handling: the importer (the
//! search key), the audit (the comparison key), the eligibility answer (full- and half-width
//! forms) and the fixture generator (the register's rewrites) all call these.
//!
//! Width folding of whole strings rides on NFKC from `unicode-normalization`; what NFKC does not
//! do (hiragana/katakana, small kana written large, the obsolete ヰヱヲ and ヂヅ, the ヴ row,
//! half-width output) is here, because those folds are the registry's rules, not Unicode's.
//! The kana crates on crates.io (`wana_kana`, `kanaria`) convert scripts but know none of the
//! matching folds, so they would cover only the easy half.

use unicode_normalization::UnicodeNormalization;

/// Hiragana, including small kana and the iteration marks ゝゞ.
pub fn is_hiragana(c: char) -> bool {
    matches!(c, '\u{3041}'..='\u{3096}' | '\u{309D}'..='\u{309F}')
}

/// Full-width katakana, including small kana, ー, ・ and the iteration marks ヽヾ.
pub fn is_katakana(c: char) -> bool {
    matches!(c, '\u{30A1}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}')
}

/// Half-width katakana block (ｦ–ﾟ plus ･), as the resident register and clinics often send it.
pub fn is_half_width_katakana(c: char) -> bool {
    matches!(c, '\u{FF65}'..='\u{FF9F}')
}

/// Voicing marks in both their spacing (゛゜) and combining forms.
pub fn is_voicing_mark(c: char) -> bool {
    matches!(c, '\u{3099}'..='\u{309C}')
}

/// Distance between a hiragana and its katakana in Unicode.
const HIRAGANA_OFFSET: u32 = 0x60;

/// Hiragana to katakana (ぁ–ゖ and ゝゞ sit 0x60 below their katakana); anything else as is.
#[inline]
pub fn hiragana_to_katakana(c: char) -> char {
    match c {
        '\u{3041}'..='\u{3096}' | '\u{309D}'..='\u{309E}' => {
            char::from_u32(u32::from(c) + HIRAGANA_OFFSET).unwrap_or(c)
        }
        _ => c,
    }
}

/// Katakana ァ–ヴ to hiragana; ヵ and ヶ stay, having no hiragana in common use.
#[inline]
pub fn katakana_to_hiragana(c: char) -> char {
    match c {
        '\u{30A1}'..='\u{30F4}' => char::from_u32(u32::from(c) - HIRAGANA_OFFSET).unwrap_or(c),
        _ => c,
    }
}

/// A small kana written large (ショウ → シヨウ), as older register systems store them.
#[inline]
pub fn small_to_large(c: char) -> char {
    match c {
        'ァ' => 'ア',
        'ィ' => 'イ',
        'ゥ' => 'ウ',
        'ェ' => 'エ',
        'ォ' => 'オ',
        'ッ' => 'ツ',
        'ャ' => 'ヤ',
        'ュ' => 'ユ',
        'ョ' => 'ヨ',
        'ヮ' => 'ワ',
        'ヵ' => 'カ',
        'ヶ' => 'ケ',
        _ => c,
    }
}

/// Whether `s` holds a small kana that [`small_to_large`] would change.
pub fn has_small_kana(s: &str) -> bool {
    s.chars().any(|c| small_to_large(c) != c)
}

/// Spacing voicing marks ゛゜ become their combining forms, so that NFKC composes them with
/// the kana before (`カ゛` → `ガ`) instead of turning them into a space and a combining mark.
#[inline]
pub fn combining_voicing(c: char) -> char {
    match c {
        '\u{309B}' => '\u{3099}',
        '\u{309C}' => '\u{309A}',
        _ => c,
    }
}

/// Folds one katakana (after [`hiragana_to_katakana`]) for matching two readings: small to
/// large, ヰヱヲ to イエオ, ヂヅ to ジズ, ヷヸヹヺ to the バ row, the small katakana extension
/// (Ainu) to large kana, every dash or long mark to ー, and ASCII letters to upper case (names
/// of foreign residents in Latin letters). ヴ is [`fold_vu`]'s, because it looks at the next
/// character.
#[inline]
pub fn fold_for_matching(c: char) -> char {
    match c {
        'ヰ' => 'イ',
        'ヱ' => 'エ',
        'ヲ' => 'オ',
        'ヂ' => 'ジ',
        'ヅ' => 'ズ',
        'ヷ' => 'バ',
        'ヸ' => 'ビ',
        'ヹ' => 'ベ',
        'ヺ' => 'ボ',
        'ㇰ' => 'ク',
        'ㇱ' => 'シ',
        'ㇲ' => 'ス',
        'ㇳ' => 'ト',
        'ㇴ' => 'ヌ',
        'ㇵ' => 'ハ',
        'ㇶ' => 'ヒ',
        'ㇷ' => 'フ',
        'ㇸ' => 'ヘ',
        'ㇹ' => 'ホ',
        'ㇺ' => 'ム',
        'ㇻ' => 'ラ',
        'ㇼ' => 'リ',
        'ㇽ' => 'ル',
        'ㇾ' => 'レ',
        'ㇿ' => 'ロ',
        '-' | '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | 'ｰ' => 'ー',
        'a'..='z' => c.to_ascii_uppercase(),
        _ => small_to_large(c),
    }
}

/// ヴ followed by `next` (already katakana): the バ-row kana it matches, and whether `next` is
/// taken with it (ヴァ→バ, ヴィ→ビ, ヴ(ゥ)→ブ, ヴェ→ベ, ヴォ→ボ; the vowel may be small or
/// large, since registers store small kana large). A lone ヴ is ブ.
#[inline]
pub fn fold_vu(next: Option<char>) -> (char, bool) {
    match next {
        Some('ァ' | 'ア') => ('バ', true),
        Some('ィ' | 'イ') => ('ビ', true),
        Some('ゥ' | 'ウ') => ('ブ', true),
        Some('ェ' | 'エ') => ('ベ', true),
        Some('ォ' | 'オ') => ('ボ', true),
        _ => ('ブ', false),
    }
}

/// Full-width katakana: NFKC (which composes half-width voicing marks and widens half-width
/// kana) then hiragana → katakana. Every space becomes a full-width space so the result is
/// uniformly full-width.
pub fn to_full_width_katakana(s: &str) -> String {
    s.chars()
        .map(combining_voicing)
        .nfkc()
        .map(|c| match c {
            ' ' => '\u{3000}',
            _ => hiragana_to_katakana(c),
        })
        .collect()
}

/// Full-width base katakana and their half-width forms, position by position. Kana with no
/// half-width form map to the nearest one (ヰ→ｲ, ヱ→ｴ, ヮ→ﾜ, ヵ→ｶ, ヶ→ｹ).
const FULL_KANA: &str = "ァアィイゥウェエォオカキクケコサシスセソタチッツテトナニヌネノハヒフヘホマミムメモャヤュユョヨラリルレロヮワヰヱヲンヵヶー・";
const HALF_KANA: &str = "ｧｱｨｲｩｳｪｴｫｵｶｷｸｹｺｻｼｽｾｿﾀﾁｯﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓｬﾔｭﾕｮﾖﾗﾘﾙﾚﾛﾜﾜｲｴｦﾝｶｹｰ･";

/// The half-width form of one full-width base katakana, if it has one.
fn half_width_kana(c: char) -> Option<char> {
    let pos = FULL_KANA.chars().position(|f| f == c)?;
    HALF_KANA.chars().nth(pos)
}

/// Appends full-width katakana `s` to `out` in half-width katakana (ｶﾀｶﾅ with ﾞﾟ), as clinics
/// and the resident register often carry it: voiced kana take two characters, the full-width
/// space becomes a half-width one, and anything without a half-width form stays as it is.
pub fn push_half_width(s: &str, out: &mut String) {
    // NFD splits voiced kana into base + combining mark, so the table needs base kana only.
    for c in s.nfd() {
        match c {
            '\u{3099}' => out.push('ﾞ'),
            '\u{309A}' => out.push('ﾟ'),
            '\u{3000}' => out.push(' '),
            _ => out.push(half_width_kana(c).unwrap_or(c)),
        }
    }
}

/// `s` (any kana) in half-width katakana: [`to_full_width_katakana`] then [`push_half_width`].
pub fn to_half_width_katakana(s: &str) -> String {
    let full = to_full_width_katakana(s);
    let mut out = String::with_capacity(full.len());
    push_half_width(&full, &mut out);
    out
}

/// The key the registry searches kana names by: full-width katakana without spaces, so that
/// `ﾔﾏﾀﾞ ﾀﾛｳ`, `やまだ　たろう` and `ヤマダタロウ` find the same person. Stored in
/// `persons.kana_key`, so changing it needs a migration that recomputes the column.
pub fn search_key(s: &str) -> String {
    to_full_width_katakana(s)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kana_tables_line_up() {
        assert_eq!(FULL_KANA.chars().count(), HALF_KANA.chars().count());
        // Every entry except the lossy ones must round-trip through NFKC.
        for (f, h) in FULL_KANA.chars().zip(HALF_KANA.chars()) {
            if !"ヮヰヱヵヶ".contains(f) {
                let back: String = h.to_string().nfkc().collect();
                assert_eq!(back, f.to_string(), "{f} {h}");
            }
        }
    }

    #[test]
    fn full_width() {
        assert_eq!(to_full_width_katakana("ﾔﾏﾀﾞ ﾊﾟﾝ"), "ヤマダ　パン");
        assert_eq!(to_full_width_katakana("やまだ　じろう"), "ヤマダ　ジロウ");
        assert_eq!(to_full_width_katakana("カ゛ッコウ"), "ガッコウ");
    }

    #[test]
    fn half_width_splits_voiced_marks_and_keeps_small_kana() {
        assert_eq!(to_half_width_katakana("やまだ　じろう"), "ﾔﾏﾀﾞ ｼﾞﾛｳ");
        assert_eq!(
            to_half_width_katakana("ヴィクトリア・パーカー"),
            "ｳﾞｨｸﾄﾘｱ･ﾊﾟｰｶｰ"
        );
        assert_eq!(to_half_width_katakana("ショウ ヰヱ"), "ｼｮｳ ｲｴ");
        assert_eq!(to_half_width_katakana("ゴトウ　ショウタ"), "ｺﾞﾄｳ ｼｮｳﾀ");
        assert_eq!(to_half_width_katakana("ハットリ　ペー"), "ﾊｯﾄﾘ ﾍﾟｰ");
        assert_eq!(to_half_width_katakana("ﾔﾏﾀﾞ"), "ﾔﾏﾀﾞ");
    }

    #[test]
    fn scripts_and_sizes() {
        let h: String = "キョウコ　ヴ".chars().map(katakana_to_hiragana).collect();
        assert_eq!(h, "きょうこ　ゔ");
        let back: String = h.chars().map(hiragana_to_katakana).collect();
        assert_eq!(back, "キョウコ　ヴ");
        let l: String = "ショウタ　ハットリ".chars().map(small_to_large).collect();
        assert_eq!(l, "シヨウタ　ハツトリ");
        assert!(has_small_kana("リョウ"));
        assert!(!has_small_kana("ユウト"));
        assert_eq!(katakana_to_hiragana('ヶ'), 'ヶ');
    }

    #[test]
    fn matching_folds() {
        let fold = |s: &str| -> String {
            s.chars()
                .map(|c| fold_for_matching(hiragana_to_katakana(c)))
                .collect()
        };
        assert_eq!(fold("ショウイチ"), fold("シヨウイチ"));
        assert_eq!(fold("ヰヱヲ"), "イエオ");
        assert_eq!(fold("ぢづ"), "ジズ");
        assert_eq!(fold("ｰ-―"), "ーーー");
        assert_eq!(fold("ann"), "ANN");
        assert_eq!(fold_vu(Some('ァ')), ('バ', true));
        assert_eq!(fold_vu(Some('ア')), ('バ', true));
        assert_eq!(fold_vu(Some('ト')), ('ブ', false));
        assert_eq!(fold_vu(None), ('ブ', false));
    }

    #[test]
    fn search_keys_ignore_width_script_and_spaces() {
        let k = search_key("ヤマダタロウ");
        assert_eq!(search_key("ﾔﾏﾀﾞ ﾀﾛｳ"), k);
        assert_eq!(search_key("やまだ　たろう"), k);
        // Small kana are kept: the search key is exact reading, not a matching fold.
        assert_ne!(search_key("ショウ"), search_key("シヨウ"));
    }
}
