//! The installation under test: a local control plane, istiod with Istio's validating webhook, the chart's Istio
//! objects and the controller in-process (for the workloads namespace and one the Gateway does not serve); the
//! objects of every case, foreign ones (written by hand, as another writer would) before the Routes.

use std::future::Future;
use std::time::{Duration, Instant};

use cfnet_api::fixtures::{destination, route};
use cfnet_api::{Route, VirtualService};
use cfnet_controller::{Config, InProcess};
use cfnet_testenv::{ControlPlane, Istiod};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};

use crate::common::CFNET;
use crate::common::mesh::{
    apply_route, ensure_namespace, start_control_plane_and_istiod, start_controller,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

pub const NS: &str = "cf-workloads";
/// A workloads namespace the controller watches but the chart's Gateway does not serve.
pub const SPACE_B: &str = "cf-space-b";
pub use crate::common::mesh::GATEWAY;
pub const T: Duration = Duration::from_secs(90);

pub struct Rig {
    pub cp: ControlPlane,
    _istiod: Istiod,
    pub client: Client,
    pub xds: String,
    pub controller: Option<InProcess>,
}

pub async fn start() -> Rig {
    let (cp, istiod) = start_control_plane_and_istiod().await;
    let client = cp.client();
    for ns in [NS, SPACE_B] {
        ensure_namespace(&client, ns).await;
    }
    let xds = istiod.xds_addr().to_string();
    Rig {
        cp,
        _istiod: istiod,
        client,
        xds,
        controller: None,
    }
}

impl Rig {
    async fn start_controller(&mut self) {
        let mut config = Config::new(GATEWAY);
        config.namespaces = vec![NS.to_owned(), SPACE_B.to_owned()];
        config.resync_interval = Duration::from_secs(3600);
        self.controller = Some(start_controller(config, self.client.clone()).await);
    }

    /// An EndpointSlice of Service `service` with one endpoint per entry of `ready` (its Ready condition).
    async fn endpoints(&self, ns: &str, service: &str, subnet: u8, ready: &[bool]) {
        let endpoints: Vec<Value> = ready
            .iter()
            .enumerate()
            .map(|(i, r)| json!({"addresses": [format!("10.1.{subnet}.{}", i + 1)], "conditions": {"ready": r}}))
            .collect();
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": format!("{service}-1"), "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }))
        .unwrap();
        Api::<EndpointSlice>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &slice)
            .await
            .unwrap_or_else(|e| panic!("EndpointSlice of {service}: {e}"));
    }

    /// A Service `s-<guid>` as the Go routecontroller wrote it (no ownerReference cfnet knows).
    async fn foreign_service(&self, guid: &str, app: &str) {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": format!("s-{guid}"), "namespace": NS,
                         "labels": {"cloudfoundry.org/route_guid": "written-by-hand"}},
            "spec": {"selector": {"cloudfoundry.org/app_guid": app},
                     "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
        }))
        .unwrap();
        Api::<Service>::namespaced(self.client.clone(), NS)
            .create(&PostParams::default(), &service)
            .await
            .unwrap();
    }

    /// A VirtualService for `fqdn` written by hand: `(prefix, destination host)` entries in the order given.
    async fn foreign_virtual_service(&self, fqdn: &str, gateway: &str, entries: &[(&str, &str)]) {
        let http: Vec<Value> = entries
            .iter()
            .map(|(prefix, host)| {
                let route = json!([{"destination": {"host": host}}]);
                if *prefix == "/" {
                    json!({"route": route})
                } else {
                    json!({"match": [{"uri": {"prefix": prefix}}], "route": route})
                }
            })
            .collect();
        let vs: VirtualService = serde_json::from_value(json!({
            "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
            "metadata": {"name": cfnet_translate::virtual_service_name(fqdn), "namespace": NS},
            "spec": {"hosts": [fqdn], "gateways": [gateway], "http": http},
        }))
        .unwrap();
        Api::<VirtualService>::namespaced(self.client.clone(), NS)
            .create(&PostParams::default(), &vs)
            .await
            .unwrap_or_else(|e| panic!("VirtualService for {fqdn}: {e}"));
    }

    /// Runs `cfnet explain` with this installation's kubeconfig and istiod (unless `args` name their own).
    pub async fn explain(&self, args: &[&str]) -> (i32, String, String) {
        let mut command = tokio::process::Command::new(CFNET);
        command.arg("explain");
        let state_dir = args.contains(&"--state-dir");
        if !args.contains(&"--kubeconfig") && !state_dir {
            command.arg("--kubeconfig").arg(self.cp.kubeconfig_path());
        }
        if !args.contains(&"--xds") && !state_dir {
            command.args(["--xds", &self.xds]);
        }
        let out = command
            .args(args)
            .env_remove("ISTIO_GATEWAY_NAME")
            .output()
            .await
            .expect("run cfnet explain");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    /// `explain -o json URL` once it reports `want` (code, blocking) — istiod needs a moment for new objects.
    pub async fn json_once(&self, url: &str, want: &[(&str, bool)]) -> (i32, Value) {
        let want: Vec<(String, bool)> = want.iter().map(|(c, b)| ((*c).to_owned(), *b)).collect();
        eventually(&format!("explain {url} reports {want:?}"), || async {
            let (code, stdout, stderr) = self.explain(&["-o", "json", url]).await;
            let report: Value = serde_json::from_str(&stdout)
                .map_err(|e| format!("exit {code}, not JSON ({e}): {stdout}{stderr}"))?;
            let got: Vec<(String, bool)> = report["problems"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["code"].as_str().unwrap().to_owned(),
                        p["blocking"].as_bool().unwrap(),
                    )
                })
                .collect();
            if got != want {
                return Err(format!("{got:?}: {}", report["problems"]));
            }
            // Settled: istiod's endpoints (EDS) may follow its routes by a moment.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (_, again, _) = self.explain(&["-o", "json", url]).await;
            if serde_json::from_str::<Value>(&again).ok().as_ref() == Some(&report) {
                Ok((code, report))
            } else {
                Err(format!("still changing: {again}"))
            }
        })
        .await
    }
}

pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + T;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not within {T:?}; last: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

pub fn example(file: &str) -> Vec<Route> {
    let path = format!("{}/../../examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .flat_map(|doc| {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            match value["items"].as_array() {
                Some(items) => items.clone(),
                None => vec![value],
            }
        })
        .map(|value| serde_json::from_value(value).unwrap())
        .collect()
}

fn app(name: &str, host: &str) -> Route {
    route(name)
        .namespace(NS)
        .host(host)
        .destination(destination(name, &format!("app-{name}")))
        .build()
}

/// Written by hand, not by cfnet: entries in the wrong order, and a mesh destination without a port.
async fn write_foreign_objects(rig: &Rig) {
    rig.foreign_service("legacy-root", "app-legacy-root").await;
    rig.foreign_service("legacy-api", "app-legacy-api").await;
    rig.foreign_virtual_service(
        "legacy.apps.example.com",
        GATEWAY,
        &[("/", "s-legacy-root"), ("/api", "s-legacy-api")],
    )
    .await;
    rig.foreign_service("old-backend", "app-old-backend").await;
    rig.foreign_virtual_service(
        "old-backend.apps.internal",
        "mesh",
        &[("/", "s-old-backend")],
    )
    .await;
}

/// A Route `name` in `ns` on `host`.`domain``path` with one destination of app `app-<name>`.
fn case_route(name: &str, ns: &str, host: &str, domain: (&str, bool), path: &str) -> Route {
    route(name)
        .namespace(ns)
        .host(host)
        .domain(domain.0, domain.1)
        .path(path)
        .destination(destination(name, &format!("app-{name}")))
        .build()
}

/// The Routes of the cases: some examples, and one per situation.
fn case_routes() -> Vec<Route> {
    let apps = ("apps.example.com", false);
    let mut routes = Vec::new();
    routes.extend(example("weighted-split.yaml"));
    routes.extend(example("invalid-weights.yaml"));
    routes.extend(example("internal-route.yaml"));
    routes.extend(example("context-paths.yaml"));
    routes.push(app("cart", "cart"));
    routes.push(route("soon").namespace(NS).host("soon").build());
    routes.push(case_route("legacy-root", NS, "legacy", apps, ""));
    routes.push(case_route("legacy-api", NS, "legacy", apps, "/api"));
    routes.push(case_route(
        "old-backend",
        NS,
        "old-backend",
        ("apps.internal", true),
        "",
    ));
    routes.push(case_route("space-b", SPACE_B, "space-b", apps, ""));
    routes.push(case_route(
        "other",
        NS,
        "shop",
        ("other.example.org", false),
        "",
    ));
    routes
}

/// The EndpointSlices of the cases' Services: (namespace, Service, ready per endpoint); the index is the subnet.
const SLICES: [(&str, &str, &[bool]); 11] = [
    (NS, "s-0b1e5c1a-blue", &[true, true]),
    (NS, "s-0b1e5c1a-green", &[true]),
    (NS, "s-dest-news", &[true]),
    (NS, "s-cart", &[false]),
    (NS, "s-dest-backend", &[true]),
    (NS, "s-legacy-root", &[true]),
    (NS, "s-legacy-api", &[true]),
    (NS, "s-old-backend", &[true]),
    (SPACE_B, "s-space-b", &[true]),
    (NS, "s-dest-shop-frontend", &[true]),
    (NS, "s-dest-shop-api", &[true]),
];

async fn write_endpoint_slices(rig: &Rig) {
    for (i, (ns, service, ready)) in SLICES.into_iter().enumerate() {
        rig.endpoints(ns, service, u8::try_from(i).unwrap(), ready)
            .await;
    }
    let slice = (NS, "s-other", &[true][..]);
    rig.endpoints(slice.0, slice.1, 20, slice.2).await;
}

/// Waits until every Route has its verdict.
async fn wait_for_ready_conditions(rig: &Rig, routes: &[Route]) {
    for r in routes {
        let api: Api<Route> = Api::namespaced(rig.client.clone(), &r.namespace().unwrap());
        let name = r.name_any();
        eventually(&format!("Route {name} has a Ready condition"), || async {
            let got = api.get(&name).await.map_err(|e| e.to_string())?;
            got.status
                .filter(|s| s.conditions.iter().any(|c| c.type_ == "Ready"))
                .map(|_| ())
                .ok_or_else(|| "no Ready condition".to_owned())
        })
        .await;
    }
}

/// Everything the cases need, foreign objects before the Routes that meet them.
pub async fn build(rig: &mut Rig) {
    write_foreign_objects(rig).await;
    rig.start_controller().await;
    let routes = case_routes();
    for r in &routes {
        apply_route(&rig.client, r).await;
    }
    write_endpoint_slices(rig).await;
    wait_for_ready_conditions(rig, &routes).await;
}
