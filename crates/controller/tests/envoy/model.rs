//! What a set of Routes must become, worked out from the Routes alone (an oracle written from the rules in
//! docs/render.md, not from the translation's code): each Route's Ready condition, and per FQDN the Envoy
//! routes in order with their clusters, weights and CF headers.
//!
//! It covers what the generator and the examples produce: one namespace, unique destination guids, one
//! domain kind per FQDN; a route is invalid only for its weights, and in conflict only for an Envoy match an
//! older route with destinations has (`/` and no path are one match; the FQDN is case-insensitive).

use std::collections::{BTreeMap, BTreeSet};

use cfnet_api::Route;

use crate::generator::APP_DOMAIN;

/// What happens to one Route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Ready, with its own Envoy route.
    Entry,
    /// Ready, no Envoy route: it has no destinations and a sibling has some (upstream's rule).
    NoEntry,
    /// Ready, served by the `no-destinations` placeholder (no route of the FQDN has destinations).
    Placeholder,
    /// Not Ready, reason Invalid; the message contains this.
    Invalid(String),
    /// Not Ready, reason Conflict with this older route.
    Conflict(String),
}

impl Outcome {
    pub fn ready(&self) -> bool {
        matches!(
            self,
            Outcome::Entry | Outcome::NoEntry | Outcome::Placeholder
        )
    }
}

/// One Envoy route expected on an FQDN's virtual host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The Envoy prefix (no path → `/`).
    pub prefix: String,
    /// The routes it serves (several only for one placeholder shared by `/` and no path).
    pub routes: Vec<String>,
    pub target: Target,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Placeholder,
    /// The weighted clusters (zero weights left out, as istiod does); `single` when the route has one
    /// destination (istiod then writes `route.cluster` and puts the headers on the route).
    Clusters {
        single: bool,
        clusters: Vec<Cluster>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cluster {
    /// `outbound|<port>||s-<guid>.<namespace>.svc.cluster.local`
    pub name: String,
    pub weight: u32,
    pub headers: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fqdn {
    pub internal: bool,
    /// Bound to the Gateway's HTTPS app-domain server too.
    pub https: bool,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// By route name.
    pub routes: BTreeMap<String, Outcome>,
    /// By lower-case FQDN; only FQDNs with at least one Envoy route.
    pub fqdns: BTreeMap<String, Fqdn>,
}

impl Expected {
    /// (FQDN, prefix) of every placeholder route.
    pub fn placeholders(&self) -> BTreeSet<(String, String)> {
        self.fqdns
            .iter()
            .flat_map(|(fqdn, f)| {
                f.entries
                    .iter()
                    .filter(|e| e.target == Target::Placeholder)
                    .map(move |e| (fqdn.clone(), e.prefix.clone()))
            })
            .collect()
    }
}

fn name(r: &Route) -> String {
    r.metadata.name.clone().unwrap_or_default()
}

fn envoy_prefix(r: &Route) -> String {
    match r.spec.path() {
        "" => "/".to_owned(),
        p => p.to_owned(),
    }
}

fn weights_problem(r: &Route) -> Option<String> {
    let weights: Vec<i64> = r
        .spec
        .destinations
        .iter()
        .filter_map(|d| d.weight)
        .collect();
    if weights.is_empty() {
        return None;
    }
    let sum: i64 = weights.iter().sum();
    (sum != 100).then(|| format!("weights must sum to 100, got {sum}"))
}

/// CF headers of one destination, as the VirtualService sets them.
fn headers(r: &Route, d: &cfnet_api::RouteDestination) -> BTreeMap<String, String> {
    let label = |key: &str| {
        r.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default()
    };
    BTreeMap::from([
        ("CF-App-Id".to_owned(), d.app.guid.clone()),
        (
            "CF-App-Process-Type".to_owned(),
            d.app.process.type_.clone(),
        ),
        (
            "CF-Space-Id".to_owned(),
            label("cloudfoundry.org/space_guid"),
        ),
        (
            "CF-Organization-Id".to_owned(),
            label("cloudfoundry.org/org_guid"),
        ),
    ])
}

fn clusters(r: &Route, namespace: &str) -> Target {
    let dests = &r.spec.destinations;
    let n = dests.len() as u32;
    let clusters = dests
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let weight = match d.weight {
                Some(w) => w as u32,
                None if i == 0 => 100 / n + 100 % n,
                None => 100 / n,
            };
            Cluster {
                name: format!(
                    "outbound|{}||s-{}.{namespace}.svc.cluster.local",
                    d.port, d.guid
                ),
                weight,
                headers: headers(r, d),
            }
        })
        // istiod leaves zero-weight destinations out of weighted clusters.
        .filter(|c| n == 1 || c.weight > 0)
        .collect();
    Target::Clusters {
        single: n == 1,
        clusters,
    }
}

