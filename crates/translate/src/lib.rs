//! The pure heart of cfnet: the Routes of a namespace → the Services and VirtualServices (or, in
//! gateway-api mode, HTTPRoutes) the cluster must hold, and the problems of the routes that cannot be
//! programmed. No I/O, no async, no clock.
//!
//! Two entry points share one implementation:
//! - [`translate`] takes a whole set of Routes (what `cfnet render` reads) and returns everything;
//! - [`translate_fqdn`] takes the Routes of one (namespace, FQDN) plus the cross-FQDN facts in
//!   [`Claims`], which is what the controller computes per work item from its in-memory index.

pub mod claims;
pub mod gateway_api;
pub mod istio;
mod labels;
pub mod names;
mod objects;
mod validate;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

pub use cfnet_api::Reason;
use cfnet_api::gateway_api::HTTPRoute;
use cfnet_api::{Route, VirtualService};
use k8s_openapi::api::core::v1::Service;

pub use claims::{ClaimIndex, ClaimOrder, Claims, claim_order, route_name, route_namespace};
pub use gateway_api::GatewayRef;
pub use names::{http_route_name, service_name, virtual_service_name};
pub use objects::{
    PLACEHOLDER_HOST, ROUTE_LABELS, SERVICE_LABELS, destination_weights, route_services,
};
pub use validate::validate_route;

/// Settings that come from the controller's configuration. `Settings::default()` is the Istio mode with
/// no gateway: set `gateway` (the Go controller's required `ISTIO_GATEWAY_NAME`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// The gateway external routes are bound to (`ISTIO_GATEWAY_NAME`, e.g. `cf-system/istio-ingressgateway`).
    pub gateway: String,
    /// Which API the routes are programmed into.
    pub routing_api: RoutingApi,
    /// The Gateway API Gateway the HTTPRoutes attach to in gateway-api mode (default `cf-system/cf-gateway`).
    pub gateway_api_parent: GatewayRef,
}

/// The API the routes are programmed into. The same checks decide which routes are programmed in both,
/// except that gateway-api mode cannot express internal routes and routes with more than 16 destinations
/// ([`Reason::Unsupported`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RoutingApi {
    /// One Istio VirtualService per FQDN (`networking.istio.io/v1alpha3`), as the Go controller wrote.
    #[default]
    Istio,
    /// Gateway API `v1` HTTPRoutes per FQDN, attached to [`Settings::gateway_api_parent`].
    GatewayApi,
}

impl RoutingApi {
    /// The configuration value: `istio` or `gateway-api`.
    pub fn as_str(self) -> &'static str {
        match self {
            RoutingApi::Istio => "istio",
            RoutingApi::GatewayApi => "gateway-api",
        }
    }
}

impl std::fmt::Display for RoutingApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RoutingApi {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "istio" => Ok(RoutingApi::Istio),
            "gateway-api" => Ok(RoutingApi::GatewayApi),
            other => Err(format!(
                "routing API {other:?} is unknown; use istio or gateway-api"
            )),
        }
    }
}

/// The work item of the controller and the grouping of the translation: one VirtualService per key.
/// Shared strings: the controller keeps a key in several maps, and clones share one copy. `fqdn` is the
/// lower-case [`cfnet_api::RouteSpec::fqdn`]: routes whose hosts differ only in case are one FQDN.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FqdnKey {
    pub namespace: Arc<str>,
    pub fqdn: Arc<str>,
}

/// One route that is left out of the output, and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    pub namespace: String,
    pub route: String,
    pub reason: Reason,
    /// What is wrong and what to fix, e.g. `weights must sum to 100, got 90`.
    pub message: String,
}

/// Everything one FQDN of one namespace needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FqdnTranslation {
    /// Services of the FQDN's programmed routes, routes in url order, destinations in order.
    pub services: Vec<Service>,
    /// `None` when no route of the FQDN can be programmed (then any existing one must go), and always in
    /// gateway-api mode.
    pub virtual_service: Option<VirtualService>,
    /// Gateway-api mode: the FQDN's HTTPRoutes, ordered by name (the base name `hr-<sha256(fqdn)>` first,
    /// then the further shards); empty when no programmed route has destinations, and always in Istio mode.
    pub http_routes: Vec<HTTPRoute>,
    /// Names of the routes that are programmed (Ready=True).
    pub programmed: Vec<String>,
    pub problems: Vec<Problem>,
}

