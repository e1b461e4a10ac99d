//! The Envoy half of `cfnet explain`, pure: in the configuration istiod serves the gateway (or a sidecar), the
//! route configuration the request's listener uses, the virtual host and route Envoy picks, its clusters, and
//! whether that is what the VirtualService says (`not_in_envoy`), whether its clusters exist
//! (`cluster_missing`) and whether the host has an HTTPS virtual host (`https_not_bound`).

use cfnet_translate::PLACEHOLDER_HOST;
use cfnet_xds::lookup::{Lookup, lookup};
use cfnet_xds::view::{self, IstioClusterName, PathView, RouteView, table::match_text};
use cfnet_xds::{Proxy, ProxyConfig};

use super::report::{Code, EntryRow, EnvoyCluster, EnvoyReport, HttpsBinding, Problem};
use super::request::{Request, Scheme};

/// What was learnt from istiod.
#[derive(Clone, Debug)]
pub enum EnvoyFacts {
    /// No istiod address was given.
    NotAsked,
    /// The fetch failed; the error names the address and what to do.
    Unavailable { error: String },
    Fetched {
        proxy: Proxy,
        config: Box<ProxyConfig>,
    },
}

/// The programmed entry the request takes, and where its VirtualService lives.
pub struct Expected<'a> {
    pub namespace: &'a str,
    pub virtual_service: &'a str,
    pub entry: &'a EntryRow,
}

#[derive(Debug, Default)]
pub struct EnvoyOutcome {
    pub report: Option<EnvoyReport>,
    pub problems: Vec<Problem>,
    /// Envoy sends the request to at least one cluster (used to tell a 404 from a non-CF route).
    pub routed: bool,
}

pub fn explain_envoy(
    facts: &EnvoyFacts,
    request: &Request,
    fqdn: &str,
    expected: Option<&Expected>,
) -> EnvoyOutcome {
    let (proxy, config) = match facts {
        EnvoyFacts::NotAsked => return EnvoyOutcome::default(),
        EnvoyFacts::Unavailable { error } => {
            return EnvoyOutcome {
                problems: vec![Problem {
                    code: Code::XdsUnavailable,
                    message: format!("{error}; the Envoy part is skipped"),
                    blocking: false,
                }],
                ..EnvoyOutcome::default()
            };
        }
        EnvoyFacts::Fetched { proxy, config } => (proxy, config),
    };
    let gateway = matches!(proxy, Proxy::Gateway(_));
    let route_config = request_route_config(config, gateway, request);
    let found: Option<Lookup> = route_config
        .as_deref()
        .and_then(|name| config.route_configs.get(name))
        .and_then(|rc| lookup(rc, &request.host, request.port, &request.path));
    let route = found.as_ref().and_then(|l| l.route.as_ref());
    let clusters = route.map(|r| clusters(config, r)).unwrap_or_default();
    let https = gateway.then(|| https_binding(config, request));
    let proxy_text = proxy.to_string();
    let mut problems = Vec::new();
    // An HTTPS request to a host without an HTTPS virtual host is that problem, not a missing route.
    let https_unbound =
        request.scheme == Some(Scheme::Https) && https.as_ref().is_some_and(|h| !h.bound);
    if let Some(expected) = expected.filter(|_| !https_unbound)
        && let Some(message) =
            not_in_envoy(expected, route, route_config.as_deref(), &proxy_text, fqdn)
    {
        problems.push(Problem {
            code: Code::NotInEnvoy,
            message,
            blocking: true,
        });
    }
    problems.extend(cluster_missing(&clusters, &proxy_text, fqdn));
    if let Some(https) = &https
        && expected.is_some()
    {
        problems.extend(https_not_bound(https, request));
    }
    let routed = clusters.iter().any(|c| c.weight > 0);
    EnvoyOutcome {
        report: Some(EnvoyReport {
            proxy: proxy_text,
            route_config,
            virtual_host: found.as_ref().map(|l| l.virtual_host.clone()),
            domains: found
                .as_ref()
                .map(|l| l.domains.clone())
                .unwrap_or_default(),
            route_match: route.map(|r| match_text(&r.route_match)),
            from_virtual_service: route.and_then(|r| r.virtual_service.clone()),
            clusters,
            https,
        }),
        problems,
        routed,
    }
}

