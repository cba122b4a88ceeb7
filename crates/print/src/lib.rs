//! Printing: the 資格確認書 as a card (85.6 × 54 mm, ID-1) or on an A4 sheet with cut marks,
//! and the 資格情報のお知らせ (an A4 notice for マイナ保険証 holders). Every page is drawn from
//! the certificate's frozen printed items, in Japanese, with the font embedded (subset), so
//! what was printed can be printed again identically.
//!
//! The font is passed in as bytes (the binary reads `SHIKAKU_FONT`, by default IPAex Gothic
//! from Debian's fonts-ipaexfont-gothic): this crate does no file I/O.

use std::io::Cursor;

use chrono::NaiveDate;
use printpdf::{
    IndirectFontRef, Line, Mm, PdfDocument, PdfDocumentReference, PdfLayerReference, Point,
};
use shikaku_domain::certificate::PrintedItems;

/// Where the scripts install the default font (Debian's fonts-ipaexfont-gothic).
pub const DEFAULT_FONT: &str = "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf";

/// What can go wrong producing a PDF.
#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    /// The font could not be loaded or embedded.
    #[error("cannot use the font: {0}")]
    Font(String),
    /// The PDF could not be written.
    #[error("cannot write the PDF: {0}")]
    Pdf(String),
    /// Nothing to print.
    #[error("nothing to print")]
    Empty,
}

/// How a certificate is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString, strum::Display)]
#[strum(serialize_all = "lowercase")]
pub enum Layout {
    /// One card-size page per certificate.
    Card,
    /// One A4 page per certificate, the card drawn at the top with cut marks at its corners
    /// and a mailing note below (for the ex-officio mailing).
    A4,
}

impl Layout {
    /// Parses `card` or `a4`.
    pub fn parse(s: &str) -> Option<Layout> {
        s.parse().ok()
    }
}

const CARD_W: f32 = 85.6;
const CARD_H: f32 = 54.0;
const A4_W: f32 = 210.0;
const A4_H: f32 = 297.0;

/// `2026-12-01` as `2026年12月01日`, the way the card prints dates.
fn date(d: NaiveDate) -> String {
    d.format("%Y年%m月%d日").to_string()
}

fn line(layer: &PdfLayerReference, points: &[(f32, f32)]) {
    layer.add_line(Line {
        points: points
            .iter()
            .map(|&(x, y)| (Point::new(Mm(x), Mm(y)), false))
            .collect(),
        is_closed: false,
    });
}

