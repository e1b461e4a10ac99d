//! The Envoy half against the configurations real istiod served the CF ingress gateway and a cf-workloads sidecar
//! for the examples (crates/xds/tests/fixtures).

use cfnet_xds::{Proxy, ProxyConfig};

use super::super::decide::explain;
use super::super::envoy::EnvoyFacts;
use super::super::report::{Code, Report};
use super::*;

fn gateway_config() -> ProxyConfig {
    ProxyConfig::decode(include_bytes!("../../../../xds/tests/fixtures/gateway.pb")).unwrap()
}

fn sidecar_config() -> ProxyConfig {
    ProxyConfig::decode(include_bytes!("../../../../xds/tests/fixtures/sidecar.pb")).unwrap()
}

fn gateway(config: ProxyConfig) -> EnvoyFacts {
    EnvoyFacts::Fetched {
        proxy: Proxy::default(),
        config: Box::new(config),
    }
}

/// The gateway's clusters of a report: (name, weight, exists, endpoints).
fn clusters_of(report: &Report) -> Vec<(&str, u32, bool, Option<u32>)> {
    report
        .envoy
        .as_ref()
        .unwrap()
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.weight, c.exists, c.endpoints))
        .collect()
}

/// The healthy weighted example through the captured gateway: its HTTPS route configuration and both clusters.
fn check_the_healthy_example() {
    let endpoints = [
        ("s-0b1e5c1a-blue", 1),
        ("s-0b1e5c1a-green", 1),
        ("s-dest-news", 1),
    ];
    let report = explain(&facts(
        "https://store.apps.example.com/",
        example_routes(),
        &endpoints,
        gateway(gateway_config()),
    ));
    assert_eq!(codes(&report), []);
    let envoy = report.envoy.as_ref().unwrap();
    assert_eq!(
        envoy.route_config.as_deref(),
        Some("https.443.https-workloads.istio-ingressgateway.cf-system")
    );
    let cluster = |svc: &str| format!("outbound|8080||{svc}.cf-workloads.svc.cluster.local");
    let (blue, green) = (cluster("s-0b1e5c1a-blue"), cluster("s-0b1e5c1a-green"));
    assert_eq!(
        clusters_of(&report),
        [
            (blue.as_str(), 80, true, Some(1)),
            (green.as_str(), 20, true, Some(1)),
        ]
    );
    assert!(envoy.https.as_ref().unwrap().bound);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["envoy"]["clusters"][0]["exists"], true);
    assert!(json["envoy"]["domains"].is_array() && json["envoy"]["route_config"].is_string());
}

/// `url` on shop.other.example.org, a Route the capture was made without, next to the examples.
fn other_domain_report(url: &str) -> Report {
    let other = route("other")
        .namespace(NS)
        .host("shop")
        .domain("other.example.org", false)
        .destination(destination("dest-other", "app-other"))
        .build();
    let (mut routes, mut vss) = programmed(example_routes());
    let (other, other_vs) = programmed(vec![other]);
    routes.extend(other);
    vss.extend(other_vs);
    explain(&facts_with(
        url,
        routes,
        vss,
        &[("s-dest-other", 1)],
        gateway(gateway_config()),
    ))
}

/// The examples against what real istiod served the gateway for them.
#[test]
fn examples_against_the_captured_gateway() {
    check_the_healthy_example();

    // A host the gateway has no HTTPS server for; on plain HTTP it still works.
    let report = other_domain_report("https://shop.other.example.org/");
    assert_codes(&report, &[(Code::HttpsNotBound, true)]);
    // Over plain HTTP the route is missing too: the capture was made without it.
    let report = other_domain_report("http://shop.other.example.org/");
    assert_codes(
        &report,
        &[(Code::NotInEnvoy, true), (Code::HttpsNotBound, false)],
    );
}

#[test]
fn envoy_on_an_older_configuration_is_not_in_envoy() {
    // The captured gateway routes store 80/20; the Route now says 50/50.
    let mut routes = example_routes();
    for r in &mut routes {
        for d in &mut r.spec.destinations {
            if d.guid.starts_with("0b1e5c1a") {
                d.weight = Some(50);
            }
        }
    }
    let endpoints = [("s-0b1e5c1a-blue", 1), ("s-0b1e5c1a-green", 1)];
    let report = explain(&facts(
        "http://store.apps.example.com/",
        routes,
        &endpoints,
        gateway(gateway_config()),
    ));
    assert_codes(&report, &[(Code::NotInEnvoy, true)]);
    assert!(
        report.problems[0]
            .message
            .contains("has not pushed the current VirtualService"),
        "{}",
        report.problems[0].message
    );
}

#[test]
fn internal_route_through_the_captured_sidecar_misses_its_cluster() {
    // Captured before issue 12's F1 fix: the mesh VirtualService has no destination port.
    let (routes, mut vss) = programmed(example_routes());
    for vs in &mut vss {
        for http in &mut vs.spec.http {
            for d in &mut http.route {
                d.destination.port = None;
            }
        }
    }
    let sidecar = EnvoyFacts::Fetched {
        proxy: Proxy::sidecar(NS, []),
        config: Box::new(sidecar_config()),
    };
    let report = explain(&facts_with(
        "http://backend.apps.internal/",
        routes,
        vss,
        &[("s-dest-backend", 1)],
        sidecar,
    ));
    assert!(report.internal);
    assert_codes(&report, &[(Code::ClusterMissing, true)]);
    let envoy = report.envoy.unwrap();
    assert_eq!(envoy.route_config.as_deref(), Some("80"));
    assert_eq!(envoy.proxy, "sidecar:cf-workloads");
    assert!(
        report.problems[0]
            .message
            .contains("Service cf-workloads/s-dest-backend does not exist or has no port 80")
    );
}

#[test]
fn unreachable_istiod_skips_envoy_without_failing() {
    let routes = vec![weighted("root", "", &[("a", 100)])];
    let envoy = EnvoyFacts::Unavailable {
        error: "istiod at 127.0.0.1:1 is not reachable (connection refused)".into(),
    };
    let report = explain(&facts(
        "shop.apps.example.com/",
        routes,
        &[("s-a", 1)],
        envoy,
    ));
    assert_eq!(codes(&report), [(Code::XdsUnavailable, false)]);
    assert!(report.envoy.is_none());
    assert_eq!(report.exit_code(), 0);
}

/// A host the gateway routes by a VirtualService cfnet does not manage (no Route, no `vs-<sha256>`): reported,
/// but the request reaches an app.
#[test]
fn a_host_routed_without_a_route_is_not_a_404() {
    let report = explain(&facts_with(
        "https://store.apps.example.com/",
        Vec::new(),
        Vec::new(),
        &[],
        gateway(gateway_config()),
    ));
    assert_eq!(codes(&report), [(Code::UnknownRoute, false)]);
    assert!(
        report.problems[0]
            .message
            .contains("routed by an object cfnet does not manage")
    );
    assert_eq!(report.exit_code(), 0);
}
