//! Seeded Route sets shaped like Cloud Controller's: Routes in the chart's workloads namespace, named by guid,
//! with the CF labels, on the chart's app domain, an internal domain and a domain that is not an app domain;
//! context paths sharing FQDNs, explicit and even-split weights (zero weights too), wildcard and upper-case
//! hosts, routes without destinations, and now and then a route that cannot be programmed (weights not summing
//! to 100, the same Envoy match as an older route).
//!
//! Pure and deterministic: a seed gives the same Routes on every machine (proptest strategies run with a fixed
//! ChaCha seed). Kept apart from the Istio checks so that the Gateway API comparison can reuse it.

use std::collections::BTreeMap;

use cfnet_api::{Route, fixtures};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sha2::{Digest, Sha256};

/// The chart's (only) workloads namespace: the controller watches it and the Gateway binds its VirtualServices.
pub const NAMESPACE: &str = "cf-workloads";
/// The chart's default app domain: the Gateway's `https-workloads` server serves it.
pub const APP_DOMAIN: &str = "apps.example.com";
/// An internal domain: mesh VirtualServices, seen by the workloads' sidecars.
pub const INTERNAL_DOMAIN: &str = "apps.internal";
/// An external domain that is no app domain of the chart: the HTTP server only.
pub const OTHER_DOMAIN: &str = "example.org";

/// Context paths that share FQDNs; `None` is a route without a path (the FQDN's catch-all, like `/`).
const PATHS: [Option<&str>; 5] = [None, Some("/"), Some("/a"), Some("/a/b"), Some("/ab")];
const PROCESS_TYPES: [&str; 3] = ["web", "worker", "api-v2"];
const PORTS: [i64; 3] = [8080, 8080, 9000];
const APPS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainKind {
    App,
    Internal,
    Other,
}

impl DomainKind {
    pub fn name(self) -> &'static str {
        match self {
            DomainKind::App => APP_DOMAIN,
            DomainKind::Internal => INTERNAL_DOMAIN,
            DomainKind::Other => OTHER_DOMAIN,
        }
    }
}

/// How the host and domain are written (an FQDN is case-insensitive; Cloud Controller writes lower case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Lower,
    UpperHost,
    UpperAll,
}

#[derive(Clone, Debug)]
struct FqdnPlan {
    domain: DomainKind,
    wildcard: bool,
    case: Case,
    routes: Vec<RoutePlan>,
}

#[derive(Clone, Debug)]
struct RoutePlan {
    path: Option<&'static str>,
    dests: Vec<DestPlan>,
    weights: Weights,
    /// Written in another case than the FQDN's other routes.
    other_case: bool,
}

#[derive(Clone, Debug)]
enum Weights {
    /// No weights: an even split, the remainder on the first destination.
    Unset,
    /// Explicit, summing to 100 (zeros included) — or, for an invalid route, not.
    Explicit(Vec<i64>),
}

#[derive(Clone, Debug)]
struct DestPlan {
    port: i64,
    app: usize,
    process: &'static str,
}

fn weights(n: usize) -> BoxedStrategy<Weights> {
    let explicit: Vec<Vec<i64>> = match n {
        0 => return Just(Weights::Unset).boxed(),
        1 => vec![vec![100]],
        2 => vec![
            vec![50, 50],
            vec![80, 20],
            vec![100, 0],
            vec![25, 75],
            vec![0, 100],
        ],
        _ => vec![
            vec![34, 33, 33],
            vec![60, 40, 0],
            vec![20, 30, 50],
            vec![0, 50, 50],
            vec![90, 5, 5],
        ],
    };
    // Invalid: the API server takes them, the controller must refuse the route alone.
    let not_100 = vec![30; n];
    prop_oneof![
        9 => Just(Weights::Unset),
        10 => prop::sample::select(explicit).prop_map(Weights::Explicit),
        1 => Just(Weights::Explicit(not_100)),
    ]
    .boxed()
}

fn dest() -> impl Strategy<Value = DestPlan> {
    (
        prop::sample::select(PORTS.to_vec()),
        0..APPS,
        prop::sample::select(PROCESS_TYPES.to_vec()),
    )
        .prop_map(|(port, app, process)| DestPlan { port, app, process })
}

fn route_plan(path: Option<&'static str>) -> impl Strategy<Value = RoutePlan> {
    let n = prop_oneof![3 => Just(0usize), 8 => Just(1usize), 6 => Just(2usize), 3 => Just(3usize)];
    (n, prop::bool::weighted(0.15)).prop_flat_map(move |(n, other_case)| {
        (prop::collection::vec(dest(), n), weights(n)).prop_map(move |(dests, weights)| RoutePlan {
            path,
            dests,
            weights,
            other_case,
        })
    })
}

