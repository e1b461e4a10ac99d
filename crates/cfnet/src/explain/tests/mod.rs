//! Table tests of the decisions, without a server: Routes and VirtualServices from the translation (what the
//! controller writes) and hand-made VirtualServices for what it never writes; envoy.rs adds the Envoy
//! configurations real istiod served.

use cfnet_api::fixtures::{destination, route};
use cfnet_api::{Condition, ConditionStatus, Route, RouteStatus, VirtualService};
use cfnet_translate::{Settings, translate};
use kube::ResourceExt;

use super::decide::{Facts, claiming, explain};
use super::envoy::EnvoyFacts;
use super::report::{Code, Report, RouteRef};
use super::request::Request;

mod envoy;

pub(super) const NS: &str = "cf-workloads";
const GATEWAY: &str = "cf-system/istio-ingressgateway";

pub(super) fn example_routes() -> Vec<Route> {
    let files = [
        include_str!("../../../../../examples/single-destination.yaml"),
        include_str!("../../../../../examples/weighted-split.yaml"),
        include_str!("../../../../../examples/context-paths.yaml"),
        include_str!("../../../../../examples/internal-route.yaml"),
        include_str!("../../../../../examples/invalid-weights.yaml"),
    ];
    files
        .iter()
        .flat_map(|text| serde_yaml_ng::Deserializer::from_str(text))
        .flat_map(|doc| {
            let value: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
            match value["items"].as_array() {
                Some(items) => items.clone(),
                None => vec![value],
            }
        })
        .map(|value| serde_json::from_value(value).unwrap())
        .collect()
}

pub(super) fn ref_(name: &str) -> RouteRef {
    RouteRef {
        namespace: NS.to_owned(),
        name: name.to_owned(),
    }
}

/// The routes with the Ready condition the controller gives them, and the VirtualServices it writes.
pub(super) fn programmed(mut routes: Vec<Route>) -> (Vec<Route>, Vec<VirtualService>) {
    let settings = Settings {
        gateway: GATEWAY.to_owned(),
        ..Settings::default()
    };
    let t = translate(&routes, &settings);
    for r in &mut routes {
        let problem = t.problems.iter().find(|p| p.route == r.name_any());
        let (status, reason, message) = match problem {
            Some(p) => (
                ConditionStatus::False,
                p.reason.to_string(),
                p.message.clone(),
            ),
            None => (
                ConditionStatus::True,
                "Programmed".to_owned(),
                "programmed".to_owned(),
            ),
        };
        r.status = Some(RouteStatus {
            conditions: vec![Condition {
                type_: "Ready".to_owned(),
                status,
                reason: Some(reason),
                message: Some(message),
                last_transition_time: None,
                observed_generation: None,
            }],
        });
    }
    (routes, t.virtual_services)
}

/// Facts for `url` over `routes` (made Ready by the translation) and `endpoints` per Service.
pub(super) fn facts(
    url: &str,
    routes: Vec<Route>,
    endpoints: &[(&str, u32)],
    envoy: EnvoyFacts,
) -> Facts {
    let (routes, vss) = programmed(routes);
    facts_with(url, routes, vss, endpoints, envoy)
}

pub(super) fn facts_with(
    url: &str,
    routes: Vec<Route>,
    vss: Vec<VirtualService>,
    endpoints: &[(&str, u32)],
    envoy: EnvoyFacts,
) -> Facts {
    let request = Request::parse(url).unwrap();
    let (fqdn, routes) = claiming(&routes, &request.host);
    let virtual_service = vss
        .into_iter()
        .find(|vs| vs.spec.hosts.first() == Some(&fqdn));
    Facts {
        request,
        fqdn,
        routes,
        virtual_service,
        services: endpoints
            .iter()
            .map(|(s, n)| ((NS.to_owned(), (*s).to_owned()), *n))
            .collect(),
        envoy,
    }
}

/// Fails naming the problems unless `report` has exactly the problems `want` (code, blocking).
pub(super) fn assert_codes(report: &Report, want: &[(Code, bool)]) {
    assert_eq!(codes(report), want, "{:#?}", report.problems);
}

pub(super) fn codes(report: &Report) -> Vec<(Code, bool)> {
    report
        .problems
        .iter()
        .map(|p| (p.code, p.blocking))
        .collect()
}

