//! PNG plots of a run: ROC curves, per-class score distributions, training curves.
//!
//! Drawn with `plotters`' bitmap backend; text goes through `ab_glyph` with DejaVu Sans embedded
//! in the binary (`shared/assets/`, licence beside it), so plotting never needs system fonts.
use super::{class_key, Curve};
use crate::{Error, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn register_font() -> Result<()> {
    let mut res = Ok(());
    REGISTER.call_once(|| {
        res = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| Error::Msg("embedded DejaVuSans.ttf is not a valid font".into()));
    });
    res
}

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Msg(format!("plot {}: {e}", path.display()))
}

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// ROC curves, one per named split (`(name, curve)`), with the chance diagonal.
pub fn plot_roc(path: &Path, curves: &[(&str, &Curve)]) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (640, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("ROC", ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("false positive rate")
        .y_desc("true positive rate")
        .draw()
        .map_err(|e| err(path, e))?;
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, 0.0), (1.0, 1.0)],
            RGBColor(180, 180, 180),
        ))
        .map_err(|e| err(path, e))?;
    for (i, (name, curve)) in curves.iter().enumerate() {
        let c = color(i);
        let label = format!("{name} (AUROC {:.4})", curve.auroc());
        chart
            .draw_series(LineSeries::new(curve.roc(), c.stroke_width(2)))
            .map_err(|e| err(path, e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}

/// Scores of one split by class: every sample as a jittered dot, the class mean as a bar, and
/// the decision threshold as a horizontal line. `scores` [N], `classes` [N].
pub fn plot_scores_by_class(
    path: &Path,
    title: &str,
    scores: &[f64],
    classes: &[u8],
    threshold: f64,
) -> Result<()> {
    register_font()?;
    let mut codes: Vec<u8> = classes.to_vec();
    codes.sort_unstable();
    codes.dedup();
    let (lo, hi) = scores
        .iter()
        .chain(std::iter::once(&threshold))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &s| {
            (a.min(s), b.max(s))
        });
    let pad = ((hi - lo) * 0.05).max(1e-9);
    let root = BitMapBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let k = codes.len();
    let labels: Vec<String> = codes.iter().map(|&c| class_key(c)).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(k as f64 - 0.5), (lo - pad)..(hi + pad))
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(k.max(1))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize][..2].to_string()
            } else {
                String::new()
            }
        })
        .x_desc("class code")
        .y_desc("anomaly score")
        .draw()
        .map_err(|e| err(path, e))?;
    for (xi, &code) in codes.iter().enumerate() {
        let c = color(xi);
        let vals: Vec<f64> = scores
            .iter()
            .zip(classes)
            .filter(|(_, &cc)| cc == code)
            .map(|(&s, _)| s)
            .collect();
        // deterministic jitter from the sample's rank within its class
        let dots = vals.iter().enumerate().map(|(j, &s)| {
            let jit = ((j as f64 * 0.618_034).fract() - 0.5) * 0.5;
            Circle::new((xi as f64 + jit, s), 2, c.mix(0.6).filled())
        });
        chart.draw_series(dots).map_err(|e| err(path, e))?;
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(xi as f64 - 0.35, mean), (xi as f64 + 0.35, mean)],
                BLACK.stroke_width(3),
            )))
            .map_err(|e| err(path, e))?;
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(-0.5, threshold), (k as f64 - 0.5, threshold)],
            RED.stroke_width(1),
        )))
        .map_err(|e| err(path, e))?
        .label(format!("threshold {threshold:.4}"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}

/// Training curves: the loss terms (top panel) and VAL I-AUROC series (bottom panel) against
/// epoch. Each series is `(name, values)` with one value per entry of `epochs`.
pub fn plot_training(
    path: &Path,
    epochs: &[f64],
    losses: &[(String, Vec<f64>)],
    aurocs: &[(String, Vec<f64>)],
) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (900, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let panels = root.split_evenly((2, 1));
    let x_hi = epochs.iter().copied().fold(1.0f64, f64::max);
    for (panel, (title, series)) in panels
        .iter()
        .zip([("training loss terms", losses), ("VAL I-AUROC", aurocs)])
    {
        let (lo, hi) = series
            .iter()
            .flat_map(|(_, v)| v.iter())
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &s| {
                (a.min(s), b.max(s))
            });
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.05).max(1e-6);
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_hi, (lo - pad)..(hi + pad))
            .map_err(|e| err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .draw()
            .map_err(|e| err(path, e))?;
        for (i, (name, v)) in series.iter().enumerate() {
            let c = color(i);
            let pts: Vec<(f64, f64)> = epochs
                .iter()
                .copied()
                .zip(v.iter().copied())
                .filter(|(_, y)| y.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .map_err(|e| err(path, e))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(path, e))?;
    }
    root.present().map_err(|e| err(path, e))
}

/// The sweep leaderboard chart: one column per trial (leaderboard order), VAL and TEST
/// I-AUROC means with +-1 std error bars. `rows`: `(trial, [val_mean, val_std, test_mean,
/// test_std])`.
pub fn plot_leaderboard(path: &Path, title: &str, rows: &[(String, [f64; 4])]) -> Result<()> {
    register_font()?;
    let width = (200 + 90 * rows.len() as u32).clamp(640, 2400);
    let root = BitMapBackend::new(path, (width, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let lo = rows
        .iter()
        .flat_map(|(_, v)| [v[0] - v[1], v[2] - v[3]])
        .fold(1.0f64, f64::min);
    let hi = rows
        .iter()
        .flat_map(|(_, v)| [v[0] + v[1], v[2] + v[3]])
        .fold(0.0f64, f64::max);
    let (lo, hi) = ((lo - 0.05).max(0.0), (hi + 0.05).min(1.0).max(lo + 0.1));
    let n = rows.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), lo..hi)
        .map_err(|e| err(path, e))?;
    chart
        .configure_mesh()
        .x_labels(n.min(40))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < rows.len() {
                format!("#{}", i as usize + 1)
            } else {
                String::new()
            }
        })
        .x_desc("row of the table (.md / .csv)")
        .y_desc("I-AUROC")
        .draw()
        .map_err(|e| err(path, e))?;
    for (k, (name, off)) in [("VAL", -0.12f64), ("TEST", 0.12)].into_iter().enumerate() {
        let c = color(k);
        let pts: Vec<(f64, f64, f64)> = rows
            .iter()
            .enumerate()
            .map(|(i, (_, v))| (i as f64 + off, v[2 * k], v[2 * k + 1]))
            .collect();
        chart
            .draw_series(pts.iter().map(|&(x, m, s)| {
                ErrorBar::new_vertical(x, m - s, m, m + s, c.filled().stroke_width(2), 10)
            }))
            .map_err(|e| err(path, e))?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, c.filled()));
        chart
            .draw_series(
                pts.iter()
                    .map(|&(x, m, _)| Circle::new((x, m), 4, c.filled())),
            )
            .map_err(|e| err(path, e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))
}
