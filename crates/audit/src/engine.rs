//! The audit itself: one pure function per unit of work.
//!
//! The runner streams linkages ordered by blind index, so every linkage of one number arrives
//! together with the number's register entry as a [`NumberGroup`]; [`check_group`] finds every
//! problem of that number, and [`audit_groups`] runs it over a batch on the rayon pool, keeping
//! the batch's order. The one check that needs another grouping, [`FindingKind::MultipleNumbers`]
//! (a person with several numbers), is [`check_person_numbers`], fed by the runner's pass in
//! person order.
//!
//! Which linkages are checked:
//! - Revoked linkages are history and are not checked at all. Suspended ones (blocked from
//!   online viewing pending correction) are checked like active ones, so a finding stays open
//!   until the data is really fixed.
//! - [`FindingKind::InvalidCheckDigit`], [`FindingKind::NumberShared`] and
//!   [`FindingKind::IdentityMismatch`] apply to every checked linkage, whether or not the person
//!   is still eligible: a wrong link stays wrong after the qualification ends, and past claims
//!   were shown under it.
//! - [`FindingKind::NotInRegistry`], [`FindingKind::ResidentRemoved`] and
//!   [`FindingKind::AddressMismatch`] apply only to persons eligible on the run date: the
//!   extract is requested for current members, and an old member's address is not kept up.

use chrono::NaiveDate;
use rayon::prelude::*;
use shikaku_domain::records::ResidentStatus;
use shikaku_domain::{BlindIndex, LinkageStatus, Period, Sex};

use crate::compare::{
    compare_address, compare_birth_date, compare_kana_name, compare_kanji_name, compare_sex,
    FieldMatch, DEFAULT_SIMILARITY_THRESHOLD,
};
use crate::normalize::{address_key, kana_match_key, name_key, VariantTable};
use shikaku_domain::finding::{
    fingerprint, Field, FieldComparison, Finding, FindingKind, Severity,
};

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

/// One linkage of the number, with the person it links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkageInput {
    /// `linkages.id`.
    pub linkage_id: i64,
    /// `persons.id`.
    pub person_id: i64,
    /// The person key as the JP Core member identifier `保険者番号:記号:番号:枝番`.
    pub person_key: String,
    /// Last 4 digits of the number.
    pub last4: String,
    /// Whether the number passes the check digit.
    pub check_digit_ok: bool,
    /// The linkage's state.
    pub status: LinkageStatus,
    /// The person's five items in the registry.
    pub registry: Identity,
    /// Every qualification period of the person, in any order.
    pub periods: Vec<Period>,
}

impl LinkageInput {
    /// Whether the person is eligible on `day`.
    pub fn eligible_on(&self, day: NaiveDate) -> bool {
        self.periods.iter().any(|p| p.covers(day))
    }

    fn overlaps(&self, other: &LinkageInput) -> bool {
        self.periods
            .iter()
            .any(|p| other.periods.iter().any(|q| p.overlaps(q)))
    }
}

/// The register entry (住基) of the number, from the latest snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentInput {
    /// The five items as registered (variant kanji, ●, half-width or large-only kana).
    pub identity: Identity,
    /// Active or removed (消除).
    pub status: ResidentStatus,
}

/// Everything known about one My Number: its linkages and its register entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberGroup {
    /// The number's blind index; the runner groups rows by it.
    pub blind: BlindIndex,
    /// Every linkage of the number (any status), in a stable order (e.g. by linkage id).
    pub linkages: Vec<LinkageInput>,
    /// The register entry, if the extract has the number.
    pub resident: Option<ResidentInput>,
}

/// Settings of one audit run.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditContext {
    /// "Today": eligibility is judged on this day.
    pub run_date: NaiveDate,
    /// Kanji variants that count as the same character.
    pub variants: VariantTable,
    /// Similarity at or above which a mismatching text is "similar"; see
    /// [`DEFAULT_SIMILARITY_THRESHOLD`].
    pub similarity_threshold: f64,
}

