//! `cfnet proxy-config`, run as the built binary against what `cfnet dev up --istiod` gives (a state dir whose
//! `istiod` file names istiod's xDS address): real etcd + kube-apiserver + istiod with Istio's validating
//! webhook, the chart's Istio objects, the controller in-process and the example Routes. The JSON of `routes`
//! must show, for every programmed example Route, exactly one Envoy route on its FQDN with its path, clusters,
//! weights and the four CF headers; `clusters` and `listeners` must hold what those routes use; the tables
//! have a row per object; `ISTIO_GATEWAY_NAME` / `--proxy gateway:NS/NAME` find the chart's Gateway's workload.
//! Errors without servers: proxy_config_cli.rs. Fails (never skips) when a binary is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cfnet_api::{ConditionStatus, READY, Route};
use cfnet_controller::{Config, InProcess};
use cfnet_testenv::{ControlPlane, Istiod};
use common::mesh::{
    GATEWAY, apply_route, ensure_namespace, start_control_plane_and_istiod, start_controller,
};
use common::{CFNET, cfnet};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::Value;

/// The gateway's HTTP server (port 80, listener on the Service's targetPort 8080).
const GATEWAY_HTTP: &str = "http.8080";
/// The gateway's HTTPS server for the app domains (`https-workloads` of the chart's Gateway).
const GATEWAY_HTTPS: &str = "https.443.https-workloads.istio-ingressgateway.cf-system";
/// A sidecar's route configuration for outbound port 80 (`http://backend.apps.internal`).
const SIDECAR_HTTP: &str = "80";
const T: Duration = Duration::from_secs(60);

/// Every Route of examples/*.yaml (Lists unpacked).
fn example_routes() -> Vec<Route> {
    let routes: Vec<Route> = common::example_route_documents()
        .into_iter()
        .map(|doc| serde_json::from_value(doc).unwrap())
        .collect();
    assert!(routes.len() >= 8, "the examples: {}", routes.len());
    routes
}

/// One cluster of an Envoy route with the headers added when it is picked (a single destination's headers,
/// which istiod puts on the route, are moved onto its cluster so both shapes compare alike).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Cluster {
    name: String,
    weight: u64,
    headers: BTreeMap<String, String>,
}

/// What a programmed Route with destinations must be in Envoy: its clusters (Services `s-<guid>` on the
/// destination port; unweighted destinations split 100 evenly, the remainder on the first; weight 0 left
/// out) and the four CF headers of each destination.
fn expected_clusters(route: &Route) -> Vec<Cluster> {
    let ns = route.namespace().unwrap();
    let n = route.spec.destinations.len() as u64;
    let label = |key: &str| route.labels().get(key).cloned().unwrap_or_default();
    let mut clusters: Vec<Cluster> = route
        .spec
        .destinations
        .iter()
        .enumerate()
        .map(|(i, d)| Cluster {
            name: format!("outbound|{}||s-{}.{ns}.svc.cluster.local", d.port, d.guid),
            weight: match d.weight {
                Some(w) => w as u64,
                None if i == 0 => 100 / n + 100 % n,
                None => 100 / n,
            },
            headers: BTreeMap::from([
                ("CF-App-Id".to_owned(), d.app.guid.clone()),
                (
                    "CF-App-Process-Type".to_owned(),
                    d.app.process.type_.clone(),
                ),
                (
                    "CF-Organization-Id".to_owned(),
                    label(cfnet_api::ORG_GUID_LABEL),
                ),
                ("CF-Space-Id".to_owned(), label(cfnet_api::SPACE_GUID_LABEL)),
            ]),
        })
        .filter(|c| c.weight > 0)
        .collect();
    clusters.sort();
    clusters
}

fn actual_clusters(row: &Value) -> Vec<Cluster> {
    let route_headers = headers(&row["request_headers_to_add"]);
    let mut clusters: Vec<Cluster> = row["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut headers = headers(&c["request_headers_to_add"]);
            headers.extend(route_headers.clone());
            Cluster {
                name: c["name"].as_str().unwrap().to_owned(),
                weight: c["weight"].as_u64().unwrap(),
                headers,
            }
        })
        .collect();
    clusters.sort();
    clusters
}

