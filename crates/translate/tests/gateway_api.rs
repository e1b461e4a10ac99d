//! The gateway-api mode (issue 16): the HTTPRoutes of a set of Routes, field for field, and what the mode
//! changes and does not change about which routes are programmed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use cfnet_api::gateway_api::HTTPRoute;
use cfnet_translate::gateway_api::validate_http_route;
use cfnet_translate::{
    GatewayRef, Reason, Translation, http_route_name, translate, virtual_service_name,
};
use common::*;
use serde_json::{Value, json};

fn problem(t: &Translation, route: &str) -> Option<(Reason, String)> {
    t.problems
        .iter()
        .find(|p| p.route == route)
        .map(|p| (p.reason, p.message.clone()))
}

fn rules(h: &HTTPRoute) -> Value {
    serde_json::to_value(&h.spec.rules).expect("JSON")
}

/// The destinations `dest` describes, as a Route holds them.
fn destinations(dests: Vec<Dest>) -> Vec<cfnet_api::RouteDestination> {
    route("x", "x", "", "apps.example.com", false, dests)
        .spec
        .destinations
}

fn app(name: &str, path: &str, guid: &'static str) -> cfnet_api::Route {
    app_route(name, path, guid, "app-guid")
}

/// The backendRef of an HTTPRoute rule: the Service, its port and weight, and the CF headers of `app`.
fn backend_ref(service: &str, port: u16, weight: u16, app: &str) -> serde_json::Value {
    json!({"group": "", "kind": "Service", "name": service, "port": port, "weight": weight,
           "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [
              {"name": "CF-App-Id", "value": app},
              {"name": "CF-App-Process-Type", "value": "process-type-1"},
              {"name": "CF-Organization-Id", "value": "org-guid-0"},
              {"name": "CF-Space-Id", "value": "space-guid-0"}]}}]})
}

#[test]
fn an_fqdn_becomes_one_http_route_attached_to_the_gateway() {
    let routes = [
        weighted_route_0(),
        route(
            "route-guid-1",
            "test0",
            "",
            "domain0.example.com",
            false,
            vec![dest("route-1-destination-guid-0", 8080, None, "app-guid-1")],
        ),
    ];
    let t = translate(&routes, &gateway_api_settings());
    assert!(t.problems.is_empty(), "{:?}", t.problems);
    assert!(t.virtual_services.is_empty());
    assert_eq!(t.http_routes.len(), 1);
    let h = &t.http_routes[0];
    let fqdn = "test0.domain0.example.com";
    assert_eq!(
        serde_json::to_value(h).expect("JSON"),
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": child_metadata(&http_route_name(fqdn), fqdn, &["route-guid-0", "route-guid-1"]),
            "spec": {
                "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                "namespace": "cf-system", "name": "cf-gateway"}],
                "hostnames": [fqdn],
                "rules": [
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/path0"}}],
                     "backendRefs": [
                        backend_ref("s-route-0-destination-guid-0", 9000, 91, "app-guid-0"),
                        backend_ref("s-route-0-destination-guid-1", 9001, 9, "app-guid-1")
                     ]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                     "backendRefs": [
                        backend_ref("s-route-1-destination-guid-0", 8080, 100, "app-guid-1")
                     ]}
                ]
            }
        })
    );
    // The name follows the VirtualService's.
    assert_eq!(http_route_name(fqdn)[3..], virtual_service_name(fqdn)[3..]);
    // The Services are the Istio mode's.
    assert_eq!(t.services, translate(&routes, &settings()).services);
}

#[test]
fn the_parent_gateway_is_configurable() {
    let mut s = gateway_api_settings();
    s.gateway_api_parent = GatewayRef::parse("gateways/apps").expect("valid");
    let t = translate(&[app("a", "", "d1")], &s);
    let parent = &t.http_routes[0].spec.parent_refs[0];
    assert_eq!(
        (parent.namespace.as_deref(), parent.name.as_str()),
        (Some("gateways"), "apps")
    );
}

#[test]
fn a_zero_weight_is_written_and_the_even_split_is_upstreams() {
    let mut r = app("a", "", "d1");
    r.spec.destinations = destinations(vec![
        dest("d1", 8080, Some(100), "x"),
        dest("d2", 8080, Some(0), "y"),
    ]);
    let t = translate(&[r], &gateway_api_settings());
    let weights = |t: &Translation| -> Vec<Option<i32>> {
        t.http_routes[0].spec.rules[0]
            .backend_refs
            .iter()
            .map(|b| b.weight)
            .collect()
    };
    assert_eq!(weights(&t), vec![Some(100), Some(0)]);
    let mut r = app("a", "", "d1");
    r.spec.destinations = destinations(vec![
        dest("d1", 8080, None, "x"),
        dest("d2", 8080, None, "y"),
        dest("d3", 8080, None, "z"),
    ]);
    let t = translate(&[r], &gateway_api_settings());
    assert_eq!(weights(&t), vec![Some(34), Some(33), Some(33)]);
}

