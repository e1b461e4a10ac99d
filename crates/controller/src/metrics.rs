//! Prometheus metrics: upstream's controller-runtime names (so its dashboards and stress harness keep
//! working) plus cfnet's own: propagation latency, managed objects, queue depth and API writes.

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use cfnet_api::VirtualService;
use cfnet_api::gateway_api::HTTPRoute;
use k8s_openapi::api::core::v1::Service;

use crate::child::Child;
use crate::error::Category;
use crate::scrape::sum_samples;

/// The metric names as scraped, defined once for the controller and its readers (tests, benchmark).
pub mod names {
    pub const RECONCILE_TOTAL: &str = "controller_runtime_reconcile_total";
    pub const RECONCILE_ERRORS_TOTAL: &str = "controller_runtime_reconcile_errors_total";
    pub const RECONCILE_TIME_SECONDS: &str = "controller_runtime_reconcile_time_seconds";
    pub const PROPAGATION_SECONDS: &str = "cfnet_propagation_seconds";
    pub const MANAGED_OBJECTS: &str = "cfnet_managed_objects";
    pub const QUEUE_DEPTH: &str = "cfnet_queue_depth";
    pub const API_WRITES_TOTAL: &str = "cfnet_api_writes_total";
}

/// controller-runtime v0.8.3's reconcile-time buckets (reference §2.1), so upstream's stress harness,
/// which reads p95 as the first bucket bound above 95 %, works unchanged.
pub const RECONCILE_BUCKETS: [f64; 40] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

/// Value of the `controller` label, as controller-runtime named upstream's `For(&Route{})` controller.
const CONTROLLER: &str = "route";

/// The registry appends `_total` to counters.
fn counter_name(total: &'static str) -> &'static str {
    total.strip_suffix("_total").unwrap_or(total)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    controller: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// `{verb, kind}`, plus `reason` (the [`Category`]) on a write the API refused or failed.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct WriteLabels {
    verb: &'static str,
    kind: &'static str,
    reason: Option<&'static str>,
}

impl EncodeLabelSet for WriteLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("verb", self.verb).encode(encoder.encode_label())?;
        ("kind", self.kind).encode(encoder.encode_label())?;
        if let Some(reason) = self.reason {
            ("reason", reason).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// `cfnet_propagation_seconds`: the reconcile buckets, then up to 15 minutes, so that a bulk add of
/// 10,000 routes (≈ 7 minutes on a 2-core API server, docs/performance.md) still has its p50 and p95 in
/// a bucket of their own instead of all past the 60 s bound.
pub const PROPAGATION_BUCKETS: [f64; 49] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0, 90.0, 120.0, 180.0, 240.0, 300.0, 420.0, 600.0, 750.0, 900.0,
];

fn reconcile_histogram() -> Histogram {
    Histogram::new(RECONCILE_BUCKETS)
}

/// Kinds of API write, for `cfnet_api_writes_total{verb,kind}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Apply,
    Delete,
    Patch,
    Create,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Apply => "apply",
            Verb::Delete => "delete",
            Verb::Patch => "patch",
            Verb::Create => "create",
        }
    }
}

