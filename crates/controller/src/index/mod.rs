//! The in-memory index every reconcile reads: Routes grouped by (namespace, FQDN), the cross-FQDN claims,
//! and one [`ChildStore`] per kind of child (Services, VirtualServices, HTTPRoutes) with a secondary index
//! by FQDN.
//!
//! One index under one lock instead of kube's reflector `Store`s: the reconcile needs secondary indexes
//! (routes by FQDN, claim holders, children by FQDN, VirtualService name → FQDN) that must move together
//! with the primary maps, and `Store` has no secondary indexes. Two ways in: the watch tasks (watch.rs)
//! feed it with the Init / InitApply / InitDone semantics a reflector has, and [`Index::record_write`]
//! takes back what the reconcile's own writes returned (the one back edge of the data flow).

mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cfnet_api::gateway_api::HTTPRoute;
use cfnet_api::{Route, VirtualService};
use cfnet_translate::{ClaimIndex, Claims, FqdnKey, FqdnTranslation, ROUTE_LABELS};
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

pub(crate) use self::store::ChildStore;
use crate::child::{Cached, Child, ChildMeta};
use crate::packed::PackedRoute;
use crate::small_set::SmallSet;

/// The index behind its lock. A poisoned lock only means a task panicked mid-update; every update is a
/// few map operations that leave the maps usable, so the guard is taken anyway.
pub(crate) fn read(index: &RwLock<Index>) -> RwLockReadGuard<'_, Index> {
    index.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn write(index: &RwLock<Index>) -> RwLockWriteGuard<'_, Index> {
    index.write().unwrap_or_else(|p| p.into_inner())
}

/// (namespace, name). The index's copies share their strings with the cached objects.
pub type ObjId = (Arc<str>, Arc<str>);

pub fn obj_id<K: ResourceExt>(obj: &K) -> ObjId {
    (
        obj.namespace().unwrap_or_default().into(),
        obj.name_any().into(),
    )
}

/// The ids in `scope` (a namespace, or all) that a re-list did not return.
fn not_listed<'a>(
    cached: impl Iterator<Item = &'a ObjId>,
    scope: Option<&str>,
    listed: &BTreeSet<ObjId>,
) -> Vec<ObjId> {
    cached
        .filter(|id| scope.is_none_or(|ns| &*id.0 == ns) && !listed.contains(*id))
        .cloned()
        .collect()
}

/// A Route as the index keeps it: without what no reconcile reads. `managedFields` (a JSON tree per
/// field manager) is the largest part of a Route as served; annotations (kubectl's last-applied copy
/// among them) and the labels other than [`ROUTE_LABELS`] (Cloud Controller sets ten) are never read.
/// With 10,000 routes this is most of a cached Route's memory. The watch converts (and packs) each
/// Route as it arrives, outside the index lock.
pub(crate) fn cached_route(mut route: Route) -> Route {
    let meta = &mut route.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    if let Some(labels) = meta.labels.as_mut() {
        labels.retain(|k, _| ROUTE_LABELS.contains(&k.as_str()));
        if labels.is_empty() {
            meta.labels = None;
        }
    }
    route
}

/// Cached children of one kind that a reconcile of a key looks at, by name.
pub type Children<C> = BTreeMap<Arc<str>, Arc<Cached<C>>>;

/// The children one reconcile of a key reads, taken under the lock together with its Routes.
#[derive(Default)]
pub struct Snapshot {
    /// Services whose FQDN annotation names the key or whose name a desired one has.
    pub services: Children<Service>,
    /// VirtualServices likewise (a foreign one named like ours has no annotation).
    pub virtual_services: Children<VirtualService>,
    /// HTTPRoutes likewise.
    pub http_routes: Children<HTTPRoute>,
    /// Whether the API server serves HTTPRoutes (the Gateway API CRDs are installed); see
    /// [`Index::http_routes_served`].
    pub http_routes_served: bool,
}