/// The certificate's face, with its lower-left corner at (x, y).
fn draw_card(layer: &PdfLayerReference, font: &IndirectFontRef, p: &PrintedItems, x: f32, y: f32) {
    layer.set_outline_thickness(0.3);
    line(
        layer,
        &[
            (x, y),
            (x + CARD_W, y),
            (x + CARD_W, y + CARD_H),
            (x, y + CARD_H),
            (x, y),
        ],
    );
    let put = |s: &str, size: f32, dx: f32, dy: f32| {
        layer.use_text(s, size, Mm(x + dx), Mm(y + CARD_H - dy), font);
    };
    put("資格確認書", 9.0, 4.0, 7.0);
    put(&format!("No. {}", p.certificate_number), 5.5, 56.0, 6.5);
    let mut key = format!("記号 {}  番号 {}", p.symbol, p.number);
    if !p.branch.is_empty() {
        key.push_str(&format!("  (枝番) {}", p.branch));
    }
    put(&key, 6.0, 4.0, 13.0);
    put(&format!("氏名  {}", p.name), 7.5, 4.0, 19.5);
    put(
        &format!(
            "生年月日 {}   性別 {}{}",
            date(p.birth_date),
            p.sex,
            p.relationship
                .as_ref()
                .map_or_else(String::new, |r| format!("   {r}"))
        ),
        5.5,
        4.0,
        25.0,
    );
    put(
        &format!("資格取得年月日 {}", date(p.acquired_on)),
        5.5,
        4.0,
        29.5,
    );
    let mut copay = format!("一部負担金の割合 {}割", p.copay_percent / 10);
    if let Some(from) = p.copay_effective_from {
        copay.push_str(&format!("（発効期日 {}）", date(from)));
    }
    // 限度額適用区分 and 特定疾病 are optional printed items: only where the insurer prints them.
    if p.benefits_printed {
        if let Some(limit) = &p.limit_category {
            copay.push_str(&format!("　限度額適用区分 {limit}"));
        }
    }
    put(&copay, 5.5, 4.0, 34.0);
    put(
        &format!(
            "交付年月日 {}   有効期限 {}",
            date(p.issued_on),
            date(p.valid_until)
        ),
        5.5,
        4.0,
        38.5,
    );
    let address = p.address.as_deref().filter(|a| !a.is_empty());
    put(
        &format!(
            "住所 {}",
            address.unwrap_or("（　　　　　　　　　　　　　　　）")
        ),
        5.0,
        4.0,
        43.0,
    );
    put(
        &format!(
            "保険者番号 {}   保険者名称 {}",
            p.insurer_number, p.insurer_name
        ),
        5.0,
        4.0,
        47.5,
    );
    let mut remarks: Vec<String> = Vec::new();
    if p.benefits_printed && !p.specified_diseases.is_empty() {
        remarks.push(format!("特定疾病 {}", p.specified_diseases.join("・")));
    }
    remarks.extend(p.remarks.iter().filter(|r| !r.is_empty()).cloned());
    if !remarks.is_empty() {
        put(&format!("備考 {}", remarks.join(" / ")), 5.0, 4.0, 51.5);
    }
    if let Some(back) = &p.sex_on_back {
        // 裏面参照: the registered sex goes on the back, which this sheet prints below the face.
        layer.use_text(
            format!("（裏面）性別 {back}"),
            5.0,
            Mm(x + 4.0),
            Mm(y - 5.0),
            font,
        );
    }
}

/// Short marks outside each corner of the card, where the sheet is cut.
fn cut_marks(layer: &PdfLayerReference, x: f32, y: f32) {
    layer.set_outline_thickness(0.2);
    let gap = 2.0;
    let len = 6.0;
    for (cx, cy, sx, sy) in [
        (x, y, -1.0, -1.0),
        (x + CARD_W, y, 1.0, -1.0),
        (x, y + CARD_H, -1.0, 1.0),
        (x + CARD_W, y + CARD_H, 1.0, 1.0),
    ] {
        line(layer, &[(cx + sx * gap, cy), (cx + sx * (gap + len), cy)]);
        line(layer, &[(cx, cy + sy * gap), (cx, cy + sy * (gap + len))]);
    }
}

fn font_of(doc: &PdfDocumentReference, font: &[u8]) -> Result<IndirectFontRef, PrintError> {
    doc.add_external_font(Cursor::new(font.to_vec()))
        .map_err(|e| PrintError::Font(e.to_string()))
}

fn save(doc: PdfDocumentReference) -> Result<Vec<u8>, PrintError> {
    doc.save_to_bytes()
        .map_err(|e| PrintError::Pdf(e.to_string()))
}

