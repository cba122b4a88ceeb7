//! The kanji variant table (異体字): groups of characters that count as the same in names,
//! merged with union-find so that an insurer's extra file extends the built-in groups.

use std::collections::HashMap;
use std::str::FromStr;

use crate::finding::VariantTableInfo;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use super::is_wildcard;

/// The default kanji variant table, `crates/domain/data/kanji_variants.txt`.
pub const DEFAULT_KANJI_VARIANTS: &str = include_str!("../../../data/kanji_variants.txt");

/// How the default table is named among a table's sources.
pub const DEFAULT_SOURCE: &str =
    "built-in (crates/domain/data/kanji_variants.txt: MJ縮退マップ 1.2.0, MJ文字情報一覧表 006.02, Unihan 17.0.0)";
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
    /// The embedded default table, parsed once per process (it has some 25,000 characters;
    /// tests and callers ask for it often).
    fn default() -> Self {
        static DEFAULT: std::sync::OnceLock<VariantTable> = std::sync::OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                // The embedded table is checked by a unit test, so this cannot fail at run
                // time; an empty table is still a safe fallback (variants would show up as
                // mismatches).
                let mut t = Self::empty();
                match t.extend_from_str(DEFAULT_SOURCE, DEFAULT_KANJI_VARIANTS) {
                    Ok(()) => t,
                    Err(_) => Self::empty(),
                }
            })
            .clone()
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
        let mut classes = Classes::from_map(&self.map);
        for group in &groups {
            classes.merge_group(group);
        }
        self.map = classes.into_sorted();
        self.sources.push(source.to_owned());
        Ok(())
    }

    /// Adds every group of `other`.
    pub fn extend(&mut self, other: &VariantTable) {
        let mut classes = Classes::from_map(&self.map);
        for &(variant, canonical) in &other.map {
            classes.merge_group(&[canonical, variant]);
        }
        self.map = classes.into_sorted();
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

    /// The table's classes, each with its canonical form first and the rest in code point
    /// order, ordered by canonical form: what the fixture generator draws its controls from.
    pub fn classes(&self) -> Vec<Vec<char>> {
        let mut by_root: std::collections::BTreeMap<char, Vec<char>> = Default::default();
        for &(variant, canonical) in &self.map {
            by_root.entry(canonical).or_default().push(variant);
        }
        by_root
            .into_iter()
            .map(|(root, mut rest)| {
                rest.sort_unstable();
                rest.insert(0, root);
                rest
            })
            .collect()
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

/// Union-find over characters, kept flat: every variant points at its class's canonical form,
/// and each canonical form lists its members, so merging two classes touches only the members
/// that move (the generated table has some 25,000 characters; a scan per merge was quadratic).
struct Classes {
    root_of: HashMap<char, char>,
    members: HashMap<char, Vec<char>>,
}

impl Classes {
    fn from_map(map: &[(char, char)]) -> Self {
        let mut members: HashMap<char, Vec<char>> = HashMap::new();
        for &(variant, canonical) in map {
            members.entry(canonical).or_default().push(variant);
        }
        Self {
            root_of: map.iter().copied().collect(),
            members,
        }
    }

    fn find(&self, c: char) -> char {
        self.root_of.get(&c).copied().unwrap_or(c)
    }

    fn in_a_class(&self, c: char) -> bool {
        self.root_of.contains_key(&c) || self.members.contains_key(&c)
    }

    /// Merges `group` in. If a member already belongs to a class, that class's canonical form
    /// stays canonical, so a user line `邉 …` extends the default 辺 class rather than
    /// renaming it.
    fn merge_group(&mut self, group: &[char]) {
        let Some(&first) = group.first() else {
            return;
        };
        let root = group
            .iter()
            .find(|&&c| self.in_a_class(c))
            .map_or(first, |&c| self.find(c));
        for &c in group {
            self.union(root, c);
        }
    }

    /// Puts `c`'s class into the class of `root` (a canonical form).
    fn union(&mut self, root: char, c: char) {
        let other = self.find(c);
        if other == root {
            return;
        }
        let moved = self.members.remove(&other).unwrap_or_default();
        for &m in &moved {
            self.root_of.insert(m, root);
        }
        self.root_of.insert(other, root);
        let into = self.members.entry(root).or_default();
        into.extend(moved);
        into.push(other);
    }

    fn into_sorted(self) -> Vec<(char, char)> {
        let mut v: Vec<(char, char)> = self.root_of.into_iter().collect();
        v.sort_unstable();
        v
    }
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
