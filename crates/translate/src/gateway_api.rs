//! The gateway-api output: the programmed routes of one (namespace, FQDN) as Gateway API `v1` HTTPRoutes
//! attached to the CF Gateway, and the rules of the Gateway API CRD (`sigs.k8s.io/gateway-api` v1.6.3,
//! testdata/gateway-api-crds.yaml) for the fields cfnet writes. docs/gateway-api.md explains the mapping.
//!
//! - One rule per programmed route with destinations, in url order: a `PathPrefix` match on the route's
//!   path (`/` for none), one `backendRef` per destination (`s-<guid>`, its port, its weight) carrying the
//!   four CF headers in a per-backend `RequestHeaderModifier`.
//! - A route without destinations gets no rule: the gateway answers 404, as gorouter does for a route with
//!   no app mapped. An FQDN none of whose routes has destinations gets no HTTPRoute.
//! - At most [`MAX_RULES`] rules per HTTPRoute: more are spread over shards ([`shards`]).
//! - Internal routes and routes with more than [`MAX_BACKENDS`] destinations are not written
//!   ([`unsupported`]).
//! - Every field the CRD defaults is written explicitly, so that the stored object is the applied one and a
//!   comparison of the two finds no drift.

use cfnet_api::Route;
use cfnet_api::gateway_api::{
    GATEWAY_API_GROUP, HTTPBackendRef, HTTPHeader, HTTPHeaderFilter, HTTPPathMatch, HTTPRoute,
    HTTPRouteFilter, HTTPRouteMatch, HTTPRouteRule, HTTPRouteSpec, PATH_PREFIX, ParentReference,
    REQUEST_HEADER_MODIFIER,
};
use sha2::{Digest, Sha256};

use crate::labels::is_dns1123_label;
use crate::objects::{cf_headers, destination_weights, fqdn_child_metadata};
use crate::{FqdnKey, http_route_name, service_name};

mod validate;
pub use validate::{path_prefix_problem, validate_http_route};

/// Gateway API's limit of rules per HTTPRoute (`maxItems` of `spec.rules`).
pub const MAX_RULES: usize = 16;
/// Gateway API's limit of backendRefs per rule.
pub const MAX_BACKENDS: usize = 16;
/// Bits of a path's hash a shard name may use; beyond, a shard is cut into chunks (see [`shards`]).
const MAX_SHARD_BITS: usize = 64;

/// The Gateway the HTTPRoutes attach to (`parentRefs`): a `gateway.networking.k8s.io/v1` Gateway, in its
/// own namespace (the CF system namespace), with listeners that admit routes from the workload namespaces.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GatewayRef {
    pub namespace: String,
    pub name: String,
}

impl Default for GatewayRef {
    /// `cf-system/cf-gateway`.
    fn default() -> Self {
        GatewayRef {
            namespace: "cf-system".to_owned(),
            name: "cf-gateway".to_owned(),
        }
    }
}

