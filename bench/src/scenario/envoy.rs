//! `cfnet bench --istiod`: Route → Envoy. With istiod (the project's snapshot, default tuning, Istio's
//! validating webhook on) serving the chart's ingress gateway and a `cfnet_xds::Subscription` connected
//! as that gateway:
//!
//! - `envoy_cold_start`: N routes programmed by the controller, then istiod started; latency = istiod's
//!   start → the first push in which the gateway's `http.8080` holds all N FQDNs.
//! - `envoy_changes`: one-at-a-time changes through the controller (add a route with two destinations
//!   50/50 at `/a`, its path to `/b`, its weights to 80/20, delete it; repeated), each timed from the
//!   client's Route write to the push after which the gateway serves exactly that route (its clusters in
//!   CDS) or, for a delete, no longer has its FQDN.
//! - `envoy_floor`: the same changes written by a bare client as the controller's own objects (the
//!   translated Services and VirtualService, created, applied, deleted) with the controller stopped:
//!   what istiod alone takes, the floor under `envoy_changes`.
//!
//! Per phase: istiod's CPU seconds and its peak RSS (VmHWM, since its start) next to the controller's CPU.

use std::collections::BTreeMap;
use std::time::Duration;

use cfnet_api::{FIELD_MANAGER, Route, fixtures};
use cfnet_testenv::{ControlPlane, Istiod, IstiodOptions};
use cfnet_translate::Settings;
use cfnet_xds::view::{self, PathView, RouteView};
use cfnet_xds::{Proxy, ProxyConfig, Subscription};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::BenchError;
use crate::observe::virtual_service_resource;
use crate::process::{ControllerProcess, ControllerSettings};
use crate::stats::LatencySummary;
use crate::{Config, GATEWAY, procfs, routes};

/// The chart's workloads namespace: its Gateway binds VirtualServices of this namespace only.
const NAMESPACE: &str = "cf-workloads";
/// The route configuration of the gateway's port 80 (targetPort 8080).
const GATEWAY_HTTP: &str = "http.8080";
/// Host prefix of the N programmed routes.
const BULK_TAG: &str = "envoy";
/// `resyncInterval` of the Helm chart.
const CHART_RESYNC_SECONDS: u64 = 900;
/// How long one change may take before the run fails.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(120);
/// istiod's start until the gateway holds every route (minutes at 10,000 on a loaded machine).
const COLD_START_TIMEOUT: Duration = Duration::from_secs(900);

/// What `--istiod` adds to results.json.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EnvoyResults {
    pub istiod_version: String,
    /// Routes programmed in istiod while the changes run.
    pub routes: usize,
    pub phases: Vec<EnvoyPhase>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EnvoyPhase {
    pub name: String,
    pub changes: usize,
    pub wall_seconds: f64,
    pub latency_ms: LatencySummary,
    /// Per kind of change (add, path, weights, delete).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latency_ms_by_kind: BTreeMap<String, LatencySummary>,
    pub latency_definition: String,
    pub istiod_cpu_seconds: f64,
    /// istiod's VmHWM at the end of the phase (its peak since it started).
    pub istiod_peak_rss_mib: f64,
    pub controller_cpu_seconds: f64,
    pub apiserver_cpu_seconds: f64,
}

#[derive(Clone, Copy, Debug)]
enum Change {
    Add,
    Path,
    Weights,
    Delete,
}

impl Change {
    const CYCLE: [Change; 4] = [Change::Add, Change::Path, Change::Weights, Change::Delete];

    fn name(self) -> &'static str {
        match self {
            Change::Add => "add",
            Change::Path => "path",
            Change::Weights => "weights",
            Change::Delete => "delete",
        }
    }

    /// The route after the change (`None`: deleted).
    fn target(self) -> Option<(&'static str, [i64; 2])> {
        match self {
            Change::Add => Some(("/a", [50, 50])),
            Change::Path => Some(("/b", [50, 50])),
            Change::Weights => Some(("/b", [80, 20])),
            Change::Delete => None,
        }
    }
}

