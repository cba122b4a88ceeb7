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
use shikaku_domain::finding::{fingerprint, Field, Finding, FindingKind, Severity};
use shikaku_domain::records::ResidentStatus;
use shikaku_domain::{BlindIndex, LinkageStatus, Period};

use crate::compare::{compare_kanji_name, compare_sex, FieldMatch, DEFAULT_SIMILARITY_THRESHOLD};
use crate::model::{Levels, Model};
use crate::normalize::VariantTable;

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
    /// The evidence model that gives identity findings their probability of another person
    /// and their severity; the runner fits it to each run's data ([`crate::model::fit`]).
    pub model: Model,
}

impl AuditContext {
    /// A context with the default variant table and threshold.
    pub fn new(run_date: NaiveDate) -> Self {
        Self {
            run_date,
            variants: VariantTable::default(),
            similarity_threshold: DEFAULT_SIMILARITY_THRESHOLD,
            model: Model::default(),
        }
    }
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
        evidence: None,
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
            let levels = Levels::new(ctx, &cmp, &l.registry, &resident.identity);
            let evidence = ctx.model.score(
                &ctx.variants,
                &levels,
                &l.registry.name_kanji,
                l.registry.name_kana.as_deref(),
            );
            let p = evidence.p_other_person;
            let detail = mismatch_detail(rule, p, &cmp, &l.last4, &l.registry, &resident.identity);
            let mut f = finding(
                rule.kind(),
                rule.severity_at(p),
                l,
                &hex(),
                cmp.differing(),
                detail,
            );
            f.comparison = cmp.stored(ctx, &l.registry, &resident.identity);
            f.evidence = Some(evidence);
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
        evidence: None,
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

pub(crate) mod identity;

use identity::mismatch_detail;
pub use identity::{Identity, IdentityComparison, Rule};

pub mod benefits;

#[cfg(test)]
mod tests;
