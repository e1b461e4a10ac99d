//! `clusters()`: each cluster with its discovery type and endpoint counts.

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::HealthStatus;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use serde::Serialize;

use crate::config::{ProxyConfig, eds_service_name};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    pub name: String,
    /// `EDS`, `STATIC`, `STRICT_DNS`, `LOGICAL_DNS`, `ORIGINAL_DST`, or a custom cluster type's name.
    #[serde(rename = "type")]
    pub discovery_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eds_service_name: Option<String>,
    /// Endpoints in the load assignment (EDS, or inline for other types); `null` when there is none to count
    /// (ORIGINAL_DST, custom types, or EDS not served).
    pub endpoints: Option<u32>,
    /// Endpoints Envoy would send to: health UNKNOWN, HEALTHY or DEGRADED.
    pub healthy_endpoints: Option<u32>,
    /// The parts of an Istio cluster name `direction|port|subset|host`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub service: Option<IstioClusterName>,
}

/// `outbound|8080||s-<guid>.<ns>.svc.cluster.local` → outbound, 8080, "", s-<guid>.<ns>.svc.cluster.local.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IstioClusterName {
    pub direction: String,
    pub port: u16,
    pub subset: String,
    pub host: String,
}

impl IstioClusterName {
    pub fn parse(name: &str) -> Option<Self> {
        let mut parts = name.split('|');
        let (direction, port, subset, host) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !matches!(direction, "outbound" | "inbound") {
            return None;
        }
        Some(IstioClusterName {
            direction: direction.to_owned(),
            port: port.parse().ok()?,
            subset: subset.to_owned(),
            host: host.to_owned(),
        })
    }
}

/// Every cluster, by name.
pub fn clusters(config: &ProxyConfig) -> Vec<ClusterView> {
    config
        .clusters
        .values()
        .map(|c| cluster_view(c, config.load_assignment(c)))
        .collect()
}

impl ProxyConfig {
    /// One cluster's view (type, endpoint counts), `None` when CDS does not have it: what `cfnet explain`
    /// reports for each cluster a route names.
    pub fn cluster_view(&self, name: &str) -> Option<ClusterView> {
        let c = self.clusters.get(name)?;
        Some(cluster_view(c, self.load_assignment(c)))
    }
}

pub fn cluster_view(c: &Cluster, load_assignment: Option<&ClusterLoadAssignment>) -> ClusterView {
    let discovery_type = match &c.cluster_discovery_type {
        Some(cluster::ClusterDiscoveryType::Type(t)) => cluster::DiscoveryType::try_from(*t)
            .map(|t| t.as_str_name().to_owned())
            .unwrap_or_else(|_| format!("UNKNOWN({t})")),
        Some(cluster::ClusterDiscoveryType::ClusterType(custom)) => custom.name.clone(),
        // The proto default: a cluster without a type is STATIC.
        None => cluster::DiscoveryType::Static.as_str_name().to_owned(),
    };
    let countable = matches!(
        discovery_type.as_str(),
        "EDS" | "STATIC" | "STRICT_DNS" | "LOGICAL_DNS"
    );
    let (endpoints, healthy) = match load_assignment.filter(|_| countable) {
        Some(la) => {
            let (total, healthy) = endpoint_counts(la);
            (Some(total), Some(healthy))
        }
        None => (None, None),
    };
    ClusterView {
        name: c.name.clone(),
        discovery_type,
        eds_service_name: eds_service_name(c).filter(|s| *s != c.name),
        endpoints,
        healthy_endpoints: healthy,
        service: IstioClusterName::parse(&c.name),
    }
}

/// (all endpoints, endpoints Envoy would route to).
pub fn endpoint_counts(la: &ClusterLoadAssignment) -> (u32, u32) {
    let mut total = 0;
    let mut healthy = 0;
    for e in la.endpoints.iter().flat_map(|l| &l.lb_endpoints) {
        total += 1;
        if matches!(
            HealthStatus::try_from(e.health_status),
            Ok(HealthStatus::Unknown | HealthStatus::Healthy | HealthStatus::Degraded)
        ) {
            healthy += 1;
        }
    }
    (total, healthy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use std::sync::Arc;

    #[test]
    fn eds_static_and_original_dst() {
        let eds = cluster_eds("outbound|8080||s-1.apps.svc.cluster.local");
        let unserved = cluster_eds("outbound|80||s-2.apps.svc.cluster.local");
        let mut passthrough = cluster_static("PassthroughCluster", 0);
        passthrough.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::OriginalDst as i32,
        ));
        passthrough.load_assignment = None;
        let config = ProxyConfig {
            clusters: [
                eds.clone(),
                unserved,
                passthrough,
                cluster_static("BlackHoleCluster", 0),
            ]
            .into_iter()
            .map(|c| (c.name.clone(), Arc::new(c)))
            .collect(),
            // unknown, healthy, unhealthy, draining
            endpoints: [(
                eds.name.clone(),
                Arc::new(load_assignment(&eds.name, &[0, 1, 2, 3])),
            )]
            .into(),
            ..ProxyConfig::default()
        };
        let got = serde_json::to_value(clusters(&config)).unwrap();
        assert_eq!(
            got,
            serde_json::json!([
                {"name": "BlackHoleCluster", "type": "STATIC", "endpoints": 0, "healthy_endpoints": 0},
                {"name": "PassthroughCluster", "type": "ORIGINAL_DST", "endpoints": null, "healthy_endpoints": null},
                {"name": "outbound|8080||s-1.apps.svc.cluster.local", "type": "EDS", "endpoints": 4,
                 "healthy_endpoints": 2, "direction": "outbound", "port": 8080, "subset": "",
                 "host": "s-1.apps.svc.cluster.local"},
                {"name": "outbound|80||s-2.apps.svc.cluster.local", "type": "EDS", "endpoints": null,
                 "healthy_endpoints": null, "direction": "outbound", "port": 80, "subset": "",
                 "host": "s-2.apps.svc.cluster.local"}
            ])
        );
    }

    #[test]
    fn one_cluster_by_name() {
        let eds = cluster_eds("outbound|8080||s-1.apps.svc.cluster.local");
        let config = ProxyConfig {
            clusters: [(eds.name.clone(), Arc::new(eds.clone()))].into(),
            endpoints: [(
                eds.name.clone(),
                Arc::new(load_assignment(&eds.name, &[1, 1])),
            )]
            .into(),
            ..ProxyConfig::default()
        };
        let view = config.cluster_view(&eds.name).unwrap();
        assert_eq!((view.endpoints, view.healthy_endpoints), (Some(2), Some(2)));
        assert_eq!(
            config.cluster_view("outbound|80||s-1.apps.svc.cluster.local"),
            None
        );
    }

    #[test]
    fn istio_cluster_names() {
        assert_eq!(
            IstioClusterName::parse("outbound|8080|v1|s.ns.svc.cluster.local"),
            Some(IstioClusterName {
                direction: "outbound".into(),
                port: 8080,
                subset: "v1".into(),
                host: "s.ns.svc.cluster.local".into()
            })
        );
        for other in [
            "BlackHoleCluster",
            "outbound_.8080_._.s.ns",
            "outbound|x||h",
            "sideways|80||h",
            "a|1|b|c|d",
        ] {
            assert_eq!(IstioClusterName::parse(other), None, "{other}");
        }
    }
}