fn fqdn_plan() -> impl Strategy<Value = FqdnPlan> {
    let domain = prop_oneof![
        11 => Just(DomainKind::App),
        6 => Just(DomainKind::Internal),
        3 => Just(DomainKind::Other),
    ];
    let case =
        prop_oneof![14 => Just(Case::Lower), 3 => Just(Case::UpperHost), 3 => Just(Case::UpperAll)];
    let paths = prop::sample::subsequence(PATHS.to_vec(), 1..=4).prop_shuffle();
    (
        domain,
        prop::bool::weighted(0.15),
        case,
        paths,
        // Another route on the first route's path, the host in another case: one FQDN, one Envoy match.
        prop::bool::weighted(0.1),
        // No route of the FQDN has destinations (an app not yet mapped): the placeholder.
        prop::bool::weighted(0.12),
    )
        .prop_flat_map(|(domain, wildcard, case, paths, case_twin, bare)| {
            let mut paths = paths;
            if case_twin {
                paths.push(paths[0]);
            }
            let routes: Vec<_> = paths.iter().map(|p| route_plan(*p)).collect();
            routes.prop_map(move |mut routes| {
                let first_other_case = routes[0].other_case;
                if case_twin && let Some(twin) = routes.last_mut() {
                    twin.other_case = !first_other_case;
                }
                if bare {
                    for r in &mut routes {
                        r.dests.clear();
                        r.weights = Weights::Unset;
                    }
                }
                FqdnPlan {
                    domain,
                    wildcard,
                    case,
                    routes,
                }
            })
        })
}

/// The plans of a set: (FQDN index, route plan) in the order the Routes are created.
fn set_plan() -> impl Strategy<Value = (Vec<FqdnPlan>, Vec<(usize, usize)>)> {
    prop::collection::vec(fqdn_plan(), 3..=7).prop_flat_map(|fqdns| {
        let order: Vec<(usize, usize)> = fqdns
            .iter()
            .enumerate()
            .flat_map(|(f, plan)| (0..plan.routes.len()).map(move |r| (f, r)))
            .collect();
        // Interleave FQDNs, but keep each FQDN's routes in plan order (which route is older matters).
        (Just(fqdns), Just(order).prop_shuffle()).prop_map(|(fqdns, mut order)| {
            let mut next = vec![0; fqdns.len()];
            for slot in order.iter_mut() {
                let f = slot.0;
                *slot = (f, next[f]);
                next[f] += 1;
            }
            (fqdns, order)
        })
    })
}

/// A guid (8-4-4-4-12 hex) from a name. Route guids start with the seed and the creation index, so that name
/// order is creation order: routes created within one second are ordered by name (claim order).
pub fn guid(name: &str) -> String {
    let h = hex::encode(Sha256::digest(name.as_bytes()));
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn route_guid(seed: u64, index: usize) -> String {
    let g = guid(&format!("route-{seed}-{index}"));
    format!("{:04x}{:04x}{}", seed & 0xffff, index, &g[8..])
}

fn written(s: &str, upper: bool) -> String {
    if upper {
        // Mixed case, as a user might type it: every other letter upper-case.
        s.chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    } else {
        s.to_owned()
    }
}

/// The Routes of one seed, in creation order.
pub fn route_set(seed: u64) -> Vec<Route> {
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let (fqdns, order) = set_plan()
        .new_tree(&mut runner)
        .expect("the strategies never reject")
        .current();

    let mut wildcard_taken: Vec<DomainKind> = Vec::new();
    let hosts: Vec<String> = fqdns
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            if plan.wildcard && !wildcard_taken.contains(&plan.domain) {
                wildcard_taken.push(plan.domain);
                "*".to_owned()
            } else {
                format!("s{seed}h{i}")
            }
        })
        .collect();
    let spaces = [
        guid(&format!("space-{seed}-0")),
        guid(&format!("space-{seed}-1")),
    ];
    let org = guid(&format!("org-{seed}"));
    let apps: Vec<String> = (0..APPS)
        .map(|a| guid(&format!("app-{seed}-{a}")))
        .collect();

    order
        .iter()
        .enumerate()
        .map(|(index, &(f, r))| {
            let plan = &fqdns[f];
            let route = &plan.routes[r];
            let name = route_guid(seed, index);
            let (upper_host, upper_domain) = match (plan.case, route.other_case) {
                (Case::Lower, false) => (false, false),
                (Case::Lower, true) | (Case::UpperHost, false) => (true, false),
                (Case::UpperHost, true) => (false, true),
                (Case::UpperAll, false) => (true, true),
                (Case::UpperAll, true) => (false, false),
            };
            let host = written(&hosts[f], upper_host);
            let domain = written(plan.domain.name(), upper_domain);
            let builder = fixtures::route(&name)
                .namespace(NAMESPACE)
                .host(&host)
                .domain(&domain, plan.domain == DomainKind::Internal)
                .path(route.path.unwrap_or(""))
                .cloud_controller_labels(&spaces[index % 2], &org)
                .label("cloudfoundry.org/domain_guid", &guid(plan.domain.name()));
            route
                .dests
                .iter()
                .enumerate()
                .fold(builder, |r, (d, dest)| {
                    let destination = fixtures::destination(
                        &guid(&format!("destination-{seed}-{index}-{d}")),
                        &apps[dest.app],
                    )
                    .port(dest.port)
                    .process(dest.process);
                    r.destination(match &route.weights {
                        Weights::Explicit(w) => destination.weight(w[d]),
                        _ => destination,
                    })
                })
                .build()
        })
        .collect()
}

