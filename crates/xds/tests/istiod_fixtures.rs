//! The views and the lookup on what real istiod served for the objects in tests/fixtures (captured as
//! tests/fixtures/README.md says): the CF ingress gateway and a sidecar in cf-workloads.

use std::collections::BTreeMap;

use cfnet_xds::view::{self, ClusterWeightView, PathView, RouteView};
use cfnet_xds::{ProxyConfig, ResourceKind};
use serde_json::json;

const WORKLOADS_HTTPS: &str = "https.443.https-workloads.istio-ingressgateway.cf-system";
const SYSTEM_HTTPS: &str = "https.443.https-system.istio-ingressgateway.cf-system";

fn gateway() -> ProxyConfig {
    ProxyConfig::decode(include_bytes!("fixtures/gateway.pb")).expect("gateway fixture")
}

fn sidecar() -> ProxyConfig {
    ProxyConfig::decode(include_bytes!("fixtures/sidecar.pb")).expect("sidecar fixture")
}

/// The Services and VirtualServices `cfnet render` wrote for examples/, as applied for the capture.
fn rendered() -> Vec<serde_json::Value> {
    serde_yaml_ng::Deserializer::from_str(include_str!("fixtures/rendered.yaml"))
        .map(|doc| serde::Deserialize::deserialize(doc).expect("rendered.yaml"))
        .collect()
}

/// What Envoy should have for one VirtualService http entry: (prefix, clusters with weights and headers).
fn expected_routes(
    vs: &serde_json::Value,
    ports: &BTreeMap<String, u64>,
) -> Vec<(String, Vec<ClusterWeightView>)> {
    let ns = vs["metadata"]["namespace"].as_str().unwrap();
    vs["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|http| {
            let prefix = http["match"][0]["uri"]["prefix"]
                .as_str()
                .unwrap_or("/")
                .to_owned();
            let clusters = http["route"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    let host = d["destination"]["host"].as_str().unwrap();
                    let headers: BTreeMap<String, String> =
                        serde_json::from_value(d["headers"]["request"]["set"].clone()).unwrap();
                    ClusterWeightView {
                        name: format!("outbound|{}||{host}.{ns}.svc.cluster.local", ports[host]),
                        weight: d["weight"].as_u64().unwrap() as u32,
                        request_headers_to_add: headers,
                    }
                })
                .collect();
            (prefix, clusters)
        })
        .collect()
}

/// A route as checked: prefix, clusters, with a single destination's headers moved onto its cluster (istiod
/// puts them on the route) so that both shapes compare alike.
fn actual(r: &RouteView) -> (String, Vec<ClusterWeightView>) {
    let PathView::Prefix(prefix) = &r.route_match.path else {
        panic!("{r:?} is not a prefix match");
    };
    let mut clusters = r.clusters.clone();
    if let [one] = clusters.as_mut_slice() {
        assert!(one.request_headers_to_add.is_empty(), "{r:?}");
        one.request_headers_to_add = r.request_headers_to_add.clone();
    } else {
        assert!(r.request_headers_to_add.is_empty(), "{r:?}");
    }
    (prefix.clone(), clusters)
}

