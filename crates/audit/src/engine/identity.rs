//! The identity comparison: the registry's five items (5情報) against the register's, item by
//! item, and the severity rule that decides what a disagreement means (docs/audit.md), with
//! the finding's detail line and the comparison the run stores.

use chrono::NaiveDate;
use shikaku_domain::finding::{Field, FieldComparison, FieldMatch, FindingKind, Severity};
use shikaku_domain::Sex;

use super::AuditContext;
use crate::compare::{
    compare_address, compare_birth_date, compare_kana_name, compare_kanji_name, compare_sex,
};
use crate::normalize::{address_key, kana_match_key, name_key};

/// The five items (5情報) of one human as one side records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// 漢字氏名 as stored.
    pub name_kanji: String,
    /// カナ氏名 as stored; `None` (or empty) when the side has none.
    pub name_kana: Option<String>,
    /// 生年月日.
    pub birth_date: NaiveDate,
    /// 性別; [`Sex::Unset`] is not compared.
    pub sex: Sex,
    /// 住所; `None` (or empty) when the side has none.
    pub address: Option<String>,
}
/// The result of comparing the five items of the registry with the register.
/// `None` means the item could not be compared (absent on a side, or sex unset).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdentityComparison {
    /// 漢字氏名.
    pub name_kanji: FieldMatch,
    /// カナ氏名.
    pub name_kana: Option<FieldMatch>,
    /// 生年月日.
    pub birth_date: FieldMatch,
    /// 性別.
    pub sex: Option<FieldMatch>,
    /// 住所.
    pub address: Option<FieldMatch>,
}

/// Which severity rule of docs/audit.md decided an identity comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// C1: birth date or sex differs, and a name disagrees too.
    BirthOrSexAndName,
    /// C2: both names are different (not merely similar).
    BothNamesDifferent,
    /// C3: birth date and sex both differ.
    BirthAndSex,
    /// C4: kanji name and address disagree while kana, birth date and sex agree: the 2023
    /// 3-item lookup error (another human with the same kana, sex and birth date).
    ThreeItemLookup,
    /// H1: exactly one of birth date and sex differs, names agree: an entry error.
    EntryError,
    /// H2: the kanji name is different (not merely similar), the kana is not.
    KanjiNameDifferent,
    /// H3: both names disagree, at least one only similar.
    NamesDisagree,
    /// M1: only the kanji name is similar (typo-level).
    KanjiNameSimilar,
    /// M2: only the kana disagrees (register furigana are being revised through 2026).
    KanaOnly,
    /// L1: only the address disagrees.
    AddressOnly,
}

impl Rule {
    /// The rule's id in docs/audit.md.
    pub fn id(self) -> &'static str {
        match self {
            Rule::BirthOrSexAndName => "C1",
            Rule::BothNamesDifferent => "C2",
            Rule::BirthAndSex => "C3",
            Rule::ThreeItemLookup => "C4",
            Rule::EntryError => "H1",
            Rule::KanjiNameDifferent => "H2",
            Rule::NamesDisagree => "H3",
            Rule::KanjiNameSimilar => "M1",
            Rule::KanaOnly => "M2",
            Rule::AddressOnly => "L1",
        }
    }

    /// The severity the rule gives.
    pub fn severity(self) -> Severity {
        match self {
            Rule::BirthOrSexAndName
            | Rule::BothNamesDifferent
            | Rule::BirthAndSex
            | Rule::ThreeItemLookup => Severity::Critical,
            Rule::EntryError | Rule::KanjiNameDifferent | Rule::NamesDisagree => Severity::High,
            Rule::KanjiNameSimilar | Rule::KanaOnly => Severity::Medium,
            Rule::AddressOnly => Severity::Low,
        }
    }

    /// The finding kind the rule gives.
    pub fn kind(self) -> FindingKind {
        match self {
            Rule::AddressOnly => FindingKind::AddressMismatch,
            _ => FindingKind::IdentityMismatch,
        }
    }

    /// What the reader should conclude and do, opening the finding's detail.
    fn advice(self) -> &'static str {
        match self {
            Rule::BirthOrSexAndName | Rule::BothNamesDifferent | Rule::BirthAndSex => {
                "probably another person's number: suspend online viewing and verify the number with the insured and J-LIS"
            }
            Rule::ThreeItemLookup => {
                "probably another person's number (kana, birth date and sex agree but kanji name and address do not: the 3-item lookup error): suspend online viewing and verify with J-LIS"
            }
            Rule::EntryError => {
                "probably an entry error on the right person: correct the registry or confirm with a reason"
            }
            Rule::KanjiNameDifferent | Rule::NamesDisagree => {
                "the name disagrees beyond spelling variants: check the person's documents, then correct or confirm with a reason"
            }
            Rule::KanjiNameSimilar => {
                "the kanji name differs slightly (typo-level): correct the registry or confirm with a reason"
            }
            Rule::KanaOnly => {
                "only the kana reading differs: update the registry kana (register furigana are being revised) or confirm with a reason"
            }
            Rule::AddressOnly => "only the address differs: the person may have moved; update the address",
        }
    }
}

