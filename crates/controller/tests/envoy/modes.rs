//! Issue 16: the gateway-api mode routes like the VirtualService mode. For the generated Route sets, the CF
//! ingress gateway's Envoy routes that istiod (with its Gateway API implementation) builds from the HTTPRoutes
//! match those it builds from the VirtualServices — hosts, paths, clusters, weights, CF headers — except the
//! documented path-semantics difference (docs/gateway-api.md): a Gateway API `PathPrefix` becomes a
//! segment-aware `path_separated_prefix` where a VirtualService `prefix` is a raw string prefix.
//!
//! The Gateway `istio-system/cf-gateway` (gateway.networking.k8s.io/v1, class `istio`; the controller's
//! `gateway_api_parent`) is bound to the chart's ingress gateway Service by its address (Istio's "manual
//! deployment", which wants the Gateway in the Service's namespace), so one gateway proxy is asked in both
//! modes. Compared are the routes both modes program: routes with destinations that pass every check
//! and that the gateway-api mode can express (not internal, at most 16 destinations).

use std::collections::{BTreeMap, BTreeSet};

use cfnet_api::Route;
use cfnet_translate::gateway_api::match_key;
use cfnet_translate::{RoutingApi, Settings, translate};
use cfnet_xds::ProxyConfig;
use cfnet_xds::view::{self, IstioClusterName, PathView, RouteView};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use serde_json::json;

use crate::generator::{self, NAMESPACE};
use crate::proof::{self, GATEWAY_HTTP, PLACEHOLDER_HOST};
use crate::rig::{GATEWAY, Rig, RigOptions, T, eventually};
use crate::{SEEDS, fetch};

/// One Envoy route as compared: path, whether its match is segment-aware, and the clusters with their
/// weight and CF headers (a single destination's headers, which istiod puts on the route, moved onto it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    path: String,
    segment_aware: bool,
    clusters: Vec<(String, u32, BTreeMap<String, String>)>,
}

/// (FQDN, match key) of every route both modes program with destinations.
fn comparable(routes: &[Route]) -> BTreeSet<(String, String)> {
    let programmed = |routing_api| -> BTreeSet<(String, String)> {
        let settings = Settings {
            gateway: GATEWAY.to_owned(),
            routing_api,
            ..Default::default()
        };
        let problems: BTreeSet<String> = translate(routes, &settings)
            .problems
            .into_iter()
            .map(|p| p.route)
            .collect();
        routes
            .iter()
            .filter(|r| !problems.contains(r.metadata.name.as_deref().unwrap_or_default()))
            .filter(|r| !r.spec.destinations.is_empty() && !r.spec.domain.internal)
            .map(|r| (r.spec.fqdn(), match_key(r.spec.path()).to_owned()))
            .collect()
    };
    let istio = programmed(RoutingApi::Istio);
    programmed(RoutingApi::GatewayApi)
        .intersection(&istio)
        .cloned()
        .collect()
}

fn row(r: &RouteView) -> Result<Row, String> {
    let (path, segment_aware) = match &r.route_match.path {
        PathView::Prefix(p) => (p.clone(), false),
        PathView::PathSeparatedPrefix(p) => (p.clone(), true),
        other => return Err(format!("unexpected path match {other:?} in {r:?}")),
    };
    let clusters = r
        .clusters
        .iter()
        .filter(|c| c.weight > 0)
        .map(|c| {
            // Header names are case-insensitive; istiod lower-cases those of Gateway API filters.
            let headers = c
                .request_headers_to_add
                .iter()
                .chain(&r.request_headers_to_add)
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            (c.name.clone(), c.weight, headers)
        })
        .collect();
    Ok(Row {
        path: match_key(&path).to_owned(),
        segment_aware,
        clusters,
    })
}

/// The gateway's HTTP routes by FQDN, restricted to the `comparable` (FQDN, match key) pairs.
fn rows(
    config: &ProxyConfig,
    comparable: &BTreeSet<(String, String)>,
) -> Result<BTreeMap<String, Vec<Row>>, String> {
    let fqdns: BTreeSet<&str> = comparable.iter().map(|(f, _)| f.as_str()).collect();
    let mut out: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let Some(rc) = config.route_configs.get(GATEWAY_HTTP) else {
        return Ok(out);
    };
    for r in view::route::route_config_routes(rc) {
        let Some(fqdn) = r.domains.iter().find(|d| fqdns.contains(d.as_str())) else {
            continue;
        };
        let placeholder = r
            .clusters
            .iter()
            .any(|c| IstioClusterName::parse(&c.name).is_some_and(|n| n.host == PLACEHOLDER_HOST));
        if placeholder || r.direct_response.is_some() {
            continue;
        }
        let row = row(&r)?;
        if comparable.contains(&(fqdn.clone(), row.path.clone())) {
            out.entry(fqdn.clone()).or_default().push(row);
        }
    }
    Ok(out)
}

