//! The Envoy configuration of one proxy, as istiod serves it: listeners, route configurations, clusters and
//! cluster load assignments by name, and which RDS and EDS names the listeners and clusters reference.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager::RouteSpecifier,
};
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

/// The four xDS resource types the client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    Listener,
    RouteConfiguration,
    Cluster,
    ClusterLoadAssignment,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 4] = [
        ResourceKind::Cluster,
        ResourceKind::ClusterLoadAssignment,
        ResourceKind::Listener,
        ResourceKind::RouteConfiguration,
    ];

    pub fn type_url(self) -> String {
        match self {
            ResourceKind::Listener => Listener::type_url(),
            ResourceKind::RouteConfiguration => RouteConfiguration::type_url(),
            ResourceKind::Cluster => Cluster::type_url(),
            ResourceKind::ClusterLoadAssignment => ClusterLoadAssignment::type_url(),
        }
    }

    pub fn from_type_url(url: &str) -> Option<Self> {
        ResourceKind::ALL.into_iter().find(|k| k.type_url() == url)
    }

    /// LDS and CDS are subscribed to as a whole ("wildcard"); every response holds all resources of the type.
    /// RDS and EDS are subscribed to by name, and a response may hold only some of them.
    pub fn is_wildcard(self) -> bool {
        matches!(self, ResourceKind::Listener | ResourceKind::Cluster)
    }

    /// The xDS service's short name, as in istiod's logs.
    pub fn short(self) -> &'static str {
        match self {
            ResourceKind::Listener => "LDS",
            ResourceKind::RouteConfiguration => "RDS",
            ResourceKind::Cluster => "CDS",
            ResourceKind::ClusterLoadAssignment => "EDS",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceKind::Listener => "listeners",
            ResourceKind::RouteConfiguration => "route configurations",
            ResourceKind::Cluster => "clusters",
            ResourceKind::ClusterLoadAssignment => "endpoints",
        })
    }
}

/// One proxy's Envoy configuration. Resources are shared (`Arc`), so a snapshot is cheap to clone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProxyConfig {
    pub listeners: BTreeMap<String, Arc<Listener>>,
    /// By route configuration name (the RDS names the listeners reference).
    pub route_configs: BTreeMap<String, Arc<RouteConfiguration>>,
    pub clusters: BTreeMap<String, Arc<Cluster>>,
    /// By EDS service name (`ClusterLoadAssignment.cluster_name`).
    pub endpoints: BTreeMap<String, Arc<ClusterLoadAssignment>>,
    /// The `version_info` of the last accepted response of each type.
    pub versions: BTreeMap<ResourceKind, String>,
}

/// A resource istiod sent that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct DecodeError {
    /// Which resource, e.g. `clusters resource #3`.
    pub what: String,
    pub reason: String,
}

/// The decoded resources of one response.
#[derive(Clone, Debug)]
pub(crate) enum Resources {
    Listeners(Vec<Listener>),
    RouteConfigs(Vec<RouteConfiguration>),
    Clusters(Vec<Cluster>),
    Endpoints(Vec<ClusterLoadAssignment>),
}

impl Resources {
    pub(crate) fn decode(kind: ResourceKind, anys: &[Any]) -> Result<Self, DecodeError> {
        Ok(match kind {
            ResourceKind::Listener => Resources::Listeners(decode_all(kind, anys)?),
            ResourceKind::RouteConfiguration => Resources::RouteConfigs(decode_all(kind, anys)?),
            ResourceKind::Cluster => Resources::Clusters(decode_all(kind, anys)?),
            ResourceKind::ClusterLoadAssignment => Resources::Endpoints(decode_all(kind, anys)?),
        })
    }

    pub(crate) fn names(&self) -> Vec<String> {
        match self {
            Resources::Listeners(v) => v.iter().map(|r| r.name.clone()).collect(),
            Resources::RouteConfigs(v) => v.iter().map(|r| r.name.clone()).collect(),
            Resources::Clusters(v) => v.iter().map(|r| r.name.clone()).collect(),
            Resources::Endpoints(v) => v.iter().map(|r| r.cluster_name.clone()).collect(),
        }
    }
}

