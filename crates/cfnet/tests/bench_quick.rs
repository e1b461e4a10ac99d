//! `cfnet bench --quick --istiod` end to end, so that the benchmark cannot rot: a real local control plane,
//! the controller as a separate process of this binary, every phase, and the Route → Envoy phases with istiod. It checks that the run succeeds and that
//! results.json holds the documented keys and the right change counts; it judges no timings.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

use std::process::Command;

const PHASES: [(&str, u64); 8] = [
    ("bulk_add", 200),
    ("add_one_by_one", 100),
    ("update_one_by_one", 100),
    ("delete_one_by_one", 100),
    ("bulk_delete", 200),
    ("shared_fqdn_updates", 100),
    // 50 routes × (Service deleted, VirtualService deleted, VirtualService edited), each repaired.
    ("drift_repair", 150),
    ("steady_state", 0),
];

#[test]
fn bench_quick_runs_every_phase_with_the_right_counts() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cfnet"))
        .args(["bench", "--quick", "--istiod", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let log = std::fs::read_to_string(out.path().join("controller.log")).unwrap_or_default();
    assert!(
        output.status.success(),
        "cfnet bench --quick --istiod failed: {}\n--- stderr ---\n{stderr}\n--- controller.log (tail) ---\n{}",
        output.status,
        log.lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["routes"], 200);
    assert!(
        results["apiserver_version"]
            .as_str()
            .unwrap()
            .starts_with('v')
    );
    let phases = results["phases"].as_array().unwrap();
    assert_eq!(phases.len(), PHASES.len());
    for (phase, (name, changes)) in phases.iter().zip(PHASES) {
        assert_eq!(phase["name"], name);
        assert_eq!(phase["changes"], changes, "{name}");
        assert!(phase["wall_seconds"].as_f64().unwrap() > 0.0, "{name}");
        for k in ["p50", "p95", "p99", "max"] {
            let v = phase["latency_ms"][k].as_f64().unwrap();
            assert!(
                if changes > 0 { v > 0.0 } else { v == 0.0 },
                "{name} {k} = {v}"
            );
        }
    }
    assert!(results["baseline"]["bulk_add_seconds"].as_f64().unwrap() > 0.0);
    // Per route: finalizer patch, Service and VirtualService create, status patch, Created Event.
    assert_eq!(results["baseline"]["writes"], 1000);
    // Route → Envoy: the cold start over the 200 routes, 20 changes through the controller and by a bare
    // client, each with istiod's CPU and memory.
    let envoy = results["envoy"]["phases"].as_array().unwrap();
    let names: Vec<(&str, u64)> = envoy
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["changes"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("envoy_cold_start", 200),
            ("envoy_changes", 20),
            ("envoy_floor", 20)
        ]
    );
    for p in envoy {
        assert!(p["latency_ms"]["max"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["istiod_peak_rss_mib"].as_f64().unwrap() > 0.0, "{p}");
    }
    assert!(
        results["steady_state"]["writes_per_minute"]
            .as_f64()
            .is_some()
    );
    assert!(results["controller"]["peak_rss_mib"].as_f64().unwrap() > 0.0);
    assert!(results["controller"]["cpu_seconds"].as_f64().unwrap() > 0.0);

    let drift = phases.iter().find(|p| p["name"] == "drift_repair").unwrap();
    assert_eq!(drift["notes"]["routes"], 50.0);

    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(report.contains("| bulk_add |") && report.contains("## Targets"));
    assert!(report.contains("| drift_repair |") && report.contains("restored within 1 s (p95)"));
    assert!(report.contains("| envoy_changes |") && report.contains("## Envoy"));
    let svg = std::fs::read_to_string(out.path().join("latency.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("shared_fqdn_updates"));
}
