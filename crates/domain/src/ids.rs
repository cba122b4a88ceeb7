//! Identifiers of an insured person: 保険者番号, 記号, 番号, 枝番 and the key they form.

use std::fmt;
use std::str::FromStr;

use crate::error::DomainError;
use crate::kana::{is_hiragana, is_katakana};
use crate::text::{fold_digits, is_full_width_alnum, is_kanji, string_newtype};

/// 保険者番号: the insurer number, always held as 8 ASCII digits.
///
/// Eight digits are 法別番号 (2) + 都道府県番号 (2) + serial (3) + check digit. Municipal 国保
/// numbers have no 法別番号 and are 6 digits; they are padded with `00` so every insurer number
/// has one shape. The padding does not change the check digit, because leading zeros add nothing
/// to the weighted sum.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InsurerNumber(String);

impl InsurerNumber {
    /// Parses 8 digits, or 6 digits of a 国保 number, and checks the check digit.
    ///
    /// Surrounding whitespace is ignored and full-width digits are accepted, because numbers
    /// typed into Japanese spreadsheets often come that way.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let folded = fold_digits(s.trim());
        if !folded.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::InsurerNumberFormat);
        }
        let full = match folded.len() {
            8 => folded,
            6 => format!("00{folded}"),
            _ => return Err(DomainError::InsurerNumberFormat),
        };
        let expected = Self::check_digit(&full[..7]).ok_or(DomainError::InsurerNumberFormat)?;
        if full.as_bytes()[7] - b'0' != expected {
            return Err(DomainError::InsurerNumberCheckDigit);
        }
        Ok(Self(full))
    }

    /// The check digit for 5 or 7 base digits, or `None` if `base` is not that.
    ///
    /// From the rightmost base digit, digits are multiplied by 2, 1, 2, 1 …; the digits of each
    /// product are added (so 14 counts as 5); check = (10 − sum mod 10) mod 10.
    pub fn check_digit(base: &str) -> Option<u8> {
        if !(base.len() == 5 || base.len() == 7) || !base.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let sum: u32 = base
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let p = u32::from(b - b'0') * if i % 2 == 0 { 2 } else { 1 };
                p / 10 + p % 10
            })
            .sum();
        // sum % 10 < 10, so the result fits a u8.
        Some(((10 - sum % 10) % 10) as u8)
    }

    /// Whether this is a municipal 国保 number (stored with a `00` pad).
    pub fn is_kokuho(&self) -> bool {
        self.0.starts_with("00")
    }

    /// 法別番号 (first two digits), or `None` for 国保 numbers, which have none.
    pub fn houbetsu(&self) -> Option<&str> {
        if self.is_kokuho() {
            None
        } else {
            Some(&self.0[..2])
        }
    }

    /// Whether this is a 後期高齢者医療 insurer (法別番号 39).
    pub fn is_koki(&self) -> bool {
        self.houbetsu() == Some("39")
    }
}

string_newtype!(InsurerNumber);

/// Which field a width-checked code belongs to, so errors name it.
#[derive(Clone, Copy)]
enum CodeField {
    Symbol,
    Number,
}

impl CodeField {
    fn err(self, reason: &'static str) -> DomainError {
        match self {
            CodeField::Symbol => DomainError::Symbol(reason),
            CodeField::Number => DomainError::InsuredNumber(reason),
        }
    }
}

/// UKE (レセプト電算) allows 記号 and 番号 up to 38 bytes.
const MAX_CODE_BYTES: usize = 38;

/// Checks the shared 記号/番号 rules: non-empty, no spaces, one width for the whole field.
fn validate_code(s: &str, field: CodeField) -> Result<(), DomainError> {
    if s.is_empty() {
        return Err(field.err("must not be empty"));
    }
    let mut half = false;
    let mut full = false;
    for c in s.chars() {
        if c == ' ' || c == '\u{3000}' {
            return Err(field.err("must not contain spaces"));
        } else if c.is_ascii_alphanumeric() {
            half = true;
        } else if is_full_width_alnum(c) || is_hiragana(c) || is_katakana(c) || is_kanji(c) {
            full = true;
        } else {
            return Err(field.err(
                "may hold only letters, digits, kana or kanji (half-width kana is not allowed)",
            ));
        }
    }
    if half && full {
        return Err(field.err("must be all half-width or all full-width, not mixed"));
    }
    if s.len() > MAX_CODE_BYTES {
        return Err(field.err("must be at most 38 bytes"));
    }
    Ok(())
}

/// 記号: the symbol printed before the number; absent on some insurers' certificates.
///
/// Either all half-width ASCII letters and digits, or all full-width (full-width letters and
/// digits, kana, kanji). A kana or kanji therefore makes the whole field full-width. No spaces,
/// at most 38 bytes of UTF-8. The value is kept exactly as printed (no width folding), because
/// clinics query with what the certificate shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(String);

