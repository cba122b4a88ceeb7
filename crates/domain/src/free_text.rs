//! The one guard for text people type freely: reasons, certificate remarks, token names, search
//! text. Such text is stored for ever (histories, the access log) or printed on a card, so it
//! must not carry a My Number, however it was typed, nor control characters that break a
//! printed line, a log line or PostgreSQL (which refuses NUL).
//!
//! A My Number is recognised the way a person would write one: after NFKC (full-width digits
//! and hyphens become ASCII) and with the separators people put between digit groups removed
//! (spaces of any width, hyphens and dashes of every kind, the prolonged-sound mark an IME
//! types for a hyphen, dots, middle dots, slashes, commas, invisible format characters), any 12
//! consecutive digits that pass the My Number check digit. A longer run is searched window by
//! window, so a number glued to a date is still found; a run of 12 digits that happens to pass
//! the check (one in eleven do) is refused too, which costs a clerk a rewording and never
//! leaks a number.
//!
//! Messages never echo the text.

use unicode_normalization::UnicodeNormalization;

use crate::my_number::MyNumber;

/// A kind of free text, with its rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeText {
    /// Why an action was taken (suspend, correct, dismiss, revoke, export …): required, one
    /// line, at most 500 characters.
    Reason,
    /// 備考 printed on a 資格確認書: optional, line breaks allowed, at most 200 characters.
    Remarks,
    /// The name of an API token: required, one line, at most 100 characters.
    TokenName,
    /// What a clerk typed into a search box: one line, at most 100 characters.
    SearchText,
}

impl FreeText {
    /// The field's name in messages.
    pub fn field(self) -> &'static str {
        match self {
            FreeText::Reason => "reason",
            FreeText::Remarks => "remarks",
            FreeText::TokenName => "name",
            FreeText::SearchText => "search text",
        }
    }

    fn max_chars(self) -> usize {
        match self {
            FreeText::Reason => 500,
            FreeText::Remarks => 200,
            FreeText::TokenName | FreeText::SearchText => 100,
        }
    }

    fn required(self) -> bool {
        matches!(self, FreeText::Reason | FreeText::TokenName)
    }

    fn multiline(self) -> bool {
        matches!(self, FreeText::Remarks)
    }

    /// Checks `text` against this kind's rules.
    pub fn check(self, text: &str) -> Result<(), FreeTextError> {
        let field = self.field();
        let fail = |problem| Err(FreeTextError { field, problem });
        if self.required() && text.trim().is_empty() {
            return fail(Problem::Missing);
        }
        if text.chars().count() > self.max_chars() {
            return fail(Problem::TooLong(self.max_chars()));
        }
        if let Some(c) = text.chars().find(|&c| forbidden_char(c, self.multiline())) {
            return fail(if c == '\n' || c == '\r' {
                Problem::LineBreak
            } else {
                Problem::ControlCharacter
            });
        }
        if holds_my_number(text) {
            return fail(Problem::MyNumber);
        }
        Ok(())
    }
}

/// Why a piece of free text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Empty or blank where something is required.
    Missing,
    /// Longer than the field allows (the limit).
    TooLong(usize),
    /// A line break in a one-line field.
    LineBreak,
    /// NUL, another control character, or an invisible character that reorders text.
    ControlCharacter,
    /// It contains what reads as a whole My Number.
    MyNumber,
}

/// Free text refused, naming the field and the problem, never the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FreeTextError {
    /// The field's name.
    pub field: &'static str,
    /// What is wrong.
    pub problem: Problem,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(*self))
    }
}

fn describe(p: Problem) -> String {
    match p {
        Problem::Missing => "is required".to_string(),
        Problem::TooLong(max) => format!("must be at most {max} characters"),
        Problem::LineBreak => "must be one line".to_string(),
        Problem::ControlCharacter => {
            "must not contain control characters (NUL, tabs, direction overrides …)".to_string()
        }
        Problem::MyNumber => "must not contain a My Number (12 digits with a valid check digit, \
             however separated); refer to its last 4 digits instead"
            .to_string(),
    }
}