/// Every shape [`features`] counts.
pub const SHAPES: [&str; 21] = [
    "app domain",
    "internal domain",
    "other domain",
    "wildcard host",
    "upper-case host or domain",
    "no path",
    "path /",
    "path /a",
    "path /a/b",
    "path /ab",
    "several destinations",
    "even split",
    "explicit weights",
    "zero weight",
    "weights not summing to 100",
    "no destinations, alone on its FQDN",
    "no destinations, beside destinations",
    "FQDN shared by several routes",
    "FQDN written in two cases",
    "internal wildcard host",
    "app domain wildcard host",
];

/// What a set exercises, to show that the fixed seeds cover every shape (counted over the Routes).
pub fn features(routes: &[Route]) -> BTreeMap<&'static str, usize> {
    let mut f: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut add = |name: &'static str, yes: bool| {
        if yes {
            *f.entry(name).or_default() += 1;
        }
    };
    let mut by_fqdn: BTreeMap<String, Vec<&Route>> = BTreeMap::new();
    for r in routes {
        by_fqdn.entry(r.spec.fqdn()).or_default().push(r);
    }
    for r in routes {
        let s = &r.spec;
        let dests = &s.destinations;
        let weights: Vec<i64> = dests.iter().filter_map(|d| d.weight).collect();
        add("app domain", s.fqdn().ends_with(APP_DOMAIN));
        add("internal domain", s.domain.internal);
        add("other domain", s.fqdn().ends_with(OTHER_DOMAIN));
        add("wildcard host", s.host == "*");
        add("internal wildcard host", s.host == "*" && s.domain.internal);
        add(
            "app domain wildcard host",
            s.host == "*" && s.fqdn().ends_with(APP_DOMAIN),
        );
        add(
            "upper-case host or domain",
            s.fqdn() != format!("{}.{}", s.host, s.domain.name),
        );
        add("no path", s.path.is_none());
        for p in ["/", "/a", "/a/b", "/ab"] {
            add(
                match p {
                    "/" => "path /",
                    "/a" => "path /a",
                    "/a/b" => "path /a/b",
                    _ => "path /ab",
                },
                s.path.as_deref() == Some(p),
            );
        }
        add("several destinations", dests.len() > 1);
        add("even split", dests.len() > 1 && weights.is_empty());
        add("explicit weights", !weights.is_empty());
        add("zero weight", weights.contains(&0));
        add(
            "weights not summing to 100",
            !weights.is_empty() && weights.iter().sum::<i64>() != 100,
        );
        let siblings = &by_fqdn[&s.fqdn()];
        let any_dests = siblings.iter().any(|r| !r.spec.destinations.is_empty());
        add(
            "no destinations, alone on its FQDN",
            dests.is_empty() && !any_dests,
        );
        add(
            "no destinations, beside destinations",
            dests.is_empty() && any_dests,
        );
        add("FQDN shared by several routes", siblings.len() > 1);
        add(
            "FQDN written in two cases",
            siblings
                .iter()
                .any(|o| o.spec.url.split('/').next() != s.url.split('/').next()),
        );
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_routes() {
        assert_eq!(route_set(7), route_set(7));
        assert_ne!(route_set(7), route_set(8));
    }

    #[test]
    fn route_names_sort_in_creation_order() {
        let routes = route_set(3);
        let names: Vec<String> = routes
            .iter()
            .map(|r| r.metadata.name.clone().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
}
