//! `--proxy gateway:NS/NAME` of `cfnet proxy-config`: the gateway workload an Istio Gateway object is served by.
//!
//! Envoy configuration belongs to a workload (namespace + labels), not to a Gateway object. istiod gives a
//! gateway proxy the Gateways whose `selector` matches its labels, and the listener ports of the Services in the
//! proxy's namespace whose selector matches them (`pilot/pkg/model`: `SidecarScope`, gateway `MergeGateways`). So
//! the workload of Gateway `NS/NAME` is: labels = the Gateway's `spec.selector`, namespace = that of the
//! Services whose (non-empty) selector is a subset of those labels — for the chart, Gateway
//! `cf-system/istio-ingressgateway` (selector `istio: ingressgateway`) and Service
//! `istio-system/istio-ingressgateway` give `gateway:istio-system:istio=ingressgateway`, the default proxy.

use std::collections::{BTreeMap, BTreeSet};

use cfnet_xds::Proxy;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};

use crate::kube_args::KubeArgs;

/// Why a Gateway's workload cannot be found.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GatewayWorkloadError {
    #[error(
        "invalid gateway {0:?}: use gateway:NAMESPACE/NAME (e.g. gateway:cf-system/istio-ingressgateway)"
    )]
    InvalidName(String),
    #[error(
        "cannot read Gateway {gateway} from the API server ({reason}); pass --kubeconfig or --state-dir of `cfnet dev up`, or name the workload with --proxy gateway:NAMESPACE:LABEL=VALUE"
    )]
    Unreadable { gateway: String, reason: String },
    #[error(
        "Gateway {gateway} does not exist; check ISTIO_GATEWAY_NAME / --proxy gateway:NAMESPACE/NAME, or name the workload with --proxy gateway:NAMESPACE:LABEL=VALUE"
    )]
    NotFound { gateway: String },
    #[error(
        "Gateway {gateway} has no spec.selector: it selects no gateway workload; set its selector (the chart's gateway.selector)"
    )]
    NoSelector { gateway: String },
    #[error(
        "no Service selects the workload of Gateway {gateway} ({labels}): istiod would give it no listener; create the gateway's Service (the chart's ingressGateway) or pass --proxy gateway:NAMESPACE:{labels}"
    )]
    NoService { gateway: String, labels: String },
    #[error(
        "Services in several namespaces select the workload of Gateway {gateway} ({labels}): {namespaces}; pass --proxy gateway:NAMESPACE:{labels}"
    )]
    Ambiguous {
        gateway: String,
        labels: String,
        namespaces: String,
    },
}

/// The gateway proxy of Gateway `gateway` (for messages) with `selector`, given every Service as (namespace,
/// selector): pure.
pub fn workload(
    gateway: &str,
    selector: &BTreeMap<String, String>,
    services: &[(String, BTreeMap<String, String>)],
) -> Result<Proxy, GatewayWorkloadError> {
    if selector.is_empty() {
        return Err(GatewayWorkloadError::NoSelector {
            gateway: gateway.to_owned(),
        });
    }
    let labels = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let namespaces: BTreeSet<&str> = services
        .iter()
        .filter(|(_, s)| !s.is_empty() && s.iter().all(|(k, v)| selector.get(k) == Some(v)))
        .map(|(ns, _)| ns.as_str())
        .collect();
    let mut namespaces = namespaces.into_iter();
    match (namespaces.next(), namespaces.next()) {
        (None, _) => Err(GatewayWorkloadError::NoService {
            gateway: gateway.to_owned(),
            labels,
        }),
        (Some(ns), None) => Ok(Proxy::gateway(ns, selector.clone())),
        (Some(first), Some(second)) => Err(GatewayWorkloadError::Ambiguous {
            gateway: gateway.to_owned(),
            labels,
            namespaces: std::iter::once(first)
                .chain(std::iter::once(second))
                .chain(namespaces)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Reads Gateway `NS/NAME` and every Service from the API server of `kubeconfig` (default: $KUBECONFIG, then
/// ~/.kube/config) and returns the gateway's workload.
pub async fn resolve(gateway: &str, kube: &KubeArgs) -> Result<Proxy, GatewayWorkloadError> {
    let Some((namespace, name)) = gateway
        .split_once('/')
        .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains('/'))
    else {
        return Err(GatewayWorkloadError::InvalidName(gateway.to_owned()));
    };
    let unreadable = |reason: String| GatewayWorkloadError::Unreadable {
        gateway: gateway.to_owned(),
        reason,
    };
    let client = kube.client().await.map_err(|e| unreadable(e.to_string()))?;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1beta1", "Gateway"),
        "gateways",
    );
    let object = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource)
        .get_opt(name)
        .await
        .map_err(|e| unreadable(cfnet_controller::error_chain(&e)))?
        .ok_or_else(|| GatewayWorkloadError::NotFound {
            gateway: gateway.to_owned(),
        })?;
    let selector: BTreeMap<String, String> =
        serde_json::from_value(object.data["spec"]["selector"].clone()).unwrap_or_default();
    let services = Api::<Service>::all(client)
        .list(&ListParams::default())
        .await
        .map_err(|e| {
            unreadable(format!(
                "listing Services: {}",
                cfnet_controller::error_chain(&e)
            ))
        })?;
    let services: Vec<(String, BTreeMap<String, String>)> = services
        .items
        .iter()
        .map(|s| {
            (
                s.namespace().unwrap_or_default(),
                s.spec
                    .as_ref()
                    .and_then(|spec| spec.selector.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    workload(gateway, &selector, &services)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn workload_table() {
        let ingress = labels(&[("istio", "ingressgateway")]);
        let service = |ns: &str, pairs: &[(&str, &str)]| (ns.to_owned(), labels(pairs));
        let chart = [
            service("istio-system", &[("istio", "ingressgateway")]),
            service("istio-system", &[("app", "istiod")]),
            service("cf-workloads", &[]),
            service("cf-workloads", &[("cloudfoundry.org/app_guid", "a")]),
        ];
        // The chart: the default proxy.
        assert_eq!(
            workload("cf-system/istio-ingressgateway", &ingress, &chart).unwrap(),
            Proxy::default()
        );
        // A Service selecting a subset of the Gateway's selector counts; one selecting more does not.
        let two = labels(&[("istio", "ingressgateway"), ("tier", "edge")]);
        let subset = [
            service("gw", &[("tier", "edge")]),
            service("other", &[("tier", "edge"), ("x", "y")]),
        ];
        assert_eq!(
            workload("a/b", &two, &subset).unwrap(),
            Proxy::gateway("gw", two.clone())
        );
        type Case<'a> = (
            &'a [(String, BTreeMap<String, String>)],
            &'a BTreeMap<String, String>,
            &'a str,
        );
        let cases: &[Case] = &[
            (&chart, &BTreeMap::new(), "has no spec.selector"),
            (&chart[1..], &ingress, "no Service selects"),
            (
                &[
                    service("a", &[("istio", "ingressgateway")]),
                    service("b", &[("istio", "ingressgateway")]),
                ],
                &ingress,
                "several namespaces select the workload of Gateway g/w (istio=ingressgateway): a, b",
            ),
        ];
        for (services, selector, message) in cases {
            let err = workload("g/w", selector, services).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
    }
}
