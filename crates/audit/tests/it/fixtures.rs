//! The engine against generated data sets: every planted defect is found with its kind, and
//! nothing is raised on clean, variant-only or re-enrolled persons. Also the ignored
//! micro-benchmark (`cargo test --release -p shikaku-audit -- --ignored --nocapture`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use csv::StringRecord;
use shikaku_audit::model::{fit, FitInput};
use shikaku_audit::{
    audit_groups, check_person_numbers, AuditContext, Identity, LinkageInput, NumberGroup,
    ResidentInput,
};
use shikaku_domain::evidence::ModelSource;
use shikaku_domain::finding::{Finding, FindingKind, Severity};
use shikaku_domain::records::{self, FileKind};
use shikaku_domain::{BlindIndex, Keyring, PersonKey};
use shikaku_domain::{LinkageStatus, Period};
use shikaku_fixtures::{generate_to, read_truth_from, Config, Outputs, Truth};

/// A generated data set turned into engine input, as the runner would build it.
struct Loaded {
    config: Config,
    groups: Vec<NumberGroup>,
    /// Per person key: (person id, non-revoked numbers as (last4, blind)).
    numbers: BTreeMap<String, (i64, Vec<(String, BlindIndex)>)>,
    truth: Vec<Truth>,
    /// Per person key: (id, latest identity, periods, latest acquisition).
    persons: BTreeMap<String, (i64, Identity, Vec<Period>, chrono::NaiveDate)>,
}

fn rows(bytes: &[u8], kind: FileKind) -> (records::Layout, Vec<StringRecord>) {
    let mut rdr = csv::Reader::from_reader(bytes);
    let layout = records::layout(kind, rdr.headers().unwrap()).unwrap();
    let recs = rdr.records().collect::<Result<Vec<_>, _>>().unwrap();
    (layout, recs)
}

fn load(config: Config) -> Loaded {
    let mut bufs: [Vec<u8>; 5] = Default::default();
    let [a, b, c, d, e] = &mut bufs;
    generate_to(
        &config,
        Outputs {
            insurers: a,
            persons: b,
            linkages: c,
            residents: d,
            truth: e,
        },
    )
    .unwrap();
    let keyring = Keyring::generate();

    // Persons: one id per key; the identity of the latest row; every period.
    let mut persons: BTreeMap<String, (i64, Identity, Vec<Period>, chrono::NaiveDate)> =
        BTreeMap::new();
    let (layout, recs) = rows(&bufs[1], FileKind::Persons);
    for rec in &recs {
        let (p, _) = records::person_row(&layout, rec).unwrap();
        let key = p.key.to_string();
        let next_id = persons.len() as i64 + 1;
        let identity = Identity {
            name_kanji: p.name_kanji.as_str().to_owned(),
            name_kana: Some(p.name_kana.as_str().to_owned()),
            birth_date: p.birth_date,
            sex: p.sex,
            address: p.address.clone(),
        };
        let period = Period::new(p.acquired_on, p.lost_on, None);
        let entry = persons
            .entry(key)
            .or_insert_with(|| (next_id, identity.clone(), Vec::new(), p.acquired_on));
        if p.acquired_on >= entry.3 {
            entry.1 = identity;
            entry.3 = p.acquired_on;
        }
        entry.2.push(period);
    }

    let mut residents: HashMap<BlindIndex, ResidentInput> = HashMap::new();
    let (layout, recs) = rows(&bufs[3], FileKind::Residents);
    for rec in &recs {
        let r = records::resident_row(&layout, rec).unwrap();
        let blind = keyring.blind_index(r.my_number.expose_digits());
        residents.insert(
            blind,
            ResidentInput {
                identity: Identity {
                    name_kanji: r.name_kanji,
                    name_kana: r.name_kana,
                    birth_date: r.birth_date,
                    sex: r.sex,
                    address: r.address,
                },
                status: r.status,
            },
        );
    }

    let mut by_blind: BTreeMap<BlindIndex, Vec<LinkageInput>> = BTreeMap::new();
    let mut numbers: BTreeMap<String, (i64, Vec<(String, BlindIndex)>)> = BTreeMap::new();
    let (layout, recs) = rows(&bufs[2], FileKind::Linkages);
    for (i, rec) in recs.iter().enumerate() {
        let l = records::linkage_row(&layout, rec).unwrap();
        let key = l.key.to_string();
        let (person_id, identity, periods, _) = persons.get(&key).unwrap();
        let blind = keyring.blind_index(l.my_number.expose_digits());
        let last4 = l.my_number.last4().to_owned();
        numbers
            .entry(key.clone())
            .or_insert_with(|| (*person_id, Vec::new()))
            .1
            .push((last4.clone(), blind));
        by_blind.entry(blind).or_default().push(LinkageInput {
            linkage_id: i as i64 + 1,
            person_id: *person_id,
            person_key: key,
            last4,
            check_digit_ok: l.my_number.check_digit_ok(),
            status: LinkageStatus::Active,
            registry: identity.clone(),
            periods: periods.clone(),
        });
    }
    let groups = by_blind
        .into_iter()
        .map(|(blind, linkages)| NumberGroup {
            blind,
            linkages,
            resident: residents.remove(&blind),
        })
        .collect();
    let truth = read_truth_from(&bufs[4][..]).unwrap();
    Loaded {
        config,
        groups,
        numbers,
        truth,
        persons,
    }
}