impl IdentityComparison {
    /// Compares the registry's items with the register's.
    pub fn new(ctx: &AuditContext, registry: &Identity, register: &Identity) -> Self {
        let t = ctx.similarity_threshold;
        Self {
            name_kanji: compare_kanji_name(
                &registry.name_kanji,
                &register.name_kanji,
                &ctx.variants,
                t,
            ),
            name_kana: both(&registry.name_kana, &register.name_kana)
                .map(|(a, b)| compare_kana_name(a, b, t)),
            birth_date: compare_birth_date(registry.birth_date, register.birth_date),
            sex: compare_sex(registry.sex, register.sex),
            address: both(&registry.address, &register.address)
                .map(|(a, b)| compare_address(a, b, t)),
        }
    }

    /// The items that disagree, in [`Field`] order.
    pub fn differing(&self) -> Vec<Field> {
        let mut out = Vec::new();
        let mut add = |f: Field, m: Option<FieldMatch>| {
            if m.is_some_and(FieldMatch::disagrees) {
                out.push(f);
            }
        };
        add(Field::NameKanji, Some(self.name_kanji));
        add(Field::NameKana, self.name_kana);
        add(Field::BirthDate, Some(self.birth_date));
        add(Field::Sex, self.sex);
        add(Field::Address, self.address);
        out
    }

    /// Each item as compared, with both values and their comparison keys, in [`Field`] order:
    /// what the registry stores with the finding so that a reviewer sees the verdicts this
    /// comparison made, under this run's variant table. Called only for findings, so the keys
    /// are computed again here rather than kept for every comparison.
    pub fn stored(
        &self,
        ctx: &AuditContext,
        registry: &Identity,
        register: &Identity,
    ) -> Vec<FieldComparison> {
        let text = |field, a: Option<&str>, b: Option<&str>, key: &dyn Fn(&str) -> String, m| {
            FieldComparison {
                field,
                registry: a.map(str::to_owned),
                register: b.map(str::to_owned),
                registry_key: a.map(key),
                register_key: b.map(key),
                verdict: m,
            }
        };
        let plain = |field, a: String, b: String, m| FieldComparison {
            field,
            registry: Some(a),
            register: Some(b),
            registry_key: None,
            register_key: None,
            verdict: m,
        };
        let name = |s: &str| name_key(s, &ctx.variants);
        let address = |s: &str| address_key(s).rest;
        vec![
            text(
                Field::NameKanji,
                Some(&registry.name_kanji),
                Some(&register.name_kanji),
                &name,
                Some(self.name_kanji),
            ),
            text(
                Field::NameKana,
                registry.name_kana.as_deref(),
                register.name_kana.as_deref(),
                &kana_match_key,
                self.name_kana,
            ),
            plain(
                Field::BirthDate,
                registry.birth_date.to_string(),
                register.birth_date.to_string(),
                Some(self.birth_date),
            ),
            plain(
                Field::Sex,
                registry.sex.label().to_owned(),
                register.sex.label().to_owned(),
                self.sex,
            ),
            text(
                Field::Address,
                registry.address.as_deref(),
                register.address.as_deref(),
                &address,
                self.address,
            ),
        ]
    }