/// Everything a set of Routes needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Translation {
    /// Routes in input order, destinations in order.
    pub services: Vec<Service>,
    /// Ordered by (FQDN, namespace).
    pub virtual_services: Vec<VirtualService>,
    /// Gateway-api mode: ordered by (FQDN, namespace), then name.
    pub http_routes: Vec<HTTPRoute>,
    /// Ordered by (namespace, route).
    pub problems: Vec<Problem>,
}

/// Translates the routes of one FQDN in one namespace. `routes` may be in any order.
///
/// Every route is checked, in this order, and the first failed check is its problem:
/// 1. on its own ([`validate_route`]) → Invalid;
/// 2. its internal flag against the FQDN's kind, which the oldest route valid on its own decides
///    (creationTimestamp, then name) → Invalid;
/// 3. an FQDN held by another namespace ([`Claims::external_fqdn_holder`]) → Conflict;
/// 4. a destination guid held by another route of the namespace ([`Claims::destination_holder`]) → Conflict;
/// 5. the same match ([`gateway_api::match_key`]: the path without a trailing `/`, no path being `/`) as
///    an older route with destinations → Conflict.
///
/// The checks do not depend on [`Settings::routing_api`]. In Istio mode the routes that pass are
/// programmed exactly as the Go controller did. The VirtualService lists every route of the FQDN in its
/// ownerReferences, problems included, so that deleting any of them (and the finalizer flow) works and an
/// upgrade from upstream causes no churn. When no route of the FQDN passes, `virtual_service` is `None`.
///
/// In gateway-api mode the routes that pass become rules of the FQDN's HTTPRoutes ([`gateway_api`]),
/// with the same owners, except those Gateway API cannot express ([`gateway_api::unsupported`]: internal
/// routes, more than 16 destinations), which are [`Reason::Unsupported`].
pub fn translate_fqdn(
    key: &FqdnKey,
    routes: &[&Route],
    claims: &dyn Claims,
    settings: &Settings,
) -> FqdnTranslation {
    translate_group(key, routes, claims, settings, true)
}

/// [`translate_fqdn`]; `translate` builds the Services itself (in input order), so it skips them here.
fn translate_group(
    key: &FqdnKey,
    routes: &[&Route],
    claims: &dyn Claims,
    settings: &Settings,
    with_services: bool,
) -> FqdnTranslation {
    let mut out = FqdnTranslation::default();
    if routes.is_empty() {
        return out;
    }
    let mut problems = problems_in_context(key, routes, claims);
    let sorted = upstream_order(key, routes);
    let valid: Vec<&Route> = sorted
        .iter()
        .copied()
        .filter(|r| !problems.contains_key(route_name(r)))
        .collect();
    let internal = valid.first().is_some_and(|r| r.spec.domain.internal);
    let valid = match settings.routing_api {
        RoutingApi::Istio => valid,
        RoutingApi::GatewayApi => without_unsupported(valid, &mut problems),
    };
    if !valid.is_empty() {
        match settings.routing_api {
            RoutingApi::Istio => {
                let gateway = if internal {
                    "mesh".to_owned()
                } else {
                    settings.gateway.clone()
                };
                out.virtual_service = Some(objects::virtual_service(
                    key, &sorted, &valid, internal, gateway,
                ));
            }
            RoutingApi::GatewayApi => {
                out.http_routes =
                    gateway_api::http_routes(key, &sorted, &valid, &settings.gateway_api_parent);
            }
        }
        for route in &valid {
            if with_services {
                out.services.extend(route_services(route));
            }
            out.programmed.push(route_name(route).to_owned());
        }
    }
    out.problems = problems
        .into_iter()
        .map(|(route, (reason, message))| Problem {
            namespace: key.namespace.to_string(),
            route,
            reason,
            message,
        })
        .collect();
    out
}

/// Each route's problem, by route name: its own (validation), then those it has among its FQDN's routes,
/// checked oldest first, since the oldest decides the FQDN's kind and which of two routes with one url wins.
fn problems_in_context(
    key: &FqdnKey,
    routes: &[&Route],
    claims: &dyn Claims,
) -> BTreeMap<String, (Reason, String)> {
    let mut by_age: Vec<(ClaimOrder, &Route)> =
        routes.iter().map(|r| (claim_order(r), *r)).collect();
    by_age.sort_by(|a, b| a.0.cmp(&b.0));

    let self_checks: HashMap<&str, Result<(), String>> = by_age
        .iter()
        .map(|(o, r)| (&*o.name, validate_route(r)))
        .collect();
    let kind_decider = by_age
        .iter()
        .find(|(o, _)| self_checks.get(&*o.name).is_some_and(Result::is_ok))
        .map(|(o, r)| (o.name.clone(), r.spec.domain.internal));

    let mut problems = BTreeMap::new();
    let mut served_matches: HashMap<&str, &Route> = HashMap::new();
    for (order, route) in &by_age {
        let name = &*order.name;
        let problem = check_in_context(
            key,
            route,
            self_checks.get(name),
            kind_decider.as_ref(),
            claims,
            &mut served_matches,
        );
        if let Some(p) = problem {
            problems.insert(name.to_owned(), p);
        }
    }
    problems
}

