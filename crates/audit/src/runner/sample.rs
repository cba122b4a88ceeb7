//! The samples the evidence model is fitted on (docs/audit.md "Fitting"), read inside the
//! run's snapshot before the streams start: register records, registry households and linked
//! pairs, each up to [`SAMPLE_ROWS`] rows by PostgreSQL's page sampling (`TABLESAMPLE SYSTEM`,
//! `REPEATABLE`, so the same data gives the same sample and the same parameters). Reading a
//! small share of the pages keeps the cost a few seconds at 10 million linkages.

use std::collections::BTreeMap;

use postgres::Client;

use super::read::{plan_rows, ReadError};
use crate::engine::Identity;
use shikaku_domain::Sex;

/// Rows wanted from each sample.
pub const SAMPLE_ROWS: u64 = 50_000;
/// The seed of `TABLESAMPLE ... REPEATABLE`.
const SEED: i32 = 18;

/// What the fit reads.
#[derive(Debug, Default)]
pub struct Samples {
    /// Register records of the snapshot.
    pub register: Vec<Identity>,
    /// Registry households: the persons of one 記号・番号 (the insured and dependants).
    pub households: Vec<Vec<Identity>>,
    /// (registry, register) of non-revoked linkages whose number is in the snapshot.
    pub linked: Vec<(Identity, Identity)>,
}

/// The planner's row estimate of table `from` (0 when it gives none: the whole table is taken).
fn estimate(client: &mut Client, from: &str) -> Result<f64, ReadError> {
    Ok(plan_rows(client, &format!("SELECT 1 FROM {from}"))?.unwrap_or(0.0))
}

/// The sampling percentage that yields about [`SAMPLE_ROWS`] of `rows`, as SQL text: a
/// number we computed, never user input.
fn percent(rows: f64) -> String {
    let p = if rows <= 0.0 {
        100.0
    } else {
        (SAMPLE_ROWS as f64 * 100.0 / rows).clamp(0.001, 100.0)
    };
    // Rounded, so that a slightly different row estimate samples the same pages.
    format!("{:.3}", (p * 1000.0).ceil() / 1000.0)
}

/// The five items in columns `at..at + 5` (kanji, kana, birth date, sex, address) of a row.
fn identity(r: &postgres::Row, at: usize) -> Result<Identity, ReadError> {
    Ok(Identity {
        name_kanji: r.try_get(at)?,
        name_kana: r.try_get(at + 1)?,
        birth_date: r.try_get(at + 2)?,
        sex: Sex::from_code(r.try_get(at + 3)?).map_err(|_| ReadError::Invalid("sex code"))?,
        address: r.try_get(at + 4)?,
    })
}

/// Reads the three samples; all empty without a register snapshot.
pub fn read(client: &mut Client, snapshot_id: Option<i64>) -> Result<Samples, ReadError> {
    let Some(snapshot) = snapshot_id else {
        return Ok(Samples::default());
    };
    // Only a guard against a wild row estimate: the samples are taken whole, so that which
    // rows a LIMIT would keep never depends on the plan.
    let limit = 4 * SAMPLE_ROWS as i64;
    let pct = percent(estimate(client, "resident_records")?);
    let register = client
        .query(
            &format!(
                "SELECT name_kanji, name_kana, birth_date, sex, address
                 FROM resident_records TABLESAMPLE SYSTEM ({pct}) REPEATABLE ({SEED})
                 WHERE snapshot_id = $1 LIMIT $2"
            ),
            &[&snapshot, &limit],
        )?
        .iter()
        .map(|r| identity(r, 0))
        .collect::<Result<Vec<_>, ReadError>>()?;

    // Persons are stored in import order, where a household's rows sit together, so a page
    // sample keeps households whole.
    let pct = percent(estimate(client, "persons")?);
    let mut households: BTreeMap<(String, String, String), Vec<Identity>> = BTreeMap::new();
    for r in client.query(
        &format!(
            "SELECT insurer_number, symbol, number, name_kanji, name_kana, birth_date, sex, address
             FROM persons TABLESAMPLE SYSTEM ({pct}) REPEATABLE ({SEED}) LIMIT $1"
        ),
        &[&limit],
    )? {
        households
            .entry((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
            .or_default()
            .push(identity(&r, 3)?);
    }
    let households = households
        .into_values()
        .filter(|h| h.len() > 1)
        .map(|mut h| {
            h.sort_unstable_by(order);
            h
        })
        .collect();

    // Linked pairs through the same page sample of persons: the audit run itself rewrites
    // linkages (it suspends those of critical findings), which would move a page sample of
    // linkages from one run to the next; persons stay put, so the same data gives the same
    // sample and the same probabilities.
    // The joins are LATERAL with OFFSET 0 so that they stay index lookups per sampled person:
    // left to itself the planner misjudges the sample's size and hashes the whole register.
    let linked = client
        .query(
            &format!(
                "SELECT p.name_kanji, p.name_kana, p.birth_date, p.sex, p.address,
                        r.name_kanji, r.name_kana, r.birth_date, r.sex, r.address
                 FROM persons p TABLESAMPLE SYSTEM ({pct}) REPEATABLE ({SEED})
                 CROSS JOIN LATERAL (
                     SELECT l.mn_blind FROM linkages l
                     WHERE l.person_id = p.id AND l.status <> 'revoked' OFFSET 0) l
                 CROSS JOIN LATERAL (
                     SELECT r.name_kanji, r.name_kana, r.birth_date, r.sex, r.address
                     FROM resident_records r
                     WHERE r.snapshot_id = $1 AND r.mn_blind = l.mn_blind OFFSET 0) r"
            ),
            &[&snapshot],
        )?
        .iter()
        .map(|r| Ok((identity(r, 0)?, identity(r, 5)?)))
        .collect::<Result<Vec<_>, ReadError>>()?;
    // The order rows arrive in depends on where they sit on disk; sorted, the same data gives
    // the same sample order, the same random pairs and the same parameters.
    let (mut register, mut linked) = (register, linked);
    register.sort_unstable_by(order);
    linked.sort_unstable_by(|a, b| order(&a.0, &b.0).then_with(|| order(&a.1, &b.1)));
    Ok(Samples {
        register,
        households,
        linked,
    })
}

/// A total order on five-item records.
fn order(a: &Identity, b: &Identity) -> std::cmp::Ordering {
    a.birth_date
        .cmp(&b.birth_date)
        .then_with(|| a.name_kanji.cmp(&b.name_kanji))
        .then_with(|| a.name_kana.cmp(&b.name_kana))
        .then_with(|| a.sex.code().cmp(&b.sex.code()))
        .then_with(|| a.address.cmp(&b.address))
}
