//! Attributes of an insured person: sex, relationship, loss reason, postal code and names.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use unicode_normalization::UnicodeNormalization;

use crate::error::DomainError;
use crate::kana::{self, is_half_width_katakana, is_hiragana, is_katakana, is_voicing_mark};
use crate::text::string_newtype;

/// 性別: sex as coded in eligibility data (1 male, 2 female, 3 unset).
///
/// Serialized as its numeric code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sex {
    /// 男, code 1.
    Male = 1,
    /// 女, code 2.
    Female = 2,
    /// 未設定, code 3. Exists in national data but is not accepted in CSV input.
    Unset = 3,
}

impl Sex {
    /// The numeric code.
    pub fn code(self) -> i16 {
        self as i16
    }

    /// From a numeric code 1, 2 or 3 (e.g. read back from the database).
    pub fn from_code(code: i16) -> Result<Self, DomainError> {
        match code {
            1 => Ok(Sex::Male),
            2 => Ok(Sex::Female),
            3 => Ok(Sex::Unset),
            _ => Err(DomainError::Sex),
        }
    }

    /// How the sex is written on Japanese documents and pages: 男, 女, or 未設定.
    pub fn label(self) -> &'static str {
        match self {
            Sex::Male => "男",
            Sex::Female => "女",
            Sex::Unset => "未設定",
        }
    }

    /// The label for a stored code; an unknown code reads as 未設定.
    pub fn label_of(code: i16) -> &'static str {
        Sex::from_code(code).map_or(Sex::Unset.label(), Sex::label)
    }

    /// From CSV text: only `1` or `2`, since input files must state the sex.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s.trim() {
            "1" => Ok(Sex::Male),
            "2" => Ok(Sex::Female),
            _ => Err(DomainError::Sex),
        }
    }
}

impl Serialize for Sex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i16(self.code())
    }
}

impl<'de> Deserialize<'de> for Sex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Sex::from_code(i16::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// 本人・家族: whether the person is the insured (本人, code 1) or a dependant (被扶養者, code 2).
///
/// Serialized as `insured` / `dependent`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Relationship {
    /// 本人.
    Insured,
    /// 家族 / 被扶養者.
    Dependent,
}

impl Relationship {
    /// The JP Core relationship code (1 insured, 2 dependant).
    pub fn code(self) -> i16 {
        match self {
            Relationship::Insured => 1,
            Relationship::Dependent => 2,
        }
    }

    /// From the code 1 or 2.
    pub fn from_code(code: i16) -> Result<Self, DomainError> {
        match code {
            1 => Ok(Relationship::Insured),
            2 => Ok(Relationship::Dependent),
            _ => Err(DomainError::Relationship),
        }
    }

    /// From CSV text `insured` or `dependent`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        s.trim().parse().map_err(|_| DomainError::Relationship)
    }

    /// `insured` or `dependent`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// 本人 or 家族.
    pub fn label(self) -> &'static str {
        match self {
            Relationship::Insured => "本人",
            Relationship::Dependent => "家族",
        }
    }
}

/// 資格喪失事由: why a qualification was lost. Serialized as its two-digit code.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LossReason {
    /// 死亡, code 01.
    #[serde(rename = "01")]
    #[strum(serialize = "01")]
    Death,
    /// 生活保護開始, code 02.
    #[serde(rename = "02")]
    #[strum(serialize = "02")]
    Welfare,
    /// 他保険加入, code 03.
    #[serde(rename = "03")]
    #[strum(serialize = "03")]
    OtherInsurance,
    /// その他, code 99.
    #[serde(rename = "99")]
    #[strum(serialize = "99")]
    Other,
}

impl LossReason {
    /// From the code `01`, `02`, `03` or `99`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        s.trim().parse().map_err(|_| DomainError::LossReason)
    }

    /// The two-digit code.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// 死亡, 生活保護開始, 他保険加入 or その他.
    pub fn label(self) -> &'static str {
        match self {
            LossReason::Death => "死亡",
            LossReason::Welfare => "生活保護開始",
            LossReason::OtherInsurance => "他保険加入",
            LossReason::Other => "その他",
        }
    }
}

/// 郵便番号: 7 ASCII digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PostalCode(String);

impl PostalCode {
    /// Parses `1234567` or `123-4567`. Full-width digits and hyphen are accepted (NFKC), as is
    /// a leading 〒 mark, because addresses are often copied from Japanese documents.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let folded: String = s.nfkc().collect();
        let t = folded.trim();
        let t = t.strip_prefix('〒').unwrap_or(t).trim_start();
        let digits: String = match t.len() {
            7 => t.to_owned(),
            8 if t.as_bytes()[3] == b'-' => t.chars().filter(|&c| c != '-').collect(),
            _ => return Err(DomainError::PostalCode),
        };
        if digits.len() == 7 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(digits))
        } else {
            Err(DomainError::PostalCode)
        }
    }

    /// `123-4567`, as printed on mail and certificates.
    pub fn formatted(&self) -> String {
        format!("{}-{}", &self.0[..3], &self.0[3..])
    }
}

string_newtype!(PostalCode);

/// Names longer than this are data errors, not names.
const MAX_NAME_CHARS: usize = 100;

/// Rules common to both name kinds; the error constructor names which field failed.
fn validate_name(s: &str, err: fn(&'static str) -> DomainError) -> Result<String, DomainError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(err("must not be empty"));
    }
    if t.chars().any(char::is_control) {
        return Err(err("must not contain control characters"));
    }
    if t.chars().count() > MAX_NAME_CHARS {
        return Err(err("must be at most 100 characters"));
    }
    Ok(t.to_owned())
}

