//! Builders of Envoy resources for unit tests.

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, HeaderValue, HeaderValueOption, SocketAddress, address, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener, filter,
};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost, WeightedCluster, route,
    route_action, route_match, weighted_cluster,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, Rds, http_connection_manager::RouteSpecifier,
};
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use envoy_types::pb::google::protobuf::{Any, BoolValue, UInt32Value};
use prost::{Message, Name};

use crate::config::ResourceKind;

pub trait Resource: Message + Name + Sized {}
impl Resource for Listener {}
impl Resource for RouteConfiguration {}
impl Resource for Cluster {}
impl Resource for ClusterLoadAssignment {}

pub fn any<T: Message + Name>(r: &T) -> Any {
    Any {
        type_url: T::type_url(),
        value: r.encode_to_vec(),
    }
}

pub fn response<T: Resource>(
    kind: ResourceKind,
    version: &str,
    nonce: &str,
    items: &[T],
) -> DiscoveryResponse {
    DiscoveryResponse {
        version_info: version.into(),
        resources: items.iter().map(any).collect(),
        type_url: kind.type_url(),
        nonce: nonce.into(),
        ..DiscoveryResponse::default()
    }
}

pub fn socket(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..SocketAddress::default()
        })),
    }
}

fn hcm_chain(rds: &str, server_names: &[&str]) -> FilterChain {
    let hcm = HttpConnectionManager {
        stat_prefix: "outbound".into(),
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            route_config_name: rds.into(),
            ..Rds::default()
        })),
        ..HttpConnectionManager::default()
    };
    FilterChain {
        filter_chain_match: (!server_names.is_empty()).then(|| FilterChainMatch {
            server_names: server_names.iter().map(|s| (*s).into()).collect(),
            ..FilterChainMatch::default()
        }),
        filters: vec![Filter {
            name: "envoy.filters.network.http_connection_manager".into(),
            config_type: Some(filter::ConfigType::TypedConfig(any(&hcm))),
        }],
        ..FilterChain::default()
    }
}

/// A listener on 0.0.0.0:port with one HTTP connection manager filter chain per RDS name.
pub fn hcm_listener(name: &str, port: u32, rds: &[&str]) -> Listener {
    Listener {
        name: name.into(),
        address: Some(socket("0.0.0.0", port)),
        filter_chains: rds.iter().map(|r| hcm_chain(r, &[])).collect(),
        ..Listener::default()
    }
}

/// A TLS listener whose filter chains match SNI names: (server names, RDS name).
pub fn sni_listener(name: &str, port: u32, chains: &[(&[&str], &str)]) -> Listener {
    Listener {
        name: name.into(),
        address: Some(socket("0.0.0.0", port)),
        filter_chains: chains
            .iter()
            .map(|(sni, rds)| hcm_chain(rds, sni))
            .collect(),
        ..Listener::default()
    }
}

pub fn cluster_eds(name: &str) -> Cluster {
    Cluster {
        name: name.into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            service_name: name.into(),
            ..cluster::EdsClusterConfig::default()
        }),
        ..Cluster::default()
    }
}

pub fn cluster_static(name: &str, endpoints: u32) -> Cluster {
    Cluster {
        name: name.into(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Static as i32,
        )),
        load_assignment: Some(load_assignment(name, &vec![1; endpoints as usize])),
        ..Cluster::default()
    }
}

/// A load assignment with one endpoint per health status given (0 unknown, 1 healthy, 2 unhealthy, …).
pub fn load_assignment(name: &str, health: &[i32]) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: name.into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: health
                .iter()
                .enumerate()
                .map(|(i, h)| LbEndpoint {
                    health_status: *h,
                    host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                        address: Some(socket(&format!("10.0.0.{i}"), 8080)),
                        ..Endpoint::default()
                    })),
                    ..LbEndpoint::default()
                })
                .collect(),
            ..LocalityLbEndpoints::default()
        }],
        ..ClusterLoadAssignment::default()
    }
}

pub fn route_config(name: &str, vhosts: &[VirtualHost]) -> RouteConfiguration {
    RouteConfiguration {
        name: name.into(),
        virtual_hosts: vhosts.to_vec(),
        ..RouteConfiguration::default()
    }
}

pub fn vhost(name: &str, domains: &[&str], routes: &[Route]) -> VirtualHost {
    VirtualHost {
        name: name.into(),
        domains: domains.iter().map(|d| (*d).into()).collect(),
        routes: routes.to_vec(),
        ..VirtualHost::default()
    }
}

pub fn headers(pairs: &[(&str, &str)]) -> Vec<HeaderValueOption> {
    pairs
        .iter()
        .map(|(k, v)| HeaderValueOption {
            header: Some(HeaderValue {
                key: (*k).into(),
                value: (*v).into(),
                ..HeaderValue::default()
            }),
            ..HeaderValueOption::default()
        })
        .collect()
}

pub fn path_match(spec: route_match::PathSpecifier, case_sensitive: Option<bool>) -> RouteMatch {
    RouteMatch {
        path_specifier: Some(spec),
        case_sensitive: case_sensitive.map(|value| BoolValue { value }),
        ..RouteMatch::default()
    }
}

pub fn prefix(p: &str) -> RouteMatch {
    path_match(route_match::PathSpecifier::Prefix(p.into()), None)
}

/// A route to one cluster.
pub fn to_cluster(m: RouteMatch, cluster: &str, header_pairs: &[(&str, &str)]) -> Route {
    Route {
        r#match: Some(m),
        request_headers_to_add: headers(header_pairs),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(cluster.into())),
            ..RouteAction::default()
        })),
        ..Route::default()
    }
}

/// A weighted destination: cluster name, weight, headers added when it is picked.
pub type Weighted<'a> = (&'a str, u32, &'a [(&'a str, &'a str)]);

/// A route to weighted clusters.
pub fn to_weighted(m: RouteMatch, clusters: &[Weighted<'_>]) -> Route {
    Route {
        r#match: Some(m),
        action: Some(route::Action::Route(RouteAction {
            cluster_specifier: Some(route_action::ClusterSpecifier::WeightedClusters(
                WeightedCluster {
                    clusters: clusters
                        .iter()
                        .map(|(name, weight, h)| weighted_cluster::ClusterWeight {
                            name: (*name).into(),
                            weight: Some(UInt32Value { value: *weight }),
                            request_headers_to_add: headers(h),
                            ..weighted_cluster::ClusterWeight::default()
                        })
                        .collect(),
                    ..WeightedCluster::default()
                },
            )),
            ..RouteAction::default()
        })),
        ..Route::default()
    }
}

/// Route configuration `http.8080` with one virtual host for catnip.apps.example.com: `/api` split 80/20
/// between s-a (headers `cf`) and s-b (headers `cf_b`), then `root` to s-a (headers `cf`).
pub fn catnip_http_8080(
    cf: &[(&str, &str)],
    cf_b: &[(&str, &str)],
    root: RouteMatch,
) -> RouteConfiguration {
    route_config(
        "http.8080",
        &[vhost(
            "catnip.apps.example.com:80",
            &["catnip.apps.example.com", "catnip.apps.example.com:*"],
            &[
                to_weighted(
                    prefix("/api"),
                    &[
                        ("outbound|8080||s-a.apps.svc.cluster.local", 80, cf),
                        ("outbound|8080||s-b.apps.svc.cluster.local", 20, cf_b),
                    ],
                ),
                to_cluster(root, "outbound|8080||s-a.apps.svc.cluster.local", cf),
            ],
        )],
    )
}