/// Upstream order: spec.url descending, bytewise, with the FQDN part read in lower case (hosts that
/// differ only in case are one FQDN); ties by name.
fn upstream_order<'a>(key: &FqdnKey, routes: &[&'a Route]) -> Vec<&'a Route> {
    let mut sorted: Vec<&Route> = routes.to_vec();
    sorted.sort_by(|a, b| {
        url_order(&b.spec.url, &key.fqdn)
            .cmp(url_order(&a.spec.url, &key.fqdn))
            .then_with(|| route_name(a).cmp(route_name(b)))
    });
    sorted
}

/// Gateway-api mode: the routes Gateway API cannot express become [`Reason::Unsupported`] problems.
fn without_unsupported<'a>(
    valid: Vec<&'a Route>,
    problems: &mut BTreeMap<String, (Reason, String)>,
) -> Vec<&'a Route> {
    valid
        .into_iter()
        .filter(|route| match gateway_api::unsupported(route) {
            Some(message) => {
                problems.insert(route_name(route).to_owned(), (Reason::Unsupported, message));
                false
            }
            None => true,
        })
        .collect()
}

/// The bytes of `url` in upstream's order, with its FQDN part (when it is `fqdn` in any case) in lower
/// case: for every valid route that is `fqdn + path`, i.e. upstream's url for lower-case FQDNs.
fn url_order<'a>(url: &'a str, fqdn: &str) -> impl Iterator<Item = u8> + 'a {
    let fqdn_len = if url
        .as_bytes()
        .get(..fqdn.len())
        .is_some_and(|host| host.eq_ignore_ascii_case(fqdn.as_bytes()))
    {
        fqdn.len()
    } else {
        0
    };
    url.bytes().enumerate().map(move |(i, b)| {
        if i < fqdn_len {
            b.to_ascii_lowercase()
        } else {
            b
        }
    })
}

fn check_in_context<'a>(
    key: &FqdnKey,
    route: &'a Route,
    self_check: Option<&Result<(), String>>,
    kind_decider: Option<&(Arc<str>, bool)>,
    claims: &dyn Claims,
    served_matches: &mut HashMap<&'a str, &'a Route>,
) -> Option<(Reason, String)> {
    if let Some(Err(message)) = self_check {
        return Some((Reason::Invalid, message.clone()));
    }
    kind_mismatch(key, route, kind_decider)
        .or_else(|| namespace_conflict(key, claims))
        .or_else(|| destination_conflict(key, route, claims))
        .or_else(|| match_conflict(key, route, served_matches))
}

/// All routes of one FQDN agree on `domain.internal` with its oldest valid route.
fn kind_mismatch(
    key: &FqdnKey,
    route: &Route,
    kind_decider: Option<&(Arc<str>, bool)>,
) -> Option<(Reason, String)> {
    let internal = route.spec.domain.internal;
    let (decider, kind) = kind_decider.filter(|(_, kind)| *kind != internal)?;
    let word = |internal: bool| if internal { "internal" } else { "external" };
    Some((
        Reason::Invalid,
        format!(
            "domain {} is {} here, but the oldest route of FQDN {}, {}/{}, makes it {}; \
             all routes of one FQDN must agree on domain.internal",
            route.spec.domain.name,
            word(internal),
            key.fqdn,
            key.namespace,
            decider,
            word(*kind)
        ),
    ))
}

/// One namespace per FQDN, internal ones included: two mesh VirtualServices with one host are
/// undefined behaviour in Istio (IST0109), like two gateway ones.
fn namespace_conflict(key: &FqdnKey, claims: &dyn Claims) -> Option<(Reason, String)> {
    let holder = claims
        .external_fqdn_holder(&key.fqdn)
        .filter(|holder| *holder != &*key.namespace)?;
    Some((
        Reason::Conflict,
        format!(
            "FQDN {} is already served by routes in namespace {holder} (created earlier); \
             delete those routes or use another host",
            key.fqdn
        ),
    ))
}

