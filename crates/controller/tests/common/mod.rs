//! Shared harness of the controller's integration tests: one real control plane per test binary (each
//! test uses its own namespace and runs its own controller filtered to it), Route fixtures from the
//! reference's Appendix A, and polling helpers.
#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cfnet_api::Route;
use cfnet_controller::{Config, Controller, Metrics};
use cfnet_testenv::ControlPlane;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const GATEWAY: &str = "cf-test-gateway";

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();

/// The binary's control plane, started on first use on a thread whose runtime lives as long as the
/// process (the servers die with the process through PDEATHSIG).
pub fn control_plane() -> &'static ControlPlane {
    CONTROL_PLANE.get_or_init(|| {
        std::thread::spawn(|| {
            let rt = Box::leak(Box::new(
                tokio::runtime::Runtime::new().expect("tokio runtime"),
            ));
            rt.block_on(ControlPlane::start())
                .expect("local control plane (run scripts/install-control-plane.sh)")
        })
        .join()
        .expect("control plane thread")
    })
}

/// A client bound to the calling test's runtime.
pub async fn client() -> Client {
    // Logs of the controllers under test; RUST_LOG=cfnet_controller=debug for more.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "cfnet_controller=info".into()),
        )
        .with_test_writer()
        .try_init();
    let cp = control_plane();
    let kc = Kubeconfig::read_from(cp.kubeconfig_path()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

pub async fn namespace(client: &Client, prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("{prefix}-{}-{n}-{:x}", std::process::id(), nanos % 0xfffff);
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

/// A controller running in-process, watching one namespace.
pub struct Running {
    pub metrics: Arc<Metrics>,
    pub leading: tokio::sync::watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), cfnet_controller::Error>>,
}

impl Running {
    pub async fn start(client: Client, config: Config) -> Running {
        let controller = Controller::new(config, client);
        let metrics = controller.metrics();
        let leading = controller.leading();
        let mut ready = controller.ready();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(controller.run(async move {
            let _ = rx.await;
        }));
        tokio::time::timeout(Duration::from_secs(30), ready.wait_for(|r| *r))
            .await
            .expect("caches synced within 30 s")
            .expect("controller alive");
        Running {
            metrics,
            leading,
            stop: Some(tx),
            handle,
        }
    }

    pub async fn in_namespace(client: &Client, ns: &str) -> Running {
        Self::start(client.clone(), config(ns)).await
    }

    /// Graceful stop (SIGTERM path).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.handle)
            .await
            .expect("controller stops within 10 s")
            .expect("task")
            .expect("controller result");
    }

    /// Like a SIGKILL: no graceful shutdown, no lease release.
    pub fn kill(self) {
        self.handle.abort();
    }

    pub fn writes(&self) -> u64 {
        self.metrics.api_writes_total()
    }
}

pub fn config(ns: &str) -> Config {
    let mut c = Config::new(GATEWAY);
    c.namespaces = vec![ns.to_string()];
    c.resync_interval = Duration::from_secs(3600);
    c
}

/// One destination: (weight, port, destination guid, app guid, process type).
pub type Dest<'a> = (Option<i64>, i64, &'a str, &'a str, &'a str);

/// A Route as the fixtures of upstream's integration tests write it (Appendix A).
pub fn route(name: &str, route_guid: &str, host: &str, path: &str, dests: &[Dest<'_>]) -> Route {
    let destinations: Vec<Value> = dests
        .iter()
        .map(|(w, port, guid, app, process)| {
            let mut d = json!({
                "guid": guid, "port": port,
                "app": {"guid": app, "process": {"type": process}},
                "selector": {"matchLabels": {"cloudfoundry.org/app_guid": app, "cloudfoundry.org/process_type": process}}
            });
            if let Some(w) = w {
                d["weight"] = json!(w);
            }
            d
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "networking.cloudfoundry.org/v1alpha1", "kind": "Route",
        "metadata": {"name": name, "labels": {
            "app.kubernetes.io/name": route_guid, "cloudfoundry.org/route_guid": route_guid,
            "app.kubernetes.io/version": "cloud-controller-api-version", "app.kubernetes.io/managed-by": "cloudfoundry",
            "app.kubernetes.io/component": "cf-networking", "app.kubernetes.io/part-of": "cloudfoundry",
            "cloudfoundry.org/org_guid": "cc-org-guid", "cloudfoundry.org/space_guid": "cc-space-guid",
            "cloudfoundry.org/domain_guid": "cc-domain-guid"}},
        "spec": {"host": host, "path": path, "url": format!("{host}.apps.example.com{path}"),
                 "domain": {"name": "apps.example.com", "internal": false}, "destinations": destinations}
    }))
    .expect("fixture route")
}