/// Route `route-<tag>-<k>` at `<tag>-<k>.apps.example.com`, two destinations.
fn change_route(tag: &str, k: usize, path: &str, weights: [i64; 2]) -> Route {
    let app = format!("app-{tag}-{k}");
    (0..2)
        .fold(
            fixtures::route(&format!("route-{tag}-{k}"))
                .namespace(NAMESPACE)
                .host(&format!("{tag}-{k}"))
                .domain(routes::DOMAIN, false)
                .path(path)
                .label(cfnet_api::ROUTE_GUID_LABEL, &format!("{tag}-{k}")),
            |r, d| {
                r.destination(
                    fixtures::destination(&format!("d-{tag}-{k}-{d}"), &app).weight(weights[d]),
                )
            },
        )
        .build()
}

/// The gateway's HTTP routes of one FQDN.
fn rows(config: &ProxyConfig, fqdn: &str) -> Vec<RouteView> {
    config
        .route_configs
        .get(GATEWAY_HTTP)
        .map(|rc| view::route::route_config_routes(rc))
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.domains.iter().any(|d| d == fqdn))
        .collect()
}

/// Served: the FQDN has exactly one route, with this prefix and these weights, its clusters in CDS.
fn serves(config: &ProxyConfig, fqdn: &str, prefix: &str, weights: [i64; 2]) -> bool {
    let rows = rows(config, fqdn);
    let [row] = rows.as_slice() else {
        return false;
    };
    row.route_match.path == PathView::Prefix(prefix.to_owned())
        && row.clusters.iter().map(|c| i64::from(c.weight)).eq(weights)
        && row
            .clusters
            .iter()
            .all(|c| config.clusters.contains_key(&c.name))
}

/// Virtual hosts of the gateway's HTTP route configuration serving one of the N bulk routes.
fn bulk_hosts(config: &ProxyConfig) -> usize {
    let prefix = format!("hostname-{BULK_TAG}-");
    config.route_configs.get(GATEWAY_HTTP).map_or(0, |rc| {
        rc.virtual_hosts
            .iter()
            .filter(|vh| vh.domains.iter().any(|d| d.starts_with(&prefix)))
            .count()
    })
}

fn cpu(pid: u32) -> f64 {
    procfs::sample(pid).map(|s| s.cpu_seconds).unwrap_or(0.0)
}

/// CPU of istiod, controller and API server at one moment.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    istiod: f64,
    controller: f64,
    apiserver: f64,
}

struct Rig<'a> {
    config: &'a Config,
    client: Client,
    apiserver_pid: u32,
    controller_pid: Option<u32>,
    istiod_pid: u32,
}

impl Rig<'_> {
    fn mark(&self) -> Mark {
        Mark {
            at: Instant::now(),
            istiod: cpu(self.istiod_pid),
            controller: self.controller_pid.map_or(0.0, cpu),
            apiserver: cpu(self.apiserver_pid),
        }
    }

    fn phase(
        &self,
        (name, definition): (&str, &str),
        start: Mark,
        samples: &[(Change, Duration)],
    ) -> EnvoyPhase {
        let end = self.mark();
        let mut by_kind = BTreeMap::new();
        for kind in Change::CYCLE {
            let of_kind: Vec<Duration> = samples
                .iter()
                .filter(|(c, _)| c.name() == kind.name())
                .map(|(_, d)| *d)
                .collect();
            if !of_kind.is_empty() && samples.len() > 1 {
                by_kind.insert(kind.name().to_string(), LatencySummary::of(&of_kind));
            }
        }
        let all: Vec<Duration> = samples.iter().map(|(_, d)| *d).collect();
        EnvoyPhase {
            name: name.to_string(),
            changes: samples.len(),
            wall_seconds: (end.at - start.at).as_secs_f64(),
            latency_ms: LatencySummary::of(&all),
            latency_ms_by_kind: by_kind,
            latency_definition: definition.to_string(),
            istiod_cpu_seconds: end.istiod - start.istiod,
            istiod_peak_rss_mib: procfs::sample(self.istiod_pid)
                .map(|s| s.peak_rss_mib())
                .unwrap_or(0.0),
            controller_cpu_seconds: end.controller - start.controller,
            apiserver_cpu_seconds: end.apiserver - start.apiserver,
        }
    }

    fn changes(&self) -> usize {
        if self.config.quick { 20 } else { 100 }
    }
}

