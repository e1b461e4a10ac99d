//! Data types cfnet reads and writes: the Cloud Foundry `Route` custom resource, the subset of the Istio
//! `VirtualService` that cfnet generates, the subset of the Gateway API `HTTPRoute` it generates instead
//! in gateway-api mode ([`gateway_api`]), the conditions and reasons it reports on a Route, and the one
//! home of the names shared by the crates (label and annotation keys, field manager, apiVersion). Data
//! only: no I/O. With the feature `fixtures`, [`fixtures`] builds Routes for tests and the benchmark.

pub mod condition;
pub mod crd;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod gateway_api;
pub mod reason;
pub mod route;
pub mod virtual_service;

pub use condition::{Condition, ConditionStatus, READY};
pub use crd::route_crd;
pub use reason::Reason;
pub use route::{
    AppProcess, DestinationApp, DestinationSelector, FINALIZER, Route, RouteDestination,
    RouteDomain, RouteSpec, RouteStatus,
};
pub use virtual_service::{
    Destination, HTTPMatchRequest, HTTPRoute, HTTPRouteDestination, HeaderOperations, Headers,
    PortSelector, StringMatch, VirtualService, VirtualServiceSpec,
};

/// API group of the Route. An ownerReference to a Route of this group marks an object as cfnet's (what the
/// Go controller wrote too, so an upgrade adopts its objects).
pub const ROUTE_GROUP: &str = "networking.cloudfoundry.org";
/// `apiVersion` of the Route, as Cloud Controller writes it and as ownerReferences name it.
pub const ROUTE_API_VERSION: &str = "networking.cloudfoundry.org/v1alpha1";
/// Field manager of every write of the RouteController (server-side applies and patches).
pub const FIELD_MANAGER: &str = "cfnet-routecontroller";

/// Route name on a Service (the Go controller's key); the controller watches only Services carrying it.
pub const ROUTE_GUID_LABEL: &str = "cloudfoundry.org/route_guid";
/// App guid of a destination, on its Service and in its selector.
pub const APP_GUID_LABEL: &str = "cloudfoundry.org/app_guid";
/// Process type of a destination, on its Service and in its selector.
pub const PROCESS_TYPE_LABEL: &str = "cloudfoundry.org/process_type";
/// Space of a Route (Cloud Controller's label); becomes the CF-Space-Id header.
pub const SPACE_GUID_LABEL: &str = "cloudfoundry.org/space_guid";
/// Organization of a Route (Cloud Controller's label); becomes the CF-Organization-Id header.
pub const ORG_GUID_LABEL: &str = "cloudfoundry.org/org_guid";

/// Label put on every Service, VirtualService and HTTPRoute cfnet writes, so that they can be selected and
/// watched.
/// Ownership itself is decided by the ownerReference to a Route (what the Go controller wrote too).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`] on cfnet's objects.
pub const MANAGED_BY_VALUE: &str = "cfnet-routecontroller";
/// Annotation on a VirtualService or HTTPRoute naming the FQDN it serves (upstream name).
pub const FQDN_ANNOTATION: &str = "cloudfoundry.org/fqdn";
/// Annotation on a Service naming the FQDN of the Route it was made for (upstream name).
pub const ROUTE_FQDN_ANNOTATION: &str = "cloudfoundry.org/route-fqdn";
