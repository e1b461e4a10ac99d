//! The pure heart of cfnet: the Routes of a namespace → the Services and VirtualServices the cluster must
//! hold, and the problems of the routes that cannot be programmed. No I/O, no async, no clock.
//!
//! Two entry points share one implementation:
//! - [`translate`] takes a whole set of Routes (what `cfnet render` reads) and returns everything;
//! - [`translate_fqdn`] takes the Routes of one (namespace, FQDN) plus the cross-FQDN facts in
//!   [`Claims`], which is what the controller computes per work item from its in-memory index.

pub mod claims;
pub mod names;

use cfnet_api::{Route, VirtualService};
use k8s_openapi::api::core::v1::Service;

pub use claims::{ClaimOrder, Claims};
pub use names::{service_name, virtual_service_name};

/// Settings that come from the controller's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The gateway external routes are bound to (`ISTIO_GATEWAY_NAME`, e.g. `cf-system/istio-ingressgateway`).
    pub gateway: String,
}

/// The work item of the controller and the grouping of the translation: one VirtualService per key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FqdnKey {
    pub namespace: String,
    pub fqdn: String,
}

/// Why a route cannot be programmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// The route itself is wrong (weights, names, path, url, internal flag disagreeing with its FQDN).
    Invalid,
    /// Another route holds what this one needs (a destination guid, or the FQDN in another namespace).
    Conflict,
}

impl Reason {
    /// The condition reason written on the Route.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Invalid => "Invalid",
            Reason::Conflict => "Conflict",
        }
    }
}

/// One route that is left out of the output, and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    pub namespace: String,
    pub route: String,
    pub reason: Reason,
    /// What is wrong and what to fix, e.g. `weights must sum to 100, got 90`.
    pub message: String,
}

/// Everything one FQDN of one namespace needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FqdnTranslation {
    /// Services of the FQDN's programmed routes, routes in url order, destinations in order.
    pub services: Vec<Service>,
    /// `None` when no route of the FQDN can be programmed (then any existing one must go).
    pub virtual_service: Option<VirtualService>,
    /// Names of the routes that are programmed (Ready=True).
    pub programmed: Vec<String>,
    pub problems: Vec<Problem>,
}

/// Everything a set of Routes needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Translation {
    /// Routes in input order, destinations in order.
    pub services: Vec<Service>,
    /// Ordered by (FQDN, namespace).
    pub virtual_services: Vec<VirtualService>,
    /// Ordered by (namespace, route).
    pub problems: Vec<Problem>,
}

/// Translates the routes of one FQDN in one namespace. `routes` may be in any order.
pub fn translate_fqdn(
    _key: &FqdnKey,
    _routes: &[&Route],
    _claims: &dyn Claims,
    _settings: &Settings,
) -> FqdnTranslation {
    FqdnTranslation::default()
}

/// Translates a whole set of Routes (any namespaces, any order).
pub fn translate(_routes: &[Route], _settings: &Settings) -> Translation {
    Translation::default()
}
