//! Which virtual host and route Envoy picks for a request (host, optional port, path), with Envoy's rules
//! (`source/common/router/config_impl.cc`, `RouteMatcher::findVirtualHost` and the route entries' `matches`):
//!
//! - the Host value is lower-cased and, with a port, is `host:port`; `ignore_port_in_host_matching` drops the port;
//! - a virtual host is found by exact domain, else the longest suffix wildcard (`*.example.com`, `*-api.example.com`),
//!   else the longest prefix wildcard (`example.com:*`), else the `*` virtual host; a wildcard matches at least one
//!   character;
//! - the routes of the virtual host are tried in order and the first that matches is used;
//! - `prefix` is compared with the whole `:path` (query included), `path`, `path_separated_prefix` and
//!   `safe_regex` with the path without query and fragment; `case_sensitive: false` compares ASCII case-
//!   insensitively (it does not apply to regexes); `safe_regex` must match the whole path.
//!
//! The request is taken as a plain one: a route with header, query parameter or other conditions does not
//! match it. Envoy's path normalization (done by the HTTP connection manager before routing) is not applied:
//! pass a normalized path.

use envoy_types::pb::envoy::config::listener::v3::FilterChain;
use envoy_types::pb::envoy::config::route::v3::{
    RouteConfiguration, RouteMatch, VirtualHost, route_match,
};
use serde::Serialize;

use crate::config::{ProxyConfig, http_connection_manager};
use crate::view::listener::address_string;
use crate::view::route::{RouteView, route_view};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;

/// The virtual host of one route configuration that takes a request, and the route it uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lookup {
    pub route_config: String,
    pub virtual_host: String,
    pub domains: Vec<String>,
    /// The route Envoy uses: the first that matches. `None`: the virtual host answers 404.
    pub route: Option<RouteView>,
    /// The route's position in the virtual host.
    pub route_index: Option<usize>,
    /// Later routes of the virtual host that match the request too (shadowed for it by `route`).
    pub also_matching: Vec<RouteView>,
}

/// The virtual host of `rc` that Envoy picks for `host` (and `port`, when the request's Host has one).
pub fn find_virtual_host<'a>(
    rc: &'a RouteConfiguration,
    host: &str,
    port: Option<u16>,
) -> Option<&'a VirtualHost> {
    let mut value = host.to_ascii_lowercase();
    if let Some(port) = port.filter(|_| !rc.ignore_port_in_host_matching) {
        value = format!("{value}:{port}");
    }
    let mut suffix: Option<(usize, &VirtualHost)> = None;
    let mut prefix: Option<(usize, &VirtualHost)> = None;
    let mut default: Option<&VirtualHost> = None;
    for vh in &rc.virtual_hosts {
        for domain in &vh.domains {
            let domain = domain.to_ascii_lowercase();
            if domain == "*" {
                default = default.or(Some(vh));
            } else if let Some(s) = domain.strip_prefix('*') {
                if value.len() > s.len()
                    && value.ends_with(s)
                    && suffix.is_none_or(|(len, _)| s.len() > len)
                {
                    suffix = Some((s.len(), vh));
                }
            } else if let Some(p) = domain.strip_suffix('*') {
                if value.len() > p.len()
                    && value.starts_with(p)
                    && prefix.is_none_or(|(len, _)| p.len() > len)
                {
                    prefix = Some((p.len(), vh));
                }
            } else if domain == value {
                return Some(vh);
            }
        }
    }
    suffix.or(prefix).map(|(_, vh)| vh).or(default)
}

