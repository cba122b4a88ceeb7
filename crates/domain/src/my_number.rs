//! 個人番号 (My Number): parsing, the check digit, and types that cannot leak the digits.
//!
//! A My Number is 特定個人情報: the law restricts who may see it, so the types here never print
//! it. `Debug` and `Display` show `********1234` (the last 4 digits, as the 資格情報のお知らせ
//! does), the digits are wiped from memory on drop, there is no `Serialize`, and the only way to
//! read the whole number is a method whose name says what it does: `expose_digits`.
//!
//! Input rules shared by every parser here: surrounding ASCII spaces are trimmed and full-width
//! digits (０–９) are folded to ASCII before validation, because numbers typed into Japanese
//! spreadsheets often arrive that way. Anything else that is not a digit is rejected.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::DomainError;
use crate::text::fold_digits;

/// Reads 12 ASCII digits out of user input, or fails without echoing the input.
fn twelve_digits(s: &str) -> Result<[u8; 12], DomainError> {
    let folded = Zeroizing::new(fold_digits(s.trim_matches(' ')));
    let bytes = folded.as_bytes();
    if bytes.len() != 12 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(DomainError::MyNumberFormat);
    }
    let mut out = [0u8; 12];
    out.copy_from_slice(bytes);
    Ok(out)
}

/// Whether the last of 12 ASCII digits matches the check digit of the first 11.
fn check_ok(digits: &[u8; 12]) -> bool {
    let mut base = [0u8; 11];
    base.copy_from_slice(&digits[..11]);
    let ok = digits[11] - b'0' == MyNumber::check_digit(&base);
    base.zeroize();
    ok
}

/// Views ASCII digits as text. The digits are ASCII by construction, so the fallback is never
/// taken; it exists only so that no panic path is needed.
fn ascii_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("")
}

/// Writes `********` and the last 4 digits.
fn write_masked(f: &mut fmt::Formatter<'_>, digits: &[u8; 12]) -> fmt::Result {
    write!(f, "********{}", ascii_str(&digits[8..]))
}

/// 個人番号: 12 ASCII digits whose check digit is right.
#[derive(Clone, PartialEq, Eq, Hash, Zeroize, ZeroizeOnDrop)]
pub struct MyNumber([u8; 12]);

impl MyNumber {
    /// Parses 12 digits with a valid check digit.
    ///
    /// Surrounding ASCII spaces are trimmed and full-width digits accepted (see the module
    /// docs). Errors never contain the digits.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let mut digits = twelve_digits(s)?;
        let out = if check_ok(&digits) {
            Ok(Self(digits))
        } else {
            Err(DomainError::MyNumberCheckDigit)
        };
        // `[u8; 12]` is Copy: wipe the stack copy the value was built from.
        digits.zeroize();
        out
    }

    /// The check digit (0–9) for 11 ASCII base digits.
    ///
    /// With P_n the n-th base digit from the right and weights Q_n = 2,3,4,5,6,7,2,3,4,5,6:
    /// r = Σ P_n·Q_n mod 11; check = 0 if r ≤ 1, else 11 − r. A byte that is not an ASCII
    /// digit gives a meaningless (but still 0–9) result; callers validate first.
    pub fn check_digit(base11: &[u8; 11]) -> u8 {
        let sum: u32 = base11
            .iter()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let n = i as u32 + 1;
                let q = if n <= 6 { n + 1 } else { n - 5 };
                u32::from(b.wrapping_sub(b'0') % 10) * q
            })
            .sum();
        let r = sum % 11;
        // r < 11, so 11 - r ≤ 9 whenever r ≥ 2.
        if r <= 1 {
            0
        } else {
            (11 - r) as u8
        }
    }

    /// The last 4 digits, the most that may be shown to people.
    pub fn last4(&self) -> &str {
        ascii_str(&self.0[8..])
    }

    /// All 12 digits. Use only to seal or index the number; never log or display the result.
    pub fn expose_digits(&self) -> &str {
        ascii_str(&self.0)
    }
}

impl fmt::Debug for MyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MyNumber(")?;
        write_masked(f, &self.0)?;
        f.write_str(")")
    }
}

impl fmt::Display for MyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, &self.0)
    }
}

/// 12 ASCII digits whose check digit is wrong.
///
/// Kept rather than rejected so that nothing an insurer sent is lost; the audit flags it.
#[derive(Clone, PartialEq, Eq, Hash, Zeroize, ZeroizeOnDrop)]
pub struct UncheckedMyNumber([u8; 12]);

impl UncheckedMyNumber {
    /// The last 4 digits, the most that may be shown to people.
    pub fn last4(&self) -> &str {
        ascii_str(&self.0[8..])
    }

    /// All 12 digits. Use only to seal or index the number; never log or display the result.
    pub fn expose_digits(&self) -> &str {
        ascii_str(&self.0)
    }
}

impl fmt::Debug for UncheckedMyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UncheckedMyNumber(")?;
        write_masked(f, &self.0)?;
        f.write_str(")")
    }
}

impl fmt::Display for UncheckedMyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, &self.0)
    }
}

/// A number as linked to a person: valid, or 12 digits with a wrong check digit.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum LinkedNumber {
    /// The check digit is right.
    Valid(MyNumber),
    /// The check digit is wrong; kept and flagged.
    BadCheckDigit(UncheckedMyNumber),
}

