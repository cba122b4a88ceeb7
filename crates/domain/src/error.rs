//! The one error type of the domain layer.
//!
//! Messages are short English sentences a data clerk can act on. They never carry the digits of
//! a My Number: callers log and display these messages freely, so the type is built so that it
//! cannot leak 特定個人情報 even by accident (no variant holds a free-form input value).

/// Why a domain value could not be built or a key operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// 保険者番号 of the wrong length or with non-digits.
    #[error("insurer number must be 8 digits (or 6 for 国保)")]
    InsurerNumberFormat,
    /// 保険者番号 whose last digit does not match the check digit.
    #[error("insurer number check digit is wrong")]
    InsurerNumberCheckDigit,
    /// 記号 that breaks a character, width or length rule; the text says which.
    #[error("symbol (記号) {0}")]
    Symbol(&'static str),
    /// 番号 that breaks a character, width or length rule; the text says which.
    #[error("insured number (番号) {0}")]
    InsuredNumber(&'static str),
    /// 枝番 that is not two ASCII digits.
    #[error("branch (枝番) must be 2 digits 00-99")]
    Branch,
    /// A member identifier that is not `保険者番号:記号:番号:枝番`.
    #[error("person key must have 4 parts: insurer:symbol:number:branch")]
    PersonKeyFormat,
    /// A My Number that is not exactly 12 digits.
    #[error("My Number must be 12 digits")]
    MyNumberFormat,
    /// A 12-digit My Number whose check digit is wrong.
    #[error("My Number check digit is wrong")]
    MyNumberCheckDigit,
    /// A sex code other than the ones allowed.
    #[error("sex must be 1 (male) or 2 (female)")]
    Sex,
    /// A relationship other than `insured` / `dependent` (codes 1 / 2).
    #[error("relationship must be insured (本人) or dependent (家族), written as those words")]
    Relationship,
    /// A loss reason code other than 01, 02, 03, 99.
    #[error("loss reason must be 01 (death), 02 (welfare), 03 (other insurance) or 99 (other)")]
    LossReason,
    /// A postal code that is not 7 digits.
    #[error("postal code must be 7 digits, optionally written 123-4567")]
    PostalCode,
    /// 漢字氏名 that breaks a rule; the text says which.
    #[error("kanji name {0}")]
    KanjiName(&'static str),
    /// カナ氏名 that breaks a rule; the text says which.
    #[error("kana name {0}")]
    KanaName(&'static str),
    /// A co-pay rate other than 10, 20, 30 percent.
    #[error("co-pay rate must be 10, 20 or 30")]
    CopayRate,
    /// certificate_requested is neither `yes` nor empty.
    #[error("certificate_requested must be `yes` or empty")]
    CertificateRequested,
    /// A linkage source other than the four known ones.
    #[error("source must be employer, applicant, jlis or other")]
    LinkageSource,
    /// A resident status other than `active` / `removed`.
    #[error("status must be active or removed")]
    ResidentStatus,
    /// Free text (address, register names) holding control characters such as tabs or line
    /// breaks, which break fixed-layout output and usually mean a copy-paste accident.
    #[error("must not contain control characters")]
    ControlCharacters,
    /// A date not written as a real `YYYY-MM-DD` date.
    #[error("date must be a real date written YYYY-MM-DD")]
    Date,
    /// A key file that cannot be used; the text says why (never key material).
    #[error("key file is not usable: {0}")]
    KeyFile(String),
    /// A sealed number names a key id the keyring does not hold.
    #[error("unknown key id {0}")]
    UnknownKeyId(u32),
    /// A sealed number that was tampered with, truncated or sealed under another key.
    #[error("decryption failed")]
    DecryptionFailed,
    /// A dated benefit record (co-pay, 限度額適用区分, 特定疾病) that breaks a rule; the text says
    /// which.
    #[error("{0}")]
    Benefit(&'static str),
    /// A 資格確認書 rule refused; the text says which.
    #[error("certificate: {0}")]
    Certificate(&'static str),
}
