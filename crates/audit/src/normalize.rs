//! Normalization of names and addresses into comparison keys.
//!
//! The resident register and the registry spell the same person differently in ways that are
//! not mismatches (domain.md, "The linkage errors of 2023"): kanji variants, width, hiragana
//! against katakana, small kana stored large, spacing, and address notation. Each function here
//! maps a value to a key so that two spellings of the same thing give the same key. Keys are
//! only for comparing; they are never shown or stored.
//!
//! Names ([`name_key`], [`kana_match_key`]); the character folds are
//! [`shikaku_domain::kana`]'s:
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

use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use shikaku_domain::finding::VariantTableInfo;
use shikaku_domain::kana::{combining_voicing, fold_for_matching, fold_vu, hiragana_to_katakana};
use shikaku_domain::text::is_kanji;
use unicode_normalization::UnicodeNormalization;

/// The default kanji variant table, `crates/audit/data/kanji_variants.txt`.
pub const DEFAULT_KANJI_VARIANTS: &str = include_str!("../data/kanji_variants.txt");

/// How the default table is named among a table's sources.
pub const DEFAULT_SOURCE: &str = "built-in (crates/audit/data/kanji_variants.txt)";

/// Characters the resident register writes for a character outside its set; each matches any
/// one character of the other side (● is what J-LIS extracts use; 〓 is the older "geta" mark).
pub const WILDCARDS: [char; 2] = ['●', '〓'];

/// Whether `c` is one of the [`WILDCARDS`].
pub fn is_wildcard(c: char) -> bool {
    WILDCARDS.contains(&c)
}

/// A line of a kanji variant file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kanji variant table line {line}: {reason}")]
pub struct VariantTableError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Groups of kanji (異体字) that count as the same character in names.
///
/// Read from a text file: one group per line, the characters of the group optionally separated
/// by whitespace, the first one canonical, `#` starting a comment. Groups that share a character
/// are merged, so a user file can add 邉's rarer forms to the existing 辺 group by writing a
/// line `邉 …`. Characters are NFKC-normalized when read, because keys are built after NFKC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantTable {
    /// (variant, canonical), sorted by variant, canonical forms absent as keys: looked up by
    /// binary search, which beats hashing for a few hundred `char` keys.
    map: Vec<(char, char)>,
    /// Where the groups came from, in the order they were added (recorded with each run).
    sources: Vec<String>,
}

impl Default for VariantTable {
    /// The embedded default table.
    fn default() -> Self {
        // The embedded table is checked by a unit test, so this cannot fail at run time; an
        // empty table is still a safe fallback (variants would show up as mismatches).
        let mut t = Self::empty();
        match t.extend_from_str(DEFAULT_SOURCE, DEFAULT_KANJI_VARIANTS) {
            Ok(()) => t,
            Err(_) => Self::empty(),
        }
    }
}

impl FromStr for VariantTable {
    type Err = VariantTableError;

    /// Parses a table file (see the type docs for the format).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut t = Self::empty();
        t.extend_from_str("(text)", s)?;
        Ok(t)
    }
}