impl AuditContext {
    /// A context with the default variant table and threshold.
    pub fn new(run_date: NaiveDate) -> Self {
        Self {
            run_date,
            variants: VariantTable::default(),
            similarity_threshold: DEFAULT_SIMILARITY_THRESHOLD,
        }
    }
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

fn mismatch_detail(
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

/// Builds a finding about one linkage.
fn finding(
    kind: FindingKind,
    severity: Severity,
    l: &LinkageInput,
    blind_hex: &str,
    fields: Vec<Field>,
    detail: String,
) -> Finding {
    Finding {
        fingerprint: fingerprint(kind, &l.person_key, blind_hex),
        kind,
        severity,
        person_key: l.person_key.clone(),
        person_id: l.person_id,
        linkage_id: Some(l.linkage_id),
        last4: l.last4.clone(),
        fields,
        detail,
        comparison: Vec::new(),
    }
}

/// Whether two registry identities are the same human: kanji name equivalent, same birth
/// date, and sex equal or unset. Used to tell an unrecorded re-enrolment from a shared number.
fn same_human(ctx: &AuditContext, a: &Identity, b: &Identity) -> bool {
    a.birth_date == b.birth_date
        && compare_sex(a.sex, b.sex).is_none_or(FieldMatch::agrees)
        && compare_kanji_name(
            &a.name_kanji,
            &b.name_kanji,
            &ctx.variants,
            ctx.similarity_threshold,
        )
        .agrees()
}

/// Every finding about one number, in a fixed order: per linkage (in input order)
/// invalid_check_digit, number_shared, not_in_registry, resident_removed, then
/// identity_mismatch or address_mismatch.
pub fn check_group(ctx: &AuditContext, group: &NumberGroup) -> Vec<Finding> {
    let mut out = Vec::new();
    let checked = |l: &&LinkageInput| l.status != LinkageStatus::Revoked;
    // Hex only once a finding needs it: clean groups are the vast majority.
    let mut blind_hex: Option<String> = None;
    let mut hex = || -> String {
        blind_hex
            .get_or_insert_with(|| hex::encode(group.blind.0))
            .clone()
    };
    let several_persons = group.linkages.iter().filter(checked).any(|l| {
        group
            .linkages
            .iter()
            .filter(checked)
            .any(|m| m.person_id != l.person_id)
    });

    for (i, l) in group
        .linkages
        .iter()
        .enumerate()
        .filter(|(_, l)| checked(l))
    {
        let eligible = l.eligible_on(ctx.run_date);
        if !l.check_digit_ok {
            let detail = format!(
                "number …{} fails the check digit: it was probably mistyped; obtain it again from the insured or J-LIS",
                l.last4
            );
            out.push(finding(
                FindingKind::InvalidCheckDigit,
                Severity::High,
                l,
                &hex(),
                Vec::new(),
                detail,
            ));
        }

        if several_persons {
            // A person's other linkages to the same number would be duplicates, which the
            // database forbids; only earlier linkages of the same person are skipped here.
            let first_of_person = group.linkages[..i]
                .iter()
                .filter(checked)
                .all(|m| m.person_id != l.person_id);
            // One pass, no per-pair allocation: a dummy number typed for thousands of
            // employees makes one group of thousands of persons. Each person has at most one
            // linkage per number (UNIQUE (person_id, mn_blind)), so linkages count persons.
            let (mut count, mut same) = (0usize, true);
            let mut keys: Vec<&str> = Vec::new();
            if first_of_person {
                for m in group.linkages.iter().filter(checked) {
                    if m.person_id != l.person_id && l.overlaps(m) {
                        count += 1;
                        if keys.len() < 3 {
                            keys.push(&m.person_key);
                        }
                        // Short-circuits on the first different human, so the costly name
                        // comparison runs about once per person.
                        same = same && same_human(ctx, &l.registry, &m.registry);
                    }
                }
            }
            if count > 0 {
                let more = if count > keys.len() { ", …" } else { "" };
                let (severity, advice) = if same {
                    (
                        Severity::High,
                        "the same name and birth date under both keys: probably a re-enrolment whose earlier loss was not recorded; close the earlier qualification",
                    )
                } else {
                    (
                        Severity::Critical,
                        "the identities differ: the number belongs to at most one of them; verify with J-LIS and revoke the wrong link",
                    )
                };
                let detail = format!(
                    "number …{} is also linked to {} other person(s) with an overlapping qualification ({}{more}); {advice}",
                    l.last4,
                    count,
                    keys.join(", ")
                );
                out.push(finding(
                    FindingKind::NumberShared,
                    severity,
                    l,
                    &hex(),
                    Vec::new(),
                    detail,
                ));
            }
        }

        let Some(resident) = &group.resident else {
            if eligible {
                let detail = format!(
                    "number …{} is not in the resident-register extract: check the number with the insured (it may be mistyped) and look it up with J-LIS",
                    l.last4
                );
                out.push(finding(
                    FindingKind::NotInRegistry,
                    Severity::Medium,
                    l,
                    &hex(),
                    Vec::new(),
                    detail,
                ));
            }
            continue;
        };

        if resident.status == ResidentStatus::Removed && eligible {
            let detail = format!(
                "the register has removed (消除) the resident of number …{} while the person is eligible on {}: check for death or emigration and record the loss of qualification",
                l.last4, ctx.run_date
            );
            out.push(finding(
                FindingKind::ResidentRemoved,
                Severity::High,
                l,
                &hex(),
                Vec::new(),
                detail,
            ));
        }

        let cmp = IdentityComparison::new(ctx, &l.registry, &resident.identity);
        if let Some(rule) = cmp.rule() {
            if rule == Rule::AddressOnly && !eligible {
                continue;
            }
            let detail = mismatch_detail(rule, &cmp, &l.last4, &l.registry, &resident.identity);
            let mut f = finding(
                rule.kind(),
                rule.severity(),
                l,
                &hex(),
                cmp.differing(),
                detail,
            );
            f.comparison = cmp.stored(ctx, &l.registry, &resident.identity);
            out.push(f);
        }
    }
    out
}

/// The [`FindingKind::MultipleNumbers`] finding of one person, given the last 4 digits and
/// blind index of each of the person's non-revoked linkages; `None` when they hold fewer than
/// two different numbers. Severity high: at most one of the numbers can be theirs.
pub fn check_person_numbers<S: AsRef<str>>(
    person_key: &str,
    person_id: i64,
    numbers: &[(S, BlindIndex)],
) -> Option<Finding> {
    let mut distinct: Vec<(BlindIndex, &str)> =
        numbers.iter().map(|(l, b)| (*b, l.as_ref())).collect();
    distinct.sort_unstable();
    distinct.dedup_by_key(|(b, _)| *b);
    if distinct.len() < 2 {
        return None;
    }
    let blinds: Vec<String> = distinct.iter().map(|(b, _)| hex::encode(b.0)).collect();
    let shown: Vec<String> = distinct.iter().map(|(_, l)| format!("…{l}")).collect();
    let kind = FindingKind::MultipleNumbers;
    Some(Finding {
        fingerprint: fingerprint(kind, person_key, &blinds.join(",")),
        kind,
        severity: Severity::High,
        person_key: person_key.to_owned(),
        person_id,
        linkage_id: None,
        last4: distinct[0].1.to_owned(),
        fields: Vec::new(),
        detail: format!(
            "the person holds {} active linkages with different numbers ({}): at most one is theirs; verify with J-LIS and revoke the others",
            distinct.len(),
            shown.join(", ")
        ),
        comparison: Vec::new(),
    })
}

/// [`check_group`] over a batch on the current rayon pool; findings come out in the order of
/// `groups` (and within a group in [`check_group`]'s order), whatever the number of threads.
pub fn audit_groups(ctx: &AuditContext, groups: &[NumberGroup]) -> Vec<Finding> {
    let mut per_group: Vec<Vec<Finding>> = Vec::with_capacity(groups.len());
    groups
        .par_iter()
        .map(|g| check_group(ctx, g))
        .collect_into_vec(&mut per_group);
    per_group.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests;
