//! Fitting the evidence model to one run's data (docs/audit.md "Fitting"):
//!
//! 1. name frequencies from a sample of the register;
//! 2. the random channel's u from random pairs of that sample, the household and twin
//!    channels' from pairs of registry household members, the name lookup's sex split from
//!    register pairs with the same given name;
//! 3. m, the prior and the channel weights by EM over a sample of linked pairs (registry
//!    against register), starting from the documented defaults, which also act as a weak
//!    prior (pseudo-counts) so that a level the sample never shows keeps a sensible value.
//!
//! Deterministic: the same samples give the same parameters on any number of threads.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use shikaku_domain::evidence::{Channel, Item, Level, ModelSource};

use super::{Dist, FitStats, Levels, Model, NameFrequencies, CHANNELS, ITEMS, MAX_LEVELS};
use crate::engine::identity::split_name;
use crate::engine::{AuditContext, Identity};
use crate::normalize::name_key;

/// Fewer register records than this: the defaults are used.
pub const MIN_REGISTER_RECORDS: usize = 500;
/// Fewer linked pairs than this: the defaults are used.
pub const MIN_LINKED_PAIRS: usize = 500;
/// Random pairs compared for the random channel's u.
const RANDOM_PAIRS: usize = 100_000;
/// Pairs taken from one block (one address, one reading): a block of thousands (a dummy
/// address) would otherwise dominate.
const PER_BLOCK: usize = 8;
/// Blocked pairs needed before a channel's conditional replaces its default.
const MIN_BLOCKED_PAIRS: f64 = 30.0;
/// Pseudo-counts of the defaults in the estimates: m (per item), the channel weights, the
/// prior; and for the blocked conditionals.
const M_PSEUDO: f64 = 200.0;
const WEIGHT_PSEUDO: f64 = 5.0;
const PRIOR_PSEUDO: f64 = 100.0;
const BLOCK_PSEUDO: f64 = 10.0;
/// Levels whose m is fixed at its documented default rather than fitted: another kanji for the
/// same reading, a wholly different given name and a wholly different name are what another
/// person's number looks like. EM cannot tell "the right person, whose name changed" from
/// "another person" on these (the model is not identifiable there), and on a registry with
/// twins or 3-item errors it drifts to explaining them as the right person: so they carry the
/// domain's rate, as Splink lets a user fix an m-probability.
pub const FIXED_M: [Level; 3] = [
    Level::NameHomophone,
    Level::NameGivenNameChange,
    Level::NameDifferent,
];
/// EM stops when no parameter moves more than this, or after MAX_ITERATIONS.
const TOLERANCE: f64 = 1e-7;
const MAX_ITERATIONS: u32 = 500;

/// The samples a fit uses.
pub struct FitInput<'a> {
    /// Register records, a random sample.
    pub register: &'a [Identity],
    /// Registry households (the insured and dependants of one 記号・番号), for the household
    /// and twin channels.
    pub households: &'a [Vec<Identity>],
    /// Linked pairs: (the registry's items, the register's items for the linked number).
    pub linked: &'a [(Identity, Identity)],
}

/// Fits the model; with too little data, returns the defaults and says why.
pub fn fit(ctx: &AuditContext, input: &FitInput<'_>) -> Model {
    let (n, l) = (input.register.len(), input.linked.len());
    if n < MIN_REGISTER_RECORDS || l < MIN_LINKED_PAIRS {
        let mut model = Model::defaults(format!(
            "{n} register records and {l} linked pairs sampled; fitting needs {MIN_REGISTER_RECORDS} and {MIN_LINKED_PAIRS}"
        ));
        model.stats.register_sample = n as u64;
        model.stats.linked_pairs = l as u64;
        return model;
    }
    let mut model = Model::defaults(String::new());
    model.source = ModelSource::Fitted;
    model.frequencies = NameFrequencies::count(
        &ctx.variants,
        input
            .register
            .iter()
            .map(|r| (r.name_kanji.as_str(), r.name_kana.as_deref())),
    );
    let random_pairs = random_u(ctx, input.register, &mut model);
    blocked_conditionals(ctx, input.register, input.households, &mut model);
    let (iterations, converged) = em(ctx, input.linked, &mut model);
    model.stats = FitStats {
        register_sample: n as u64,
        random_pairs,
        linked_pairs: l as u64,
        em_iterations: iterations,
        converged,
    };
    model
}

/// Level counts per item.
#[derive(Default, Clone, Copy)]
struct Counts([[f64; MAX_LEVELS]; ITEMS]);

impl Counts {
    fn add(&mut self, levels: &Levels, weight: f64) {
        for item in Item::ALL {
            if let Some(l) = levels.get(*item) {
                self.0[item.index()][l.index()] += weight;
            }
        }
    }

