//! Properties of the translation (issue 2 §7, issue 12, issue 16), over generated Route sets with many
//! collisions (shared FQDNs in several namespaces and in several cases, `/` next to no path and a trailing
//! `/`, shared destination guids, mixed internal flags, invalid weights, names, paths and header values),
//! in both routing modes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use cfnet_api::gateway_api::HTTPRoute;
use cfnet_api::{
    AppProcess, DestinationApp, DestinationSelector, Route, RouteDestination, RouteDomain,
    RouteSpec, fixtures,
};
use cfnet_translate::gateway_api::{MAX_RULES, match_key, validate_http_route};
use cfnet_translate::istio::validate_virtual_service;
use cfnet_translate::{
    ClaimIndex, FqdnKey, FqdnTranslation, PLACEHOLDER_HOST, Reason, Settings, Translation,
    http_route_name, route_name, route_namespace, service_name, translate, translate_fqdn,
    validate_route,
};
use common::{created, gateway_api_settings, settings};
use proptest::prelude::*;

fn arb_dest() -> impl Strategy<Value = RouteDestination> {
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
fn arb_routes() -> impl Strategy<Value = Vec<Route>> {
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

fn key_of(r: &Route) -> FqdnKey {
    FqdnKey {
        namespace: route_namespace(r).into(),
        fqdn: r.spec.fqdn().into(),
    }
}

/// The routes of each (namespace, FQDN), as the controller's index groups them.
fn groups(routes: &[Route]) -> BTreeMap<FqdnKey, Vec<&Route>> {
    let mut groups: BTreeMap<FqdnKey, Vec<&Route>> = BTreeMap::new();
    for r in routes {
        groups.entry(key_of(r)).or_default().push(r);
    }
    groups
}

/// Each of `keys` translated as the controller does: its routes in `routes`, claims from `index`.
fn translate_keys(
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
fn upper_case_variant(r: &Route) -> Route {
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

    #[test]
    fn translate_and_translate_fqdn_agree(routes in arb_routes()) {
        let t = translate(&routes, &settings());
        let index = ClaimIndex::from_routes(&routes);
        let (mut virtual_services, mut problems, mut services) = (Vec::new(), Vec::new(), Vec::new());
        for (key, group) in groups(&routes) {
            let f = translate_fqdn(&key, &group, &index, &settings());
            virtual_services.extend(f.virtual_service);
            problems.extend(f.problems);
            services.extend(f.services);
        }
        virtual_services.sort_by(|a, b| {
            (&a.spec.hosts, &a.metadata.namespace).cmp(&(&b.spec.hosts, &b.metadata.namespace))
        });
        problems.sort();
        prop_assert_eq!(&virtual_services, &t.virtual_services);
        prop_assert_eq!(&problems, &t.problems);
        let per_key = Translation { services, ..Translation::default() };
        prop_assert_eq!(sorted_services(&per_key), sorted_services(&t));
    }

    #[test]
    fn the_claim_index_reports_every_key_whose_translation_changes(routes in arb_routes()) {
        // Every key a route can have here, also after it takes another route's spec.
        let namespaces: BTreeSet<&str> = routes.iter().map(route_namespace).collect();
        let fqdns: BTreeSet<String> = routes.iter().map(|r| r.spec.fqdn()).collect();
        let keys: BTreeSet<FqdnKey> = namespaces.iter()
            .flat_map(|ns| fqdns.iter().map(move |f| FqdnKey { namespace: (*ns).into(), fqdn: f.as_str().into() }))
            .collect();
        let mut index = ClaimIndex::new();
        let mut present: Vec<Route> = Vec::new();
        let mut before = translate_keys(&present, &index, &keys);
        let mut check = |index: &ClaimIndex, present: &[Route], affected: Vec<FqdnKey>, what: &str| {
            let after = translate_keys(present, index, &keys);
            let affected: BTreeSet<FqdnKey> = affected.into_iter().collect();
            for key in &keys {
                prop_assert!(
                    before[key] == after[key] || affected.contains(key),
                    "{}: the translation of {:?} changed, but the index returned {:?}", what, key, affected
                );
            }
            before = after;
            Ok(())
        };
        // Routes arrive one by one.
        for r in &routes {
            let affected = index.insert(r);
            present.push(r.clone());
            check(&index, &present, affected, &format!("insert {}", route_name(r)))?;
        }
        // Each route takes the next one's spec (another host, path, kind or destinations).
        for i in 0..routes.len() {
            let mut changed = present[i].clone();
            changed.spec = routes[(i + 1) % routes.len()].spec.clone();
            let affected = index.insert(&changed);
            present[i] = changed;
            check(&index, &present, affected, &format!("update {}", route_name(&present[i])))?;
        }
        // And they leave, the first ones first.
        while !present.is_empty() {
            let r = present.remove(0);
            let affected = index.remove(route_namespace(&r), route_name(&r));
            check(&index, &present, affected, &format!("remove {}", route_name(&r)))?;
        }
        prop_assert!(index.is_empty());
    }

    #[test]
    fn case_variants_of_an_fqdn_render_like_the_lower_case_one(routes in arb_routes()) {
        let t = translate(&routes, &settings());
        let upper: Vec<Route> = routes.iter().map(upper_case_variant).collect();
        let u = translate(&upper, &settings());
        prop_assert_eq!(&t.virtual_services, &u.virtual_services);
        prop_assert_eq!(&t.services, &u.services);
        // Messages quote the url and domain as written.
        let verdicts = |t: &Translation| {
            t.problems.iter().map(|p| (p.namespace.clone(), p.route.clone(), p.reason)).collect::<Vec<_>>()
        };
        prop_assert_eq!(verdicts(&t), verdicts(&u));
    }

    #[test]
    fn no_two_entries_of_an_fqdn_have_one_envoy_match(routes in arb_routes()) {
        let t = translate(&routes, &settings());
        for vs in &t.virtual_services {
            let mut matches = HashSet::new();
            for http in &vs.spec.http {
                // istiod turns an entry without match into prefix "/".
                let prefix = http.match_.first()
                    .and_then(|m| m.uri.as_ref())
                    .and_then(|u| u.prefix.as_deref())
                    .unwrap_or("/");
                prop_assert!(matches.insert(prefix), "{} twice in {:?}", prefix, vs.spec);
            }
        }
    }

    #[test]
    fn mesh_destinations_have_their_port_and_gateway_ones_none(routes in arb_routes()) {
        let t = translate(&routes, &settings());
        let problems = problem_routes(&t);
        for vs in &t.virtual_services {
            let mesh = vs.spec.gateways == ["mesh"];
            for http in &vs.spec.http {
                let hosts: Vec<&str> = http.route.iter().map(|d| d.destination.host.as_str()).collect();
                if hosts == [PLACEHOLDER_HOST] {
                    prop_assert_eq!(http.route[0].destination.port, None);
                    continue;
                }
                // The programmed route of this entry: its destinations are the entry's.
                let route = routes.iter().find(|r| {
                    !problems.contains(&(route_namespace(r).to_owned(), route_name(r).to_owned()))
                        && r.metadata.namespace == vs.metadata.namespace
                        && r.spec.fqdn() == vs.spec.hosts[0]
                        && r.spec.destinations.iter().map(|d| service_name(&d.guid)).eq(hosts.iter().map(|h| h.to_string()))
                });
                prop_assert!(route.is_some(), "no route for {:?}", hosts);
                for (d, rd) in http.route.iter().zip(route.iter().flat_map(|r| r.spec.destinations.iter())) {
                    let expected = mesh.then(|| u32::try_from(rd.port).unwrap_or_default());
                    prop_assert_eq!(d.destination.port.map(|p| p.number), expected);
                }
            }
        }
    }

    #[test]
    fn every_virtual_service_passes_istio_validation(routes in arb_routes()) {
        let t = translate(&routes, &settings());
        for vs in &t.virtual_services {
            prop_assert_eq!(validate_virtual_service(&vs.spec), Ok(()), "{:?}", vs.spec);
        }
    }
}

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
