//! Data types cfnet reads and writes: the Cloud Foundry `Route` custom resource, the subset of the Istio
//! `VirtualService` that cfnet generates, the subset of the Gateway API `HTTPRoute` it generates instead
//! in gateway-api mode ([`gateway_api`]), and the conditions it reports on a Route. Data only: no I/O.

pub mod condition;
pub mod crd;
pub mod gateway_api;
pub mod route;
pub mod virtual_service;

pub use condition::{Condition, ConditionStatus, READY};
pub use crd::route_crd;
pub use route::{
    AppProcess, DestinationApp, DestinationSelector, FINALIZER, Route, RouteDestination,
    RouteDomain, RouteSpec, RouteStatus,
};
pub use virtual_service::{
    Destination, HTTPMatchRequest, HTTPRoute, HTTPRouteDestination, HeaderOperations, Headers,
    PortSelector, StringMatch, VirtualService, VirtualServiceSpec,
};

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