/// A write of the reconcile, as [`Index::record_write`] takes it back.
pub(crate) enum ChildWrite<C> {
    /// What the API returned for an apply (with its repair patch, if one was needed).
    Applied(Cached<C>),
    /// Deleted by the reconcile (the watch's deletion may come later).
    Deleted(ObjId),
}

#[derive(Default)]
pub struct Index {
    routes: HashMap<FqdnKey, SmallSet<PackedRoute>>,
    route_keys: HashMap<ObjId, FqdnKey>,
    /// Destination guid and external FQDN claims, oldest first.
    claims: ClaimIndex,
    /// (namespace, hash of vs-<hash>) → key, for every key that has Routes (maps a foreign VS, or
    /// HTTPRoute `hr-<hash>[-…]`, to its key).
    vs_names: HashMap<VsId, FqdnKey>,
    pub(crate) services: ChildStore<Service>,
    pub(crate) virtual_services: ChildStore<VirtualService>,
    pub(crate) http_routes: ChildStore<HTTPRoute>,
    /// The API server serves HTTPRoutes (set by the discovery of controller.rs). While it does not, a
    /// reconcile does not try to write them and says why on the Route's status instead.
    pub(crate) http_routes_served: bool,
    /// One shared copy of each namespace name seen (a handful per cluster; never pruned), used by
    /// every id and key above instead of a copy each.
    namespaces: HashSet<Arc<str>>,
}

impl Claims for Index {
    fn destination_holder(&self, namespace: &str, guid: &str) -> Option<&str> {
        self.claims.destination_holder(namespace, guid)
    }

    fn external_fqdn_holder(&self, fqdn: &str) -> Option<&str> {
        self.claims.external_fqdn_holder(fqdn)
    }
}

/// Does a change from `old` to `new` matter to the translation or the finalizer flow? Status-only and
/// finalizer-only updates (our own patches among them) do not enqueue the key again.
fn route_changed(old: &Route, new: &Route) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        || old.metadata.uid != new.metadata.uid
        || old.metadata.generation != new.metadata.generation
}

/// A key's VirtualService name, `vs-<hex sha256(fqdn)>`, as (namespace, the 32 bytes of the hash):
/// 48 bytes in place instead of a 67-character string per route.
type VsId = (Arc<str>, [u8; 32]);

fn vs_id(key: &FqdnKey) -> VsId {
    (
        key.namespace.clone(),
        Sha256::digest(key.fqdn.as_bytes()).into(),
    )
}

/// The [`VsId`] of a VirtualService name, if it has the `vs-<64 hex digits>` form.
fn vs_id_of_name(namespace: &Arc<str>, name: &str) -> Option<VsId> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(name.strip_prefix("vs-")?, &mut hash).ok()?;
    Some((namespace.clone(), hash))
}

/// The [`VsId`] of an HTTPRoute name of the form `hr-<64 hex digits>` or `hr-<64 hex digits>-<shard>`.
fn hr_id_of_name(namespace: &Arc<str>, name: &str) -> Option<VsId> {
    let (hash, shard) = name.strip_prefix("hr-")?.split_at_checked(64)?;
    if !(shard.is_empty() || shard.starts_with('-')) {
        return None;
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hash, &mut bytes).ok()?;
    Some((namespace.clone(), bytes))
}

impl Index {
    /// The shared copy of `namespace`.
    fn namespace(&mut self, namespace: &str) -> Arc<str> {
        if let Some(shared) = self.namespaces.get(namespace) {
            return shared.clone();
        }
        let shared: Arc<str> = namespace.into();
        self.namespaces.insert(shared.clone());
        shared
    }

    /// The copy of `key` the index already keeps, if any, so that its maps share one.
    fn shared_key(&self, key: FqdnKey) -> FqdnKey {
        if let Some((shared, _)) = self.routes.get_key_value(&key) {
            return shared.clone();
        }
        for by_key in [
            &self.services.by_key,
            &self.virtual_services.by_key,
            &self.http_routes.by_key,
        ] {
            if let Some((shared, _)) = by_key.get_key_value(&key) {
                return shared.clone();
            }
        }
        key
    }