/// `routes` in creation order (claim order: creationTimestamp, then name — the generator's names sort in
/// creation order).
pub fn expected(routes: &[Route]) -> Expected {
    let namespace = the_namespace(routes);
    let mut by_fqdn: BTreeMap<String, Vec<&Route>> = BTreeMap::new();
    for r in routes {
        by_fqdn.entry(r.spec.fqdn()).or_default().push(r);
    }
    let mut out = Expected::default();
    for (fqdn, group) in by_fqdn {
        let internal = group[0].spec.domain.internal;
        assert!(
            group.iter().all(|r| r.spec.domain.internal == internal),
            "{fqdn}: one domain kind"
        );
        let problems = problems(&group);
        let mut valid: Vec<&Route> = group
            .iter()
            .copied()
            .filter(|r| !problems.contains_key(&name(r)))
            .collect();
        // The VirtualService's order: url descending (the FQDN part in lower case), then name.
        valid.sort_by(|a, b| {
            let key = |r: &Route| format!("{fqdn}{}", r.spec.path());
            key(b).cmp(&key(a)).then_with(|| name(a).cmp(&name(b)))
        });
        let entries = entries(&valid, &namespace, &mut out.routes);
        out.routes.extend(problems);
        if !entries.is_empty() {
            let https =
                !internal && (fqdn == APP_DOMAIN || fqdn.ends_with(&format!(".{APP_DOMAIN}")));
            out.fqdns.insert(
                fqdn,
                Fqdn {
                    internal,
                    https,
                    entries,
                },
            );
        }
    }
    out
}

/// The one namespace of the generated Routes; their destination guids are unique.
fn the_namespace(routes: &[Route]) -> String {
    let namespaces: BTreeSet<&str> = routes
        .iter()
        .filter_map(|r| r.metadata.namespace.as_deref())
        .collect();
    assert!(namespaces.len() <= 1, "one namespace: {namespaces:?}");
    let guids: Vec<&str> = routes
        .iter()
        .flat_map(|r| r.spec.destinations.iter().map(|d| d.guid.as_str()))
        .collect();
    assert_eq!(
        guids.len(),
        guids.iter().collect::<BTreeSet<_>>().len(),
        "unique destination guids"
    );
    namespaces
        .into_iter()
        .next()
        .unwrap_or("default")
        .to_owned()
}

/// The routes of one FQDN (in claim order) that are not programmed: invalid weights, or an Envoy match an
/// older route holds.
fn problems(group: &[&Route]) -> BTreeMap<String, Outcome> {
    let mut problems: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut matches: BTreeMap<String, String> = BTreeMap::new();
    for r in group {
        if let Some(p) = weights_problem(r) {
            problems.insert(name(r), Outcome::Invalid(p));
        } else if !r.spec.destinations.is_empty() {
            let prefix = envoy_prefix(r);
            if let Some(holder) = matches.get(&prefix) {
                problems.insert(name(r), Outcome::Conflict(holder.clone()));
            } else {
                matches.insert(prefix, name(r));
            }
        }
    }
    problems
}