fn audit(data: &Loaded, ctx: &AuditContext) -> Vec<Finding> {
    let mut findings = audit_groups(ctx, &data.groups);
    for (key, (id, nums)) in &data.numbers {
        findings.extend(check_person_numbers(key, *id, nums));
    }
    findings
}

/// The truth row's key as the registry displays it (a 6-digit 国保 number padded to 8).
fn truth_key(t: &Truth) -> String {
    let raw = format!(
        "{}:{}:{}:{}",
        t.insurer_number, t.symbol, t.number, t.branch
    );
    raw.parse::<PersonKey>().unwrap().to_string()
}

/// The engine's context with the evidence model fitted to the data set, as the runner fits it
/// to its samples (here: every register record and every linked pair).
fn fitted(data: &Loaded) -> AuditContext {
    let mut ctx = AuditContext::new(data.config.reference_date);
    let register: Vec<Identity> = data
        .groups
        .iter()
        .filter_map(|g| g.resident.as_ref().map(|r| r.identity.clone()))
        .collect();
    let linked: Vec<(Identity, Identity)> = data
        .groups
        .iter()
        .filter_map(|g| g.resident.as_ref().map(|r| (g, r)))
        .flat_map(|(g, r)| {
            g.linkages
                .iter()
                .map(|l| (l.registry.clone(), r.identity.clone()))
        })
        .collect();
    // Households: the persons of one 記号・番号 (keys are `insurer:symbol:number:branch`).
    let mut households: BTreeMap<String, Vec<Identity>> = BTreeMap::new();
    for (key, (_, identity, _, _)) in &data.persons {
        let household = key.rsplit_once(':').map_or(key.as_str(), |(h, _)| h);
        households
            .entry(household.to_owned())
            .or_default()
            .push(identity.clone());
    }
    let households: Vec<Vec<Identity>> = households.into_values().collect();
    ctx.model = fit(
        &ctx,
        &FitInput {
            register: &register,
            households: &households,
            linked: &linked,
        },
    );
    ctx
}

fn check_data_set(config: Config) {
    let data = load(config);
    let ctx = fitted(&data);
    assert_eq!(ctx.model.source, ModelSource::Fitted);
    let findings = audit(&data, &ctx);
    let mut by_person: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in &findings {
        by_person.entry(&f.person_key).or_default().push(f);
    }

    let mut planted: BTreeMap<String, u32> = BTreeMap::new();
    let mut defect_keys = BTreeSet::new();
    let mut kinds_seen = BTreeSet::new();
    let mut variant_notes = BTreeSet::new();
    for t in &data.truth {
        let key = truth_key(t);
        let found = by_person.get(key.as_str()).cloned().unwrap_or_default();
        match t.kind.as_str() {
            "variant" => {
                for n in t.note.split(';') {
                    variant_notes.insert(n.split(' ').next().unwrap_or(n).to_owned());
                }
                assert!(
                    found.is_empty(),
                    "variant-only record {key} ({}) raised {:#?}",
                    t.note,
                    found
                );
            }
            "reenrolled" => {
                assert!(found.is_empty(), "re-enrolled {key} raised {found:#?}");
            }
            kind => {
                let kind = FindingKind::parse(kind).unwrap();
                defect_keys.insert(key.clone());
                kinds_seen.insert(kind);
                let hit = found.iter().find(|f| f.kind == kind);
                let hit = hit.unwrap_or_else(|| {
                    panic!(
                        "{kind} planted on {key} ({}) not found; got {found:#?}",
                        t.note
                    )
                });
                for field in t.fields.split(';').filter(|f| !f.is_empty()) {
                    assert!(
                        hit.fields.iter().any(|x| x.as_str() == field),
                        "{key}: {field} not among {:?}",
                        hit.fields
                    );
                }
                let expected = match kind {
                    FindingKind::NumberShared => Severity::Critical,
                    FindingKind::AddressMismatch => Severity::Low,
                    FindingKind::NotInRegistry => Severity::Medium,
                    FindingKind::IdentityMismatch if t.note.starts_with("wrong_person") => {
                        Severity::Critical
                    }
                    _ => Severity::High,
                };
                assert_eq!(hit.severity, expected, "{key}: {}", hit.detail);
                // A dependant given the insured's number is another person too.
                if t.note.starts_with("dependant") {
                    let identity = found
                        .iter()
                        .find(|f| f.kind == FindingKind::IdentityMismatch)
                        .unwrap_or_else(|| panic!("{key}: no identity finding: {found:#?}"));
                    assert_eq!(
                        identity.severity,
                        Severity::Critical,
                        "{key}: {}",
                        identity.detail
                    );
                }
                *planted
                    .entry(t.note.split(':').next().unwrap_or("").to_owned())
                    .or_default() += 1;
            }
        }
    }
    // Clean persons (no truth row) and everyone without a planted defect raise nothing.
    for (key, found) in &by_person {
        assert!(
            defect_keys.contains(*key),
            "{key} has no planted defect but raised {found:#?}"
        );
    }
    assert_eq!(kinds_seen.len(), 7, "{kinds_seen:?}");
    for class in ["wrong_person", "entry_error", "name_change", "moved"] {
        assert!(
            planted.get(class).is_some_and(|&n| n > 0),
            "{class} not planted: {planted:?}"
        );
    }
    if data.config.variant_rate >= 0.3 {
        // Every form the generator plants, the address notations included.
        for note in [
            "kanji_variant",
            "unknown_char",
            "no_space",
            "halfwidth_space",
            "halfwidth_kana",
            "large_kana",
            "hiragana_kana",
            "kana_absent",
            "address_hyphen",
            "address_kanji_numeral",
            "address_mixed",
            "address_no",
            "address_full_width",
            "address_ke",
            "address_no_prefecture",
            "address_no_oaza",
            "address_room",
        ] {
            assert!(
                variant_notes.contains(note),
                "{note} never planted: {variant_notes:?}"
            );
        }
    } else {
        assert!(variant_notes.len() >= 12, "{variant_notes:?}");
    }
}