fn kube_err(doing: String) -> impl FnOnce(kube::Error) -> BenchError {
    BenchError::kube(doing)
}

fn istio_err(detail: impl std::fmt::Display) -> BenchError {
    BenchError::Istiod {
        detail: detail.to_string(),
    }
}

/// Runs the three phases in `control_plane` (after the other phases: their namespace is left alone).
pub async fn run(
    control_plane: &ControlPlane,
    config: &Config,
    settings: &ControllerSettings,
) -> Result<EnvoyResults, BenchError> {
    let client = control_plane.client();
    cfnet_testenv::chart::apply_chart_istio_objects(control_plane, &[])
        .await
        .map_err(istio_err)?;
    let routes_api: Api<Route> = Api::namespaced(client.clone(), NAMESPACE);
    let n = config.routes;
    tracing::info!(
        routes = n,
        "envoy: creating the routes, then the controller programs them"
    );
    create_bulk_routes(&routes_api, n).await?;
    let mut settings = settings.clone();
    settings.log = config.out.join("controller-envoy.log");
    // The chart's resync (900 s), not the short one the steady-state phase needs: a full resync of N keys
    // every 30 s would compete with istiod for the cores while the changes are timed.
    settings.resync_seconds = CHART_RESYNC_SECONDS;
    let controller = ControllerProcess::spawn(&settings)?;
    wait_until_programmed(&client, &controller, n, &settings.log.display().to_string()).await?;

    let (mut istiod, cold) = start_istiod(control_plane, config, controller.pid()).await?;
    let mut rig = Rig {
        config,
        client: client.clone(),
        apiserver_pid: control_plane.pids().1,
        controller_pid: Some(controller.pid()),
        istiod_pid: istiod.pid(),
    };
    let (mut gateway, cold_start) = cold_start(&rig, &istiod, n, cold).await?;
    let mut phases = vec![cold_start];
    phases.push(changes_through_the_controller(&rig, &routes_api, &mut gateway).await?);

    let controller_sample = controller.stop().await?;
    tracing::info!(
        controller_cpu = controller_sample.cpu_seconds,
        "envoy_floor: controller stopped"
    );
    rig.controller_pid = None;
    phases.push(changes_by_a_bare_client(&rig, &mut gateway).await?);
    let version = istiod.version().to_string();
    if let Err(e) = istiod.stop().await {
        tracing::warn!(error = %e, "stopping istiod");
    }
    Ok(EnvoyResults {
        istiod_version: version,
        routes: n,
        phases,
    })
}