#[test]
fn empty_cf_headers_are_removed_not_set() {
    let mut r = app("a", "", "d1");
    r.metadata.labels = None;
    let t = translate(&[r], &gateway_api_settings());
    assert!(t.problems.is_empty());
    let filter = &rules(&t.http_routes[0])[0]["backendRefs"][0]["filters"][0];
    assert_eq!(
        filter["requestHeaderModifier"],
        json!({
            "set": [{"name": "CF-App-Id", "value": "app-guid"},
                    {"name": "CF-App-Process-Type", "value": "process-type-1"}],
            "remove": ["CF-Organization-Id", "CF-Space-Id"]
        })
    );
    assert_eq!(validate_http_route(&t.http_routes[0].spec), Ok(()));
}

#[test]
fn routes_without_destinations_get_no_rule_and_alone_no_http_route() {
    let empty = route("empty", "app", "/e", "apps.example.com", false, vec![]);
    let t = translate(std::slice::from_ref(&empty), &gateway_api_settings());
    assert!(
        t.problems.is_empty(),
        "the route is programmed: {:?}",
        t.problems
    );
    assert!(t.http_routes.is_empty());
    assert!(t.services.is_empty());

    let t = translate(&[empty, app("full", "", "d1")], &gateway_api_settings());
    assert!(t.problems.is_empty());
    assert_eq!(t.http_routes.len(), 1);
    assert_eq!(t.http_routes[0].spec.rules.len(), 1);
    let owners = owner_names(&t.http_routes[0].metadata);
    assert_eq!(owners, ["empty", "full"], "still an owner");
}

#[test]
fn wildcard_hosts_are_gateway_api_host_names_and_star_alone_is_every_host() {
    let wild = route(
        "wild",
        "*",
        "",
        "apps.example.com",
        false,
        vec![dest("d1", 8080, None, "a")],
    );
    let star = route(
        "star",
        "",
        "",
        "*",
        false,
        vec![dest("d2", 8080, None, "b")],
    );
    let t = translate(&[wild, star], &gateway_api_settings());
    assert!(t.problems.is_empty(), "{:?}", t.problems);
    let hosts: Vec<&Vec<String>> = t.http_routes.iter().map(|h| &h.spec.hostnames).collect();
    assert_eq!(hosts, [&vec![], &vec!["*.apps.example.com".to_owned()]]);
    assert_eq!(t.http_routes[0].metadata.name, Some(http_route_name("*")));
    for h in &t.http_routes {
        assert_eq!(validate_http_route(&h.spec), Ok(()));
    }
}

#[test]
fn internal_routes_are_unsupported_in_gateway_api_mode_only() {
    let internal = route(
        "backend",
        "backend",
        "",
        "apps.internal",
        true,
        vec![dest("d1", 8080, None, "a")],
    );
    let external = app("front", "", "d2");
    let routes = [internal, external];
    let t = translate(&routes, &gateway_api_settings());
    assert_eq!(
        problem(&t, "backend"),
        Some((
            Reason::Unsupported,
            "internal routes need --routing-api istio: domain apps.internal is internal (mesh), and \
             the gateway-api mode programs only routes of the Gateway; map the app to an external \
             domain, or run cfnet with --routing-api istio"
                .to_owned()
        ))
    );
    assert_eq!(Reason::Unsupported.as_str(), "Unsupported");
    assert_eq!(t.problems.len(), 1);
    assert_eq!(t.http_routes.len(), 1, "the external sibling only");
    let services: Vec<_> = t.services.iter().map(|s| s.metadata.name.clone()).collect();
    assert_eq!(services, [Some("s-d2".to_owned())]);
    // Istio mode programs both.
    let istio = translate(&routes, &settings());
    assert!(istio.problems.is_empty());
    assert_eq!(istio.virtual_services.len(), 2);
}