    /// Replaces a child's namespace, FQDN and owner names with the copies the index already keeps.
    fn share_strings(&mut self, meta: &mut ChildMeta) {
        meta.namespace = self.namespace(&meta.namespace);
        if let Some(key) = meta.fqdn_key() {
            meta.fqdn = Some(self.shared_key(key).fqdn);
        }
        for owner in meta.owners.iter_mut() {
            let id = (meta.namespace.clone(), owner.clone());
            if let Some(((_, name), _)) = self.route_keys.get_key_value(&id) {
                *owner = name.clone();
            }
        }
    }

    // ---- Routes -------------------------------------------------------------------------------

    /// `apply_packed_route` of a Route as served (tests).
    #[cfg(test)]
    pub fn apply_route(&mut self, route: Route) -> BTreeSet<FqdnKey> {
        self.apply_packed_route(PackedRoute::new(cached_route(route)))
    }

    /// Adds or replaces a Route, packed as it arrived (outside the lock; a re-list buffers them);
    /// returns the keys to reconcile (old and new FQDN, and the keys whose claim holder changed).
    pub fn apply_packed_route(&mut self, packed: PackedRoute) -> BTreeSet<FqdnKey> {
        let route = packed.unpack();
        let namespace = self.namespace(route.metadata.namespace.as_deref().unwrap_or_default());
        let id = (namespace, packed.shared_name());
        let key = FqdnKey {
            namespace: id.0.clone(),
            fqdn: route.spec.fqdn().into(),
        };
        let mut affected = BTreeSet::new();
        if let Some(old) = self.route(&id)
            && !route_changed(&old, &route)
        {
            // Keep the newest object (status, finalizers) without re-enqueueing.
            if let Some(group) = self.routes.get_mut(&key) {
                group.insert(packed);
            }
            return affected;
        }
        self.remove_route(&id, &mut affected);
        let key = self.shared_key(key);
        self.claim(&route, &mut affected);
        let group = self.routes.entry(key.clone()).or_default();
        if group.is_empty() {
            self.vs_names.insert(vs_id(&key), key.clone());
        }
        group.insert(packed);
        self.route_keys.insert(id, key.clone());
        affected.insert(key);
        affected
    }

    pub fn delete_route(&mut self, id: &ObjId) -> BTreeSet<FqdnKey> {
        let mut affected = BTreeSet::new();
        self.remove_route(id, &mut affected);
        affected
    }

    fn route(&self, id: &ObjId) -> Option<Arc<Route>> {
        let key = self.route_keys.get(id)?;
        Some(self.routes.get(key)?.get(&id.1)?.unpack())
    }

    fn remove_route(&mut self, id: &ObjId, affected: &mut BTreeSet<FqdnKey>) {
        let Some(key) = self.route_keys.remove(id) else {
            return;
        };
        let Some(group) = self.routes.get_mut(&key) else {
            return;
        };
        let old = group.remove(&id.1);
        if group.is_empty() {
            self.routes.remove(&key);
            self.vs_names.remove(&vs_id(&key));
        }
        if old.is_some() {
            affected.extend(self.claims.remove(&id.0, &id.1));
        }
        affected.insert(key);
    }

    /// A live route claims its destination guids and external FQDN (the translation core's
    /// `ClaimIndex` decides what a valid claim is); a route being deleted claims nothing, so the next
    /// claimant takes over at once.
    fn claim(&mut self, route: &Route, affected: &mut BTreeSet<FqdnKey>) {
        if route.metadata.deletion_timestamp.is_none() {
            affected.extend(self.claims.insert(route));
        } else {
            affected.extend(
                self.claims
                    .remove(&route.namespace().unwrap_or_default(), &route.name_any()),
            );
        }
    }

