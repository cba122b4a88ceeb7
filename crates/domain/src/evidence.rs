//! The vocabulary of the audit's evidence model (Fellegi–Sunter, docs/audit.md "Evidence"):
//! the comparison level of each item, the ways a wrong number reaches a person, the weight of
//! evidence behind one identity finding and the parameters one run fitted.
//!
//! These are the stored and displayed forms: the audit crate fits the model and scores
//! findings; the registry stores [`Evidence`] with each identity finding and
//! [`ModelParameters`] with each run; the console and API show them. Keeping them here lets
//! every reader use one typed definition without depending on the audit crate.

use serde::{Deserialize, Serialize};

/// One compared item of the evidence model. Kanji and kana names are one item (the two are far
/// from independent, which the model assumes of its items).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Item {
    /// 氏名 (漢字 and カナ together).
    Name,
    /// 生年月日.
    BirthDate,
    /// 性別.
    Sex,
    /// 住所.
    Address,
}

impl Item {
    /// Every item, in the model's order.
    pub const ALL: &'static [Item] = <Self as strum::VariantArray>::VARIANTS;

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The Japanese label the console shows.
    pub fn label(self) -> &'static str {
        match self {
            Item::Name => "氏名",
            Item::BirthDate => "生年月日",
            Item::Sex => "性別",
            Item::Address => "住所",
        }
    }

    /// The item's levels, from agreement to disagreement; a level's position here is its
    /// [`Level::index`].
    pub fn levels(self) -> &'static [Level] {
        use Level::*;
        match self {
            Item::Name => &[
                NameSame,
                NameKanaDiffers,
                NameKanjiSimilar,
                NameHomophone,
                NameSurnameChange,
                NameGivenNameChange,
                NameDifferent,
            ],
            Item::BirthDate => &[
                BirthSame,
                BirthOneDigit,
                BirthDayMonthSwapped,
                BirthWholeYears,
                BirthDifferent,
            ],
            Item::Sex => &[SexSame, SexDiffers],
            Item::Address => &[AddressSame, AddressSameMunicipality, AddressDifferent],
        }
    }

    /// The item's position in [`Item::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How one item of the registry compares with the register, at the granularity the evidence
/// model weighs (docs/audit.md lists the definitions). "Same" includes spelling variants.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Level {
    /// Kanji equivalent, kana equivalent or absent.
    NameSame,
    /// Kanji equivalent, kana disagrees (register furigana are being revised).
    NameKanaDiffers,
    /// Kanji similar (typo-level), kana equivalent or absent.
    NameKanjiSimilar,
    /// Kana equivalent, kanji different: another kanji for the same reading (the 2023 case).
    NameHomophone,
    /// Only the surname differs: marriage or adoption.
    NameSurnameChange,
    /// Only the given name differs: a sibling, a twin, a parent.
    NameGivenNameChange,
    /// Anything else.
    NameDifferent,
    /// Equal.
    BirthSame,
    /// One digit of YYYYMMDD differs.
    BirthOneDigit,
    /// Day and month swapped, same year.
    BirthDayMonthSwapped,
    /// Same month and day, another year.
    BirthWholeYears,
    /// Anything else.
    BirthDifferent,
    /// Equal.
    SexSame,
    /// Differs.
    SexDiffers,
    /// Equal after notation folding.
    AddressSame,
    /// Another address in the same municipality.
    AddressSameMunicipality,
    /// Another municipality.
    AddressDifferent,
}

impl Level {
    /// Every level, item by item.
    pub const ALL: &'static [Level] = <Self as strum::VariantArray>::VARIANTS;

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The item the level belongs to.
    pub fn item(self) -> Item {
        use Level::*;
        match self {
            NameSame | NameKanaDiffers | NameKanjiSimilar | NameHomophone | NameSurnameChange
            | NameGivenNameChange | NameDifferent => Item::Name,
            BirthSame | BirthOneDigit | BirthDayMonthSwapped | BirthWholeYears | BirthDifferent => {
                Item::BirthDate
            }
            SexSame | SexDiffers => Item::Sex,
            AddressSame | AddressSameMunicipality | AddressDifferent => Item::Address,
        }
    }

