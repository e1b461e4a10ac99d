//! `cfnet demo`: the README's main command. On a fresh machine it installs etcd and kube-apiserver when
//! missing, starts them on 127.0.0.1 with the Route and Istio CRDs, runs the RouteController in-process,
//! server-side applies the example Routes, waits until every Route has an up-to-date Ready condition and
//! prints the Routes, Services and VirtualServices. Then it keeps running for kubectl until Ctrl-C or
//! SIGTERM, which stop the controller, kube-apiserver and etcd (exit 0); `--exit-when-ready` stops right
//! after the tables. Any failure is one `cfnet demo: …` line on stderr naming what failed and what to do,
//! exit 1. Progress goes to stderr, the tables and the kubectl hint to stdout.
//!
//! With `--istiod` it also starts istiod after the API server, with the chart's Istio objects (gateway_envoy.rs),
//! waits until the ingress gateway's Envoy configuration holds every programmed example route, prints the
//! gateway's Envoy routes after the other tables, then `cfnet explain` of one healthy and one broken example URL
//! (demo/explain.rs), and stops istiod before the API server.
//!
//! In-process rather than a child `cfnet controller`: one process to stop, one log stream, and the
//! process edge (`cfnet controller`'s flags and signals) has its own tests.

mod explain;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cfnet_api::gateway_api::HTTPRoute;
use cfnet_api::{READY, Route, VirtualService};
use cfnet_controller::{Config, InProcess, error_chain, is_ours};
use cfnet_testenv::{ControlPlane, Error as TestenvError, Istiod, Options};
use cfnet_translate::RoutingApi;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

use crate::gateway_envoy;
use crate::process::{self, LogFormat, Signals};
use crate::render::DEFAULT_GATEWAY;
use crate::routing::RoutingArgs;
use crate::tables::{Routing, tables};

/// Field manager of the demo's Route applies (the controller's own is `cfnet-routecontroller`).
const FIELD_MANAGER: &str = "cfnet-demo";
/// How long the in-process controller gets to stop before the control plane goes.
const CONTROLLER_STOP: Duration = Duration::from_secs(10);

#[derive(clap::Args)]
pub struct Args {
    /// Directory of Route files (*.yaml, *.yml, *.json; multi-document and Lists) to apply.
    #[arg(long, value_name = "DIR", default_value = "examples")]
    examples: PathBuf,
    /// Keep etcd data, certificates, logs and the kubeconfig in DIR (created if missing); default: a temp
    /// dir removed on exit.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Print the tables and exit instead of running until Ctrl-C (tests, CI).
    #[arg(long)]
    exit_when_ready: bool,
    /// Give up when a Route has no up-to-date Ready condition after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    ready_timeout: u64,
    /// Gateway external routes are bound to, NAMESPACE/NAME.
    #[arg(long, value_name = "NS/NAME", env = "ISTIO_GATEWAY_NAME", default_value = DEFAULT_GATEWAY)]
    gateway: String,
    /// Also run istiod (built with Go the first time) with the chart's Gateway, wait until the ingress gateway's
    /// Envoy configuration routes every example, and print the gateway's Envoy routes. With --state-dir, writes
    /// DIR/istiod for `cfnet proxy-config --state-dir DIR`.
    #[arg(long)]
    istiod: bool,
    /// `--routing-api gateway-api` also installs the Gateway API CRDs and prints HTTPRoutes.
    #[command(flatten)]
    routing: RoutingArgs,
}

pub fn run(args: Args) -> ExitCode {
    process::init_logging(LogFormat::Text, process::QUIET);
    process::run_async("demo", demo(args))
}

