//! Facts that cross FQDNs: who holds a destination guid in a namespace, and which namespace holds an
//! external FQDN. The oldest claim wins: creationTimestamp, then namespace, then name.
//!
//! Only routes that are valid on their own ([`crate::validate_route`]) claim anything: a broken route
//! never takes a Service name or an FQDN away from a working one.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use cfnet_api::Route;

use crate::FqdnKey;

/// Orders claims: older first. Routes without a creationTimestamp (render input) sort before every
/// timestamped route, then by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClaimOrder {
    /// RFC 3339 creationTimestamp; RFC 3339 UTC strings of one format order like their times.
    pub created: Option<String>,
    pub namespace: String,
    pub name: String,
}

/// Cross-FQDN facts the translation of one FQDN needs.
pub trait Claims {
    /// The route (name) that holds destination `guid` in `namespace`, if any.
    fn destination_holder(&self, namespace: &str, guid: &str) -> Option<&str>;
    /// The namespace that holds external FQDN `fqdn` on the ingress gateway, if any.
    fn external_fqdn_holder(&self, fqdn: &str) -> Option<&str>;
}

/// The namespace of a Route; a Route without one (render input) lives in `default`, as kubectl would put it.
pub fn route_namespace(route: &Route) -> &str {
    route.metadata.namespace.as_deref().unwrap_or("default")
}

/// The name of a Route (empty when absent; render rejects such input before translating).
pub fn route_name(route: &Route) -> &str {
    route.metadata.name.as_deref().unwrap_or("")
}

/// The claim order of a Route. The timestamp is written as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (fixed
/// width, always UTC) so that comparing the strings compares the times.
pub fn claim_order(route: &Route) -> ClaimOrder {
    let created = route.metadata.creation_timestamp.as_ref().map(|t| {
        let ts = t.0;
        format!(
            "{}.{:09}Z",
            ts.strftime("%Y-%m-%dT%H:%M:%S"),
            ts.subsec_nanosecond().max(0)
        )
    });
    ClaimOrder {
        created,
        namespace: route_namespace(route).to_owned(),
        name: route_name(route).to_owned(),
    }
}

/// The claimants of one destination guid or external FQDN, oldest first. Almost always one, so a
/// sorted `Vec` of shared orders rather than a `BTreeSet` (whose first node is some 800 bytes): with
/// 10,000 routes the claims were the largest part of the controller's index.
#[derive(Clone, Debug, Default)]
struct Claimants(Vec<Arc<ClaimOrder>>);

impl Claimants {
    fn insert(&mut self, order: Arc<ClaimOrder>) {
        if let Err(at) = self.0.binary_search(&order) {
            // Grow by one: a Vec's first allocation is for four.
            self.0.reserve_exact(1);
            self.0.insert(at, order);
        }
    }

    fn remove(&mut self, order: &ClaimOrder) {
        if let Ok(at) = self.0.binary_search_by(|o| o.as_ref().cmp(order)) {
            self.0.remove(at);
        }
    }

    fn first(&self) -> Option<&ClaimOrder> {
        self.0.first().map(Arc::as_ref)
    }

    fn iter(&self) -> impl Iterator<Item = &ClaimOrder> {
        self.0.iter().map(Arc::as_ref)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What one route claims.
#[derive(Clone, Debug)]
struct RouteClaims {
    order: Arc<ClaimOrder>,
    fqdn: String,
    /// Destination guids (deduplicated); empty when the route is invalid on its own.
    guids: Vec<String>,
    /// The route's external FQDN claim; `None` for internal or invalid routes.
    external: Option<String>,
}

/// An in-memory, incrementally updatable [`Claims`] implementation over a set of Routes.
///
/// `cfnet render` builds one from its whole input; the controller keeps one next to its index and
/// calls [`ClaimIndex::insert`] / [`ClaimIndex::remove`] on every watch event. Both return the
/// (namespace, FQDN) keys whose translation may have changed because a claim they compete for changed
/// hands — requeue those.
#[derive(Clone, Debug, Default)]
pub struct ClaimIndex {
    routes: HashMap<(String, String), RouteClaims>,
    /// (namespace, guid) -> claimants, oldest first.
    destinations: HashMap<(String, String), Claimants>,
    /// external FQDN -> claimants, oldest first.
    external: HashMap<String, Claimants>,
}

impl ClaimIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an index over `routes`.
    pub fn from_routes<'a>(routes: impl IntoIterator<Item = &'a Route>) -> Self {
        let mut index = Self::new();
        for route in routes {
            index.put(route);
        }
        index
    }

