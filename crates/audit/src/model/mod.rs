//! The evidence model: a Fellegi–Sunter model of "is this number another person's?" over the
//! comparison levels of the five items (docs/audit.md "Evidence").
//!
//! The right person's side has one m-probability per level, fitted by EM over linked pairs.
//! The other person's side is a mixture of [`Channel`]s, the ways a wrong number reaches a
//! person: a random resident (u from random register pairs), the 3-item lookup, a name lookup,
//! a household member, a twin. Each channel fixes the items its lookup matched on, because a
//! wrong link found by カナ氏名, 生年月日 and 性別 agrees on exactly those: with random-pair u
//! alone (plain Fellegi–Sunter), the 2023 case would score as the right person. Term
//! frequencies of surnames, given names and readings scale the channels that depend on them.
//!
//! [`Model::score`] gives each finding its [`Evidence`]; [`fit`] estimates the parameters.

mod fit;
pub mod levels;

use std::collections::HashMap;

use shikaku_domain::evidence::{
    Channel, Evidence, Item, ItemWeight, Level, LevelParameters, ModelParameters, ModelSource,
};

pub use fit::{fit, FitInput, MIN_LINKED_PAIRS, MIN_REGISTER_RECORDS};
pub use levels::Levels;

use crate::engine::identity::split_name;
use crate::normalize::{kana_match_key, name_key, VariantTable};

/// Items of the model.
pub const ITEMS: usize = 4;
/// Most levels of one item.
pub const MAX_LEVELS: usize = 7;
/// Channels of the "another person" side.
pub const CHANNELS: usize = 5;

/// One item's probability per level (unused tail entries stay 0).
pub type Dist = [f64; MAX_LEVELS];

/// A probability is never taken below this, so that one impossible-looking level cannot make
/// the evidence infinite.
const FLOOR: f64 = 1e-9;
/// The term-frequency ratio is kept within [TF_MIN, TF_MAX]. A name missing from the sample
/// is only weak evidence of a rare name (the sample is a small share of the register), so
/// rarity counts at most one bit toward the right person; commonness up to about four.
const TF_MIN: f64 = 0.5;
const TF_MAX: f64 = 20.0;

/// The probability at or above which an identity finding is critical ("probably another
/// person's number").
pub const CRITICAL_P: f64 = 0.5;
/// Below [`CRITICAL_P`] but at or above this, the finding says the evidence is unsettled:
/// verify before correcting anything.
pub const UNCERTAIN_P: f64 = 0.05;

/// How common a name is in the register sample, for the term-frequency adjustment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NameFrequencies {
    surnames: HashMap<String, u32>,
    given: HashMap<String, u32>,
    readings: HashMap<String, u32>,
    /// Names counted in each map (surnames, given names, readings): the denominators, kept so
    /// that a lookup is O(1).
    totals: [f64; 3],
    /// Σ f² of surnames, given names and readings: the chance two random records share one,
    /// the baseline the ratios divide by.
    baseline: [f64; 3],
}

impl NameFrequencies {
    /// Counts the names of `records`, keyed by the comparison keys (a variant spelling counts
    /// as the same name).
    pub fn count<'a>(
        variants: &VariantTable,
        records: impl Iterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Self {
        let mut f = Self::default();
        for (kanji, kana) in records {
            if let Some((s, g)) = split_name(kanji) {
                *f.surnames.entry(name_key(s, variants)).or_default() += 1;
                *f.given.entry(name_key(g, variants)).or_default() += 1;
            }
            if let Some(k) = kana.filter(|k| !k.trim().is_empty()) {
                *f.readings.entry(kana_match_key(k)).or_default() += 1;
            }
        }
        // Integer sums: exact, so the result does not depend on the map's iteration order
        // (a float sum in hash order differed in the last bit from one run to the next).
        let total = |m: &HashMap<String, u32>| m.values().map(|&c| u64::from(c)).sum::<u64>();
        let squares = |m: &HashMap<String, u32>| {
            m.values()
                .map(|&c| u64::from(c) * u64::from(c))
                .sum::<u64>()
        };
        let maps = [&f.surnames, &f.given, &f.readings];
        for (i, m) in maps.into_iter().enumerate() {
            let n = total(m) as f64;
            f.totals[i] = n;
            f.baseline[i] = if n == 0.0 {
                0.0
            } else {
                squares(m) as f64 / (n * n)
            };
        }
        f
    }

    /// Distinct surnames plus given names counted.
    pub fn distinct(&self) -> u64 {
        (self.surnames.len() + self.given.len()) as u64
    }