async fn demo(args: Args) -> Result<(), String> {
    let mut signals = Signals::install()?;
    check_args(&args)?;
    let routes = read_examples(&args.examples)?;
    let namespaces: BTreeSet<String> = routes.iter().filter_map(|r| r.namespace()).collect();
    eprintln!(
        "cfnet demo: {} Routes from {} (namespace {})",
        routes.len(),
        args.examples.display(),
        namespaces.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    let Some(mut cp) = start_control_plane(&args, &mut signals).await? else {
        return Ok(());
    };
    let mut istiod = if args.istiod {
        match start_istiod(&mut cp, &mut signals, args.state_dir.is_some()).await? {
            Some(istiod) => Some(istiod),
            None => return Ok(()),
        }
    } else {
        None
    };
    let xds = istiod.as_ref().map(|i| i.xds_addr().to_string());
    let client = cfnet_controller::connect(Some(cp.kubeconfig_path()))
        .await
        .map_err(|e| {
            format!(
                "cannot connect to the local control plane: {}",
                error_chain(&e)
            )
        })?;
    let controller = start_controller(&args, &client);

    let outcome = tokio::select! {
        shown = show(&client, &routes, &namespaces, &args, xds.as_deref()) => shown.map(|()| None),
        name = signals.recv() => Ok(Some(name)),
    };
    let outcome = match outcome {
        Ok(None) if !args.exit_when_ready => {
            let envoy_hint = xds
                .as_deref()
                .map(|x| format!("  cfnet proxy-config routes --xds {x}\n"))
                .unwrap_or_default();
            println!(
                "\nThe controller keeps running against kube-apiserver {} at {}. In another shell:\n  \
                 KUBECONFIG={} kubectl get routes -A\n{envoy_hint}\
                 cfnet demo: ready. Ctrl-C stops the {}.",
                cp.apiserver_version(),
                cp.server_url(),
                cp.kubeconfig_path().display(),
                servers(istiod.is_some()),
            );
            keep_running(&mut cp, istiod.as_mut(), &mut signals, &controller).await
        }
        other => other,
    };
    stop(controller, istiod, cp, args.state_dir.is_some(), outcome).await
}

/// The combinations `--istiod` cannot show.
fn check_args(args: &Args) -> Result<(), String> {
    if args.istiod && args.gateway != DEFAULT_GATEWAY {
        // istiod serves the chart's Gateway; VirtualServices bound to another one reach no Envoy.
        return Err(format!(
            "--istiod runs the chart's Gateway {DEFAULT_GATEWAY}, but the gateway is {}: drop --gateway / unset \
             ISTIO_GATEWAY_NAME, or run without --istiod",
            args.gateway
        ));
    }
    if args.istiod && args.routing.routing_api == RoutingApi::GatewayApi {
        // The demo's istiod runs the chart's Istio Gateway (its Gateway API support is off), so HTTPRoutes
        // would reach no Envoy.
        return Err(
            "--istiod shows the Envoy routes of the chart's Istio Gateway, which serves VirtualServices: \
             run it with --routing-api istio (the default), or drop --istiod"
                .to_owned(),
        );
    }
    Ok(())
}

/// The RouteController in-process, configured as the flags say.
fn start_controller(args: &Args, client: &Client) -> InProcess {
    let mut config = Config::new(&args.gateway);
    config.workers = 2;
    config.routing_api = args.routing.routing_api;
    config.gateway_api_parent = args.routing.gateway_api_parent.clone();
    let controller = InProcess::start(config, client.clone());
    match args.routing.routing_api {
        RoutingApi::Istio => eprintln!(
            "cfnet demo: RouteController running in-process (gateway {})",
            args.gateway
        ),
        RoutingApi::GatewayApi => eprintln!(
            "cfnet demo: RouteController running in-process (routing API gateway-api, parent Gateway {})",
            args.routing.gateway_api_parent
        ),
    }
    controller
}

/// What Ctrl-C stops.
fn servers(istiod: bool) -> &'static str {
    if istiod {
        "controller, istiod, kube-apiserver and etcd"
    } else {
        "controller, kube-apiserver and etcd"
    }
}

