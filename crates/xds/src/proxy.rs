//! Who the client says it is: the Envoy node (id and metadata) istiod computes a proxy's configuration for.
//!
//! istiod parses the node in `pilot/pkg/model/context.go` (`ParseServiceNodeWithMetadata`, `ParseMetadata`):
//! - the id is `<type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`; `<type>` is `router` for a gateway
//!   and `sidecar` for a sidecar, the ip is the proxy's address when the metadata has no `INSTANCE_IPS`;
//! - `NAMESPACE` is the proxy's config namespace (Sidecar resources, `exportTo`, the gateway's Service);
//! - `LABELS` are the workload labels when istiod finds no Pod for the proxy (the case here: the client is no Pod).
//!   A Gateway's `selector` is matched against them, and the Services of `NAMESPACE` whose selector matches them
//!   give a gateway its listener ports (the Services' targetPorts);
//! - `CLUSTER_ID` must be empty or the registry's cluster id (`Kubernetes` by default), or istiod finds no
//!   Service for the proxy ("proxy is in cluster X, but controller is for cluster Kubernetes");
//! - `ISTIO_VERSION` gates version-dependent output; without it istiod assumes the newest and logs a warning.
//!
//! `GENERATOR` is not sent: istiod then uses its Envoy generator, as for a real Envoy.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};

/// The namespace of the CF ingress gateway's workload (the Istio Gateway object itself lives in cf-system).
pub const DEFAULT_GATEWAY_NAMESPACE: &str = "istio-system";
/// The label the CF Gateway `cf-system/istio-ingressgateway` selects (`istio: ingressgateway`).
pub const DEFAULT_GATEWAY_LABELS: [(&str, &str); 1] = [("istio", "ingressgateway")];
/// istiod's default cluster id (`CLUSTER_ID` env of istiod).
pub const DEFAULT_CLUSTER_ID: &str = "Kubernetes";
/// The Istio version the client claims, that of the istiod snapshot the project tests against.
pub const DEFAULT_ISTIO_VERSION: &str = "1.31.0";
/// An address from TEST-NET-1 (RFC 5737): no Pod has it, so istiod uses the metadata, never another Pod's labels.
pub const DEFAULT_PROXY_IP: &str = "192.0.2.1";

/// The proxy whose configuration is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proxy {
    /// A gateway (Envoy node type `router`), e.g. the CF ingress gateway.
    Gateway(Workload),
    /// An application sidecar (node type `sidecar`).
    Sidecar(Workload),
}

/// The workload a proxy runs in: what istiod would learn from its Pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub namespace: String,
    /// Pod name; only part of the node id (no Pod of that name needs to exist).
    pub pod: String,
    pub labels: BTreeMap<String, String>,
    pub ip: String,
    pub cluster_id: String,
    pub istio_version: String,
}

impl Workload {
    fn new(namespace: &str, pod: &str, labels: BTreeMap<String, String>) -> Self {
        Workload {
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
            labels,
            ip: DEFAULT_PROXY_IP.to_owned(),
            cluster_id: DEFAULT_CLUSTER_ID.to_owned(),
            istio_version: DEFAULT_ISTIO_VERSION.to_owned(),
        }
    }
}

impl Default for Proxy {
    /// The CF ingress gateway.
    fn default() -> Self {
        Proxy::gateway(
            DEFAULT_GATEWAY_NAMESPACE,
            DEFAULT_GATEWAY_LABELS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }
}

impl Proxy {
    /// A gateway workload in `namespace` with these labels (they must match the Gateway's `selector` and the
    /// selector of the gateway's Service in `namespace`).
    pub fn gateway(namespace: &str, labels: impl IntoIterator<Item = (String, String)>) -> Self {
        let pod = format!("cfnet-xds-gateway-{namespace}");
        Proxy::Gateway(Workload::new(namespace, &pod, labels.into_iter().collect()))
    }

    /// A sidecar of a workload in `namespace` with these labels (they matter for Sidecar resources with a
    /// `workloadSelector`).
    pub fn sidecar(namespace: &str, labels: impl IntoIterator<Item = (String, String)>) -> Self {
        let pod = format!("cfnet-xds-sidecar-{namespace}");
        Proxy::Sidecar(Workload::new(namespace, &pod, labels.into_iter().collect()))
    }

    pub fn workload(&self) -> &Workload {
        match self {
            Proxy::Gateway(w) | Proxy::Sidecar(w) => w,
        }
    }

    pub fn workload_mut(&mut self) -> &mut Workload {
        match self {
            Proxy::Gateway(w) | Proxy::Sidecar(w) => w,
        }
    }

    fn node_type(&self) -> &'static str {
        match self {
            Proxy::Gateway(_) => "router",
            Proxy::Sidecar(_) => "sidecar",
        }
    }

    /// `router~<ip>~<pod>.<ns>~<ns>.svc.cluster.local` or `sidecar~…`.
    pub fn node_id(&self) -> String {
        let w = self.workload();
        format!(
            "{}~{}~{}.{}~{}.svc.cluster.local",
            self.node_type(),
            w.ip,
            w.pod,
            w.namespace,
            w.namespace
        )
    }