    /// The level's position among its item's [`Item::levels`].
    pub fn index(self) -> usize {
        let item = self.item();
        item.levels()
            .iter()
            .position(|l| *l == self)
            .unwrap_or_default()
    }

    /// The Japanese label the console shows.
    pub fn label(self) -> &'static str {
        use Level::*;
        match self {
            NameSame => "一致（表記ゆれ含む）",
            NameKanaDiffers => "カナのみ相違",
            NameKanjiSimilar => "漢字が類似（誤記程度）",
            NameHomophone => "同じ読みで別の漢字",
            NameSurnameChange => "氏のみ相違",
            NameGivenNameChange => "名のみ相違",
            NameDifferent => "相違",
            BirthSame => "一致",
            BirthOneDigit => "1桁違い",
            BirthDayMonthSwapped => "月日の入れ違い",
            BirthWholeYears => "年のみ相違",
            BirthDifferent => "相違",
            SexSame => "一致",
            SexDiffers => "相違",
            AddressSame => "一致（表記ゆれ含む）",
            AddressSameMunicipality => "同じ市区町村の別住所",
            AddressDifferent => "別の市区町村",
        }
    }
}

/// How a number that is not the person's own came to be linked to them: the classes of the
/// "another person" side of the model. Each fixes the items its lookup matched on, so a wrong
/// link found by a 3-item lookup is not mistaken for the right person because those 3 items
/// agree.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Channel {
    /// A mistyped or misread number that lands on an unrelated resident: every item as
    /// between two random residents.
    Random,
    /// The 2023 error: a lookup by カナ氏名, 生年月日 and 性別, which finds whoever shares them.
    ThreeItemLookup,
    /// A lookup by name: the name agrees, the rest is another person's.
    NameLookup,
    /// Another member of the household (a dependant given the insured's number): same
    /// address, usually the same surname.
    Household,
    /// A twin: the household case with the same birth date.
    Twin,
}

impl Channel {
    /// Every channel, in the model's order.
    pub const ALL: &'static [Channel] = <Self as strum::VariantArray>::VARIANTS;

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The channel's position in [`Channel::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The Japanese label the console shows.
    pub fn label(self) -> &'static str {
        match self {
            Channel::Random => "無関係の番号（誤入力など）",
            Channel::ThreeItemLookup => "3情報照会の取り違え（カナ・生年月日・性別）",
            Channel::NameLookup => "氏名照会の取り違え（同姓同名）",
            Channel::Household => "世帯員の番号",
            Channel::Twin => "双子の番号",
        }
    }
}

/// One item's part of the evidence: its level (`None`: not compared, absent on a side) and
/// its weight in bits, positive toward another person.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemWeight {
    /// Which item.
    pub item: Item,
    /// Its level; `None` when the item was not compared.
    pub level: Option<Level>,
    /// log2(P(level | another person, the likeliest channel) / P(level | the right person)).
    pub bits: f64,
}

/// The weight of evidence behind one identity finding, as a waterfall: the prior, each item,
/// the name's frequency and the other channels add up (in bits, log2 odds) to
/// `log2(p / (1 - p))` for `p_other_person`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evidence {
    /// The probability that the number belongs to another person, 0..1.
    pub p_other_person: f64,
    /// The likeliest way the number would have reached the person if it is not theirs; the
    /// item weights are taken under it.
    pub channel: Channel,
    /// log2 of the prior odds of that channel: P(another person, this channel) / P(the right
    /// person).
    pub prior_bits: f64,
    /// One entry per item, in [`Item::ALL`] order.
    pub items: Vec<ItemWeight>,
    /// The term-frequency adjustment: a common name (or reading) is more often another
    /// person's.
    pub frequency_bits: f64,
    /// What the other channels add (never negative).
    pub other_channels_bits: f64,
}

impl Evidence {
    /// The sum of the waterfall: log2 of the posterior odds of another person.
    pub fn total_bits(&self) -> f64 {
        self.prior_bits
            + self.items.iter().map(|i| i.bits).sum::<f64>()
            + self.frequency_bits
            + self.other_channels_bits
    }

