//! Horizontal bar charts as standalone SVG, for `cargo xtask bench` (one per figure).
//!
//! No dependencies and no scripts: an opaque card whose colours follow `prefers-color-scheme`
//! (text and background switch together, so it stays readable whichever theme shows it), one bar
//! per SDK with its value printed beside it, the highlighted SDK in the accent colour, and a
//! logarithmic axis (said in the subtitle) when the values span more than 100×.

/// One bar.
pub struct Bar {
    pub name: String,
    /// None: no bar; `label` says why.
    pub value: Option<f64>,
    /// What is printed beside the bar (the formatted value, a ratio, or why there is none).
    pub label: String,
    pub highlight: bool,
}

pub struct Chart {
    pub title: String,
    /// Under the title: unit, which way is better, runs. "log scale" is added when it applies.
    pub subtitle: String,
    pub bars: Vec<Bar>,
    /// Small print under the axis (footnotes), one line each.
    pub notes: Vec<String>,
    /// Axis tick labels.
    pub tick: fn(f64) -> String,
}

const WIDTH: f64 = 760.0;
const NAME_RIGHT: f64 = 212.0;
const BARS_LEFT: f64 = 222.0;
const LABEL_ROOM: f64 = 190.0;
const TOP: f64 = 64.0;
const ROW: f64 = 26.0;
const BAR: f64 = 16.0;