    /// The Envoy node sent on the first request of the stream.
    pub fn node(&self) -> Node {
        let w = self.workload();
        let labels = Struct {
            fields: w
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), string_value(v)))
                .collect(),
        };
        let fields = std::collections::HashMap::from([
            ("NAMESPACE".to_owned(), string_value(&w.namespace)),
            ("CLUSTER_ID".to_owned(), string_value(&w.cluster_id)),
            ("ISTIO_VERSION".to_owned(), string_value(&w.istio_version)),
            ("INSTANCE_IPS".to_owned(), string_value(&w.ip)),
            (
                "LABELS".to_owned(),
                Value {
                    kind: Some(Kind::StructValue(labels)),
                },
            ),
        ]);
        Node {
            id: self.node_id(),
            cluster: format!("{}.{}", w.pod, w.namespace),
            metadata: Some(Struct { fields }),
            user_agent_name: "cfnet-xds".to_owned(),
            ..Node::default()
        }
    }
}

fn string_value(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.to_owned())),
    }
}

impl fmt::Display for Proxy {
    /// The same syntax [`FromStr`] reads, with the labels.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Proxy::Gateway(_) => "gateway",
            Proxy::Sidecar(_) => "sidecar",
        };
        let w = self.workload();
        write!(f, "{kind}:{}", w.namespace)?;
        if !w.labels.is_empty() {
            let labels: Vec<String> = w.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, ":{}", labels.join(","))?;
        }
        Ok(())
    }
}

/// A `--proxy` value that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid proxy {input:?}: {reason}; use `gateway`, `gateway:NAMESPACE[:LABEL=VALUE,...]` or `sidecar:NAMESPACE[:LABEL=VALUE,...]`"
)]
pub struct ParseProxyError {
    pub input: String,
    pub reason: String,
}

impl FromStr for Proxy {
    type Err = ParseProxyError;

    /// `gateway` (the CF ingress gateway), `gateway:NS` (labels `istio=ingressgateway`),
    /// `gateway:NS:k=v,k2=v2`, `sidecar:NS`, `sidecar:NS:k=v`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ParseProxyError {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let mut parts = input.splitn(3, ':');
        let kind = parts.next().unwrap_or_default();
        let namespace = parts.next();
        let labels = parts
            .next()
            .map(parse_labels)
            .transpose()
            .map_err(|r| err(&r))?;
        if namespace.is_some_and(str::is_empty) {
            return Err(err("the namespace is empty"));
        }
        match kind {
            "gateway" => {
                let mut proxy = Proxy::default();
                if let Some(ns) = namespace {
                    proxy = Proxy::gateway(ns, proxy.workload().labels.clone());
                }
                if let Some(labels) = labels {
                    proxy.workload_mut().labels = labels;
                }
                Ok(proxy)
            }
            "sidecar" => {
                let ns = namespace.ok_or_else(|| err("a sidecar needs its namespace"))?;
                Ok(Proxy::sidecar(ns, labels.unwrap_or_default()))
            }
            _ => Err(err("the kind must be `gateway` or `sidecar`")),
        }
    }
}

fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    s.split(',')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(format!("label {pair:?} is not LABEL=VALUE")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata_string(node: &Node, key: &str) -> Option<String> {
        match node.metadata.as_ref()?.fields.get(key)?.kind.as_ref()? {
            Kind::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    }

    #[test]
    fn default_is_the_cf_ingress_gateway() {
        let proxy = Proxy::default();
        assert_eq!(
            proxy.node_id(),
            "router~192.0.2.1~cfnet-xds-gateway-istio-system.istio-system~istio-system.svc.cluster.local"
        );
        let node = proxy.node();
        assert_eq!(
            metadata_string(&node, "NAMESPACE").as_deref(),
            Some("istio-system")
        );
        assert_eq!(
            metadata_string(&node, "CLUSTER_ID").as_deref(),
            Some("Kubernetes")
        );
        let Some(Kind::StructValue(labels)) = node
            .metadata
            .as_ref()
            .and_then(|m| m.fields["LABELS"].kind.clone())
        else {
            panic!("LABELS is not a struct");
        };
        assert_eq!(
            labels.fields["istio"].kind,
            Some(Kind::StringValue("ingressgateway".to_owned()))
        );
    }

    #[test]
    fn sidecar_node_id() {
        let proxy = Proxy::sidecar("apps", []);
        assert_eq!(
            proxy.node_id(),
            "sidecar~192.0.2.1~cfnet-xds-sidecar-apps.apps~apps.svc.cluster.local"
        );
        assert_eq!(
            metadata_string(&proxy.node(), "NAMESPACE").as_deref(),
            Some("apps")
        );
    }

    #[test]
    fn parse_table() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let cases: &[(&str, Proxy)] = &[
            ("gateway", Proxy::default()),
            (
                "gateway:gw",
                Proxy::gateway("gw", labels(&[("istio", "ingressgateway")])),
            ),
            (
                "gateway:gw:app=edge,tier=front",
                Proxy::gateway("gw", labels(&[("app", "edge"), ("tier", "front")])),
            ),
            ("sidecar:apps", Proxy::sidecar("apps", [])),
            (
                "sidecar:apps:app=x",
                Proxy::sidecar("apps", labels(&[("app", "x")])),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&input.parse::<Proxy>().unwrap(), want, "{input}");
        }
        for bad in [
            "",
            "sidecar",
            "gateway:",
            "router:x",
            "sidecar:a:novalue",
            "sidecar:a:=v",
        ] {
            let err = bad.parse::<Proxy>().unwrap_err();
            assert!(err.to_string().contains("use `gateway`"), "{bad}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for input in [
            "gateway:istio-system:istio=ingressgateway",
            "sidecar:apps",
            "sidecar:apps:a=b,c=d",
        ] {
            assert_eq!(input.parse::<Proxy>().unwrap().to_string(), input);
        }
    }
}
