//! Tests of the name and address keys and the variant table.

#![allow(clippy::unwrap_used)]
use std::str::FromStr;

use super::address::kanji_number;
use super::*;

fn t() -> VariantTable {
    VariantTable::default()
}

#[test]
fn default_table_parses_and_is_substantial() {
    let table = VariantTable::from_str(DEFAULT_KANJI_VARIANTS).unwrap();
    assert!(table.len() > 200, "{}", table.len());
    let default = VariantTable::default();
    assert_eq!(table.info().sha256, default.info().sha256);
    // The default names where it came from; a table parsed from text does not.
    assert_eq!(default.info().sources, vec![DEFAULT_SOURCE.to_string()]);
    let mut extended = default.clone();
    extended.extend_from_str("site.txt", "邉 𫟪").unwrap();
    assert_ne!(extended.info().sha256, default.info().sha256);
    assert_eq!(extended.info().sources.len(), 2);
}

#[test]
fn every_required_variant_folds() {
    let pairs = [
        ("髙", "高"),
        ("﨑", "崎"),
        ("邊", "辺"),
        ("邉", "辺"),
        ("邊", "邉"),
        ("齋", "斎"),
        ("齊", "斎"),
        ("齋", "齊"),
        ("澤", "沢"),
        ("濱", "浜"),
        ("嶋", "島"),
        ("𠮷", "吉"),
        ("櫻", "桜"),
        ("廣", "広"),
        ("國", "国"),
        ("眞", "真"),
        ("德", "徳"),
        ("惠", "恵"),
        ("龍", "竜"),
        ("藏", "蔵"),
        ("壽", "寿"),
        ("冨", "富"),
        ("槇", "槙"),
    ];
    for (a, b) in pairs {
        assert_eq!(name_key(a, &t()), name_key(b, &t()), "{a} / {b}");
    }
}

#[test]
fn compatibility_ideographs_fold_by_nfkc() {
    // U+FA10 塚 and U+FA11 﨑: the first has an NFKC mapping, the second needs the table.
    assert_eq!(name_key("\u{FA10}本", &t()), name_key("塚本", &t()));
    assert_eq!(name_key("山\u{FA11}", &t()), "山崎");
}

#[test]
fn confusable_surnames_stay_distinct() {
    assert_ne!(name_key("斉藤", &t()), name_key("斎藤", &t()));
    assert_ne!(name_key("埼", &t()), name_key("崎", &t()));
}

