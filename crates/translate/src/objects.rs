//! The objects cfnet writes, field for field as the Go controller wrote them (§2.4, §2.5 of the
//! upstream reference), plus our managed-by label, the Service port on mesh destinations, and the FQDN in
//! lower case (names, hosts, annotations; upstream's own for every lower-case FQDN).

use std::collections::{BTreeMap, HashSet};

use cfnet_api::{
    APP_GUID_LABEL, Destination, FQDN_ANNOTATION, HTTPMatchRequest, HTTPRoute,
    HTTPRouteDestination, HeaderOperations, Headers, MANAGED_BY_LABEL, MANAGED_BY_VALUE,
    ORG_GUID_LABEL, PROCESS_TYPE_LABEL, PortSelector, ROUTE_API_VERSION, ROUTE_FQDN_ANNOTATION,
    ROUTE_GUID_LABEL, Route, RouteDestination, SPACE_GUID_LABEL, StringMatch, VirtualService,
    VirtualServiceSpec,
};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::claims::{route_name, route_namespace};
use crate::{FqdnKey, service_name, virtual_service_name};

/// Destination host of the entry of a lone route without destinations: Envoy answers 503, not 404.
pub const PLACEHOLDER_HOST: &str = "no-destinations";

/// Every label key cfnet sets on a Service. A controller comparing a Service with its desired form needs
/// no other: an apply leaves others' labels alone.
pub const SERVICE_LABELS: [&str; 4] = [
    APP_GUID_LABEL,
    PROCESS_TYPE_LABEL,
    ROUTE_GUID_LABEL,
    MANAGED_BY_LABEL,
];
/// The only Route labels the translation reads (the CF-Space-Id and CF-Organization-Id headers).
pub const ROUTE_LABELS: [&str; 2] = [SPACE_GUID_LABEL, ORG_GUID_LABEL];

/// `{apiVersion: networking.cloudfoundry.org/v1alpha1, kind: Route, name, uid}`; no controller flag, as
/// upstream. A Route without a uid (render input without `metadata.uid`) gets an empty uid.
pub(crate) fn owner_reference(route: &Route) -> OwnerReference {
    OwnerReference {
        api_version: ROUTE_API_VERSION.to_owned(),
        kind: "Route".to_owned(),
        name: route_name(route).to_owned(),
        uid: route.metadata.uid.clone().unwrap_or_default(),
        controller: None,
        block_owner_deletion: None,
    }
}

