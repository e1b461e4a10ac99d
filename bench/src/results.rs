//! results.json (read by acceptance checks outside the repo: keep the documented keys), report.md and the
//! check of the targets.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::BenchError;
use crate::prom::HistogramSummary;
use crate::stats::LatencySummary;

/// The eight phases, in the order they are reported.
pub const PHASES: [&str; 8] = [
    "bulk_add",
    "add_one_by_one",
    "update_one_by_one",
    "delete_one_by_one",
    "bulk_delete",
    "shared_fqdn_updates",
    "drift_repair",
    "steady_state",
];

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    pub routes: usize,
    pub quick: bool,
    /// RFC 3339 time the run started.
    pub date: String,
    pub apiserver_version: String,
    pub command: String,
    pub cpus: usize,
    pub phases: Vec<Phase>,
    pub baseline: Baseline,
    pub steady_state: SteadyState,
    pub controller: ControllerStats,
    /// `--istiod`: Route → Envoy through istiod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy: Option<crate::scenario::envoy::EnvoyResults>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub wall_seconds: f64,
    /// Writes the phase measured: Route creates, updates and deletes; for drift_repair, deletes and edits
    /// of the controller's Services and VirtualServices.
    pub changes: usize,
    /// Client write → effect observed through a watch.
    pub latency_ms: LatencySummary,
    /// What the latency of this phase is measured from and to.
    pub latency_definition: String,
    pub controller_cpu_seconds: f64,
    /// CPU of kube-apiserver, etcd and the benchmark driver itself during the phase (they share the
    /// machine's cores with the controller; this tells whose time a phase is).
    pub apiserver_cpu_seconds: f64,
    pub etcd_cpu_seconds: f64,
    pub driver_cpu_seconds: f64,
    /// Writes the controller made during the phase (from `cfnet_api_writes_total`), if it exports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_api_writes: Option<f64>,
    /// `controller_runtime_reconcile_time_seconds` over the phase, if exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile_time_seconds: Option<HistogramSummary>,
    /// `cfnet_propagation_seconds` over the phase, if exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation_seconds: Option<HistogramSummary>,
    /// Requests the API server served during the phase (all clients: controller, benchmark driver),
    /// by `VERB resource[/subresource]`, from its own `apiserver_request_duration_seconds`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub apiserver_requests: BTreeMap<String, RequestStats>,
    /// Free-form facts about the phase (setup time, object counts checked).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notes: BTreeMap<String, f64>,
    /// Raw latencies for the plot; not written to results.json.
    #[serde(skip)]
    pub samples_ms: Vec<f64>,
}