/// Whether a route's match takes a plain request for `path` (`:path`, query included).
pub fn route_matches(m: &RouteMatch, path: &str) -> bool {
    let conditional = !m.headers.is_empty()
        || !m.query_parameters.is_empty()
        || !m.cookies.is_empty()
        || m.runtime_fraction.is_some()
        || m.grpc.is_some()
        || m.tls_context.is_some()
        || !m.dynamic_metadata.is_empty()
        || !m.filter_state.is_empty();
    if conditional {
        return false;
    }
    let case_sensitive = m.case_sensitive.as_ref().is_none_or(|b| b.value);
    let bare = path.split(['?', '#']).next().unwrap_or_default();
    match &m.path_specifier {
        Some(route_match::PathSpecifier::Prefix(p)) => starts_with(path, p, case_sensitive),
        Some(route_match::PathSpecifier::Path(p)) => {
            bare.len() == p.len() && starts_with(bare, p, case_sensitive)
        }
        Some(route_match::PathSpecifier::PathSeparatedPrefix(p)) => {
            starts_with(bare, p, case_sensitive)
                && matches!(bare.as_bytes().get(p.len()), None | Some(b'/'))
        }
        Some(route_match::PathSpecifier::SafeRegex(r)) => {
            regex::Regex::new(&format!("^(?:{})$", r.regex))
                .map(|re| re.is_match(bare))
                .unwrap_or(false)
        }
        Some(
            route_match::PathSpecifier::PathMatchPolicy(_)
            | route_match::PathSpecifier::ConnectMatcher(_),
        )
        | None => false,
    }
}

fn starts_with(s: &str, prefix: &str, case_sensitive: bool) -> bool {
    let (s, p) = (s.as_bytes(), prefix.as_bytes());
    s.len() >= p.len()
        && if case_sensitive {
            &s[..p.len()] == p
        } else {
            s[..p.len()].eq_ignore_ascii_case(p)
        }
}