fn decode_all<T: Message + Name + Default>(
    kind: ResourceKind,
    anys: &[Any],
) -> Result<Vec<T>, DecodeError> {
    anys.iter()
        .enumerate()
        .map(|(index, any)| {
            let err = |reason: String| DecodeError {
                what: format!("{kind} resource #{index}"),
                reason,
            };
            if any.type_url != T::type_url() {
                return Err(err(format!(
                    "type {} where {} was asked for",
                    any.type_url,
                    T::type_url()
                )));
            }
            T::decode(any.value.as_slice()).map_err(|e| err(e.to_string()))
        })
        .collect()
}

fn named<T>(items: Vec<T>, name: impl Fn(&T) -> &str) -> BTreeMap<String, Arc<T>> {
    items
        .into_iter()
        .map(|r| (name(&r).to_owned(), Arc::new(r)))
        .collect()
}

impl ProxyConfig {
    /// Applies one accepted response: LDS and CDS replace their type (state of the world); RDS and EDS add or
    /// replace the named resources, and resources no longer subscribed to are dropped by [`Self::retain`].
    pub(crate) fn apply(&mut self, resources: Resources, version: &str) {
        let kind = match resources {
            Resources::Listeners(v) => {
                self.listeners = named(v, |r| &r.name);
                ResourceKind::Listener
            }
            Resources::Clusters(v) => {
                self.clusters = named(v, |r| &r.name);
                ResourceKind::Cluster
            }
            Resources::RouteConfigs(v) => {
                self.route_configs.extend(named(v, |r| &r.name));
                ResourceKind::RouteConfiguration
            }
            Resources::Endpoints(v) => {
                self.endpoints.extend(named(v, |r| &r.cluster_name));
                ResourceKind::ClusterLoadAssignment
            }
        };
        self.versions.insert(kind, version.to_owned());
    }

    /// Drops the route configurations and load assignments no longer referenced.
    pub(crate) fn retain(
        &mut self,
        route_configs: &BTreeSet<String>,
        eds_names: &BTreeSet<String>,
    ) {
        self.route_configs
            .retain(|name, _| route_configs.contains(name));
        self.endpoints.retain(|name, _| eds_names.contains(name));
    }

    /// The RDS names the listeners' HTTP connection managers reference, in every filter chain.
    pub fn referenced_route_configs(&self) -> BTreeSet<String> {
        self.listeners
            .values()
            .flat_map(|l| listener_route_configs(l))
            .collect()
    }

    /// The EDS service names of the EDS clusters (`eds_cluster_config.service_name`, else the cluster name).
    pub fn referenced_eds_names(&self) -> BTreeSet<String> {
        self.clusters
            .values()
            .filter_map(|c| eds_service_name(c))
            .collect()
    }