/// Does `earlier`, tried first, take requests meant for `later`? With a raw prefix, whenever the string is
/// a prefix; segment-aware, when it is a prefix at a segment boundary.
fn shadows(earlier: &Row, later: &Row) -> bool {
    let (a, b) = (earlier.path.as_str(), later.path.as_str());
    a != b
        && b.starts_with(a)
        && (!earlier.segment_aware || a == "/" || b.as_bytes().get(a.len()) == Some(&b'/'))
}

/// The first pair of rows where an earlier one takes a later one's requests.
fn shadowed(rows: &[Row]) -> Option<(String, String)> {
    rows.iter().enumerate().find_map(|(i, a)| {
        rows[i + 1..]
            .iter()
            .find(|b| shadows(a, b))
            .map(|b| (a.path.clone(), b.path.clone()))
    })
}

/// Rows of both modes, equal but for the path semantics (which must differ exactly as documented:
/// `/` is a plain prefix in both, every other path segment-aware in gateway-api mode only). Envoy tries
/// routes in order: in each mode no route may come after one that takes its requests; beyond that the
/// modes order differently (istiod sorts Gateway API matches by length, VirtualService entries keep
/// cfnet's url order), which changes nothing, so the rows are compared as sets.
fn compare(
    istio: &BTreeMap<String, Vec<Row>>,
    gateway_api: &BTreeMap<String, Vec<Row>>,
    comparable: &BTreeSet<(String, String)>,
) -> Result<usize, String> {
    let mut problems = Vec::new();
    let count: usize = istio.values().map(Vec::len).sum();
    if count != comparable.len() {
        problems.push(format!(
            "istio mode: {count} of {} comparable routes in Envoy",
            comparable.len()
        ));
    }
    if istio.keys().ne(gateway_api.keys()) {
        problems.push(format!(
            "hosts differ: istio {:?}, gateway-api {:?}",
            istio.keys().collect::<Vec<_>>(),
            gateway_api.keys().collect::<Vec<_>>()
        ));
    }
    for (fqdn, vs_rows) in istio {
        let gw_rows = gateway_api.get(fqdn).cloned().unwrap_or_default();
        let documented = |r: &Row| Row {
            segment_aware: r.path != "/",
            ..r.clone()
        };
        let mut expected: Vec<Row> = vs_rows.iter().map(documented).collect();
        expected.sort();
        if vs_rows.iter().any(|r| r.segment_aware) {
            problems.push(format!(
                "{fqdn}: a VirtualService route is segment-aware: {vs_rows:?}"
            ));
        }
        for (mode, rows) in [("istio", vs_rows), ("gateway-api", &gw_rows)] {
            if let Some((a, b)) = shadowed(rows) {
                problems.push(format!(
                    "{fqdn}: {mode} mode: {a} comes before {b} and takes its requests"
                ));
            }
        }
        let mut sorted = gw_rows.clone();
        sorted.sort();
        if sorted != expected {
            let only = |a: &[Row], b: &[Row]| -> Vec<Row> {
                a.iter().filter(|r| !b.contains(r)).cloned().collect()
            };
            problems.push(format!(
                "{fqdn}:\n  only in istio mode (made segment-aware): {:?}\n  only in gateway-api mode: {:?}",
                only(&expected, &sorted),
                only(&sorted, &expected)
            ));
        }
    }
    if problems.is_empty() {
        Ok(count)
    } else {
        Err(problems.join("\n"))
    }
}