    /// The severity rule that applies, or `None` when every compared item agrees (spelling
    /// variants raise nothing). Rules are tried from the most severe down.
    pub fn rule(&self) -> Option<Rule> {
        let off = |m: Option<FieldMatch>| m.is_some_and(FieldMatch::disagrees);
        let different = |m: Option<FieldMatch>| m.is_some_and(FieldMatch::is_different);
        let kanji = off(Some(self.name_kanji));
        let kana = off(self.name_kana);
        let birth = self.birth_date.disagrees();
        let sex = off(self.sex);
        let address = off(self.address);
        let name = kanji || kana;
        Some(if (birth || sex) && name {
            Rule::BirthOrSexAndName
        } else if different(Some(self.name_kanji)) && different(self.name_kana) {
            Rule::BothNamesDifferent
        } else if birth && sex {
            Rule::BirthAndSex
        } else if kanji && address {
            Rule::ThreeItemLookup
        } else if birth || sex {
            Rule::EntryError
        } else if kanji && kana {
            Rule::NamesDisagree
        } else if self.name_kanji.is_different() {
            Rule::KanjiNameDifferent
        } else if kanji {
            Rule::KanjiNameSimilar
        } else if kana {
            Rule::KanaOnly
        } else if address {
            Rule::AddressOnly
        } else {
            return None;
        })
    }
}

/// Both values, when both sides have a non-empty one.
fn both<'a>(a: &'a Option<String>, b: &'a Option<String>) -> Option<(&'a str, &'a str)> {
    match (a.as_deref(), b.as_deref()) {
        // "Has a non-space character", stopping at the first one (trim would scan both ends).
        (Some(x), Some(y))
            if x.chars().any(|c| !c.is_whitespace()) && y.chars().any(|c| !c.is_whitespace()) =>
        {
            Some((x, y))
        }
        _ => None,
    }
}

/// Appends "`field` differs (0.67): registry A / register B" for a disagreeing item.
fn describe(out: &mut String, field: Field, m: FieldMatch, registry: &str, register: &str) {
    use std::fmt::Write as _;
    if !out.is_empty() {
        out.push_str("; ");
    }
    // Writing to a String cannot fail.
    let _ = match m {
        FieldMatch::Similar { score } => write!(
            out,
            "{field} similar ({score:.2}): registry {registry} / register {register}"
        ),
        // A date or code has no meaningful similarity score.
        FieldMatch::Different { .. } if matches!(field, Field::BirthDate | Field::Sex) => write!(
            out,
            "{field} differs: registry {registry} / register {register}"
        ),
        FieldMatch::Different { score } => write!(
            out,
            "{field} differs ({score:.2}): registry {registry} / register {register}"
        ),
        FieldMatch::Exact | FieldMatch::Equivalent => Ok(()),
    };
}

pub(super) fn mismatch_detail(
    rule: Rule,
    c: &IdentityComparison,
    last4: &str,
    a: &Identity,
    b: &Identity,
) -> String {
    let mut fields = String::new();
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    if c.name_kanji.disagrees() {
        describe(
            &mut fields,
            Field::NameKanji,
            c.name_kanji,
            &a.name_kanji,
            &b.name_kanji,
        );
    }
    if let Some(m) = c.name_kana.filter(|m| m.disagrees()) {
        describe(
            &mut fields,
            Field::NameKana,
            m,
            &text(&a.name_kana),
            &text(&b.name_kana),
        );
    }
    if c.birth_date.disagrees() {
        describe(
            &mut fields,
            Field::BirthDate,
            c.birth_date,
            &a.birth_date.to_string(),
            &b.birth_date.to_string(),
        );
    }
    if let Some(m) = c.sex.filter(|m| m.disagrees()) {
        describe(
            &mut fields,
            Field::Sex,
            m,
            &a.sex.code().to_string(),
            &b.sex.code().to_string(),
        );
    }
    if let Some(m) = c.address.filter(|m| m.disagrees()) {
        describe(
            &mut fields,
            Field::Address,
            m,
            &text(&a.address),
            &text(&b.address),
        );
    }
    format!(
        "[{}] {}; number …{last4}: {fields}",
        rule.id(),
        rule.advice()
    )
}
