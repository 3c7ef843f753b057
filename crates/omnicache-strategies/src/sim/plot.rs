//! Hit ratio against cache size, as an SVG chart: one panel per trace, one line per policy,
//! OPT drawn as the dashed ceiling.

use super::Row;
use std::fmt::Write as _;

const W: f64 = 640.0;
const H: f64 = 320.0;
const PAD_L: f64 = 60.0;
const PAD_R: f64 = 150.0;
const PAD_T: f64 = 30.0;
const PAD_B: f64 = 45.0;
const COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Draws the grid's rows. Sizes are on a log scale when they span more than a factor of 10.
pub fn plot_svg(rows: &[Row]) -> String {
    let mut traces: Vec<&str> = Vec::new();
    for r in rows {
        if !traces.contains(&r.trace.as_str()) {
            traces.push(&r.trace);
        }
    }
    let total_h = H * traces.len().max(1) as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{total_h}" viewBox="0 0 {W} {total_h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (ti, t) in traces.iter().enumerate() {
        let y0 = ti as f64 * H;
        let mine: Vec<&Row> = rows.iter().filter(|r| r.trace == *t).collect();
        let mut sizes: Vec<u64> = mine.iter().map(|r| r.size.max(1)).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let (lo, hi) = (*sizes.first().unwrap_or(&1) as f64, *sizes.last().unwrap_or(&1) as f64);
        let log = hi / lo > 10.0;
        let fx = |s: f64| -> f64 {
            let (a, b, v) = if log { (lo.ln(), hi.ln(), s.ln()) } else { (lo, hi, s) };
            let f = if b > a { (v - a) / (b - a) } else { 0.5 };
            PAD_L + f * (W - PAD_L - PAD_R)
        };
        let ymax = mine.iter().map(|r| r.hit_ratio()).fold(0.0f64, f64::max).max(0.01);
        let ymax = (ymax * 10.0).ceil() / 10.0;
        let fy = |v: f64| y0 + PAD_T + (1.0 - v / ymax) * (H - PAD_T - PAD_B);
        let _ = writeln!(
            svg,
            r#"<text x="{PAD_L}" y="{}" font-size="13" font-weight="bold">{}</text>"#,
            y0 + 18.0,
            esc(t)
        );
        // Axes, grid lines and labels.
        for i in 0..=5 {
            let v = ymax * i as f64 / 5.0;
            let y = fy(v);
            let _ = writeln!(
                svg,
                r##"<line x1="{PAD_L}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
                W - PAD_R
            );
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{:.0}%</text>"#,
                PAD_L - 5.0,
                y + 4.0,
                v * 100.0
            );
        }
        for &s in &sizes {
            let x = fx(s as f64);
            let _ = writeln!(
                svg,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle">{s}</text>"#,
                y0 + H - PAD_B + 15.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">cache size (entries{})</text>"#,
            (PAD_L + W - PAD_R) / 2.0,
            y0 + H - 8.0,
            if log { ", log scale" } else { "" }
        );
        // One line per policy.
        let mut policies: Vec<&str> = Vec::new();
        for r in &mine {
            if !policies.contains(&r.policy.as_str()) {
                policies.push(&r.policy);
            }
        }
        for (pi, p) in policies.iter().enumerate() {
            let mut pts: Vec<(f64, f64)> = mine
                .iter()
                .filter(|r| r.policy == *p)
                .map(|r| (r.size.max(1) as f64, r.hit_ratio()))
                .collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let is_opt = *p == "opt";
            let color = if is_opt { "#000" } else { COLORS[pi % COLORS.len()] };
            let dash = if is_opt { r#" stroke-dasharray="6 4""# } else { "" };
            let path: Vec<String> =
                pts.iter().map(|&(s, v)| format!("{:.1},{:.1}", fx(s), fy(v))).collect();
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
                path.join(" ")
            );
            for &(s, v) in &pts {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}"/>"#,
                    fx(s),
                    fy(v)
                );
            }
            let ly = y0 + PAD_T + 14.0 * pi as f64;
            let lx = W - PAD_R + 10.0;
            let _ = writeln!(
                svg,
                r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/>"#,
                lx + 20.0
            );
            let _ = writeln!(svg, r#"<text x="{}" y="{}">{}</text>"#, lx + 25.0, ly + 4.0, esc(p));
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_panel_per_trace_and_a_dashed_opt() {
        let row = |t: &str, p: &str, size, hits| Row {
            trace: t.into(),
            policy: p.into(),
            size,
            requests: 100,
            hits,
        };
        let rows = vec![
            row("a", "lru", 10, 20),
            row("a", "lru", 1000, 60),
            row("a", "opt", 10, 40),
            row("a", "opt", 1000, 80),
            row("b<&>", "lru", 5, 10),
        ];
        let svg = plot_svg(&rows);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(svg.matches("stroke-dasharray").count(), 2, "opt line and its legend");
        assert!(svg.contains("log scale"));
        assert!(svg.contains("b&lt;&amp;&gt;"), "names are escaped");
        assert!(plot_svg(&[]).contains("</svg>"));
    }
}