    /// The load assignment of a cluster: EDS for EDS clusters, the inline one otherwise.
    pub fn load_assignment<'a>(
        &'a self,
        cluster: &'a Cluster,
    ) -> Option<&'a ClusterLoadAssignment> {
        match eds_service_name(cluster) {
            Some(name) => self.endpoints.get(&name).map(|c| c.as_ref()),
            None => cluster.load_assignment.as_ref(),
        }
    }

    /// What is still missing for a complete configuration: listeners or clusters never received, and RDS / EDS
    /// names referenced but not (yet) served.
    pub fn missing(&self) -> Vec<(ResourceKind, String)> {
        let mut out = Vec::new();
        for kind in [ResourceKind::Listener, ResourceKind::Cluster] {
            if !self.versions.contains_key(&kind) {
                out.push((kind, "(all)".to_owned()));
            }
        }
        for name in self.referenced_route_configs() {
            if !self.route_configs.contains_key(&name) {
                out.push((ResourceKind::RouteConfiguration, name));
            }
        }
        for name in self.referenced_eds_names() {
            if !self.endpoints.contains_key(&name) {
                out.push((ResourceKind::ClusterLoadAssignment, name));
            }
        }
        out
    }

    /// One `DiscoveryResponse` per resource type, as istiod sends them (resources in name order). With
    /// [`Self::from_responses`] this is the format of saved configurations (test fixtures).
    pub fn to_responses(&self) -> Vec<DiscoveryResponse> {
        fn any<T: Message + Name>(r: &T) -> Any {
            Any {
                type_url: T::type_url(),
                value: r.encode_to_vec(),
            }
        }
        let response = |kind: ResourceKind, resources: Vec<Any>| DiscoveryResponse {
            version_info: self.versions.get(&kind).cloned().unwrap_or_default(),
            resources,
            type_url: kind.type_url(),
            ..DiscoveryResponse::default()
        };
        vec![
            response(
                ResourceKind::Cluster,
                self.clusters.values().map(|r| any(r.as_ref())).collect(),
            ),
            response(
                ResourceKind::ClusterLoadAssignment,
                self.endpoints.values().map(|r| any(r.as_ref())).collect(),
            ),
            response(
                ResourceKind::Listener,
                self.listeners.values().map(|r| any(r.as_ref())).collect(),
            ),
            response(
                ResourceKind::RouteConfiguration,
                self.route_configs
                    .values()
                    .map(|r| any(r.as_ref()))
                    .collect(),
            ),
        ]
    }

    /// Reads responses (e.g. from [`Self::to_responses`]) into a configuration.
    pub fn from_responses<'a>(
        responses: impl IntoIterator<Item = &'a DiscoveryResponse>,
    ) -> Result<Self, DecodeError> {
        let mut config = ProxyConfig::default();
        for response in responses {
            let Some(kind) = ResourceKind::from_type_url(&response.type_url) else {
                continue;
            };
            config.apply(
                Resources::decode(kind, &response.resources)?,
                &response.version_info,
            );
        }
        Ok(config)
    }

    /// The saved form: the responses of [`Self::to_responses`], each length-delimited.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for response in self.to_responses() {
            // Writing into a Vec only fails when the buffer cannot grow, which `Vec` does by reallocating.
            let _ = response.encode_length_delimited(&mut out);
        }
        out
    }

    /// Reads the saved form of [`Self::encode`].
    pub fn decode(mut bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut responses = Vec::new();
        while !bytes.is_empty() {
            let response = DiscoveryResponse::decode_length_delimited(&mut bytes).map_err(|e| {
                DecodeError {
                    what: format!("saved response #{}", responses.len()),
                    reason: e.to_string(),
                }
            })?;
            responses.push(response);
        }
        ProxyConfig::from_responses(&responses)
    }
}

/// The RDS names one listener references.
pub fn listener_route_configs(listener: &Listener) -> BTreeSet<String> {
    listener
        .filter_chains
        .iter()
        .chain(listener.default_filter_chain.as_ref())
        .filter_map(|chain| match http_connection_manager(chain)? {
            HttpConnectionManager {
                route_specifier: Some(RouteSpecifier::Rds(rds)),
                ..
            } => Some(rds.route_config_name),
            _ => None,
        })
        .collect()
}

/// The HTTP connection manager of a filter chain, if it has one.
pub fn http_connection_manager(chain: &FilterChain) -> Option<HttpConnectionManager> {
    chain.filters.iter().find_map(|f| match &f.config_type {
        Some(filter::ConfigType::TypedConfig(any))
            if any.type_url == HttpConnectionManager::type_url() =>
        {
            HttpConnectionManager::decode(any.value.as_slice()).ok()
        }
        _ => None,
    })
}

/// The EDS service name of an EDS cluster; `None` for other cluster types.
pub fn eds_service_name(cluster: &Cluster) -> Option<String> {
    let is_eds = matches!(
        cluster.cluster_discovery_type,
        Some(cluster::ClusterDiscoveryType::Type(t)) if t == cluster::DiscoveryType::Eds as i32
    );
    if !is_eds {
        return None;
    }
    let service = cluster
        .eds_cluster_config
        .as_ref()
        .map(|c| c.service_name.as_str())
        .filter(|s| !s.is_empty());
    Some(service.unwrap_or(&cluster.name).to_owned())
}