/// Requests of one kind served by the API server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestStats {
    pub count: f64,
    /// Total time the API server spent serving them.
    pub seconds: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Baseline {
    /// A bare client making exactly the controller's writes for N pre-existing routes.
    pub bulk_add_seconds: f64,
    pub concurrency: usize,
    pub writes: usize,
    /// The controller's bulk_add wall time divided by `bulk_add_seconds`.
    pub ratio: f64,
    /// kube-apiserver and etcd CPU during the baseline's writes.
    pub apiserver_cpu_seconds: f64,
    pub etcd_cpu_seconds: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SteadyState {
    pub seconds: f64,
    /// API writes by the controller per minute while nothing changes.
    pub writes_per_minute: f64,
    /// Where `writes_per_minute` comes from.
    pub source: String,
    /// Object changes seen through the watches per minute (independent of the controller's metrics).
    pub observed_changes_per_minute: f64,
    pub resync_interval_seconds: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ControllerStats {
    pub peak_rss_mib: f64,
    pub cpu_seconds: f64,
    /// Writes per Route during bulk_add (from the controller's metrics), if exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_writes_per_route: Option<f64>,
    /// All writes of the run by `verb/kind`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub writes_by_verb_kind: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile_time_seconds: Option<HistogramSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation_seconds: Option<HistogramSummary>,
}

/// One of the targets and whether this run met it.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub what: String,
    pub goal: String,
    pub measured: String,
    /// `None` when the target does not apply to this N.
    pub met: Option<bool>,
}

impl Results {
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// The targets, evaluated.
    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        if let Some(bulk) = self.phase("bulk_add") {
            let limit = match self.routes {
                1000 => Some(5.0),
                10000 => Some(60.0),
                _ => None,
            };
            out.push(Target {
                what: format!("bulk add of {} routes", self.routes),
                goal: "≤ 5 s at 1,000, ≤ 60 s at 10,000".to_string(),
                measured: format!("{:.2} s", bulk.wall_seconds),
                met: limit.map(|l| bulk.wall_seconds <= l),
            });
        }
        for name in ["add_one_by_one", "update_one_by_one", "delete_one_by_one"] {
            if let Some(p) = self.phase(name) {
                out.push(Target {
                    what: format!("{name} p95"),
                    goal: "≤ 100 ms".to_string(),
                    measured: format!("{:.1} ms", p.latency_ms.p95),
                    met: Some(p.latency_ms.p95 <= 100.0),
                });
            }
        }
        if let Some(p) = self.phase("drift_repair") {
            out.push(Target {
                what: "drift_repair p95 (deleted or edited Service/VirtualService)".to_string(),
                goal: "restored within 1 s (p95)".to_string(),
                measured: format!("{:.1} ms", p.latency_ms.p95),
                met: Some(p.latency_ms.p95 <= 1000.0),
            });
        }
        if self.baseline.bulk_add_seconds > 0.0 {
            out.push(Target {
                what: "bulk add / bare-client limit".to_string(),
                goal: "≤ 1.5".to_string(),
                measured: format!("{:.2}", self.baseline.ratio),
                met: Some(self.baseline.ratio <= 1.5),
            });
        }
        out.push(Target {
            what: "writes per minute at steady state".to_string(),
            goal: "0".to_string(),
            measured: format!("{:.1}", self.steady_state.writes_per_minute),
            met: Some(self.steady_state.writes_per_minute == 0.0),
        });
        out.push(Target {
            what: format!("controller peak RSS at {} routes", self.routes),
            goal: "≤ 64 MiB at 10,000".to_string(),
            measured: format!("{:.1} MiB", self.controller.peak_rss_mib),
            met: (self.routes >= 10000 || self.controller.peak_rss_mib > 64.0)
                .then_some(self.controller.peak_rss_mib <= 64.0),
        });
        out
    }

    /// report.md: the phase table, the targets and the controller's own figures.
    pub fn report_markdown(&self) -> String {
        let mut md = String::new();
        self.phases_md(&mut md);
        self.drift_md(&mut md);
        self.apiserver_md(&mut md);
        self.targets_md(&mut md);
        self.controller_md(&mut md);
        self.envoy_md(&mut md);
        md
    }

    /// `--istiod`: the Route → Envoy phases.
    fn envoy_md(&self, md: &mut String) {
        let Some(envoy) = &self.envoy else {
            return;
        };
        let _ = writeln!(
            md,
            "\n## Envoy (istiod {}, {} routes programmed)\n",
            envoy.istiod_version, envoy.routes
        );
        md.push_str("| phase | changes | wall (s) | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) | istiod CPU s | istiod peak RSS (MiB) | controller CPU s | apiserver CPU s |\n");
        md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for p in &envoy.phases {
            let l = &p.latency_ms;
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {:.2} |",
                p.name,
                p.changes,
                p.wall_seconds,
                l.p50,
                l.p95,
                l.p99,
                l.max,
                p.istiod_cpu_seconds,
                p.istiod_peak_rss_mib,
                p.controller_cpu_seconds,
                p.apiserver_cpu_seconds,
            );
        }
        md.push('\n');
        for p in &envoy.phases {
            let _ = writeln!(md, "- {}: {}", p.name, p.latency_definition);
            for (kind, l) in &p.latency_ms_by_kind {
                let _ = writeln!(
                    md,
                    "  - {kind}: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
                    l.p50, l.p95, l.max
                );
            }
        }
    }

    /// The run and the phase table, with how each latency is measured.
    fn phases_md(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "# cfnet bench — {} routes{}\n",
            self.routes,
            if self.quick { " (quick)" } else { "" }
        );
        let _ = writeln!(md, "- date: {}", self.date);
        let _ = writeln!(md, "- kube-apiserver: {}", self.apiserver_version);
        let _ = writeln!(md, "- command: `{}`", self.command);
        let _ = writeln!(md, "- CPUs: {}\n", self.cpus);
        md.push_str("| phase | changes | wall (s) | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) | CPU s: controller / apiserver / etcd / driver | controller writes | reconcile p95 (ms) |\n");
        md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for p in &self.phases {
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} / {:.2} / {:.2} / {:.2} | {} | {} |",
                p.name,
                p.changes,
                p.wall_seconds,
                p.latency_ms.p50,
                p.latency_ms.p95,
                p.latency_ms.p99,
                p.latency_ms.max,
                p.controller_cpu_seconds,
                p.apiserver_cpu_seconds,
                p.etcd_cpu_seconds,
                p.driver_cpu_seconds,
                p.controller_api_writes
                    .map_or("–".to_string(), |w| format!("{w:.0}")),
                p.reconcile_time_seconds
                    .map_or("–".to_string(), |h| format!("{:.1}", h.p95 * 1e3)),
            );
        }
        md.push_str("\nLatency is measured from the client's write to the watch event that shows the effect:\n\n");
        for p in &self.phases {
            let _ = writeln!(md, "- {}: {}", p.name, p.latency_definition);
        }
    }

    /// drift_repair by kind of disturbance.
    fn drift_md(&self, md: &mut String) {
        if let Some(p) = self.phase("drift_repair") {
            let kinds = [
                ("Service deleted", "service_deleted"),
                ("VirtualService deleted", "virtualservice_deleted"),
                ("VirtualService edited", "virtualservice_edited"),
            ];
            let by_kind: Vec<String> = kinds
                .iter()
                .filter_map(|(label, key)| {
                    let stat = |s: &str| p.notes.get(&format!("{key}_{s}_ms")).copied();
                    Some(format!(
                        "{label} p50 {:.1} / p95 {:.1} / max {:.1} ms",
                        stat("p50")?,
                        stat("p95")?,
                        stat("max")?
                    ))
                })
                .collect();
            if !by_kind.is_empty() {
                let _ = writeln!(md, "\ndrift_repair by kind: {}.", by_kind.join("; "));
            }
        }
    }

    /// Where the API server's time went during bulk_add, when its metrics were read.
    fn apiserver_md(&self, md: &mut String) {
        if let Some(bulk) = self
            .phase("bulk_add")
            .filter(|p| !p.apiserver_requests.is_empty())
        {
            md.push_str("\n## Where the API server's time went during bulk_add\n\n");
            let _ = writeln!(
                md,
                "kube-apiserver used {:.2} CPU s and etcd {:.2} CPU s, against {:.2} s for the controller.\n",
                bulk.apiserver_cpu_seconds, bulk.etcd_cpu_seconds, bulk.controller_cpu_seconds
            );
            md.push_str(
                "| request | count | total server time (s) | mean (ms) |\n|---|---:|---:|---:|\n",
            );
            let mut rows: Vec<_> = bulk
                .apiserver_requests
                .iter()
                .filter(|(_, r)| r.count >= 1.0)
                .collect();
            rows.sort_by(|a, b| b.1.seconds.total_cmp(&a.1.seconds));
            for (what, r) in rows {
                let _ = writeln!(
                    md,
                    "| {what} | {:.0} | {:.2} | {:.2} |",
                    r.count,
                    r.seconds,
                    r.seconds / r.count * 1e3
                );
            }
        }
    }

    /// The targets, the bare-client limit and the steady state.
    fn targets_md(&self, md: &mut String) {
        md.push_str("\n## Targets\n\n| target | goal | measured | met |\n|---|---|---|---|\n");
        for t in self.targets() {
            let met = match t.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "n/a at this N",
            };
            let _ = writeln!(md, "| {} | {} | {} | {} |", t.what, t.goal, t.measured, met);
        }
        md.push_str("\n## Bare-client limit\n\n");
        let _ = writeln!(
            md,
            "A bare client with concurrency {} issued the {} writes the controller must make for {} routes \
             (finalizer JSON patch, server-side apply of one Service and one VirtualService, status merge \
             patch) in {:.2} s (kube-apiserver {:.2} CPU s, etcd {:.2} CPU s); the controller's bulk add \
             took {:.2}× that.",
            self.baseline.concurrency,
            self.baseline.writes,
            self.routes,
            self.baseline.bulk_add_seconds,
            self.baseline.apiserver_cpu_seconds,
            self.baseline.etcd_cpu_seconds,
            self.baseline.ratio
        );
        md.push_str("\n## Steady state\n\n");
        let _ = writeln!(
            md,
            "{:.0} s with {} routes programmed and RESYNC_INTERVAL={} s: {:.1} controller writes per minute \
             ({}), {:.1} object changes per minute seen through watches.",
            self.steady_state.seconds,
            self.routes,
            self.steady_state.resync_interval_seconds,
            self.steady_state.writes_per_minute,
            self.steady_state.source,
            self.steady_state.observed_changes_per_minute
        );
    }

    /// The controller process: memory, CPU, writes, its histograms.
    fn controller_md(&self, md: &mut String) {
        md.push_str("\n## Controller process\n\n");
        let _ = writeln!(
            md,
            "- peak RSS (VmHWM): {:.1} MiB",
            self.controller.peak_rss_mib
        );
        let _ = writeln!(
            md,
            "- CPU (user+system) over the whole run: {:.2} s",
            self.controller.cpu_seconds
        );
        if let Some(w) = self.controller.api_writes_per_route {
            let _ = writeln!(md, "- API writes per route during bulk add: {w:.2}");
        }
        for (k, v) in &self.controller.writes_by_verb_kind {
            let _ = writeln!(md, "- writes {k}: {v:.0}");
        }
        if let Some(h) = self.controller.reconcile_time_seconds {
            let _ = writeln!(
                md,
                "- reconcile time (controller histogram, whole run): {:.0} reconciles, mean {:.2} ms, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
                h.count,
                h.mean * 1e3,
                h.p50 * 1e3,
                h.p95 * 1e3,
                h.p99 * 1e3
            );
        }
        if let Some(h) = self.controller.propagation_seconds {
            let _ = writeln!(
                md,
                "- propagation (controller histogram, whole run): {:.0} samples, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
                h.count,
                h.p50 * 1e3,
                h.p95 * 1e3,
                h.p99 * 1e3
            );
        }
    }
}

