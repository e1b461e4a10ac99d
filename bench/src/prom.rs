//! The metrics the benchmark reads (the controller's `/metrics`, kube-apiserver's): scrapes parsed by the
//! controller crate's one parser of the text format (`cfnet_controller::scrape`), and histograms
//! (`_bucket{le=…}`, `_sum`, `_count`) subtracted between two scrapes and read as quantiles, so that each
//! phase gets its own counts and histogram.

use std::collections::BTreeMap;

pub use cfnet_controller::scrape::Scrape;
use cfnet_controller::scrape::parse_value;
use serde::{Deserialize, Serialize};

use crate::error::BenchError;

/// Parses a scrape body.
pub fn parse(text: &str) -> Result<Scrape, BenchError> {
    Scrape::parse(text).map_err(|e| BenchError::Metrics {
        detail: e.to_string(),
    })
}

/// The histogram `name` (base name, without `_bucket`) in `scrape`, summed over every other label.
pub fn histogram(scrape: &Scrape, name: &str) -> Option<Histogram> {
    let bucket_name = format!("{name}_bucket");
    let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for s in scrape.samples.iter().filter(|s| s.name == bucket_name) {
        let le = s.labels.get("le").and_then(|v| parse_value(v))?;
        // Key by the bit pattern of a finite-or-inf positive bound so that equal bounds merge.
        let entry = buckets.entry(le.to_bits()).or_insert((le, 0.0));
        entry.1 += s.value;
    }
    if buckets.is_empty() {
        return None;
    }
    let mut buckets: Vec<(f64, f64)> = buckets.into_values().collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some(Histogram {
        buckets,
        sum: scrape.sum(&format!("{name}_sum"), &[]),
        count: scrape.sum(&format!("{name}_count"), &[]),
    })
}

/// A cumulative histogram: `(upper bound, cumulative count)` in increasing bound order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

/// Quantiles read from a histogram, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramSummary {
    pub count: f64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Histogram {
    /// `self - earlier`: the observations made between two scrapes of the same process.
    pub fn since(&self, earlier: Option<&Histogram>) -> Histogram {
        let Some(earlier) = earlier else {
            return self.clone();
        };
        let before = |le: f64| {
            earlier
                .buckets
                .iter()
                .find(|(b, _)| *b == le)
                .map(|(_, c)| *c)
                .unwrap_or(0.0)
        };
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|(le, c)| (*le, (c - before(*le)).max(0.0)))
                .collect(),
            sum: (self.sum - earlier.sum).max(0.0),
            count: (self.count - earlier.count).max(0.0),
        }
    }

    /// The q-quantile (0..=1) with Prometheus' `histogram_quantile` rule: linear interpolation inside
    /// the first bucket whose cumulative count reaches q·count. Observations in the `+Inf` bucket
    /// report the largest finite bound. 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let total = self.buckets.last().map(|(_, c)| *c).unwrap_or(0.0);
        if total <= 0.0 {
            return 0.0;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let mut lower_bound = 0.0;
        let mut lower_count = 0.0;
        for (le, cumulative) in &self.buckets {
            if *cumulative >= rank && *cumulative > 0.0 {
                if le.is_infinite() {
                    return lower_bound;
                }
                let in_bucket = cumulative - lower_count;
                if in_bucket <= 0.0 {
                    return *le;
                }
                return lower_bound + (le - lower_bound) * ((rank - lower_count) / in_bucket);
            }
            lower_bound = *le;
            lower_count = *cumulative;
        }
        lower_bound
    }

    pub fn summary(&self) -> HistogramSummary {
        HistogramSummary {
            count: self.count,
            mean: if self.count > 0.0 {
                self.sum / self.count
            } else {
                0.0
            },
            p50: self.quantile(0.50),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP controller_runtime_reconcile_time_seconds Time per reconcile.
# TYPE controller_runtime_reconcile_time_seconds histogram
controller_runtime_reconcile_time_seconds_bucket{controller="route",le="0.005"} 10
controller_runtime_reconcile_time_seconds_bucket{controller="route",le="0.01"} 60
controller_runtime_reconcile_time_seconds_bucket{controller="route",le="0.1"} 100
controller_runtime_reconcile_time_seconds_bucket{controller="route",le="+Inf"} 100
controller_runtime_reconcile_time_seconds_sum{controller="route"} 0.9
controller_runtime_reconcile_time_seconds_count{controller="route"} 100
up 1
# EOF
"#;

    #[test]
    fn histogram_quantiles_interpolate_like_prometheus() {
        let h = histogram(
            &parse(SCRAPE).unwrap(),
            "controller_runtime_reconcile_time_seconds",
        )
        .unwrap();
        assert_eq!(h.count, 100.0);
        // rank 50 falls in (0.005, 0.01] which holds 50 observations, starting at cumulative 10.
        assert!((h.quantile(0.5) - (0.005 + 0.005 * 40.0 / 50.0)).abs() < 1e-12);
        // rank 95 falls in (0.01, 0.1] holding 40, starting at 60.
        assert!((h.quantile(0.95) - (0.01 + 0.09 * 35.0 / 40.0)).abs() < 1e-12);
        assert!((h.summary().mean - 0.009).abs() < 1e-12);
    }

    #[test]
    fn histogram_delta_between_scrapes() {
        let before = histogram(
            &parse(SCRAPE).unwrap(),
            "controller_runtime_reconcile_time_seconds",
        );
        let after_text = SCRAPE
            .replace("le=\"0.005\"} 10", "le=\"0.005\"} 110")
            .replace("le=\"0.01\"} 60", "le=\"0.01\"} 160")
            .replace("le=\"0.1\"} 100", "le=\"0.1\"} 200")
            .replace("le=\"+Inf\"} 100", "le=\"+Inf\"} 200")
            .replace(
                "_count{controller=\"route\"} 100",
                "_count{controller=\"route\"} 200",
            );
        let after = histogram(
            &parse(&after_text).unwrap(),
            "controller_runtime_reconcile_time_seconds",
        )
        .unwrap();
        let delta = after.since(before.as_ref());
        assert_eq!(delta.count, 100.0);
        // All 100 new observations are in the first bucket.
        assert_eq!(delta.buckets[0].1, 100.0);
        assert!(delta.quantile(0.99) <= 0.005);
    }

    #[test]
    fn observations_beyond_the_last_bound_report_the_last_finite_bound() {
        let h = Histogram {
            buckets: vec![(0.1, 0.0), (1.0, 0.0), (f64::INFINITY, 5.0)],
            sum: 50.0,
            count: 5.0,
        };
        assert_eq!(h.quantile(0.5), 1.0);
        assert_eq!(Histogram::default().quantile(0.5), 0.0);
    }
}
