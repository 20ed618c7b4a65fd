//! Server-rendered SVG bar charts: readable without script or CDN, with a table of the same
//! numbers next to them for screen readers.

/// One bar of a chart, in the SVG's coordinates.
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    /// Shown on hover (`<title>`): "2026-12-01: 12 events".
    pub title: String,
}

/// An axis label under the bars.
pub struct Tick {
    pub x: f64,
    pub text: String,
}

pub struct BarChart {
    pub width: u32,
    pub height: u32,
    /// The baseline's y.
    pub base: f64,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    /// The largest value, as the top label.
    pub max_label: String,
}

/// Vertical bars, one per value, scaled to the largest; labels under the first, middle and
/// last bar.
pub fn bars(values: &[(String, f64, String)], max_label: impl Fn(f64) -> String) -> BarChart {
    let (width, height) = (720u32, 180u32);
    let top = 16.0;
    let base = f64::from(height) - 22.0;
    let left = 4.0;
    let n = values.len().max(1) as f64;
    let slot = (f64::from(width) - left * 2.0) / n;
    let gap = (slot * 0.2).min(6.0);
    let max = values.iter().map(|v| v.1).fold(0.0_f64, f64::max);
    let bars = values
        .iter()
        .enumerate()
        .map(|(i, (_, v, title))| {
            let h = if max > 0.0 {
                (v.max(0.0) / max) * (base - top)
            } else {
                0.0
            };
            Bar {
                x: round1(left + i as f64 * slot + gap / 2.0),
                y: round1(base - h),
                width: round1((slot - gap).max(1.0)),
                height: round1(h),
                title: title.clone(),
            }
        })
        .collect();
    let mut ticks = Vec::new();
    let last = values.len().saturating_sub(1);
    let mut picks = vec![0, last / 2, last];
    picks.dedup();
    for i in picks {
        if let Some((label, _, _)) = values.get(i) {
            ticks.push(Tick {
                x: round1(left + i as f64 * slot + slot / 2.0),
                text: label.clone(),
            });
        }
    }
    BarChart {
        width,
        height,
        base,
        bars,
        ticks,
        max_label: max_label(max),
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}