    fn total(&self, item: Item) -> f64 {
        self.0[item.index()].iter().sum()
    }

    /// The item's distribution, smoothed toward `prior` with `pseudo` pseudo-counts; `prior`
    /// itself when fewer than `min` were counted.
    fn smoothed(&self, item: Item, prior: &Dist, pseudo: f64, min: f64) -> Dist {
        let total = self.total(item);
        if total < min {
            return *prior;
        }
        let mut d = [0.0; MAX_LEVELS];
        for l in item.levels() {
            let i = l.index();
            d[i] = (self.0[item.index()][i] + pseudo * prior[i]) / (total + pseudo);
        }
        d
    }
}

fn levels_of(ctx: &AuditContext, pairs: &[(usize, usize)], records: &[Identity]) -> Vec<Levels> {
    pairs
        .par_iter()
        .map(|&(a, b)| Levels::of(ctx, &records[a], &records[b]))
        .collect()
}

fn count(levels: &[Levels]) -> Counts {
    levels.iter().fold(Counts::default(), |mut c, l| {
        c.add(l, 1.0);
        c
    })
}

/// The random channel's u from random pairs of the register sample, smoothed by half a
/// count per level so that no level is impossible. Returns the pairs compared.
fn random_u(ctx: &AuditContext, records: &[Identity], model: &mut Model) -> u64 {
    let n = records.len();
    let wanted = RANDOM_PAIRS.min(n * (n - 1) / 2);
    let mut rng = ChaCha8Rng::seed_from_u64(0x005E_EDF5);
    let pairs: Vec<(usize, usize)> = (0..wanted)
        .map(|_| {
            let a = rng.gen_range(0..n);
            let mut b = rng.gen_range(0..n - 1);
            if b >= a {
                b += 1;
            }
            (a, b)
        })
        .collect();
    let counts = count(&levels_of(ctx, &pairs, records));
    let random = &mut model.u[Channel::Random.index()];
    for item in Item::ALL {
        let total = counts.total(*item);
        if total == 0.0 {
            continue;
        }
        let half = 0.5 * item.levels().len() as f64;
        for l in item.levels() {
            random[item.index()][l.index()] =
                (counts.0[item.index()][l.index()] + 0.5) / (total + half);
        }
    }
    // The channels that take an item from random pairs follow the fitted values.
    let random = *random;
    for k in [Channel::ThreeItemLookup, Channel::NameLookup] {
        model.u[k.index()][Item::Address.index()] = random[Item::Address.index()];
    }
    model.u[Channel::NameLookup.index()][Item::BirthDate.index()] = random[Item::BirthDate.index()];
    wanted as u64
}

/// Pairs of records that share a key, at most [`PER_BLOCK`] records per block, in a stable
/// order.
fn blocked_pairs(
    records: &[Identity],
    key: impl Fn(&Identity) -> Option<String>,
) -> Vec<(usize, usize)> {
    let mut blocks: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        if let Some(k) = key(r) {
            let block = blocks.entry(k).or_default();
            if block.len() < PER_BLOCK {
                block.push(i);
            }
        }
    }
    let mut keys: Vec<&String> = blocks.keys().collect();
    keys.sort_unstable();
    let mut pairs = Vec::new();
    for k in keys {
        let b = &blocks[k];
        for (x, &i) in b.iter().enumerate() {
            for &j in &b[x + 1..] {
                pairs.push((i, j));
            }
        }
    }
    pairs
}

/// The conditionals of the lookup channels: the household and twin channels from pairs of
/// registry household members, the name lookup's sex split from register pairs with the same
/// given name; a channel keeps its default where the sample has too few.
fn blocked_conditionals(
    ctx: &AuditContext,
    records: &[Identity],
    households: &[Vec<Identity>],
    model: &mut Model,
) {
    // Two rows of one human (same name and birth date) are not two members.
    let household: Vec<Levels> = households
        .par_iter()
        .flat_map_iter(|h| {
            let h = &h[..h.len().min(PER_BLOCK)];
            (0..h.len())
                .flat_map(move |i| (i + 1..h.len()).map(move |j| (&h[i], &h[j])))
                .map(|(a, b)| Levels::of(ctx, a, b))
                .collect::<Vec<_>>()
        })
        .filter(|l| !(l.name == Level::NameSame && l.birth == Level::BirthSame))
        .collect();
    let counts = count(&household);
    let h = Channel::Household.index();
    for item in [Item::Name, Item::BirthDate, Item::Sex] {
        let prior = model.u[h][item.index()];
        model.u[h][item.index()] = counts.smoothed(item, &prior, BLOCK_PSEUDO, MIN_BLOCKED_PAIRS);
    }
    let t = Channel::Twin.index();
    model.u[t][Item::Name.index()] = model.u[h][Item::Name.index()];
    model.u[t][Item::Sex.index()] = model.u[h][Item::Sex.index()];

    // The 3-item lookup's kanji split (same kanji, similar, another kanji for the reading)
    // keeps its default: same-reading pairs of a register sample are mostly homonyms of
    // common names, which says little about the humans such a lookup actually confused.

    // A name lookup: people with the same given name are mostly of one sex.
    let same_given = count(&levels_of(
        ctx,
        &blocked_pairs(records, |r| {
            split_name(&r.name_kanji).map(|(_, given)| name_key(given, &ctx.variants))
        }),
        records,
    ));
    let nl = Channel::NameLookup.index();
    let prior = model.u[nl][Item::Sex.index()];
    model.u[nl][Item::Sex.index()] =
        same_given.smoothed(Item::Sex, &prior, BLOCK_PSEUDO, MIN_BLOCKED_PAIRS);
}