const STYLE: &str = "\
text{font-family:-apple-system,BlinkMacSystemFont,\"Segoe UI\",\"Noto Sans\",Helvetica,Arial,sans-serif;font-size:12px;font-variant-numeric:tabular-nums}
.bg{fill:#ffffff;stroke:#d1d9e0}
.t{fill:#1f2328}
.m{fill:#59636e}
.g{stroke:#d1d9e0;stroke-width:1}
.z{stroke:#818b98;stroke-width:1}
.b{fill:#818b98}
.h{fill:#0969da}
.ht{fill:#0969da;font-weight:600}
@media (prefers-color-scheme:dark){
.bg{fill:#0d1117;stroke:#3d444d}
.t{fill:#f0f6fc}
.m{fill:#9198a1}
.g{stroke:#2a313c}
.z{stroke:#656c76}
.b{fill:#656c76}
.h{fill:#4493f8}
.ht{fill:#4493f8}
}";

/// How values map to x.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    Linear {
        lo: f64,
        hi: f64,
    },
    /// From 10^lo (a decade at or below the smallest value) to 10^hi (a little past the largest).
    Log {
        lo: i32,
        hi: f64,
    },
}

impl Scale {
    /// Log when every value is positive and the largest is more than 100× the smallest.
    fn for_values(values: &[f64]) -> Scale {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if values.is_empty() {
            return Scale::Linear { lo: 0.0, hi: 1.0 };
        }
        if min > 0.0 && max / min > 100.0 {
            let mut lo = min.log10().floor() as i32;
            if 10f64.powi(lo) >= min {
                lo -= 1; // the smallest bar keeps some length
            }
            let hi = (max.log10() + 0.1).max(lo as f64 + 1.0);
            return Scale::Log { lo, hi };
        }
        let lo = min.min(0.0);
        let hi = max.max(0.0);
        let step = nice_step((hi - lo).max(f64::MIN_POSITIVE));
        let lo = (lo / step).floor() * step;
        let hi = ((hi / step).ceil() * step).max(lo + step);
        Scale::Linear { lo, hi }
    }

    /// 0..=1 along the axis.
    fn frac(self, v: f64) -> f64 {
        let f = match self {
            Scale::Linear { lo, hi } => (v - lo) / (hi - lo),
            Scale::Log { lo, hi } if v > 0.0 => (v.log10() - lo as f64) / (hi - lo as f64),
            Scale::Log { .. } => 0.0,
        };
        f.clamp(0.0, 1.0)
    }

    /// Where bars start: 0 on a linear axis, its left end on a log one.
    fn origin(self) -> f64 {
        match self {
            Scale::Linear { .. } => self.frac(0.0),
            Scale::Log { .. } => 0.0,
        }
    }

    fn ticks(self) -> Vec<f64> {
        match self {
            Scale::Linear { lo, hi } => {
                let step = nice_step(hi - lo);
                let n = ((hi - lo) / step).round() as i64;
                (0..=n).map(|i| lo + i as f64 * step).collect()
            }
            Scale::Log { lo, hi } => (lo..=hi.floor() as i32).map(|e| 10f64.powi(e)).collect(),
        }
    }
}

/// A step of 1, 2 or 5 × 10^n giving about four intervals over `span`.
fn nice_step(span: f64) -> f64 {
    let raw = span / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// `1.5k`, `2M`, `0.5`: tick labels.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    let (n, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = format!("{n:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart as a standalone SVG document.
pub fn svg(chart: &Chart) -> String {
    let values: Vec<f64> = chart.bars.iter().filter_map(|b| b.value).collect();
    let scale = Scale::for_values(&values);
    let subtitle = match scale {
        Scale::Log { .. } => format!("{} · log scale", chart.subtitle),
        Scale::Linear { .. } => chart.subtitle.clone(),
    };
    let plot = WIDTH - BARS_LEFT - LABEL_ROOM;
    let x = |f: f64| BARS_LEFT + f * plot;
    let bottom = TOP + ROW * chart.bars.len() as f64;
    let height = bottom + 26.0 + 16.0 * chart.notes.len() as f64 + 10.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{}\">\n<title>{}</title>\n\
         <style>\n{STYLE}\n</style>\n\
         <rect class=\"bg\" x=\"0.5\" y=\"0.5\" width=\"{}\" height=\"{}\" rx=\"6\"/>\n\
         <text class=\"t\" x=\"16\" y=\"26\" style=\"font-size:15px;font-weight:600\">{}</text>\n\
         <text class=\"m\" x=\"16\" y=\"45\">{}</text>\n",
        esc(&chart.title),
        esc(&format!("{}: {}", chart.title, subtitle)),
        WIDTH - 1.0,
        height - 1.0,
        esc(&chart.title),
        esc(&subtitle),
    );
    for t in scale.ticks() {
        let tx = x(scale.frac(t));
        let class = if t == 0.0 { "z" } else { "g" };
        out.push_str(&format!(
            "<line class=\"{class}\" x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{bottom:.1}\"/>\n\
             <text class=\"m\" x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" style=\"font-size:10.5px\">{}</text>\n",
            TOP - 6.0,
            bottom + 14.0,
            esc(&(chart.tick)(t)),
        ));
    }
    for (i, bar) in chart.bars.iter().enumerate() {
        let top = TOP + ROW * i as f64;
        let mid = top + ROW / 2.0 + 4.0;
        let (name_class, bar_class) = if bar.highlight {
            ("ht", "h")
        } else {
            ("t", "b")
        };
        out.push_str(&format!(
            "<text class=\"{name_class}\" x=\"{NAME_RIGHT}\" y=\"{mid:.1}\" text-anchor=\"end\">{}</text>\n",
            esc(&bar.name)
        ));
        let label_x = match bar.value {
            Some(v) => {
                let (a, b) = (x(scale.origin()), x(scale.frac(v)));
                let (left, right) = (a.min(b), a.max(b));
                out.push_str(&format!(
                    "<rect class=\"{bar_class}\" x=\"{left:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{BAR}\" rx=\"2\"/>\n",
                    top + (ROW - BAR) / 2.0,
                    (right - left).max(1.0),
                ));
                right + 6.0
            }
            None => x(scale.origin()) + 6.0,
        };
        let class = if bar.value.is_some() { name_class } else { "m" };
        out.push_str(&format!(
            "<text class=\"{class}\" x=\"{label_x:.1}\" y=\"{mid:.1}\">{}</text>\n",
            esc(&bar.label)
        ));
    }
    for (i, note) in chart.notes.iter().enumerate() {
        out.push_str(&format!(
            "<text class=\"m\" x=\"16\" y=\"{:.1}\" style=\"font-size:11px\">{}</text>\n",
            bottom + 34.0 + 16.0 * i as f64,
            esc(note)
        ));
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(values: &[Option<f64>]) -> Chart {
        Chart {
            title: "ready <ms>".into(),
            subtitle: "lower is better".into(),
            bars: values
                .iter()
                .enumerate()
                .map(|(i, v)| Bar {
                    name: format!("sdk{i}"),
                    value: *v,
                    label: v.map_or("failed".into(), |v| format!("{v}")),
                    highlight: i == 0,
                })
                .collect(),
            notes: vec!["¹ a note".into()],
            tick: compact,
        }
    }

    #[test]
    fn log_scale_only_past_100x() {
        let Scale::Log { lo, hi } = Scale::for_values(&[11.5, 1386.0]) else {
            panic!("not log")
        };
        assert_eq!(lo, 1);
        assert!((hi - (1386f64.log10() + 0.1)).abs() < 1e-9);
        // A value on a decade keeps a bar: the axis starts a decade lower.
        assert!(matches!(
            Scale::for_values(&[10.0, 1001.0]),
            Scale::Log { lo: 0, .. }
        ));
        assert!(matches!(
            Scale::for_values(&[5.0, 400.0]),
            Scale::Linear { .. }
        ));
        assert_eq!(
            Scale::for_values(&[16_747.0, 1_517_506.0]),
            Scale::Linear {
                lo: 0.0,
                hi: 2_000_000.0
            }
        );
        // Zero or negative values stay linear, with 0 inside the axis.
        assert_eq!(
            Scale::for_values(&[-50.0, 0.0, 1000.0]),
            Scale::Linear {
                lo: -500.0,
                hi: 1000.0
            }
        );
    }

    #[test]
    fn positions() {
        let s = Scale::Log { lo: 1, hi: 4.0 };
        assert!((s.frac(100.0) - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.frac(0.0), 0.0);
        assert_eq!(s.ticks(), vec![10.0, 100.0, 1000.0, 10000.0]);
        let s = Scale::Log { lo: 0, hi: 3.1 };
        assert_eq!(s.ticks(), vec![1.0, 10.0, 100.0, 1000.0]);
        let s = Scale::Linear {
            lo: -500.0,
            hi: 1000.0,
        };
        assert!((s.origin() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.ticks(), vec![-500.0, 0.0, 500.0, 1000.0]);
    }

    #[test]
    fn compact_labels() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(1500.0), "1.5k");
        assert_eq!(compact(2_000_000.0), "2M");
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(-500.0), "-500");
    }

    #[test]
    fn svg_has_every_bar_and_escapes() {
        let s = svg(&chart(&[Some(11.5), Some(1386.0), None]));
        assert!(
            s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{s}"
        );
        assert!(s.contains("ready &lt;ms&gt;"), "{s}");
        assert!(s.contains("lower is better · log scale"), "{s}");
        assert_eq!(s.matches("<rect class=\"h\"").count(), 1, "{s}");
        assert_eq!(s.matches("<rect class=\"b\"").count(), 1, "{s}");
        assert!(s.contains(">failed</text>"), "{s}");
        assert!(s.contains("¹ a note"), "{s}");
        assert!(s.contains("prefers-color-scheme:dark"), "{s}");
        // The longer bar is longer.
        let widths: Vec<f64> = s
            .match_indices("width=\"")
            .skip(2) // the svg's and the card's
            .map(|(i, _)| {
                let rest = &s[i + 7..];
                rest[..rest.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert_eq!(widths.len(), 2, "{s}");
        assert!(widths[1] > widths[0] * 2.0, "{widths:?}");
        let linear = svg(&chart(&[Some(100.0), Some(120.0)]));
        assert!(!linear.contains("log scale"), "{linear}");
    }
}
