//! Properties of the translation (issue 2 §7), over generated Route sets with many collisions (shared
//! FQDNs, shared destination guids, mixed internal flags, invalid weights and names).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use std::collections::{BTreeMap, BTreeSet};

use cfnet_api::{
    AppProcess, DestinationApp, DestinationSelector, Route, RouteDestination, RouteDomain,
    RouteSpec, fixtures,
};
use cfnet_translate::{
    Translation, route_name, route_namespace, service_name, translate, validate_route,
};
use common::{created, settings};
use proptest::prelude::*;

fn arb_dest() -> impl Strategy<Value = RouteDestination> {
    (
        prop::sample::select(vec!["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"]),
        prop::option::of(prop::sample::select(vec![
            -5i64, 0, 10, 30, 50, 70, 90, 100,
        ])),
        prop::sample::select(vec![8080i64, 9000, 0, 70000]),
    )
        .prop_map(|(guid, weight, port)| RouteDestination {
            guid: guid.to_owned(),
            weight,
            port,
            app: DestinationApp {
                guid: format!("app-{guid}"),
                process: AppProcess {
                    type_: "web".to_owned(),
                },
            },
            selector: DestinationSelector {
                match_labels: BTreeMap::from([(
                    "cloudfoundry.org/app_guid".to_owned(),
                    format!("app-{guid}"),
                )]),
            },
        })
}