/// Starts istiod with the chart's Istio objects; with a kept state dir, writes DIR/istiod (its xDS address, as
/// `cfnet dev up --istiod` does). `None` when a signal came first; on failure or a signal the control plane is
/// stopped.
async fn start_istiod(
    cp: &mut ControlPlane,
    signals: &mut Signals,
    kept: bool,
) -> Result<Option<Istiod>, String> {
    let started = tokio::select! {
        started = gateway_envoy::start(cp) => Some(started),
        name = signals.recv() => {
            eprintln!("cfnet demo: {name} during istiod start-up; stopped");
            None
        }
    };
    let istiod = match started {
        Some(Ok(istiod)) => istiod,
        failed => {
            tokio::task::block_in_place(|| cp.stop());
            return failed.transpose();
        }
    };
    if kept {
        let file = cp.state_dir().join(crate::xds_args::ISTIOD_FILE);
        crate::dev::write_atomically(&file, &format!("{}\n", istiod.xds_addr()))?;
    }
    Ok(Some(istiod))
}

/// Installs etcd and kube-apiserver when missing and starts them; `None` when a signal came first.
async fn start_control_plane(
    args: &Args,
    signals: &mut Signals,
) -> Result<Option<ControlPlane>, String> {
    match cfnet_testenv::locate_binaries() {
        Ok(found) => eprintln!(
            "cfnet demo: starting etcd and kube-apiserver on 127.0.0.1 (binaries in {})",
            found
                .kube_apiserver
                .parent()
                .unwrap_or(Path::new("."))
                .display()
        ),
        Err(_) => eprintln!(
            "cfnet demo: etcd/kube-apiserver not installed: installing them into {} first (several \
             minutes on the first run, then cached)",
            cfnet_testenv::cache_bin_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "the cache directory".into())
        ),
    }
    let options = Options {
        state_dir: args.state_dir.clone(),
        install_missing: true,
        gateway_api_crds: args.routing.routing_api == RoutingApi::GatewayApi,
        ..Options::default()
    };
    // A signal during start-up drops the half-started control plane, which stops its servers.
    let cp = tokio::select! {
        started = ControlPlane::start_with(options) => started.map_err(control_plane_failed)?,
        name = signals.recv() => {
            eprintln!("cfnet demo: {name} during start-up; stopped");
            return Ok(None);
        }
    };
    eprintln!(
        "cfnet demo: kube-apiserver {} ready at {} in {:.1} s (Route and Istio{} CRDs installed); state in {}",
        cp.apiserver_version(),
        cp.server_url(),
        cp.startup_duration().as_secs_f64(),
        if args.routing.routing_api == RoutingApi::GatewayApi {
            " and Gateway API"
        } else {
            ""
        },
        cp.state_dir().display()
    );
    Ok(Some(cp))
}

/// Stops in dependency order: the controller first (it finishes its in-flight writes), then istiod (while
/// the API server still runs: its webhook configuration goes first), then the control plane.
async fn stop(
    controller: InProcess,
    istiod: Option<Istiod>,
    mut cp: ControlPlane,
    kept: bool,
    outcome: Result<Option<&'static str>, String>,
) -> Result<(), String> {
    let servers = servers(istiod.is_some());
    let mut stopped = controller
        .stop(CONTROLLER_STOP)
        .await
        .map_err(|e| error_chain(&e));
    if let Some(mut istiod) = istiod {
        if kept {
            let _ = std::fs::remove_file(cp.state_dir().join(crate::xds_args::ISTIOD_FILE));
        }
        if let Err(e) = istiod.stop().await {
            stopped = stopped.and(Err(e.to_string()));
        }
    }
    tokio::task::block_in_place(|| {
        if kept {
            // It names ports that are about to close.
            let _ = std::fs::remove_file(cp.kubeconfig_path());
        }
        cp.stop();
    });
    match (outcome, stopped) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e),
        (Ok(Some(name)), Ok(())) => {
            eprintln!("cfnet demo: {name} received; {servers} stopped");
            Ok(())
        }
        (Ok(None), Ok(())) => {
            eprintln!("cfnet demo: {servers} stopped");
            Ok(())
        }
    }
}