#[test]
fn more_than_16_destinations_are_unsupported_without_touching_the_siblings() {
    const GUIDS: [&str; 17] = [
        "g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9", "g10", "g11", "g12", "g13",
        "g14", "g15", "g16",
    ];
    let mut wide = app("wide", "/wide", "g0");
    wide.spec.destinations = destinations(GUIDS.iter().map(|g| dest(g, 8080, None, "a")).collect());
    let sibling = app("sibling", "", "d1");
    let alone = translate(std::slice::from_ref(&sibling), &gateway_api_settings());
    let t = translate(&[wide.clone(), sibling], &gateway_api_settings());
    assert_eq!(problem(&t, "wide").map(|p| p.0), Some(Reason::Unsupported));
    assert!(problem(&t, "wide").is_some_and(|p| {
        p.1.starts_with("17 destinations: a Gateway API rule has at most 16")
    }));
    assert_eq!(t.http_routes[0].spec, alone.http_routes[0].spec);
    // 16 are fine.
    wide.spec.destinations.pop();
    let t = translate(&[wide], &gateway_api_settings());
    assert!(t.problems.is_empty());
    assert_eq!(t.http_routes[0].spec.rules[0].backend_refs.len(), 16);
    assert_eq!(validate_http_route(&t.http_routes[0].spec), Ok(()));
}

#[test]
fn more_than_16_routes_are_sharded_under_stable_names() {
    let guids: Vec<&'static str> = (0..40)
        .map(|i| &*Box::leak(format!("d{i}").into_boxed_str()))
        .collect();
    let routes: Vec<_> = guids
        .iter()
        .enumerate()
        .map(|(i, g)| app(&format!("r{i}"), &format!("/p{i}"), g))
        .collect();
    let t = translate(&routes, &gateway_api_settings());
    assert!(t.problems.is_empty());
    let base = http_route_name("app.apps.example.com");
    assert_eq!(
        t.http_routes[0].metadata.name.as_deref(),
        Some(base.as_str())
    );
    assert!(t.http_routes.len() >= 3);
    assert_eq!(
        t.http_routes
            .iter()
            .map(|h| h.spec.rules.len())
            .sum::<usize>(),
        40
    );
    for h in &t.http_routes {
        assert!(h.spec.rules.len() <= 16);
        assert_eq!(h.spec.hostnames, ["app.apps.example.com"]);
        assert_eq!(
            h.metadata.owner_references.as_ref().map(Vec::len),
            Some(40),
            "every shard names every route of the FQDN"
        );
    }
    // The same routes in another order: the same objects.
    let mut reversed = routes.clone();
    reversed.reverse();
    assert_eq!(
        translate(&reversed, &gateway_api_settings()).http_routes,
        t.http_routes
    );
}

#[test]
fn a_trailing_slash_makes_no_new_match_in_either_mode() {
    let older = created(app("older", "/foo", "d1"), "2024-01-01T00:00:00Z");
    let younger = created(app("younger", "/foo/", "d2"), "2024-01-02T00:00:00Z");
    for s in [settings(), gateway_api_settings()] {
        let t = translate(&[younger.clone(), older.clone()], &s);
        assert_eq!(
            problem(&t, "younger"),
            Some((
                Reason::Conflict,
                "url app.apps.example.com/foo/ is already served by route workload-namespace/older \
                 (created earlier, url app.apps.example.com/foo: paths that differ only in a trailing \
                 \"/\" are one route for Cloud Foundry's gorouter and for Gateway API); delete one of them"
                    .to_owned()
            )),
            "{:?}",
            s.routing_api
        );
    }
}

#[test]
fn paths_gateway_api_refuses_are_invalid_in_either_mode() {
    for (path, why) in [
        ("/a//b", "must not contain \"//\""),
        ("/a/./b", "must not contain \"/./\""),
        ("/a%2Fb", "must not contain \"%2F\""),
        ("/a#b", "must not contain \"#\""),
        ("/a b", "contains ' '"),
        ("/a%zz", "has a '%' that does not start a percent-encoding"),
    ] {
        for s in [settings(), gateway_api_settings()] {
            let t = translate(&[app("bad", path, "d1"), app("ok", "", "d2")], &s);
            let (reason, message) = problem(&t, "bad").expect("a problem");
            assert_eq!(reason, Reason::Invalid);
            assert_eq!(
                message,
                format!(
                    "path {path:?} {why}{}: it must be a URL path that Gateway API's PathPrefix \
                     match accepts (and that Envoy does not normalize away); change the path",
                    if why.starts_with("has a") {
                        " (%XX, two hex digits)"
                    } else if why.starts_with("contains") {
                        "; only letters, digits, -/._~!$&'()*+,;=:@ and percent-encodings (%XX) are allowed"
                    } else {
                        ""
                    }
                )
            );
            assert_eq!(t.problems.len(), 1);
        }
    }
}