/// The N bulk routes, created 16 at a time.
async fn create_bulk_routes(routes_api: &Api<Route>, n: usize) -> Result<(), BenchError> {
    futures::stream::iter(0..n)
        .map(|i| {
            let api = routes_api.clone();
            async move {
                let route = routes::route(NAMESPACE, BULK_TAG, i, &routes::path(BULK_TAG, "", i));
                api.create(&PostParams::default(), &route)
                    .await
                    .map_err(kube_err(format!(
                        "envoy: creating route {}",
                        route.name_any()
                    )))
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Until the controller has written the N routes' VirtualServices.
async fn wait_until_programmed(
    client: &Client,
    controller: &ControllerProcess,
    n: usize,
    log: &str,
) -> Result<(), BenchError> {
    let vss: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &virtual_service_resource());
    let timeout = Duration::from_secs(120 + n as u64 / 5);
    let deadline = Instant::now() + timeout;
    loop {
        controller.check_running("envoy")?;
        let programmed = vss
            .list_metadata(&ListParams::default())
            .await
            .map_err(kube_err("envoy: listing VirtualServices".into()))?
            .items
            .len();
        if programmed >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Timeout {
                phase: "envoy".into(),
                what: format!("{n} VirtualServices in {NAMESPACE}"),
                timeout,
                observed: format!("{programmed}"),
                log: log.to_owned(),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// istiod started with the N routes present, and the CPU mark of the moment before.
async fn start_istiod(
    control_plane: &ControlPlane,
    config: &Config,
    controller_pid: u32,
) -> Result<(Istiod, Mark), BenchError> {
    tracing::info!(routes = config.routes, "envoy_cold_start: starting istiod");
    let mark = Mark {
        at: Instant::now(),
        istiod: 0.0,
        controller: cpu(controller_pid),
        apiserver: cpu(control_plane.pids().1),
    };
    let options = IstiodOptions {
        env: config.istiod_env.clone(),
        ..IstiodOptions::default()
    };
    let istiod = Istiod::start(control_plane, options)
        .await
        .map_err(istio_err)?;
    Ok((istiod, mark))
}

/// Cold start: from istiod's start to the push in which the gateway holds all N routes; the gateway's
/// subscription stays open for the other phases.
async fn cold_start(
    rig: &Rig<'_>,
    istiod: &Istiod,
    n: usize,
    started: Mark,
) -> Result<(Subscription, EnvoyPhase), BenchError> {
    let xds = istiod.xds_addr().to_string();
    let mut gateway = Subscription::start(&xds, &Proxy::default(), COLD_START_TIMEOUT)
        .await
        .map_err(istio_err)?;
    let all = gateway
        .wait_for(
            &format!("the gateway to hold all {n} routes"),
            COLD_START_TIMEOUT,
            |c| bulk_hosts(c) >= n,
        )
        .await
        .map_err(istio_err)?;
    let cold = all.at.saturating_duration_since(started.at);
    let mut phase = rig.phase(
        (
            "envoy_cold_start",
            "istiod started with N programmed routes → the gateway's http.8080 holds all N",
        ),
        started,
        &[(Change::Add, cold)],
    );
    phase.changes = n;
    Ok((gateway, phase))
}

/// The changes through the controller: Route writes, each timed until the gateway serves it.
async fn changes_through_the_controller(
    rig: &Rig<'_>,
    routes_api: &Api<Route>,
    gateway: &mut Subscription,
) -> Result<EnvoyPhase, BenchError> {
    let k = rig.changes();
    tracing::info!(changes = k, "envoy_changes");
    let start = rig.mark();
    let mut samples = Vec::with_capacity(k);
    for i in 0..k {
        let change = Change::CYCLE[i % 4];
        let (tag, j) = ("change", i / 4);
        let route = change.target().map(|(p, w)| change_route(tag, j, p, w));
        let name = format!("route-{tag}-{j}");
        let at = Instant::now();
        match &route {
            Some(r) => {
                routes_api
                    .patch(
                        &name,
                        &PatchParams::apply("cloud-controller").force(),
                        &Patch::Apply(r),
                    )
                    .await
                    .map_err(kube_err(format!("envoy_changes: {} {name}", change.name())))?;
            }
            None => {
                routes_api
                    .delete(&name, &DeleteParams::default())
                    .await
                    .map_err(kube_err(format!("envoy_changes: deleting {name}")))?;
            }
        }
        samples.push((change, served(gateway, tag, j, change, at).await?));
    }
    Ok(rig.phase(
        (
            "envoy_changes",
            "Route write (apply or delete) → istiod's push after which the gateway serves exactly the change",
        ),
        start,
        &samples,
    ))
}

/// The floor: the same changes, the controller's objects written by a bare client (controller stopped).
async fn changes_by_a_bare_client(
    rig: &Rig<'_>,
    gateway: &mut Subscription,
) -> Result<EnvoyPhase, BenchError> {
    let k = rig.changes();
    let floor = Floor::new(&rig.client);
    let start = rig.mark();
    let mut samples = Vec::with_capacity(k);
    for i in 0..k {
        let change = Change::CYCLE[i % 4];
        let (tag, j) = ("floor", i / 4);
        let at = Instant::now();
        floor.write(tag, j, change).await?;
        samples.push((change, served(gateway, tag, j, change, at).await?));
    }
    Ok(rig.phase(
        (
            "envoy_floor",
            "bare client's write of the controller's objects → istiod's push after which the gateway serves the change",
        ),
        start,
        &samples,
    ))
}

/// Waits for the push that makes the change of route `<tag>-<k>` served; its time since `at`.
async fn served(
    gateway: &mut Subscription,
    tag: &str,
    k: usize,
    change: Change,
    at: Instant,
) -> Result<Duration, BenchError> {
    let fqdn = format!("{tag}-{k}.{}", routes::DOMAIN);
    let what = format!("{} {fqdn}", change.name());
    let update = gateway
        .wait_for(&what, CHANGE_TIMEOUT, |c| match change.target() {
            Some((path, weights)) => serves(c, &fqdn, path, weights),
            None => rows(c, &fqdn).is_empty(),
        })
        .await
        .map_err(istio_err)?;
    Ok(update.at.saturating_duration_since(at))
}

/// A bare client writing what the controller writes for one change of one route (no Route, no status).
struct Floor {
    services: Api<Service>,
    virtual_services: Api<DynamicObject>,
    settings: Settings,
}

impl Floor {
    fn new(client: &Client) -> Self {
        Floor {
            services: Api::namespaced(client.clone(), NAMESPACE),
            virtual_services: Api::namespaced_with(
                client.clone(),
                NAMESPACE,
                &virtual_service_resource(),
            ),
            settings: Settings {
                gateway: GATEWAY.to_string(),
                ..Default::default()
            },
        }
    }

    async fn write(&self, tag: &str, k: usize, change: Change) -> Result<(), BenchError> {
        let (path, weights) = change.target().unwrap_or(("/b", [80, 20]));
        let mut route = change_route(tag, k, path, weights);
        // The translation names the Route as owner; this Route is never written, so any uid will do.
        route.metadata.uid = Some(format!("00000000-0000-4000-8000-{k:012}"));
        let translation = cfnet_translate::translate(std::slice::from_ref(&route), &self.settings);
        let vs = translation
            .virtual_services
            .first()
            .ok_or_else(|| BenchError::Baseline {
                detail: format!(
                    "envoy_floor: no VirtualService for {}: {:?}",
                    route.name_any(),
                    translation.problems
                ),
            })?;
        let vs: DynamicObject = serde_json::to_value(vs)
            .and_then(serde_json::from_value)
            .map_err(|e| BenchError::Baseline {
                detail: format!("envoy_floor: cannot convert the VirtualService: {e}"),
            })?;
        let vs_name = vs.name_any();
        let doing = |what: &str| format!("envoy_floor: {what} for {}", route.name_any());
        let create = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        match change {
            Change::Add => {
                for svc in &translation.services {
                    self.services
                        .create(&create, svc)
                        .await
                        .map_err(kube_err(doing("Service create")))?;
                }
                self.virtual_services
                    .create(&create, &vs)
                    .await
                    .map_err(kube_err(doing("VirtualService create")))?;
            }
            Change::Path | Change::Weights => {
                self.virtual_services
                    .patch(
                        &vs_name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&vs),
                    )
                    .await
                    .map_err(kube_err(doing("VirtualService apply")))?;
            }
            Change::Delete => {
                self.virtual_services
                    .delete(&vs_name, &DeleteParams::default())
                    .await
                    .map_err(kube_err(doing("VirtualService delete")))?;
                for svc in &translation.services {
                    self.services
                        .delete(&svc.name_any(), &DeleteParams::default())
                        .await
                        .map_err(kube_err(doing("Service delete")))?;
                }
            }
        }
        Ok(())
    }
}