impl LinkedNumber {
    /// Parses 12 digits; fails only if the input is not 12 digits (see the module docs for
    /// trimming and full-width digits). A wrong check digit gives [`LinkedNumber::BadCheckDigit`].
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let mut digits = twelve_digits(s)?;
        let out = if check_ok(&digits) {
            LinkedNumber::Valid(MyNumber(digits))
        } else {
            LinkedNumber::BadCheckDigit(UncheckedMyNumber(digits))
        };
        // `[u8; 12]` is Copy: wipe the stack copy the value was built from.
        digits.zeroize();
        Ok(out)
    }

    /// All 12 digits. Use only to seal or index the number; never log or display the result.
    pub fn expose_digits(&self) -> &str {
        match self {
            LinkedNumber::Valid(n) => n.expose_digits(),
            LinkedNumber::BadCheckDigit(n) => n.expose_digits(),
        }
    }

    /// The last 4 digits, the most that may be shown to people.
    pub fn last4(&self) -> &str {
        match self {
            LinkedNumber::Valid(n) => n.last4(),
            LinkedNumber::BadCheckDigit(n) => n.last4(),
        }
    }

    /// Whether the check digit is right.
    pub fn check_digit_ok(&self) -> bool {
        matches!(self, LinkedNumber::Valid(_))
    }
}

impl fmt::Debug for LinkedNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkedNumber::Valid(n) => write!(f, "Valid({n:?})"),
            LinkedNumber::BadCheckDigit(n) => write!(f, "BadCheckDigit({n:?})"),
        }
    }
}

impl fmt::Display for LinkedNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkedNumber::Valid(n) => fmt::Display::fmt(n, f),
            LinkedNumber::BadCheckDigit(n) => fmt::Display::fmt(n, f),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn base_of(s: &str) -> [u8; 11] {
        let mut b = [0u8; 11];
        b.copy_from_slice(&s.as_bytes()[..11]);
        b
    }

    #[test]
    fn examples_from_domain_doc() {
        for s in ["123456789018", "987654321093"] {
            let n = MyNumber::parse(s).unwrap();
            assert_eq!(n.expose_digits(), s);
        }
        // 12345678901 from the right with weights 2,3,4,5,6,7,2,3,4,5,6:
        // 2+0+36+40+42+42+10+12+12+10+6 = 212; 212 mod 11 = 3; 11 - 3 = 8.
        assert_eq!(MyNumber::check_digit(&base_of("12345678901")), 8);
        assert_eq!(MyNumber::check_digit(&base_of("98765432109")), 3);
    }

    #[test]
    fn remainder_zero_or_one_gives_zero() {
        // All zeros: r = 0.
        assert_eq!(MyNumber::check_digit(&base_of("00000000000")), 0);
        // "00000000005": 5·2 = 10, r = 10 → 1. "00000000050": 5·3 = 15, r = 4 → 7.
        assert_eq!(MyNumber::check_digit(&base_of("00000000005")), 1);
        assert_eq!(MyNumber::check_digit(&base_of("00000000050")), 7);
        // "00000000006": 12 mod 11 = 1 → 0.
        assert_eq!(MyNumber::check_digit(&base_of("00000000006")), 0);
    }

    #[test]
    fn masked_everywhere() {
        let n = MyNumber::parse("123456789018").unwrap();
        assert_eq!(n.to_string(), "********9018");
        assert_eq!(format!("{n:?}"), "MyNumber(********9018)");
        assert_eq!(n.last4(), "9018");
        let l = LinkedNumber::parse("123456789017").unwrap();
        assert!(!l.check_digit_ok());
        assert_eq!(l.last4(), "9017");
        assert_eq!(l.expose_digits(), "123456789017");
        let dbg = format!("{l:?} {l} {:?}", Some(&l));
        assert!(!dbg.contains("12345678"), "{dbg}");
        assert!(dbg.contains("********9017"));
    }

    #[test]
    fn errors_never_echo_digits() {
        for s in [
            "123456789017",
            "12345678901",
            "1234567890123",
            "12345678901x",
        ] {
            if let Err(e) = MyNumber::parse(s) {
                let msg = format!("{e} {e:?}");
                assert!(!msg.contains("1234"), "{msg}");
            }
        }
        assert_eq!(
            MyNumber::parse("123456789017"),
            Err(DomainError::MyNumberCheckDigit)
        );
        assert_eq!(
            LinkedNumber::parse("12345678901"),
            Err(DomainError::MyNumberFormat)
        );
    }

    #[test]
    fn input_folding() {
        assert!(MyNumber::parse(" 123456789018 ").is_ok());
        assert_eq!(
            MyNumber::parse("１２３４５６７８９０１８")
                .unwrap()
                .expose_digits(),
            "123456789018"
        );
        for bad in [
            "1234 5678 9018",
            "1234-5678-9018",
            "\t123456789018",
            "①23456789018",
        ] {
            assert_eq!(
                LinkedNumber::parse(bad),
                Err(DomainError::MyNumberFormat),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn computed_check_digit_parses(base in "[0-9]{11}") {
            let c = MyNumber::check_digit(&base_of(&base));
            prop_assert!(c <= 9);
            let s = format!("{base}{c}");
            prop_assert!(MyNumber::parse(&s).is_ok());
            prop_assert!(LinkedNumber::parse(&s).unwrap().check_digit_ok());
        }

        #[test]
        fn other_final_digit_is_flagged(base in "[0-9]{11}", wrong in 0u8..10) {
            let c = MyNumber::check_digit(&base_of(&base));
            prop_assume!(wrong != c);
            let s = format!("{base}{wrong}");
            prop_assert_eq!(MyNumber::parse(&s), Err(DomainError::MyNumberCheckDigit));
            let l = LinkedNumber::parse(&s).unwrap();
            prop_assert!(matches!(l, LinkedNumber::BadCheckDigit(_)));
            prop_assert_eq!(l.expose_digits(), s.as_str());
        }
    }
}