/// Runs until a signal (its name) or until the controller or a server dies (an error).
async fn keep_running(
    cp: &mut ControlPlane,
    mut istiod: Option<&mut Istiod>,
    signals: &mut Signals,
    controller: &InProcess,
) -> Result<Option<&'static str>, String> {
    let mut health = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            name = signals.recv() => return Ok(Some(name)),
            _ = health.tick() => {
                cp.check_running().map_err(|e| format!(
                    "{e}\n(the control plane stopped under the demo; its logs are in {})", cp.state_dir().display()))?;
                if let Some(istiod) = istiod.as_deref_mut() {
                    istiod.check_running().map_err(|e| format!(
                        "{e}\n(istiod stopped under the demo; its log is in {})", cp.state_dir().display()))?;
                }
                if controller.is_finished() {
                    return Err("the controller stopped unexpectedly; its log lines above say why".into());
                }
            }
        }
    }
}

fn control_plane_failed(e: TestenvError) -> String {
    format!(
        "could not start the local control plane: {e}\n(install the binaries by hand with `cfnet dev install`; \
         pass --state-dir DIR to keep the logs)"
    )
}

/// Every Route in the `*.yaml`, `*.yml` and `*.json` files of `dir`, in file-name order.
fn read_examples(dir: &Path) -> Result<Vec<Route>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "cannot read the examples directory {}: {e}; run from the repository root or pass --examples DIR",
            dir.display()
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| matches!(x, "yaml" | "yml" | "json"))
        })
        .collect();
    files.sort();
    let mut sources = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        sources.push((file.display().to_string(), text));
    }
    let mut warnings = Vec::new();
    let routes = crate::manifest::read_routes(&sources, &mut warnings)
        .map_err(|e| format!("{e}; fix the file or pass --examples DIR"))?;
    for w in warnings {
        eprintln!("cfnet demo: {w}");
    }
    if routes.is_empty() {
        return Err(format!(
            "no networking.cloudfoundry.org/v1alpha1 Route in {}: pass --examples DIR with Route files",
            dir.display()
        ));
    }
    Ok(routes)
}

/// Namespaces, applies, waits for Ready, prints the tables; with istiod (`xds`), then waits until the gateway's
/// Envoy configuration routes every programmed example and prints its routes.
async fn show(
    client: &Client,
    routes: &[Route],
    namespaces: &BTreeSet<String>,
    args: &Args,
    xds: Option<&str>,
) -> Result<(), String> {
    let client = client.clone();
    for ns in namespaces {
        ensure_namespace(&client, ns).await?;
    }
    let started = Instant::now();
    let applied = apply_routes(&client, routes).await?;
    eprintln!(
        "cfnet demo: applied {} Routes (server-side apply, field manager {FIELD_MANAGER})",
        applied.len()
    );
    let timeout = Duration::from_secs(args.ready_timeout);
    let current = wait_for_ready(&client, &applied, namespaces, timeout).await?;
    eprintln!(
        "cfnet demo: every Route has an up-to-date Ready condition, {:.1} s after the apply",
        started.elapsed().as_secs_f64()
    );

    let mut services = Vec::new();
    let mut virtual_services = Vec::new();
    let mut http_routes = Vec::new();
    let gateway_api = args.routing.routing_api == RoutingApi::GatewayApi;
    for ns in namespaces {
        let listed = Api::<Service>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing Services in namespace {ns}: {e}"))?;
        services.extend(listed.items.into_iter().filter(|s| is_ours(&s.metadata)));
        if gateway_api {
            let listed = Api::<HTTPRoute>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await
                .map_err(|e| format!("listing HTTPRoutes in namespace {ns}: {e}"))?;
            http_routes.extend(listed.items.into_iter().filter(|h| is_ours(&h.metadata)));
            continue;
        }
        let listed = Api::<VirtualService>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing VirtualServices in namespace {ns}: {e}"))?;
        virtual_services.extend(listed.items.into_iter().filter(|v| is_ours(&v.metadata)));
    }
    let routing = if gateway_api {
        Routing::HTTPRoutes(&mut http_routes)
    } else {
        Routing::VirtualServices(&mut virtual_services)
    };
    print!("{}", tables(&current, &mut services, routing));
    if let Some(xds) = xds {
        let expected = gateway_envoy::expected_gateway_routes(&current);
        let config = gateway_envoy::wait_for_gateway(xds, &expected, timeout).await?;
        eprintln!(
            "cfnet demo: istiod serves the ingress gateway all {} programmed external routes, {:.1} s after \
             the apply",
            expected.len(),
            started.elapsed().as_secs_f64()
        );
        print!("{}", gateway_envoy::gateway_routes_table(&config, xds));
        explain::write_endpoint_slices(&client, &services).await?;
        print!(
            "{}",
            explain::explain_examples(&client, &args.gateway, xds, timeout).await?
        );
    }
    Ok(())
}