    /// `p_other_person` with three decimals, as findings.csv writes it.
    pub fn p_text(&self) -> String {
        format!("{:.3}", self.p_other_person)
    }

    /// The waterfall's steps in order, each with its bits and the running total after it:
    /// what the console draws and `shikaku findings show` prints.
    pub fn steps(&self) -> Vec<Step> {
        let mut total = 0.0;
        let mut out = Vec::with_capacity(self.items.len() + 3);
        let mut push = |part: Part, bits: f64| {
            total += bits;
            out.push(Step { part, bits, total });
        };
        push(Part::Prior(self.channel), self.prior_bits);
        for i in &self.items {
            push(Part::Item(i.item, i.level), i.bits);
        }
        push(Part::Frequency, self.frequency_bits);
        push(Part::OtherChannels, self.other_channels_bits);
        out
    }
}

/// What one waterfall step stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The prior odds of another person reached by this channel.
    Prior(Channel),
    /// One item at its level (`None`: not compared).
    Item(Item, Option<Level>),
    /// The term-frequency adjustment.
    Frequency,
    /// The other channels together.
    OtherChannels,
}

impl Part {
    /// The Japanese label the console shows.
    pub fn label(self) -> String {
        match self {
            Part::Prior(c) => format!("事前確率（{}）", c.label()),
            Part::Item(i, Some(l)) => format!("{}: {}", i.label(), l.label()),
            Part::Item(i, None) => format!("{}: 比較不能（記録なし）", i.label()),
            Part::Frequency => "氏名・読みの頻度".to_owned(),
            Part::OtherChannels => "他の経路".to_owned(),
        }
    }

    /// The English label the CLI prints.
    pub fn name(self) -> String {
        match self {
            Part::Prior(c) => format!("prior ({})", c.as_str()),
            Part::Item(i, Some(l)) => format!("{}: {}", i.as_str(), l.as_str()),
            Part::Item(i, None) => format!("{}: not compared", i.as_str()),
            Part::Frequency => "name frequency".to_owned(),
            Part::OtherChannels => "other channels".to_owned(),
        }
    }
}

/// One step of the waterfall.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// What it stands for.
    pub part: Part,
    /// Its weight in bits (positive: toward another person).
    pub bits: f64,
    /// The log2 odds of another person after it.
    pub total: f64,
}

/// Whether a run's parameters were fitted or are the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ModelSource {
    /// Fitted from this run's data.
    Fitted,
    /// The documented defaults, and why the data could not be used.
    Defaults {
        /// Why not fitted (too few register records or linked pairs).
        reason: String,
    },
}

/// One level's probabilities: `m` under the right person, `u` under each channel of another
/// person (in [`Channel::ALL`] order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LevelParameters {
    /// The level.
    pub level: Level,
    /// P(level | the right person).
    pub m: f64,
    /// P(level | another person) per channel, [`Channel::ALL`] order.
    pub u: Vec<f64>,
}

/// The parameters an audit run scored with, stored with the run (`audit_runs.model`) and
/// printed by `shikaku audit run --explain-model`. Holds no name or other personal value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelParameters {
    /// Fitted or defaults.
    #[serde(flatten)]
    pub source: ModelSource,
    /// P(another person) before looking at the items: the share of linkages the fit thinks
    /// wrong.
    pub prior: f64,
    /// Within "another person", each channel's share, [`Channel::ALL`] order.
    pub channel_weights: Vec<f64>,
    /// Every level's m and u.
    pub levels: Vec<LevelParameters>,
    /// Register records sampled for the u-probabilities and name frequencies.
    pub register_sample: u64,
    /// Random register pairs compared for the random channel's u.
    pub random_pairs: u64,
    /// Linked pairs (registry against register) the EM fitted m on.
    pub linked_pairs: u64,
    /// EM iterations run.
    pub em_iterations: u32,
    /// Whether EM converged (largest parameter change below its tolerance).
    pub converged: bool,
    /// Distinct surnames and given names in the frequency table.
    pub distinct_names: u64,
}