#[test]
fn table_file_format() {
    let mut table = VariantTable::from_str("# comment\n\n辺 邊\n邉邊 # merges\n").unwrap();
    assert_eq!(table.canonical('邉'), '辺');
    assert_eq!(table.canonical('邊'), '辺');
    assert_eq!(table.canonical('辺'), '辺');
    assert_eq!(table.len(), 2);
    let err = VariantTable::from_str("高 髙\n斎\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(VariantTable::from_str("● 高").is_err());
    table.extend_from_str("test", "﨑 崎").unwrap();
    assert_eq!(table.canonical('﨑'), table.canonical('崎'));
    let mut other = VariantTable::from_str("高髙").unwrap();
    other.extend(&table);
    assert_eq!(other.canonical('邊'), other.canonical('邉'));
    assert_eq!(other.canonical('髙'), '高');
    // A bad line leaves the table as it was.
    let before = other.clone();
    assert!(other.extend_from_str("test", "澤 沢\nx\n").is_err());
    assert_eq!(other, before);
}

#[test]
fn user_table_extends_the_default() {
    let mut table = VariantTable::default();
    assert_ne!(name_key("斉藤", &table), name_key("斎藤", &table));
    table.extend_from_str("test", "斎 斉").unwrap();
    assert_eq!(name_key("斉藤", &table), name_key("斎藤", &table));
    assert_eq!(name_key("齊藤", &table), name_key("斉藤", &table));
}

#[test]
fn width_folds() {
    assert_eq!(kana_match_key("ﾔﾏﾀﾞ ﾀﾛｳ"), kana_match_key("ヤマダ　タロウ"));
    assert_eq!(kana_match_key("ｶﾞｯｺｳ"), kana_match_key("ガッコウ"));
    assert_eq!(kana_match_key("ﾊﾟｰｸ"), kana_match_key("パーク"));
    assert_eq!(name_key("ＳＭＩＴＨ　ＪＯＨＮ", &t()), "SMITHJOHN");
    assert_eq!(name_key("Smith John", &t()), "SMITHJOHN");
}

#[test]
fn spacing_voicing_marks_compose() {
    assert_eq!(kana_match_key("カ゛ク"), kana_match_key("ガク"));
    assert_eq!(kana_match_key("ハ゜ン"), kana_match_key("パン"));
}

#[test]
fn hiragana_becomes_katakana() {
    assert_eq!(
        kana_match_key("やまだ　たろう"),
        kana_match_key("ヤマダ　タロウ")
    );
    assert_eq!(kana_match_key("きょうこ"), kana_match_key("キョウコ"));
    assert_eq!(name_key("山田　さくら", &t()), name_key("山田サクラ", &t()));
}

#[test]
fn small_kana_equal_large() {
    assert_eq!(kana_match_key("ショウイチ"), kana_match_key("シヨウイチ"));
    assert_eq!(kana_match_key("ハットリ"), kana_match_key("ハツトリ"));
    assert_eq!(kana_match_key("ファミリー"), kana_match_key("フアミリー"));
    assert_eq!(kana_match_key("キュウ"), kana_match_key("キユウ"));
    assert_eq!(kana_match_key("ヮヵヶ"), kana_match_key("ワカケ"));
    assert_eq!(kana_match_key("ァィゥェォ"), kana_match_key("アイウエオ"));
    assert_eq!(kana_match_key("ｼｮｳﾀ"), kana_match_key("シヨウタ"));
}

#[test]
fn long_vowel_and_dashes_unify() {
    for s in [
        "ジョーンズ",
        "ジョｰンズ",
        "ジョ-ンズ",
        "ジョ－ンズ",
        "ジョ―ンズ",
        "ジョ‐ンズ",
        "ジョ−ンズ",
    ] {
        assert_eq!(kana_match_key(s), kana_match_key("ジョーンズ"), "{s}");
    }
}

#[test]
fn spaces_and_dots_removed() {
    assert_eq!(kana_match_key("ヤマダ タロウ"), "ヤマダタロウ");
    assert_eq!(kana_match_key("ヤマダ　タロウ"), "ヤマダタロウ");
    assert_eq!(kana_match_key(" ヤマダ  タロウ "), "ヤマダタロウ");
    assert_eq!(
        kana_match_key("ジョン・スミス"),
        kana_match_key("ジョン スミス")
    );
    assert_eq!(kana_match_key("ｼﾞｮﾝ･ｽﾐｽ"), kana_match_key("ジョンスミス"));
    assert_eq!(name_key("佐藤 太郎", &t()), name_key("佐藤太郎", &t()));
}

#[test]
fn vu_row_folds() {
    assert_eq!(kana_match_key("ヴァイオリン"), kana_match_key("バイオリン"));
    assert_eq!(kana_match_key("ヴィクトル"), kana_match_key("ビクトル"));
    assert_eq!(kana_match_key("ヴェラ"), kana_match_key("ベラ"));
    assert_eq!(kana_match_key("ヴォルフ"), kana_match_key("ボルフ"));
    assert_eq!(kana_match_key("ヴ"), kana_match_key("ブ"));
    assert_eq!(kana_match_key("ゔぁ"), kana_match_key("バ"));
    // Stored with large kana, ヴァ is ヴア: still バ.
    assert_eq!(
        kana_match_key("ヴアイオリン"),
        kana_match_key("ヴァイオリン")
    );
    assert_eq!(kana_match_key("ｳﾞｨｸﾄﾙ"), kana_match_key("ビクトル"));
    assert_eq!(kana_match_key("ヷヸヹヺ"), kana_match_key("バビベボ"));
}

#[test]
fn yotsugana_and_old_kana_fold() {
    assert_eq!(kana_match_key("ツヅキ"), kana_match_key("ツズキ"));
    assert_eq!(kana_match_key("チヂミ"), kana_match_key("チジミ"));
    assert_eq!(kana_match_key("カヲル"), kana_match_key("カオル"));
    assert_eq!(kana_match_key("ヰヱ"), kana_match_key("イエ"));
}

#[test]
fn iteration_marks_expand() {
    assert_eq!(name_key("佐々木", &t()), name_key("佐佐木", &t()));
    assert_eq!(kana_match_key("サヽキ"), kana_match_key("ササキ"));
}

#[test]
fn variation_selectors_dropped() {
    assert_eq!(name_key("葛\u{E0100}西", &t()), name_key("葛西", &t()));
    assert_eq!(name_key("辻\u{FE00}", &t()), name_key("辻", &t()));
}

#[test]
fn wildcard_kept_in_key() {
    assert_eq!(name_key("●藤　太郎", &t()), "●藤太郎");
}

#[test]
fn stable_ranges_really_are_nfkc_stable() {
    // Every character the fast path trusts, alone and after a kana (composition).
    for cp in (0..=0x2A6DF).chain([0x3000]) {
        let Some(c) = char::from_u32(cp) else {
            continue;
        };
        if !nfkc_stable(c) || c == '\u{3000}' {
            continue;
        }
        let alone: String = c.to_string().nfkc().collect();
        assert_eq!(alone, c.to_string(), "U+{cp:04X}");
        let pair: String = ['カ', c].iter().collect::<String>().nfkc().collect();
        assert_eq!(pair, format!("カ{c}"), "U+{cp:04X} after カ");
    }
}

#[test]
fn kanji_numbers() {
    let n = |s: &str| kanji_number(&s.chars().collect::<Vec<_>>());
    assert_eq!(n("三"), 3);
    assert_eq!(n("十"), 10);
    assert_eq!(n("十一"), 11);
    assert_eq!(n("二十"), 20);
    assert_eq!(n("二十三"), 23);
    assert_eq!(n("百五"), 105);
    assert_eq!(n("千二百三十四"), 1234);
    assert_eq!(n("二〇五"), 205);
    assert_eq!(n("一二"), 12);
}

fn same_address(a: &str, b: &str) -> bool {
    address_key(a).matches(&address_key(b))
}

#[test]
fn address_notations_agree() {
    let base = "東京都目黒区自由が丘3丁目4番5号";
    for other in [
        "東京都目黒区自由が丘3-4-5",
        "東京都目黒区自由が丘三丁目4番5号",
        "東京都目黒区自由が丘三丁目四番五号",
        "東京都目黒区自由が丘3丁目4番地5",
        "東京都目黒区自由が丘3丁目4番地の5",
        "東京都目黒区自由が丘３－４－５",
        "東京都目黒区自由が丘3‐4‐5",
        "東京都目黒区自由が丘3ー4ー5",
        "東京都目黒区自由が丘3の4の5",
        "東京都 目黒区 自由が丘 3丁目 4番 5号",
        "東京都目黒区自由ヶ丘3丁目4番5号",
        "東京都目黒区自由ケ丘3-4-5",
        "目黒区自由が丘3丁目4番5号",
        "目黒区自由ヶ丘三丁目4番5号",
    ] {
        assert!(
            same_address(base, other),
            "{other}: {:?}",
            address_key(other)
        );
    }
    assert_eq!(address_key(base).rest, "目黒区自由ケ丘3-4-5");
}

#[test]
fn address_compound_kanji_numerals() {
    assert!(same_address(
        "大阪府大阪市北区梅田十二丁目3番1号",
        "大阪府大阪市北区梅田12-3-1"
    ));
    assert!(same_address("梅田二十三丁目3番1号", "梅田23-3-1"));
    assert!(same_address("梅田1-二十-3", "梅田1-20-3"));
}

#[test]
fn address_place_names_keep_their_numerals() {
    assert_eq!(
        address_key("東京都八王子市旭町1-2-3").rest,
        "八王子市旭町1-2-3"
    );
    assert_eq!(
        address_key("兵庫県神戸市中央区三宮町2丁目1番").rest,
        "神戸市中央区三宮町2-1"
    );
    assert!(same_address(
        "宮城県仙台市青葉区一番町3丁目4番5号",
        "宮城県仙台市青葉区一番町3-4-5"
    ));
    assert!(same_address(
        "東京都千代田区霞が関1-1-1",
        "東京都千代田区霞ヶ関1丁目1番1号"
    ));
    assert!(same_address(
        "東京都三鷹市井の頭1-2-3",
        "東京都三鷹市井ノ頭1-2-3"
    ));
}

#[test]
fn ke_variants_between_kanji() {
    for s in [
        "千葉県鎌ケ谷市新鎌ケ谷1-2-3",
        "千葉県鎌ヶ谷市新鎌ヶ谷1-2-3",
        "千葉県鎌が谷市新鎌ガ谷1-2-3",
    ] {
        assert!(same_address(s, "千葉県鎌ケ谷市新鎌ケ谷1丁目2番3号"), "{s}");
    }
    // A katakana word keeps its ガ.
    assert_eq!(address_key("ガーデン1-2").rest, "ガーデン1-2");
}

#[test]
fn different_places_differ() {
    assert!(!same_address(
        "東京都目黒区自由が丘3-4-5",
        "東京都目黒区自由が丘3-4-6"
    ));
    assert!(!same_address(
        "東京都目黒区自由が丘3-4-5",
        "東京都多摩市関戸3-4-5"
    ));
    // Both sides name a prefecture and they differ.
    assert!(!same_address("東京都府中市宮町1-1", "広島県府中市宮町1-1"));
    assert!(same_address("府中市宮町1-1", "広島県府中市宮町1-1"));
}

#[test]
fn address_keeps_katakana_long_vowel() {
    assert_eq!(address_key("センター3-1").rest, "センター3-1");
}
