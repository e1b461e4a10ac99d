//! The client side of one aggregated (ADS) state-of-the-world stream, without I/O: which requests to send, and
//! what each response does to the configuration.
//!
//! Protocol rules followed (xDS protocol docs, and istiod's `pkg/xds/server.go` `ShouldRespond`):
//! - the first request of the stream carries the node; the first request of a type has no version and no nonce;
//! - every response is answered: an ACK repeats its `version_info` and `nonce`; a NACK carries the nonce, the
//!   version of the last accepted response and `error_detail`, and the previous resources stay in force;
//! - every request carries the type's whole current subscription (resource names) and the last nonce received
//!   for the type: istiod ignores a request with an older nonce ("expired nonce");
//! - LDS and CDS are wildcard subscriptions; RDS follows the route configuration names the listeners reference
//!   and EDS the EDS clusters' service names. istiod answers a changed RDS / EDS subscription only when names
//!   were added, and an empty one unsubscribes, so an empty subscription is only sent to drop a non-empty one.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::rpc::Status;

use crate::config::{ProxyConfig, ResourceKind, Resources};

/// gRPC code INVALID_ARGUMENT, what Envoy reports in a NACK.
const INVALID_ARGUMENT: i32 = 3;

#[derive(Debug, Default)]
struct TypeState {
    /// The subscription (empty for the wildcard types).
    names: BTreeSet<String>,
    /// A request of this type was sent (so the next one is not the first).
    requested: bool,
    /// The version of the last accepted response.
    version: String,
    /// The nonce of the last response received.
    nonce: String,
}

/// What one response did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub kind: ResourceKind,
    pub version: String,
    pub nonce: String,
    /// Names of the resources in the response (for RDS / EDS: those updated).
    pub names: Vec<String>,
    /// `Some(reason)` when the response was refused (NACK) and the configuration left as it was.
    pub rejected: Option<String>,
}

/// The result of handling one response: requests to send, in order, and what happened.
#[derive(Debug)]
pub struct Step {
    pub requests: Vec<DiscoveryRequest>,
    /// `None` for a response of a type the client never asked for (ignored).
    pub received: Option<Received>,
}

#[derive(Debug)]
pub struct AdsState {
    node: Option<Node>,
    types: BTreeMap<ResourceKind, TypeState>,
    config: ProxyConfig,
}

impl AdsState {
    pub fn new(node: Node) -> Self {
        AdsState {
            node: Some(node),
            types: ResourceKind::ALL
                .into_iter()
                .map(|k| (k, TypeState::default()))
                .collect(),
            config: ProxyConfig::default(),
        }
    }

    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// The first requests of the stream: CDS then LDS, as Envoy sends them.
    pub fn initial_requests(&mut self) -> Vec<DiscoveryRequest> {
        vec![
            self.request(ResourceKind::Cluster, None),
            self.request(ResourceKind::Listener, None),
        ]
    }

    fn request(&mut self, kind: ResourceKind, error: Option<String>) -> DiscoveryRequest {
        let node = self.node.take();
        let state = self.types.entry(kind).or_default();
        state.requested = true;
        DiscoveryRequest {
            version_info: state.version.clone(),
            node,
            resource_names: state.names.iter().cloned().collect(),
            type_url: kind.type_url(),
            response_nonce: state.nonce.clone(),
            error_detail: error.map(|message| Status {
                code: INVALID_ARGUMENT,
                message,
                details: Vec::new(),
            }),
            ..DiscoveryRequest::default()
        }
    }

    pub fn on_response(&mut self, response: DiscoveryResponse) -> Step {
        let Some(kind) = ResourceKind::from_type_url(&response.type_url) else {
            return Step {
                requests: Vec::new(),
                received: None,
            };
        };
        self.types.entry(kind).or_default().nonce = response.nonce.clone();
        let mut received = Received {
            kind,
            version: response.version_info.clone(),
            nonce: response.nonce.clone(),
            names: Vec::new(),
            rejected: None,
        };
        let resources = match Resources::decode(kind, &response.resources) {
            Ok(r) => r,
            Err(e) => {
                let reason = e.to_string();
                received.rejected = Some(reason.clone());
                return Step {
                    requests: vec![self.request(kind, Some(reason))],
                    received: Some(received),
                };
            }
        };
        received.names = resources.names();
        self.config.apply(resources, &response.version_info);
        self.types.entry(kind).or_default().version = response.version_info;
        let mut requests = vec![self.request(kind, None)];
        match kind {
            ResourceKind::Listener => {
                let names = self.config.referenced_route_configs();
                requests.extend(self.resubscribe(ResourceKind::RouteConfiguration, names));
            }
            ResourceKind::Cluster => {
                let names = self.config.referenced_eds_names();
                requests.extend(self.resubscribe(ResourceKind::ClusterLoadAssignment, names));
            }
            ResourceKind::RouteConfiguration | ResourceKind::ClusterLoadAssignment => {}
        }
        let rds = self.subscription(ResourceKind::RouteConfiguration);
        let eds = self.subscription(ResourceKind::ClusterLoadAssignment);
        self.config.retain(&rds, &eds);
        Step {
            requests,
            received: Some(received),
        }
    }

