//! The problems of the kube side of a request (the Envoy side's are in envoy.rs): `unknown_route`,
//! `route_not_ready`, `no_destinations`, `no_endpoints`, `shadowed`. Pure.

use cfnet_translate::{PLACEHOLDER_HOST, virtual_service_name};

use super::report::{Code, DestinationRow, EntryRow, Problem, RouteRef, RouteRow};
use super::request::Request;

/// What the problem checks read.
pub(super) struct Context<'a> {
    pub(super) fqdn: &'a str,
    pub(super) request: &'a Request,
    pub(super) rows: &'a [RouteRow],
    pub(super) virtual_service: Option<&'a str>,
    pub(super) entries: &'a [EntryRow],
    pub(super) matched: Option<&'a RouteRef>,
    pub(super) matched_entry: Option<&'a EntryRow>,
    pub(super) cf_route: Option<&'a RouteRef>,
}

pub(super) fn unknown_route(c: &Context, envoy_routes_it: bool) -> Option<Problem> {
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

pub(super) fn route_not_ready(c: &Context) -> Option<Problem> {
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

pub(super) fn no_destinations(c: &Context) -> Option<Problem> {
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

pub(super) fn no_endpoints(destinations: &[DestinationRow], namespace: &str) -> Vec<Problem> {
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

pub(super) fn shadowed(c: &Context) -> Vec<Problem> {
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
