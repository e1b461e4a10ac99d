//! Percentiles of measured latencies.
//!
//! We use the nearest-rank definition: the p-th percentile of n sorted samples is the sample at rank
//! ceil(p/100 · n) (1-based). It always returns a value that was actually measured, so "p95 = 12 ms"
//! means that 95 % of the changes took at most 12 ms, with no interpolation between samples.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// p50/p95/p99/max (and mean) of a set of latencies, in milliseconds, as written to results.json.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencySummary {
    /// Summary of `samples`; all zeros when there are none (a phase without changes).
    pub fn of(samples: &[Duration]) -> Self {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let mean = if ms.is_empty() {
            0.0
        } else {
            ms.iter().sum::<f64>() / ms.len() as f64
        };
        Self {
            p50: percentile(&ms, 50.0),
            p95: percentile(&ms, 95.0),
            p99: percentile(&ms, 99.0),
            max: ms.last().copied().unwrap_or(0.0),
            mean,
        }
    }
}

/// Nearest-rank percentile of already sorted samples; 0 for an empty slice. `p` is clamped to 0..=100.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    // rank 0 (p = 0) means the smallest sample.
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_one_to_hundred() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
    }

    #[test]
    fn nearest_rank_rounds_up() {
        // 10 samples: p95 is rank ceil(9.5) = 10, p50 is rank 5.
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 95.0), 10.0);
        assert_eq!(percentile(&v, 50.0), 5.0);
        assert_eq!(percentile(&v, 51.0), 6.0);
    }

    #[test]
    fn single_and_empty() {
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        assert_eq!(LatencySummary::of(&[]), LatencySummary::default());
    }

    #[test]
    fn summary_sorts_and_converts_to_milliseconds() {
        let samples: Vec<Duration> = [30, 10, 20, 40]
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect();
        let s = LatencySummary::of(&samples);
        assert_eq!(s.p50, 20.0);
        assert_eq!(s.p95, 40.0);
        assert_eq!(s.max, 40.0);
        assert_eq!(s.mean, 25.0);
    }

    #[test]
    fn one_slow_outlier_shows_in_p99_not_p50() {
        let mut samples = vec![Duration::from_millis(5); 199];
        samples.push(Duration::from_secs(2));
        let s = LatencySummary::of(&samples);
        assert_eq!(s.p50, 5.0);
        assert_eq!(s.p99, 5.0);
        assert_eq!(s.max, 2000.0);
        let mut samples = vec![Duration::from_millis(5); 98];
        samples.extend([Duration::from_secs(1), Duration::from_secs(2)]);
        assert_eq!(LatencySummary::of(&samples).p99, 1000.0);
    }
}
