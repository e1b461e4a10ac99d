//! Shared harness of the controller's integration tests: one real control plane per test binary, with the
//! Istio and the Gateway API CRDs (each test uses its own namespace and runs its own controller filtered
//! to it), Route fixtures from the reference's Appendix A, the routing modes ([`Mode`]: what a test
//! observes of VirtualServices or HTTPRoutes, in one form) and polling helpers.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cfnet_api::gateway_api::HTTPRoute;
use cfnet_api::{Route, fixtures};
use cfnet_controller::{Config, InProcess};
use cfnet_testenv::{ControlPlane, Options};
use cfnet_translate::{GatewayRef, RoutingApi};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams, PostParams,
};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

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
            rt.block_on(ControlPlane::start_with(Options {
                gateway_api_crds: true,
                ..Options::default()
            }))
            .expect("local control plane (run scripts/install-control-plane.sh)")
        })
        .join()
        .expect("control plane thread")
    })
}

/// A client bound to the calling test's runtime, built as `cfnet controller` builds its own.
pub async fn client() -> Client {
    // Logs of the controllers under test; RUST_LOG=cfnet_controller=debug for more.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "cfnet_controller=info".into()),
        )
        .with_test_writer()
        .try_init();
    cfnet_controller::connect(Some(control_plane().kubeconfig_path()))
        .await
        .expect("client")
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

/// A controller running in-process (cfnet-controller's runner), whose start waits for its caches and
/// whose stop must succeed within 10 s.
pub struct Running(InProcess);

impl Deref for Running {
    type Target = InProcess;
    fn deref(&self) -> &InProcess {
        &self.0
    }
}

impl DerefMut for Running {
    fn deref_mut(&mut self) -> &mut InProcess {
        &mut self.0
    }
}

impl Running {
    pub async fn start(client: Client, config: Config) -> Running {
        let mut c = InProcess::start(config, client);
        c.wait_ready(Duration::from_secs(30))
            .await
            .expect("caches synced within 30 s");
        Running(c)
    }

    pub async fn in_namespace(client: &Client, ns: &str) -> Running {
        Self::start(client.clone(), config(ns)).await
    }

    /// Graceful stop (SIGTERM path).
    pub async fn stop(self) {
        self.0
            .stop(Duration::from_secs(10))
            .await
            .expect("controller stops within 10 s");
    }

    /// Like a SIGKILL: no graceful shutdown, no lease release.
    pub fn kill(self) {
        self.0.kill();
    }
}

pub fn config(ns: &str) -> Config {
    let mut c = Config::new(GATEWAY);
    c.namespaces = vec![ns.to_string()];
    c.resync_interval = Duration::from_secs(3600);
    c
}

/// The routing API a test runs the controller with; the behaviour tests run each scenario in both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Istio,
    GatewayApi,
}

/// The Gateway API parent of the tests (the default, `cf-system/cf-gateway`).
pub fn parent() -> GatewayRef {
    GatewayRef::default()
}

impl Mode {
    pub fn routing_api(self) -> RoutingApi {
        match self {
            Mode::Istio => RoutingApi::Istio,
            Mode::GatewayApi => RoutingApi::GatewayApi,
        }
    }

    /// [`config`] in this mode.
    pub fn config(self, ns: &str) -> Config {
        let mut c = config(ns);
        c.routing_api = self.routing_api();
        c.gateway_api_parent = parent();
        c
    }

    pub async fn start(self, client: &Client, ns: &str) -> Running {
        Running::start(client.clone(), self.config(ns)).await
    }

    /// The kind of the object that routes an FQDN.
    pub fn kind(self) -> &'static str {
        match self {
            Mode::Istio => "VirtualService",
            Mode::GatewayApi => "HTTPRoute",
        }
    }

    /// The (first) name of the object that routes `fqdn`.
    pub fn name(self, fqdn: &str) -> String {
        match self {
            Mode::Istio => cfnet_translate::virtual_service_name(fqdn),
            Mode::GatewayApi => cfnet_translate::http_route_name(fqdn),
        }
    }

    pub fn api(self, client: &Client, ns: &str) -> Api<DynamicObject> {
        match self {
            Mode::Istio => vs_api(client, ns),
            Mode::GatewayApi => http_route_api(client, ns),
        }
    }

    /// The routing objects of `ns` in one form for both modes (see [`Mode::expected`]).
    pub async fn observed(self, client: &Client, ns: &str) -> Vec<Value> {
        match self {
            Mode::Istio => virtual_services(client, ns).await,
            Mode::GatewayApi => http_routes(client, ns).await,
        }
    }

    /// What [`Mode::observed`] returns for one FQDN routed as `http` (path prefixes → Services); a
    /// prefix `""` is the root (no match in a VirtualService, PathPrefix `/` in an HTTPRoute).
    pub fn expected(self, host: &str, http: &[(&[&str], &[&str])]) -> Value {
        match self {
            Mode::Istio => vs(host, http),
            Mode::GatewayApi => {
                let http: Vec<Value> = http
                    .iter()
                    .map(|(m, r)| {
                        let m: Vec<&str> = m
                            .iter()
                            .map(|p| if p.is_empty() { "/" } else { p })
                            .collect();
                        json!({"match": m, "route": r})
                    })
                    .collect();
                json!({"gateways": [parent().to_string()], "hosts": [host], "http": http})
            }
        }
    }

    /// A spec edit another manager might make: routes everything to Service `evil`.
    pub fn hostile_edit(self) -> Value {
        match self {
            Mode::Istio => {
                json!({"spec": {"http": [{"route": [{"destination": {"host": "evil"}}]}]}})
            }
            Mode::GatewayApi => {
                json!({"spec": {"rules": [{"backendRefs": [{"name": "evil", "port": 80}]}]}})
            }
        }
    }

    /// An object of this mode's kind named `name` that no Route owns, for host `mine.example.org`.
    pub fn foreign(self, name: &str) -> DynamicObject {
        let value = match self {
            Mode::Istio => json!({
                "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
                "metadata": {"name": name},
                "spec": {"hosts": ["mine.example.org"], "http": [{"route": [{"destination": {"host": "x"}}]}]}
            }),
            Mode::GatewayApi => json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": name},
                "spec": {"hostnames": ["mine.example.org"], "rules": [{"backendRefs": [{"name": "x", "port": 80}]}]}
            }),
        };
        serde_json::from_value(value).expect("foreign object")
    }
}

