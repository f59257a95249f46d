//! Charts drawn on the server as inline SVG (no script, nothing fetched): horizontal bars with
//! a label and a count each.

use std::fmt::Write;

use crate::html::{esc, truncate};

const WIDTH: u32 = 640;
const LABEL_W: u32 = 300;
const ROW_H: u32 = 20;

/// A bar chart of `(label, count)` rows, in the order given.
pub fn bars(title: &str, rows: &[(String, u64)]) -> String {
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let height = ROW_H * rows.len().max(1) as u32 + 8;
    let mut svg = format!(
        "<figure class=\"chart\"><figcaption>{}</figcaption>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"{WIDTH}\" height=\"{height}\">",
        esc(title)
    );
    if rows.is_empty() {
        let _ = write!(svg, "<text x=\"4\" y=\"16\" class=\"none\">no data</text>");
    }
    let bar_space = WIDTH - LABEL_W - 60;
    for (i, (label, count)) in rows.iter().enumerate() {
        let y = i as u32 * ROW_H + 4;
        let w = ((*count as f64 / max as f64) * f64::from(bar_space)).round() as u32;
        let _ = write!(
            svg,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\"><title>{full}</title>{short}</text>\
             <rect x=\"{LABEL_W}\" y=\"{y}\" width=\"{w}\" height=\"{bh}\" class=\"bar\"></rect>\
             <text x=\"{cx}\" y=\"{ty}\" class=\"count\">{count}</text>",
            lx = LABEL_W - 6,
            ty = y + 13,
            full = esc(label),
            short = esc(&truncate(label, 44)),
            bh = ROW_H - 4,
            cx = LABEL_W + w + 4,
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_bars_scale_to_the_largest() {
        let svg = bars("t<", &[("<script>".into(), 10), ("b".into(), 5)]);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("width=\"280\""), "{svg}");
        assert!(svg.contains("width=\"140\""), "{svg}");
    }
}
