//! The phases, run against one control plane and one controller process.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use cfnet_api::Route;
use cfnet_testenv::ControlPlane;
use cfnet_translate::{service_name, virtual_service_name};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::error::BenchError;
use crate::observe::{Kind, Observer, View, World, virtual_service_resource};
use crate::process::{ControllerProcess, ControllerSettings};
use crate::prom::Snapshot;
use crate::results::{
    Baseline, ControllerStats, PHASES, Phase, RequestStats, Results, SteadyState,
};
use crate::stats::LatencySummary;
use crate::{Config, GATEWAY, baseline, procfs, routes};

const RECONCILE_TIME: &str = "controller_runtime_reconcile_time_seconds";
const PROPAGATION: &str = "cfnet_propagation_seconds";
const API_WRITES: &str = "cfnet_api_writes_total";
/// How long one one-at-a-time change may take before the phase fails.
const ONE_CHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Route creations in flight while setting up a phase (not measured).
const CREATE_CONCURRENCY: usize = 16;
/// The phase that disturbs the controller's objects behind its back and times their repair.
const DRIFT_REPAIR: &str = "drift_repair";
/// How long one drift repair may take before the phase fails. A repair driven by the watches takes
/// milliseconds; one left to the periodic resync takes up to RESYNC_INTERVAL (30 s in full runs), so a
/// slower repair is not what this phase measures and fails it rather than being counted.
const DRIFT_REPAIR_LIMIT: Duration = Duration::from_secs(10);
/// Field manager of the benchmark's edits of the controller's VirtualServices (not the controller's).
const DRIFT_MANAGER: &str = "cfnet-bench-drift";

/// A point in time with the counters every phase is measured between.
struct Mark {
    at: Instant,
    metrics: Option<Snapshot>,
    apiserver_metrics: Option<Snapshot>,
    controller_cpu: f64,
    apiserver_cpu: f64,
    etcd_cpu: f64,
    driver_cpu: f64,
}

struct Run<'a> {
    config: &'a Config,
    client: Client,
    namespace: String,
    routes: Api<Route>,
    observer: Observer,
    controller: Option<ControllerProcess>,
    etcd_pid: u32,
    apiserver_pid: u32,
}

