//! Properties of the gateway-api translation (issue 16) over the generated Route sets of
//! tests/common/generate.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use cfnet_api::gateway_api::HTTPRoute;
use cfnet_api::{
    AppProcess, DestinationApp, DestinationSelector, Route, RouteDestination, RouteDomain,
    RouteSpec,
};
use cfnet_translate::gateway_api::{MAX_RULES, match_key, validate_http_route};
use cfnet_translate::{
    ClaimIndex, Reason, Settings, Translation, http_route_name, route_name, route_namespace,
    service_name, translate, translate_fqdn, validate_route,
};
use common::{created, gateway_api_settings, settings};
use proptest::prelude::*;

use common::generate::*;

/// The routes whose Services and rules are written: programmed, with destinations.
fn programmed_with_destinations<'a>(routes: &'a [Route], t: &Translation) -> Vec<&'a Route> {
    let problems = problem_routes(t);
    routes
        .iter()
        .filter(|r| {
            !problems.contains(&(route_namespace(r).to_owned(), route_name(r).to_owned()))
                && !r.spec.destinations.is_empty()
        })
        .collect()
}

/// The rule of a route: the one whose first backend is the route's first destination.
fn rules_of(t: &Translation, r: &Route) -> usize {
    let first = service_name(&r.spec.destinations[0].guid);
    t.http_routes
        .iter()
        .filter(|h| h.metadata.namespace.as_deref() == Some(route_namespace(r)))
        .flat_map(|h| h.spec.rules.iter())
        .filter(|rule| rule.backend_refs[0].name == first)
        .count()
}

/// The FQDN an HTTPRoute serves (its annotation; `*` has no hostnames).
fn fqdn_of(h: &HTTPRoute) -> String {
    h.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(cfnet_api::FQDN_ANNOTATION))
        .cloned()
        .unwrap_or_default()
}