pub(super) fn weighted(name: &str, path: &str, dests: &[(&str, i64)]) -> Route {
    let mut b = route(name).namespace(NS).host("shop").path(path);
    for (guid, weight) in dests {
        b = b.destination(destination(guid, &format!("app-{guid}")).weight(*weight));
    }
    b.build()
}

/// What, the facts, the problems (code, blocking), the matched Route.
type Case<'a> = (&'a str, Facts, Vec<(Code, bool)>, Option<&'a str>);

/// Facts without asking Envoy.
fn without_envoy(url: &str, routes: Vec<Route>, endpoints: &[(&str, u32)]) -> Facts {
    facts(url, routes, endpoints, EnvoyFacts::NotAsked)
}

/// The rows of `problem_table_without_envoy`.
fn problem_cases() -> Vec<Case<'static>> {
    let shop = || {
        vec![
            weighted("root", "", &[("a", 80), ("b", 20)]),
            weighted("api", "/api", &[("c", 100)]),
        ]
    };
    let mut invalid = weighted("beta", "/beta", &[("d", 60), ("e", 30)]);
    invalid.metadata.name = Some("beta".into());
    let lone = route("empty").namespace(NS).build();
    let ok = [("s-a", 2), ("s-b", 1), ("s-c", 1)];
    vec![
        (
            "healthy",
            without_envoy("https://shop.apps.example.com/x", shop(), &ok),
            vec![],
            Some("root"),
        ),
        (
            "longest prefix",
            without_envoy("shop.apps.example.com/api/v1", shop(), &ok),
            vec![],
            Some("api"),
        ),
        (
            "unknown host",
            without_envoy("nope.apps.example.com/", shop(), &ok),
            vec![(Code::UnknownRoute, true)],
            None,
        ),
        (
            "one destination down",
            without_envoy(
                "shop.apps.example.com/",
                shop(),
                &[("s-a", 2), ("s-b", 0), ("s-c", 1)],
            ),
            vec![(Code::NoEndpoints, false)],
            Some("root"),
        ),
        (
            "every destination down",
            without_envoy("shop.apps.example.com/", shop(), &[("s-a", 0), ("s-c", 1)]),
            vec![(Code::NoEndpoints, true), (Code::NoEndpoints, true)],
            Some("root"),
        ),
        (
            "not ready: goes to the catch-all",
            without_envoy(
                "shop.apps.example.com/beta/x",
                [shop(), vec![invalid]].concat(),
                &ok,
            ),
            vec![(Code::RouteNotReady, true)],
            Some("root"),
        ),
        (
            "placeholder",
            without_envoy("empty.apps.example.com/", vec![lone], &[]),
            vec![(Code::NoDestinations, true)],
            Some("empty"),
        ),
        (
            "no route takes the path",
            without_envoy(
                "shop.apps.example.com/other",
                vec![weighted("api", "/api", &[("c", 100)])],
                &ok,
            ),
            vec![(Code::UnknownRoute, true)],
            None,
        ),
    ]
}

#[test]
fn problem_table_without_envoy() {
    let cases = problem_cases();
    for (what, facts, want, matched) in cases {
        let report = explain(&facts);
        assert_eq!(codes(&report), want, "{what}: {:#?}", report.problems);
        assert_eq!(report.matched, matched.map(ref_), "{what}");
        assert_eq!(
            report.exit_code(),
            u8::from(want.iter().any(|(_, b)| *b)),
            "{what}"
        );
    }
}

#[test]
fn healthy_report_shows_entries_weights_and_endpoints() {
    let routes = vec![
        weighted("root", "", &[("a", 80), ("b", 20)]),
        weighted("api", "/api", &[("c", 100)]),
    ];
    let report = explain(&facts(
        "shop.apps.example.com/api/x",
        routes,
        &[("s-c", 3)],
        EnvoyFacts::NotAsked,
    ));
    assert_eq!(report.fqdn, "shop.apps.example.com");
    let vs = format!(
        "{NS}/{}",
        cfnet_translate::virtual_service_name("shop.apps.example.com")
    );
    assert_eq!(report.virtual_service.as_deref(), Some(vs.as_str()));
    let prefixes: Vec<(&str, bool)> = report
        .entries
        .iter()
        .map(|e| (e.prefix.as_str(), e.matches))
        .collect();
    assert_eq!(prefixes, [("/api", true), ("/", true)]);
    assert_eq!(report.cf_route, Some(ref_("api")));
    assert_eq!(report.destinations.len(), 1);
    let d = &report.destinations[0];
    assert_eq!(
        (d.service.as_str(), d.weight, d.port, d.exists, d.endpoints),
        ("s-c", 100, 8080, true, 3)
    );
    let json = serde_json::to_value(&report).unwrap();
    for key in [
        "url",
        "fqdn",
        "routes",
        "matched",
        "virtual_service",
        "destinations",
        "envoy",
        "problems",
    ] {
        assert!(json.get(key).is_some(), "{key} in {json}");
    }
    assert_eq!(
        json["matched"],
        serde_json::json!({"namespace": NS, "name": "api"})
    );
    assert_eq!(json["routes"][0]["ready"], true);
    assert_eq!(json["destinations"][0]["endpoints"], 3);
}

