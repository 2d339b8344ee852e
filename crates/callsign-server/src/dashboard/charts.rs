//! Charts drawn on the server as inline SVG (no JavaScript): stacked bars over time and horizontal bars for a
//! breakdown. Each chart is an `img` with a title and a description, and its figures are also a table for screen
//! readers and for copying. Colours come from the stylesheet's tokens, so dark mode needs nothing more.
use maud::{Markup, PreEscaped, html};

/// One bar of a time chart: its label (an hour, a day), what was sent and what failed.
pub struct Bar {
    pub label: String,
    /// A shorter label under the axis, or "" (only some bars are labelled).
    pub tick: String,
    pub sent: i64,
    pub failed: i64,
}

const W: f64 = 720.0;
const H: f64 = 150.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 22.0;

/// A round top for the axis at or above `max` (1, 2 or 5 times a power of ten).
fn nice(max: i64) -> i64 {
    let max = max.max(1);
    let mut p = 1i64;
    loop {
        for m in [1, 2, 5] {
            if m * p >= max {
                return m * p;
            }
        }
        p = p.saturating_mul(10);
    }
}

/// Stacked bars (sent, then failed above it) over time.
pub fn time_bars(id: &str, title: &str, description: &str, bars: &[Bar]) -> Markup {
    let top = nice(bars.iter().map(|b| b.sent + b.failed).max().unwrap_or(0));
    let n = bars.len().max(1) as f64;
    let step = (W - LEFT) / n;
    let scale = (H - BOTTOM - 8.0) / top as f64;
    let base = H - BOTTOM;
    let mut svg = String::new();
    // Grid: the top and the middle of the axis.
    for (v, y) in [(top, base - top as f64 * scale), (top / 2, base - (top / 2) as f64 * scale), (0, base)] {
        svg.push_str(&format!(
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{W}" y2="{y:.1}"/><text class="axis" x="{x:.1}" y="{ty:.1}" text-anchor="end">{v}</text>"#,
            x = LEFT - 6.0,
            ty = y + 4.0
        ));
    }
    for (i, b) in bars.iter().enumerate() {
        let x = LEFT + i as f64 * step + step * 0.15;
        let w = (step * 0.7).max(1.0);
        let hs = b.sent as f64 * scale;
        let hf = b.failed as f64 * scale;
        svg.push_str(&format!(
            r#"<g><title>{label}: {sent} sent, {failed} failed</title><rect class="sent" x="{x:.1}" y="{ys:.1}" width="{w:.1}" height="{hs:.1}"/><rect class="failed" x="{x:.1}" y="{yf:.1}" width="{w:.1}" height="{hf:.1}"/></g>"#,
            label = escape(&b.label),
            sent = b.sent,
            failed = b.failed,
            ys = base - hs,
            yf = base - hs - hf,
        ));
        if !b.tick.is_empty() {
            svg.push_str(&format!(
                r#"<text class="axis" x="{cx:.1}" y="{ty:.1}" text-anchor="middle">{t}</text>"#,
                cx = x + w / 2.0,
                ty = H - 6.0,
                t = escape(&b.tick)
            ));
        }
    }
    let (sent, failed): (i64, i64) = bars.iter().fold((0, 0), |(s, f), b| (s + b.sent, f + b.failed));
    html! {
        figure class="chart" id=(id) {
            svg viewBox=(format!("0 0 {W} {H}")) role="img" aria-labelledby=(format!("{id}-t {id}-d")) preserveAspectRatio="none" {
                title id=(format!("{id}-t")) { (title) }
                desc id=(format!("{id}-d")) { (description) " " (sent) " sent and " (failed) " failed in all." }
                (PreEscaped(svg))
            }
            figcaption {
                strong class="chart-title" { (title) } " "
                span class="key sent" aria-hidden="true" {} " Sent (" (sent) ") "
                span class="key failed" aria-hidden="true" {} " Failed (" (failed) ")"
            }
            details class="chart-data" {
                summary { "The figures of " (title) }
                table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Sent" } th scope="col" { "Failed" } } }
                    tbody {
                        @for b in bars.iter().filter(|b| b.sent + b.failed > 0) {
                            tr { th scope="row" { (b.label) } td { (b.sent) } td { (b.failed) } }
                        }
                    }
                }
            }
        }
    }
}

/// One row of a breakdown: a name, a figure, and the text shown after the bar.
pub struct Row {
    pub name: String,
    pub value: f64,
    pub text: String,
}

/// Horizontal bars, longest first as given, scaled to `max` (the largest value when `None`).
pub fn breakdown(id: &str, title: &str, rows: &[Row], max: Option<f64>) -> Markup {
    let max = max.unwrap_or_else(|| rows.iter().map(|r| r.value).fold(0.0, f64::max)).max(f64::MIN_POSITIVE);
    html! {
        figure class="breakdown" id=(id) {
            figcaption { (title) }
            @if rows.is_empty() {
                p class="muted" { "Nothing in this period." }
            } @else {
                table {
                    thead class="visually-hidden" { tr { th scope="col" { "Name" } th scope="col" { "Share" } th scope="col" { "Figure" } } }
                    tbody {
                        @for r in rows {
                            tr {
                                th scope="row" { (r.name) }
                                td class="bar-cell" aria-hidden="true" {
                                    // An SVG bar: its width is an attribute, which the pages' CSP allows (no inline style).
                                    svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none" {
                                        rect width=(format!("{:.1}", (r.value / max * 100.0).clamp(0.0, 100.0))) height="8" {}
                                    }
                                }
                                td { (r.text) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_top_is_round() {
        assert_eq!(nice(0), 1);
        assert_eq!(nice(3), 5);
        assert_eq!(nice(7), 10);
        assert_eq!(nice(11), 20);
        assert_eq!(nice(250), 500);
    }

    #[test]
    fn a_chart_is_an_image_with_its_figures() {
        let bars = vec![
            Bar { label: "10:00".into(), tick: "10:00".into(), sent: 3, failed: 1 },
            Bar { label: "11:00 <b>".into(), tick: String::new(), sent: 0, failed: 0 },
        ];
        let html = time_bars("c", "SMS", "Per hour.", &bars).into_string();
        assert!(html.contains(r#"role="img""#), "{html}");
        assert!(html.contains("4 sent") || html.contains("3 sent, 1 failed"), "{html}");
        assert!(html.contains("11:00 &lt;b&gt;"), "labels are escaped: {html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("<td>3</td>"), "the figures are a table too: {html}");
    }
}
