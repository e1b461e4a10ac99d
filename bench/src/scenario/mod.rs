//! The phases, run against one control plane and one controller process; each phase in its own module
//! (bulk.rs, steady.rs, drift.rs, one_by_one.rs, shared.rs), the results assembled by assemble.rs.

mod bulk;
mod drift;
pub mod envoy;
mod one_by_one;
mod shared;
mod steady;

use std::collections::BTreeMap;
use std::time::Duration;

use cfnet_api::Route;
use cfnet_testenv::ControlPlane;
use cfnet_translate::{service_name, virtual_service_name};
use futures::{StreamExt, TryStreamExt};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client, ResourceExt};
use tokio::time::Instant;

use crate::assemble::{self, Finished, Mark};
use crate::baseline::{self, BaselineRun};
use crate::error::BenchError;
use crate::observe::{Observer, World};
use crate::process::{ControllerProcess, ControllerSettings};
use crate::prom::{self, Scrape};
use crate::results::{Phase, Results, SteadyState};
use crate::{Config, GATEWAY, procfs, routes};

/// How long one one-at-a-time change may take before the phase fails.
const ONE_CHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Route creations in flight while setting up a phase (not measured).
const CREATE_CONCURRENCY: usize = 16;

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
        events: config.events,
    };
    std::fs::create_dir_all(&config.out).map_err(|e| BenchError::Output {
        path: config.out.clone(),
        detail: e.to_string(),
    })?;
    if config.envoy_only {
        return Ok(Results {
            routes: config.routes,
            quick: config.quick,
            date,
            apiserver_version: control_plane.apiserver_version().to_string(),
            command: config.command.clone(),
            envoy: Some(envoy::run(control_plane, config, &settings).await?),
            ..Results::default()
        });
    }

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
    let baseline = bare_client(control_plane, &client, config).await?;
    let envoy = if config.istiod {
        Some(envoy::run(control_plane, config, &settings).await?)
    } else {
        None
    };
    let mut results = assemble::results(Finished {
        config,
        date,
        apiserver_version: control_plane.apiserver_version().to_string(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        phases,
        steady_state,
        final_metrics,
        final_sample,
        baseline,
    });
    results.envoy = envoy;
    Ok(results)
}

/// The bare-client limit, in a namespace of its own, with the controller stopped.
async fn bare_client(
    control_plane: &ControlPlane,
    client: &Client,
    config: &Config,
) -> Result<BaselineRun, BenchError> {
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
    let timeout = baseline::timeout(config.routes);
    tokio::time::timeout(
        timeout,
        baseline::run(
            client,
            &baseline_ns,
            config.routes,
            config.concurrency,
            GATEWAY,
            control_plane.pids(),
            config.events,
        ),
    )
    .await
    .map_err(|_| BenchError::Baseline {
        detail: format!("did not finish within {timeout:?}"),
    })?
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
    async fn apiserver_metrics(&self) -> Option<Scrape> {
        let request = http::Request::get("/metrics").body(Vec::new()).ok()?;
        match self.client.request_text(request).await {
            Ok(text) => prom::parse(&text)
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