/// The Services of one route: one per destination, in destination order. The route must be valid
/// ([`crate::validate_route`]); ports outside the i32 range cannot occur then.
pub fn route_services(route: &Route) -> Vec<Service> {
    let namespace = route_namespace(route);
    let fqdn = route.spec.fqdn();
    route
        .spec
        .destinations
        .iter()
        .map(|d| {
            let labels = BTreeMap::from([
                (APP_GUID_LABEL.to_owned(), d.app.guid.clone()),
                (PROCESS_TYPE_LABEL.to_owned(), d.app.process.type_.clone()),
                (ROUTE_GUID_LABEL.to_owned(), route_name(route).to_owned()),
                (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
            ]);
            Service {
                metadata: ObjectMeta {
                    name: Some(service_name(&d.guid)),
                    namespace: Some(namespace.to_owned()),
                    labels: Some(labels),
                    annotations: Some(BTreeMap::from([(
                        ROUTE_FQDN_ANNOTATION.to_owned(),
                        fqdn.clone(),
                    )])),
                    owner_references: Some(vec![owner_reference(route)]),
                    ..ObjectMeta::default()
                },
                spec: Some(ServiceSpec {
                    // Upstream copied the map; an empty one was omitted by Go's omitempty.
                    selector: (!d.selector.match_labels.is_empty())
                        .then(|| d.selector.match_labels.clone()),
                    ports: Some(vec![ServicePort {
                        name: Some("http".to_owned()),
                        port: i32::try_from(d.port).unwrap_or_default(),
                        // Needed for server-side apply (ports are keyed by port and protocol).
                        protocol: Some("TCP".to_owned()),
                        ..ServicePort::default()
                    }]),
                    ..ServiceSpec::default()
                }),
                status: None,
            }
        })
        .collect()
}

/// The path prefix Envoy matches for a route's path: istiod turns an http entry without `match` into
/// prefix `/` (`TranslateRouteMatch`), so path `/` and no path are the same Envoy route. Prefixes are
/// case-sensitive (cfnet never sets `ignoreUriCase`).
pub(crate) fn envoy_path_match(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}

/// The VirtualService of one FQDN. `all` are every route of the FQDN and `valid` the programmed ones,
/// both sorted by url descending. `mesh`: bound to the `mesh` gateway (an internal FQDN).
pub(crate) fn virtual_service(
    key: &FqdnKey,
    all: &[&Route],
    valid: &[&Route],
    mesh: bool,
    gateway: String,
) -> VirtualService {
    // Upstream skipped a destination-less route when its FQDN had other routes and gave a lone one the
    // placeholder. We count only programmed routes, and when none has destinations every one gets the
    // placeholder (upstream wrote a VirtualService without `http` there, which Istio rejects), once per
    // Envoy match: a second identical entry could never be reached.
    let any_destinations = valid.iter().any(|r| !r.spec.destinations.is_empty());
    let mut placeholder_matches = HashSet::new();
    let http = valid
        .iter()
        .filter_map(|route| {
            let destinations = &route.spec.destinations;
            let route_destinations = if !destinations.is_empty() {
                http_route_destinations(route, mesh)
            } else if any_destinations
                || !placeholder_matches.insert(envoy_path_match(route.spec.path()))
            {
                return None;
            } else {
                vec![HTTPRouteDestination {
                    destination: Destination {
                        host: PLACEHOLDER_HOST.to_owned(),
                        port: None,
                    },
                    ..HTTPRouteDestination::default()
                }]
            };
            let path = route.spec.path();
            let match_ = if path.is_empty() {
                Vec::new()
            } else {
                vec![HTTPMatchRequest {
                    uri: Some(StringMatch {
                        prefix: Some(path.to_owned()),
                    }),
                }]
            };
            Some(HTTPRoute {
                match_,
                route: route_destinations,
            })
        })
        .collect();

    let mut vs = VirtualService::new(
        &virtual_service_name(&key.fqdn),
        VirtualServiceSpec {
            hosts: vec![key.fqdn.to_string()],
            gateways: vec![gateway],
            http,
        },
    );
    vs.metadata = fqdn_child_metadata(key, virtual_service_name(&key.fqdn), all);
    vs
}

/// The metadata of an FQDN's routing object (VirtualService, HTTPRoute): in the FQDN's namespace, our
/// managed-by label, the FQDN annotation, an ownerReference to every Route of the FQDN.
pub(crate) fn fqdn_child_metadata(key: &FqdnKey, name: String, all: &[&Route]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(key.namespace.to_string()),
        labels: Some(BTreeMap::from([(
            MANAGED_BY_LABEL.to_owned(),
            MANAGED_BY_VALUE.to_owned(),
        )])),
        annotations: Some(BTreeMap::from([(
            FQDN_ANNOTATION.to_owned(),
            key.fqdn.to_string(),
        )])),
        owner_references: Some(all.iter().map(|r| owner_reference(r)).collect()),
        ..ObjectMeta::default()
    }
}

/// Weights as upstream: explicit when set (validated to sum to 100), else an even split with the
/// remainder on the first destination. One per destination, in order.
pub fn destination_weights(route: &Route) -> Vec<i32> {
    let dests = &route.spec.destinations;
    let n = i32::try_from(dests.len()).unwrap_or(i32::MAX);
    let even = 100 / n.max(1);
    let remainder = 100 - even.saturating_mul(n).min(100);
    dests
        .iter()
        .enumerate()
        .map(|(i, d)| match d.weight {
            Some(w) => i32::try_from(w).unwrap_or_default(),
            None if i == 0 => even + remainder,
            None => even,
        })
        .collect()
}

/// The four CF headers of a destination, sorted by name; values may be empty (a Route without the space
/// or org label).
pub(crate) fn cf_headers(route: &Route, d: &RouteDestination) -> [(&'static str, String); 4] {
    let labels = route.metadata.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key)).cloned().unwrap_or_default();
    [
        ("CF-App-Id", d.app.guid.clone()),
        ("CF-App-Process-Type", d.app.process.type_.clone()),
        ("CF-Organization-Id", label(ORG_GUID_LABEL)),
        ("CF-Space-Id", label(SPACE_GUID_LABEL)),
    ]
}

/// The destinations of an entry: weights of [`destination_weights`] (0 is omitted on output) and the CF
/// headers. On `mesh` each destination names its Service port (not upstream): a sidecar's request to
/// `http://backend.apps.internal` is on port 80, and without a port istiod sends it to cluster
/// `outbound|80||s-<guid>...`, which does not exist.
fn http_route_destinations(route: &Route, mesh: bool) -> Vec<HTTPRouteDestination> {
    route
        .spec
        .destinations
        .iter()
        .zip(destination_weights(route))
        .map(|(d, weight)| HTTPRouteDestination {
            destination: Destination {
                host: service_name(&d.guid),
                // Validated to be 1–65535.
                port: mesh.then(|| PortSelector {
                    number: u32::try_from(d.port).unwrap_or_default(),
                }),
            },
            weight,
            headers: Some(Headers {
                request: Some(HeaderOperations {
                    set: cf_headers(route, d)
                        .into_iter()
                        .map(|(name, value)| (name.to_owned(), value))
                        .collect(),
                }),
            }),
        })
        .collect()
}
