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