/// EM over the linked pairs' level patterns: m, the prior and the channel weights, with the
/// u-probabilities held fixed (as Splink does). Returns (iterations, converged).
fn em(ctx: &AuditContext, linked: &[(Identity, Identity)], model: &mut Model) -> (u32, bool) {
    let levels: Vec<Levels> = linked
        .par_iter()
        .map(|(a, b)| Levels::of(ctx, a, b))
        .collect();
    let mut patterns: HashMap<Levels, f64> = HashMap::new();
    for l in levels {
        *patterns.entry(l).or_default() += 1.0;
    }
    // A stable order, so the sums (and the fitted values) do not depend on hashing.
    let mut patterns: Vec<(Levels, f64)> = patterns.into_iter().collect();
    patterns.sort_unstable_by_key(|(l, _)| (l.name, l.birth, l.sex, l.address, l.kana_compared));
    let n: f64 = patterns.iter().map(|(_, c)| c).sum();
    let defaults = Model::defaults(String::new());
    for iteration in 1..=MAX_ITERATIONS {
        let mut right = Counts::default();
        let mut channel = [0.0; CHANNELS];
        let mut other = 0.0;
        let prior = model.prior;
        for (levels, c) in &patterns {
            let (lm, lu) = model.log_likelihoods(levels);
            let lm = lm + (1.0 - prior).ln();
            let top = lu.iter().fold(lm, |a, &b| a.max(b + prior.ln()));
            let pm = (lm - top).exp();
            let pu: Vec<f64> = lu.iter().map(|v| (v + prior.ln() - top).exp()).collect();
            let total = pm + pu.iter().sum::<f64>();
            right.add(levels, c * pm / total);
            for (k, p) in pu.iter().enumerate() {
                channel[k] += c * p / total;
            }
            other += c * pu.iter().sum::<f64>() / total;
        }
        let mut change: f64 = 0.0;
        let new_prior = (other + PRIOR_PSEUDO * defaults.prior) / (n + PRIOR_PSEUDO);
        change = change.max((new_prior - model.prior).abs());
        model.prior = new_prior;
        for ((w, seen), default) in model.weights.iter_mut().zip(channel).zip(defaults.weights) {
            let new = (seen + WEIGHT_PSEUDO * default) / (other + WEIGHT_PSEUDO);
            change = change.max((new - *w).abs());
            *w = new;
        }
        for item in Item::ALL {
            let mut d = right.smoothed(*item, &defaults.m[item.index()], M_PSEUDO, 0.0);
            fix(&mut d, *item, &defaults.m[item.index()]);
            for l in item.levels() {
                change = change.max((d[l.index()] - model.m[item.index()][l.index()]).abs());
            }
            model.m[item.index()] = d;
        }
        if change < TOLERANCE {
            return (iteration, true);
        }
    }
    (MAX_ITERATIONS, false)
}

/// Sets the [`FIXED_M`] levels of `item` to their defaults and scales the others to fill the
/// rest.
fn fix(d: &mut Dist, item: Item, defaults: &Dist) {
    let fixed: Vec<usize> = FIXED_M
        .iter()
        .filter(|l| l.item() == item)
        .map(|l| l.index())
        .collect();
    if fixed.is_empty() {
        return;
    }
    let fixed_mass: f64 = fixed.iter().map(|&i| defaults[i]).sum();
    let free_mass: f64 = item
        .levels()
        .iter()
        .map(|l| l.index())
        .filter(|i| !fixed.contains(i))
        .map(|i| d[i])
        .sum();
    for l in item.levels() {
        let i = l.index();
        d[i] = if fixed.contains(&i) {
            defaults[i]
        } else if free_mass > 0.0 {
            d[i] * (1.0 - fixed_mass) / free_mass
        } else {
            defaults[i]
        };
    }
}

#[cfg(test)]
mod tests;
