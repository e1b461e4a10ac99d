use std::path::PathBuf;

use super::*;

/// A scrape with `writes` controller writes (two label sets) and one reconcile histogram.
fn controller_scrape(writes: f64, fast: f64) -> Scrape {
    crate::prom::parse(&format!(
        "cfnet_api_writes_total{{verb=\"apply\",kind=\"Service\"}} {half}\n\
         cfnet_api_writes_total{{verb=\"patch\",kind=\"Route\",reason=\"conflict\"}} {half}\n\
         controller_runtime_reconcile_time_seconds_bucket{{controller=\"route\",le=\"0.01\"}} {fast}\n\
         controller_runtime_reconcile_time_seconds_bucket{{controller=\"route\",le=\"+Inf\"}} {fast}\n\
         controller_runtime_reconcile_time_seconds_sum{{controller=\"route\"}} 0.001\n\
         controller_runtime_reconcile_time_seconds_count{{controller=\"route\"}} {fast}\n",
        half = writes / 2.0
    ))
    .unwrap()
}

fn apiserver_scrape(patches: f64, seconds: f64) -> Scrape {
    crate::prom::parse(&format!(
        "apiserver_request_duration_seconds_count{{verb=\"PATCH\",resource=\"routes\",subresource=\"status\"}} {patches}\n\
         apiserver_request_duration_seconds_sum{{verb=\"PATCH\",resource=\"routes\",subresource=\"status\"}} {seconds}\n\
         apiserver_request_duration_seconds_count{{verb=\"WATCH\",resource=\"routes\"}} 9\n"
    ))
    .unwrap()
}

fn mark(at: Instant, metrics: Option<Scrape>, apiserver: Option<Scrape>, cpu: f64) -> Mark {
    Mark {
        at,
        metrics,
        apiserver_metrics: apiserver,
        controller_cpu: cpu,
        apiserver_cpu: 2.0 * cpu,
        etcd_cpu: 0.5 * cpu,
        driver_cpu: 0.1 * cpu,
    }
}

#[test]
fn a_phase_is_the_difference_of_its_two_marks() {
    let t = Instant::now();
    let start = mark(
        t,
        Some(controller_scrape(100.0, 10.0)),
        Some(apiserver_scrape(5.0, 0.5)),
        1.0,
    );
    let end = mark(
        t,
        Some(controller_scrape(150.0, 30.0)),
        Some(apiserver_scrape(7.0, 0.75)),
        3.0,
    );
    let samples = [Duration::from_millis(10), Duration::from_millis(30)];
    let p = phase(
        ("x", "def"),
        (&start, &end),
        Duration::from_secs(2),
        &samples,
    );
    assert_eq!(p.changes, 2);
    assert_eq!(p.wall_seconds, 2.0);
    assert_eq!(p.controller_api_writes, Some(50.0));
    assert_eq!(p.controller_cpu_seconds, 2.0);
    assert_eq!(p.apiserver_cpu_seconds, 4.0);
    assert_eq!(p.reconcile_time_seconds.map(|h| h.count), Some(20.0));
    assert_eq!(p.latency_ms.max, 30.0);
    assert_eq!(p.samples_ms, [10.0, 30.0]);
    assert_eq!(
        p.apiserver_requests.into_iter().collect::<Vec<_>>(),
        [(
            "PATCH routes/status".to_string(),
            RequestStats {
                count: 2.0,
                seconds: 0.25
            }
        )],
        "WATCH requests are left out"
    );
}

#[test]
fn without_the_controllers_metrics_writes_are_unknown_not_zero() {
    let t = Instant::now();
    let none = mark(t, None, None, 0.0);
    let p = phase(("x", "def"), (&none, &none), Duration::ZERO, &[]);
    assert_eq!(p.controller_api_writes, None);
    assert!(p.apiserver_requests.is_empty());
    // Before the controller started, everything it wrote since counts.
    let started = mark(t, Some(controller_scrape(10.0, 1.0)), None, 0.0);
    let p = phase(("x", "def"), (&none, &started), Duration::ZERO, &[]);
    assert_eq!(p.controller_api_writes, Some(10.0));
}

fn named(name: &str, wall: f64, writes: Option<f64>) -> Phase {
    Phase {
        name: name.into(),
        wall_seconds: wall,
        controller_api_writes: writes,
        ..Phase::default()
    }
}

#[test]
fn results_order_the_phases_and_relate_bulk_add_to_the_bare_client() {
    let config = Config::new(200, true, PathBuf::from("out"), PathBuf::from("cfnet"));
    let finished = Finished {
        config: &config,
        date: "d".into(),
        apiserver_version: "v".into(),
        cpus: 2,
        phases: vec![
            named("steady_state", 6.0, Some(0.0)),
            named("bulk_add", 10.0, Some(1000.0)),
            named("drift_repair", 1.0, Some(300.0)),
        ],
        steady_state: SteadyState::default(),
        final_metrics: Some(controller_scrape(2000.0, 5.0)),
        final_sample: ProcessSample {
            cpu_seconds: 4.0,
            rss_bytes: 0,
            peak_rss_bytes: 20 * 1024 * 1024,
        },
        baseline: BaselineRun {
            seconds: 8.0,
            writes: 800,
            apiserver_cpu_seconds: 1.0,
            etcd_cpu_seconds: 0.5,
        },
    };
    let r = results(finished);
    let order: Vec<&str> = r.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(order, ["bulk_add", "drift_repair", "steady_state"]);
    assert_eq!(r.controller.api_writes_per_route, Some(5.0));
    assert_eq!(r.baseline.ratio, 1.25);
    assert_eq!(r.baseline.concurrency, config.concurrency);
    assert_eq!(r.controller.peak_rss_mib, 20.0);
    assert_eq!(
        r.controller.writes_by_verb_kind,
        BTreeMap::from([
            ("apply/Service".to_string(), 1000.0),
            ("patch/Route".to_string(), 1000.0)
        ]),
        "summed over the reason label"
    );
    assert_eq!(
        r.controller.reconcile_time_seconds.map(|h| h.count),
        Some(5.0)
    );
    assert_eq!((r.routes, r.quick, r.cpus), (200, true, 2));
}

#[test]
fn a_baseline_that_took_no_time_gives_no_ratio() {
    let config = Config::new(1, false, PathBuf::new(), PathBuf::new());
    let r = results(Finished {
        config: &config,
        date: String::new(),
        apiserver_version: String::new(),
        cpus: 1,
        phases: vec![named("bulk_add", 3.0, None)],
        steady_state: SteadyState::default(),
        final_metrics: None,
        final_sample: ProcessSample::default(),
        baseline: BaselineRun {
            seconds: 0.0,
            writes: 0,
            apiserver_cpu_seconds: 0.0,
            etcd_cpu_seconds: 0.0,
        },
    });
    assert_eq!(r.baseline.ratio, 0.0);
    assert_eq!(r.controller.api_writes_per_route, None);
    assert!(r.controller.writes_by_verb_kind.is_empty());
}
