//! Reading the Prometheus text exposition format: the one parser for whoever reads the controller's
//! `/metrics` (the integration tests, the benchmark) or the API server's. Counters, gauges and histogram
//! series, each sample with its labels; comment lines are skipped.

use std::collections::BTreeMap;

/// One sample line: `name{label="value",…} value [timestamp]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of one scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    pub samples: Vec<Sample>,
}

/// A line that is neither a comment nor a sample.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line} is not a Prometheus sample: {text:?}")]
pub struct ParseError {
    pub line: usize,
    pub text: String,
}

impl Scrape {
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut samples = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let sample = parse_line(line).ok_or_else(|| ParseError {
                line: n + 1,
                text: line.to_owned(),
            })?;
            samples.push(sample);
        }
        Ok(Scrape { samples })
    }

    /// Sum of all samples named `name` whose labels include every `(key, value)` of `filter`.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && matches(&s.labels, filter))
            .map(|s| s.value)
            .sum()
    }

    /// Whether any sample is named `name` (a metric a process does not export reads as absent, not 0).
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// Sums of `name` grouped by the values of `labels`, joined with `/` (e.g. writes by verb and kind).
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
}

/// Sums every sample of `name` (any labels) in a text exposition; NaN when the text does not parse.
pub fn sum_samples(text: &str, name: &str) -> f64 {
    Scrape::parse(text).map_or(f64::NAN, |s| s.sum(name, &[]))
}

fn matches(labels: &BTreeMap<String, String>, filter: &[(&str, &str)]) -> bool {
    filter
        .iter()
        .all(|(k, v)| labels.get(*k).is_some_and(|have| have == v))
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

/// A sample value or a histogram bound (`+Inf`).
pub fn parse_value(s: &str) -> Option<f64> {
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

    const SCRAPE: &str = r#"# TYPE cfnet_api_writes_total counter
cfnet_api_writes_total{verb="apply",kind="Service"} 1000
cfnet_api_writes_total{verb="apply",kind="VirtualService"} 1000
cfnet_api_writes_total{kind="Route",verb="patch"} 2000 1700000000000
cfnet_odd{msg="a \"quoted\", value}"} 3
up 1
# EOF
"#;

    #[test]
    fn parses_counters_with_labels_in_any_order_and_timestamps() {
        let s = Scrape::parse(SCRAPE).unwrap();
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
        assert_eq!(sum_samples(SCRAPE, "cfnet_api_writes_total"), 4000.0);
    }

    #[test]
    fn parses_escaped_label_values() {
        let s = Scrape::parse(SCRAPE).unwrap();
        let odd = s.samples.iter().find(|s| s.name == "cfnet_odd").unwrap();
        assert_eq!(odd.labels["msg"], "a \"quoted\", value}");
        assert_eq!(odd.value, 3.0);
    }

    #[test]
    fn rejects_garbage_with_line_number() {
        let err = Scrape::parse("ok 1\nthis is not a sample\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(sum_samples("ok 1\nthis is not a sample\n", "ok").is_nan());
    }
}