/// The Gateway API Gateway of the CF routes, on the chart's ingress gateway Service.
async fn apply_gateway(rig: &Rig) {
    let gateway: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "cf-gateway", "namespace": "istio-system"},
        "spec": {
            "gatewayClassName": "istio",
            "addresses": [{"type": "Hostname", "value": "istio-ingressgateway.istio-system.svc.cluster.local"}],
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP",
                           "allowedRoutes": {"namespaces": {"from": "All"}}}]
        }
    }))
    .expect("Gateway");
    let resource = ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
        "gateway.networking.k8s.io",
        "v1",
        "Gateway",
    ));
    Api::<DynamicObject>::namespaced_with(rig.client.clone(), "istio-system", &resource)
        .patch(
            "cf-gateway",
            &PatchParams::apply("envoy-modes-test").force(),
            &Patch::Apply(&gateway),
        )
        .await
        .expect("apply the Gateway");
}

/// Waits until the gateway's routes for the comparable pairs are complete in the current mode.
async fn settled(
    rig: &Rig,
    label: &str,
    comparable: &BTreeSet<(String, String)>,
) -> BTreeMap<String, Vec<Row>> {
    eventually(label, T, || async {
        let config = fetch(rig, &proof::gateway()).await?;
        let rows = rows(&config, comparable)?;
        let count: usize = rows.values().map(Vec::len).sum();
        if count == comparable.len() {
            Ok(rows)
        } else {
            Err(format!("{count} of {} routes: {rows:?}", comparable.len()))
        }
    })
    .await
}

/// What istiod made of the Gateway API objects, for a failure message: the Gateway's and one HTTPRoute's
/// status, and the gateway's route configurations.
async fn diagnosis(rig: &Rig, config: &ProxyConfig) -> String {
    let gvk = kube::core::GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway");
    let gateway = Api::<DynamicObject>::namespaced_with(
        rig.client.clone(),
        "istio-system",
        &ApiResource::from_gvk(&gvk),
    )
    .get_opt("cf-gateway")
    .await;
    let hr = Api::<DynamicObject>::namespaced_with(
        rig.client.clone(),
        NAMESPACE,
        &ApiResource::erase::<cfnet_api::gateway_api::HTTPRoute>(&()),
    )
    .list(&ListParams::default())
    .await
    .ok()
    .and_then(|l| l.items.into_iter().next());
    format!(
        "Gateway status: {}\nHTTPRoute status: {}\nroute configurations: {:?}",
        gateway
            .ok()
            .flatten()
            .map(|g| g.data["status"].to_string())
            .unwrap_or_default(),
        hr.map(|h| h.data["status"].to_string()).unwrap_or_default(),
        config.route_configs.keys().collect::<Vec<_>>()
    )
}

async fn http_route_count(rig: &Rig) -> usize {
    Api::<DynamicObject>::namespaced_with(
        rig.client.clone(),
        NAMESPACE,
        &ApiResource::erase::<cfnet_api::gateway_api::HTTPRoute>(&()),
    )
    .list(&ListParams::default())
    .await
    .map(|l| l.items.len())
    .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_api_mode_routes_like_the_virtual_service_mode_in_envoy() {
    let mut rig = Rig::start_with(&[], RigOptions { gateway_api: true }).await;
    apply_gateway(&rig).await;
    let mut compared = 0;
    for seed in SEEDS {
        let routes = generator::route_set(seed);
        let comparable = comparable(&routes);
        for r in &routes {
            rig.apply(r).await;
        }
        let istio = settled(&rig, &format!("seed {seed}: istio mode"), &comparable).await;

        rig.restart_controller(RoutingApi::GatewayApi).await;
        eventually(
            &format!("seed {seed}: VirtualServices pruned"),
            T,
            || async {
                let left = rig.virtual_services().list(&ListParams::default()).await;
                match left {
                    Ok(l) if l.items.is_empty() && http_route_count(&rig).await > 0 => Ok(()),
                    other => Err(format!("{:?}", other.map(|l| l.items.len()))),
                }
            },
        )
        .await;
        let n = eventually(
            &format!("seed {seed}: Envoy routes of both modes match"),
            T,
            || async {
                let config = fetch(&rig, &proof::gateway()).await?;
                match compare(&istio, &rows(&config, &comparable)?, &comparable) {
                    Ok(n) => Ok(n),
                    Err(e) => Err(format!("{e}\n{}", diagnosis(&rig, &config).await)),
                }
            },
        )
        .await;
        compared += n;
        rig.restart_controller(RoutingApi::Istio).await;
        rig.delete_all().await;
    }
    eprintln!("compared {compared} Envoy routes over seeds {SEEDS:?}");
    assert!(compared > 0);
    rig.stop().await;
}