    /// The share of `n` names counted that are `key`.
    fn frequency(map: &HashMap<String, u32>, n: f64, key: &str) -> f64 {
        if n == 0.0 {
            return 0.0;
        }
        // A name unseen in the sample is rare: counted as once.
        f64::from(map.get(key).copied().unwrap_or(1)) / n
    }

    /// How much more often than average another person shares this kanji name:
    /// f(surname)·f(given) / (Σf²(surnames)·Σf²(given)). 1 without data.
    pub fn name_ratio(&self, variants: &VariantTable, kanji: &str) -> f64 {
        let Some((s, g)) = split_name(kanji) else {
            return 1.0;
        };
        if self.baseline[0] == 0.0 || self.baseline[1] == 0.0 {
            return 1.0;
        }
        let f = Self::frequency(&self.surnames, self.totals[0], &name_key(s, variants))
            * Self::frequency(&self.given, self.totals[1], &name_key(g, variants));
        clamp_ratio(f / (self.baseline[0] * self.baseline[1]))
    }

    /// The same for the reading (カナ氏名), which the 3-item lookup matches on.
    pub fn reading_ratio(&self, kana: Option<&str>) -> f64 {
        let Some(k) = kana.filter(|k| !k.trim().is_empty()) else {
            return 1.0;
        };
        if self.baseline[2] == 0.0 {
            return 1.0;
        }
        clamp_ratio(
            Self::frequency(&self.readings, self.totals[2], &kana_match_key(k)) / self.baseline[2],
        )
    }
}

fn clamp_ratio(r: f64) -> f64 {
    if r.is_finite() {
        r.clamp(TF_MIN, TF_MAX)
    } else {
        1.0
    }
}

/// The fitted (or default) parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// P(another person) before the items are seen.
    pub prior: f64,
    /// Each channel's share of "another person".
    pub weights: [f64; CHANNELS],
    /// P(level | the right person), per item.
    pub m: [Dist; ITEMS],
    /// P(level | another person, channel), per channel and item.
    pub u: [[Dist; ITEMS]; CHANNELS],
    /// Name frequencies for the term-frequency adjustment.
    pub frequencies: NameFrequencies,
    /// How the parameters came about.
    pub source: ModelSource,
    /// Sample sizes and EM statistics, for the stored parameters.
    pub stats: FitStats,
}

/// Sizes and EM statistics of a fit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FitStats {
    /// Register records sampled.
    pub register_sample: u64,
    /// Random pairs compared.
    pub random_pairs: u64,
    /// Linked pairs EM fitted on.
    pub linked_pairs: u64,
    /// EM iterations.
    pub em_iterations: u32,
    /// Whether EM converged.
    pub converged: bool,
}

/// Builds a distribution from (level, probability) pairs of one item.
fn dist(pairs: &[(Level, f64)]) -> Dist {
    let mut d = [0.0; MAX_LEVELS];
    for &(l, p) in pairs {
        d[l.index()] = p;
    }
    d
}

/// Everything on `level`, nothing elsewhere: an item the channel's lookup matched on.
fn certain(level: Level) -> Dist {
    dist(&[(level, 1.0)])
}

impl Default for Model {
    fn default() -> Self {
        Self::defaults("no data fitted".to_owned())
    }
}

