//! The identity comparison: the registry's five items (5情報) against the register's, item by
//! item, and the severity rule that decides what a disagreement means (docs/audit.md), with
//! the finding's detail line and the comparison the run stores.

use shikaku_domain::finding::{
    Field, FieldComparison, FieldMatch, FindingKind, Severity, NAME_CHANGE_HINT,
    NAME_CHANGE_HINT_JA,
};

use super::AuditContext;
use crate::model::{CRITICAL_P, UNCERTAIN_P};
use crate::normalize::{address_key, is_wildcard, kana_match_key, name_key};
use shikaku_domain::matching::FiveItemComparison;

/// The five items (5情報) of one human as one side records them: the domain's type, the same
/// one the registration-time check compares.
pub use shikaku_domain::matching::FiveItems as Identity;

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
    /// The names differ only in the surname: the given names agree in kanji and, when both
    /// sides have a kana name, in kana, while the surnames differ (and the kana surnames too,
    /// when both sides have kana). What a marriage or an adoption looks like; see
    /// [`Rule::SurnameChange`].
    pub surname_change: bool,
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
    /// C4: the 2023 3-item lookup error (another human with the same kana, sex and birth
    /// date): kana, birth date and sex agree and the kanji name is different, whether the
    /// addresses agree, differ or are missing on either side (employee insurance often has no
    /// address); or the kanji name is only similar and the address differs.
    ThreeItemLookup,
    /// H1: exactly one of birth date and sex differs, names agree: an entry error.
    EntryError,
    /// H2: the kanji name is different (not merely similar), the kana is not.
    KanjiNameDifferent,
    /// H3: both names disagree, at least one only similar.
    NamesDisagree,
    /// H4: only the surname changed (kanji and kana), with the given name, birth date, sex and
    /// address in agreement (or the address missing): a marriage or adoption the registry has
    /// not caught up with, not another person. Carries [`NAME_CHANGE_HINT`].
    SurnameChange,
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
            Rule::SurnameChange => "H4",
            Rule::KanjiNameSimilar => "M1",
            Rule::KanaOnly => "M2",
            Rule::AddressOnly => "L1",
        }
    }

    /// The severity the shape gave before the evidence model (the hand rule); see
    /// [`Rule::severity_at`] for what findings get now.
    pub fn severity(self) -> Severity {
        match self {
            Rule::BirthOrSexAndName
            | Rule::BothNamesDifferent
            | Rule::BirthAndSex
            | Rule::ThreeItemLookup => Severity::Critical,
            Rule::EntryError
            | Rule::KanjiNameDifferent
            | Rule::NamesDisagree
            | Rule::SurnameChange => Severity::High,
            Rule::KanjiNameSimilar | Rule::KanaOnly => Severity::Medium,
            Rule::AddressOnly => Severity::Low,
        }
    }

    /// The severity of a finding of this shape whose evidence model gives probability `p` of
    /// another person (docs/audit.md "Severity from evidence"): critical at
    /// [`CRITICAL_P`] or above, whatever the shape, except a surname-only change, which the
    /// register's 異動 date decides and which is never critical; below it, the shape's
    /// severity, with critical shapes (which the evidence does not back) high.
    pub fn severity_at(self, p: f64) -> Severity {
        if self == Rule::SurnameChange {
            Severity::High
        } else if p >= CRITICAL_P {
            Severity::Critical
        } else {
            match self.severity() {
                Severity::Critical => Severity::High,
                s => s,
            }
        }
    }

    /// What the reader should conclude and do given probability `p` of another person: the
    /// critical advice at [`CRITICAL_P`] or above; a warning not to correct toward the
    /// register while the evidence is unsettled ([`UNCERTAIN_P`]..[`CRITICAL_P`]) or while
    /// the shape is one another person makes; the shape's own advice when the evidence
    /// clearly points to the right person.
    fn advice_at(self, p: f64) -> String {
        if self == Rule::SurnameChange {
            return self.advice();
        }
        if p >= CRITICAL_P {
            return match self {
                Rule::ThreeItemLookup => Rule::ThreeItemLookup.advice(),
                _ => Rule::BothNamesDifferent.advice(),
            };
        }
        if p >= UNCERTAIN_P || self.severity() == Severity::Critical {
            return "uncertain whether the number is theirs: verify with the insured's documents and J-LIS before changing anything; never copy the register's values into the registry on this finding alone".to_owned();
        }
        self.advice()
    }

    /// The finding kind the rule gives.
    pub fn kind(self) -> FindingKind {
        match self {
            Rule::AddressOnly => FindingKind::AddressMismatch,
            _ => FindingKind::IdentityMismatch,
        }
    }

    /// The reviewer's hint, for the rules that have one: [`NAME_CHANGE_HINT`] for
    /// [`Rule::SurnameChange`]. The finding's detail opens with it.
    pub fn hint(self) -> Option<&'static str> {
        match self {
            Rule::SurnameChange => Some(NAME_CHANGE_HINT),
            _ => None,
        }
    }

    /// What the reader should conclude and do, opening the finding's detail.
    fn advice(self) -> String {
        if let Some(hint) = self.hint() {
            return format!(
                "{hint} ({NAME_CHANGE_HINT_JA}): only the surname differs; if the register moved the name on that date, update the registry's name, else check the person's documents"
            );
        }
        self.fixed_advice().to_owned()
    }

    fn fixed_advice(self) -> &'static str {
        match self {
            Rule::BirthOrSexAndName | Rule::BothNamesDifferent | Rule::BirthAndSex => {
                "probably another person's number: online viewing is blocked until reviewed; verify the number with the insured and J-LIS"
            }
            Rule::ThreeItemLookup => {
                "probably another person's number (kana, birth date and sex agree but the kanji name does not: the 3-item lookup error): online viewing is blocked until reviewed; verify with J-LIS"
            }
            Rule::EntryError => {
                "probably an entry error on the right person: correct the registry or confirm with a reason"
            }
            Rule::KanjiNameDifferent | Rule::NamesDisagree | Rule::SurnameChange => {
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
        // The items are compared once, by the domain's five-item rule (what registration
        // applies too); the audit adds the surname split its severity rules need.
        let items = FiveItemComparison::new(registry, register, &ctx.variants, t);
        let kana = both(&registry.name_kana, &register.name_kana);
        // Only a disagreeing kanji name can be a surname change; clean records skip the split.
        // Kana that agree make it the same reading under another kanji (C4), not a change.
        let surname_change = items.name_kanji.disagrees()
            && !(kana.is_some() && items.name_kana.is_some_and(FieldMatch::agrees))
            && names_differ_in(ctx, registry, register, NamePart::Surname);
        Self {
            name_kanji: items.name_kanji,
            name_kana: items.name_kana,
            birth_date: items.birth_date,
            sex: items.sex,
            address: items.address,
            surname_change,
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
    /// variants raise nothing). Rules are tried in docs/audit.md's order: from the most severe
    /// down, except that a surname-only change (H4) is recognised right after C1, before the
    /// critical rules that any two different names would otherwise meet.
    pub fn rule(&self) -> Option<Rule> {
        let off = |m: Option<FieldMatch>| m.is_some_and(FieldMatch::disagrees);
        let different = |m: Option<FieldMatch>| m.is_some_and(FieldMatch::is_different);
        let kanji = off(Some(self.name_kanji));
        let kana = off(self.name_kana);
        let same_kana = self.name_kana.is_some_and(FieldMatch::agrees);
        let birth = self.birth_date.disagrees();
        let sex = off(self.sex);
        let address = off(self.address);
        let name = kanji || kana;
        // From here on a name disagrees only with birth date and sex in agreement (C1 took
        // the rest), so the surname change is tried before the "both names different" rule
        // that a changed surname would otherwise meet.
        Some(if (birth || sex) && name {
            Rule::BirthOrSexAndName
        } else if self.surname_change && !address {
            Rule::SurnameChange
        } else if different(Some(self.name_kanji)) && different(self.name_kana) {
            Rule::BothNamesDifferent
        } else if birth && sex {
            Rule::BirthAndSex
        } else if kanji && (address || (same_kana && self.name_kanji.is_different())) {
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

/// A name cut at its first space (of any width) into surname and given name; `None` when it
/// has no space with text on both sides. Registries write `山田　太郎`; a register may write
/// `山田太郎`, which [`only_surname_differs`] handles by the other side's cut.
pub(crate) fn split_name(s: &str) -> Option<(&str, &str)> {
    let s = s.trim();
    let at = s.find(char::is_whitespace)?;
    let (surname, rest) = (&s[..at], s[at..].trim_start());
    (!surname.is_empty() && !rest.is_empty()).then_some((surname, rest))
}

/// Two comparison keys equal, a ● (or 〓) on either side matching any one character.
fn keys_match(a: &str, b: &str) -> bool {
    a.chars().count() == b.chars().count()
        && a.chars()
            .zip(b.chars())
            .all(|(x, y)| x == y || is_wildcard(x) || is_wildcard(y))
}

/// Which part of a name [`only_part_differs`] lets differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NamePart {
    /// The surname differs, the given name agrees: a marriage or adoption.
    Surname,
    /// The given name differs, the surname agrees: another member of the family.
    Given,
}

/// Whether two names (kanji or kana, compared through `key`) differ in `part` only. The names
/// are cut at their first space; when only one side has a space, the other side's key must end
/// with that side's given name (or start with its surname) and keep a non-empty rest. Without a
/// space on either side there is no telling surname from given name: `false`.
pub(crate) fn only_part_differs(
    a: &str,
    b: &str,
    key: &dyn Fn(&str) -> String,
    part: NamePart,
) -> bool {
    // One side cut (surname, given) against the other side whole.
    let against_whole = |surname: &str, given: &str, whole: &str| {
        let (surname, given, whole) = (key(surname), key(given), key(whole));
        let n = whole.chars().count();
        let (kept, other) = match part {
            NamePart::Surname => (&given, &surname),
            NamePart::Given => (&surname, &given),
        };
        let k = kept.chars().count();
        if n <= k {
            return false;
        }
        // The kept part sits at the end (given name) or the start (surname) of the whole.
        let at = match part {
            NamePart::Surname => n - k,
            NamePart::Given => k,
        };
        let cut = whole.char_indices().nth(at).map_or(whole.len(), |(i, _)| i);
        let (head, tail) = whole.split_at(cut);
        match part {
            NamePart::Surname => keys_match(tail, kept) && !keys_match(head, other),
            NamePart::Given => keys_match(head, kept) && !keys_match(tail, other),
        }
    };
    match (split_name(a), split_name(b)) {
        (Some((sa, ga)), Some((sb, gb))) => {
            let (same, differ) = match part {
                NamePart::Surname => ((ga, gb), (sa, sb)),
                NamePart::Given => ((sa, sb), (ga, gb)),
            };
            keys_match(&key(same.0), &key(same.1)) && !keys_match(&key(differ.0), &key(differ.1))
        }
        (Some((s, g)), None) => against_whole(s, g, b),
        (None, Some((s, g))) => against_whole(s, g, a),
        (None, None) => false,
    }
}

/// Whether two kanji names (and their kana, when both sides have one) differ in `part` only.
pub(crate) fn names_differ_in(
    ctx: &AuditContext,
    registry: &Identity,
    register: &Identity,
    part: NamePart,
) -> bool {
    only_part_differs(
        &registry.name_kanji,
        &register.name_kanji,
        &|s| name_key(s, &ctx.variants),
        part,
    ) && match both(&registry.name_kana, &register.name_kana) {
        Some((a, b)) => only_part_differs(a, b, &kana_match_key, part),
        None => true,
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
    p: f64,
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
        "[{} p={p:.3}] {}; number …{last4}: {fields}",
        rule.id(),
        rule.advice_at(p)
    )
}
