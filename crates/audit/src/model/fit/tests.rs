//! The fit on small synthetic samples: defaults below the minimum, convergence and
//! determinism above it.
#![allow(clippy::unwrap_used)]

use super::*;
use chrono::NaiveDate;
use shikaku_domain::Sex;

const TOWNS: [&str; 8] = [
    "東京都多摩市桜ヶ丘",
    "東京都八王子市元本郷町",
    "東京都府中市宮西町",
    "神奈川県横浜市中区山下町",
    "埼玉県川口市本町",
    "千葉県船橋市本町",
    "東京都町田市原町田",
    "東京都調布市小島町",
];

fn person(i: usize) -> Identity {
    const SURNAMES: [(&str, &str); 6] = [
        ("佐藤", "サトウ"),
        ("鈴木", "スズキ"),
        ("高橋", "タカハシ"),
        ("田中", "タナカ"),
        ("伊藤", "イトウ"),
        ("渡辺", "ワタナベ"),
    ];
    const GIVEN: [(&str, &str, Sex); 6] = [
        ("太郎", "タロウ", Sex::Male),
        ("花子", "ハナコ", Sex::Female),
        ("一郎", "イチロウ", Sex::Male),
        ("陽子", "ヨウコ", Sex::Female),
        ("健", "ケン", Sex::Male),
        ("恵", "メグミ", Sex::Female),
    ];
    let (s, sk) = SURNAMES[i % 6];
    let (g, gk, sex) = GIVEN[(i / 6) % 6];
    Identity {
        name_kanji: format!("{s}　{g}"),
        name_kana: Some(format!("{sk}　{gk}")),
        birth_date: NaiveDate::from_ymd_opt(
            1940 + (i % 60) as i32,
            1 + (i % 12) as u32,
            1 + (i % 28) as u32,
        )
        .unwrap(),
        sex,
        address: Some(format!(
            "{}{}丁目{}番{}号",
            TOWNS[i / 4 % TOWNS.len()],
            1 + i / 40 % 9,
            1 + i / 4 % 30,
            1 + i % 4 / 2
        )),
    }
}

fn data(n: usize) -> (Vec<Identity>, Vec<(Identity, Identity)>) {
    let register: Vec<Identity> = (0..n).map(person).collect();
    let mut linked: Vec<(Identity, Identity)> =
        register.iter().map(|r| (r.clone(), r.clone())).collect();
    // A few wrong links by the 3-item lookup: another kanji for the reading.
    for (i, pair) in linked.iter_mut().enumerate().filter(|(i, _)| i % 97 == 0) {
        pair.1.name_kanji = pair.1.name_kanji.replace('郎', "朗");
        pair.1.address = Some(format!(
            "{}{}丁目1番1号",
            TOWNS[(i / 4 + 3) % TOWNS.len()],
            1 + i % 5
        ));
    }
    (register, linked)
}

#[test]
fn too_little_data_gives_the_defaults_and_says_why() {
    let ctx = AuditContext::new(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
    let (register, linked) = data(100);
    let model = fit(
        &ctx,
        &FitInput {
            register: &register,
            households: &[],
            linked: &linked,
        },
    );
    match &model.source {
        ModelSource::Defaults { reason } => {
            assert!(reason.contains("100 register records"), "{reason}")
        }
        ModelSource::Fitted => panic!("fitted on 100 records"),
    }
    assert_eq!(model.m, Model::defaults(String::new()).m);
}

#[test]
fn fits_converges_and_is_deterministic() {
    let ctx = AuditContext::new(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
    let (register, linked) = data(3_000);
    // Groups of three stand in for households.
    let households: Vec<Vec<Identity>> = register.chunks(3).map(<[Identity]>::to_vec).collect();
    let input = FitInput {
        register: &register,
        households: &households,
        linked: &linked,
    };
    let model = fit(&ctx, &input);
    assert_eq!(model.source, ModelSource::Fitted);
    assert!(model.stats.converged, "{:?}", model.stats);
    assert_eq!(model.stats.linked_pairs, 3_000);
    // The planted share of wrong links (about 1%) is what the prior comes to.
    assert!(
        model.prior > 0.004 && model.prior < 0.03,
        "prior {}",
        model.prior
    );
    // Random pairs rarely share a birth date; the right person nearly always does.
    let birth_same = Level::BirthSame.index();
    assert!(model.u[Channel::Random.index()][Item::BirthDate.index()][birth_same] < 0.01);
    assert!(model.m[Item::BirthDate.index()][birth_same] > 0.95);
    // Every distribution sums to one.
    for item in Item::ALL {
        let s: f64 = model.m[item.index()].iter().sum();
        assert!((s - 1.0).abs() < 1e-9, "{item:?} m sums to {s}");
        for k in Channel::ALL {
            let s: f64 = model.u[k.index()][item.index()].iter().sum();
            assert!((s - 1.0).abs() < 1e-6, "{k:?} {item:?} u sums to {s}");
        }
    }
    let again = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| fit(&ctx, &input));
    assert_eq!(model, again);
}