impl Symbol {
    /// Validates a 記号.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        validate_code(s, CodeField::Symbol)?;
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(Symbol);

/// 番号: the insured number; the same rules as [`Symbol`] apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InsuredNumber(String);

impl InsuredNumber {
    /// Validates a 番号.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        validate_code(s, CodeField::Number)?;
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(InsuredNumber);

/// 枝番: two ASCII digits 00–99, one per person under a 記号・番号.
///
/// Older certificates have no 枝番; model that as `Option<Branch>` = `None`, never as `00`,
/// because `00` is a real 枝番 and the two must stay distinguishable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Branch(String);

impl Branch {
    /// Parses exactly two digits (full-width digits are folded, surrounding spaces ignored).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let folded = fold_digits(s.trim());
        if folded.len() == 2 && folded.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(folded))
        } else {
            Err(DomainError::Branch)
        }
    }
}

string_newtype!(Branch);

/// The key of an insured person everywhere: (保険者番号, 記号, 番号, 枝番).
///
/// Displayed as the JP Core member identifier `保険者番号:記号:番号:枝番` with empty parts kept,
/// e.g. `00012344::187:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonKey {
    /// 保険者番号.
    pub insurer: InsurerNumber,
    /// 記号, if the insurer uses one.
    pub symbol: Option<Symbol>,
    /// 番号.
    pub number: InsuredNumber,
    /// 枝番, absent on older certificates.
    pub branch: Option<Branch>,
}

impl fmt::Display for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.insurer,
            self.symbol.as_ref().map_or("", Symbol::as_str),
            self.number,
            self.branch.as_ref().map_or("", Branch::as_str)
        )
    }
}

impl FromStr for PersonKey {
    type Err = DomainError;

