//! The decisions of `cfnet explain`, pure: from the Routes that claim the request's FQDN, its VirtualService,
//! the destinations' Services (ready endpoint counts) and what istiod serves, the report and its problems.
//!
//! - The entry the request takes is the VirtualService's first http entry whose prefix starts the request's
//!   `:path` (Istio's first-match semantics, case-sensitive); later matching entries are listed too. An entry
//!   is **shadowed** when an earlier entry's prefix is a prefix of its own: it can never match.
//! - The Route behind an entry is the Route of the VirtualService's namespace with one of its destinations
//!   (`s-<guid>`), or, for the `no-destinations` placeholder, the destination-less Route with its path.
//! - The Route Cloud Foundry would pick is the one with the longest path that starts the request's path at a
//!   segment boundary (gorouter's lookup; paths compared case-sensitively, as Istio does).

use std::collections::BTreeMap;

use cfnet_api::{ConditionStatus, READY, Route, VirtualService};
use cfnet_translate::{
    PLACEHOLDER_HOST, destination_weights, route_name, route_namespace, service_name,
};
use kube::ResourceExt;

use super::envoy::{EnvoyFacts, Expected, explain_envoy};
use super::problems::{
    Context, no_destinations, no_endpoints, route_not_ready, shadowed, unknown_route,
};
use super::report::{DestinationRow, EntryDestination, EntryRow, Report, RouteRef, RouteRow};
use super::request::Request;

/// Everything read for one request.
#[derive(Clone, Debug)]
pub struct Facts {
    pub request: Request,
    /// The FQDN the Routes claim: the request's host, or the wildcard FQDN that takes it ([`claiming`]).
    pub fqdn: String,
    /// The Routes that claim `fqdn`, any namespace, any order.
    pub routes: Vec<Route>,
    pub virtual_service: Option<VirtualService>,
    /// Ready endpoints of the Services that exist, by (namespace, name).
    pub services: BTreeMap<(String, String), u32>,
    pub envoy: EnvoyFacts,
}

/// The FQDN whose Routes serve `host`, and those Routes: the host itself, else the longest wildcard FQDN
/// (`*.<parent>`) that Routes claim, as gorouter falls back to wildcards.
pub fn claiming(routes: &[Route], host: &str) -> (String, Vec<Route>) {
    let wildcards = host
        .match_indices('.')
        .map(|(i, _)| format!("*{}", &host[i..]));
    for fqdn in std::iter::once(host.to_owned()).chain(wildcards) {
        let claims: Vec<Route> = routes
            .iter()
            .filter(|r| r.spec.fqdn() == fqdn)
            .cloned()
            .collect();
        if !claims.is_empty() {
            return (fqdn, claims);
        }
    }
    (host.to_owned(), Vec::new())
}

/// Of the VirtualServices named `vs-<sha256(fqdn)>`, the one in the namespace of a Ready Route, else of any
/// Route, else the first by namespace.
pub fn choose_virtual_service(
    mut candidates: Vec<VirtualService>,
    routes: &[Route],
) -> Option<VirtualService> {
    candidates.sort_by_key(|vs| vs.namespace());
    let in_namespace_of = |pred: &dyn Fn(&Route) -> bool| {
        candidates.iter().position(|vs| {
            routes
                .iter()
                .any(|r| pred(r) && vs.namespace().as_deref() == Some(route_namespace(r)))
        })
    };
    let index = in_namespace_of(&|r| ready(r).0)
        .or_else(|| in_namespace_of(&|_| true))
        .unwrap_or(0);
    (index < candidates.len()).then(|| candidates.swap_remove(index))
}