/// The http entries of the valid routes (in the VirtualService's order), each route's outcome recorded.
fn entries(
    valid: &[&Route],
    namespace: &str,
    outcomes: &mut BTreeMap<String, Outcome>,
) -> Vec<Entry> {
    let any_dests = valid.iter().any(|r| !r.spec.destinations.is_empty());
    let mut entries: Vec<Entry> = Vec::new();
    for r in valid {
        let outcome = if !r.spec.destinations.is_empty() {
            entries.push(Entry {
                prefix: envoy_prefix(r),
                routes: vec![name(r)],
                target: clusters(r, namespace),
            });
            Outcome::Entry
        } else if any_dests {
            Outcome::NoEntry
        } else {
            let prefix = envoy_prefix(r);
            match entries.iter_mut().find(|e| e.prefix == prefix) {
                Some(e) => e.routes.push(name(r)),
                None => entries.push(Entry {
                    prefix,
                    routes: vec![name(r)],
                    target: Target::Placeholder,
                }),
            }
            Outcome::Placeholder
        };
        outcomes.insert(name(r), outcome);
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfnet_api::fixtures;

    fn route(name: &str, host: &str, path: Option<&str>, dests: &[(Option<i64>, &str)]) -> Route {
        dests
            .iter()
            .fold(
                fixtures::route(name)
                    .namespace("ns")
                    .host(host)
                    .path(path.unwrap_or(""))
                    .space_and_org("s", "o"),
                |r, (w, guid)| {
                    r.destination(
                        fixtures::destination(guid, "app")
                            .weight_opt(*w)
                            .selector(Default::default()),
                    )
                },
            )
            .build()
    }

    #[test]
    fn outcomes_and_order_follow_the_rules() {
        let e = expected(&[
            route("a", "x", None, &[(None, "1"), (None, "2"), (None, "3")]),
            route("b", "x", Some("/"), &[(None, "4")]),
            route("c", "X", Some("/ab"), &[(Some(100), "5"), (Some(0), "6")]),
            route("d", "x", Some("/a"), &[]),
            route("e", "x", Some("/a/b"), &[(Some(60), "7"), (Some(30), "8")]),
            route("f", "y", None, &[]),
            route("g", "y", Some("/"), &[]),
        ]);
        assert_eq!(e.routes["a"], Outcome::Entry);
        assert_eq!(e.routes["b"], Outcome::Conflict("a".into()));
        assert_eq!(e.routes["c"], Outcome::Entry);
        assert_eq!(e.routes["d"], Outcome::NoEntry);
        assert!(matches!(&e.routes["e"], Outcome::Invalid(m) if m.contains("90")));
        assert_eq!(e.routes["f"], Outcome::Placeholder);
        assert_eq!(e.routes["g"], Outcome::Placeholder);
        let x = &e.fqdns["x.apps.example.com"];
        assert!(x.https);
        let prefixes: Vec<&str> = x.entries.iter().map(|e| e.prefix.as_str()).collect();
        assert_eq!(prefixes, ["/ab", "/"]);
        let Target::Clusters { single, clusters } = &x.entries[1].target else {
            panic!()
        };
        assert!(!single);
        let weights: Vec<u32> = clusters.iter().map(|c| c.weight).collect();
        assert_eq!(weights, [34, 33, 33]);
        let Target::Clusters { clusters, .. } = &x.entries[0].target else {
            panic!()
        };
        assert_eq!(clusters.len(), 1, "the zero weight is left out");
        assert_eq!(clusters[0].name, "outbound|8080||s-5.ns.svc.cluster.local");
        let y = &e.fqdns["y.apps.example.com"];
        assert_eq!(y.entries.len(), 1, "one placeholder for / and no path");
        assert_eq!(y.entries[0].routes, ["g", "f"]);
        assert_eq!(
            e.placeholders(),
            BTreeSet::from([("y.apps.example.com".to_owned(), "/".to_owned())])
        );
    }
}