/// Runs every phase and the baseline; the controller is stopped when this returns.
pub async fn run(control_plane: &ControlPlane, config: &Config) -> Result<Results, BenchError> {
    let date = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let client = control_plane.client();
    let namespace = control_plane
        .create_namespace("cfnet-bench")
        .await
        .map_err(|e| BenchError::ControlPlane {
            detail: e.to_string(),
        })?;
    let observer = Observer::start(&client, &namespace).await?;
    let (etcd_pid, apiserver_pid) = control_plane.pids();
    let mut run = Run {
        config,
        routes: Api::namespaced(client.clone(), &namespace),
        client: client.clone(),
        namespace,
        observer,
        controller: None,
        etcd_pid,
        apiserver_pid,
    };
    let settings = ControllerSettings {
        exe: config.controller_exe.clone(),
        kubeconfig: control_plane.kubeconfig_path().to_path_buf(),
        gateway: GATEWAY.to_string(),
        resync_seconds: config.resync_seconds,
        workers: config.concurrency,
        log: config.out.join("controller.log"),
    };
    std::fs::create_dir_all(&config.out).map_err(|e| BenchError::Output {
        path: config.out.clone(),
        detail: e.to_string(),
    })?;

    let mut phases = Vec::new();
    let outcome = run.phases(&settings, &mut phases).await;
    // Stop the controller whatever happened, reading its final CPU and peak RSS first.
    let (final_metrics, final_sample) = match run.controller.take() {
        Some(controller) => {
            let metrics = controller.scrape().await.ok();
            (metrics, controller.stop().await.ok())
        }
        None => (None, None),
    };
    let steady_state = outcome?;
    let final_sample = final_sample.ok_or_else(|| BenchError::Proc {
        pid: 0,
        detail: "no final sample of the controller".to_string(),
    })?;

    let baseline_ns = control_plane
        .create_namespace("cfnet-bench-baseline")
        .await
        .map_err(|e| BenchError::ControlPlane {
            detail: e.to_string(),
        })?;
    tracing::info!(
        routes = config.routes,
        concurrency = config.concurrency,
        "bare-client baseline"
    );
    let base = tokio::time::timeout(
        baseline::timeout(config.routes),
        baseline::run(
            &client,
            &baseline_ns,
            config.routes,
            config.concurrency,
            GATEWAY,
            (etcd_pid, apiserver_pid),
        ),
    )
    .await
    .map_err(|_| BenchError::Baseline {
        detail: format!(
            "did not finish within {:?}",
            baseline::timeout(config.routes)
        ),
    })??;

    phases.sort_by_key(|p: &Phase| PHASES.iter().position(|n| *n == p.name));
    let bulk_seconds = phases
        .iter()
        .find(|p| p.name == "bulk_add")
        .map(|p| p.wall_seconds)
        .unwrap_or(0.0);
    let api_writes_per_route = phases
        .iter()
        .find(|p| p.name == "bulk_add")
        .and_then(|p| p.controller_api_writes)
        .map(|w| w / config.routes.max(1) as f64);
    let controller = ControllerStats {
        peak_rss_mib: final_sample.peak_rss_mib(),
        cpu_seconds: final_sample.cpu_seconds,
        api_writes_per_route,
        writes_by_verb_kind: final_metrics
            .as_ref()
            .map(|m| m.sum_by(API_WRITES, &["verb", "kind"]))
            .unwrap_or_default(),
        reconcile_time_seconds: final_metrics
            .as_ref()
            .and_then(|m| m.histogram(RECONCILE_TIME))
            .map(|h| h.summary()),
        propagation_seconds: final_metrics
            .as_ref()
            .and_then(|m| m.histogram(PROPAGATION))
            .map(|h| h.summary()),
    };
    Ok(Results {
        routes: config.routes,
        quick: config.quick,
        date,
        apiserver_version: control_plane.apiserver_version().to_string(),
        command: config.command.clone(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        phases,
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
        steady_state,
        controller,
    })
}

impl Run<'_> {
    async fn phases(
        &mut self,
        settings: &ControllerSettings,
        phases: &mut Vec<Phase>,
    ) -> Result<SteadyState, BenchError> {
        phases.push(self.bulk_add(settings).await?);
        let (steady_phase, steady) = self.steady_state().await?;
        phases.push(steady_phase);
        phases.push(self.drift_repair().await?);
        phases.extend(self.one_by_one().await?);
        phases.push(self.bulk_delete().await?);
        phases.push(self.shared_fqdn_updates().await?);
        Ok(steady)
    }

    fn n(&self) -> usize {
        self.config.routes
    }

    fn bulk_timeout(&self, count: usize) -> Duration {
        Duration::from_secs(120 + count as u64 / 20)
    }

    async fn mark(&self) -> Result<Mark, BenchError> {
        let cpu = |pid: u32| procfs::sample(pid).map(|s| s.cpu_seconds).unwrap_or(0.0);
        let (metrics, controller_cpu) = match &self.controller {
            Some(c) => (Some(c.scrape().await?), c.sample()?.cpu_seconds),
            None => (None, 0.0),
        };
        let apiserver_metrics = self.apiserver_metrics().await;
        Ok(Mark {
            at: Instant::now(),
            metrics,
            apiserver_metrics,
            controller_cpu,
            apiserver_cpu: cpu(self.apiserver_pid),
            etcd_cpu: cpu(self.etcd_pid),
            driver_cpu: cpu(std::process::id()),
        })
    }

    /// kube-apiserver's own /metrics; `None` (with a warning) if it cannot be read: the attribution of
    /// API server time is extra information, not a measured result.
    async fn apiserver_metrics(&self) -> Option<Snapshot> {
        let request = http::Request::get("/metrics").body(Vec::new()).ok()?;
        match self.client.request_text(request).await {
            Ok(text) => Snapshot::parse(&text)
                .inspect_err(|e| tracing::warn!(error = %e, "cannot parse kube-apiserver /metrics"))
                .ok(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read kube-apiserver /metrics");
                None
            }
        }
    }

    /// Waits on the observer, failing early if the controller dies.
    async fn wait<R>(
        &self,
        phase: &str,
        timeout: Duration,
        what: &str,
        check: impl FnMut(&World) -> Option<R>,
    ) -> Result<R, BenchError> {
        let died = async {
            match &self.controller {
                Some(c) => loop {
                    if let Err(e) = c.check_running(phase) {
                        return e;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                },
                None => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            r = self.observer.wait(phase, timeout, what, check) => r,
            e = died => Err(e),
        };
        result.map_err(|e| match e {
            BenchError::Timeout {
                phase,
                what,
                timeout,
                observed,
                ..
            } => BenchError::Timeout {
                phase,
                what,
                timeout,
                observed,
                log: self.config.out.join("controller.log").display().to_string(),
            },
            other => other,
        })
    }

    async fn create_routes(&self, phase: &str, routes: &[Route]) -> Result<(), BenchError> {
        futures::stream::iter(routes)
            .map(|route| {
                let api = self.routes.clone();
                async move {
                    api.create(&PostParams::default(), route)
                        .await
                        .map_err(BenchError::kube(format!(
                            "{phase}: creating route {}/{}",
                            self.namespace,
                            route.name_any()
                        )))
                }
            })
            .buffer_unordered(CREATE_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    /// Deletes routes one request each, `CREATE_CONCURRENCY` in flight (what `kubectl delete -l` does;
    /// one deletecollection of 10,000 finalized routes outlives the API server's request timeout), and
    /// returns when each delete was sent.
    async fn delete_routes(
        &self,
        phase: &str,
        names: &[String],
    ) -> Result<BTreeMap<String, Instant>, BenchError> {
        futures::stream::iter(names)
            .map(|name| {
                let api = self.routes.clone();
                async move {
                    let at = Instant::now();
                    api.delete(name, &DeleteParams::default())
                        .await
                        .map_err(BenchError::kube(format!(
                            "{phase}: deleting route {}/{name}",
                            self.namespace
                        )))?;
                    Ok::<_, BenchError>((name.clone(), at))
                }
            })
            .buffer_unordered(CREATE_CONCURRENCY)
            .try_collect()
            .await
    }

    fn phase(
        &self,
        name: &str,
        start: &Mark,
        end: &Mark,
        wall: Duration,
        samples: &[Duration],
        definition: &str,
    ) -> Phase {
        let histogram = |metric: &str| {
            let after = end.metrics.as_ref()?.histogram(metric)?;
            let before = start.metrics.as_ref().and_then(|m| m.histogram(metric));
            Some(after.since(before.as_ref()).summary())
        };
        let writes = end.metrics.as_ref().filter(|m| m.has(API_WRITES)).map(|m| {
            m.sum(API_WRITES, &[])
                - start
                    .metrics
                    .as_ref()
                    .map_or(0.0, |s| s.sum(API_WRITES, &[]))
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
            reconcile_time_seconds: histogram(RECONCILE_TIME),
            propagation_seconds: histogram(PROPAGATION),
            apiserver_requests: apiserver_requests(start, end),
            notes: BTreeMap::new(),
            samples_ms: samples.iter().map(|d| d.as_secs_f64() * 1e3).collect(),
        }
    }

    /// 1. N routes exist before the controller starts; time from its start until every Service and
    ///    VirtualService exists and every Route is Ready.
    async fn bulk_add(&mut self, settings: &ControllerSettings) -> Result<Phase, BenchError> {
        const PHASE: &str = "bulk_add";
        let n = self.n();
        let ns = self.namespace.clone();
        let routes: Vec<Route> = (0..n)
            .map(|i| routes::route(&ns, "initial", i, &routes::path("initial", "", i)))
            .collect();
        let setup = Instant::now();
        tracing::info!(
            routes = n,
            "bulk_add: creating routes before the controller starts"
        );
        self.create_routes(PHASE, &routes).await?;
        self.wait(
            PHASE,
            self.bulk_timeout(n),
            "the routes to be listed",
            |w| (w.routes.len() == n).then_some(()),
        )
        .await?;
        let setup_seconds = setup.elapsed().as_secs_f64();
        if !self.observer.world().virtual_services.is_empty() {
            return Err(BenchError::Count {
                phase: PHASE.into(),
                detail: "VirtualServices exist before the controller started".into(),
            });
        }

        let start = self.mark().await?;
        tracing::info!(exe = %settings.exe.display(), "bulk_add: starting the controller");
        let controller = ControllerProcess::spawn(settings)?;
        let t0 = controller.started_at;
        self.controller = Some(controller);
        self.wait(
            PHASE,
            self.bulk_timeout(n),
            "every Service and VirtualService to exist and every Route to be Ready",
            |w| {
                (w.services.len() >= n && w.virtual_services.len() >= n && w.routes.flagged >= n)
                    .then_some(())
            },
        )
        .await?;
        let end = self.mark().await?;

        let mut samples = Vec::with_capacity(n);
        {
            let w = self.observer.world();
            check_exact(PHASE, &w, n, n, n)?;
            for route in &routes {
                samples.push(programmed_at(PHASE, &w, route)?.saturating_duration_since(t0));
            }
        }
        let wall = samples.iter().max().copied().unwrap_or_default();
        let mut phase = self.phase(
            PHASE,
            &start,
            &end,
            wall,
            &samples,
            "controller process start → the route's Service, VirtualService (with its path) and Ready=True \
             all observed",
        );
        phase
            .notes
            .insert("route_create_seconds".into(), setup_seconds);
        Ok(phase)
    }

    /// 8. Nothing changes; count the controller's writes (its metrics) and the object changes (watches).
    async fn steady_state(&self) -> Result<(Phase, SteadyState), BenchError> {
        const PHASE: &str = "steady_state";
        let seconds = self.config.steady_seconds;
        let start = self.mark().await?;
        let events_before = self.observer.world().events();
        tracing::info!(seconds, "steady_state: idle");
        let deadline = start.at + Duration::from_secs(seconds);
        while Instant::now() < deadline {
            if let Some(c) = &self.controller {
                c.check_running(PHASE)?;
            }
            tokio::time::sleep_until(deadline.min(Instant::now() + Duration::from_millis(500)))
                .await;
        }
        let end = self.mark().await?;
        let events = self.observer.world().events() - events_before;
        let minutes = (end.at - start.at).as_secs_f64() / 60.0;
        let mut phase = self.phase(
            PHASE,
            &start,
            &end,
            end.at - start.at,
            &[],
            "no changes are made",
        );
        let (writes, source) = match phase.controller_api_writes {
            Some(w) => (w, format!("controller metric {API_WRITES}")),
            None => (
                events as f64,
                "watch events (the controller exports no write counter)".to_string(),
            ),
        };
        {
            let w = self.observer.world();
            check_exact(PHASE, &w, self.n(), self.n(), self.n())?;
        }
        phase.notes.insert("watch_events".into(), events as f64);
        Ok((
            phase,
            SteadyState {
                seconds: minutes * 60.0,
                writes_per_minute: writes / minutes,
                source,
                observed_changes_per_minute: events as f64 / minutes,
                resync_interval_seconds: self.config.resync_seconds,
            },
        ))
    }

    /// 7. With the N routes programmed, for `drift_routes` of them, one at a time: delete each route's
    ///    Service, then each one's VirtualService, then edit each VirtualService's spec as another field
    ///    manager, each time waiting until the watches show the controller's repair.
    async fn drift_repair(&self) -> Result<Phase, BenchError> {
        const PHASE: &str = DRIFT_REPAIR;
        let n = self.n();
        let count = self.config.drift_routes.min(n);
        let ns = &self.namespace;
        // Spread over the N routes; each has its own FQDN, so its own Service and VirtualService.
        let routes: Vec<Route> = (0..count)
            .map(|j| {
                let i = j * n / count;
                routes::route(ns, "initial", i, &routes::path("initial", "", i))
            })
            .collect();
        let services: Api<Service> = Api::namespaced(self.client.clone(), ns);
        let vss: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), ns, &virtual_service_resource());
        let resync = self.config.resync_seconds;
        tracing::info!(routes = count, resync_seconds = resync, "drift_repair");
        let start = self.mark().await?;
        // One kind at a time over all the routes, so that every object is disturbed long after the
        // controller last wrote it, as drift happens in practice. (An edit landing within milliseconds of
        // the controller's own apply of the same object tests a race in the controller's cache, not
        // repair latency; that belongs in the controller's tests.)
        // (a) Service deleted → re-created (a new uid).
        let service_deleted = self
            .drift_delete(
                &routes,
                "Service",
                &services,
                service_of,
                |w| &w.services,
                |s| &s.uid,
            )
            .await?;
        // (b) VirtualService deleted → re-created (a new uid).
        let vs_deleted = self
            .drift_delete(
                &routes,
                "VirtualService",
                &vss,
                vs_of,
                |w| &w.virtual_services,
                |v| &v.uid,
            )
            .await?;
        // (c) VirtualService spec edited by another manager (every http entry replaced by one to the
        //     destination "evil") → the controller's spec observed again. `changes` tells "edited and
        //     restored" from "edit not seen yet": the watch only keeps the latest view.
        let edit = serde_json::json!({
            "spec": {"http": [{"route": [{"destination": {"host": "evil"}}]}]}
        });
        let manager = PatchParams {
            field_manager: Some(DRIFT_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let mut vs_edited = Vec::with_capacity(count);
        for route in &routes {
            let (name, svc, vs) = (route.name_any(), service_of(route), vs_of(route));
            let before = self
                .observer
                .world()
                .virtual_services
                .get(&vs)
                .cloned()
                .ok_or_else(|| {
                    drift_missing(format!("VirtualService {ns}/{vs} of route {name}"))
                })?;
            let edited = vss
                .patch(&vs, &manager, &Patch::Merge(&edit))
                .await
                .map_err(BenchError::kube(format!(
                    "{PHASE}: editing VirtualService {ns}/{vs} of route {name}"
                )))?;
            let t = Instant::now();
            if edited.data["spec"]["http"][0]["route"][0]["destination"]["host"].as_str()
                != Some("evil")
            {
                return Err(BenchError::Count {
                    phase: PHASE.into(),
                    detail: format!(
                        "the edit of VirtualService {ns}/{vs} did not take: its spec is {}",
                        edited.data["spec"]
                    ),
                });
            }
            let what = format!(
                "edited VirtualService {ns}/{vs} of route {name} to be restored to the controller's spec \
                 (path {} → {svc})",
                route.spec.path()
            );
            vs_edited.push(
                self.repaired(t, &what, |w| {
                    w.virtual_services
                        .get(&vs)
                        .filter(|s| s.view == before.view && s.changes >= before.changes + 2)
                        .map(|s| s.at)
                })
                .await?,
            );
        }
        let wall = start.at.elapsed();
        self.wait(
            PHASE,
            ONE_CHANGE_TIMEOUT,
            "every route to be Ready after the drift",
            |w| (w.routes.flagged == n).then_some(()),
        )
        .await?;
        let end = self.mark().await?;
        check_exact(PHASE, &self.observer.world(), n, n, n)?;

        let samples: Vec<Duration> = [&service_deleted, &vs_deleted, &vs_edited]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let mut phase = self.phase(
            PHASE,
            &start,
            &end,
            wall,
            &samples,
            "one at a time, first over all the routes, then again, then again: a route's Service deleted → \
             a re-created Service (new uid) observed; its VirtualService deleted → a re-created one \
             observed; its VirtualService's spec edited by another field manager (destination \"evil\") → \
             the controller's spec observed again; each from the return of the delete or patch call",
        );
        phase.notes.insert("routes".into(), count as f64);
        phase
            .notes
            .insert("resync_interval_seconds".into(), resync as f64);
        phase.notes.insert(
            "repair_limit_seconds".into(),
            DRIFT_REPAIR_LIMIT.as_secs_f64(),
        );
        for (what, samples) in [
            ("service_deleted", &service_deleted),
            ("virtualservice_deleted", &vs_deleted),
            ("virtualservice_edited", &vs_edited),
        ] {
            let l = LatencySummary::of(samples);
            for (stat, v) in [("p50", l.p50), ("p95", l.p95), ("max", l.max)] {
                phase.notes.insert(format!("{what}_{stat}_ms"), v);
            }
        }
        Ok(phase)
    }

    /// `drift_repair` (a) or (b): for each route in turn, deletes its `kind` object (named
    /// `object(route)`, observed in `seen(world)`) through `api`, then waits until the watches show it
    /// re-created (a new uid). Returns each repair's latency, from the return of the delete call.
    async fn drift_delete<K, T: View>(
        &self,
        routes: &[Route],
        kind: &str,
        api: &Api<K>,
        object: fn(&Route) -> String,
        seen: fn(&World) -> &Kind<T>,
        uid: fn(&T) -> &str,
    ) -> Result<Vec<Duration>, BenchError>
    where
        K: Clone + DeserializeOwned + Debug,
    {
        let ns = &self.namespace;
        let mut latencies = Vec::with_capacity(routes.len());
        for route in routes {
            let (name, object) = (route.name_any(), object(route));
            let old = seen(&self.observer.world())
                .get(&object)
                .map(|s| uid(&s.view).to_string())
                .ok_or_else(|| drift_missing(format!("{kind} {ns}/{object} of route {name}")))?;
            api.delete(&object, &DeleteParams::default())
                .await
                .map_err(BenchError::kube(format!(
                    "{DRIFT_REPAIR}: deleting {kind} {ns}/{object} of route {name}"
                )))?;
            let t = Instant::now();
            let what = format!("deleted {kind} {ns}/{object} of route {name} to be re-created");
            latencies.push(
                self.repaired(t, &what, |w| {
                    seen(w)
                        .get(&object)
                        .filter(|s| uid(&s.view) != old)
                        .map(|s| s.at)
                })
                .await?,
            );
        }
        Ok(latencies)
    }

    /// Waits until `repaired` finds in the watches the controller's repair of a drift made by a call that
    /// returned at `t`, and returns the latency. A repair slower than `DRIFT_REPAIR_LIMIT` fails the phase.
    async fn repaired(
        &self,
        t: Instant,
        what: &str,
        repaired: impl FnMut(&World) -> Option<Instant>,
    ) -> Result<Duration, BenchError> {
        let what = format!(
            "{what} (a repair slower than {DRIFT_REPAIR_LIMIT:?} is not driven by the watches; RESYNC_INTERVAL is {} s)",
            self.config.resync_seconds
        );
        let at = self
            .wait(DRIFT_REPAIR, DRIFT_REPAIR_LIMIT, &what, repaired)
            .await?;
        Ok(at.saturating_duration_since(t))
    }

    /// 2–4. Add, update the path of, and delete `one_by_one` routes, one at a time, each waiting for its
    /// VirtualService.
    async fn one_by_one(&self) -> Result<Vec<Phase>, BenchError> {
        let k = self.config.one_by_one;
        let n = self.n();
        let ns = &self.namespace;
        let routes: Vec<Route> = (0..k)
            .map(|i| routes::route(ns, "the100", i, &routes::path("the100", "", i)))
            .collect();
        let mut out = Vec::new();

        const ADD: &str = "add_one_by_one";
        tracing::info!(routes = k, "add_one_by_one");
        let start = self.mark().await?;
        let mut samples = Vec::with_capacity(k);
        for route in &routes {
            let (name, vs, path) = (route.name_any(), vs_of(route), route.spec.path());
            samples.push(
                self.change(
                    ADD,
                    self.routes.create(&PostParams::default(), route),
                    format!("{ADD}: creating route {ns}/{name}"),
                    &format!("VirtualService {vs} of route {name}"),
                    |w| vs_with_path(w, &vs, path),
                )
                .await?,
            );
        }
        let wall = start.at.elapsed();
        self.wait(
            ADD,
            ONE_CHANGE_TIMEOUT,
            "the added routes to be Ready",
            |w| (w.routes.flagged == n + k).then_some(()),
        )
        .await?;
        let end = self.mark().await?;
        check_exact(ADD, &self.observer.world(), n + k, n + k, n + k)?;
        out.push(self.phase(
            ADD,
            &start,
            &end,
            wall,
            &samples,
            "route create → its VirtualService observed",
        ));

        const UPDATE: &str = "update_one_by_one";
        tracing::info!(routes = k, "update_one_by_one");
        let start = self.mark().await?;
        let mut samples = Vec::with_capacity(k);
        for (i, route) in routes.iter().enumerate() {
            let (name, vs) = (route.name_any(), vs_of(route));
            let new_path = routes::path("the100", "stressfully-updated", i);
            let patch = routes::path_patch(route, &new_path);
            samples.push(
                self.change(
                    UPDATE,
                    self.routes
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch)),
                    format!("{UPDATE}: patching route {ns}/{name}"),
                    &format!("VirtualService {vs} with path {new_path}"),
                    |w| vs_with_path(w, &vs, &new_path),
                )
                .await?,
            );
        }
        let wall = start.at.elapsed();
        let end = self.mark().await?;
        out.push(self.phase(
            UPDATE,
            &start,
            &end,
            wall,
            &samples,
            "route path patch → its VirtualService observed with the new path",
        ));

        const DELETE: &str = "delete_one_by_one";
        tracing::info!(routes = k, "delete_one_by_one");
        let start = self.mark().await?;
        let mut samples = Vec::with_capacity(k);
        for route in &routes {
            let (name, vs) = (route.name_any(), vs_of(route));
            samples.push(
                self.change(
                    DELETE,
                    self.routes.delete(&name, &DeleteParams::default()),
                    format!("{DELETE}: deleting route {ns}/{name}"),
                    &format!("VirtualService {vs} of route {name} to go"),
                    |w| {
                        w.virtual_services
                            .get(&vs)
                            .is_none()
                            .then(|| w.virtual_services.gone.get(&vs).copied())?
                    },
                )
                .await?,
            );
        }
        let wall = start.at.elapsed();
        self.wait(
            DELETE,
            ONE_CHANGE_TIMEOUT,
            "the deleted routes to be gone (finalizer removed)",
            |w| (w.routes.len() == n && w.services.len() == n).then_some(()),
        )
        .await?;
        let end = self.mark().await?;
        check_exact(DELETE, &self.observer.world(), n, n, n)?;
        out.push(self.phase(
            DELETE,
            &start,
            &end,
            wall,
            &samples,
            "route delete → its VirtualService observed deleted",
        ));
        Ok(out)
    }

    /// One change timed as a user sees it: from the client call `write` (a future: nothing is sent before
    /// the clock starts; `doing` names it if it fails) until `seen` finds its effect in the watches. A
    /// slower change than `ONE_CHANGE_TIMEOUT` fails the phase.
    async fn change<O>(
        &self,
        phase: &str,
        write: impl Future<Output = kube::Result<O>>,
        doing: String,
        what: &str,
        seen: impl FnMut(&World) -> Option<Instant>,
    ) -> Result<Duration, BenchError> {
        let t = Instant::now();
        write.await.map_err(BenchError::kube(doing))?;
        let at = self.wait(phase, ONE_CHANGE_TIMEOUT, what, seen).await?;
        Ok(at.saturating_duration_since(t))
    }

    /// 5. Delete the N routes (one DELETE each, 16 in flight); wait until routes, Services and
    ///    VirtualServices are all gone.
    async fn bulk_delete(&self) -> Result<Phase, BenchError> {
        const PHASE: &str = "bulk_delete";
        let n = self.n();
        tracing::info!(routes = n, "bulk_delete");
        let start = self.mark().await?;
        let t = Instant::now();
        let names: Vec<String> = (0..n).map(|i| format!("route-initial-{i}")).collect();
        let deleted_at = self.delete_routes(PHASE, &names).await?;
        self.wait(
            PHASE,
            self.bulk_timeout(n),
            "every route, Service and VirtualService to be gone",
            |w| {
                (w.routes.is_empty() && w.services.is_empty() && w.virtual_services.is_empty())
                    .then_some(())
            },
        )
        .await?;
        let end = self.mark().await?;
        let mut samples = Vec::with_capacity(n);
        let mut last = t;
        {
            let w = self.observer.world();
            for i in 0..n {
                let route = routes::route(&self.namespace, "initial", i, "");
                let vs = vs_of(&route);
                let svc = service_of(&route);
                let gone = |at: Option<&Instant>, what: &str| {
                    at.copied().ok_or_else(|| BenchError::Count {
                        phase: PHASE.into(),
                        detail: format!(
                            "{what} of route {} was never seen deleted",
                            route.name_any()
                        ),
                    })
                };
                let vs_gone = gone(w.virtual_services.gone.get(&vs), "VirtualService")?;
                let svc_gone = gone(w.services.gone.get(&svc), "Service")?;
                let route_gone = gone(w.routes.gone.get(&route.name_any()), "Route")?;
                last = last.max(vs_gone).max(svc_gone).max(route_gone);
                let written = deleted_at.get(&route.name_any()).copied().unwrap_or(t);
                samples.push(vs_gone.saturating_duration_since(written));
            }
        }
        Ok(self.phase(
            PHASE,
            &start,
            &end,
            last - t,
            &samples,
            "route delete (16 in flight, as kubectl delete -l issues them) → its VirtualService observed \
             deleted (wall: first delete until every route, Service and VirtualService is gone)",
        ))
    }

    /// 6. `shared_routes` routes over `shared_fqdns` FQDNs (context paths), then `shared_updates` random
    ///    path updates, one at a time.
    async fn shared_fqdn_updates(&self) -> Result<Phase, BenchError> {
        const PHASE: &str = "shared_fqdn_updates";
        let (s, f, u) = (
            self.config.shared_routes,
            self.config.shared_fqdns,
            self.config.shared_updates,
        );
        let ns = &self.namespace;
        let routes: Vec<Route> = (0..s)
            .map(|i| routes::shared_route(ns, "shared", i, f, &routes::path("shared", "", i)))
            .collect();
        tracing::info!(routes = s, fqdns = f, updates = u, "shared_fqdn_updates");
        let setup = Instant::now();
        self.create_routes(PHASE, &routes).await?;
        let fqdns = f.min(s);
        self.wait(
            PHASE,
            self.bulk_timeout(s),
            "the shared-FQDN routes to be programmed",
            |w| {
                let paths: usize = w
                    .virtual_services
                    .live
                    .values()
                    .map(|v| v.view.prefixes.len())
                    .sum();
                (w.virtual_services.len() == fqdns
                    && paths == s
                    && w.routes.flagged == s
                    && w.services.len() == s)
                    .then_some(())
            },
        )
        .await?;
        let setup_seconds = setup.elapsed().as_secs_f64();

        let start = self.mark().await?;
        let mut rng = StdRng::seed_from_u64(20201029);
        let mut paths: Vec<String> = routes.iter().map(|r| r.spec.path().to_string()).collect();
        let mut samples = Vec::with_capacity(u);
        for k in 0..u {
            let j = rng.random_range(0..s);
            let route = &routes[j];
            let (name, vs) = (route.name_any(), vs_of(route));
            let old = paths[j].clone();
            let new = format!("/shared-u{k}-{j}");
            let patch = routes::path_patch(route, &new);
            samples.push(
                self.change(
                    PHASE,
                    self.routes
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch)),
                    format!("{PHASE}: patching route {ns}/{name}"),
                    &format!("VirtualService {vs} with path {new} instead of {old}"),
                    |w| {
                        w.virtual_services
                            .get(&vs)
                            .filter(|v| {
                                v.view.prefixes.contains(&new) && !v.view.prefixes.contains(&old)
                            })
                            .map(|v| v.at)
                    },
                )
                .await?,
            );
            paths[j] = new;
        }
        let wall = start.at.elapsed();
        let end = self.mark().await?;
        {
            let w = self.observer.world();
            let programmed: usize = w
                .virtual_services
                .live
                .values()
                .map(|v| v.view.prefixes.len())
                .sum();
            if w.virtual_services.len() != fqdns || programmed != s || w.routes.len() != s {
                return Err(BenchError::Count {
                    phase: PHASE.into(),
                    detail: format!(
                        "expected {fqdns} VirtualServices holding {s} paths for {s} routes, found {} holding {programmed} for {}",
                        w.virtual_services.len(),
                        w.routes.len()
                    ),
                });
            }
        }
        let mut phase = self.phase(
            PHASE,
            &start,
            &end,
            wall,
            &samples,
            "route path patch → its FQDN's VirtualService observed with the new path and without the old",
        );
        phase.notes.insert("setup_seconds".into(), setup_seconds);
        phase.notes.insert("routes".into(), s as f64);
        phase.notes.insert("fqdns".into(), fqdns as f64);

        // Clean up (not measured), and check the controller removes everything.
        let cleanup = Instant::now();
        let names: Vec<String> = routes.iter().map(|r| r.name_any()).collect();
        self.delete_routes(PHASE, &names).await?;
        self.wait(
            PHASE,
            self.bulk_timeout(s),
            "the shared-FQDN routes and their children to be gone",
            |w| {
                (w.routes.is_empty() && w.services.is_empty() && w.virtual_services.is_empty())
                    .then_some(())
            },
        )
        .await?;
        phase
            .notes
            .insert("cleanup_seconds".into(), cleanup.elapsed().as_secs_f64());
        Ok(phase)
    }
}

/// Requests served between two scrapes of kube-apiserver, by `VERB resource[/subresource]` (long-running
/// WATCH and CONNECT requests excluded: their duration is the connection's lifetime, not work).
fn apiserver_requests(start: &Mark, end: &Mark) -> BTreeMap<String, RequestStats> {
    const DURATION: &str = "apiserver_request_duration_seconds";
    let (Some(before), Some(after)) = (&start.apiserver_metrics, &end.apiserver_metrics) else {
        return BTreeMap::new();
    };
    let group = |snapshot: &Snapshot, suffix: &str| {
        let mut out: BTreeMap<String, f64> = BTreeMap::new();
        for s in snapshot
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

fn vs_of(route: &Route) -> String {
    virtual_service_name(&routes::fqdn(route))
}

fn service_of(route: &Route) -> String {
    service_name(&route.spec.destinations[0].guid)
}

/// When the VirtualService `vs` was observed holding exactly the path `path`.
fn vs_with_path(w: &World, vs: &str, path: &str) -> Option<Instant> {
    w.virtual_services
        .get(vs)
        .filter(|s| s.view.prefixes == [path])
        .map(|s| s.at)
}

/// A `drift_repair` object that was not there to be disturbed.
fn drift_missing(what: String) -> BenchError {
    BenchError::Count {
        phase: DRIFT_REPAIR.into(),
        detail: format!("{what} was not observed before the drift"),
    }
}

/// Exactly `routes` Routes, `services` Services and `vss` VirtualServices, every Route Ready.
fn check_exact(
    phase: &str,
    w: &World,
    routes: usize,
    services: usize,
    vss: usize,
) -> Result<(), BenchError> {
    if w.routes.len() != routes
        || w.routes.flagged != routes
        || w.services.len() != services
        || w.virtual_services.len() != vss
    {
        return Err(BenchError::Count {
            phase: phase.into(),
            detail: format!(
                "expected {routes} routes (all Ready), {services} services, {vss} virtualservices; found {}",
                w.describe()
            ),
        });
    }
    Ok(())
}

/// When the route's Service, its VirtualService (with the route's path) and its Ready condition had all
/// been observed.
fn programmed_at(phase: &str, w: &World, route: &Route) -> Result<Instant, BenchError> {
    let name = route.name_any();
    let missing = |what: String| BenchError::Count {
        phase: phase.into(),
        detail: format!("route {name}: {what}"),
    };
    let svc_name = service_of(route);
    let svc = w
        .services
        .get(&svc_name)
        .ok_or_else(|| missing(format!("Service {svc_name} missing")))?;
    let vs_name = vs_of(route);
    let vs = w
        .virtual_services
        .get(&vs_name)
        .ok_or_else(|| missing(format!("VirtualService {vs_name} missing")))?;
    if vs.view.prefixes != [route.spec.path().to_string()] {
        return Err(missing(format!(
            "VirtualService {vs_name} has paths {:?}, expected [{:?}]",
            vs.view.prefixes,
            route.spec.path()
        )));
    }
    let r = w
        .routes
        .get(&name)
        .filter(|r| r.view.ready)
        .ok_or_else(|| missing("not Ready".into()))?;
    Ok(svc.at.max(vs.at).max(r.at))
}