fn headers(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn is_ready(route: &Route) -> bool {
    route.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == READY && c.status == ConditionStatus::True)
    })
}

/// (route configuration, FQDN, prefix) → clusters: what the programmed examples must be in Envoy (an
/// external route on the gateway's HTTP and app-domain HTTPS servers, an internal one in a sidecar).
type Expected = BTreeMap<(String, String, String), Vec<Cluster>>;

fn expected(routes: &[Route]) -> Expected {
    routes
        .iter()
        .filter(|r| is_ready(r) && !r.spec.destinations.is_empty())
        .flat_map(|r| {
            let route_configs = if r.spec.domain.internal {
                vec![SIDECAR_HTTP]
            } else {
                vec![GATEWAY_HTTP, GATEWAY_HTTPS]
            };
            let prefix = r.spec.path.clone().filter(|p| !p.is_empty());
            let prefix = prefix.unwrap_or_else(|| "/".to_owned());
            route_configs.into_iter().map(move |rc| {
                (
                    (rc.to_owned(), r.spec.fqdn(), prefix.clone()),
                    expected_clusters(r),
                )
            })
        })
        .collect()
}

/// The rows of `routes -o json` on the FQDNs of `expected`, as (route configuration, FQDN, prefix) →
/// clusters of each row (a key twice means two Envoy routes for one Route: a failure).
fn actual(json: &Value, expected: &Expected) -> Vec<((String, String, String), Vec<Cluster>)> {
    let fqdns: BTreeSet<&String> = expected.keys().map(|(_, f, _)| f).collect();
    let mut out = Vec::new();
    for row in json.as_array().unwrap() {
        let rc = row["route_config"].as_str().unwrap();
        // Not the chart's system domain's HTTPS server, nor a sidecar's per-port route configurations.
        if ![GATEWAY_HTTP, GATEWAY_HTTPS, SIDECAR_HTTP].contains(&rc) {
            continue;
        }
        let Some(fqdn) = row["domains"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .find(|d| fqdns.contains(&d.to_string()))
        else {
            continue;
        };
        let prefix = row["match"]["prefix"]
            .as_str()
            .unwrap_or_else(|| panic!("a CF route is a prefix match: {row}"));
        out.push((
            (rc.to_owned(), fqdn.to_owned(), prefix.to_owned()),
            actual_clusters(row),
        ));
    }
    out
}

fn cfnet_with_gateway_env(args: &[&str], istio_gateway_name: &str) -> Output {
    Command::new(CFNET)
        .args(args)
        .env("ISTIO_GATEWAY_NAME", istio_gateway_name)
        .output()
        .unwrap()
}

fn stdout_json(out: &Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} prints JSON: {e}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

struct Installation {
    cp: ControlPlane,
    istiod: Istiod,
    controller: InProcess,
}

/// What `cfnet dev up --istiod` runs plus the chart's Istio objects and the controller, with the examples
/// applied and every Route's Ready condition written.
async fn install_examples(routes: &[Route]) -> (Installation, Vec<Route>) {
    let (cp, istiod) = start_control_plane_and_istiod().await;
    let client = cfnet_controller::connect(Some(cp.kubeconfig_path()))
        .await
        .expect("a client for the control plane");
    let controller = start_controller(Config::new(GATEWAY), client.clone()).await;
    let namespaces: BTreeSet<String> = routes.iter().filter_map(|r| r.namespace()).collect();
    for ns in &namespaces {
        // The chart's objects created cf-workloads already; any other namespace of the examples:
        ensure_namespace(&client, ns).await;
    }
    for route in routes {
        apply_route(&client, route).await;
    }
    let deadline = Instant::now() + T;
    let current = loop {
        let mut current = Vec::new();
        for ns in &namespaces {
            current.extend(
                Api::<Route>::namespaced(client.clone(), ns)
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items,
            );
        }
        let with_condition = current.iter().filter(|r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == READY))
        });
        if with_condition.count() == routes.len() {
            break current;
        }
        assert!(
            Instant::now() < deadline,
            "every Route gets its Ready condition"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    (
        Installation {
            cp,
            istiod,
            controller,
        },
        current,
    )
}

