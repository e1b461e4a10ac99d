//! Route sets for the property tests: many collisions (shared FQDNs in several namespaces and in several
//! cases, `/` next to no path and a trailing `/`, shared destination guids, mixed internal flags, invalid
//! weights, names, paths and header values), and how the controller groups and translates them.

use std::collections::{BTreeMap, BTreeSet};

use super::{created, settings};
use cfnet_api::{
    AppProcess, DestinationApp, DestinationSelector, Route, RouteDestination, fixtures,
};
use cfnet_translate::{
    ClaimIndex, FqdnKey, FqdnTranslation, Translation, route_namespace, translate_fqdn,
};
use proptest::prelude::*;

pub fn arb_dest() -> impl Strategy<Value = RouteDestination> {
    (
        prop::sample::select(vec!["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"]),
        prop::option::of(prop::sample::select(vec![
            -5i64, 0, 10, 30, 50, 70, 90, 100,
        ])),
        prop::sample::select(vec![8080i64, 9000, 0, 70000]),
        // Mostly what Cloud Controller writes; sometimes what Istio or Envoy would not take as written.
        prop::sample::select(vec!["", "", "", "", "", "%zz", "%HOSTNAME%", "%%"]),
        prop::sample::select(vec!["web", "web", "web", "worker", "web\n", "a b"]),
    )
        .prop_map(
            |(guid, weight, port, app_suffix, process)| RouteDestination {
                guid: guid.to_owned(),
                weight,
                port,
                app: DestinationApp {
                    guid: format!("app-{guid}{app_suffix}"),
                    process: AppProcess {
                        type_: process.to_owned(),
                    },
                },
                selector: DestinationSelector {
                    match_labels: BTreeMap::from([(
                        "cloudfoundry.org/app_guid".to_owned(),
                        format!("app-{guid}"),
                    )]),
                },
            },
        )
}

/// Routes with unique (namespace, name) — as in a cluster — and a fair share of invalid ones.
pub fn arb_routes() -> impl Strategy<Value = Vec<Route>> {
    prop::collection::vec(
        (
            prop::sample::select(vec!["ns-a", "ns-b"]),
            prop::sample::select(vec!["", "app", "App", "api", "*", "bad_host"]),
            prop::sample::select(vec![
                "apps.example.com",
                "Apps.Example.COM",
                "apps.internal",
            ]),
            any::<bool>(),
            prop::sample::select(vec![
                "", "/", "/a", "/a/", "/a/b", "/b", "/B", "nope", "/a//b",
            ]),
            prop::collection::vec(arb_dest(), 0..4),
            prop::option::of(0u8..4),
            any::<bool>(),
        ),
        0..14,
    )
    .prop_map(|items| {
        items
            .into_iter()
            .enumerate()
            .map(
                |(i, (ns, host, domain, flip, path, dests, day, drop_weights))| {
                    let internal = (domain == "apps.internal") != flip;
                    let mut dests = dests;
                    if drop_weights {
                        dests.iter_mut().for_each(|d| d.weight = None);
                    }
                    let r = dests
                        .into_iter()
                        .fold(
                            fixtures::route(&format!("route-{i}"))
                                .namespace(ns)
                                .host(host)
                                .domain(domain, internal)
                                .path(path)
                                .uid(&format!("uid-{i}")),
                            fixtures::RouteBuilder::destination,
                        )
                        .build();
                    match day {
                        Some(d) => created(r, &format!("2024-01-0{}T00:00:00Z", d + 1)),
                        None => r,
                    }
                },
            )
            .collect()
    })
}

pub fn key_of(r: &Route) -> FqdnKey {
    FqdnKey {
        namespace: route_namespace(r).into(),
        fqdn: r.spec.fqdn().into(),
    }
}

/// The routes of each (namespace, FQDN), as the controller's index groups them.
pub fn groups(routes: &[Route]) -> BTreeMap<FqdnKey, Vec<&Route>> {
    let mut groups: BTreeMap<FqdnKey, Vec<&Route>> = BTreeMap::new();
    for r in routes {
        groups.entry(key_of(r)).or_default().push(r);
    }
    groups
}

/// Each of `keys` translated as the controller does: its routes in `routes`, claims from `index`.
pub fn translate_keys(
    routes: &[Route],
    index: &ClaimIndex,
    keys: &BTreeSet<FqdnKey>,
) -> BTreeMap<FqdnKey, FqdnTranslation> {
    let groups = groups(routes);
    keys.iter()
        .map(|k| {
            let group = groups.get(k).map(Vec::as_slice).unwrap_or_default();
            (k.clone(), translate_fqdn(k, group, index, &settings()))
        })
        .collect()
}

/// The same route with its host and domain (and the url's host part) in upper case.
pub fn upper_case_variant(r: &Route) -> Route {
    let written = if r.spec.host.is_empty() {
        r.spec.domain.name.len()
    } else {
        r.spec.host.len() + 1 + r.spec.domain.name.len()
    };
    let mut u = r.clone();
    u.spec.host.make_ascii_uppercase();
    u.spec.domain.name.make_ascii_uppercase();
    u.spec.url = format!(
        "{}{}",
        r.spec.url[..written].to_ascii_uppercase(),
        &r.spec.url[written..]
    );
    u
}

pub fn sorted_services(t: &Translation) -> Vec<String> {
    let mut v: Vec<String> = t
        .services
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    v.sort();
    v
}

pub fn problem_routes(t: &Translation) -> BTreeSet<(String, String)> {
    t.problems
        .iter()
        .map(|p| (p.namespace.clone(), p.route.clone()))
        .collect()
}