    /// Number of routes known to the index.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Adds or replaces a route. Returns the keys (sorted, deduplicated) of every route that competes with
    /// it for a destination guid or an external FQDN, before or after the change, including its own old
    /// and new key.
    pub fn insert(&mut self, route: &Route) -> Vec<FqdnKey> {
        let (old, new) = self.put(route);
        self.affected(route_namespace(route), old.as_ref(), Some(&new))
    }

    /// Adds or replaces a route; returns its old and new claims.
    fn put(&mut self, route: &Route) -> (Option<RouteClaims>, RouteClaims) {
        let namespace = route_namespace(route).to_owned();
        let name = route_name(route).to_owned();
        let old = self.take(&namespace, &name);

        let valid = crate::validate_route(route).is_ok();
        let mut guids: Vec<String> = if valid {
            route
                .spec
                .destinations
                .iter()
                .map(|d| d.guid.clone())
                .collect()
        } else {
            Vec::new()
        };
        guids.sort();
        guids.dedup();
        let fqdn = route.spec.fqdn();
        let claims = RouteClaims {
            order: Arc::new(claim_order(route)),
            external: (valid && !route.spec.domain.internal).then(|| fqdn.clone()),
            fqdn,
            guids,
        };
        for guid in &claims.guids {
            self.destinations
                .entry((namespace.clone(), guid.clone()))
                .or_default()
                .insert(claims.order.clone());
        }
        if let Some(fqdn) = &claims.external {
            self.external
                .entry(fqdn.clone())
                .or_default()
                .insert(claims.order.clone());
        }
        self.routes.insert((namespace, name), claims.clone());
        (old, claims)
    }

    /// Removes a route. Returns the keys affected, as [`ClaimIndex::insert`] does.
    pub fn remove(&mut self, namespace: &str, name: &str) -> Vec<FqdnKey> {
        match self.take(namespace, name) {
            Some(old) => self.affected(namespace, Some(&old), None),
            None => Vec::new(),
        }
    }

    /// Removes a route's claims and returns them.
    fn take(&mut self, namespace: &str, name: &str) -> Option<RouteClaims> {
        let old = self
            .routes
            .remove(&(namespace.to_owned(), name.to_owned()))?;
        for guid in &old.guids {
            let key = (namespace.to_owned(), guid.clone());
            if let Some(set) = self.destinations.get_mut(&key) {
                set.remove(&old.order);
                if set.is_empty() {
                    self.destinations.remove(&key);
                }
            }
        }
        if let Some(fqdn) = &old.external
            && let Some(set) = self.external.get_mut(fqdn)
        {
            set.remove(&old.order);
            if set.is_empty() {
                self.external.remove(fqdn);
            }
        }
        Some(old)
    }

    fn affected(
        &self,
        namespace: &str,
        old: Option<&RouteClaims>,
        new: Option<&RouteClaims>,
    ) -> Vec<FqdnKey> {
        let mut keys = BTreeSet::new();
        for claims in old.iter().chain(new.iter()) {
            keys.insert(FqdnKey {
                namespace: namespace.to_owned(),
                fqdn: claims.fqdn.clone(),
            });
            for guid in &claims.guids {
                if let Some(set) = self.destinations.get(&(namespace.to_owned(), guid.clone())) {
                    keys.extend(set.iter().filter_map(|o| self.key_of(o)));
                }
            }
            if let Some(fqdn) = &claims.external
                && let Some(set) = self.external.get(fqdn)
            {
                keys.extend(set.iter().filter_map(|o| self.key_of(o)));
            }
        }
        keys.into_iter().collect()
    }

    fn key_of(&self, order: &ClaimOrder) -> Option<FqdnKey> {
        self.routes
            .get(&(order.namespace.clone(), order.name.clone()))
            .map(|c| FqdnKey {
                namespace: order.namespace.clone(),
                fqdn: c.fqdn.clone(),
            })
    }
}

impl Claims for ClaimIndex {
    fn destination_holder(&self, namespace: &str, guid: &str) -> Option<&str> {
        self.destinations
            .get(&(namespace.to_owned(), guid.to_owned()))
            .and_then(|set| set.first())
            .map(|o| o.name.as_str())
    }

    fn external_fqdn_holder(&self, fqdn: &str) -> Option<&str> {
        self.external
            .get(fqdn)
            .and_then(|set| set.first())
            .map(|o| o.namespace.as_str())
    }
}
