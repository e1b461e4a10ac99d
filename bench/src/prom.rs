//! The Prometheus text exposition format, as far as the benchmark reads the controller's `/metrics`:
//! counters, gauges and histograms (`_bucket{le=…}`, `_sum`, `_count`). Snapshots are taken at phase
//! boundaries and subtracted, so each phase gets its own counts and histogram.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::BenchError;

/// One sample line: `name{label="value",…} value [timestamp]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of one scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub samples: Vec<Sample>,
}

impl Snapshot {
    /// Parses a scrape body. Comment lines (`# HELP`, `# TYPE`, `# EOF`) are skipped.
    pub fn parse(text: &str) -> Result<Self, BenchError> {
        let mut samples = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let sample = parse_line(line).ok_or_else(|| BenchError::Metrics {
                detail: format!("line {} is not a Prometheus sample: {line:?}", n + 1),
            })?;
            samples.push(sample);
        }
        Ok(Self { samples })
    }

    /// Sum of all samples named `name` whose labels include every `(key, value)` of `filter`.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && matches(&s.labels, filter))
            .map(|s| s.value)
            .sum()
    }

    /// Whether any sample is named `name` (a metric the controller does not export reads as absent,
    /// not as zero).
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// Sums of `name` grouped by the values of `label` (e.g. writes by verb).
    pub fn sum_by(&self, name: &str, labels: &[&str]) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.name == name) {
            let key = labels
                .iter()
                .map(|l| s.labels.get(*l).map(String::as_str).unwrap_or(""))
                .collect::<Vec<_>>()
                .join("/");
            *out.entry(key).or_insert(0.0) += s.value;
        }
        out
    }

    /// The histogram `name` (base name, without `_bucket`), summed over every other label.
    pub fn histogram(&self, name: &str) -> Option<Histogram> {
        let bucket_name = format!("{name}_bucket");
        let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.name == bucket_name) {
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
            sum: self.sum(&format!("{name}_sum"), &[]),
            count: self.sum(&format!("{name}_count"), &[]),
        })
    }
}

fn matches(labels: &BTreeMap<String, String>, filter: &[(&str, &str)]) -> bool {
    filter
        .iter()
        .all(|(k, v)| labels.get(*k).is_some_and(|have| have == v))
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

fn parse_line(line: &str) -> Option<Sample> {
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let (labels, after) = parse_labels(&line[open + 1..])?;
            (&line[..open], labels, after)
        }
        None => {
            let end = line.find(char::is_whitespace)?;
            (&line[..end], BTreeMap::new(), &line[end..])
        }
    };
    let value = parse_value(rest.split_whitespace().next()?)?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Parses `a="x",b="y\"z"}` and returns the labels and the text after the closing brace.
fn parse_labels(s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_string();
        let value_text = rest[eq + 1..].trim_start();
        let mut chars = value_text.char_indices();
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        let mut escaped = false;
        let mut end = None;
        for (i, c) in chars {
            if escaped {
                value.push(match c {
                    'n' => '\n',
                    other => other,
                });
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                end = Some(i);
                break;
            } else {
                value.push(c);
            }
        }
        rest = &value_text[end? + 1..];
        labels.insert(key, value);
    }
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        other => other.parse().ok(),
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
# TYPE cfnet_api_writes_total counter
cfnet_api_writes_total{verb="apply",kind="Service"} 1000
cfnet_api_writes_total{verb="apply",kind="VirtualService"} 1000
cfnet_api_writes_total{kind="Route",verb="patch"} 2000 1700000000000
cfnet_odd{msg="a \"quoted\", value}"} 3
up 1
# EOF
"#;

    #[test]
    fn parses_counters_with_labels_in_any_order_and_timestamps() {
        let s = Snapshot::parse(SCRAPE).unwrap();
        assert_eq!(s.sum("cfnet_api_writes_total", &[]), 4000.0);
        assert_eq!(
            s.sum("cfnet_api_writes_total", &[("verb", "apply")]),
            2000.0
        );
        assert_eq!(
            s.sum("cfnet_api_writes_total", &[("kind", "Route")]),
            2000.0
        );
        assert_eq!(s.sum("up", &[]), 1.0);
        assert!(!s.has("absent_metric"));
        let by = s.sum_by("cfnet_api_writes_total", &["verb", "kind"]);
        assert_eq!(by.get("patch/Route"), Some(&2000.0));
    }

    #[test]
    fn parses_escaped_label_values() {
        let s = Snapshot::parse(SCRAPE).unwrap();
        let odd = s.samples.iter().find(|s| s.name == "cfnet_odd").unwrap();
        assert_eq!(odd.labels["msg"], "a \"quoted\", value}");
        assert_eq!(odd.value, 3.0);
    }

    #[test]
    fn rejects_garbage_with_line_number() {
        let err = Snapshot::parse("ok 1\nthis is not a sample\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn histogram_quantiles_interpolate_like_prometheus() {
        let h = Snapshot::parse(SCRAPE)
            .unwrap()
            .histogram("controller_runtime_reconcile_time_seconds")
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
        let before = Snapshot::parse(SCRAPE)
            .unwrap()
            .histogram("controller_runtime_reconcile_time_seconds");
        let after_text = SCRAPE
            .replace("le=\"0.005\"} 10", "le=\"0.005\"} 110")
            .replace("le=\"0.01\"} 60", "le=\"0.01\"} 160")
            .replace("le=\"0.1\"} 100", "le=\"0.1\"} 200")
            .replace("le=\"+Inf\"} 100", "le=\"+Inf\"} 200")
            .replace(
                "_count{controller=\"route\"} 100",
                "_count{controller=\"route\"} 200",
            );
        let after = Snapshot::parse(&after_text)
            .unwrap()
            .histogram("controller_runtime_reconcile_time_seconds")
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