    /// Parses the JP Core member identifier form. A colon cannot occur inside a part, since
    /// 記号 and 番号 hold only letters, digits, kana and kanji.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let [insurer, symbol, number, branch] = parts.as_slice() else {
            return Err(DomainError::PersonKeyFormat);
        };
        Ok(Self {
            insurer: InsurerNumber::parse(insurer)?,
            symbol: if symbol.is_empty() {
                None
            } else {
                Some(Symbol::parse(symbol)?)
            },
            number: InsuredNumber::parse(number)?,
            branch: if branch.is_empty() {
                None
            } else {
                Some(Branch::parse(branch)?)
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn insurer_examples_from_domain_doc() {
        for s in ["33120015", "01040013", "06130199"] {
            let n = InsurerNumber::parse(s).unwrap();
            assert_eq!(n.as_str(), s);
            assert!(!n.is_kokuho());
        }
        let n = InsurerNumber::parse("06130199").unwrap();
        assert_eq!(n.houbetsu(), Some("06"));
    }

    #[test]
    fn insurer_check_digit_worked_example() {
        // 3312001: from the right 1·2, 0·1, 0·2, 2·1, 1·2, 3·1, 3·2 = 2+0+0+2+2+3+6 = 15 → 5.
        assert_eq!(InsurerNumber::check_digit("3312001"), Some(5));
        // 0613019: 9·2=18 → 1+8 = 9; 1, 0, 3, 2, 6, 0 → 9+1+0+3+2+6+0 = 21 → 9.
        assert_eq!(InsurerNumber::check_digit("0613019"), Some(9));
        assert_eq!(InsurerNumber::check_digit("01234"), Some(4));
        assert_eq!(InsurerNumber::check_digit("0123"), None);
        assert_eq!(InsurerNumber::check_digit("01a34"), None);
    }

    #[test]
    fn kokuho_six_digits_are_padded() {
        // 13810: 0·2, 1, 8·2=16→7, 3, 1·2 = 0+1+7+3+2 = 13 → 7.
        let n = InsurerNumber::parse("138107").unwrap();
        assert_eq!(n.as_str(), "00138107");
        assert!(n.is_kokuho());
        assert_eq!(n.houbetsu(), None);
        assert!(!n.is_koki());
        assert_eq!(InsurerNumber::parse("00138107").unwrap(), n);
    }

    #[test]
    fn koki_is_houbetsu_39() {
        let base = "3913001";
        let c = InsurerNumber::check_digit(base).unwrap();
        let n = InsurerNumber::parse(&format!("{base}{c}")).unwrap();
        assert!(n.is_koki());
    }

    #[test]
    fn insurer_rejects_bad_input() {
        let fmt = DomainError::InsurerNumberFormat;
        assert_eq!(InsurerNumber::parse(""), Err(fmt.clone()));
        assert_eq!(InsurerNumber::parse("3312001"), Err(fmt.clone()));
        assert_eq!(InsurerNumber::parse("331200155"), Err(fmt.clone()));
        assert_eq!(InsurerNumber::parse("3312001a"), Err(fmt));
        assert_eq!(
            InsurerNumber::parse("33120016"),
            Err(DomainError::InsurerNumberCheckDigit)
        );
    }

    #[test]
    fn insurer_accepts_full_width_and_spaces() {
        assert_eq!(
            InsurerNumber::parse(" ３３１２００１５ ").unwrap().as_str(),
            "33120015"
        );
    }

    #[test]
    fn insurer_serde_round_trip_validates() {
        let n = InsurerNumber::parse("01040013").unwrap();
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, "\"01040013\"");
        assert_eq!(serde_json::from_str::<InsurerNumber>(&json).unwrap(), n);
        assert!(serde_json::from_str::<InsurerNumber>("\"01040014\"").is_err());
        assert_eq!("01040013".parse::<InsurerNumber>().unwrap(), n);
        assert_eq!(n.to_string(), "01040013");
    }

    #[test]
    fn symbol_width_rules() {
        assert!(Symbol::parse("1234567").is_ok());
        assert!(Symbol::parse("AB12").is_ok());
        assert!(Symbol::parse("１２３").is_ok());
        assert!(Symbol::parse("東京１２").is_ok());
        assert!(Symbol::parse("あいう").is_ok());
        assert!(Symbol::parse("").is_err());
        assert!(matches!(
            Symbol::parse("東京12"),
            Err(DomainError::Symbol(m)) if m.contains("mixed")
        ));
        assert!(matches!(
            Symbol::parse("AB 12"),
            Err(DomainError::Symbol(m)) if m.contains("spaces")
        ));
        assert!(Symbol::parse("ＡＢ　１").is_err());
        assert!(Symbol::parse("ｱｲｳ").is_err());
        assert!(Symbol::parse("AB-1").is_err());
        assert!(Symbol::parse(&"1".repeat(38)).is_ok());
        assert!(Symbol::parse(&"1".repeat(39)).is_err());
        // 13 kanji = 39 bytes.
        assert!(Symbol::parse(&"東".repeat(12)).is_ok());
        assert!(Symbol::parse(&"東".repeat(13)).is_err());
    }

    #[test]
    fn insured_number_rules_and_error_names_field() {
        assert!(InsuredNumber::parse("187").is_ok());
        assert_eq!(
            InsuredNumber::parse(""),
            Err(DomainError::InsuredNumber("must not be empty"))
        );
        assert!(InsuredNumber::parse("１a").is_err());
    }

    #[test]
    fn branch_rules() {
        assert_eq!(Branch::parse("00").unwrap().as_str(), "00");
        assert_eq!(Branch::parse("０１").unwrap().as_str(), "01");
        for bad in ["", "0", "001", "a1", "-1"] {
            assert_eq!(Branch::parse(bad), Err(DomainError::Branch), "{bad}");
        }
    }

    #[test]
    fn person_key_display_and_parse() {
        let k: PersonKey = "00138107::187:".parse().unwrap();
        assert_eq!(k.symbol, None);
        assert_eq!(k.branch, None);
        assert_eq!(k.to_string(), "00138107::187:");
        let k: PersonKey = "33120015:1234567:89:01".parse().unwrap();
        assert_eq!(k.symbol.as_ref().unwrap().as_str(), "1234567");
        assert_eq!(k.branch.as_ref().unwrap().as_str(), "01");
        assert_eq!(k.to_string(), "33120015:1234567:89:01");
        assert_eq!(
            "33120015:1:2".parse::<PersonKey>(),
            Err(DomainError::PersonKeyFormat)
        );
        assert_eq!(
            "33120015:1:2:3:4".parse::<PersonKey>(),
            Err(DomainError::PersonKeyFormat)
        );
        assert!("33120015:1::01".parse::<PersonKey>().is_err());
    }

    proptest! {
        #[test]
        fn insurer_8_digit_check_digit(base in "[0-9]{7}", wrong in 0u8..10) {
            let c = InsurerNumber::check_digit(&base).unwrap();
            let good = format!("{base}{c}");
            prop_assert!(InsurerNumber::parse(&good).is_ok());
            if wrong != c {
                prop_assert_eq!(
                    InsurerNumber::parse(&format!("{base}{wrong}")),
                    Err(DomainError::InsurerNumberCheckDigit)
                );
            }
        }

        #[test]
        fn insurer_6_digit_check_digit(base in "[0-9]{5}", wrong in 0u8..10) {
            let c = InsurerNumber::check_digit(&base).unwrap();
            let n = InsurerNumber::parse(&format!("{base}{c}")).unwrap();
            prop_assert_eq!(n.as_str(), format!("00{base}{c}"));
            prop_assert!(n.is_kokuho());
            if wrong != c {
                prop_assert_eq!(
                    InsurerNumber::parse(&format!("{base}{wrong}")),
                    Err(DomainError::InsurerNumberCheckDigit)
                );
            }
        }

        #[test]
        fn person_key_round_trips(
            base in "[1-9][0-9]{6}",
            symbol in proptest::option::of("[A-Z0-9]{1,8}"),
            number in "[0-9]{1,10}",
            branch in proptest::option::of("[0-9]{2}"),
        ) {
            let c = InsurerNumber::check_digit(&base).unwrap();
            let s = format!(
                "{base}{c}:{}:{number}:{}",
                symbol.unwrap_or_default(),
                branch.unwrap_or_default()
            );
            let k: PersonKey = s.parse().unwrap();
            prop_assert_eq!(k.to_string(), s);
        }
    }
}