/// One PDF holding every certificate in `printed` (each the frozen printed items), one per
/// page in the given layout.
pub fn certificates_pdf(
    font: &[u8],
    printed: &[PrintedItems],
    layout: Layout,
) -> Result<Vec<u8>, PrintError> {
    let (w, h) = match layout {
        Layout::Card => (CARD_W, CARD_H),
        Layout::A4 => (A4_W, A4_H),
    };
    let (first, rest) = printed.split_first().ok_or(PrintError::Empty)?;
    let (doc, page, layer) = PdfDocument::new("資格確認書", Mm(w), Mm(h), "face");
    let font = font_of(&doc, font)?;
    let mut pages = vec![(page, layer, first)];
    for p in rest {
        let (page, layer) = doc.add_page(Mm(w), Mm(h), "face");
        pages.push((page, layer, p));
    }
    for (page, layer, p) in pages {
        let layer = doc.get_page(page).get_layer(layer);
        match layout {
            Layout::Card => draw_card(&layer, &font, p, 0.0, 0.0),
            Layout::A4 => {
                let (x, y) = ((A4_W - CARD_W) / 2.0, A4_H - 40.0 - CARD_H);
                layer.use_text(
                    "資格確認書の送付について",
                    12.0,
                    Mm(20.0),
                    Mm(A4_H - 20.0),
                    &font,
                );
                draw_card(&layer, &font, p, x, y);
                cut_marks(&layer, x, y);
                let lines = [
                    "マイナ保険証をお持ちでない方に、資格確認書をお送りします。",
                    "点線の角の印に沿って切り取り、医療機関・薬局の窓口で提示してください。",
                    "資格を喪失したときは使用できません。速やかに保険者へ返却してください。",
                ];
                for (i, l) in lines.iter().enumerate() {
                    layer.use_text(*l, 9.0, Mm(20.0), Mm(y - 20.0 - 7.0 * i as f32), &font);
                }
                let to = format!("{}　様　（{}）", p.name, p.address.as_deref().unwrap_or(""));
                layer.use_text(to, 10.0, Mm(20.0), Mm(30.0), &font);
            }
        }
    }
    save(doc)
}

/// What the 資格情報のお知らせ shows: the card holder's keys and the last 4 digits of the
/// linked number. It carries no expiry and is not valid on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// 氏名.
    pub name: String,
    /// 生年月日.
    pub birth_date: NaiveDate,
    /// 保険者番号.
    pub insurer_number: String,
    /// 保険者名称.
    pub insurer_name: String,
    /// 記号.
    pub symbol: String,
    /// 番号.
    pub number: String,
    /// 枝番.
    pub branch: String,
    /// 資格取得年月日.
    pub acquired_on: NaiveDate,
    /// 一部負担金割合 in percent.
    pub copay_percent: u8,
    /// Last 4 digits of the linked My Number.
    pub my_number_last4: String,
    /// Date of the notice.
    pub issued_on: NaiveDate,
}

/// The A4 資格情報のお知らせ.
pub fn notice_pdf(font: &[u8], n: &Notice) -> Result<Vec<u8>, PrintError> {
    let (doc, page, layer) = PdfDocument::new("資格情報のお知らせ", Mm(A4_W), Mm(A4_H), "notice");
    let font = font_of(&doc, font)?;
    let layer = doc.get_page(page).get_layer(layer);
    let rows = [
        ("氏名", n.name.clone()),
        ("生年月日", date(n.birth_date)),
        ("保険者番号", n.insurer_number.clone()),
        ("保険者名称", n.insurer_name.clone()),
        (
            "記号・番号（枝番）",
            format!("{}・{}（{}）", n.symbol, n.number, n.branch),
        ),
        ("資格取得年月日", date(n.acquired_on)),
        ("一部負担金の割合", format!("{}割", n.copay_percent / 10)),
        (
            "個人番号（下4桁）",
            format!("＊＊＊＊＊＊＊＊{}", n.my_number_last4),
        ),
    ];
    layer.use_text("資格情報のお知らせ", 16.0, Mm(20.0), Mm(A4_H - 25.0), &font);
    layer.use_text(
        format!("{}　発行", date(n.issued_on)),
        9.0,
        Mm(150.0),
        Mm(A4_H - 25.0),
        &font,
    );
    for (i, (label, value)) in rows.iter().enumerate() {
        let y = A4_H - 45.0 - 10.0 * i as f32;
        layer.use_text(*label, 11.0, Mm(25.0), Mm(y), &font);
        layer.use_text(value.as_str(), 11.0, Mm(80.0), Mm(y), &font);
    }
    let notes = [
        "このお知らせは、マイナ保険証をお持ちの方に、加入している医療保険の資格情報をお知らせするものです。",
        "このお知らせのみでは医療機関・薬局を受診できません。マイナ保険証とあわせてご利用ください。",
    ];
    for (i, l) in notes.iter().enumerate() {
        layer.use_text(*l, 8.5, Mm(20.0), Mm(A4_H - 140.0 - 7.0 * i as f32), &font);
    }
    save(doc)
}