#[test]
fn every_planted_defect_is_found_and_nothing_else() {
    check_data_set(Config {
        persons: 2_000,
        seed: 1,
        ..Config::default()
    });
}

#[test]
fn other_seeds_with_more_defects_and_variants() {
    for seed in [2, 3] {
        check_data_set(Config {
            persons: 2_000,
            seed,
            defect_rate: 0.05,
            variant_rate: 0.3,
            ..Config::default()
        });
    }
}

/// Mostly spelling-only records: kanji-variant controls drawn from the whole generated table
/// (MJ and Unihan classes, supplementary-plane characters included) and every address
/// notation. None may raise anything, and the planted defects are all still found.
#[test]
fn controls_from_the_whole_variant_table_raise_nothing() {
    check_data_set(Config {
        persons: 4_000,
        seed: 6,
        defect_rate: 0.05,
        variant_rate: 0.9,
        ..Config::default()
    });
}

#[test]
fn fixture_findings_same_on_one_and_four_threads() {
    let data = load(Config {
        persons: 2_000,
        seed: 4,
        defect_rate: 0.1,
        variant_rate: 0.3,
        ..Config::default()
    });
    let ctx = AuditContext::new(data.config.reference_date);
    let run = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
            .install(|| audit(&data, &ctx))
    };
    let one = run(1);
    assert!(!one.is_empty());
    assert_eq!(one, run(4));
    // A re-run over the same data gives the same fingerprints.
    assert_eq!(
        one.iter().map(|f| &f.fingerprint).collect::<Vec<_>>(),
        run(2).iter().map(|f| &f.fingerprint).collect::<Vec<_>>()
    );
}

/// Runs the batches as the runner will send them and prints the check time.
fn time_batches(label: &str, ctx: &AuditContext, groups: &[NumberGroup], threads: usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let start = Instant::now();
    let mut n = 0;
    for batch in groups.chunks(8_192) {
        n += pool.install(|| audit_groups(ctx, batch)).len();
    }
    let took = start.elapsed();
    println!(
        "{label}, {threads} thread(s): {} groups in {took:.2?} ({:.0} ns/group), {n} findings; 10M ≈ {:.1} s",
        groups.len(),
        took.as_nanos() as f64 / groups.len() as f64,
        took.as_secs_f64() * 1e7 / groups.len() as f64
    );
}

/// 1,000,000 number groups cycled from a generated data set.
fn million(config: Config) -> (AuditContext, Vec<NumberGroup>) {
    let data = load(config);
    let ctx = AuditContext::new(data.config.reference_date);
    let groups = data
        .groups
        .iter()
        .cycle()
        .take(1_000_000)
        .cloned()
        .collect();
    (ctx, groups)
}

/// Check time for 1,000,000 number groups in three mixes: register entries byte-identical to
/// the registry (the fast path), the default mix with 20% spelling variants, and nearly every
/// entry a variant (every comparison normalizes).
#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn bench_check_1m_groups() {
    let base = Config {
        persons: 100_000,
        seed: 5,
        defect_rate: 0.02,
        variant_rate: 0.2,
        ..Config::default()
    };
    let (ctx, groups) = million(base.clone());
    let clean: Vec<NumberGroup> = groups
        .iter()
        .map(|g| {
            let mut g = g.clone();
            if let (Some(r), Some(l)) = (g.resident.as_mut(), g.linkages.first()) {
                r.identity = l.registry.clone();
                r.status = shikaku_domain::records::ResidentStatus::Active;
            }
            g
        })
        .collect();
    for threads in [1, 2] {
        time_batches("byte-identical", &ctx, &clean, threads);
    }
    for threads in [1, 2] {
        time_batches("20% variants", &ctx, &groups, threads);
    }
    let (ctx, variants) = million(Config {
        variant_rate: 0.98,
        ..base
    });
    for threads in [1, 2] {
        time_batches("98% variants", &ctx, &variants, threads);
    }
}