async fn ensure_namespace(client: &Client, name: &str) -> Result<(), String> {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {
            eprintln!("cfnet demo: created namespace {name}");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(()),
        Err(e) => Err(format!("creating namespace {name}: {e}")),
    }
}

/// A Route the demo applied: (namespace, name) and the generation its Ready condition must observe.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Applied {
    namespace: String,
    name: String,
    generation: i64,
}

async fn apply_routes(client: &Client, routes: &[Route]) -> Result<Vec<Applied>, String> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut applied = Vec::new();
    for route in routes {
        let namespace = route.namespace().unwrap_or_else(|| "default".into());
        let name = route.name_any();
        let mut body = route.clone();
        // Apply exactly what the file says; the server owns these.
        body.metadata.resource_version = None;
        body.metadata.uid = None;
        body.status = None;
        let written = Api::<Route>::namespaced(client.clone(), &namespace)
            .patch(&name, &params, &Patch::Apply(&body))
            .await
            .map_err(|e| {
                format!("applying Route {namespace}/{name}: {e}; fix the example file or pass --examples DIR")
            })?;
        applied.push(Applied {
            namespace,
            name,
            generation: written.metadata.generation.unwrap_or(0),
        });
    }
    applied.sort();
    applied.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);
    Ok(applied)
}

/// The Ready condition of `route` when it describes `generation` (or a later one).
fn ready_condition(route: &Route, generation: i64) -> Option<&cfnet_api::Condition> {
    route
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .filter(|c| c.observed_generation.is_some_and(|g| g >= generation))
}

/// Polls until every applied Route has an up-to-date Ready condition; returns them sorted.
async fn wait_for_ready(
    client: &Client,
    applied: &[Applied],
    namespaces: &BTreeSet<String>,
    timeout: Duration,
) -> Result<Vec<Route>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut current = Vec::new();
        for ns in namespaces {
            let listed = Api::<Route>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await
                .map_err(|e| format!("listing Routes in namespace {ns}: {e}"))?;
            current.extend(listed.items);
        }
        let pending: Vec<String> = applied
            .iter()
            .filter(|a| {
                !current.iter().any(|r| {
                    r.namespace().as_deref() == Some(a.namespace.as_str())
                        && r.name_any() == a.name
                        && ready_condition(r, a.generation).is_some()
                })
            })
            .map(|a| format!("{}/{}", a.namespace, a.name))
            .collect();
        if pending.is_empty() {
            current.retain(|r| {
                applied.iter().any(|a| {
                    r.namespace().as_deref() == Some(a.namespace.as_str()) && r.name_any() == a.name
                })
            });
            current.sort_by_key(|r| (r.namespace(), r.name_any()));
            return Ok(current);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "timed out after {timeout:?} waiting for the Ready condition of {} Route(s): {}; the \
                 controller's log lines above say why (RUST_LOG=info shows more), or pass a longer --ready-timeout",
                pending.len(),
                pending.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_condition_must_observe_the_applied_generation() {
        let mut route = cfnet_api::fixtures::route("r").namespace("ns").build();
        route.metadata.generation = Some(2);
        route.status = serde_json::from_value(serde_json::json!(
            {"conditions": [{"type": "Ready", "status": "True", "observedGeneration": 1}]}
        ))
        .unwrap();
        assert!(ready_condition(&route, 2).is_none(), "stale condition");
        if let Some(s) = route.status.as_mut() {
            s.conditions[0].observed_generation = Some(2);
        }
        assert!(ready_condition(&route, 2).is_some());
    }
}