/// Istio's prefix match is not gorouter's segment match: `/apiv2` takes the `/api` entry, while Cloud Foundry
/// would pick the catch-all.
#[test]
fn envoy_prefix_versus_cloud_foundry_segments() {
    let routes = vec![
        weighted("root", "", &[("a", 100)]),
        weighted("api", "/api", &[("c", 100)]),
    ];
    let report = explain(&facts(
        "shop.apps.example.com/apiv2",
        routes,
        &[("s-a", 1), ("s-c", 1)],
        EnvoyFacts::NotAsked,
    ));
    assert_eq!(report.matched, Some(ref_("api")));
    assert_eq!(report.cf_route, Some(ref_("root")));
    assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
    assert!(report.notes[0].contains("would pick route cf-workloads/root"));
    assert_eq!(report.exit_code(), 0);
}

/// `/API/x` does not take the `/api` entry: Istio's prefixes are case-sensitive; gorouter's lookup is not.
#[test]
fn a_path_in_another_case_takes_the_catch_all_with_a_note() {
    let routes = vec![
        weighted("root", "", &[("a", 100)]),
        weighted("api", "/api", &[("c", 100)]),
    ];
    let report = explain(&facts(
        "shop.apps.example.com/API/x",
        routes,
        &[("s-a", 1), ("s-c", 1)],
        EnvoyFacts::NotAsked,
    ));
    assert_eq!(report.matched, Some(ref_("root")));
    assert_eq!(codes(&report), []);
    assert_eq!(report.notes.len(), 1, "{:?}", report.notes);
    assert!(report.notes[0].starts_with(
        "route cf-workloads/api has path /api: Istio compares paths case-sensitively"
    ));
}

#[test]
fn a_virtual_service_not_in_cfnet_order_shadows_its_later_entries() {
    let routes = vec![
        weighted("root", "", &[("a", 100)]),
        weighted("api", "/api", &[("c", 100)]),
    ];
    let (routes, mut vss) = programmed(routes);
    vss[0].spec.http.reverse();
    let report = explain(&facts_with(
        "shop.apps.example.com/api/x",
        routes.clone(),
        vss.clone(),
        &[("s-a", 1), ("s-c", 1)],
        EnvoyFacts::NotAsked,
    ));
    assert_eq!(codes(&report), [(Code::Shadowed, true)]);
    assert_eq!(report.entries[1].shadowed_by, Some(0));
    assert_eq!(report.matched, Some(ref_("root")));
    assert!(
        report.problems[0]
            .message
            .starts_with("route cf-workloads/api (prefix /api) can never match"),
        "{}",
        report.problems[0].message
    );
    // A request the shadowed route was not meant for still reaches its app.
    let report = explain(&facts_with(
        "shop.apps.example.com/",
        routes,
        vss,
        &[("s-a", 1), ("s-c", 1)],
        EnvoyFacts::NotAsked,
    ));
    assert_eq!(codes(&report), [(Code::Shadowed, false)]);
}

#[test]
fn wildcard_fqdns_take_hosts_without_their_own_routes() {
    let routes = vec![
        route("wild")
            .namespace(NS)
            .host("*")
            .destination(destination("w", "app-w"))
            .build(),
        route("own")
            .namespace(NS)
            .host("own")
            .destination(destination("o", "app-o"))
            .build(),
    ];
    let (fqdn, claims) = claiming(&routes, "any.apps.example.com");
    assert_eq!((fqdn.as_str(), claims.len()), ("*.apps.example.com", 1));
    let (fqdn, claims) = claiming(&routes, "own.apps.example.com");
    assert_eq!(
        (fqdn.as_str(), claims[0].name_any().as_str()),
        ("own.apps.example.com", "own")
    );
    assert_eq!(claiming(&routes, "example.org").1.len(), 0);
}
