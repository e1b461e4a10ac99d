//! What `cfnet explain` reports, in the order it is printed. The JSON names `url`, `fqdn`, `routes`
//! (`namespace`, `name`, `url`, `ready`, `reason`), `matched`, `virtual_service`, `destinations` (`service`,
//! `weight`, `port`, `endpoints`), `envoy` (`route_config`, `domains`, `clusters`: `name`, `weight`, `exists`,
//! `endpoints`) and `problems` (`code`, `message`) are read by checks outside the repository: keep them.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::request::Scheme;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub url: String,
    pub scheme: Option<Scheme>,
    pub fqdn: String,
    /// `:path` as Envoy matches it (path and query).
    pub path: String,
    /// Served on the `mesh` gateway (sidecars) instead of the ingress gateway.
    pub internal: bool,
    /// Every Route that claims the FQDN, any namespace: namespace, then url as the VirtualService orders them.
    pub routes: Vec<RouteRow>,
    /// `namespace/name` of the FQDN's VirtualService.
    pub virtual_service: Option<String>,
    /// Its http entries in order, with the one the request takes.
    pub entries: Vec<EntryRow>,
    /// The Route behind the entry the request matches.
    pub matched: Option<RouteRef>,
    /// The Route Cloud Foundry would pick: the longest path that is a prefix (by segments) of the request's.
    pub cf_route: Option<RouteRef>,
    /// The matched Route's destinations.
    pub destinations: Vec<DestinationRow>,
    /// What the gateway (or, for an internal FQDN, a sidecar) has; `None` without istiod.
    pub envoy: Option<EnvoyReport>,
    /// Why the request takes another Route than one might expect, when it still reaches an app: Istio's
    /// prefixes are case-sensitive and not segment-aware, unlike gorouter's lookup.
    pub notes: Vec<String>,
    pub problems: Vec<Problem>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RouteRef {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for RouteRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteRow {
    pub namespace: String,
    pub name: String,
    pub url: String,
    /// Ready=True; false also when the Route has no Ready condition yet.
    pub ready: bool,
    pub reason: Option<String>,
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntryRow {
    /// The Envoy prefix: the entry's `match[0].uri.prefix`, `/` without a match.
    pub prefix: String,
    pub route: Option<RouteRef>,
    pub destinations: Vec<EntryDestination>,
    /// The request's path starts with `prefix`.
    pub matches: bool,
    /// The earlier entry whose prefix takes every request this one would (it can never match).
    pub shadowed_by: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntryDestination {
    /// The destination host as written (`s-<guid>`, or the placeholder `no-destinations`).
    pub host: String,
    pub weight: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DestinationRow {
    /// `s-<destination guid>`.
    pub service: String,
    pub weight: i32,
    /// The destination's port (the Service's).
    pub port: i64,
    pub app: String,
    pub selector: BTreeMap<String, String>,
    /// The Service exists.
    pub exists: bool,
    /// Ready endpoints in its EndpointSlices.
    pub endpoints: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EnvoyReport {
    /// `gateway:NS:LABELS` or `sidecar:NS`, as `cfnet proxy-config --proxy` reads it.
    pub proxy: String,
    /// The route configuration the request's listener uses; `None` when the proxy has none for it.
    pub route_config: Option<String>,
    pub virtual_host: Option<String>,
    pub domains: Vec<String>,
    /// The Envoy route's match (`prefix /api`), `None` when no route takes the path.
    #[serde(rename = "match")]
    pub route_match: Option<String>,
    /// `namespace/name` of the VirtualService istiod built the route from.
    pub from_virtual_service: Option<String>,
    pub clusters: Vec<EnvoyCluster>,
    /// The gateway's HTTPS route configuration and virtual host for the host; `None` for a sidecar.
    pub https: Option<HttpsBinding>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EnvoyCluster {
    pub name: String,
    pub weight: u32,
    /// CDS has the cluster.
    pub exists: bool,
    /// Endpoints EDS gives it that Envoy would send to (healthy or unknown health).
    pub endpoints: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HttpsBinding {
    pub route_config: Option<String>,
    pub virtual_host: Option<String>,
    /// A virtual host of the VirtualService takes the host on HTTPS.
    pub bound: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    UnknownRoute,
    RouteNotReady,
    NoDestinations,
    NoEndpoints,
    Shadowed,
    NotInEnvoy,
    ClusterMissing,
    HttpsNotBound,
    XdsUnavailable,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::UnknownRoute => "unknown_route",
            Code::RouteNotReady => "route_not_ready",
            Code::NoDestinations => "no_destinations",
            Code::NoEndpoints => "no_endpoints",
            Code::Shadowed => "shadowed",
            Code::NotInEnvoy => "not_in_envoy",
            Code::ClusterMissing => "cluster_missing",
            Code::HttpsNotBound => "https_not_bound",
            Code::XdsUnavailable => "xds_unavailable",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub code: Code,
    /// What is wrong and what to do, one line.
    pub message: String,
    /// It stops this request from reaching the app it is meant for (exit status 1).
    pub blocking: bool,
}

impl Report {
    /// 0: the request reaches an app; 1: a problem stops it.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.problems.iter().any(|p| p.blocking))
    }

    pub fn has(&self, code: Code) -> bool {
        self.problems.iter().any(|p| p.code == code)
    }
}