    /// Replaces the Routes in `scope` (a namespace, or all) after a (re-)list.
    pub fn replace_routes(
        &mut self,
        scope: Option<&str>,
        routes: Vec<PackedRoute>,
    ) -> BTreeSet<FqdnKey> {
        let listed: BTreeSet<ObjId> = routes.iter().map(PackedRoute::id).collect();
        let gone = not_listed(self.route_keys.keys(), scope, &listed);
        let mut affected = BTreeSet::new();
        for id in gone {
            self.remove_route(&id, &mut affected);
        }
        for r in routes {
            affected.extend(self.apply_packed_route(r));
        }
        affected
    }

    // ---- Children, fed by the watches ------------------------------------------------------------

    /// Adds or replaces a child as the watch delivered it; returns the keys to reconcile.
    pub fn apply_child<C: Child>(&mut self, child: Cached<C>) -> BTreeSet<FqdnKey> {
        let mut affected = BTreeSet::new();
        self.upsert(child, &mut affected);
        affected
    }

    /// A deletion the watch reported at revision `deleted_at`; returns the keys to reconcile.
    pub fn delete_child<C: Child>(
        &mut self,
        id: &ObjId,
        deleted_at: Option<&String>,
    ) -> BTreeSet<FqdnKey> {
        C::store_mut(self).bury(id.clone(), deleted_at.map(String::as_str));
        let mut affected = BTreeSet::new();
        self.remove_child::<C>(id, &mut affected);
        affected
    }

    /// Replaces the children of kind `C` in `scope` (a namespace, or all) after a (re-)list.
    pub fn replace_children<C: Child>(
        &mut self,
        scope: Option<&str>,
        children: Vec<Cached<C>>,
    ) -> BTreeSet<FqdnKey> {
        let listed: BTreeSet<ObjId> = children.iter().map(|c| c.meta.id()).collect();
        let gone = C::store(self).not_listed(scope, &listed);
        let mut affected = BTreeSet::new();
        for id in gone {
            self.remove_child::<C>(&id, &mut affected);
        }
        for c in children {
            self.upsert(c, &mut affected);
        }
        affected
    }

    // ---- The one back edge: the reconcile's own writes --------------------------------------------

    /// Records what a write of the reconcile left on the API server: the response of an apply, or a
    /// delete. Without it, the next reconcile of the key, which may run before the watch delivers the
    /// same change, would see the old object and write again. This is the only way data
    /// flows back from the writes into the index; everything else comes from the watches. An apply
    /// response older than what the watch delivered (or than a deletion it reported) is dropped, see
    /// [`ChildStore::superseded`]. Enqueues nothing: the reconcile that wrote already acts on it.
    pub fn record_write<C: Child>(&mut self, write: ChildWrite<C>) {
        let mut ignored = BTreeSet::new();
        match write {
            ChildWrite::Applied(child) => self.upsert(child, &mut ignored),
            ChildWrite::Deleted(id) => self.remove_child::<C>(&id, &mut ignored),
        }
    }

    fn upsert<C: Child>(&mut self, mut child: Cached<C>, affected: &mut BTreeSet<FqdnKey>) {
        self.share_strings(&mut child.meta);
        if C::store(self).superseded(&child.meta) {
            return;
        }
        self.remove_child::<C>(&child.meta.id(), affected);
        self.child_keys::<C>(&child.meta, affected);
        // `share_strings` made the key the index's copy already.
        let key = child.meta.fqdn_key();
        C::store_mut(self).insert(child, key);
    }

    fn remove_child<C: Child>(&mut self, id: &ObjId, affected: &mut BTreeSet<FqdnKey>) {
        if let Some(old) = C::store_mut(self).remove(id) {
            self.child_keys::<C>(&old.meta, affected);
        }
    }

