//! `cfnet explain` against a real API server, real istiod (with Istio's validating webhook) and the controller
//! in-process, with the chart's Istio objects (Gateway, gateway Service, workloads Sidecar). There is no
//! kube-controller-manager, so the test writes the EndpointSlices. One installation serves every case: one
//! situation per problem code, a healthy weighted URL, an internal URL through a sidecar, and the exit status 2
//! cases; each runs the real binary. The same outputs are the examples of docs/debugging.md and the README:
//! the test fails when those drift (`UPDATE_DOCS=1 cargo test -p cfnet --test explain` rewrites them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cfnet_api::fixtures::{destination, route};
use cfnet_api::{Route, VirtualService};
use cfnet_controller::{Config, InProcess};
use cfnet_testenv::{ControlPlane, Istiod, IstiodOptions};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const NS: &str = "cf-workloads";
/// A workloads namespace the controller watches but the chart's Gateway does not serve.
const SPACE_B: &str = "cf-space-b";
const GATEWAY: &str = "cf-system/istio-ingressgateway";
const T: Duration = Duration::from_secs(90);
/// What the documentation shows instead of the test's kubeconfig and istiod address.
const DOC_FLAGS: &str = "--state-dir /tmp/cfnet-dev";

struct Rig {
    cp: ControlPlane,
    _istiod: Istiod,
    client: Client,
    xds: String,
    controller: Option<InProcess>,
}