/// Runs `cfnet proxy-config routes -o json` until the expected routes show (istiod computes and pushes the
/// configuration some time after the VirtualServices are written), returning the last JSON.
fn routes_json_when_served(state: &Path, proxy: &str, expected: &Expected) -> Value {
    let wanted: Vec<_> = expected
        .iter()
        .filter(|((rc, _, _), _)| proxy_of(rc) == proxy)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let deadline = Instant::now() + T;
    loop {
        let out = cfnet(&[
            "proxy-config",
            "routes",
            "-o",
            "json",
            "--proxy",
            proxy,
            "--state-dir",
            state.to_str().unwrap(),
        ]);
        let json = stdout_json(&out, "cfnet proxy-config routes -o json");
        let mut got = actual(&json, expected);
        got.retain(|((rc, _, _), _)| proxy_of(rc) == proxy);
        got.sort();
        if got == wanted || Instant::now() >= deadline {
            assert_eq!(
                got, wanted,
                "the {proxy}'s Envoy routes on the examples' FQDNs: one per programmed Route, with its clusters, \
                 weights and CF headers (left: served, right: expected)"
            );
            return json;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn proxy_of(route_config: &str) -> &'static str {
    if route_config == SIDECAR_HTTP {
        "sidecar:cf-workloads"
    } else {
        "gateway"
    }
}

/// Every cluster a gateway route names exists; EDS was served for it (no pods here: 0 endpoints). Returns the
/// JSON of `clusters`.
fn check_clusters(dir: &str, expected: &Expected) -> Value {
    let clusters = stdout_json(
        &cfnet(&["proxy-config", "clusters", "-o", "json", "--state-dir", dir]),
        "cfnet proxy-config clusters -o json",
    );
    let by_name: BTreeMap<&str, &Value> = clusters
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c))
        .collect();
    for ((rc, _, _), wanted) in expected.iter().filter(|((rc, _, _), _)| rc == GATEWAY_HTTP) {
        for c in wanted {
            let cluster = by_name
                .get(c.name.as_str())
                .unwrap_or_else(|| panic!("{rc}: cluster {} exists in {clusters}", c.name));
            assert_eq!(cluster["type"], "EDS", "{cluster}");
            assert_eq!(cluster["endpoints"], 0, "{cluster}");
        }
    }
    clusters
}

/// The gateway's listeners are on the Service's targetPorts and use the route configurations; `--save` writes
/// what `ProxyConfig::decode` reads (the fixtures). Returns the JSON of `listeners`.
fn check_listeners(dir: &str) -> Value {
    let saved = Path::new(dir).join("gateway.pb");
    let listeners = stdout_json(
        &cfnet(&[
            "proxy-config",
            "listeners",
            "-o",
            "json",
            "--state-dir",
            dir,
            "--save",
            saved.to_str().unwrap(),
        ]),
        "cfnet proxy-config listeners -o json",
    );
    let decoded = cfnet_xds::ProxyConfig::decode(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(
        decoded.listeners.len(),
        listeners.as_array().unwrap().len(),
        "--save keeps what was printed"
    );
    let http = listeners
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["address"] == "0.0.0.0:8080")
        .unwrap_or_else(|| panic!("a listener on 0.0.0.0:8080: {listeners}"));
    assert!(
        http["route_configs"]
            .as_array()
            .unwrap()
            .contains(&Value::from(GATEWAY_HTTP)),
        "{http}"
    );
    listeners
}