    /// The keys a change of a child concerns: the one its FQDN annotation names, and the kind's others.
    fn child_keys<C: Child>(&self, meta: &ChildMeta, out: &mut BTreeSet<FqdnKey>) {
        out.extend(meta.fqdn_key());
        C::related_keys(self, meta, out);
    }

    /// The keys of the Routes that own `meta`.
    pub(crate) fn owners_keys(&self, meta: &ChildMeta, out: &mut BTreeSet<FqdnKey>) {
        for owner in &meta.owners {
            if let Some(k) = self
                .route_keys
                .get(&(meta.namespace.clone(), owner.clone()))
            {
                out.insert(k.clone());
            }
        }
    }

    /// The key (with Routes) whose VirtualService name `meta` holds, if it has the `vs-<hash>` form.
    pub(crate) fn virtual_service_name_key(&self, meta: &ChildMeta, out: &mut BTreeSet<FqdnKey>) {
        if let Some(k) =
            vs_id_of_name(&meta.namespace, &meta.name).and_then(|id| self.vs_names.get(&id))
        {
            out.insert(k.clone());
        }
    }

    /// The key (with Routes) whose HTTPRoute name `meta` holds: `hr-<hash>`, or a shard `hr-<hash>-…`.
    pub(crate) fn http_route_name_key(&self, meta: &ChildMeta, out: &mut BTreeSet<FqdnKey>) {
        if let Some(k) =
            hr_id_of_name(&meta.namespace, &meta.name).and_then(|id| self.vs_names.get(&id))
        {
            out.insert(k.clone());
        }
    }

    // ---- Reads ------------------------------------------------------------------------------------

    /// Every key the index knows: FQDNs with Routes and FQDNs named by cached children (orphans).
    pub fn all_keys(&self) -> BTreeSet<FqdnKey> {
        let mut keys: BTreeSet<FqdnKey> = self.routes.keys().cloned().collect();
        keys.extend(self.services.keys().cloned());
        keys.extend(self.virtual_services.keys().cloned());
        keys.extend(self.http_routes.keys().cloned());
        keys
    }

    /// Owned children by kind (the `cfnet_managed_objects` gauge).
    pub fn owned_counts(&self) -> [(&'static str, usize); 3] {
        [
            (Service::KIND, self.services.owned()),
            (VirtualService::KIND, self.virtual_services.owned()),
            (HTTPRoute::KIND, self.http_routes.owned()),
        ]
    }

    /// The Routes of `key`, including those being deleted, ordered by name.
    pub fn routes(&self, key: &FqdnKey) -> Vec<Arc<Route>> {
        self.routes
            .get(key)
            .map(|g| g.iter().map(PackedRoute::unpack).collect())
            .unwrap_or_default()
    }

    /// The children of kind `C` a reconcile of `key` looks at, by name: those whose FQDN annotation names
    /// the key, and those holding the name of a `desired` one (ours or not).
    pub fn children<C: Child>(&self, key: &FqdnKey, desired: &[C]) -> Children<C> {
        let store = C::store(self);
        let desired = desired
            .iter()
            .filter_map(|d| d.meta().name.as_deref().map(Arc::<str>::from));
        store
            .names_of(key)
            .cloned()
            .chain(desired)
            .filter_map(|name| {
                let child = store.get(&(key.namespace.clone(), name.clone()))?;
                Some((name, Arc::clone(child)))
            })
            .collect()
    }

    /// Everything one reconcile of `key` reads besides the translation, which `translation` is of.
    pub fn snapshot(&self, key: &FqdnKey, translation: &FqdnTranslation) -> Snapshot {
        Snapshot {
            services: self.children(key, Service::desired(translation)),
            virtual_services: self.children(key, VirtualService::desired(translation)),
            http_routes: self.children(key, HTTPRoute::desired(translation)),
            http_routes_served: self.http_routes_served,
        }
    }
}

#[cfg(test)]
mod memory;

#[cfg(test)]
mod tests;