/// The route configuration of the request's listener: a gateway's HTTP one, or its HTTPS one by SNI; a
/// sidecar's by port.
fn request_route_config(config: &ProxyConfig, gateway: bool, request: &Request) -> Option<String> {
    match (gateway, request.scheme) {
        (true, Some(Scheme::Https)) => gateway_route_config(config, Some(&request.host), "https."),
        (true, _) => gateway_route_config(config, None, "http."),
        (false, _) => sidecar_route_config(config, request),
    }
}

/// The route's clusters: whether CDS has each, and the endpoints EDS gives it that Envoy would use.
fn clusters(config: &ProxyConfig, route: &RouteView) -> Vec<EnvoyCluster> {
    route
        .clusters
        .iter()
        .map(|c| {
            let view = config.cluster_view(&c.name);
            EnvoyCluster {
                name: c.name.clone(),
                weight: c.weight,
                exists: view.is_some(),
                endpoints: view.and_then(|v| v.healthy_endpoints),
            }
        })
        .collect()
}

fn https_not_bound(https: &HttpsBinding, request: &Request) -> Option<Problem> {
    if https.bound {
        return None;
    }
    let blocking = request.scheme == Some(Scheme::Https);
    Some(Problem {
        code: Code::HttpsNotBound,
        message: format!(
            "the gateway has no HTTPS virtual host for {} ({}): https://{} gets no route (TLS handshake \
             failure or 404){}; add the domain to the Gateway's HTTPS server hosts for this namespace \
             (chart value appDomains) and make sure its certificate covers it",
            request.host,
            match &https.route_config {
                Some(rc) => format!("route configuration {rc} has none"),
                None => "no HTTPS server matches it by SNI".to_owned(),
            },
            request.host,
            if blocking { "" } else { "; plain HTTP works" },
        ),
        blocking,
    })
}

