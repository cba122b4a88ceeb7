//! Character classes and small text helpers shared by the identifier and name types. Kana
//! classes and conversions are in [`crate::kana`].

/// CJK ideographs (unified, extension A and beyond, compatibility) and 々 〆 〇.
pub fn is_kanji(c: char) -> bool {
    matches!(c,
        '\u{3005}'..='\u{3007}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{3FFFF}')
}

/// Full-width Latin letters and digits (Ａ–Ｚ, ａ–ｚ, ０–９).
pub(crate) fn is_full_width_alnum(c: char) -> bool {
    matches!(c, '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}')
}

/// Maps full-width digits to ASCII and leaves everything else alone.
///
/// Japanese spreadsheets often hold numbers typed in full width. A narrow fold is used instead
/// of full NFKC so that look-alikes such as ① or ¹ are still rejected rather than silently
/// becoming digits.
pub(crate) fn fold_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF10}'..='\u{FF19}' => {
                char::from_u32(u32::from(c) - 0xFF10 + u32::from(b'0')).unwrap_or(c)
            }
            _ => c,
        })
        .collect()
}

/// Characters that make a spreadsheet treat a cell as a formula (OWASP, CSV injection).
fn formula_trigger(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// A cell as written to a CSV file people open in a spreadsheet: one that would start a formula
/// (`=`, `+`, `-`, `@`, tab, CR; also after leading apostrophes) gets an apostrophe in front,
/// as OWASP recommends, so `=HYPERLINK(…)` in a name stays text. [`spreadsheet_restore`] undoes
/// it exactly, so exporting and importing again changes nothing.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.trim_start_matches('\'').starts_with(formula_trigger) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// The inverse of [`spreadsheet_safe`]: one leading apostrophe is dropped from a cell whose
/// apostrophes are followed by a formula character.
pub fn spreadsheet_restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.trim_start_matches('\'').starts_with(formula_trigger) => rest,
        _ => cell,
    }
}

/// Shortens a value for echoing in an error message, so one huge cell cannot flood a report.
pub(crate) fn truncate_for_message(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max_chars).collect();
        out.push('…');
        out
    }
}

/// Implements `as_str`, `Display`, `FromStr`, `AsRef<str>` and string serde for a validated
/// string newtype with a `parse(&str) -> Result<Self, DomainError>` constructor.
macro_rules! string_newtype {
    ($t:ident) => {
        impl $t {
            /// The validated value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::str::FromStr for $t {
            type Err = $crate::error::DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl ::serde::Serialize for $t {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $t {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                Self::parse(&s).map_err(::serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use string_newtype;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_digits_only_touches_full_width_digits() {
        assert_eq!(fold_digits("０１２３４５６７８９"), "0123456789");
        assert_eq!(fold_digits("①a１"), "①a1");
    }

    #[test]
    fn truncate_marks_cut() {
        assert_eq!(truncate_for_message("abc", 3), "abc");
        assert_eq!(truncate_for_message("あいうえ", 2), "あい…");
    }
}

#[cfg(test)]
mod spreadsheet_tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_restored_exactly() {
        for (cell, safe) in [
            (
                "=HYPERLINK(\"http://x\",\"a\")",
                "'=HYPERLINK(\"http://x\",\"a\")",
            ),
            ("+81", "'+81"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("'=x", "''=x"),
            ("山田 太郎", "山田 太郎"),
            ("東京都千代田区1-1", "東京都千代田区1-1"),
            ("'quoted", "'quoted"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_safe(cell), safe, "{cell:?}");
            assert_eq!(spreadsheet_restore(safe), cell, "{cell:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn restore_undoes_safe(cell in "['=+@a-]{0,4}.{0,6}") {
            let safe = spreadsheet_safe(&cell);
            proptest::prop_assert_eq!(spreadsheet_restore(&safe), cell.as_str());
        }
    }
}