impl Model {
    /// The documented defaults (docs/audit.md "Default parameters"), used when the data is too
    /// small to fit and as EM's starting point and prior.
    pub fn defaults(reason: String) -> Self {
        use Level::*;
        let m = [
            dist(&[
                (NameSame, 0.955),
                (NameKanaDiffers, 0.02),
                (NameKanjiSimilar, 0.01),
                (NameHomophone, 0.000_02),
                (NameSurnameChange, 0.012),
                (NameGivenNameChange, 0.000_02),
                (NameDifferent, 0.002_96),
            ]),
            dist(&[
                (BirthSame, 0.995_4),
                (BirthOneDigit, 0.002),
                (BirthDayMonthSwapped, 0.000_5),
                (BirthWholeYears, 0.002),
                (BirthDifferent, 0.000_1),
            ]),
            dist(&[(SexSame, 0.998), (SexDiffers, 0.002)]),
            dist(&[
                (AddressSame, 0.9),
                (AddressSameMunicipality, 0.05),
                (AddressDifferent, 0.05),
            ]),
        ];
        // Two random residents.
        let random_name = dist(&[
            (NameSame, 0.000_01),
            (NameKanaDiffers, 0.000_001),
            (NameKanjiSimilar, 0.000_01),
            (NameHomophone, 0.000_005),
            (NameSurnameChange, 0.002),
            (NameGivenNameChange, 0.01),
            (NameDifferent, 0.987_974),
        ]);
        let random_birth = dist(&[
            (BirthSame, 0.000_04),
            (BirthOneDigit, 0.001),
            (BirthDayMonthSwapped, 0.000_01),
            (BirthWholeYears, 0.002_7),
            (BirthDifferent, 0.996_25),
        ]);
        let random_sex = dist(&[(SexSame, 0.5), (SexDiffers, 0.5)]);
        let random_address = dist(&[
            (AddressSame, 0.000_1),
            (AddressSameMunicipality, 0.02),
            (AddressDifferent, 0.979_9),
        ]);
        let random = [random_name, random_birth, random_sex, random_address];
        let three_item = [
            dist(&[
                (NameSame, 0.1),
                (NameKanjiSimilar, 0.1),
                (NameHomophone, 0.8),
            ]),
            certain(BirthSame),
            certain(SexSame),
            random_address,
        ];
        let name_lookup = [
            certain(NameSame),
            random_birth,
            dist(&[(SexSame, 0.97), (SexDiffers, 0.03)]),
            random_address,
        ];
        let household_name = dist(&[
            (NameSame, 0.001),
            (NameGivenNameChange, 0.9),
            (NameDifferent, 0.099),
        ]);
        let household = [
            household_name,
            dist(&[
                (BirthSame, 0.002),
                (BirthOneDigit, 0.005),
                (BirthDayMonthSwapped, 0.000_5),
                (BirthWholeYears, 0.01),
                (BirthDifferent, 0.982_5),
            ]),
            random_sex,
            certain(AddressSame),
        ];
        let twin = [
            household_name,
            certain(BirthSame),
            random_sex,
            certain(AddressSame),
        ];
        Self {
            prior: 0.002,
            weights: [0.3, 0.3, 0.15, 0.2, 0.05],
            m,
            u: [random, three_item, name_lookup, household, twin],
            frequencies: NameFrequencies::default(),
            source: ModelSource::Defaults { reason },
            stats: FitStats::default(),
        }
    }

    /// P(level | the right person), floored.
    fn m_of(&self, level: Level) -> f64 {
        self.m[level.item().index()][level.index()].max(FLOOR)
    }

    /// P(level | another person, channel), floored; without kana on a side, the 3-item
    /// channel's homophone share covers every different kanji name (the reading it matched on
    /// cannot be seen).
    fn u_of(&self, channel: Channel, level: Level, kana_compared: bool) -> f64 {
        let u = &self.u[channel.index()][level.item().index()];
        let p = if channel == Channel::ThreeItemLookup && !kana_compared {
            match level {
                Level::NameDifferent | Level::NameSurnameChange | Level::NameGivenNameChange => {
                    u[Level::NameHomophone.index()]
                }
                _ => u[level.index()],
            }
        } else {
            u[level.index()]
        };
        p.max(FLOOR)
    }

    /// The natural-log term-frequency factor of `channel`: name frequency for the random and
    /// name-lookup channels when the name agrees, reading frequency for the 3-item lookup.
    fn tf_ln(channel: Channel, levels: &Levels, name_ratio: f64, reading_ratio: f64) -> f64 {
        match channel {
            Channel::Random | Channel::NameLookup if levels.name == Level::NameSame => {
                name_ratio.ln()
            }
            Channel::ThreeItemLookup => reading_ratio.ln(),
            _ => 0.0,
        }
    }

    /// ln P(levels | the right person) and ln P(levels, channel | another person) for each
    /// channel (weights included, term frequencies not): what EM and scoring share.
    pub fn log_likelihoods(&self, levels: &Levels) -> (f64, [f64; CHANNELS]) {
        let mut lm = 0.0;
        let mut lu = [0.0; CHANNELS];
        for k in Channel::ALL {
            lu[k.index()] = self.weights[k.index()].max(FLOOR).ln();
        }
        for item in Item::ALL {
            let Some(level) = levels.get(*item) else {
                continue;
            };
            lm += self.m_of(level).ln();
            for k in Channel::ALL {
                lu[k.index()] += self.u_of(*k, level, levels.kana_compared).ln();
            }
        }
        (lm, lu)
    }