/// 漢字氏名: the name as written, surrounding whitespace trimmed.
///
/// Family and given name are normally separated by a half- or full-width space; a name without
/// one is accepted, since some people have a single name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KanjiName(String);

impl KanjiName {
    /// Non-empty after trimming, no control characters, at most 100 characters.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        validate_name(s, DomainError::KanjiName).map(Self)
    }
}

string_newtype!(KanjiName);

/// カナ氏名: katakana or hiragana, full- or half-width, stored as given (trimmed).
///
/// Allowed: kana including small kana, ー ｰ, ・ ･, voicing marks ゛゜ﾞﾟ and spaces of either
/// width. Latin letters, digits and kanji are errors. A name without a space is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KanaName(String);

impl KanaName {
    /// Validates a kana name (see the type docs for the allowed characters).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let t = validate_name(s, DomainError::KanaName)?;
        let ok = t.chars().all(|c| {
            is_katakana(c)
                || is_hiragana(c)
                || is_half_width_katakana(c)
                || is_voicing_mark(c)
                || c == ' '
                || c == '\u{3000}'
        });
        if ok {
            Ok(Self(t))
        } else {
            Err(DomainError::KanaName(
                "may hold only katakana, hiragana and spaces",
            ))
        }
    }

    /// Full-width katakana ([`kana::to_full_width_katakana`]).
    pub fn to_full_width_katakana(&self) -> String {
        kana::to_full_width_katakana(&self.0)
    }

    /// Half-width katakana as clinics and the resident register often carry it
    /// ([`kana::to_half_width_katakana`]).
    pub fn to_half_width_katakana(&self) -> String {
        kana::to_half_width_katakana(&self.0)
    }

    /// The key the registry searches by ([`kana::search_key`]).
    pub fn search_key(&self) -> String {
        kana::search_key(&self.0)
    }
}

string_newtype!(KanaName);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sex_codes() {
        assert_eq!(Sex::parse("1").unwrap(), Sex::Male);
        assert_eq!(Sex::parse("2").unwrap(), Sex::Female);
        assert_eq!(Sex::parse("3"), Err(DomainError::Sex));
        assert_eq!(Sex::parse("M"), Err(DomainError::Sex));
        assert_eq!(Sex::from_code(3).unwrap(), Sex::Unset);
        assert_eq!(Sex::from_code(0), Err(DomainError::Sex));
        assert_eq!(Sex::Female.code(), 2);
        assert_eq!(serde_json::to_string(&Sex::Male).unwrap(), "1");
        assert_eq!(serde_json::from_str::<Sex>("3").unwrap(), Sex::Unset);
    }

    #[test]
    fn relationship_codes() {
        assert_eq!(
            Relationship::parse("dependent").unwrap(),
            Relationship::Dependent
        );
        assert_eq!(Relationship::Insured.code(), 1);
        assert_eq!(Relationship::from_code(2).unwrap().as_str(), "dependent");
        assert!(Relationship::parse("本人").is_err());
        assert!(Relationship::from_code(0).is_err());
        assert_eq!(
            serde_json::to_string(&Relationship::Insured).unwrap(),
            "\"insured\""
        );
    }

    #[test]
    fn loss_reason_codes() {
        for (s, r) in [
            ("01", LossReason::Death),
            ("02", LossReason::Welfare),
            ("03", LossReason::OtherInsurance),
            ("99", LossReason::Other),
        ] {
            assert_eq!(LossReason::parse(s).unwrap(), r);
            assert_eq!(r.as_str(), s);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{s}\""));
        }
        assert!(LossReason::parse("1").is_err());
        assert!(LossReason::parse("04").is_err());
    }

    #[test]
    fn postal_codes() {
        for s in [
            "1000001",
            "100-0001",
            "１００－０００１",
            "〒100-0001",
            " 1000001 ",
        ] {
            let p = PostalCode::parse(s).unwrap();
            assert_eq!(p.as_str(), "1000001", "{s}");
            assert_eq!(p.formatted(), "100-0001");
        }
        for s in ["", "100001", "10000011", "1000-001", "100-000a", "100 0001"] {
            assert_eq!(PostalCode::parse(s), Err(DomainError::PostalCode), "{s}");
        }
    }

    #[test]
    fn kanji_names() {
        assert_eq!(
            KanjiName::parse(" 山田　太郎 ").unwrap().as_str(),
            "山田　太郎"
        );
        assert!(KanjiName::parse("山田太郎").is_ok());
        assert!(KanjiName::parse("髙橋 ●子").is_ok());
        assert!(KanjiName::parse("  ").is_err());
        assert!(KanjiName::parse("山田\n太郎").is_err());
        assert!(KanjiName::parse(&"山".repeat(100)).is_ok());
        assert!(KanjiName::parse(&"山".repeat(101)).is_err());
    }

    #[test]
    fn kana_names_accept_and_reject() {
        for ok in [
            "ヤマダ タロウ",
            "やまだ　たろう",
            "ﾔﾏﾀﾞ ﾀﾛｳ",
            "ショウイチ",
            "マリー・アン",
            "ｶﾞ",
            "カ゛",
        ] {
            assert!(KanaName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["Yamada", "山田 タロウ", "ヤマダ1", "ヤマダ-タロウ", ""] {
            assert!(KanaName::parse(bad).is_err(), "{bad}");
        }
    }
}