async fn start() -> Rig {
    let cp = ControlPlane::start().await.expect("control plane");
    let istiod = Istiod::start(&cp, IstiodOptions::default())
        .await
        .expect("istiod");
    cfnet_testenv::chart::apply_chart_istio_objects(&cp, &[])
        .await
        .expect("the chart's Istio objects");
    let client = cp.client();
    for ns in [NS, SPACE_B] {
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        let _ = Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await;
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
        let mut controller = InProcess::start(config, self.client.clone());
        controller
            .wait_ready(Duration::from_secs(30))
            .await
            .expect("controller ready");
        self.controller = Some(controller);
    }

    async fn apply_route(&self, route: &Route) {
        let ns = route.namespace().unwrap();
        Api::<Route>::namespaced(self.client.clone(), &ns)
            .patch(
                &route.name_any(),
                &PatchParams::apply("cloud-controller").force(),
                &Patch::Apply(route),
            )
            .await
            .unwrap_or_else(|e| panic!("apply Route {}: {e}", route.name_any()));
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
    async fn explain(&self, args: &[&str]) -> (i32, String, String) {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cfnet"));
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
    async fn json_once(&self, url: &str, want: &[(&str, bool)]) -> (i32, Value) {
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

async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
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

fn example(file: &str) -> Vec<Route> {
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

/// Everything the cases need, foreign objects before the Routes that meet them.
async fn build(rig: &mut Rig) {
    // Written by hand, not by cfnet: entries in the wrong order, and a mesh destination without a port.
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
    rig.start_controller().await;

    let mut routes = Vec::new();
    routes.extend(example("weighted-split.yaml"));
    routes.extend(example("invalid-weights.yaml"));
    routes.extend(example("internal-route.yaml"));
    routes.extend(example("context-paths.yaml"));
    routes.push(app("cart", "cart"));
    routes.push(route("soon").namespace(NS).host("soon").build());
    let legacy = |name: &str, path: &str| {
        route(name)
            .namespace(NS)
            .host("legacy")
            .path(path)
            .destination(destination(name, &format!("app-{name}")))
            .build()
    };
    routes.push(legacy("legacy-root", ""));
    routes.push(legacy("legacy-api", "/api"));
    routes.push(
        route("old-backend")
            .namespace(NS)
            .host("old-backend")
            .domain("apps.internal", true)
            .destination(destination("old-backend", "app-old-backend"))
            .build(),
    );
    routes.push(
        route("space-b")
            .namespace(SPACE_B)
            .host("space-b")
            .destination(destination("space-b", "app-space-b"))
            .build(),
    );
    routes.push(
        route("other")
            .namespace(NS)
            .host("shop")
            .domain("other.example.org", false)
            .destination(destination("other", "app-other"))
            .build(),
    );
    for r in &routes {
        rig.apply_route(r).await;
    }
    let slices: [(&str, &str, &[bool]); 11] = [
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
    for (i, (ns, service, ready)) in slices.into_iter().enumerate() {
        rig.endpoints(ns, service, u8::try_from(i).unwrap(), ready)
            .await;
    }
    let slice = (NS, "s-other", &[true][..]);
    rig.endpoints(slice.0, slice.1, 20, slice.2).await;
    // Every Route has its verdict.
    for r in &routes {
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

/// URL, the problems it reports (code, blocking), the exit status.
type Case<'a> = (&'a str, &'a [(&'a str, bool)], i32);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_through_the_controller_and_istiod() {
    let mut rig = start().await;
    build(&mut rig).await;
    let mut doc = BTreeMap::new();

    healthy_weighted(&rig, &mut doc).await;
    internal_through_a_sidecar(&rig, &mut doc).await;
    one_situation_per_problem_code(&rig, &mut doc).await;
    wrong_case(&rig, &mut doc).await;
    istiod_unreachable(&rig).await;
    state_dir(&rig, &doc).await;
    unusable_input(&rig).await;
    check_docs(&doc);
    if let Some(controller) = rig.controller.take() {
        controller.stop(Duration::from_secs(10)).await.unwrap();
    }
}

/// Healthy, weighted, with endpoints: the README's example.
async fn healthy_weighted(rig: &Rig, doc: &mut BTreeMap<&'static str, (i32, String, String)>) {
    let (code, report) = rig.json_once("https://store.apps.example.com/", &[]).await;
    assert_eq!(code, 0);
    assert_eq!(report["fqdn"], "store.apps.example.com");
    assert_eq!(
        report["matched"]["name"],
        "5f0e1d9c-3a51-4c9e-9f0c-0d6b1f1c2a10"
    );
    let dests: Vec<(String, i64, i64, i64)> = report["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["service"].as_str().unwrap().to_owned(),
                d["weight"].as_i64().unwrap(),
                d["port"].as_i64().unwrap(),
                d["endpoints"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        dests,
        [
            ("s-0b1e5c1a-blue".to_owned(), 80, 8080, 2),
            ("s-0b1e5c1a-green".to_owned(), 20, 8080, 1)
        ]
    );
    let envoy = &report["envoy"];
    assert_eq!(
        envoy["route_config"],
        "https.443.https-workloads.istio-ingressgateway.cf-system"
    );
    assert!(
        envoy["domains"]
            .as_array()
            .unwrap()
            .contains(&json!("store.apps.example.com"))
    );
    assert_eq!(
        envoy["clusters"],
        json!([
            {"name": "outbound|8080||s-0b1e5c1a-blue.cf-workloads.svc.cluster.local", "weight": 80, "exists": true, "endpoints": 2},
            {"name": "outbound|8080||s-0b1e5c1a-green.cf-workloads.svc.cluster.local", "weight": 20, "exists": true, "endpoints": 1},
        ])
    );
    let vs = format!(
        "{NS}/{}",
        cfnet_translate::virtual_service_name("store.apps.example.com")
    );
    assert_eq!(report["virtual_service"], json!(vs));
    assert_eq!(report["routes"][0]["ready"], true);
    assert_eq!(report["routes"][0]["reason"], "Programmed");
    doc.insert(
        "https://store.apps.example.com/",
        rig.explain(&["https://store.apps.example.com/"]).await,
    );
}

/// Internal, through a sidecar of the route's namespace.
async fn internal_through_a_sidecar(
    rig: &Rig,
    doc: &mut BTreeMap<&'static str, (i32, String, String)>,
) {
    let (code, report) = rig.json_once("http://backend.apps.internal/", &[]).await;
    assert_eq!(code, 0);
    assert_eq!(report["envoy"]["proxy"], "sidecar:cf-workloads");
    assert_eq!(report["envoy"]["route_config"], "80");
    assert_eq!(
        report["envoy"]["clusters"],
        json!([
            {"name": "outbound|8080||s-dest-backend.cf-workloads.svc.cluster.local", "weight": 100, "exists": true, "endpoints": 1},
        ])
    );
    doc.insert(
        "http://backend.apps.internal/",
        rig.explain(&["http://backend.apps.internal/"]).await,
    );
}

/// One situation per problem code.
async fn one_situation_per_problem_code(
    rig: &Rig,
    doc: &mut BTreeMap<&'static str, (i32, String, String)>,
) {
    let cases: &[Case] = &[
        (
            "https://typo.apps.example.com/",
            &[("unknown_route", true)],
            1,
        ),
        (
            "https://news.apps.example.com/beta/latest",
            &[("route_not_ready", true)],
            1,
        ),
        (
            "https://soon.apps.example.com/",
            &[("no_destinations", true)],
            1,
        ),
        (
            "https://cart.apps.example.com/",
            &[("no_endpoints", true)],
            1,
        ),
        (
            "https://legacy.apps.example.com/api/orders",
            &[("route_not_ready", true), ("shadowed", true)],
            1,
        ),
        (
            "http://space-b.apps.example.com/",
            &[("not_in_envoy", true), ("https_not_bound", false)],
            1,
        ),
        (
            "http://old-backend.apps.internal/",
            &[("route_not_ready", false), ("cluster_missing", true)],
            1,
        ),
        (
            "https://shop.other.example.org/",
            &[("https_not_bound", true)],
            1,
        ),
        (
            "http://shop.other.example.org/",
            &[("https_not_bound", false)],
            0,
        ),
    ];
    for (url, want, exit) in cases {
        let (code, report) = rig.json_once(url, want).await;
        assert_eq!(code, *exit, "{url}: {report}");
        doc.insert(url, rig.explain(&[url]).await);
    }
    // The ready route news itself works; the matched route of the not-ready case is it.
    let (_, report) = rig
        .json_once(
            "https://news.apps.example.com/beta/latest",
            &[("route_not_ready", true)],
        )
        .await;
    assert_eq!(report["matched"]["name"], "route-news");
    // Longest url first, as the VirtualService orders them.
    assert_eq!(report["routes"][0]["name"], "route-news-beta");
    assert_eq!(report["routes"][0]["reason"], "Invalid");
    assert_eq!(report["routes"][1]["reason"], "Programmed");
}

/// `/API/orders` does not take the `/api` entry: no problem (the catch-all's app answers), but a note.
async fn wrong_case(rig: &Rig, doc: &mut BTreeMap<&'static str, (i32, String, String)>) {
    let url = "https://shop.apps.example.com/API/orders";
    let (code, report) = rig.json_once(url, &[]).await;
    assert_eq!(code, 0);
    assert_eq!(report["matched"]["name"], "route-shop-root");
    let note = report["notes"][0].as_str().unwrap();
    assert!(
        note.starts_with(
            "route cf-workloads/route-shop-api has path /api: Istio compares paths case-sensitively"
        ),
        "{note}"
    );
    doc.insert(url, rig.explain(&[url]).await);
}

/// istiod not reachable: the Envoy part is skipped, not failed.
async fn istiod_unreachable(rig: &Rig) {
    let (code, stdout, _) = rig
        .explain(&[
            "--xds",
            "127.0.0.1:1",
            "-o",
            "json",
            "https://store.apps.example.com/",
        ])
        .await;
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["problems"][0]["code"], "xds_unavailable");
    assert_eq!(report["envoy"], Value::Null);
}

/// `--state-dir DIR` of `cfnet dev up --istiod`: DIR/kubeconfig and DIR/istiod.
async fn state_dir(rig: &Rig, doc: &BTreeMap<&'static str, (i32, String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(rig.cp.kubeconfig_path(), dir.path().join("kubeconfig")).unwrap();
    std::fs::write(dir.path().join("istiod"), format!("{}\n", rig.xds)).unwrap();
    let (code, stdout, stderr) = rig
        .explain(&[
            "--state-dir",
            dir.path().to_str().unwrap(),
            "https://store.apps.example.com/",
        ])
        .await;
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(stdout, doc["https://store.apps.example.com/"].1);
}

/// Unusable input: exit 2, one line.
async fn unusable_input(rig: &Rig) {
    let (code, stdout, stderr) = rig.explain(&["ftp://store.apps.example.com/"]).await;
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("cfnet explain: invalid URL \"ftp://store.apps.example.com/\""),
        "{stderr}"
    );
    let dead = dead_kubeconfig(rig.cp.kubeconfig_path());
    let (code, _, stderr) = rig
        .explain(&[
            "--kubeconfig",
            dead.to_str().unwrap(),
            "https://store.apps.example.com/",
        ])
        .await;
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot list Routes") && stderr.contains("API server is reachable"),
        "{stderr}"
    );
}

/// A copy of `kubeconfig` whose server is a closed port.
fn dead_kubeconfig(kubeconfig: &Path) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let mut value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    value["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1".into();
    let path = kubeconfig.with_file_name("dead-kubeconfig");
    std::fs::write(&path, serde_yaml_ng::to_string(&value).unwrap()).unwrap();
    path
}

/// Each `<!-- cfnet explain URL -->` marker in docs/debugging.md and README.md is followed by a console block
/// with that command's real output; fails when one differs, rewrites them with UPDATE_DOCS=1.
fn check_docs(outputs: &BTreeMap<&str, (i32, String, String)>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    let mut drift = Vec::new();
    for file in ["docs/debugging.md", "README.md"] {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let (fresh, markers) = regenerate(&text, outputs);
        assert!(
            markers > 0,
            "{file} has no `<!-- cfnet explain URL -->` marker"
        );
        if fresh != text {
            if update {
                std::fs::write(&path, &fresh).unwrap();
            } else {
                drift.push(file);
            }
        }
    }
    assert!(
        drift.is_empty(),
        "{drift:?} show outputs that differ from `cfnet explain`'s: run `UPDATE_DOCS=1 cargo test -p cfnet --test explain` and review the diff"
    );
}

fn regenerate(text: &str, outputs: &BTreeMap<&str, (i32, String, String)>) -> (String, usize) {
    let mut out = String::new();
    let mut lines = text.split_inclusive('\n').peekable();
    let mut markers = 0;
    while let Some(line) = lines.next() {
        out.push_str(line);
        let Some(url) = line
            .trim()
            .strip_prefix("<!-- cfnet explain ")
            .and_then(|rest| rest.strip_suffix("-->"))
            .map(str::trim)
        else {
            continue;
        };
        markers += 1;
        let (code, stdout, stderr) = outputs
            .get(url)
            .unwrap_or_else(|| panic!("no output of `cfnet explain {url}` in this test"));
        assert!(stderr.is_empty(), "{url}: {stderr}");
        // Drop the old block, if any.
        if lines.peek().is_some_and(|l| l.starts_with("```")) {
            lines.next();
            for l in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
            }
        }
        out.push_str(&format!(
            "```console\n$ cfnet explain {DOC_FLAGS} {url}\n{stdout}$ echo $?\n{code}\n```\n"
        ));
    }
    (out, markers)
}
