//! latency.svg: the latency distribution of each phase as a cumulative distribution (fraction of changes
//! that took at most x ms), on a logarithmic time axis so that the millisecond one-at-a-time phases and
//! the multi-second bulk phases fit on one chart.

use std::path::Path;

use plotters::prelude::*;

use crate::error::BenchError;
use crate::results::Results;

pub fn latency_svg(results: &Results, path: &Path) -> Result<(), BenchError> {
    let fail = |detail: String| BenchError::Output {
        path: path.to_path_buf(),
        detail,
    };
    let series: Vec<(&str, Vec<f64>)> = results
        .phases
        .iter()
        .filter(|p| !p.samples_ms.is_empty())
        .map(|p| {
            let mut s: Vec<f64> = p.samples_ms.iter().map(|v| v.max(0.01)).collect();
            s.sort_by(f64::total_cmp);
            (p.name.as_str(), s)
        })
        .collect();
    let lo = series
        .iter()
        .filter_map(|(_, s)| s.first().copied())
        .fold(f64::INFINITY, f64::min);
    let hi = series
        .iter()
        .filter_map(|(_, s)| s.last().copied())
        .fold(0.0f64, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo * 0.8, hi * 1.25)
    } else {
        (0.1, 1000.0)
    };

    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let caption = format!(
        "cfnet bench: propagation latency per phase, {} routes{}",
        results.routes,
        if results.quick { " (quick)" } else { "" }
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0f64..1.0f64)
        .map_err(|e| fail(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("latency (ms, log scale): client write → effect seen through a watch")
        .y_desc("fraction of changes")
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    for (i, (name, samples)) in series.iter().enumerate() {
        let n = samples.len() as f64;
        let color = Palette99::pick(i).to_rgba();
        let points = samples
            .iter()
            .enumerate()
            .map(|(k, v)| (*v, (k + 1) as f64 / n));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| fail(e.to_string()))?
            .label(format!("{name} (n={})", samples.len()))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    root.present().map_err(|e| fail(e.to_string()))?;
    Ok(())
}