/// All metrics of one controller; cheap to share behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    reconcile_time: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    propagation: Histogram,
    managed_objects: Family<KindLabels, Gauge>,
    queue_depth: Gauge,
    api_writes: Family<WriteLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconcile_total = Family::<ResultLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_time =
            Family::<ControllerLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                reconcile_histogram,
            );
        let propagation = Histogram::new(PROPAGATION_BUCKETS);
        let managed_objects = Family::<KindLabels, Gauge>::default();
        let queue_depth = Gauge::default();
        let api_writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            counter_name(names::RECONCILE_TOTAL),
            "Total number of reconciliations per controller",
            reconcile_total.clone(),
        );
        registry.register(
            counter_name(names::RECONCILE_ERRORS_TOTAL),
            "Total number of reconciliation errors per controller, by the reason of the first failed call",
            reconcile_errors.clone(),
        );
        registry.register(
            names::RECONCILE_TIME_SECONDS,
            "Length of time per reconciliation per controller",
            reconcile_time.clone(),
        );
        registry.register(
            names::PROPAGATION_SECONDS,
            "Time from the controller's watch receiving a Route change to the end of the reconcile that wrote its FQDN's children and the Routes' status",
            propagation.clone(),
        );
        registry.register(
            names::MANAGED_OBJECTS,
            "Objects owned by the controller in its cache, by kind",
            managed_objects.clone(),
        );
        registry.register(
            names::QUEUE_DEPTH,
            "FQDN keys waiting to be reconciled",
            queue_depth.clone(),
        );
        registry.register(
            counter_name(names::API_WRITES_TOTAL),
            "Writes sent to the Kubernetes API, by verb and kind; with a reason when the API refused or failed one",
            api_writes.clone(),
        );
        // Make the series visible at 0 before the first reconcile, so that a reader sees them at once.
        for result in ["success", "error"] {
            drop(reconcile_total.get_or_create(&ResultLabels {
                controller: CONTROLLER,
                result,
            }));
        }
        for reason in Category::ALL {
            drop(reconcile_errors.get_or_create(&ErrorLabels {
                controller: CONTROLLER,
                reason: reason.as_str(),
            }));
        }
        drop(reconcile_time.get_or_create(&ControllerLabels {
            controller: CONTROLLER,
        }));
        for kind in [Service::KIND, VirtualService::KIND, HTTPRoute::KIND] {
            drop(managed_objects.get_or_create(&KindLabels { kind }));
        }
        Metrics {
            registry,
            reconcile_total,
            reconcile_errors,
            reconcile_time,
            propagation,
            managed_objects,
            queue_depth,
            api_writes,
        }
    }

    /// Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// A reconcile that took `seconds`; `Err` with the category of its first failed call.
    pub(crate) fn reconciled(&self, seconds: f64, outcome: Result<(), Category>) {
        let result = if outcome.is_ok() { "success" } else { "error" };
        self.reconcile_total
            .get_or_create(&ResultLabels {
                controller: CONTROLLER,
                result,
            })
            .inc();
        if let Err(reason) = outcome {
            self.reconcile_errors
                .get_or_create(&ErrorLabels {
                    controller: CONTROLLER,
                    reason: reason.as_str(),
                })
                .inc();
        }
        self.reconcile_time
            .get_or_create(&ControllerLabels {
                controller: CONTROLLER,
            })
            .observe(seconds);
    }

    pub(crate) fn propagated(&self, seconds: f64) {
        self.propagation.observe(seconds);
    }

    pub(crate) fn set_managed(&self, kind: &'static str, count: usize) {
        self.managed_objects
            .get_or_create(&KindLabels { kind })
            .set(count as i64);
    }

    pub(crate) fn set_queue_depth(&self, depth: usize) {
        self.queue_depth.set(depth as i64);
    }

    /// A write sent to the API; `Err` with the category when the API refused or failed it.
    pub(crate) fn wrote(&self, verb: Verb, kind: &'static str, outcome: Result<(), Category>) {
        self.api_writes
            .get_or_create(&WriteLabels {
                verb: verb.as_str(),
                kind,
                reason: outcome.err().map(Category::as_str),
            })
            .inc();
    }

    /// Sum of `cfnet_api_writes_total` over all verbs, kinds and reasons (tests, benchmark).
    pub fn api_writes_total(&self) -> u64 {
        sum_samples(&self.encode(), names::API_WRITES_TOTAL) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_upstream_names_and_buckets() {
        let m = Metrics::new();
        m.reconciled(0.2, Ok(()));
        m.reconciled(0.2, Err(Category::Forbidden));
        m.wrote(Verb::Apply, "Service", Ok(()));
        m.wrote(Verb::Delete, "VirtualService", Err(Category::Conflict));
        let text = m.encode();
        assert!(
            text.contains(
                r#"controller_runtime_reconcile_total{controller="route",result="success"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"controller_runtime_reconcile_errors_total{controller="route",reason="forbidden"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"controller_runtime_reconcile_time_seconds_bucket{le="0.25",controller="route"} 2"#)
            || text.contains(r#"controller_runtime_reconcile_time_seconds_bucket{controller="route",le="0.25"} 2"#), "{text}");
        assert!(
            text.contains(r#"cfnet_api_writes_total{verb="apply",kind="Service"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"cfnet_api_writes_total{verb="delete",kind="VirtualService",reason="conflict"} 1"#
            ),
            "{text}"
        );
        assert_eq!(m.api_writes_total(), 2);
        assert_eq!(
            sum_samples(&text, "controller_runtime_reconcile_total"),
            2.0
        );
        assert!(text.contains("cfnet_queue_depth"));
        assert!(text.contains("cfnet_propagation_seconds_bucket"));
    }

    /// Bucket bound `le` of `metric` as exposed, or `None` when there is no such bucket.
    fn bucket(text: &str, metric: &str, le: &str) -> Option<f64> {
        let prefix = format!("{metric}_bucket{{le=\"{le}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn propagation_buckets_reach_fifteen_minutes_and_start_as_the_reconcile_buckets() {
        assert_eq!(
            PROPAGATION_BUCKETS[..RECONCILE_BUCKETS.len()],
            RECONCILE_BUCKETS
        );
        assert!(PROPAGATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(PROPAGATION_BUCKETS.last(), Some(&900.0));
        let m = Metrics::new();
        // A route programmed 7 and 14 minutes after it was seen (a 10,000-route bulk add).
        m.propagated(7.0 * 60.0);
        m.propagated(14.0 * 60.0);
        let text = m.encode();
        let name = names::PROPAGATION_SECONDS;
        assert_eq!(bucket(&text, name, "60.0"), Some(0.0), "{text}");
        assert_eq!(bucket(&text, name, "420.0"), Some(1.0), "{text}");
        assert_eq!(bucket(&text, name, "750.0"), Some(1.0), "{text}");
        assert_eq!(bucket(&text, name, "900.0"), Some(2.0), "{text}");
        assert_eq!(bucket(&text, name, "+Inf"), Some(2.0), "{text}");
        // The reconcile histogram keeps upstream's bounds (its harness reads them).
        assert!(
            text.lines()
                .filter(|l| l.starts_with("controller_runtime_reconcile_time_seconds_bucket"))
                .all(|l| !l.contains("le=\"900.0\"")),
            "{text}"
        );
    }
}