/// The Services whose endpoints the report needs: every destination of every claiming Route.
pub fn services_to_read(routes: &[Route]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = routes
        .iter()
        .flat_map(|r| {
            r.spec
                .destinations
                .iter()
                .map(|d| (route_namespace(r).to_owned(), service_name(&d.guid)))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether the FQDN is internal: its VirtualService is bound to `mesh`, or (without one) its oldest Route says so.
pub fn is_internal(routes: &[Route], virtual_service: Option<&VirtualService>) -> bool {
    match virtual_service {
        Some(vs) => vs.spec.gateways.iter().any(|g| g == "mesh"),
        None => routes.iter().any(|r| r.spec.domain.internal),
    }
}

/// (Ready=True, reason, message) of a Route's Ready condition.
fn ready(route: &Route) -> (bool, Option<String>, Option<String>) {
    let condition = route
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY));
    match condition {
        Some(c) => (
            c.status == ConditionStatus::True,
            c.reason.clone(),
            c.message.clone(),
        ),
        None => (false, None, None),
    }
}

fn route_ref(route: &Route) -> RouteRef {
    RouteRef {
        namespace: route_namespace(route).to_owned(),
        name: route_name(route).to_owned(),
    }
}

pub fn explain(facts: &Facts) -> Report {
    let request = &facts.request;
    let routes = sorted(&facts.routes);
    let rows = route_rows(&routes);
    let vs = facts.virtual_service.as_ref();
    let vs_namespace = vs.and_then(|v| v.namespace()).unwrap_or_default();
    let entries = vs
        .map(|v| entries(v, &vs_namespace, &routes, request))
        .unwrap_or_default();
    let matched_index = entries.iter().position(|e| e.matches);
    let matched_entry = matched_index.map(|i| &entries[i]);
    let matched = matched_entry.and_then(|e| e.route.clone());
    let cf_route = cf_pick(&routes, request);
    let shown = matched
        .as_ref()
        .or(cf_route.as_ref())
        .and_then(|m| routes.iter().find(|r| route_ref(r) == *m).copied());
    let destinations = shown
        .map(|r| {
            destination_rows(
                r,
                matched_entry.filter(|_| matched.is_some()),
                &facts.services,
            )
        })
        .unwrap_or_default();

    let vs_name = vs.map(|v| v.name_any());
    let expected = match (matched_entry, &vs_name) {
        (Some(entry), Some(name)) => Some(Expected {
            namespace: &vs_namespace,
            virtual_service: name,
            entry,
        }),
        _ => None,
    };
    let envoy = explain_envoy(&facts.envoy, request, &facts.fqdn, expected.as_ref());

    let virtual_service = vs_name.as_deref().map(|n| format!("{vs_namespace}/{n}"));
    let mut problems = Vec::new();
    let context = Context {
        fqdn: &facts.fqdn,
        request,
        rows: &rows,
        virtual_service: virtual_service.as_deref(),
        entries: &entries,
        matched: matched.as_ref(),
        matched_entry,
        cf_route: cf_route.as_ref(),
    };
    problems.extend(unknown_route(&context, envoy.routed));
    problems.extend(route_not_ready(&context));
    problems.extend(no_destinations(&context));
    if matched.is_some() {
        problems.extend(no_endpoints(&destinations, &vs_namespace));
    }
    problems.extend(shadowed(&context));
    problems.extend(envoy.problems);

    let notes = notes(&routes, request, matched.as_ref(), cf_route.as_ref());
    Report {
        url: request.url.clone(),
        scheme: request.scheme,
        fqdn: facts.fqdn.clone(),
        path: request.path.clone(),
        internal: is_internal(&facts.routes, vs),
        routes: rows,
        virtual_service,
        entries,
        matched,
        cf_route,
        destinations,
        envoy: envoy.report,
        notes,
        problems,
    }
}

/// Where Istio's match differs from what a Cloud Foundry user expects, for Ready Routes (a Route that is not
/// Ready is a problem of its own).
fn notes(
    routes: &[&Route],
    request: &Request,
    matched: Option<&RouteRef>,
    cf_route: Option<&RouteRef>,
) -> Vec<String> {
    let path = request.bare_path();
    let mut notes = Vec::new();
    for route in routes.iter().filter(|r| ready(r).0) {
        let own = route.spec.path().trim_end_matches('/');
        let takes = |path: &str| {
            own.is_empty()
                || path == own
                || path
                    .strip_prefix(own)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        if !takes(path) && takes(&path.to_ascii_lowercase()) && own == own.to_ascii_lowercase() {
            notes.push(format!(
                "route {} has path {own}: Istio compares paths case-sensitively, so {path} does not take it \
                 (gorouter would); use the route's exact case",
                route_ref(route)
            ));
        }
    }
    let ready_pick = cf_route.filter(|c| routes.iter().any(|r| route_ref(r) == **c && ready(r).0));
    if let (Some(m), Some(c)) = (matched, ready_pick)
        && m != c
    {
        notes.push(format!(
            "Istio's prefix match sends {path} to route {m}, while Cloud Foundry, matching whole path \
             segments, would pick route {c}"
        ));
    }
    notes
}

/// As the VirtualService orders them: namespace, url descending, then name.
fn sorted(routes: &[Route]) -> Vec<&Route> {
    let mut routes: Vec<&Route> = routes.iter().collect();
    routes.sort_by(|a, b| {
        (
            route_namespace(a),
            b.spec.url.to_ascii_lowercase(),
            route_name(a),
        )
            .cmp(&(
                route_namespace(b),
                a.spec.url.to_ascii_lowercase(),
                route_name(b),
            ))
    });
    routes
}

fn route_rows(routes: &[&Route]) -> Vec<RouteRow> {
    routes
        .iter()
        .map(|r| {
            let (ready, reason, message) = ready(r);
            RouteRow {
                namespace: route_namespace(r).to_owned(),
                name: route_name(r).to_owned(),
                url: r.spec.url.clone(),
                ready,
                reason,
                message,
            }
        })
        .collect()
}

/// The VirtualService's http entries, which the request matches, which are shadowed, and their Routes.
fn entries(
    vs: &VirtualService,
    namespace: &str,
    routes: &[&Route],
    request: &Request,
) -> Vec<EntryRow> {
    let local: Vec<&Route> = routes
        .iter()
        .copied()
        .filter(|r| route_namespace(r) == namespace)
        .collect();
    let mut out: Vec<EntryRow> = Vec::new();
    for http in &vs.spec.http {
        let prefix = match http.match_.first() {
            None => "/".to_owned(),
            Some(m) => m
                .uri
                .as_ref()
                .and_then(|u| u.prefix.clone())
                .unwrap_or_default(),
        };
        let single = http.route.len() == 1;
        let destinations: Vec<EntryDestination> = http
            .route
            .iter()
            .map(|d| EntryDestination {
                host: d.destination.host.clone(),
                // Istio gives a lone destination all the traffic, weight or not.
                weight: if single && d.weight == 0 {
                    100
                } else {
                    d.weight
                },
            })
            .collect();
        let route = entry_route(&destinations, &prefix, &local);
        let shadowed_by = out
            .iter()
            .position(|earlier| !prefix.is_empty() && prefix.starts_with(&earlier.prefix));
        out.push(EntryRow {
            matches: !prefix.is_empty() && request.path.starts_with(&prefix),
            prefix,
            route,
            destinations,
            shadowed_by,
        });
    }
    out
}

fn entry_route(
    destinations: &[EntryDestination],
    prefix: &str,
    routes: &[&Route],
) -> Option<RouteRef> {
    let by_destination = destinations.iter().find_map(|d| {
        routes.iter().find(|r| {
            r.spec
                .destinations
                .iter()
                .any(|rd| service_name(&rd.guid) == d.host)
        })
    });
    let placeholder = || {
        destinations
            .iter()
            .any(|d| d.host == PLACEHOLDER_HOST)
            .then(|| {
                routes.iter().find(|r| {
                    r.spec.destinations.is_empty()
                        && (if r.spec.path().is_empty() {
                            "/"
                        } else {
                            r.spec.path()
                        }) == prefix
                })
            })
            .flatten()
    };
    by_destination.or_else(placeholder).map(|r| route_ref(r))
}

/// gorouter's pick: the longest Route path that starts the request's path at a segment boundary; Ready
/// Routes first among equals.
fn cf_pick(routes: &[&Route], request: &Request) -> Option<RouteRef> {
    let path = request.bare_path();
    let mut best: Option<((usize, bool), &Route)> = None;
    for route in routes {
        let own = route.spec.path().trim_end_matches('/');
        let takes = own.is_empty()
            || path == own
            || path
                .strip_prefix(own)
                .is_some_and(|rest| rest.starts_with('/'));
        if !takes {
            continue;
        }
        let key = (own.len(), ready(route).0);
        if best.is_none_or(|(k, _)| key > k) {
            best = Some((key, route));
        }
    }
    best.map(|(_, r)| route_ref(r))
}

fn destination_rows(
    route: &Route,
    entry: Option<&EntryRow>,
    services: &BTreeMap<(String, String), u32>,
) -> Vec<DestinationRow> {
    let namespace = route_namespace(route);
    route
        .spec
        .destinations
        .iter()
        .zip(destination_weights(route))
        .map(|(d, computed)| {
            let service = service_name(&d.guid);
            let programmed = entry.and_then(|e| e.destinations.iter().find(|x| x.host == service));
            let endpoints = services.get(&(namespace.to_owned(), service.clone()));
            DestinationRow {
                weight: programmed.map_or(computed, |p| p.weight),
                port: d.port,
                app: d.app.guid.clone(),
                selector: d.selector.match_labels.clone(),
                exists: endpoints.is_some(),
                endpoints: endpoints.copied().unwrap_or_default(),
                service,
            }
        })
        .collect()
}
