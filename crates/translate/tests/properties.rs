//! Properties of the translation (issue 2 §7, issue 12, issue 16), over generated Route sets with many
//! collisions (shared FQDNs in several namespaces and in several cases, `/` next to no path and a trailing
//! `/`, shared destination guids, mixed internal flags, invalid weights, names, paths and header values),
//! in istio mode; tests/gateway_api_properties.rs holds the gateway-api ones. The Route sets:
//! tests/common/generate.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use cfnet_api::{
    AppProcess, DestinationApp, DestinationSelector, Route, RouteDestination, RouteDomain,
    RouteSpec,
};
use cfnet_translate::istio::validate_virtual_service;
use cfnet_translate::{
    ClaimIndex, FqdnKey, PLACEHOLDER_HOST, Translation, route_name, route_namespace, service_name,
    translate, translate_fqdn, validate_route,
};
use common::settings;
use proptest::prelude::*;

use common::generate::*;

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