/// The ports of the proxy's listeners, ascending.
fn listener_ports(config: &ProxyConfig) -> Vec<u32> {
    let mut ports: Vec<u32> = view::listeners(config)
        .iter()
        .filter_map(|l| l.address.rsplit_once(':')?.1.parse().ok())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// A gateway's route configuration for a plain (`sni` None, names `http.*`) or a TLS (`https.*`) connection:
/// istiod serves a gateway's listeners on its Service's targetPorts, so every listener is tried.
fn gateway_route_config(config: &ProxyConfig, sni: Option<&str>, prefix: &str) -> Option<String> {
    listener_ports(config)
        .into_iter()
        .filter_map(|port| config.route_config_for(port, sni))
        .find(|name| name.starts_with(prefix))
}

/// A sidecar's outbound HTTP route configuration is named by port: 80 for `http://backend.apps.internal`.
fn sidecar_route_config(config: &ProxyConfig, request: &Request) -> Option<String> {
    let port = request.port.unwrap_or(match request.scheme {
        Some(Scheme::Https) => 443,
        _ => 80,
    });
    let name = port.to_string();
    config.route_configs.contains_key(&name).then_some(name)
}

fn https_binding(config: &ProxyConfig, request: &Request) -> HttpsBinding {
    let route_config = gateway_route_config(config, Some(&request.host), "https.");
    let found = route_config
        .as_deref()
        .and_then(|name| config.route_configs.get(name))
        .and_then(|rc| lookup(rc, &request.host, None, &request.path));
    // istiod gives an HTTPS server no VirtualService binds to a catch-all `*` virtual host without routes.
    let bound = found
        .as_ref()
        .is_some_and(|l| l.domains.iter().any(|d| d != "*"));
    HttpsBinding {
        route_config,
        virtual_host: found.map(|l| l.virtual_host),
        bound,
    }
}

/// `None` when Envoy's route is the programmed entry: from the VirtualService, same prefix, same Services and
/// weights.
fn not_in_envoy(
    expected: &Expected,
    route: Option<&RouteView>,
    route_config: Option<&str>,
    proxy: &str,
    fqdn: &str,
) -> Option<String> {
    let vs = format!("{}/{}", expected.namespace, expected.virtual_service);
    let entry = expected.entry;
    let wanted = format!(
        "VirtualService {vs} routes {fqdn} prefix {} to {}",
        entry.prefix,
        entry
            .destinations
            .iter()
            .map(|d| format!("{} {}", d.host, d.weight))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let Some(route) = route else {
        return Some(format!(
            "{wanted}, but {proxy} has no route for this request{}: istiod has not pushed it yet, or does not \
             bind the VirtualService to this proxy (the Gateway's server hosts must allow namespace {}); \
             run again in a few seconds, then check istiod's log",
            route_config.map_or_else(
                || " (no route configuration for its listener)".to_owned(),
                |rc| format!(" in route configuration {rc}")
            ),
            expected.namespace
        ));
    };
    let mut want: Vec<(String, u32)> = entry
        .destinations
        .iter()
        .filter(|d| d.weight > 0)
        .map(|d| {
            (
                format!("{}.{}.svc.cluster.local", d.host, expected.namespace),
                u32::try_from(d.weight).unwrap_or_default(),
            )
        })
        .collect();
    let mut have: Vec<(String, u32)> = route
        .clusters
        .iter()
        .filter(|c| c.weight > 0)
        .map(|c| {
            let host = IstioClusterName::parse(&c.name).map_or_else(|| c.name.clone(), |n| n.host);
            (host, c.weight)
        })
        .collect();
    want.sort();
    have.sort();
    let same_prefix = route.route_match.path == PathView::Prefix(entry.prefix.clone());
    if route.virtual_service.as_deref() == Some(vs.as_str()) && same_prefix && want == have {
        return None;
    }
    Some(format!(
        "{wanted}, but {proxy} uses route {} of {} ({} → {}): istiod has not pushed the current VirtualService \
         yet; run again in a few seconds, then check istiod's log",
        match_text(&route.route_match),
        route.virtual_service.as_deref().map_or_else(
            || "no VirtualService".to_owned(),
            |v| format!("VirtualService {v}")
        ),
        route.route_config,
        have.iter()
            .map(|(h, w)| format!("{h} {w}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn cluster_missing(clusters: &[EnvoyCluster], proxy: &str, fqdn: &str) -> Vec<Problem> {
    let real: Vec<&EnvoyCluster> = clusters
        .iter()
        .filter(|c| c.weight > 0)
        .filter(|c| {
            IstioClusterName::parse(&c.name)
                .is_none_or(|n| n.host.split('.').next() != Some(PLACEHOLDER_HOST))
        })
        .collect();
    let all_missing = !real.is_empty() && real.iter().all(|c| !c.exists);
    real.iter()
        .filter(|c| !c.exists)
        .map(|c| {
            let fix = match IstioClusterName::parse(&c.name) {
                Some(n) => {
                    let mut parts = n.host.split('.');
                    let (name, ns) = (
                        parts.next().unwrap_or_default(),
                        parts.next().unwrap_or_default(),
                    );
                    format!(
                        "Service {ns}/{name} does not exist or has no port {} (a VirtualService destination \
                         without a port, as the Go routecontroller wrote for internal routes, takes the \
                         client's port): let cfnet rewrite the VirtualService, or fix the Service",
                        n.port
                    )
                }
                None => "check the VirtualService's destination".to_owned(),
            };
            Problem {
                code: Code::ClusterMissing,
                message: format!(
                    "{proxy} sends {}% of requests for {fqdn} to cluster {}, which it does not have: they \
                     get 503; {fix}",
                    c.weight, c.name
                ),
                blocking: all_missing,
            }
        })
        .collect()
}
