//! `listeners()`: each listener with its address and the route configurations (RDS names) it references.

use envoy_types::pb::envoy::config::core::v3::{Address, address, socket_address};
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use serde::Serialize;

use crate::config::{ProxyConfig, http_connection_manager, listener_route_configs};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListenerView {
    pub name: String,
    /// `ip:port` (or the pipe path / internal listener name).
    pub address: String,
    /// The RDS names the listener's HTTP connection managers reference, sorted.
    pub route_configs: Vec<String>,
    /// The filter chains in the order Envoy has them.
    pub filter_chains: Vec<FilterChainView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FilterChainView {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// SNI names the chain matches (TLS listeners of a gateway: one chain per Gateway server).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub server_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_port: Option<u32>,
    /// `rds:<name>`, `inline:<name>` (route configuration in the listener) or the network filters' names.
    pub handler: String,
}

/// Every listener, by name.
pub fn listeners(config: &ProxyConfig) -> Vec<ListenerView> {
    config
        .listeners
        .values()
        .map(|l| listener_view(l))
        .collect()
}

pub fn listener_view(l: &Listener) -> ListenerView {
    ListenerView {
        name: l.name.clone(),
        address: l.address.as_ref().map(address_string).unwrap_or_default(),
        route_configs: listener_route_configs(l).into_iter().collect(),
        filter_chains: l
            .filter_chains
            .iter()
            .chain(l.default_filter_chain.as_ref())
            .map(filter_chain_view)
            .collect(),
    }
}

fn filter_chain_view(chain: &FilterChain) -> FilterChainView {
    let m = chain.filter_chain_match.as_ref();
    let handler = match http_connection_manager(chain).and_then(|h| h.route_specifier) {
        Some(RouteSpecifier::Rds(rds)) => format!("rds:{}", rds.route_config_name),
        Some(RouteSpecifier::RouteConfig(rc)) => format!("inline:{}", rc.name),
        Some(RouteSpecifier::ScopedRoutes(_)) => "scoped_routes".to_owned(),
        None => chain
            .filters
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
    };
    FilterChainView {
        name: chain.name.clone(),
        server_names: m.map(|m| m.server_names.clone()).unwrap_or_default(),
        destination_port: m.and_then(|m| m.destination_port.as_ref()).map(|p| p.value),
        handler,
    }
}

pub fn address_string(a: &Address) -> String {
    match &a.address {
        Some(address::Address::SocketAddress(s)) => match &s.port_specifier {
            Some(socket_address::PortSpecifier::PortValue(p)) => format!("{}:{p}", s.address),
            Some(socket_address::PortSpecifier::NamedPort(p)) => format!("{}:{p}", s.address),
            None => s.address.clone(),
        },
        Some(address::Address::Pipe(p)) => p.path.clone(),
        Some(address::Address::EnvoyInternalAddress(i)) => format!("internal:{i:?}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use std::sync::Arc;

    #[test]
    fn http_and_https_listeners() {
        let http = hcm_listener("0.0.0.0_8080", 8080, &["http.8080"]);
        let https = sni_listener(
            "0.0.0.0_8443",
            8443,
            &[
                (&["*.apps.example.com"], "https.443.https-apps"),
                (&["login.sys.example.com"], "https.443.https-sys"),
            ],
        );
        let config = ProxyConfig {
            listeners: [https, http]
                .into_iter()
                .map(|l| (l.name.clone(), Arc::new(l)))
                .collect(),
            ..ProxyConfig::default()
        };
        assert_eq!(
            serde_json::to_value(listeners(&config)).unwrap(),
            serde_json::json!([
                {"name": "0.0.0.0_8080", "address": "0.0.0.0:8080", "route_configs": ["http.8080"],
                 "filter_chains": [{"handler": "rds:http.8080"}]},
                {"name": "0.0.0.0_8443", "address": "0.0.0.0:8443",
                 "route_configs": ["https.443.https-apps", "https.443.https-sys"],
                 "filter_chains": [
                    {"server_names": ["*.apps.example.com"], "handler": "rds:https.443.https-apps"},
                    {"server_names": ["login.sys.example.com"], "handler": "rds:https.443.https-sys"}
                 ]}
            ])
        );
    }
}