/// One Service `s-<guid>` belongs to one route.
fn destination_conflict(
    key: &FqdnKey,
    route: &Route,
    claims: &dyn Claims,
) -> Option<(Reason, String)> {
    let name = route_name(route);
    route.spec.destinations.iter().find_map(|d| {
        let holder = claims
            .destination_holder(&key.namespace, &d.guid)
            .filter(|holder| *holder != name)?;
        Some((
            Reason::Conflict,
            format!(
                "destination {} is already used by route {}/{holder} (one Service {} cannot \
                 belong to two routes); give this destination a new guid",
                d.guid,
                key.namespace,
                service_name(&d.guid)
            ),
        ))
    })
}

/// Two entries with one match: the second could never be reached (Envoy: `/` and no path; Gateway API
/// and gorouter: also a trailing `/`). A destination-less route has no entry of its own when a sibling
/// has destinations, so it takes no match.
fn match_conflict<'a>(
    key: &FqdnKey,
    route: &'a Route,
    served_matches: &mut HashMap<&'a str, &'a Route>,
) -> Option<(Reason, String)> {
    if route.spec.destinations.is_empty() {
        return None;
    }
    let path = route.spec.path();
    let match_key = gateway_api::match_key(path);
    let Some(holder) = served_matches.get(match_key) else {
        served_matches.insert(match_key, route);
        return None;
    };
    let (url, holder_url) = (&route.spec.url, &holder.spec.url);
    let holder_path = holder.spec.path();
    let same = if holder_path != path && match_key == "/" {
        format!(", url {holder_url}: path \"/\" and no path are the same Envoy route")
    } else if holder_path != path {
        format!(
            ", url {holder_url}: paths that differ only in a trailing \"/\" are one route for \
             Cloud Foundry's gorouter and for Gateway API"
        )
    } else if holder_url != url {
        format!(", url {holder_url}: host names are case-insensitive")
    } else {
        String::new()
    };
    Some((
        Reason::Conflict,
        format!(
            "url {url} is already served by route {}/{} (created earlier{same}); delete one \
             of them",
            key.namespace,
            route_name(holder),
        ),
    ))
}

/// Translates a whole set of Routes (any namespaces, any order). When two routes share a namespace
/// and a name, the later one wins, as if they had been applied in order.
pub fn translate(routes: &[Route], settings: &Settings) -> Translation {
    // Keep the last definition of each (namespace, name), at its own position.
    let mut last: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, r) in routes.iter().enumerate() {
        last.insert((route_namespace(r), route_name(r)), i);
    }
    let routes: Vec<&Route> = routes
        .iter()
        .enumerate()
        .filter(|(i, r)| last.get(&(route_namespace(r), route_name(r))) == Some(i))
        .map(|(_, r)| r)
        .collect();

    let claims = ClaimIndex::from_routes(routes.iter().copied());
    let mut groups: BTreeMap<FqdnKey, Vec<&Route>> = BTreeMap::new();
    for r in &routes {
        groups
            .entry(FqdnKey {
                namespace: route_namespace(r).into(),
                fqdn: r.spec.fqdn().into(),
            })
            .or_default()
            .push(r);
    }

    let mut out = Translation::default();
    let mut programmed: HashSet<(String, String)> = HashSet::new();
    let mut virtual_services = Vec::new();
    let mut http_routes = Vec::new();
    for (key, group) in &groups {
        let t = translate_group(key, group, &claims, settings, false);
        for name in t.programmed {
            programmed.insert((key.namespace.to_string(), name));
        }
        if let Some(vs) = t.virtual_service {
            virtual_services.push((key.fqdn.clone(), key.namespace.clone(), vs));
        }
        for hr in t.http_routes {
            http_routes.push((key.fqdn.clone(), key.namespace.clone(), hr));
        }
        out.problems.extend(t.problems);
    }
    virtual_services.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out.virtual_services = virtual_services.into_iter().map(|(_, _, vs)| vs).collect();
    // Stable: the HTTPRoutes of one key are in name order already.
    http_routes.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out.http_routes = http_routes.into_iter().map(|(_, _, hr)| hr).collect();
    for r in &routes {
        if programmed.contains(&(route_namespace(r).to_owned(), route_name(r).to_owned())) {
            out.services.extend(route_services(r));
        }
    }
    out.problems.sort();
    out
}
