//! The I/O of `cfnet explain`: the Routes, the VirtualService, the Services and EndpointSlices from the API
//! server, and the proxy's configuration from istiod. Every decision is in decide.rs and envoy.rs.

use std::collections::BTreeMap;
use std::time::Duration;

use cfnet_api::{Route, VirtualService};
use cfnet_translate::virtual_service_name;
use cfnet_xds::Proxy;
use cfnet_xds::proxy::DEFAULT_GATEWAY_NAMESPACE;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};

use super::decide::{Facts, choose_virtual_service, claiming, is_internal, services_to_read};
use super::envoy::EnvoyFacts;
use super::request::Request;

/// How long istiod gets to serve the whole configuration of the proxy.
const XDS_TIMEOUT: Duration = Duration::from_secs(10);
/// The label EndpointSlices name their Service with.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A read the report cannot do without (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot {what} from the API server ({source}); check --kubeconfig/--context and that the API server is reachable"
)]
pub struct ReadError {
    what: String,
    source: kube::Error,
}

fn read_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ReadError {
    let what = what.into();
    move |source| ReadError { what, source }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 404)
}

pub async fn read(
    client: &Client,
    request: Request,
    gateway: &str,
    xds: Option<&str>,
) -> Result<Facts, ReadError> {
    let all: Vec<Route> = Api::<Route>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(read_error(
            "list Routes (networking.cloudfoundry.org/v1alpha1)",
        ))?
        .items;
    let (fqdn, routes) = claiming(&all, &request.host);
    let vs_name = virtual_service_name(&fqdn);
    let candidates = match Api::<VirtualService>::all(client.clone())
        .list(&ListParams::default().fields(&format!("metadata.name={vs_name}")))
        .await
    {
        Ok(list) => list.items,
        // No Istio CRDs: no VirtualService.
        Err(e) if is_not_found(&e) => Vec::new(),
        Err(e) => {
            return Err(read_error(format!("list VirtualServices named {vs_name}"))(
                e,
            ));
        }
    };
    let virtual_service = choose_virtual_service(candidates, &routes);
    let mut services = BTreeMap::new();
    for (namespace, name) in services_to_read(&routes) {
        if let Some(count) = ready_endpoints(client, &namespace, &name).await? {
            services.insert((namespace, name), count);
        }
    }
    let envoy = match xds {
        None => EnvoyFacts::NotAsked,
        Some(addr) => {
            let proxy = if is_internal(&routes, virtual_service.as_ref()) {
                let namespace = virtual_service
                    .as_ref()
                    .and_then(|vs| vs.namespace())
                    .or_else(|| routes.first().and_then(|r| r.namespace()))
                    .unwrap_or_default();
                Proxy::sidecar(&namespace, [])
            } else {
                gateway_proxy(client, gateway).await
            };
            match cfnet_xds::fetch(addr, &proxy, XDS_TIMEOUT).await {
                Ok(config) => EnvoyFacts::Fetched {
                    proxy,
                    config: Box::new(config),
                },
                Err(e) => EnvoyFacts::Unavailable {
                    error: e.to_string(),
                },
            }
        }
    };
    Ok(Facts {
        request,
        fqdn,
        routes,
        virtual_service,
        services,
        envoy,
    })
}

/// Ready endpoints of Service `namespace/name` in its EndpointSlices (`ready` unset counts as ready, as the
/// API says); `None` when the Service does not exist.
async fn ready_endpoints(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<u32>, ReadError> {
    let service = Api::<Service>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(read_error(format!("read Service {namespace}/{name}")))?;
    if service.is_none() {
        return Ok(None);
    }
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("{SERVICE_NAME_LABEL}={name}")))
        .await
        .map_err(read_error(format!(
            "list the EndpointSlices of Service {namespace}/{name}"
        )))?;
    let ready = slices
        .items
        .iter()
        .flat_map(|s| s.endpoints.iter().flatten())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .count();
    Ok(Some(u32::try_from(ready).unwrap_or(u32::MAX)))
}

/// The gateway workload the Istio Gateway `NS/NAME` selects: its `spec.selector` as the proxy's labels, in
/// istio-system (the chart's istioNamespace). Without a readable Gateway: the CF ingress gateway's defaults.
async fn gateway_proxy(client: &Client, gateway: &str) -> Proxy {
    let Some((namespace, name)) = gateway.split_once('/') else {
        return Proxy::default();
    };
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.istio.io", "v1beta1", "Gateway"),
        "gateways",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let selector: Option<BTreeMap<String, String>> = match api.get_opt(name).await {
        Ok(Some(object)) => serde_json::from_value(object.data["spec"]["selector"].clone()).ok(),
        _ => None,
    };
    match selector {
        Some(labels) if !labels.is_empty() => Proxy::gateway(DEFAULT_GATEWAY_NAMESPACE, labels),
        _ => Proxy::default(),
    }
}
