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
pub const DEFAULT_SOURCE: &str = "built-in (crates/domain/data/kanji_variants.txt)";
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