/// `kubectl apply` of a Route (server-side apply, like a GET + PUT of the whole spec).
pub async fn apply(client: &Client, ns: &str, route: &Route) {
    let api: Api<Route> = Api::namespaced(client.clone(), ns);
    api.patch(
        &route.name_any(),
        &PatchParams::apply("kubectl").force(),
        &Patch::Apply(route),
    )
    .await
    .unwrap_or_else(|e| panic!("apply Route {}: {e}", route.name_any()));
}

pub async fn delete_route(client: &Client, ns: &str, name: &str) {
    let api: Api<Route> = Api::namespaced(client.clone(), ns);
    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete route");
}

pub fn vs_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::erase::<cfnet_api::VirtualService>(&()),
    )
}

/// Upstream's observation model of VirtualServices: gateways, hosts, and per http entry the match
/// prefixes and destination hosts; sorted by hosts (upstream compared with ConsistOf).
pub async fn virtual_services(client: &Client, ns: &str) -> Vec<Value> {
    let list = vs_api(client, ns)
        .list(&ListParams::default())
        .await
        .expect("list virtualservices");
    let mut out: Vec<Value> = list
        .items
        .iter()
        .map(|vs| {
            let spec = &vs.data["spec"];
            let http: Vec<Value> = spec["http"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|h| {
                    let prefixes: Vec<Value> = h["match"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|m| m["uri"]["prefix"].clone())
                        .collect();
                    let hosts: Vec<Value> = h["route"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|r| r["destination"]["host"].clone())
                        .collect();
                    json!({"match": prefixes, "route": hosts})
                })
                .collect();
            json!({"gateways": spec["gateways"], "hosts": spec["hosts"], "http": http})
        })
        .collect();
    out.sort_by_key(|v| v["hosts"].to_string());
    out
}

pub fn vs(host: &str, http: &[(&[&str], &[&str])]) -> Value {
    let http: Vec<Value> = http
        .iter()
        .map(|(m, r)| json!({"match": m, "route": r}))
        .collect();
    json!({"gateways": [GATEWAY], "hosts": [host], "http": http})
}

/// Upstream's observation model of Services: (name, targetPort), sorted.
pub async fn services(client: &Client, ns: &str) -> Vec<(String, i64)> {
    let list = Api::<Service>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list services");
    let mut out: Vec<(String, i64)> = list
        .items
        .iter()
        .map(|s| {
            let target = s
                .spec
                .as_ref()
                .and_then(|sp| sp.ports.as_ref())
                .and_then(|p| p.first())
                .and_then(|p| serde_json::to_value(&p.target_port).ok())
                .and_then(|v| v.as_i64())
                .unwrap_or(-1);
            (s.name_any(), target)
        })
        .collect();
    out.sort();
    out
}

pub fn svc(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = list.iter().map(|(n, p)| (n.to_string(), *p)).collect();
    v.sort();
    v
}

/// Polls `probe` until it returns `Some`, or panics with the last observation after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not reached within {timeout:?}; last: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until `actual()` equals `expected`.
pub async fn eventually_eq<T, F, Fut>(what: &str, timeout: Duration, expected: T, mut actual: F)
where
    T: PartialEq + std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    eventually(what, timeout, || {
        let fut = actual();
        let expected = &expected;
        async move {
            let got = fut.await;
            if &got == expected {
                Ok(())
            } else {
                Err(format!("{got:?}, expected {expected:?}"))
            }
        }
    })
    .await
}

pub const T: Duration = Duration::from_secs(30);

/// The Ready condition of a Route: (status, reason, message).
pub async fn ready(client: &Client, ns: &str, name: &str) -> Option<(String, String, String)> {
    let api: Api<Route> = Api::namespaced(client.clone(), ns);
    let r = api.get_opt(name).await.ok()??;
    let c = r
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")?;
    Some((
        format!("{:?}", c.status),
        c.reason.unwrap_or_default(),
        c.message.unwrap_or_default(),
    ))
}