/// The tables (the default output): a header and one row per route, cluster and listener; the FQDNs show.
fn check_tables(dir: &str, expected: &Expected, json: &[(&str, &Value, &str)]) {
    for (what, value, header) in json {
        let out = cfnet(&["proxy-config", what, "--state-dir", dir]);
        assert!(out.status.success(), "{what}");
        let text = String::from_utf8(out.stdout.clone()).unwrap();
        assert!(text.starts_with(&format!("{header} ")), "{text}");
        assert_eq!(
            text.lines().count(),
            value.as_array().unwrap().len() + 1,
            "a header and one row per {what}:\n{text}"
        );
        if *what == "routes" {
            for (rc, fqdn, _) in expected.keys() {
                if rc == GATEWAY_HTTP {
                    assert!(text.contains(fqdn.as_str()), "{fqdn} in\n{text}");
                }
            }
        }
    }
}

/// The Gateway named by `ISTIO_GATEWAY_NAME` (as the controller reads it) or `--proxy gateway:NS/NAME` is looked
/// up in the API server (DIR/kubeconfig): the chart's Gateway is served by the default workload, `gateway`.
fn check_gateway_by_name(dir: &str, gateway: &Value) {
    let routes_json = ["proxy-config", "routes", "-o", "json", "--state-dir", dir];
    let by_env = stdout_json(
        &cfnet_with_gateway_env(&routes_json, "cf-system/istio-ingressgateway"),
        "ISTIO_GATEWAY_NAME=cf-system/istio-ingressgateway cfnet proxy-config routes",
    );
    assert_eq!(&by_env, gateway, "the chart's Gateway is the default proxy");
    let by_flag = [
        &routes_json[..],
        &["--proxy", "gateway:cf-system/istio-ingressgateway"],
    ]
    .concat();
    let by_flag = stdout_json(
        &cfnet_with_gateway_env(&by_flag, "cf-system/nope"),
        "cfnet proxy-config routes --proxy gateway:cf-system/istio-ingressgateway",
    );
    assert_eq!(&by_flag, gateway, "--proxy wins over ISTIO_GATEWAY_NAME");
    let out = cfnet_with_gateway_env(&routes_json, "cf-system/nope");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("Gateway cf-system/nope does not exist"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_config_shows_every_programmed_example_route_in_envoy() {
    let routes = example_routes();
    let (installation, current) = install_examples(&routes).await;
    // The state dir `cfnet dev up --istiod` leaves: DIR/istiod holds the xDS address and a newline.
    let state = tempfile::tempdir().unwrap();
    std::fs::write(
        state.path().join("istiod"),
        format!("{}\n", installation.istiod.xds_addr()),
    )
    .unwrap();
    std::fs::copy(
        installation.cp.kubeconfig_path(),
        state.path().join("kubeconfig"),
    )
    .unwrap();
    let state_path = state.path().to_path_buf();
    let expected = expected(&current);
    assert!(
        expected.keys().any(|(rc, _, _)| rc == SIDECAR_HTTP)
            && expected.values().any(|c| c.len() == 2),
        "the examples have an internal route and a weighted one: {expected:?}"
    );

    let check = tokio::task::spawn_blocking(move || {
        let gateway = routes_json_when_served(&state_path, "gateway", &expected);
        routes_json_when_served(&state_path, "sidecar:cf-workloads", &expected);
        let dir = state_path.to_str().unwrap();
        let clusters = check_clusters(dir, &expected);
        let listeners = check_listeners(dir);
        check_tables(
            dir,
            &expected,
            &[
                ("routes", &gateway, "ROUTE CONFIG"),
                ("clusters", &clusters, "CLUSTER"),
                ("listeners", &listeners, "LISTENER"),
            ],
        );
        check_gateway_by_name(dir, &gateway);
    });
    let checked = check.await;
    let Installation {
        cp,
        mut istiod,
        controller,
    } = installation;
    controller
        .stop(Duration::from_secs(10))
        .await
        .expect("controller stops");
    istiod.stop().await.expect("istiod stops");
    drop(cp);
    if let Err(e) = checked {
        std::panic::resume_unwind(e.into_panic());
    }
}