    fn subscription(&self, kind: ResourceKind) -> BTreeSet<String> {
        self.types
            .get(&kind)
            .map(|t| t.names.clone())
            .unwrap_or_default()
    }

    /// A request for the new subscription of a named type, if it changed and is worth sending.
    fn resubscribe(
        &mut self,
        kind: ResourceKind,
        names: BTreeSet<String>,
    ) -> Option<DiscoveryRequest> {
        let state = self.types.entry(kind).or_default();
        if state.names == names || (names.is_empty() && !state.requested) {
            return None;
        }
        state.names = names;
        Some(self.request(kind, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cluster_eds, cluster_static, hcm_listener, response, route_config};
    use envoy_types::pb::envoy::config::listener::v3::Listener;

    fn names(r: &DiscoveryRequest) -> Vec<&str> {
        r.resource_names.iter().map(String::as_str).collect()
    }

    fn kind(r: &DiscoveryRequest) -> ResourceKind {
        ResourceKind::from_type_url(&r.type_url).unwrap()
    }

    /// A state past its initial requests.
    fn started() -> AdsState {
        let mut ads = AdsState::new(Node::default());
        ads.initial_requests();
        ads
    }

    /// The first listener response: version `v1`, nonce `n1`.
    fn first_listeners(ads: &mut AdsState, listeners: &[Listener]) -> Step {
        ads.on_response(response(ResourceKind::Listener, "v1", "n1", listeners))
    }

    #[test]
    fn initial_requests_are_wildcard_cds_then_lds_with_the_node_once() {
        let mut ads = AdsState::new(Node {
            id: "router~x".into(),
            ..Node::default()
        });
        let reqs = ads.initial_requests();
        assert_eq!(
            reqs.iter().map(kind).collect::<Vec<_>>(),
            [ResourceKind::Cluster, ResourceKind::Listener]
        );
        assert!(
            reqs.iter()
                .all(|r| r.resource_names.is_empty() && r.response_nonce.is_empty())
        );
        assert_eq!(
            reqs[0].node.as_ref().map(|n| n.id.as_str()),
            Some("router~x")
        );
        assert!(reqs[1].node.is_none());
    }

    #[test]
    fn lds_is_acked_then_rds_subscribed_to_the_referenced_names() {
        let mut ads = started();
        let step = first_listeners(
            &mut ads,
            &[
                hcm_listener("0.0.0.0_8080", 8080, &["http.8080"]),
                hcm_listener("0.0.0.0_8443", 8443, &["https.443.a", "https.443.b"]),
            ],
        );
        assert_eq!(step.requests.len(), 2);
        let ack = &step.requests[0];
        assert_eq!(
            (
                kind(ack),
                ack.version_info.as_str(),
                ack.response_nonce.as_str()
            ),
            (ResourceKind::Listener, "v1", "n1")
        );
        assert!(ack.error_detail.is_none() && ack.resource_names.is_empty());
        let rds = &step.requests[1];
        assert_eq!(kind(rds), ResourceKind::RouteConfiguration);
        assert_eq!(names(rds), ["http.8080", "https.443.a", "https.443.b"]);
        assert_eq!(
            (rds.version_info.as_str(), rds.response_nonce.as_str()),
            ("", "")
        );
        assert_eq!(
            ads.config()
                .missing()
                .iter()
                .map(|(k, n)| (*k, n.as_str()))
                .collect::<Vec<_>>(),
            [
                (ResourceKind::Cluster, "(all)"),
                (ResourceKind::RouteConfiguration, "http.8080"),
                (ResourceKind::RouteConfiguration, "https.443.a"),
                (ResourceKind::RouteConfiguration, "https.443.b"),
            ]
        );
    }

    #[test]
    fn an_rds_response_is_acked_with_the_subscription_and_merged() {
        let mut ads = started();
        first_listeners(&mut ads, &[hcm_listener("l", 80, &["a", "b"])]);
        let step = ads.on_response(response(
            ResourceKind::RouteConfiguration,
            "v1",
            "n2",
            &[route_config("a", &[])],
        ));
        assert_eq!(step.requests.len(), 1);
        assert_eq!(names(&step.requests[0]), ["a", "b"]);
        assert_eq!(step.requests[0].response_nonce, "n2");
        // A later response with only "b" keeps "a": RDS responses need not hold every subscribed name.
        ads.on_response(response(
            ResourceKind::RouteConfiguration,
            "v2",
            "n3",
            &[route_config("b", &[])],
        ));
        assert_eq!(
            ads.config().route_configs.keys().collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(
            ads.config()
                .missing()
                .iter()
                .all(|(k, _)| *k == ResourceKind::Cluster)
        );
    }

    #[test]
    fn a_listener_removal_shrinks_rds_and_drops_the_route_config_and_an_unchanged_one_sends_nothing()
     {
        let mut ads = started();
        first_listeners(
            &mut ads,
            &[hcm_listener("l", 80, &["a"]), hcm_listener("m", 81, &["b"])],
        );
        ads.on_response(response(
            ResourceKind::RouteConfiguration,
            "v1",
            "n2",
            &[route_config("a", &[]), route_config("b", &[])],
        ));
        let step = ads.on_response(response(
            ResourceKind::Listener,
            "v2",
            "n3",
            &[hcm_listener("l", 80, &["a"])],
        ));
        assert_eq!(step.requests.len(), 2);
        let rds = &step.requests[1];
        assert_eq!(names(rds), ["a"]);
        // The RDS request carries the last RDS version and nonce, or istiod would drop it as expired.
        assert_eq!(
            (rds.version_info.as_str(), rds.response_nonce.as_str()),
            ("v1", "n2")
        );
        assert_eq!(ads.config().route_configs.keys().collect::<Vec<_>>(), ["a"]);
        let step = ads.on_response(response(
            ResourceKind::Listener,
            "v3",
            "n4",
            &[hcm_listener("l", 80, &["a"])],
        ));
        assert_eq!(step.requests.len(), 1, "only the ACK");
    }

    #[test]
    fn no_empty_rds_request_before_any_rds_subscription() {
        let mut ads = started();
        let step = first_listeners(&mut ads, &[hcm_listener("tcp", 80, &[])]);
        assert_eq!(
            step.requests.iter().map(kind).collect::<Vec<_>>(),
            [ResourceKind::Listener]
        );
    }

    #[test]
    fn cds_subscribes_eds_for_eds_clusters_only() {
        let mut ads = started();
        let step = ads.on_response(response(
            ResourceKind::Cluster,
            "v1",
            "c1",
            &[
                cluster_eds("outbound|8080||s-1.apps.svc.cluster.local"),
                cluster_static("BlackHoleCluster", 0),
            ],
        ));
        assert_eq!(step.requests.len(), 2);
        assert_eq!(kind(&step.requests[1]), ResourceKind::ClusterLoadAssignment);
        assert_eq!(
            names(&step.requests[1]),
            ["outbound|8080||s-1.apps.svc.cluster.local"]
        );
    }

    #[test]
    fn an_undecodable_response_is_nacked_with_the_last_accepted_version_and_changes_nothing() {
        let mut ads = started();
        first_listeners(&mut ads, &[hcm_listener("l", 80, &["a"])]);
        let before = ads.config().clone();
        let mut bad = response(
            ResourceKind::Listener,
            "v2",
            "n2",
            &[hcm_listener("m", 81, &["b"])],
        );
        bad.resources[0].value = vec![0xff, 0xff, 0xff];
        let step = ads.on_response(bad);
        assert_eq!(step.requests.len(), 1);
        let nack = &step.requests[0];
        assert_eq!(
            (nack.version_info.as_str(), nack.response_nonce.as_str()),
            ("v1", "n2")
        );
        let detail = nack.error_detail.as_ref().expect("a NACK has error_detail");
        assert_eq!(detail.code, INVALID_ARGUMENT);
        assert!(
            detail.message.contains("listeners resource #0"),
            "{}",
            detail.message
        );
        assert!(step.received.unwrap().rejected.is_some());
        assert_eq!(ads.config(), &before);
    }

    #[test]
    fn a_resource_of_the_wrong_type_is_nacked() {
        let mut ads = started();
        let mut bad = response(ResourceKind::Cluster, "v1", "n1", &[cluster_static("c", 1)]);
        bad.type_url = ResourceKind::Listener.type_url();
        let step = ads.on_response(bad);
        let detail = step.requests[0].error_detail.as_ref().unwrap();
        assert!(
            detail.message.contains("envoy.config.cluster.v3.Cluster"),
            "{}",
            detail.message
        );
        assert!(ads.config().listeners.is_empty());
    }

    #[test]
    fn an_unknown_type_is_ignored() {
        let mut ads = AdsState::new(Node::default());
        let step = ads.on_response(DiscoveryResponse {
            type_url: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret".into(),
            ..DiscoveryResponse::default()
        });
        assert!(step.requests.is_empty() && step.received.is_none());
    }
}