impl GatewayRef {
    /// Parses `namespace/name`; `Err` says what is wrong, for a configuration error message.
    pub fn parse(text: &str) -> Result<GatewayRef, String> {
        let Some((namespace, name)) = text.split_once('/') else {
            return Err(format!(
                "{text:?} must be namespace/name of a Gateway, e.g. cf-system/cf-gateway"
            ));
        };
        if !is_dns1123_label(namespace) {
            return Err(format!(
                "namespace {namespace:?} of Gateway {text:?} must be a DNS label (lower-case letters, \
                 digits and '-', at most 63 characters)"
            ));
        }
        if name.is_empty() || name.len() > 253 || name.contains('/') {
            return Err(format!(
                "name {name:?} of Gateway {text:?} must be 1 to 253 characters without '/'"
            ));
        }
        Ok(GatewayRef {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl std::fmt::Display for GatewayRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The HTTPRoutes of one FQDN, ordered by name (the base name first). `all` are every route of the FQDN
/// (the owners) and `valid` the programmed ones, both sorted by url descending; `valid` routes are external.
pub(crate) fn http_routes(
    key: &FqdnKey,
    all: &[&Route],
    valid: &[&Route],
    parent: &GatewayRef,
) -> Vec<HTTPRoute> {
    let rules: Vec<(&str, HTTPRouteRule)> = valid
        .iter()
        .filter(|r| !r.spec.destinations.is_empty())
        .map(|r| (match_key(r.spec.path()), rule(r)))
        .collect();
    if rules.is_empty() {
        return Vec::new();
    }
    let base = http_route_name(&key.fqdn);
    let metadata = |name: String| fqdn_child_metadata(key, name, all);
    // `*` alone is no Gateway API host name; no `hostnames` means every host the listener accepts, which
    // is what Envoy's `*` virtual host is for the VirtualService.
    let hostnames = if &*key.fqdn == "*" {
        Vec::new()
    } else {
        vec![key.fqdn.to_string()]
    };
    let keys: Vec<&str> = rules.iter().map(|(k, _)| *k).collect();
    let mut rules: Vec<Option<HTTPRouteRule>> = rules.into_iter().map(|(_, r)| Some(r)).collect();
    let mut out: Vec<HTTPRoute> = shards(&keys)
        .into_iter()
        .map(|(suffix, members)| {
            let name = if suffix.is_empty() {
                base.clone()
            } else {
                format!("{base}-{suffix}")
            };
            let spec = HTTPRouteSpec {
                parent_refs: vec![ParentReference {
                    group: Some(GATEWAY_API_GROUP.to_owned()),
                    kind: Some("Gateway".to_owned()),
                    namespace: Some(parent.namespace.clone()),
                    name: parent.name.clone(),
                    section_name: None,
                    port: None,
                }],
                hostnames: hostnames.clone(),
                rules: members.iter().filter_map(|&i| rules[i].take()).collect(),
            };
            let mut route = HTTPRoute::new(&name, spec);
            route.metadata = metadata(name);
            route
        })
        .collect();
    out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    out
}

/// Why Gateway API cannot express a route that passed every check, as the message of its problem
/// ([`crate::Reason::Unsupported`]); `None` when it can.
///
/// - An internal (mesh) route: Gateway API's mesh support (GAMMA) attaches an HTTPRoute to a Service, so
///   each internal host would need a Service (and DNS) of its own.
/// - More than 16 destinations: a rule has at most 16 backendRefs, and the API server would refuse the
///   HTTPRoute, with the route's siblings in it.
pub fn unsupported(route: &Route) -> Option<String> {
    if route.spec.domain.internal {
        return Some(format!(
            "internal routes need --routing-api istio: domain {} is internal (mesh), and the gateway-api \
             mode programs only routes of the Gateway; map the app to an external domain, or run cfnet \
             with --routing-api istio",
            route.spec.domain.name
        ));
    }
    let n = route.spec.destinations.len();
    if n > MAX_BACKENDS {
        return Some(format!(
            "{n} destinations: a Gateway API rule has at most {MAX_BACKENDS} backends; map at most \
             {MAX_BACKENDS} apps to this route, or run cfnet with --routing-api istio"
        ));
    }
    None
}

/// The rule of one route with destinations.
fn rule(route: &Route) -> HTTPRouteRule {
    let path = route.spec.path();
    let weights = destination_weights(route);
    HTTPRouteRule {
        // The root is written as the CRD would default it (PathPrefix `/`), so that what is stored is what
        // was applied.
        matches: vec![HTTPRouteMatch {
            path: Some(HTTPPathMatch {
                type_: Some(PATH_PREFIX.to_owned()),
                value: Some(if path.is_empty() { "/" } else { path }.to_owned()),
            }),
        }],
        backend_refs: route
            .spec
            .destinations
            .iter()
            .zip(weights)
            .map(|(d, weight)| {
                // The CRD refuses an empty header value. An empty CF header (a Route without the space or
                // org label) is removed instead, so that a client cannot send its own.
                let (set, remove): (Vec<_>, Vec<_>) = cf_headers(route, d)
                    .into_iter()
                    .partition(|(_, value)| !value.is_empty());
                HTTPBackendRef {
                    group: Some(String::new()),
                    kind: Some("Service".to_owned()),
                    name: service_name(&d.guid),
                    namespace: None,
                    // Validated to be 1–65535.
                    port: Some(i32::try_from(d.port).unwrap_or_default()),
                    // Written also when 0: the CRD defaults an absent weight to 1.
                    weight: Some(weight),
                    filters: vec![HTTPRouteFilter {
                        type_: REQUEST_HEADER_MODIFIER.to_owned(),
                        request_header_modifier: Some(HTTPHeaderFilter {
                            set: set
                                .into_iter()
                                .map(|(name, value)| HTTPHeader {
                                    name: name.to_owned(),
                                    value,
                                })
                                .collect(),
                            remove: remove.into_iter().map(|(n, _)| n.to_owned()).collect(),
                        }),
                    }],
                }
            })
            .collect(),
    }
}

/// The match a path takes in Gateway API and in Cloud Foundry: a trailing `/` is ignored (PathPrefix:
/// "When specified, a trailing `/` is ignored"; gorouter trims it from its route keys), and no path is
/// `/`. Two routes of an FQDN with one match key conflict (check 5 of [`crate::translate_fqdn`]).
pub fn match_key(path: &str) -> &str {
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if trimmed.is_empty() { "/" } else { trimmed }
}

/// Spreads rules, given by their (distinct) match keys, over HTTPRoutes of at most [`MAX_RULES`] rules:
/// returns (name suffix, indices into `keys` in their order) per shard, in no particular order.
///
/// The partition is a binary trie on SHA-256 of the match key: a set of at most 16 rules is one shard;
/// a larger one is split by the next bit of the hash, and each half is partitioned the same way. The
/// suffix is the shard's bit string; the shard of all-zero bits (the only one while the FQDN has at most
/// 16 rules) has the empty suffix and keeps the base name. It is a function of the set of paths alone, and
/// adding or removing a route touches only the shard it falls in, which may split (or merge with its
/// neighbours): at most 16 other rules move, where chunks in url order would shift every rule after it.
///
/// Which HTTPRoute holds a rule does not change where a request goes: Gateway API orders the matches of
/// all HTTPRoutes of a host together (longest PathPrefix first), and no two rules of an FQDN have one
/// match key after check 5.
///
/// Distinct keys have distinct hashes, so the trie ends; more than 16 keys sharing the first 64 bits of
/// their hashes (never seen, and beyond brute force) are cut into chunks of 16 in order, suffixed `-<i>`.
pub(crate) fn shards(keys: &[&str]) -> Vec<(String, Vec<usize>)> {
    let hashes: Vec<[u8; 32]> = keys
        .iter()
        .map(|k| Sha256::digest(k.as_bytes()).into())
        .collect();
    let mut out = Vec::new();
    let all: Vec<usize> = (0..keys.len()).collect();
    split(&hashes, all, String::new(), &mut out);
    out
}

fn split(
    hashes: &[[u8; 32]],
    members: Vec<usize>,
    bits: String,
    out: &mut Vec<(String, Vec<usize>)>,
) {
    let suffix = |bits: &str| {
        if bits.bytes().all(|b| b == b'0') {
            String::new()
        } else {
            bits.to_owned()
        }
    };
    if members.len() <= MAX_RULES {
        if !members.is_empty() {
            out.push((suffix(&bits), members));
        }
        return;
    }
    let depth = bits.len();
    if depth >= MAX_SHARD_BITS {
        for (i, chunk) in members.chunks(MAX_RULES).enumerate() {
            let name = if i == 0 {
                suffix(&bits)
            } else {
                format!("{bits}-{i}")
            };
            out.push((name, chunk.to_vec()));
        }
        return;
    }
    let bit = |i: usize| hashes[i][depth / 8] >> (7 - depth % 8) & 1;
    let (zeros, ones): (Vec<usize>, Vec<usize>) = members.into_iter().partition(|&i| bit(i) == 0);
    split(hashes, zeros, format!("{bits}0"), out);
    split(hashes, ones, format!("{bits}1"), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_keys_ignore_a_trailing_slash() {
        for (path, key) in [
            ("", "/"),
            ("/", "/"),
            ("/a", "/a"),
            ("/a/", "/a"),
            ("/a/b/", "/a/b"),
            ("/A", "/A"),
        ] {
            assert_eq!(match_key(path), key, "{path:?}");
        }
    }

    #[test]
    fn up_to_16_rules_are_one_shard_with_the_base_name() {
        let keys: Vec<String> = (0..16).map(|i| format!("/p{i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        assert_eq!(shards(&keys), vec![(String::new(), (0..16).collect())]);
        assert_eq!(shards(&[]), vec![]);
    }

    #[test]
    fn shards_hold_every_rule_once_and_at_most_16() {
        for n in [17, 33, 100, 500] {
            let keys: Vec<String> = (0..n).map(|i| format!("/p{i}")).collect();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let shards = shards(&keys);
            let mut seen: Vec<usize> = shards.iter().flat_map(|(_, m)| m.clone()).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>());
            assert!(
                shards
                    .iter()
                    .all(|(_, m)| !m.is_empty() && m.len() <= MAX_RULES)
            );
            let names: std::collections::HashSet<&str> =
                shards.iter().map(|(s, _)| s.as_str()).collect();
            assert_eq!(names.len(), shards.len(), "names are unique");
            assert!(names.contains(""), "one shard keeps the base name");
            // Members keep the order of the input.
            assert!(
                shards
                    .iter()
                    .all(|(_, m)| m.windows(2).all(|w| w[0] < w[1]))
            );
        }
    }

    #[test]
    fn adding_a_route_moves_at_most_one_shard_worth_of_rules() {
        let all: Vec<String> = (0..200).map(|i| format!("/p{i}")).collect();
        let shard_of = |keys: &[&str]| -> std::collections::BTreeMap<String, String> {
            shards(keys)
                .into_iter()
                .flat_map(|(s, m)| m.into_iter().map(move |i| (keys[i].to_owned(), s.clone())))
                .collect()
        };
        for n in 1..all.len() {
            let before: Vec<&str> = all[..n].iter().map(String::as_str).collect();
            let after: Vec<&str> = all[..=n].iter().map(String::as_str).collect();
            let (b, a) = (shard_of(&before), shard_of(&after));
            let moved = b.iter().filter(|(k, s)| a.get(*k) != Some(s)).count();
            assert!(moved <= MAX_RULES, "adding route {n} moved {moved} rules");
        }
    }

    #[test]
    fn gateway_refs_parse() {
        assert_eq!(
            GatewayRef::parse("cf-system/cf-gateway"),
            Ok(GatewayRef::default())
        );
        assert!(GatewayRef::parse("cf-gateway").is_err());
        assert!(GatewayRef::parse("CF/x").is_err());
        assert!(GatewayRef::parse("ns/").is_err());
        assert!(GatewayRef::parse("ns/a/b").is_err());
    }
}