#[test]
fn every_gateway_virtual_service_entry_is_an_envoy_route_in_order_on_http_and_https() {
    let config = gateway();
    let docs = rendered();
    let ports: BTreeMap<String, u64> = docs
        .iter()
        .filter(|d| d["kind"] == "Service")
        .map(|d| {
            let name = d["metadata"]["name"].as_str().unwrap().to_owned();
            (name, d["spec"]["ports"][0]["port"].as_u64().unwrap())
        })
        .collect();
    let routes = view::routes(&config);
    let mut checked = 0;
    for vs in docs
        .iter()
        .filter(|d| d["kind"] == "VirtualService" && d["spec"]["gateways"][0] != "mesh")
    {
        let host = vs["spec"]["hosts"][0].as_str().unwrap();
        let name = format!(
            "{}/{}",
            vs["metadata"]["namespace"].as_str().unwrap(),
            vs["metadata"]["name"].as_str().unwrap()
        );
        for (route_config, port) in [("http.8080", 80), (WORKLOADS_HTTPS, 443)] {
            let got: Vec<&RouteView> = routes
                .iter()
                .filter(|r| r.route_config == route_config && r.domains.iter().any(|d| d == host))
                .collect();
            assert!(
                !got.is_empty(),
                "{host} has no virtual host in {route_config}"
            );
            assert!(
                got.iter()
                    .all(|r| r.virtual_host == format!("{host}:{port}"))
            );
            assert!(
                got.iter()
                    .all(|r| r.virtual_service.as_deref() == Some(name.as_str())),
                "{got:?}"
            );
            assert_eq!(
                got.into_iter().map(actual).collect::<Vec<_>>(),
                expected_routes(vs, &ports),
                "{host} in {route_config}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 8, "4 external FQDNs on http and https");
    assert!(
        routes.iter().all(|r| r.route_config != SYSTEM_HTTPS),
        "no system VirtualService was applied"
    );
}

#[test]
fn the_json_contract_on_a_real_weighted_route() {
    let routes = view::routes(&gateway());
    let store = routes
        .iter()
        .find(|r| r.route_config == "http.8080" && r.virtual_host == "store.apps.example.com:80")
        .unwrap();
    let cf = |app: &str| json!({"CF-App-Id": app, "CF-App-Process-Type": "web", "CF-Organization-Id": "org-1111", "CF-Space-Id": "space-2222"});
    assert_eq!(
        serde_json::to_value(store).unwrap(),
        json!({
            "route_config": "http.8080",
            "virtual_host": "store.apps.example.com:80",
            "domains": ["store.apps.example.com"],
            "match": {"prefix": "/"},
            "clusters": [
                {"name": "outbound|8080||s-0b1e5c1a-blue.cf-workloads.svc.cluster.local", "weight": 80, "request_headers_to_add": cf("app-blue")},
                {"name": "outbound|8080||s-0b1e5c1a-green.cf-workloads.svc.cluster.local", "weight": 20, "request_headers_to_add": cf("app-green")}
            ],
            "request_headers_to_add": {},
            "virtual_service": "cf-workloads/vs-e2a2fd3606ab15a73fef5a6a5a21613c454f0409543678a3bb4438a98523c897"
        })
    );
}

#[test]
fn gateway_listeners_are_on_the_service_target_ports_and_reference_the_served_route_configs() {
    let config = gateway();
    let listeners = view::listeners(&config);
    let got: Vec<(&str, &str, Vec<&str>)> = listeners
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.address.as_str(),
                l.route_configs.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("0.0.0.0_8080", "0.0.0.0:8080", vec!["http.8080"]),
            (
                "0.0.0.0_8443",
                "0.0.0.0:8443",
                vec![SYSTEM_HTTPS, WORKLOADS_HTTPS]
            ),
        ]
    );
    assert_eq!(
        config
            .route_configs
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["http.8080", SYSTEM_HTTPS, WORKLOADS_HTTPS]
    );
    assert!(config.missing().is_empty(), "{:?}", config.missing());
    for kind in ResourceKind::ALL {
        assert!(!config.versions[&kind].is_empty(), "{kind}");
    }
}

#[test]
fn gateway_clusters_count_the_ready_endpoints_istiod_serves() {
    let counts: BTreeMap<String, Option<u32>> = view::clusters(&gateway())
        .into_iter()
        .map(|c| (c.name, c.endpoints))
        .collect();
    let ep = |svc: &str| counts[&format!("outbound|8080||{svc}.cf-workloads.svc.cluster.local")];
    assert_eq!(ep("s-dest-shop-frontend"), Some(2));
    assert_eq!(ep("s-0b1e5c1a-blue"), Some(1));
    // Its EndpointSlice has one ready and one not-ready endpoint: istiod serves the ready one.
    assert_eq!(ep("s-0b1e5c1a-green"), Some(1));
    assert_eq!(ep("s-dest-news"), Some(0));
    assert_eq!(counts["BlackHoleCluster"], None);
    // Every cluster a gateway route names exists.
    for r in view::routes(&gateway()) {
        for c in &r.clusters {
            assert!(
                counts.contains_key(&c.name),
                "{} routes to missing cluster {}",
                r.virtual_host,
                c.name
            );
        }
    }
}

/// The first hit of a lookup of `shop.apps.example.com` `path` on the gateway: its prefix, how many later routes
/// also match, its clusters. Asserts which route configurations have a virtual host for the host.
fn shop_first_hit(config: &ProxyConfig, path: &str) -> (String, usize, Vec<String>) {
    let hits = config.lookup("shop.apps.example.com", None, path);
    // Every route configuration with a virtual host for the host: the https-system server's only virtual
    // host is istiod's `blackhole` (`*`, no route: 404), which takes any host.
    let names: Vec<(&str, &str, bool)> = hits
        .iter()
        .map(|h| {
            (
                h.route_config.as_str(),
                h.virtual_host.as_str(),
                h.route.is_some(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("http.8080", "shop.apps.example.com:80", true),
            (SYSTEM_HTTPS, "blackhole:443", false),
            (WORKLOADS_HTTPS, "shop.apps.example.com:443", true)
        ]
    );
    let hit = hits.into_iter().next().unwrap();
    let route = hit.route.unwrap();
    let PathView::Prefix(prefix) = route.route_match.path else {
        panic!()
    };
    (
        prefix,
        hit.also_matching.len(),
        route
            .clusters
            .into_iter()
            .map(|c| c.name)
            .collect::<Vec<_>>(),
    )
}

/// `route_config_for` picks the route configuration by port and SNI as Envoy's filter chain match does.
fn assert_route_config_for_port_and_sni(config: &ProxyConfig) {
    let by_sni = |sni: &str| config.route_config_for(8443, Some(sni));
    assert_eq!(
        config.route_config_for(8080, None).as_deref(),
        Some("http.8080")
    );
    assert_eq!(
        by_sni("shop.apps.example.com").as_deref(),
        Some(WORKLOADS_HTTPS)
    );
    assert_eq!(by_sni("api.sys.example.com").as_deref(), Some(SYSTEM_HTTPS));
    assert_eq!(by_sni("apps.example.com").as_deref(), Some(WORKLOADS_HTTPS));
    assert_eq!(by_sni("other.example.org"), None);
}

#[test]
fn lookup_on_the_gateway_follows_envoy_first_match() {
    let config = gateway();
    let shop = |path: &str| shop_first_hit(&config, path);
    let (prefix, also, clusters) = shop("/api/v2/items");
    assert_eq!((prefix.as_str(), also), ("/api/v2", 2));
    assert_eq!(clusters.len(), 2);
    // Envoy prefixes are not path-segment aware: /apix is routed by the /api entry.
    assert_eq!(shop("/apix").0, "/api");
    assert_eq!(
        shop("/legacy/x"),
        (
            "/".to_owned(),
            0,
            vec!["outbound|8080||s-dest-shop-frontend.cf-workloads.svc.cluster.local".to_owned()]
        )
    );
    // Upper-case Host: Envoy lower-cases it before matching domains.
    assert_eq!(config.lookup("SHOP.apps.example.com", None, "/").len(), 3);
    // On HTTP and on the app-domain HTTPS server an unknown host finds no virtual host; only `blackhole` takes it.
    let unknown = config.lookup("unknown.apps.example.com", None, "/");
    assert_eq!(unknown.len(), 1);
    assert_eq!(
        (unknown[0].route_config.as_str(), unknown[0].route.is_none()),
        (SYSTEM_HTTPS, true)
    );
    assert_route_config_for_port_and_sni(&config);
}

#[test]
fn sidecar_sees_the_internal_route_and_the_views_show_its_missing_cluster() {
    let config = sidecar();
    // The sidecar's outbound listener for port 80 uses route configuration "80"; the others' `allow_any` (`*`)
    // virtual host takes any host too.
    let hits = config.lookup("backend.apps.internal", None, "/");
    let hit = hits.iter().find(|h| h.route_config == "80").unwrap();
    assert_eq!(hit.virtual_host, "backend.apps.internal:80");
    assert!(
        hits.iter()
            .filter(|h| h.route_config != "80")
            .all(|h| h.virtual_host == "allow_any" || h.domains == ["*"])
    );
    let route = hit.route.as_ref().unwrap();
    assert_eq!(route.request_headers_to_add["CF-App-Id"], "app-backend");
    // Captured before issue 12's F1 fix: the mesh VirtualService's destination has no port, so istiod routes
    // to port 80 of a Service that only has 8080, a cluster CDS does not have. The views make that visible.
    let cluster = &route.clusters[0].name;
    assert_eq!(
        cluster,
        "outbound|80||s-dest-backend.cf-workloads.svc.cluster.local"
    );
    assert!(!config.clusters.contains_key(cluster));
    assert!(
        config
            .clusters
            .contains_key("outbound|8080||s-dest-backend.cf-workloads.svc.cluster.local")
    );
    // A sidecar's outbound listeners reference RDS by port; its inbound ones carry inline route configs.
    let listeners = view::listeners(&config);
    let by_name: BTreeMap<&str, &view::ListenerView> =
        listeners.iter().map(|l| (l.name.as_str(), l)).collect();
    assert_eq!(by_name["0.0.0.0_8080"].route_configs, ["8080"]);
    assert_eq!(by_name["virtualOutbound"].address, "0.0.0.0:15001");
    assert!(
        by_name["virtualInbound"]
            .filter_chains
            .iter()
            .any(|c| c.handler.starts_with("inline:"))
    );
    // istiod sets ignore_port_in_host_matching on sidecar route configurations: `s-dest-backend:8080` finds the
    // Service's virtual host (short name), not `allow_any`.
    let by_port = config.lookup("s-dest-backend", Some(8080), "/");
    let hit = by_port.iter().find(|h| h.route_config == "8080").unwrap();
    assert_eq!(
        hit.virtual_host,
        "s-dest-backend.cf-workloads.svc.cluster.local:8080"
    );
    // The sidecar's own workload (labels app-frontend) gets an inbound cluster for its Service port.
    assert!(config.clusters.contains_key("inbound|8080||"));
}

#[test]
fn saved_form_round_trips() {
    for config in [gateway(), sidecar()] {
        assert_eq!(ProxyConfig::decode(&config.encode()).unwrap(), config);
    }
    let err = ProxyConfig::decode(&[0x05, 0x01]).unwrap_err();
    assert!(err.to_string().starts_with("saved response #0"), "{err}");
}

#[test]
fn tables_of_the_gateway() {
    let config = gateway();
    insta::assert_snapshot!(
        "gateway_listeners",
        view::listeners_table(&view::listeners(&config))
    );
    insta::assert_snapshot!("gateway_routes", view::routes_table(&view::routes(&config)));
    insta::assert_snapshot!(
        "gateway_clusters",
        view::clusters_table(&view::clusters(&config))
    );
}
