//! The PDFs read back with pdftotext (poppler-utils, installed by scripts/test): the name,
//! numbers, dates and insurer name are really there, in Japanese, with the font embedded.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use chrono::NaiveDate;
use serde_json::json;
use shikaku_domain::certificate::PrintedItems;
use shikaku_print::{certificates_pdf, notice_pdf, Layout, Notice, DEFAULT_FONT};

fn font() -> Vec<u8> {
    let path = std::env::var("SHIKAKU_FONT").unwrap_or_else(|_| DEFAULT_FONT.to_string());
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("the Japanese font {path} is needed (Debian: fonts-ipaexfont-gothic; scripts/test installs it): {e}")
    })
}

fn pdftotext(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .args(["-layout", path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils) is needed; scripts/test installs it");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Printed items as stored in `certificates.printed` (the JSON is the stored form, so this
/// also checks that stored certificates still read back).
fn printed(name: &str, number: &str) -> PrintedItems {
    serde_json::from_value(json!({
        "certificate_number": "0000000042",
        "name": name,
        "kana": "シケン　ハナコ",
        "birth_date": "1956-02-29",
        "sex": "裏面参照",
        "sex_on_back": "女",
        "insurer_number": "06130199",
        "insurer_name": "テスト健康保険組合",
        "symbol": "1001",
        "number": number,
        "branch": "01",
        "relationship": "家族",
        "issued_on": "2026-12-01",
        "valid_until": "2031-11-30",
        "acquired_on": "2020-04-01",
        "copay_percent": 20,
        "copay_effective_from": "2026-03-01",
        "postal_code": "1000001",
        "address": "東京都千代田区千代田1番1号",
        "remarks": null,
    }))
    .unwrap()
}

/// Whitespace removed and NFKC applied. printpdf 0.7 writes the font's ToUnicode map from its
/// cmap, and where IPAex Gothic maps a Kangxi radical and the unified ideograph to one glyph
/// (⼦/子, ⽉/月) the radical wins; NFKC folds those back, as search in most viewers does.
fn squash(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfkc().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn card_shows_every_printed_item() {
    let pdf = certificates_pdf(&font(), &[printed("試験　花子", "77")], Layout::Card).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    let t = squash(&pdftotext(&pdf));
    for needle in [
        "資格確認書",
        "試験花子",
        "1956年02月29日",
        "裏面参照",
        "記号1001",
        "番号77",
        "(枝番)01",
        "06130199",
        "テスト健康保険組合",
        "交付年月日2026年12月01日",
        "有効期限2031年11月30日",
        "資格取得年月日2020年04月01日",
        "2割",
        "発効期日2026年03月01日",
        "東京都千代田区千代田1番1号",
        "0000000042",
    ] {
        assert!(t.contains(needle), "{needle} missing from: {t}");
    }
}

#[test]
fn limit_category_and_specified_disease_print_only_where_the_insurer_prints_them() {
    let mut p = printed("試験　花子", "78");
    p.limit_category = Some("A03".into());
    p.specified_diseases = vec!["人工透析を要する慢性腎不全 10,000円".into()];
    let hidden = squash(&pdftotext(
        &certificates_pdf(&font(), std::slice::from_ref(&p), Layout::Card).unwrap(),
    ));
    assert!(!hidden.contains("A03"), "{hidden}");
    assert!(!hidden.contains("特定疾病"), "{hidden}");
    p.benefits_printed = true;
    let shown = squash(&pdftotext(
        &certificates_pdf(&font(), &[p], Layout::Card).unwrap(),
    ));
    for needle in [
        "限度額適用区分A03",
        "特定疾病人工透析を要する慢性腎不全10,000円",
    ] {
        assert!(shown.contains(needle), "{needle} missing from: {shown}");
    }
}

#[test]
fn a4_mailing_holds_one_certificate_per_page_with_cut_marks() {
    let pdf = certificates_pdf(
        &font(),
        &[printed("試験　花子", "77"), printed("試験　一郎", "78")],
        Layout::A4,
    )
    .unwrap();
    let text = pdftotext(&pdf);
    // pdftotext separates pages with form feeds.
    let pages: Vec<String> = text
        .split('\u{c}')
        .map(squash)
        .filter(|p| !p.is_empty())
        .collect();
    assert_eq!(pages.len(), 2, "{text}");
    assert!(pages[0].contains("試験花子") && pages[0].contains("番号77"));
    assert!(pages[1].contains("試験一郎") && pages[1].contains("番号78"));
    assert!(pages[0].contains("切り取り"));
    assert!(pages[0].contains("(裏面)性別女"));
    assert!(matches!(
        certificates_pdf(&font(), &[], Layout::A4),
        Err(shikaku_print::PrintError::Empty)
    ));
}

#[test]
fn notice_shows_the_last_four_digits_and_no_expiry() {
    let n = Notice {
        name: "試験　花子".into(),
        birth_date: NaiveDate::from_ymd_opt(1980, 5, 5).unwrap(),
        insurer_number: "06130199".into(),
        insurer_name: "テスト健康保険組合".into(),
        symbol: "1001".into(),
        number: "77".into(),
        branch: "00".into(),
        acquired_on: NaiveDate::from_ymd_opt(2020, 4, 1).unwrap(),
        copay_percent: 30,
        my_number_last4: "9018".into(),
        issued_on: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
    };
    let t = squash(&pdftotext(&notice_pdf(&font(), &n).unwrap()));
    for needle in [
        "資格情報のお知らせ",
        "試験花子",
        "06130199",
        "テスト健康保険組合",
        "1001・77(00)",
        "2020年04月01日",
        "3割",
        "9018",
    ] {
        assert!(t.contains(needle), "{needle} missing from: {t}");
    }
    assert!(!t.contains("有効期限"));
}