impl VariantTable {
    /// A table with no groups: only exact characters match.
    pub fn empty() -> Self {
        Self {
            map: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// Adds the groups of another table file (e.g. the user's `SHIKAKU_KANJI_VARIANTS`),
    /// recording `source` (a path or a name) among the table's sources. Nothing is added if
    /// any line is invalid.
    pub fn extend_from_str(&mut self, source: &str, s: &str) -> Result<(), VariantTableError> {
        let mut groups: Vec<Vec<char>> = Vec::new();
        for (i, raw) in s.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("");
            let mut group: Vec<char> = Vec::new();
            for c in line.chars().filter(|c| !c.is_whitespace()) {
                if is_wildcard(c) {
                    return Err(VariantTableError {
                        line: i + 1,
                        reason: format!("{c} is the register's wildcard, not a character"),
                    });
                }
                let c = nfkc_char(c);
                if !group.contains(&c) {
                    group.push(c);
                }
            }
            match group.len() {
                0 => {}
                1 => {
                    return Err(VariantTableError {
                        line: i + 1,
                        reason: format!(
                            "a group needs at least two characters (got only {})",
                            group[0]
                        ),
                    })
                }
                _ => groups.push(group),
            }
        }
        let mut map: HashMap<char, char> = self.map.iter().copied().collect();
        for group in &groups {
            merge_group(&mut map, group);
        }
        self.map = sorted(map);
        self.sources.push(source.to_owned());
        Ok(())
    }

    /// Adds every group of `other`.
    pub fn extend(&mut self, other: &VariantTable) {
        let mut map: HashMap<char, char> = self.map.iter().copied().collect();
        for &(variant, canonical) in &other.map {
            merge_group(&mut map, &[canonical, variant]);
        }
        self.map = sorted(map);
        self.sources.extend(other.sources.iter().cloned());
    }

    /// What this table is, as an audit run records it: its sources, its size and a digest of
    /// its groups, so two runs can be told to have compared with the same table.
    pub fn info(&self) -> VariantTableInfo {
        let mut h = Sha256::new();
        for &(variant, canonical) in &self.map {
            let mut buf = [0u8; 4];
            h.update(variant.encode_utf8(&mut buf).as_bytes());
            h.update(b"\t");
            h.update(canonical.encode_utf8(&mut buf).as_bytes());
            h.update(b"\n");
        }
        VariantTableInfo {
            sources: self.sources.clone(),
            characters: self.map.len(),
            sha256: hex::encode(h.finalize()),
        }
    }

    /// The canonical form of `c` (itself if it is in no group or is canonical).
    #[inline]
    pub fn canonical(&self, c: char) -> char {
        // Every kanji lies above U+3400; this skips the search for kana and Latin letters.
        if c < '\u{3400}' {
            return c;
        }
        match self.map.binary_search_by_key(&c, |&(v, _)| v) {
            Ok(i) => self.map[i].1,
            Err(_) => c,
        }
    }

    /// Number of non-canonical characters in the table.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table has no groups.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn find(map: &HashMap<char, char>, c: char) -> char {
    // The map is kept flat (every variant points at its group's root), so one step suffices.
    map.get(&c).copied().unwrap_or(c)
}

fn in_a_group(map: &HashMap<char, char>, c: char) -> bool {
    map.contains_key(&c) || map.values().any(|&v| v == c)
}

/// Merges `group` into the map. If a member already belongs to a group, that group's
/// canonical form stays canonical, so a user line `邉 …` extends the default 辺 group rather
/// than renaming it.
fn merge_group(map: &mut HashMap<char, char>, group: &[char]) {
    let Some(&first) = group.first() else {
        return;
    };
    let root = group
        .iter()
        .find(|&&c| in_a_group(map, c))
        .map_or(first, |&c| find(map, c));
    for &c in group {
        union(map, root, c);
    }
}

/// Puts `c`'s group into `root`'s group, keeping the map flat.
fn union(map: &mut HashMap<char, char>, root: char, c: char) {
    let other = find(map, c);
    if other == root {
        return;
    }
    for v in map.values_mut() {
        if *v == other {
            *v = root;
        }
    }
    map.insert(other, root);
}

fn sorted(map: HashMap<char, char>) -> Vec<(char, char)> {
    let mut v: Vec<(char, char)> = map.into_iter().collect();
    v.sort_unstable();
    v
}

/// NFKC of a single character when it stays a single character (compatibility ideographs such
/// as U+FA10 塚 become their unified form); otherwise the character itself.
fn nfkc_char(c: char) -> char {
    let mut it = std::iter::once(c).nfkc();
    match (it.next(), it.next()) {
        (Some(d), None) => d,
        _ => c,
    }
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

/// The 47 prefectures, as an address may begin with one.
pub const PREFECTURES: [&str; 47] = [
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
];

/// The comparison key of an address: the prefecture (if the address starts with one) and the
/// rest in normalized notation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressKey {
    /// The leading prefecture, if written.
    pub prefecture: Option<&'static str>,
    /// Everything after it, normalized.
    pub rest: String,
}

impl AddressKey {
    /// Whether two keys name the same place: the same rest, and the same prefecture unless one
    /// side leaves it out (registers often start at the municipality).
    pub fn matches(&self, other: &AddressKey) -> bool {
        self.rest == other.rest
            && match (self.prefecture, other.prefecture) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

fn kanji_digit(c: char) -> Option<u32> {
    Some(match c {
        '〇' | '零' => 0,
        '一' => 1,
        '二' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

fn kanji_unit(c: char) -> Option<u32> {
    Some(match c {
        '十' => 10,
        '百' => 100,
        '千' => 1000,
        _ => return None,
    })
}

fn is_kanji_numeral(c: char) -> bool {
    kanji_digit(c).is_some() || kanji_unit(c).is_some()
}

/// The value of a run of kanji numerals: positional (二〇五 = 205) without 十百千, otherwise
/// additive (二十三 = 23, 百五 = 105).
fn kanji_number(run: &[char]) -> u32 {
    if !run.iter().any(|&c| kanji_unit(c).is_some()) {
        return run.iter().fold(0u32, |n, &c| {
            n.saturating_mul(10)
                .saturating_add(kanji_digit(c).unwrap_or(0))
        });
    }
    let (mut total, mut current) = (0u32, 0u32);
    for &c in run {
        if let Some(unit) = kanji_unit(c) {
            // 十 alone is ten: a missing multiplier is one.
            let times = if current == 0 { 1 } else { current };
            total = total.saturating_add(times.saturating_mul(unit));
            current = 0;
        } else if let Some(d) = kanji_digit(c) {
            current = current.saturating_mul(10).saturating_add(d);
        }
    }
    total.saturating_add(current)
}

fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | 'ー' | '─' | '━'
    )
}

/// Whether an address character marks the end of a number: 丁(目), 番(地), 号, a dash, の.
fn is_number_marker(c: char) -> bool {
    matches!(c, '丁' | '番' | '号' | 'の' | 'ノ') || is_dash(c)
}

/// The prefecture an address starts with, and how many characters it takes. Every prefecture
/// ends in 都, 道, 府 or 県 as its third or fourth character, which rules out almost every
/// other string before any comparison.
fn prefecture_of(chars: &[char]) -> (Option<&'static str>, usize) {
    for n in [3, 4] {
        if chars.len() > n && matches!(chars[n - 1], '都' | '道' | '府' | '県') {
            if let Some(p) = PREFECTURES
                .iter()
                .find(|p| p.chars().count() == n && p.chars().eq(chars[..n].iter().copied()))
            {
                return (Some(p), n);
            }
        }
    }
    (None, 0)
}

/// The comparison key of an address (住所): see the module docs.
pub fn address_key(s: &str) -> AddressKey {
    let mut chars: Vec<char> = Vec::with_capacity(s.len() / 2);
    for_each_nfkc(s, &mut |c, _| {
        if !c.is_whitespace() {
            chars.push(c);
        }
        false
    });
    let (prefecture, start) = prefecture_of(&chars);
    let c = &chars[start..];
    let mut out = String::with_capacity(s.len());
    let ends_digit = |out: &String| out.ends_with(|c: char| c.is_ascii_digit());
    let push_dash = |out: &mut String| {
        if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    };
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let prev = if i > 0 { Some(c[i - 1]) } else { None };
        let next = c.get(i + 1).copied();
        if is_kanji_numeral(ch) {
            let mut j = i;
            while j < c.len() && is_kanji_numeral(c[j]) {
                j += 1;
            }
            let after = c.get(j).copied();
            // Only numbers of the 丁目・番・号 part; 八王子, 三宮町 or 千代田 stay words.
            let numeric = match after {
                Some(a) => a.is_ascii_digit() || matches!(a, '丁' | '番' | '号') || is_dash(a),
                None => false,
            } || (out.ends_with('-') && after.is_none_or(is_number_marker));
            if numeric {
                // Writing to a String cannot fail.
                let _ = write!(out, "{}", kanji_number(&c[i..j]));
            } else {
                c[i..j].iter().for_each(|&k| out.push(k));
            }
            i = j;
            continue;
        }
        match ch {
            '丁' if ends_digit(&out) => {
                if next == Some('目') {
                    i += 1;
                }
                push_dash(&mut out);
            }
            '番' if ends_digit(&out) => {
                if next == Some('地') {
                    i += 1;
                }
                push_dash(&mut out);
            }
            '号' if ends_digit(&out) => push_dash(&mut out),
            'の' | 'ノ'
                if (ends_digit(&out) || out.ends_with('-'))
                    && next.is_some_and(|n| n.is_ascii_digit() || is_kanji_numeral(n)) =>
            {
                push_dash(&mut out)
            }
            'の' | 'ノ' if prev.is_some_and(is_kanji) && next.is_some_and(is_kanji) => {
                out.push('ノ')
            }
            'ケ' | 'ヶ' | 'ヵ' | 'が' | 'ガ'
                if prev.is_some_and(is_kanji) && next.is_some_and(is_kanji) =>
            {
                out.push('ケ')
            }
            'ー' if !ends_digit(&out) => out.push('ー'),
            _ if is_dash(ch) => push_dash(&mut out),
            'a'..='z' => out.push(ch.to_ascii_uppercase()),
            _ => out.push(ch),
        }
        i += 1;
    }
    while out.ends_with('-') {
        out.pop();
    }
    AddressKey {
        prefecture,
        rest: out,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t() -> VariantTable {
        VariantTable::default()
    }

    #[test]
    fn default_table_parses_and_is_substantial() {
        let table = VariantTable::from_str(DEFAULT_KANJI_VARIANTS).unwrap();
        assert!(table.len() > 200, "{}", table.len());
        let default = VariantTable::default();
        assert_eq!(table.info().sha256, default.info().sha256);
        // The default names where it came from; a table parsed from text does not.
        assert_eq!(default.info().sources, vec![DEFAULT_SOURCE.to_string()]);
        let mut extended = default.clone();
        extended.extend_from_str("site.txt", "邉 𫟪").unwrap();
        assert_ne!(extended.info().sha256, default.info().sha256);
        assert_eq!(extended.info().sources.len(), 2);
    }

    #[test]
    fn every_required_variant_folds() {
        let pairs = [
            ("髙", "高"),
            ("﨑", "崎"),
            ("邊", "辺"),
            ("邉", "辺"),
            ("邊", "邉"),
            ("齋", "斎"),
            ("齊", "斎"),
            ("齋", "齊"),
            ("澤", "沢"),
            ("濱", "浜"),
            ("嶋", "島"),
            ("𠮷", "吉"),
            ("櫻", "桜"),
            ("廣", "広"),
            ("國", "国"),
            ("眞", "真"),
            ("德", "徳"),
            ("惠", "恵"),
            ("龍", "竜"),
            ("藏", "蔵"),
            ("壽", "寿"),
            ("冨", "富"),
            ("槇", "槙"),
        ];
        for (a, b) in pairs {
            assert_eq!(name_key(a, &t()), name_key(b, &t()), "{a} / {b}");
        }
    }

    #[test]
    fn compatibility_ideographs_fold_by_nfkc() {
        // U+FA10 塚 and U+FA11 﨑: the first has an NFKC mapping, the second needs the table.
        assert_eq!(name_key("\u{FA10}本", &t()), name_key("塚本", &t()));
        assert_eq!(name_key("山\u{FA11}", &t()), "山崎");
    }

    #[test]
    fn confusable_surnames_stay_distinct() {
        assert_ne!(name_key("斉藤", &t()), name_key("斎藤", &t()));
        assert_ne!(name_key("埼", &t()), name_key("崎", &t()));
    }

    #[test]
    fn table_file_format() {
        let mut table = VariantTable::from_str("# comment\n\n辺 邊\n邉邊 # merges\n").unwrap();
        assert_eq!(table.canonical('邉'), '辺');
        assert_eq!(table.canonical('邊'), '辺');
        assert_eq!(table.canonical('辺'), '辺');
        assert_eq!(table.len(), 2);
        let err = VariantTable::from_str("高 髙\n斎\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(VariantTable::from_str("● 高").is_err());
        table.extend_from_str("test", "﨑 崎").unwrap();
        assert_eq!(table.canonical('﨑'), table.canonical('崎'));
        let mut other = VariantTable::from_str("高髙").unwrap();
        other.extend(&table);
        assert_eq!(other.canonical('邊'), other.canonical('邉'));
        assert_eq!(other.canonical('髙'), '高');
        // A bad line leaves the table as it was.
        let before = other.clone();
        assert!(other.extend_from_str("test", "澤 沢\nx\n").is_err());
        assert_eq!(other, before);
    }

    #[test]
    fn user_table_extends_the_default() {
        let mut table = VariantTable::default();
        assert_ne!(name_key("斉藤", &table), name_key("斎藤", &table));
        table.extend_from_str("test", "斎 斉").unwrap();
        assert_eq!(name_key("斉藤", &table), name_key("斎藤", &table));
        assert_eq!(name_key("齊藤", &table), name_key("斉藤", &table));
    }

    #[test]
    fn width_folds() {
        assert_eq!(kana_match_key("ﾔﾏﾀﾞ ﾀﾛｳ"), kana_match_key("ヤマダ　タロウ"));
        assert_eq!(kana_match_key("ｶﾞｯｺｳ"), kana_match_key("ガッコウ"));
        assert_eq!(kana_match_key("ﾊﾟｰｸ"), kana_match_key("パーク"));
        assert_eq!(name_key("ＳＭＩＴＨ　ＪＯＨＮ", &t()), "SMITHJOHN");
        assert_eq!(name_key("Smith John", &t()), "SMITHJOHN");
    }

    #[test]
    fn spacing_voicing_marks_compose() {
        assert_eq!(kana_match_key("カ゛ク"), kana_match_key("ガク"));
        assert_eq!(kana_match_key("ハ゜ン"), kana_match_key("パン"));
    }

    #[test]
    fn hiragana_becomes_katakana() {
        assert_eq!(
            kana_match_key("やまだ　たろう"),
            kana_match_key("ヤマダ　タロウ")
        );
        assert_eq!(kana_match_key("きょうこ"), kana_match_key("キョウコ"));
        assert_eq!(name_key("山田　さくら", &t()), name_key("山田サクラ", &t()));
    }

    #[test]
    fn small_kana_equal_large() {
        assert_eq!(kana_match_key("ショウイチ"), kana_match_key("シヨウイチ"));
        assert_eq!(kana_match_key("ハットリ"), kana_match_key("ハツトリ"));
        assert_eq!(kana_match_key("ファミリー"), kana_match_key("フアミリー"));
        assert_eq!(kana_match_key("キュウ"), kana_match_key("キユウ"));
        assert_eq!(kana_match_key("ヮヵヶ"), kana_match_key("ワカケ"));
        assert_eq!(kana_match_key("ァィゥェォ"), kana_match_key("アイウエオ"));
        assert_eq!(kana_match_key("ｼｮｳﾀ"), kana_match_key("シヨウタ"));
    }

    #[test]
    fn long_vowel_and_dashes_unify() {
        for s in [
            "ジョーンズ",
            "ジョｰンズ",
            "ジョ-ンズ",
            "ジョ－ンズ",
            "ジョ―ンズ",
            "ジョ‐ンズ",
            "ジョ−ンズ",
        ] {
            assert_eq!(kana_match_key(s), kana_match_key("ジョーンズ"), "{s}");
        }
    }

    #[test]
    fn spaces_and_dots_removed() {
        assert_eq!(kana_match_key("ヤマダ タロウ"), "ヤマダタロウ");
        assert_eq!(kana_match_key("ヤマダ　タロウ"), "ヤマダタロウ");
        assert_eq!(kana_match_key(" ヤマダ  タロウ "), "ヤマダタロウ");
        assert_eq!(
            kana_match_key("ジョン・スミス"),
            kana_match_key("ジョン スミス")
        );
        assert_eq!(kana_match_key("ｼﾞｮﾝ･ｽﾐｽ"), kana_match_key("ジョンスミス"));
        assert_eq!(name_key("佐藤 太郎", &t()), name_key("佐藤太郎", &t()));
    }

    #[test]
    fn vu_row_folds() {
        assert_eq!(kana_match_key("ヴァイオリン"), kana_match_key("バイオリン"));
        assert_eq!(kana_match_key("ヴィクトル"), kana_match_key("ビクトル"));
        assert_eq!(kana_match_key("ヴェラ"), kana_match_key("ベラ"));
        assert_eq!(kana_match_key("ヴォルフ"), kana_match_key("ボルフ"));
        assert_eq!(kana_match_key("ヴ"), kana_match_key("ブ"));
        assert_eq!(kana_match_key("ゔぁ"), kana_match_key("バ"));
        // Stored with large kana, ヴァ is ヴア: still バ.
        assert_eq!(
            kana_match_key("ヴアイオリン"),
            kana_match_key("ヴァイオリン")
        );
        assert_eq!(kana_match_key("ｳﾞｨｸﾄﾙ"), kana_match_key("ビクトル"));
        assert_eq!(kana_match_key("ヷヸヹヺ"), kana_match_key("バビベボ"));
    }

    #[test]
    fn yotsugana_and_old_kana_fold() {
        assert_eq!(kana_match_key("ツヅキ"), kana_match_key("ツズキ"));
        assert_eq!(kana_match_key("チヂミ"), kana_match_key("チジミ"));
        assert_eq!(kana_match_key("カヲル"), kana_match_key("カオル"));
        assert_eq!(kana_match_key("ヰヱ"), kana_match_key("イエ"));
    }

    #[test]
    fn iteration_marks_expand() {
        assert_eq!(name_key("佐々木", &t()), name_key("佐佐木", &t()));
        assert_eq!(kana_match_key("サヽキ"), kana_match_key("ササキ"));
    }

    #[test]
    fn variation_selectors_dropped() {
        assert_eq!(name_key("葛\u{E0100}西", &t()), name_key("葛西", &t()));
        assert_eq!(name_key("辻\u{FE00}", &t()), name_key("辻", &t()));
    }

    #[test]
    fn wildcard_kept_in_key() {
        assert_eq!(name_key("●藤　太郎", &t()), "●藤太郎");
    }

    #[test]
    fn stable_ranges_really_are_nfkc_stable() {
        // Every character the fast path trusts, alone and after a kana (composition).
        for cp in (0..=0x2A6DF).chain([0x3000]) {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            if !nfkc_stable(c) || c == '\u{3000}' {
                continue;
            }
            let alone: String = c.to_string().nfkc().collect();
            assert_eq!(alone, c.to_string(), "U+{cp:04X}");
            let pair: String = ['カ', c].iter().collect::<String>().nfkc().collect();
            assert_eq!(pair, format!("カ{c}"), "U+{cp:04X} after カ");
        }
    }

    #[test]
    fn kanji_numbers() {
        let n = |s: &str| kanji_number(&s.chars().collect::<Vec<_>>());
        assert_eq!(n("三"), 3);
        assert_eq!(n("十"), 10);
        assert_eq!(n("十一"), 11);
        assert_eq!(n("二十"), 20);
        assert_eq!(n("二十三"), 23);
        assert_eq!(n("百五"), 105);
        assert_eq!(n("千二百三十四"), 1234);
        assert_eq!(n("二〇五"), 205);
        assert_eq!(n("一二"), 12);
    }

    fn same_address(a: &str, b: &str) -> bool {
        address_key(a).matches(&address_key(b))
    }

    #[test]
    fn address_notations_agree() {
        let base = "東京都目黒区自由が丘3丁目4番5号";
        for other in [
            "東京都目黒区自由が丘3-4-5",
            "東京都目黒区自由が丘三丁目4番5号",
            "東京都目黒区自由が丘三丁目四番五号",
            "東京都目黒区自由が丘3丁目4番地5",
            "東京都目黒区自由が丘3丁目4番地の5",
            "東京都目黒区自由が丘３－４－５",
            "東京都目黒区自由が丘3‐4‐5",
            "東京都目黒区自由が丘3ー4ー5",
            "東京都目黒区自由が丘3の4の5",
            "東京都 目黒区 自由が丘 3丁目 4番 5号",
            "東京都目黒区自由ヶ丘3丁目4番5号",
            "東京都目黒区自由ケ丘3-4-5",
            "目黒区自由が丘3丁目4番5号",
            "目黒区自由ヶ丘三丁目4番5号",
        ] {
            assert!(
                same_address(base, other),
                "{other}: {:?}",
                address_key(other)
            );
        }
        assert_eq!(address_key(base).rest, "目黒区自由ケ丘3-4-5");
    }

    #[test]
    fn address_compound_kanji_numerals() {
        assert!(same_address(
            "大阪府大阪市北区梅田十二丁目3番1号",
            "大阪府大阪市北区梅田12-3-1"
        ));
        assert!(same_address("梅田二十三丁目3番1号", "梅田23-3-1"));
        assert!(same_address("梅田1-二十-3", "梅田1-20-3"));
    }

    #[test]
    fn address_place_names_keep_their_numerals() {
        assert_eq!(
            address_key("東京都八王子市旭町1-2-3").rest,
            "八王子市旭町1-2-3"
        );
        assert_eq!(
            address_key("兵庫県神戸市中央区三宮町2丁目1番").rest,
            "神戸市中央区三宮町2-1"
        );
        assert!(same_address(
            "宮城県仙台市青葉区一番町3丁目4番5号",
            "宮城県仙台市青葉区一番町3-4-5"
        ));
        assert!(same_address(
            "東京都千代田区霞が関1-1-1",
            "東京都千代田区霞ヶ関1丁目1番1号"
        ));
        assert!(same_address(
            "東京都三鷹市井の頭1-2-3",
            "東京都三鷹市井ノ頭1-2-3"
        ));
    }

    #[test]
    fn ke_variants_between_kanji() {
        for s in [
            "千葉県鎌ケ谷市新鎌ケ谷1-2-3",
            "千葉県鎌ヶ谷市新鎌ヶ谷1-2-3",
            "千葉県鎌が谷市新鎌ガ谷1-2-3",
        ] {
            assert!(same_address(s, "千葉県鎌ケ谷市新鎌ケ谷1丁目2番3号"), "{s}");
        }
        // A katakana word keeps its ガ.
        assert_eq!(address_key("ガーデン1-2").rest, "ガーデン1-2");
    }

    #[test]
    fn different_places_differ() {
        assert!(!same_address(
            "東京都目黒区自由が丘3-4-5",
            "東京都目黒区自由が丘3-4-6"
        ));
        assert!(!same_address(
            "東京都目黒区自由が丘3-4-5",
            "東京都多摩市関戸3-4-5"
        ));
        // Both sides name a prefecture and they differ.
        assert!(!same_address("東京都府中市宮町1-1", "広島県府中市宮町1-1"));
        assert!(same_address("府中市宮町1-1", "広島県府中市宮町1-1"));
    }

    #[test]
    fn address_keeps_katakana_long_vowel() {
        assert_eq!(address_key("センター3-1").rest, "センター3-1");
    }
}