/// Routes with unique (namespace, name) — as in a cluster — and a fair share of invalid ones.
fn arb_routes() -> impl Strategy<Value = Vec<Route>> {
    prop::collection::vec(
        (
            prop::sample::select(vec!["ns-a", "ns-b"]),
            prop::sample::select(vec!["", "app", "api", "*", "bad_host"]),
            prop::sample::select(vec!["apps.example.com", "apps.internal"]),
            any::<bool>(),
            prop::sample::select(vec!["", "/a", "/a/b", "/b", "nope"]),
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

fn sorted_services(t: &Translation) -> Vec<String> {
    let mut v: Vec<String> = t
        .services
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    v.sort();
    v
}

fn problem_routes(t: &Translation) -> BTreeSet<(String, String)> {
    t.problems
        .iter()
        .map(|p| (p.namespace.clone(), p.route.clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn output_is_deterministic_and_independent_of_input_order(
        routes in arb_routes(),
        seed in any::<u64>(),
    ) {
        let first = translate(&routes, &settings());
        prop_assert_eq!(&first, &translate(&routes, &settings()));
        let mut shuffled = routes.clone();
        // A cheap deterministic shuffle from the seed.
        let n = shuffled.len();
        for i in (1..n).rev() {
            let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) >> 33) as usize % (i + 1);
            shuffled.swap(i, j);
        }
        let other = translate(&shuffled, &settings());
        prop_assert_eq!(&first.virtual_services, &other.virtual_services);
        prop_assert_eq!(&first.problems, &other.problems);
        prop_assert_eq!(sorted_services(&first), sorted_services(&other));
    }

    #[test]
    fn weights_of_every_http_entry_sum_to_100(routes in arb_routes()) {
        let t = translate(&routes, &settings());
        for vs in &t.virtual_services {
            for http in &vs.spec.http {
                if http.route[0].destination.host == "no-destinations" {
                    prop_assert_eq!(http.route.len(), 1);
                    continue;
                }
                prop_assert!(http.route.iter().all(|d| d.weight >= 0));
                prop_assert_eq!(http.route.iter().map(|d| d.weight).sum::<i32>(), 100);
            }
        }
    }

    #[test]
    fn every_valid_route_with_destinations_is_programmed_exactly_once(routes in arb_routes()) {
        let t = translate(&routes, &settings());
        let problems = problem_routes(&t);
        let mut expected_entries = 0;
        for r in &routes {
            let key = (route_namespace(r).to_owned(), route_name(r).to_owned());
            if problems.contains(&key) || r.spec.destinations.is_empty() {
                continue;
            }
            expected_entries += 1;
            let first = service_name(&r.spec.destinations[0].guid);
            let entries = t.virtual_services.iter()
                .filter(|v| v.metadata.namespace.as_deref() == Some(route_namespace(r)))
                .flat_map(|v| v.spec.http.iter())
                .filter(|h| h.route[0].destination.host == first)
                .count();
            prop_assert_eq!(entries, 1, "route {:?}", key);
            for d in &r.spec.destinations {
                let svc = service_name(&d.guid);
                let count = t.services.iter()
                    .filter(|s| s.metadata.name.as_deref() == Some(svc.as_str())
                        && s.metadata.namespace.as_deref() == Some(route_namespace(r)))
                    .count();
                prop_assert_eq!(count, 1, "service {} of {:?}", svc, key);
            }
        }
        let entries_with_destinations = t.virtual_services.iter()
            .flat_map(|v| v.spec.http.iter())
            .filter(|h| h.route[0].destination.host != "no-destinations")
            .count();
        prop_assert_eq!(entries_with_destinations, expected_entries);
        // A route with a problem is never programmed.
        for s in &t.services {
            let owner = s.metadata.owner_references.as_ref().map(|o| o[0].name.clone()).unwrap_or_default();
            prop_assert!(!problems.contains(&(s.metadata.namespace.clone().unwrap_or_default(), owner)));
        }
    }

    #[test]
    fn owner_references_list_every_route_of_the_fqdn(routes in arb_routes()) {
        let t = translate(&routes, &settings());
        for vs in &t.virtual_services {
            let fqdn = &vs.spec.hosts[0];
            let ns = vs.metadata.namespace.as_deref().unwrap_or_default();
            let mut expected: Vec<&str> = routes.iter()
                .filter(|r| route_namespace(r) == ns && &r.spec.fqdn() == fqdn)
                .map(route_name)
                .collect();
            expected.sort();
            let mut owners: Vec<&str> = vs.metadata.owner_references.iter().flatten().map(|o| o.name.as_str()).collect();
            owners.sort();
            prop_assert_eq!(owners, expected);
        }
    }

    #[test]
    fn an_invalid_route_never_changes_its_siblings_output(
        routes in arb_routes(),
        pick in any::<prop::sample::Index>(),
        breakage in 0u8..4,
    ) {
        prop_assume!(!routes.is_empty());
        let before = translate(&routes, &settings());
        // A copy of some route, renamed, with fresh guids, broken on its own.
        let mut bad = routes[pick.index(routes.len())].clone();
        bad.metadata.name = Some("the-invalid-one".to_owned());
        bad.spec.destinations = vec![];
        for (i, w) in [Some(60), Some(60)].into_iter().enumerate() {
            bad.spec.destinations.push(RouteDestination {
                guid: format!("bad-{i}"),
                weight: w,
                port: 8080,
                app: DestinationApp { guid: "x".into(), process: AppProcess { type_: "web".into() } },
                selector: DestinationSelector { match_labels: BTreeMap::new() },
            });
        }
        match breakage {
            0 => {}
            1 => { bad.spec.destinations[0].weight = Some(40); bad.spec.destinations[1].port = 0; }
            2 => { bad.spec.url.push_str("/elsewhere"); }
            _ => { bad.spec.destinations[0].guid = String::new(); }
        }
        prop_assert!(validate_route(&bad).is_err());
        let mut with_bad = routes.clone();
        with_bad.insert(pick.index(routes.len()), bad);
        let after = translate(&with_bad, &settings());
        prop_assert_eq!(&before.services, &after.services);
        let specs = |t: &Translation| t.virtual_services.iter().map(|v| (v.metadata.namespace.clone(), v.spec.clone())).collect::<Vec<_>>();
        prop_assert_eq!(specs(&before), specs(&after));
        let mut problems = after.problems.clone();
        problems.retain(|p| p.route != "the-invalid-one");
        prop_assert_eq!(&before.problems, &problems);
    }

    #[test]
    fn no_panic_on_arbitrary_route_shaped_input(
        items in prop::collection::vec(
            (".{0,12}", ".{0,12}", ".{0,20}", prop::option::of(".{0,6}"), any::<bool>(),
             prop::collection::vec((".{0,8}", prop::option::of(any::<i64>()), any::<i64>()), 0..4),
             prop::option::of(".{0,4}")),
            0..8),
    ) {
        let routes: Vec<Route> = items.into_iter().map(|(host, domain, url, path, internal, dests, ns)| {
            let mut r = Route::new("r", RouteSpec {
                host, path, url,
                domain: RouteDomain { name: domain, internal },
                destinations: dests.into_iter().map(|(guid, weight, port)| RouteDestination {
                    guid, weight, port,
                    app: DestinationApp { guid: String::new(), process: AppProcess { type_: String::new() } },
                    selector: DestinationSelector { match_labels: BTreeMap::new() },
                }).collect(),
            });
            r.metadata.namespace = ns;
            r
        }).collect();
        let t = translate(&routes, &settings());
        for vs in &t.virtual_services {
            for http in &vs.spec.http {
                if http.route[0].destination.host != "no-destinations" {
                    prop_assert_eq!(http.route.iter().map(|d| d.weight).sum::<i32>(), 100);
                }
            }
        }
    }
}