    /// The evidence for one comparison of `registry_kanji`/`registry_kana` (whose frequencies
    /// adjust the name and reading channels) with the register.
    pub fn score(
        &self,
        variants: &VariantTable,
        levels: &Levels,
        registry_kanji: &str,
        registry_kana: Option<&str>,
    ) -> Evidence {
        let name_ratio = self.frequencies.name_ratio(variants, registry_kanji);
        let reading_ratio = self.frequencies.reading_ratio(registry_kana);
        let (lm, mut lu) = self.log_likelihoods(levels);
        for k in Channel::ALL {
            lu[k.index()] += Self::tf_ln(*k, levels, name_ratio, reading_ratio);
        }
        let prior = self.prior.clamp(FLOOR, 1.0 - FLOOR);
        let lm = lm + (1.0 - prior).ln();
        for v in &mut lu {
            *v += prior.ln();
        }
        let best = Channel::ALL
            .iter()
            .copied()
            .max_by(|a, b| lu[a.index()].total_cmp(&lu[b.index()]))
            .unwrap_or(Channel::Random);
        let top = lu[best.index()];
        let other: f64 = lu.iter().map(|v| (v - top).exp()).sum::<f64>().ln();
        let log_odds = top + other - lm;
        let p = 1.0 / (1.0 + (-log_odds).exp());
        // Bits to 1/1000: what a reviewer can read, and far less to store
        // with every finding than full doubles.
        let bits = |x: f64| (x / std::f64::consts::LN_2 * 1000.0).round() / 1000.0;
        let items = Item::ALL
            .iter()
            .map(|item| {
                let level = levels.get(*item);
                ItemWeight {
                    item: *item,
                    level,
                    bits: level.map_or(0.0, |l| {
                        bits((self.u_of(best, l, levels.kana_compared) / self.m_of(l)).ln())
                    }),
                }
            })
            .collect();
        Evidence {
            p_other_person: p,
            channel: best,
            prior_bits: bits((prior * self.weights[best.index()].max(FLOOR) / (1.0 - prior)).ln()),
            items,
            frequency_bits: bits(Self::tf_ln(best, levels, name_ratio, reading_ratio)),
            other_channels_bits: bits(other),
        }
    }

    /// The parameters in their stored form.
    pub fn parameters(&self) -> ModelParameters {
        ModelParameters {
            source: self.source.clone(),
            prior: self.prior,
            channel_weights: self.weights.to_vec(),
            levels: Level::ALL
                .iter()
                .map(|l| LevelParameters {
                    level: *l,
                    m: self.m[l.item().index()][l.index()],
                    u: Channel::ALL
                        .iter()
                        .map(|k| self.u[k.index()][l.item().index()][l.index()])
                        .collect(),
                })
                .collect(),
            register_sample: self.stats.register_sample,
            random_pairs: self.stats.random_pairs,
            linked_pairs: self.stats.linked_pairs,
            em_iterations: self.stats.em_iterations,
            converged: self.stats.converged,
            distinct_names: self.frequencies.distinct(),
        }
    }
}

/// The parameters as a plain-text table, for `shikaku audit run --explain-model`.
pub fn explain(p: &ModelParameters) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let source = match &p.source {
        ModelSource::Fitted => "fitted from this run's data".to_owned(),
        ModelSource::Defaults { reason } => format!("documented defaults ({reason})"),
    };
    let _ = writeln!(out, "evidence model: {source}");
    let _ = writeln!(
        out,
        "  samples: {} register records, {} random pairs, {} linked pairs; EM {} iterations{}; {} distinct names",
        p.register_sample,
        p.random_pairs,
        p.linked_pairs,
        p.em_iterations,
        if p.converged { ", converged" } else { "" },
        p.distinct_names
    );
    let _ = writeln!(out, "  prior P(another person) = {:.5}", p.prior);
    let _ = write!(out, "  channel weights:");
    for (k, w) in Channel::ALL.iter().zip(&p.channel_weights) {
        let _ = write!(out, " {}={w:.3}", k.as_str());
    }
    let _ = writeln!(out);
    let _ = write!(out, "  {:<26} {:>10}", "level", "m");
    for k in Channel::ALL {
        let _ = write!(out, " {:>16}", format!("u:{}", k.as_str()));
    }
    let _ = writeln!(out, " {:>9}", "w(random)");
    for l in &p.levels {
        let _ = write!(out, "  {:<26} {:>10.6}", l.level.as_str(), l.m);
        for u in &l.u {
            let _ = write!(out, " {u:>16.6}");
        }
        let w = (l.m.max(FLOOR) / l.u[0].max(FLOOR)).log2();
        let _ = writeln!(out, " {w:>9.2}");
    }
    out
}