pub fn http_route_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<HTTPRoute>(&()))
}

/// HTTPRoutes in the form of [`virtual_services`]: parents as `gateways`, hostnames as `hosts`, per rule
/// the path values as `match` and the backend names as `route`; one entry per FQDN (shards merged, rules
/// sorted by path, longest first, as a VirtualService lists them); sorted by hosts.
pub async fn http_routes(client: &Client, ns: &str) -> Vec<Value> {
    let list = http_route_api(client, ns)
        .list(&ListParams::default())
        .await
        .expect("list httproutes");
    let mut by_host: std::collections::BTreeMap<String, (Value, Vec<Value>)> =
        std::collections::BTreeMap::new();
    for hr in &list.items {
        let spec = &hr.data["spec"];
        let parents: Vec<String> = spec["parentRefs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                format!(
                    "{}/{}",
                    p["namespace"].as_str().unwrap_or(ns),
                    p["name"].as_str().unwrap_or("")
                )
            })
            .collect();
        let hosts = spec["hostnames"].clone();
        let entry = by_host
            .entry(hosts.to_string())
            .or_insert_with(|| (json!({"gateways": parents, "hosts": hosts}), Vec::new()));
        for rule in spec["rules"].as_array().cloned().unwrap_or_default() {
            let m: Vec<Value> = rule["matches"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|m| m["path"]["value"].clone())
                .collect();
            let r: Vec<Value> = rule["backendRefs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|b| b["name"].clone())
                .collect();
            entry.1.push(json!({"match": m, "route": r}));
        }
    }
    by_host
        .into_values()
        .map(|(mut head, mut rules)| {
            rules.sort_by_key(|r| std::cmp::Reverse(r["match"].to_string()));
            head["http"] = Value::Array(rules);
            head
        })
        .collect()
}

/// One destination: (weight, port, destination guid, app guid, process type).
pub type Dest<'a> = (Option<i64>, i64, &'a str, &'a str, &'a str);

/// A Route as the fixtures of upstream's integration tests write it (Appendix A).
pub fn route(name: &str, route_guid: &str, host: &str, path: &str, dests: &[Dest<'_>]) -> Route {
    dests
        .iter()
        .fold(
            fixtures::route(name)
                .host(host)
                .path(path)
                .cloud_controller_labels("cc-space-guid", "cc-org-guid")
                .label("app.kubernetes.io/name", route_guid)
                .label(cfnet_api::ROUTE_GUID_LABEL, route_guid),
            |r, (weight, port, guid, app, process)| {
                r.destination(
                    fixtures::destination(guid, app)
                        .port(*port)
                        .weight_opt(*weight)
                        .process(process),
                )
            },
        )
        .build()
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

/// One route with one destination `guid` (weight 100, port 8080).
pub fn one(name: &str, host: &str, path: &str, guid: &str) -> Route {
    route(
        name,
        name,
        host,
        path,
        &[(Some(100), 8080, guid, "app", "web")],
    )
}

/// Route `name` at hostname/`name` with two destinations weighted `w1` and `w2` (valid when they sum to 100).
pub fn two_destinations(name: &str, w1: i64, w2: i64) -> Route {
    route(
        name,
        name,
        "hostname",
        &format!("/{name}"),
        &[
            (Some(w1), 8080, &format!("d-{name}-1"), "app", "web"),
            (Some(w2), 8080, &format!("d-{name}-2"), "app", "web"),
        ],
    )
}

/// The (reason, note) of the events.k8s.io Events about Route `route`.
pub async fn events_for(client: &Client, ns: &str, route: &str) -> Vec<(String, String)> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    let list = api.list(&ListParams::default()).await.expect("events");
    list.items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(route))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// The names of every object `api` lists (empty when the list fails).
pub async fn names<K>(api: &Api<K>) -> BTreeSet<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .map(|l| l.items.iter().map(|o| o.name_any()).collect())
        .unwrap_or_default()
}