/// Writes results.json, report.md and latency.svg into `dir` (created if missing).
pub fn write_all(results: &Results, dir: &Path) -> Result<(), BenchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| BenchError::Output {
            path,
            detail: e.to_string(),
        }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let json_path = dir.join("results.json");
    let json = serde_json::to_string_pretty(results).map_err(|e| BenchError::Output {
        path: json_path.clone(),
        detail: e.to_string(),
    })?;
    std::fs::write(&json_path, json + "\n").map_err(io(&json_path))?;
    let md_path = dir.join("report.md");
    std::fs::write(&md_path, results.report_markdown()).map_err(io(&md_path))?;
    crate::plot::latency_svg(results, &dir.join("latency.svg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Results {
        Results {
            routes: 1000,
            apiserver_version: "v1.20.2".into(),
            phases: PHASES
                .iter()
                .map(|name| Phase {
                    name: name.to_string(),
                    wall_seconds: 1.0,
                    changes: 100,
                    latency_ms: LatencySummary {
                        p50: 10.0,
                        p95: 20.0,
                        p99: 30.0,
                        max: 40.0,
                        mean: 12.0,
                    },
                    samples_ms: vec![10.0, 20.0],
                    ..Phase::default()
                })
                .collect(),
            baseline: Baseline {
                bulk_add_seconds: 0.5,
                concurrency: 16,
                writes: 4000,
                ratio: 2.0,
                ..Baseline::default()
            },
            steady_state: SteadyState {
                writes_per_minute: 0.0,
                ..SteadyState::default()
            },
            controller: ControllerStats {
                peak_rss_mib: 30.0,
                cpu_seconds: 3.0,
                ..ControllerStats::default()
            },
            ..Results::default()
        }
    }

    #[test]
    fn results_json_has_the_keys_the_acceptance_checks_read() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(v["routes"], 1000);
        assert_eq!(v["apiserver_version"], "v1.20.2");
        let names: Vec<&str> = v["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, PHASES);
        for p in v["phases"].as_array().unwrap() {
            assert!(p["wall_seconds"].is_f64());
            assert!(p["changes"].is_u64());
            for k in ["p50", "p95", "p99", "max"] {
                assert!(p["latency_ms"][k].is_f64(), "{k}");
            }
            assert!(p.get("samples_ms").is_none());
        }
        assert!(v["baseline"]["bulk_add_seconds"].is_f64());
        assert!(v["steady_state"]["writes_per_minute"].is_f64());
        assert!(v["controller"]["peak_rss_mib"].is_f64());
        assert!(v["controller"]["cpu_seconds"].is_f64());
    }

    #[test]
    fn targets_are_judged() {
        let t = sample().targets();
        let bulk = t
            .iter()
            .find(|t| t.what.starts_with("bulk add of"))
            .unwrap();
        assert_eq!(bulk.met, Some(true));
        let ratio = t.iter().find(|t| t.what.contains("limit")).unwrap();
        assert_eq!(ratio.met, Some(false));
        let rss = t.iter().find(|t| t.what.contains("RSS")).unwrap();
        assert_eq!(rss.met, None, "RSS target is for 10,000 routes");
        let mut big = sample();
        big.routes = 10000;
        big.phases[0].wall_seconds = 61.0;
        let t = big.targets();
        assert_eq!(t[0].met, Some(false));
    }

    #[test]
    fn drift_repair_target_is_one_second_at_p95() {
        let drift = |r: &Results| {
            r.targets()
                .into_iter()
                .find(|t| t.what.starts_with("drift_repair"))
                .unwrap()
        };
        let mut r = sample();
        let t = drift(&r);
        assert_eq!(
            (t.goal.as_str(), t.measured.as_str(), t.met),
            ("restored within 1 s (p95)", "20.0 ms", Some(true))
        );
        let i = PHASES.iter().position(|n| *n == "drift_repair").unwrap();
        r.phases[i].latency_ms.p95 = 1000.0;
        assert_eq!(drift(&r).met, Some(true));
        r.phases[i].latency_ms.p95 = 1000.1;
        assert_eq!(drift(&r).met, Some(false));
        assert!(
            r.report_markdown()
                .contains("| drift_repair p95 (deleted or edited Service/VirtualService) | restored within 1 s (p95) | 1000.1 ms | **no** |")
        );
    }

    #[test]
    fn report_has_a_row_per_phase_and_the_targets() {
        let md = sample().report_markdown();
        for name in PHASES {
            assert!(md.contains(&format!("| {name} |")), "{name}");
        }
        assert!(md.contains("## Targets"));
        assert!(md.contains("**no**"));
    }

    #[test]
    fn writes_all_three_files() {
        let dir = tempfile::tempdir().unwrap();
        write_all(&sample(), dir.path()).unwrap();
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("results.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(json["routes"], 1000);
        assert!(
            std::fs::read_to_string(dir.path().join("report.md"))
                .unwrap()
                .contains("bulk_add")
        );
        let svg = std::fs::read_to_string(dir.path().join("latency.svg")).unwrap();
        assert!(
            svg.starts_with("<svg") || svg.contains("<svg"),
            "{svg:.200}"
        );
    }
}
