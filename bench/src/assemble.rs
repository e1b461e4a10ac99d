//! Turning what the phases measured into [`Results`]: pure functions of the scrapes and samples taken at
//! phase boundaries, unit tested below (scenario/ does the measuring).

use std::collections::BTreeMap;
use std::time::Duration;

use cfnet_controller::names::{API_WRITES_TOTAL, PROPAGATION_SECONDS, RECONCILE_TIME_SECONDS};
use tokio::time::Instant;

use crate::Config;
use crate::baseline::BaselineRun;
use crate::procfs::ProcessSample;
use crate::prom::{Scrape, histogram};
use crate::results::{
    Baseline, ControllerStats, PHASES, Phase, RequestStats, Results, SteadyState,
};
use crate::stats::LatencySummary;

/// A point in time with the counters every phase is measured between.
pub(crate) struct Mark {
    pub at: Instant,
    /// The controller's `/metrics` (none before it starts).
    pub metrics: Option<Scrape>,
    /// kube-apiserver's `/metrics`, when it could be read.
    pub apiserver_metrics: Option<Scrape>,
    pub controller_cpu: f64,
    pub apiserver_cpu: f64,
    pub etcd_cpu: f64,
    pub driver_cpu: f64,
}

/// Phase `name` (whose latency is measured as `definition` says) between the marks `start` and `end`:
/// `wall` and the latencies `samples` as measured, the rest the difference of the two marks.
pub(crate) fn phase(
    (name, definition): (&str, &str),
    (start, end): (&Mark, &Mark),
    wall: Duration,
    samples: &[Duration],
) -> Phase {
    let histogram_delta = |metric: &str| {
        let after = histogram(end.metrics.as_ref()?, metric)?;
        let before = start.metrics.as_ref().and_then(|m| histogram(m, metric));
        Some(after.since(before.as_ref()).summary())
    };
    let writes = end
        .metrics
        .as_ref()
        .filter(|m| m.has(API_WRITES_TOTAL))
        .map(|m| {
            m.sum(API_WRITES_TOTAL, &[])
                - start
                    .metrics
                    .as_ref()
                    .map_or(0.0, |s| s.sum(API_WRITES_TOTAL, &[]))
        });
    Phase {
        name: name.to_string(),
        wall_seconds: wall.as_secs_f64(),
        changes: samples.len(),
        latency_ms: LatencySummary::of(samples),
        latency_definition: definition.to_string(),
        controller_cpu_seconds: end.controller_cpu - start.controller_cpu,
        apiserver_cpu_seconds: end.apiserver_cpu - start.apiserver_cpu,
        etcd_cpu_seconds: end.etcd_cpu - start.etcd_cpu,
        driver_cpu_seconds: end.driver_cpu - start.driver_cpu,
        controller_api_writes: writes,
        reconcile_time_seconds: histogram_delta(RECONCILE_TIME_SECONDS),
        propagation_seconds: histogram_delta(PROPAGATION_SECONDS),
        apiserver_requests: apiserver_requests(start, end),
        notes: BTreeMap::new(),
        samples_ms: samples.iter().map(|d| d.as_secs_f64() * 1e3).collect(),
    }
}

/// Requests served between two scrapes of kube-apiserver, by `VERB resource[/subresource]` (long-running
/// WATCH and CONNECT requests excluded: their duration is the connection's lifetime, not work).
pub(crate) fn apiserver_requests(start: &Mark, end: &Mark) -> BTreeMap<String, RequestStats> {
    const DURATION: &str = "apiserver_request_duration_seconds";
    let (Some(before), Some(after)) = (&start.apiserver_metrics, &end.apiserver_metrics) else {
        return BTreeMap::new();
    };
    let group = |scrape: &Scrape, suffix: &str| {
        let mut out: BTreeMap<String, f64> = BTreeMap::new();
        for s in scrape
            .samples
            .iter()
            .filter(|s| s.name == format!("{DURATION}_{suffix}"))
        {
            let label = |k: &str| s.labels.get(k).map(String::as_str).unwrap_or("");
            if matches!(label("verb"), "WATCH" | "CONNECT") {
                continue;
            }
            let mut key = format!("{} {}", label("verb"), label("resource"));
            if !label("subresource").is_empty() {
                key = format!("{key}/{}", label("subresource"));
            }
            *out.entry(key).or_insert(0.0) += s.value;
        }
        out
    };
    let (count0, sum0) = (group(before, "count"), group(before, "sum"));
    let (count1, sum1) = (group(after, "count"), group(after, "sum"));
    count1
        .into_iter()
        .filter_map(|(key, count)| {
            let count = count - count0.get(&key).copied().unwrap_or(0.0);
            let seconds =
                sum1.get(&key).copied().unwrap_or(0.0) - sum0.get(&key).copied().unwrap_or(0.0);
            (count > 0.0).then_some((key, RequestStats { count, seconds }))
        })
        .collect()
}

/// Everything a run measured.
pub(crate) struct Finished<'a> {
    pub config: &'a Config,
    /// RFC 3339 time the run started.
    pub date: String,
    pub apiserver_version: String,
    pub cpus: usize,
    /// In the order they ran.
    pub phases: Vec<Phase>,
    pub steady_state: SteadyState,
    /// The controller's last scrape, just before it was stopped.
    pub final_metrics: Option<Scrape>,
    pub final_sample: ProcessSample,
    pub baseline: BaselineRun,
}

/// The results of a run: phases in report order, the controller's totals, the ratio to the bare client.
pub(crate) fn results(run: Finished<'_>) -> Results {
    let Finished {
        config,
        mut phases,
        final_metrics,
        final_sample,
        baseline: base,
        ..
    } = run;
    phases.sort_by_key(|p: &Phase| PHASES.iter().position(|n| *n == p.name));
    let bulk_add = phases.iter().find(|p| p.name == "bulk_add");
    let bulk_seconds = bulk_add.map(|p| p.wall_seconds).unwrap_or(0.0);
    let api_writes_per_route = bulk_add
        .and_then(|p| p.controller_api_writes)
        .map(|w| w / config.routes.max(1) as f64);
    let final_histogram = |name: &str| {
        final_metrics
            .as_ref()
            .and_then(|m| histogram(m, name))
            .map(|h| h.summary())
    };
    let controller = ControllerStats {
        peak_rss_mib: final_sample.peak_rss_mib(),
        cpu_seconds: final_sample.cpu_seconds,
        api_writes_per_route,
        writes_by_verb_kind: final_metrics
            .as_ref()
            .map(|m| m.sum_by(API_WRITES_TOTAL, &["verb", "kind"]))
            .unwrap_or_default(),
        reconcile_time_seconds: final_histogram(RECONCILE_TIME_SECONDS),
        propagation_seconds: final_histogram(PROPAGATION_SECONDS),
    };
    Results {
        routes: config.routes,
        quick: config.quick,
        date: run.date,
        apiserver_version: run.apiserver_version,
        command: config.command.clone(),
        cpus: run.cpus,
        phases,
        envoy: None,
        baseline: Baseline {
            bulk_add_seconds: base.seconds,
            concurrency: config.concurrency,
            writes: base.writes,
            ratio: if base.seconds > 0.0 {
                bulk_seconds / base.seconds
            } else {
                0.0
            },
            apiserver_cpu_seconds: base.apiserver_cpu_seconds,
            etcd_cpu_seconds: base.etcd_cpu_seconds,
        },
        steady_state: run.steady_state,
        controller,
    }
}

#[cfg(test)]
mod tests;