/// Many routes on one FQDN, some without destinations or with a path another route has (as `/p`, `/p/`).
fn arb_many_routes_on_one_fqdn() -> impl Strategy<Value = Vec<Route>> {
    prop::collection::vec((0u16..120, any::<bool>(), any::<bool>()), 10..80).prop_map(|items| {
        items
            .into_iter()
            .enumerate()
            .map(|(i, (p, slash, empty))| {
                let path = if slash {
                    format!("/p{p}/")
                } else {
                    format!("/p{p}")
                };
                let guid = format!("d{i}");
                let mut r = Route::new(
                    &format!("route-{i}"),
                    RouteSpec {
                        host: "many".to_owned(),
                        path: Some(path.clone()),
                        url: format!("many.apps.example.com{path}"),
                        domain: RouteDomain {
                            name: "apps.example.com".to_owned(),
                            internal: false,
                        },
                        destinations: if empty {
                            vec![]
                        } else {
                            vec![RouteDestination {
                                guid: guid.clone(),
                                weight: None,
                                port: 8080,
                                app: DestinationApp {
                                    guid: format!("app-{guid}"),
                                    process: AppProcess {
                                        type_: "web".into(),
                                    },
                                },
                                selector: DestinationSelector {
                                    match_labels: BTreeMap::new(),
                                },
                            }]
                        },
                    },
                );
                r.metadata.namespace = Some("ns".to_owned());
                r.metadata.uid = Some(format!("uid-{i}"));
                created(r, &format!("2024-01-01T00:{:02}:{:02}Z", i / 60, i % 60))
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn the_mode_changes_no_verdict_but_for_internal_routes(routes in arb_routes()) {
        let istio = translate(&routes, &settings());
        let gateway = translate(&routes, &gateway_api_settings());
        let mut istio_problems = istio.problems.clone();
        let mut gateway_problems = gateway.problems.clone();
        // Internal routes programmed in Istio mode are Unsupported in gateway-api mode, and only they.
        let unsupported: Vec<_> = gateway_problems.iter().filter(|p| p.reason == Reason::Unsupported).cloned().collect();
        for p in &unsupported {
            let r = routes.iter().find(|r| route_namespace(r) == p.namespace && route_name(r) == p.route);
            prop_assert!(r.is_some_and(|r| r.spec.domain.internal), "{:?}", p);
            prop_assert!(!istio_problems.iter().any(|q| q.namespace == p.namespace && q.route == p.route));
            prop_assert!(p.message.starts_with("internal routes need --routing-api istio"));
        }
        gateway_problems.retain(|p| p.reason != Reason::Unsupported);
        istio_problems.sort();
        prop_assert_eq!(&istio_problems, &gateway_problems);
        // The same Services, less those of the unsupported routes.
        let unsupported: BTreeSet<(String, String)> = unsupported.into_iter().map(|p| (p.namespace, p.route)).collect();
        let mut expected = istio.services.clone();
        expected.retain(|s| {
            let owner = s.metadata.owner_references.as_ref().map(|o| o[0].name.clone()).unwrap_or_default();
            !unsupported.contains(&(s.metadata.namespace.clone().unwrap_or_default(), owner))
        });
        prop_assert_eq!(&expected, &gateway.services);
        prop_assert!(gateway.virtual_services.is_empty());
        prop_assert!(istio.http_routes.is_empty());
    }

    #[test]
    fn gateway_api_translate_and_translate_fqdn_agree(routes in arb_routes()) {
        let t = translate(&routes, &gateway_api_settings());
        let index = ClaimIndex::from_routes(&routes);
        let (mut http_routes, mut problems, mut services) = (Vec::new(), Vec::new(), Vec::new());
        for (key, group) in groups(&routes) {
            let f = translate_fqdn(&key, &group, &index, &gateway_api_settings());
            prop_assert!(f.virtual_service.is_none());
            let names: Vec<_> = f.http_routes.iter().map(|h| h.metadata.name.clone()).collect();
            let mut sorted = names.clone();
            sorted.sort();
            prop_assert_eq!(names, sorted);
            http_routes.extend(f.http_routes.into_iter().map(|h| (key.fqdn.to_string(), key.namespace.to_string(), h)));
            problems.extend(f.problems);
            services.extend(f.services);
        }
        http_routes.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let http_routes: Vec<HTTPRoute> = http_routes.into_iter().map(|(_, _, h)| h).collect();
        problems.sort();
        prop_assert_eq!(&http_routes, &t.http_routes);
        prop_assert_eq!(&problems, &t.problems);
        let per_key = Translation { services, ..Translation::default() };
        prop_assert_eq!(sorted_services(&per_key), sorted_services(&t));
    }

    #[test]
    fn every_programmed_route_with_destinations_has_exactly_one_rule(routes in arb_routes()) {
        let t = translate(&routes, &gateway_api_settings());
        let programmed = programmed_with_destinations(&routes, &t);
        for r in &programmed {
            prop_assert_eq!(rules_of(&t, r), 1, "route {}", route_name(r));
        }
        let rules: usize = t.http_routes.iter().map(|h| h.spec.rules.len()).sum();
        prop_assert_eq!(rules, programmed.len());
        for h in &t.http_routes {
            let fqdn = fqdn_of(h);
            prop_assert!(!h.spec.rules.is_empty());
            let expected_hosts = if fqdn == "*" { vec![] } else { vec![fqdn.clone()] };
            prop_assert_eq!(&h.spec.hostnames, &expected_hosts);
            prop_assert_eq!(h.spec.parent_refs.len(), 1);
            prop_assert_eq!(h.spec.parent_refs[0].namespace.as_deref(), Some("cf-system"));
            prop_assert_eq!(&h.spec.parent_refs[0].name, "cf-gateway");
            // Owners: every route of the FQDN, as on the VirtualService.
            let ns = h.metadata.namespace.as_deref().unwrap_or_default();
            let mut expected: Vec<&str> = routes.iter()
                .filter(|r| route_namespace(r) == ns && r.spec.fqdn() == fqdn)
                .map(route_name)
                .collect();
            expected.sort();
            let mut owners: Vec<&str> = h.metadata.owner_references.iter().flatten().map(|o| o.name.as_str()).collect();
            owners.sort();
            prop_assert_eq!(owners, expected);
            for rule in &h.spec.rules {
                prop_assert_eq!(rule.matches.len(), 1);
                let weights: i32 = rule.backend_refs.iter().map(|b| b.weight.unwrap_or(-1)).sum();
                prop_assert_eq!(weights, 100);
                for b in &rule.backend_refs {
                    prop_assert_eq!(b.filters.len(), 1);
                    let m = b.filters[0].request_header_modifier.as_ref();
                    let headers = m.map(|m| m.set.len() + m.remove.len()).unwrap_or_default();
                    prop_assert_eq!(headers, 4);
                }
            }
        }
    }

    #[test]
    fn every_http_route_passes_the_crd_rules(routes in arb_routes()) {
        let t = translate(&routes, &gateway_api_settings());
        for h in &t.http_routes {
            prop_assert_eq!(validate_http_route(&h.spec), Ok(()), "{:?}", h.spec);
        }
    }

    #[test]
    fn gateway_api_output_is_independent_of_input_order(routes in arb_routes(), seed in any::<u64>()) {
        let first = translate(&routes, &gateway_api_settings());
        let mut shuffled = routes.clone();
        let n = shuffled.len();
        for i in (1..n).rev() {
            let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) >> 33) as usize % (i + 1);
            shuffled.swap(i, j);
        }
        let other = translate(&shuffled, &gateway_api_settings());
        prop_assert_eq!(&first.http_routes, &other.http_routes);
        prop_assert_eq!(&first.problems, &other.problems);
    }

    #[test]
    fn an_invalid_route_never_changes_its_siblings_http_routes(
        routes in arb_routes(),
        pick in any::<prop::sample::Index>(),
        path in prop::sample::select(vec!["/a//b", "/a/./b", "/a%2Fb", "/a b", "nope"]),
    ) {
        prop_assume!(!routes.is_empty());
        let before = translate(&routes, &gateway_api_settings());
        // A copy of some route, renamed, with a fresh guid and a path no routing API can take.
        let mut bad = routes[pick.index(routes.len())].clone();
        bad.metadata.name = Some("the-invalid-one".to_owned());
        for (i, d) in bad.spec.destinations.iter_mut().enumerate() {
            d.guid = format!("bad-{i}");
        }
        bad.spec.url = format!("{}{path}", bad.spec.fqdn());
        bad.spec.path = Some(path.to_owned());
        prop_assert!(validate_route(&bad).is_err());
        let mut with_bad = routes.clone();
        with_bad.insert(pick.index(routes.len()), bad);
        let after = translate(&with_bad, &gateway_api_settings());
        prop_assert_eq!(&before.services, &after.services);
        let specs = |t: &Translation| t.http_routes.iter().map(|h| (h.metadata.name.clone(), h.metadata.namespace.clone(), h.spec.clone())).collect::<Vec<_>>();
        prop_assert_eq!(specs(&before), specs(&after));
        let mut problems = after.problems.clone();
        problems.retain(|p| p.route != "the-invalid-one");
        prop_assert_eq!(&before.problems, &problems);
    }

    #[test]
    fn shards_keep_every_rule_at_most_16_each_under_stable_names(routes in arb_many_routes_on_one_fqdn()) {
        let t = translate(&routes, &gateway_api_settings());
        let programmed = programmed_with_destinations(&routes, &t);
        let base = http_route_name("many.apps.example.com");
        let rules: usize = t.http_routes.iter().map(|h| h.spec.rules.len()).sum();
        prop_assert_eq!(rules, programmed.len());
        for r in &programmed {
            prop_assert_eq!(rules_of(&t, r), 1);
        }
        let mut names = HashSet::new();
        for h in &t.http_routes {
            prop_assert!(!h.spec.rules.is_empty() && h.spec.rules.len() <= MAX_RULES, "{} rules", h.spec.rules.len());
            prop_assert_eq!(validate_http_route(&h.spec), Ok(()));
            let name = h.metadata.name.clone().unwrap_or_default();
            let suffix = name.strip_prefix(base.as_str());
            prop_assert!(suffix.is_some_and(|s| s.is_empty() || (s.len() > 1 && s[1..].bytes().all(|b| b == b'0' || b == b'1'))), "{}", name);
            prop_assert!(names.insert(name));
        }
        if !programmed.is_empty() {
            prop_assert_eq!(t.http_routes[0].metadata.name.as_deref(), Some(base.as_str()), "shard 0 keeps the base name");
        }
        // Paths that differ only in a trailing / are one match: one rule, the oldest route's.
        let keys: Vec<&str> = t.http_routes.iter().flat_map(|h| h.spec.rules.iter())
            .map(|r| match_key(r.matches[0].path.as_ref().and_then(|p| p.value.as_deref()).unwrap_or("/")))
            .collect();
        let distinct: HashSet<&str> = keys.iter().copied().collect();
        prop_assert_eq!(distinct.len(), keys.len());
        // A route's shard depends on its path alone: the same set in another order or without one
        // unrelated route keeps every other rule where it was, but for at most one split or merge.
        let shard_of = |t: &Translation| -> BTreeMap<String, String> {
            t.http_routes.iter().flat_map(|h| h.spec.rules.iter().map(move |r| {
                (r.backend_refs[0].name.clone(), h.metadata.name.clone().unwrap_or_default())
            })).collect()
        };
        let before = shard_of(&t);
        if let Some(last) = programmed.last() {
            let fewer: Vec<Route> = routes.iter().filter(|r| route_name(r) != route_name(last)).cloned().collect();
            let after = shard_of(&translate(&fewer, &gateway_api_settings()));
            let moved = after.iter().filter(|(k, v)| before.get(*k) != Some(v)).count();
            prop_assert!(moved <= MAX_RULES, "removing one route moved {} rules", moved);
        }
    }
}

#[test]
fn gateway_api_settings_select_http_routes() {
    let s: Settings = gateway_api_settings();
    assert_eq!(s.routing_api.to_string(), "gateway-api");
    assert_eq!("istio".parse(), Ok(cfnet_translate::RoutingApi::Istio));
    assert!(
        "gateway"
            .parse::<cfnet_translate::RoutingApi>()
            .unwrap_err()
            .contains("use istio or gateway-api")
    );
}
