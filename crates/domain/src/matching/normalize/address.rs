//! Address notation: the comparison key of a 住所, so that 丁目/番/号, hyphens, kanji numerals,
//! の and ケ/ヶ/が, widths, 号室, and an omitted prefecture, 大字 or 字 do not count as
//! differences, while every number still does.

use std::fmt::Write as _;

use crate::text::is_kanji;

use super::for_each_nfkc;

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
pub(super) fn kanji_number(run: &[char]) -> u32 {
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
            } || (out.ends_with('-')
                && after.is_none_or(|a| is_number_marker(a) || !is_kanji(a)));
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
            // 大字 and 字 only mark the next part of the place name; registers write them and
            // insurers often leave them out. 十字 and 文字 are words, not markers.
            '大' if next == Some('字') && c.get(i + 2).is_some_and(|&a| is_kanji(a)) => {
                i += 1;
            }
            '字' if prev.is_some_and(|p| is_kanji(p) && !matches!(p, '十' | '文' | '数'))
                && next.is_some_and(is_kanji) => {}
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
            '号' if ends_digit(&out) => {
                // A room number: 201号室 is 201.
                if next == Some('室') {
                    i += 1;
                }
                push_dash(&mut out)
            }
            '室' if ends_digit(&out) => push_dash(&mut out),
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
    // A dash only separates numbers: the one a 号 or 番地 leaves before a building name goes
    // (`5号ハイツ` = `5 ハイツ`), as do trailing ones.
    let mut rest = String::with_capacity(out.len());
    let mut chars = out.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch != '-' || chars.peek().is_some_and(|n| n.is_ascii_digit()) {
            rest.push(ch);
        }
    }
    AddressKey { prefecture, rest }
}
