//! Facts that cross FQDNs: who holds a destination guid in a namespace, and which namespace holds an
//! FQDN. The oldest claim wins: creationTimestamp, then namespace, then name.
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
    /// creationTimestamp as (seconds, nanoseconds) since the Unix epoch.
    pub created: Option<(i64, i32)>,
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

/// Cross-FQDN facts the translation of one FQDN needs.
pub trait Claims {
    /// The route (name) that holds destination `guid` in `namespace`, if any.
    fn destination_holder(&self, namespace: &str, guid: &str) -> Option<&str>;
    /// The namespace that holds FQDN `fqdn` (lower case), if any: external FQDNs on the ingress gateway
    /// and, since two mesh VirtualServices with one host are undefined behaviour in Istio (IST0109),
    /// internal ones too. The name is from when only external FQDNs were claimed; the controller
    /// implements this trait, so a rename waits for its next change.
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

/// The claim order of a Route.
pub fn claim_order(route: &Route) -> ClaimOrder {
    ClaimOrder {
        created: route
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| (t.0.as_second(), t.0.subsec_nanosecond())),
        namespace: route_namespace(route).into(),
        name: route_name(route).into(),
    }
}

/// The claimants of one destination guid or FQDN, oldest first. Almost always one, so a
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
    fqdn: Arc<str>,
    /// Destination guids (deduplicated); empty when the route is invalid on its own.
    guids: Box<[Arc<str>]>,
    /// Whether the route claims its FQDN (internal or external); not when it is invalid on its own.
    holds_fqdn: bool,
}

/// An in-memory, incrementally updatable [`Claims`] implementation over a set of Routes.
///
/// `cfnet render` builds one from its whole input; the controller keeps one next to its index and
/// calls [`ClaimIndex::insert`] / [`ClaimIndex::remove`] on every watch event. Both return the
/// (namespace, FQDN) keys whose translation may have changed because a claim they compete for changed
/// hands — requeue those.
///
/// Maps are keyed by namespace first, so that one shared copy of a namespace serves all its routes,
/// and a route's name, FQDN and guids are each kept once, shared by the maps that name them.
#[derive(Clone, Debug, Default)]
pub struct ClaimIndex {
    /// namespace -> route name -> claims.
    routes: HashMap<Arc<str>, HashMap<Arc<str>, RouteClaims>>,
    /// namespace -> destination guid -> claimants, oldest first.
    destinations: HashMap<Arc<str>, HashMap<Arc<str>, Claimants>>,
    /// FQDN -> claimants, oldest first.
    fqdns: HashMap<Arc<str>, Claimants>,
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
        self.routes.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Adds or replaces a route. Returns the keys (sorted, deduplicated) of every route that competes with
    /// it for a destination guid or an FQDN, before or after the change, including its own old and new
    /// key.
    pub fn insert(&mut self, route: &Route) -> Vec<FqdnKey> {
        let (old, new) = self.put(route);
        self.affected(&new.order.namespace, old.as_ref(), Some(&new))
    }

    /// The shared copy of `namespace`.
    fn namespace(&self, namespace: &str) -> Arc<str> {
        match self.routes.get_key_value(namespace) {
            Some((shared, _)) => shared.clone(),
            None => namespace.into(),
        }
    }

    /// Adds or replaces a route; returns its old and new claims.
    fn put(&mut self, route: &Route) -> (Option<RouteClaims>, RouteClaims) {
        let namespace = self.namespace(route_namespace(route));
        let old = self.take(&namespace, route_name(route));

        let valid = crate::validate_route(route).is_ok();
        let mut guids: Vec<&str> = if valid {
            route
                .spec
                .destinations
                .iter()
                .map(|d| d.guid.as_str())
                .collect()
        } else {
            Vec::new()
        };
        guids.sort_unstable();
        guids.dedup();
        let mut order = claim_order(route);
        order.namespace = namespace.clone();
        let claims = RouteClaims {
            order: Arc::new(order),
            fqdn: route.spec.fqdn().into(),
            guids: guids.into_iter().map(Arc::from).collect(),
            holds_fqdn: valid,
        };
        if !claims.guids.is_empty() {
            let destinations = self.destinations.entry(namespace.clone()).or_default();
            for guid in &claims.guids {
                destinations
                    .entry(guid.clone())
                    .or_default()
                    .insert(claims.order.clone());
            }
        }
        if claims.holds_fqdn {
            self.fqdns
                .entry(claims.fqdn.clone())
                .or_default()
                .insert(claims.order.clone());
        }
        self.routes
            .entry(namespace)
            .or_default()
            .insert(claims.order.name.clone(), claims.clone());
        (old, claims)
    }

    /// Removes a route. Returns the keys affected, as [`ClaimIndex::insert`] does.
    pub fn remove(&mut self, namespace: &str, name: &str) -> Vec<FqdnKey> {
        match self.take(namespace, name) {
            Some(old) => self.affected(&old.order.namespace, Some(&old), None),
            None => Vec::new(),
        }
    }

    /// Removes a route's claims and returns them.
    fn take(&mut self, namespace: &str, name: &str) -> Option<RouteClaims> {
        let routes = self.routes.get_mut(namespace)?;
        let old = routes.remove(name)?;
        if routes.is_empty() {
            self.routes.remove(namespace);
        }
        if let Some(destinations) = self.destinations.get_mut(namespace) {
            for guid in &old.guids {
                if let Some(set) = destinations.get_mut(guid) {
                    set.remove(&old.order);
                    if set.is_empty() {
                        destinations.remove(guid);
                    }
                }
            }
            if destinations.is_empty() {
                self.destinations.remove(namespace);
            }
        }
        if old.holds_fqdn
            && let Some(set) = self.fqdns.get_mut(&old.fqdn)
        {
            set.remove(&old.order);
            if set.is_empty() {
                self.fqdns.remove(&old.fqdn);
            }
        }
        Some(old)
    }

    fn affected(
        &self,
        namespace: &Arc<str>,
        old: Option<&RouteClaims>,
        new: Option<&RouteClaims>,
    ) -> Vec<FqdnKey> {
        let mut keys = BTreeSet::new();
        let destinations = self.destinations.get(namespace);
        for claims in old.iter().chain(new.iter()) {
            keys.insert(FqdnKey {
                namespace: namespace.clone(),
                fqdn: claims.fqdn.clone(),
            });
            for guid in &claims.guids {
                if let Some(set) = destinations.and_then(|d| d.get(guid)) {
                    keys.extend(set.iter().filter_map(|o| self.key_of(o)));
                }
            }
            if claims.holds_fqdn
                && let Some(set) = self.fqdns.get(&claims.fqdn)
            {
                keys.extend(set.iter().filter_map(|o| self.key_of(o)));
            }
        }
        keys.into_iter().collect()
    }

    fn key_of(&self, order: &ClaimOrder) -> Option<FqdnKey> {
        let claims = self.routes.get(&order.namespace)?.get(&order.name)?;
        Some(FqdnKey {
            namespace: order.namespace.clone(),
            fqdn: claims.fqdn.clone(),
        })
    }
}

impl Claims for ClaimIndex {
    fn destination_holder(&self, namespace: &str, guid: &str) -> Option<&str> {
        self.destinations
            .get(namespace)?
            .get(guid)?
            .first()
            .map(|o| &*o.name)
    }

    fn external_fqdn_holder(&self, fqdn: &str) -> Option<&str> {
        self.fqdns
            .get(fqdn)
            .and_then(|set| set.first())
            .map(|o| &*o.namespace)
    }
}