/// The virtual host and route of `rc` for a request; `None` when no virtual host takes the host.
pub fn lookup(
    rc: &RouteConfiguration,
    host: &str,
    port: Option<u16>,
    path: &str,
) -> Option<Lookup> {
    let vh = find_virtual_host(rc, host, port)?;
    let mut matching = vh
        .routes
        .iter()
        .enumerate()
        .filter(|(_, r)| r.r#match.as_ref().is_some_and(|m| route_matches(m, path)))
        .map(|(i, r)| (i, route_view(&rc.name, vh, r)));
    let first = matching.next();
    Some(Lookup {
        route_config: rc.name.clone(),
        virtual_host: vh.name.clone(),
        domains: vh.domains.clone(),
        route_index: first.as_ref().map(|(i, _)| *i),
        route: first.map(|(_, r)| r),
        also_matching: matching.map(|(_, r)| r).collect(),
    })
}

impl ProxyConfig {
    /// The lookup in every route configuration that has a virtual host for `host`, by route configuration name.
    pub fn lookup(&self, host: &str, port: Option<u16>, path: &str) -> Vec<Lookup> {
        self.route_configs
            .values()
            .filter_map(|rc| lookup(rc, host, port, path))
            .collect()
    }

    /// The route configuration (RDS name) that handles a connection to listener port `port` with TLS server
    /// name `sni` (`None` for plain HTTP): the listener on that port, its filter chain for the SNI (exact name,
    /// else the longest matching `*.` wildcard, else a chain without server names), that chain's RDS name.
    pub fn route_config_for(&self, port: u32, sni: Option<&str>) -> Option<String> {
        let suffix = format!(":{port}");
        let listener = self.listeners.values().find(|l| {
            l.address
                .as_ref()
                .is_some_and(|a| address_string(a).ends_with(&suffix))
        })?;
        let chains: Vec<&FilterChain> = listener
            .filter_chains
            .iter()
            .filter(|c| {
                c.filter_chain_match
                    .as_ref()
                    .and_then(|m| m.destination_port.as_ref())
                    .is_none_or(|p| p.value == port)
            })
            .collect();
        let names = |c: &FilterChain| -> Vec<String> {
            c.filter_chain_match
                .as_ref()
                .map(|m| {
                    m.server_names
                        .iter()
                        .map(|s| s.to_ascii_lowercase())
                        .collect()
                })
                .unwrap_or_default()
        };
        let chain = sni
            .map(str::to_ascii_lowercase)
            .and_then(|sni| {
                let exact = chains.iter().find(|c| names(c).contains(&sni));
                // Envoy tries `*.` + each shorter parent domain of the SNI, longest first.
                let wildcard = || {
                    sni.match_indices('.').find_map(|(i, _)| {
                        let w = format!("*{}", &sni[i..]);
                        chains.iter().find(|c| names(c).contains(&w))
                    })
                };
                exact.or_else(wildcard).copied()
            })
            .or_else(|| chains.iter().find(|c| names(c).is_empty()).copied())
            .or_else(|| listener.default_filter_chain.as_ref())?;
        match http_connection_manager(chain)?.route_specifier? {
            RouteSpecifier::Rds(rds) => Some(rds.route_config_name),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use envoy_types::pb::envoy::config::route::v3::HeaderMatcher;
    use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatcher;
    use route_match::PathSpecifier as P;
    use std::sync::Arc;

    fn rc_with_domains(vhosts: &[(&str, &[&str])]) -> RouteConfiguration {
        let vhs: Vec<VirtualHost> = vhosts.iter().map(|(n, d)| vhost(n, d, &[])).collect();
        route_config("rc", &vhs)
    }

    #[test]
    fn virtual_host_selection_table() {
        let rc = rc_with_domains(&[
            (
                "exact",
                &["shop.apps.example.com", "shop.apps.example.com:*"],
            ),
            ("suffix", &["*.apps.example.com"]),
            ("longer-suffix", &["*.eu.apps.example.com"]),
            ("dash-suffix", &["*-api.example.com"]),
            ("prefix", &["static.*"]),
            ("with-port", &["ported.example.com:8443"]),
            ("default", &["*"]),
        ]);
        let cases: &[(&str, Option<u16>, &str)] = &[
            ("shop.apps.example.com", None, "exact"),
            ("SHOP.Apps.Example.COM", None, "exact"),
            // `host:*` is a prefix wildcard, so a Host with a port finds the exact virtual host's second domain.
            ("shop.apps.example.com", Some(443), "exact"),
            ("a.apps.example.com", None, "suffix"),
            ("a.eu.apps.example.com", None, "longer-suffix"),
            ("pay-api.example.com", None, "dash-suffix"),
            // The wildcard needs at least one character: `-api.example.com` is not `*-api.example.com`.
            ("-api.example.com", None, "default"),
            ("apps.example.com", None, "default"),
            ("static.example.org", None, "prefix"),
            ("ported.example.com", Some(8443), "with-port"),
            ("ported.example.com", None, "default"),
            ("ported.example.com", Some(80), "default"),
            ("a.apps.example.com", Some(80), "default"),
        ];
        for (host, port, want) in cases {
            let got = find_virtual_host(&rc, host, *port).map(|vh| vh.name.as_str());
            assert_eq!(got, Some(*want), "{host} {port:?}");
        }
        let no_default = rc_with_domains(&[("exact", &["a.example.com"])]);
        assert!(find_virtual_host(&no_default, "b.example.com", None).is_none());
    }

    #[test]
    fn exact_domain_beats_a_wildcard_listed_first() {
        let rc = rc_with_domains(&[("wild", &["*.example.com"]), ("exact", &["a.example.com"])]);
        assert_eq!(
            find_virtual_host(&rc, "a.example.com", None).unwrap().name,
            "exact"
        );
    }

    #[test]
    fn ignore_port_in_host_matching() {
        let mut rc = rc_with_domains(&[("exact", &["a.example.com"])]);
        assert!(find_virtual_host(&rc, "a.example.com", Some(8080)).is_none());
        rc.ignore_port_in_host_matching = true;
        assert_eq!(
            find_virtual_host(&rc, "a.example.com", Some(8080))
                .unwrap()
                .name,
            "exact"
        );
    }

    fn regex(r: &str) -> P {
        P::SafeRegex(RegexMatcher {
            regex: r.into(),
            ..RegexMatcher::default()
        })
    }

    fn exact(p: &str) -> P {
        P::Path(p.into())
    }

    fn segments(p: &str) -> P {
        P::PathSeparatedPrefix(p.into())
    }

    /// Rows of (match, request path, matches?).
    fn path_match_cases() -> Vec<(RouteMatch, &'static str, bool)> {
        let insensitive = Some(false);
        vec![
            (prefix("/"), "/anything", true),
            (prefix("/api"), "/api", true),
            (prefix("/api"), "/apiv2", true),
            (prefix("/api"), "/API", false),
            (
                path_match(P::Prefix("/api".into()), insensitive),
                "/API/x",
                true,
            ),
            (prefix("/api"), "/ap", false),
            (prefix("/api?x"), "/api?x=1", true),
            (path_match(exact("/exact"), None), "/exact", true),
            (path_match(exact("/exact"), None), "/exact?q=1", true),
            (path_match(exact("/exact"), None), "/exact/", false),
            (path_match(exact("/exact"), insensitive), "/EXACT", true),
            (path_match(segments("/api"), None), "/api", true),
            (path_match(segments("/api"), None), "/api/v1", true),
            (path_match(segments("/api"), None), "/api?x", true),
            (path_match(segments("/api"), None), "/apiv2", false),
            (path_match(segments("/api"), insensitive), "/API/v1", true),
            (path_match(regex("/v[0-9]+/.*"), None), "/v2/items", true),
            (path_match(regex("/v[0-9]+"), None), "/v2/items", false),
            (path_match(regex("/v[0-9]+"), None), "/v2?x=1", true),
            (path_match(regex("(unclosed"), None), "/x", false),
            (
                RouteMatch {
                    headers: vec![HeaderMatcher {
                        name: "x-canary".into(),
                        ..HeaderMatcher::default()
                    }],
                    ..prefix("/")
                },
                "/",
                false,
            ),
        ]
    }

    #[test]
    fn path_match_table() {
        for (m, path, want) in path_match_cases() {
            assert_eq!(
                route_matches(&m, path),
                want,
                "{:?} {path}",
                m.path_specifier
            );
        }
    }

    #[test]
    fn first_matching_route_wins_and_later_matches_are_reported() {
        let rc = route_config(
            "http.8080",
            &[vhost(
                "shop",
                &["shop.example.com"],
                &[
                    to_cluster(prefix("/api/v2"), "v2", &[]),
                    to_cluster(prefix("/api"), "api", &[]),
                    to_cluster(prefix("/"), "root", &[]),
                ],
            )],
        );
        let hit = lookup(&rc, "shop.example.com", None, "/api/v2/x").unwrap();
        assert_eq!(hit.route_index, Some(0));
        assert_eq!(hit.route.as_ref().unwrap().clusters[0].name, "v2");
        assert_eq!(
            hit.also_matching
                .iter()
                .map(|r| r.clusters[0].name.as_str())
                .collect::<Vec<_>>(),
            ["api", "root"]
        );
        let hit = lookup(&rc, "shop.example.com", None, "/other").unwrap();
        assert_eq!((hit.route_index, hit.also_matching.len()), (Some(2), 0));
        assert!(lookup(&rc, "other.example.com", None, "/").is_none());
        let no_route = route_config(
            "x",
            &[vhost(
                "v",
                &["v.example.com"],
                &[to_cluster(prefix("/only"), "c", &[])],
            )],
        );
        let hit = lookup(&no_route, "v.example.com", None, "/").unwrap();
        assert!(hit.route.is_none() && hit.route_index.is_none());
    }

    #[test]
    fn route_config_for_port_and_sni() {
        let http = hcm_listener("0.0.0.0_8080", 8080, &["http.8080"]);
        let https = sni_listener(
            "0.0.0.0_8443",
            8443,
            &[
                (&["*.apps.example.com"], "https.443.apps"),
                (&["*.eu.apps.example.com"], "https.443.eu"),
                (&["login.sys.example.com"], "https.443.login"),
            ],
        );
        let config = ProxyConfig {
            listeners: [http, https]
                .into_iter()
                .map(|l| (l.name.clone(), Arc::new(l)))
                .collect(),
            ..ProxyConfig::default()
        };
        let cases: &[(u32, Option<&str>, Option<&str>)] = &[
            (8080, None, Some("http.8080")),
            (8080, Some("anything"), Some("http.8080")),
            (8443, Some("shop.apps.example.com"), Some("https.443.apps")),
            (8443, Some("a.b.apps.example.com"), Some("https.443.apps")),
            (8443, Some("shop.eu.apps.example.com"), Some("https.443.eu")),
            (8443, Some("LOGIN.sys.example.com"), Some("https.443.login")),
            (8443, Some("other.example.com"), None),
            (8443, None, None),
            (9999, None, None),
        ];
        for (port, sni, want) in cases {
            assert_eq!(
                config.route_config_for(*port, *sni).as_deref(),
                *want,
                "{port} {sni:?}"
            );
        }
    }
}
