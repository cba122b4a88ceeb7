//! The evidence behind an identity finding, drawn as a waterfall: from the prior, each item
//! pushes the odds of "another person's number" up (red) or down (green), ending at the
//! probability the queue sorts by. Reviewers see why a finding is critical, and that a
//! surname change or a typed date points the other way.

use maud::{html, Markup, PreEscaped};
use shikaku_domain::evidence::Evidence;

/// Pixels per bit, and the bits either side of zero the axis shows (steps beyond are clipped,
/// their numbers still printed).
const PX_PER_BIT: f64 = 12.0;
const RANGE_BITS: f64 = 24.0;

/// The probability as a percentage with one decimal.
pub fn percent(p: f64) -> String {
    format!("{:.1}%", p * 100.0)
}

/// The waterfall of `e`: an SVG of the running log odds, and the same steps as a table (the
/// table is what screen readers and the tests read).
pub fn waterfall(e: &Evidence) -> Markup {
    let steps = e.steps();
    let row_h = 22.0;
    let label_w = 300.0;
    let zero = label_w + RANGE_BITS * PX_PER_BIT;
    let width = label_w + 2.0 * RANGE_BITS * PX_PER_BIT + 10.0;
    let height = row_h * steps.len() as f64 + 24.0;
    let x = |bits: f64| zero + bits.clamp(-RANGE_BITS, RANGE_BITS) * PX_PER_BIT;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"他人の番号である確率の内訳\" viewBox=\"0 0 {width} {height}\" width=\"100%\" height=\"{height}\">\
         <line x1=\"{zero}\" y1=\"0\" x2=\"{zero}\" y2=\"{height}\" stroke=\"#5b6470\" stroke-dasharray=\"3 3\"/>"
    );
    let mut before = 0.0;
    for (i, s) in steps.iter().enumerate() {
        let y = 4.0 + row_h * i as f64;
        let (a, b) = (x(before), x(s.total));
        let (left, w) = (a.min(b), (a - b).abs().max(1.0));
        let color = if s.bits >= 0.0 { "#b42318" } else { "#0a7a3d" };
        let label = html! { (s.part.label()) }.into_string();
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{label}</text>\
             <rect x=\"{left:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"16\" fill=\"{color}\"><title>{label}: {:+.2}</title></rect>",
            y + 13.0,
            s.bits
        ));
        before = s.total;
    }
    svg.push_str(&format!(
        "<text x=\"{zero}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">0（五分五分）</text></svg>",
        height - 4.0
    ));
    html! {
        p {
            "他人の番号である確率: " strong #p_other_person { (percent(e.p_other_person)) }
            "（最も考えられる経路: " (e.channel.label()) "）"
        }
        (PreEscaped(svg))
        table #evidence {
            thead { tr { th { "根拠" } th { "重み（ビット）" } th { "累計" } } }
            tbody {
                @for s in &steps {
                    tr {
                        td { (s.part.label()) }
                        td.(if s.bits > 0.005 { "error" } else if s.bits < -0.005 { "ok" } else { "muted" }) { (format!("{:+.2}", s.bits)) }
                        td { (format!("{:+.2}", s.total)) }
                    }
                }
            }
        }
        p.muted { "正の重みは「他人の番号」、負の重みは「本人の記録の誤り・変更」を支持します。累計が0を超えると他人の可能性が50%を超え、重大となります（氏のみの変更を除く）。" }
    }
}