/// NUL and the other C0/C1 controls (line breaks only where allowed), DEL, the line and
/// paragraph separators, and the bidirectional overrides that make a log line read differently
/// from what it holds.
pub fn forbidden_char(c: char, allow_line_breaks: bool) -> bool {
    if allow_line_breaks && (c == '\n' || c == '\r') {
        return false;
    }
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Whether `text` holds control characters (line breaks count).
pub fn has_control_characters(text: &str) -> bool {
    text.chars().any(|c| forbidden_char(c, false))
}

/// Characters people put between digit groups, after NFKC.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '\u{2010}'..='\u{2015}' // hyphen, non-breaking hyphen, figure dash, dashes
                | '\u{2043}' | '\u{2212}' | '\u{FE58}' | '\u{00AD}'
                | '\u{30FC}' // ー, which an IME types for a hyphen after digits
                | '\u{301C}' | '\u{FF5E}' | '~' // wave dashes
                | '.' | '\u{30FB}' | '\u{00B7}' | '\u{2024}' // dots, middle dots
                | '/' | '\\' | '\u{2044}' | '\u{2215}' // slashes
                | ',' | '\u{3001}' | '_' | '\''
                | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' // invisible
        )
}

/// The runs of digits in `text` as ASCII, separators removed, after NFKC.
fn digit_runs(text: &str) -> Vec<Vec<u8>> {
    let mut runs = Vec::new();
    let mut run: Vec<u8> = Vec::new();
    for c in text.nfkc() {
        if c.is_ascii_digit() {
            run.push(c as u8);
        } else if !is_separator(c) && !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// Whether `text` contains 12 digits, however separated, that pass the My Number check digit.
pub fn holds_my_number(text: &str) -> bool {
    digit_runs(text).iter().any(|run| {
        run.windows(12).any(|w| {
            let mut base = [0u8; 11];
            base.copy_from_slice(&w[..11]);
            MyNumber::check_digit(&base) == w[11] - b'0'
        })
    })
}

/// Whether `text` could be a My Number, valid or mistyped: 12 or more digits in one run,
/// however separated. Error messages quote no such value.
pub fn may_hold_my_number(text: &str) -> bool {
    digit_runs(text).iter().any(|run| run.len() >= 12)
}

/// `c` after NFKC when that is a single character (full-width digits and punctuation become
/// ASCII), else `c`.
fn fold(c: char) -> char {
    let mut folded = std::iter::once(c).nfkc();
    match (folded.next(), folded.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

/// Replaces every run of ten or more digits (in any width, with any separators between them)
/// with `[redacted]`, for messages built by libraries that quote input (serde, PostgreSQL).
/// Ten rather than twelve: a number cut short by a typo must not leak either. Characters
/// outside the runs are kept, so positions in the message stay readable.
pub fn redact_numbers(message: &str) -> String {
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    while i < chars.len() {
        if !fold(chars[i]).is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let (mut j, mut end, mut digits) = (i, i, 0);
        while j < chars.len() {
            let c = fold(chars[j]);
            if c.is_ascii_digit() {
                digits += 1;
                end = j + 1;
            } else if !is_separator(c) {
                break;
            }
            j += 1;
        }
        if digits >= 10 {
            out.push_str("[redacted]");
        } else {
            out.extend(&chars[i..end]);
        }
        i = end;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const VALID: &str = "123456789018";

    #[test]
    fn a_number_is_found_however_it_is_typed() {
        for text in [
            "123456789018",
            "番号123456789018は誤り",
            "番号1234－5678－9018は誤り",
            "1234 5678 9018",
            "1234\u{3000}5678\u{3000}9018",
            "１２３４５６７８９０１８",
            "1234-5678-9018",
            "1234ー5678ー9018",
            "1234‐5678‐9018",
            "1234–5678—9018",
            "1234.5678.9018",
            "1234/5678/9018",
            "1234・5678・9018",
            "1234\u{200B}5678\u{200B}9018",
            "1 2 3 4 5 6 7 8 9 0 1 8",
            "2026-12-01 123456789018",
            "x0123456789018",
        ] {
            assert!(holds_my_number(text), "{text}");
            assert!(may_hold_my_number(text), "{text}");
            let err = FreeText::Reason.check(text).unwrap_err();
            assert_eq!(err.problem, Problem::MyNumber, "{text}");
            assert!(!err.to_string().contains("9018"), "{err}");
        }
    }

    #[test]
    fn redaction_keeps_the_rest_of_the_message() {
        assert_eq!(
            redact_numbers(
                "invalid type: integer `123456789018`, expected a string at line 1 column 27"
            ),
            "invalid type: integer `[redacted]`, expected a string at line 1 column 27"
        );
        assert_eq!(redact_numbers("1234-5678-9018 x"), "[redacted] x");
        assert_eq!(
            redact_numbers("unknown variant `１２３４－５６７８－９０１８`"),
            "unknown variant `[redacted]`"
        );
        assert_eq!(redact_numbers("2026-11-25"), "2026-11-25");
        assert_eq!(redact_numbers("line 3, column 12"), "line 3, column 12");
    }

    #[test]
    fn ordinary_reasons_pass() {
        for text in [
            "number …9018 was mistyped by the employer",
            "転記誤り（末尾9018）",
            "2026-12-01 本人確認済み",
            "12345678901", // 11 digits
            "電話 03-1234-5678",
            "checked the koseki: same person, name changed by marriage",
        ] {
            assert_eq!(FreeText::Reason.check(text), Ok(()), "{text}");
        }
        // Twelve digits failing the check digit are not a number, but still not quoted.
        assert!(!holds_my_number("123456789012"));
        assert!(may_hold_my_number("123456789012"));
        assert!(!may_hold_my_number("1-2-3 千代田"));
    }

    #[test]
    fn control_characters_and_line_breaks() {
        for text in [
            "a\u{0}b",
            "a\tb",
            "a\u{1b}[31m",
            "a\u{202E}b",
            "a\u{7f}",
            "a\u{85}",
        ] {
            assert_eq!(
                FreeText::Reason.check(text).unwrap_err().problem,
                Problem::ControlCharacter,
                "{text:?}"
            );
        }
        assert_eq!(
            FreeText::Reason.check("a\nb").unwrap_err().problem,
            Problem::LineBreak
        );
        assert_eq!(FreeText::Remarks.check("一行目\n二行目"), Ok(()));
        assert_eq!(
            FreeText::Remarks.check("a\u{0}").unwrap_err().problem,
            Problem::ControlCharacter
        );
    }

    #[test]
    fn required_and_length() {
        assert_eq!(
            FreeText::Reason.check("  ").unwrap_err().problem,
            Problem::Missing
        );
        assert_eq!(FreeText::Remarks.check(""), Ok(()));
        assert_eq!(FreeText::SearchText.check(""), Ok(()));
        assert_eq!(
            FreeText::Remarks
                .check(&"あ".repeat(201))
                .unwrap_err()
                .problem,
            Problem::TooLong(200)
        );
        assert_eq!(FreeText::Remarks.check(&"あ".repeat(200)), Ok(()));
        let e = FreeText::TokenName.check("").unwrap_err();
        assert_eq!(e.to_string(), "name: is required");
    }

    proptest::proptest! {
        /// Any valid number, with any of the separators between any digits and any text
        /// around it, is found.
        #[test]
        fn every_valid_number_is_found(
            base in proptest::collection::vec(0u8..10, 11),
            seps in proptest::collection::vec(
                proptest::sample::select(vec!["", " ", "-", "－", "ー", "‐", ".", "/", "・", "\u{3000}"]),
                11,
            ),
            before in "[a-zあ-ん]{0,5}",
            after in "[a-zあ-ん]{0,5}",
        ) {
            let ascii: Vec<u8> = base.iter().map(|d| b'0' + d).collect();
            let base11: [u8; 11] = ascii.clone().try_into().unwrap();
            let check = MyNumber::check_digit(&base11);
            let mut text = before.clone();
            for (i, d) in ascii.iter().enumerate() {
                text.push(char::from(*d));
                text.push_str(seps[i]);
            }
            text.push(char::from(b'0' + check));
            text.push_str(&after);
            proptest::prop_assert!(holds_my_number(&text), "{}", text);
            proptest::prop_assert_eq!(
                FreeText::Reason.check(&text).unwrap_err().problem,
                Problem::MyNumber
            );
        }
    }

    #[test]
    fn the_valid_example_is_valid() {
        assert!(MyNumber::parse(VALID).is_ok());
    }
}
