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
    virtual_service_name,
};
use kube::ResourceExt;

use super::envoy::{EnvoyFacts, Expected, explain_envoy};
use super::report::{
    Code, DestinationRow, EntryDestination, EntryRow, Problem, Report, RouteRef, RouteRow,
};
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

/// What the problem checks read.
struct Context<'a> {
    fqdn: &'a str,
    request: &'a Request,
    rows: &'a [RouteRow],
    virtual_service: Option<&'a str>,
    entries: &'a [EntryRow],
    matched: Option<&'a RouteRef>,
    matched_entry: Option<&'a EntryRow>,
    cf_route: Option<&'a RouteRef>,
}

fn unknown_route(c: &Context, envoy_routes_it: bool) -> Option<Problem> {
    if c.matched_entry.is_some() || c.cf_route.is_some() {
        return None;
    }
    if c.rows.is_empty() && c.virtual_service.is_none() {
        let message = if envoy_routes_it {
            format!(
                "no Route claims {} and there is no VirtualService {}: the request is routed by an object \
                 cfnet does not manage (see Envoy below)",
                c.fqdn,
                virtual_service_name(c.fqdn)
            )
        } else {
            format!(
                "no Route claims {} and there is no VirtualService {}: the gateway answers 404; check the host \
                 for typos, or map the route (cf map-route)",
                c.fqdn,
                virtual_service_name(c.fqdn)
            )
        };
        return Some(Problem {
            code: Code::UnknownRoute,
            message,
            blocking: !envoy_routes_it,
        });
    }
    let urls: Vec<&str> = c.rows.iter().map(|r| r.url.as_str()).collect();
    Some(Problem {
        code: Code::UnknownRoute,
        message: format!(
            "no Route of {} takes path {} (routes: {}): the gateway answers 404; check the path, or map a \
             route for it",
            c.fqdn,
            c.request.bare_path(),
            if urls.is_empty() {
                "none".to_owned()
            } else {
                urls.join(", ")
            }
        ),
        blocking: true,
    })
}

fn route_not_ready(c: &Context) -> Option<Problem> {
    let pick = c.cf_route?;
    let row = c
        .rows
        .iter()
        .find(|r| r.namespace == pick.namespace && r.name == pick.name)?;
    if row.ready {
        return None;
    }
    let why = match (&row.reason, &row.message) {
        (Some(reason), Some(message)) => format!("{reason}: {message}"),
        (Some(reason), None) => reason.clone(),
        _ => format!(
            "it has no Ready condition: the controller has not processed it; check that it runs and watches \
             namespace {}",
            row.namespace
        ),
    };
    let instead = match c.matched {
        Some(m) if m == pick => {
            "the VirtualService still routes the request to it, as it stands".to_owned()
        }
        Some(m) => format!("the request goes to route {m} instead"),
        None if c.matched_entry.is_some() => {
            "the request goes to a VirtualService entry of no Route instead".to_owned()
        }
        None => "the gateway answers 404".to_owned(),
    };
    Some(Problem {
        code: Code::RouteNotReady,
        message: format!(
            "route {pick} (url {}) is the one Cloud Foundry picks for this request but is not Ready ({why}); \
             {instead}",
            row.url
        ),
        blocking: c.matched != Some(pick),
    })
}

fn no_destinations(c: &Context) -> Option<Problem> {
    let entry = c.matched_entry?;
    if !entry
        .destinations
        .iter()
        .all(|d| d.host == PLACEHOLDER_HOST)
    {
        return None;
    }
    let route = c
        .matched
        .map_or_else(|| "the route".to_owned(), |m| format!("route {m}"));
    Some(Problem {
        code: Code::NoDestinations,
        message: format!(
            "{route} has no destinations: its entry goes to the placeholder {PLACEHOLDER_HOST} and the \
             gateway answers 503; map an app to the route (cf map-route)"
        ),
        blocking: true,
    })
}

fn no_endpoints(destinations: &[DestinationRow], namespace: &str) -> Vec<Problem> {
    let weighted: Vec<&DestinationRow> = destinations.iter().filter(|d| d.weight > 0).collect();
    let all_down = !weighted.is_empty() && weighted.iter().all(|d| d.endpoints == 0);
    weighted
        .iter()
        .filter(|d| d.endpoints == 0)
        .map(|d| {
            let selector: Vec<String> = d.selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let state = if d.exists {
                "has no ready endpoints"
            } else {
                "does not exist (the controller writes it once the Route is Ready)"
            };
            Problem {
                code: Code::NoEndpoints,
                message: format!(
                    "Service {namespace}/{} (app {}, weight {}) {state}: {}% of requests get 503; check that \
                     the app's pods ({}) are running and ready",
                    d.service,
                    d.app,
                    d.weight,
                    d.weight,
                    if selector.is_empty() { "no selector".to_owned() } else { selector.join(",") }
                ),
                blocking: all_down,
            }
        })
        .collect()
}

fn shadowed(c: &Context) -> Vec<Problem> {
    let vs = c.virtual_service.unwrap_or_default();
    c.entries
        .iter()
        .enumerate()
        .filter_map(|(i, entry)| {
            let j = entry.shadowed_by?;
            let earlier = &c.entries[j];
            let name = |e: &EntryRow, index: usize| {
                e.route
                    .as_ref()
                    .map_or_else(|| format!("entry {index}"), |r| format!("route {r}"))
            };
            Some(Problem {
                code: Code::Shadowed,
                message: format!(
                    "{} (prefix {}) can never match: {} (prefix {}) comes before it in VirtualService {vs} \
                     and takes every request it would; cfnet orders entries longest path first, so this \
                     VirtualService was not written by cfnet: delete it and let the controller write it",
                    name(entry, i),
                    entry.prefix,
                    name(earlier, j),
                    earlier.prefix
                ),
                blocking: entry.matches && entry.route.as_ref() == c.cf_route,
            })
        })
        .collect()
}
