//! Prometheus metrics: upstream's controller-runtime names (so its dashboards and stress harness keep
//! working) plus cfnet's own: propagation latency, managed objects, queue depth and API writes.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// controller-runtime v0.8.3's reconcile-time buckets (reference §2.1), so upstream's stress harness,
/// which reads p95 as the first bucket bound above 95 %, works unchanged.
pub const RECONCILE_BUCKETS: [f64; 40] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

/// Value of the `controller` label, as controller-runtime named upstream's `For(&Route{})` controller.
const CONTROLLER: &str = "route";

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
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    verb: &'static str,
    kind: &'static str,
}

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
    reconcile_errors: Family<ControllerLabels, Counter>,
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
        let reconcile_errors = Family::<ControllerLabels, Counter>::default();
        let reconcile_time =
            Family::<ControllerLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                reconcile_histogram,
            );
        let propagation = Histogram::new(RECONCILE_BUCKETS);
        let managed_objects = Family::<KindLabels, Gauge>::default();
        let queue_depth = Gauge::default();
        let api_writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            reconcile_errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            reconcile_time.clone(),
        );
        registry.register(
            "cfnet_propagation_seconds",
            "Time from a Route change seen by the watch to its FQDN's children applied and status written",
            propagation.clone(),
        );
        registry.register(
            "cfnet_managed_objects",
            "Objects owned by the controller in its cache, by kind",
            managed_objects.clone(),
        );
        registry.register(
            "cfnet_queue_depth",
            "FQDN keys waiting to be reconciled",
            queue_depth.clone(),
        );
        registry.register(
            "cfnet_api_writes",
            "Writes sent to the Kubernetes API, by verb and kind",
            api_writes.clone(),
        );
        // Make the series visible at 0 before the first reconcile, so that a reader sees them at once.
        for result in ["success", "error"] {
            drop(reconcile_total.get_or_create(&ResultLabels {
                controller: CONTROLLER,
                result,
            }));
        }
        drop(reconcile_errors.get_or_create(&ControllerLabels {
            controller: CONTROLLER,
        }));
        drop(reconcile_time.get_or_create(&ControllerLabels {
            controller: CONTROLLER,
        }));
        for kind in ["Service", "VirtualService"] {
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

    pub(crate) fn reconciled(&self, seconds: f64, ok: bool) {
        let result = if ok { "success" } else { "error" };
        self.reconcile_total
            .get_or_create(&ResultLabels {
                controller: CONTROLLER,
                result,
            })
            .inc();
        if !ok {
            self.reconcile_errors
                .get_or_create(&ControllerLabels {
                    controller: CONTROLLER,
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

    pub(crate) fn wrote(&self, verb: Verb, kind: &'static str) {
        self.api_writes
            .get_or_create(&WriteLabels {
                verb: verb.as_str(),
                kind,
            })
            .inc();
    }

    /// Sum of `cfnet_api_writes_total` over all verbs and kinds (tests, benchmark).
    pub fn api_writes_total(&self) -> u64 {
        sum_samples(&self.encode(), "cfnet_api_writes_total") as u64
    }
}

/// Sums every sample of `name` (any labels) in a Prometheus text exposition; for tests and the benchmark,
/// which read the controller's metrics the way a scraper would.
pub fn sum_samples(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_upstream_names_and_buckets() {
        let m = Metrics::new();
        m.reconciled(0.2, true);
        m.reconciled(0.2, false);
        m.wrote(Verb::Apply, "Service");
        m.wrote(Verb::Delete, "VirtualService");
        let text = m.encode();
        assert!(
            text.contains(
                r#"controller_runtime_reconcile_total{controller="route",result="success"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"controller_runtime_reconcile_errors_total{controller="route"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"controller_runtime_reconcile_time_seconds_bucket{le="0.25",controller="route"} 2"#)
            || text.contains(r#"controller_runtime_reconcile_time_seconds_bucket{controller="route",le="0.25"} 2"#), "{text}");
        assert!(
            text.contains(r#"cfnet_api_writes_total{verb="apply",kind="Service"} 1"#),
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
}
