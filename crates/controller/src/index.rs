//! The in-memory index every reconcile reads: Routes grouped by (namespace, FQDN), the cross-FQDN claims,
//! and the cached children (Services, VirtualServices) with a secondary index by FQDN.
//!
//! One index under one lock instead of kube's reflector `Store`s: the reconcile needs secondary indexes
//! (routes by FQDN, claim holders, Services by FQDN, VirtualService name → FQDN) that must move together
//! with the primary maps, and `Store` has no secondary indexes. The watch tasks (watch.rs) feed it with
//! the same Init / InitApply / InitDone semantics a reflector has.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use cfnet_api::Route;
use cfnet_translate::{
    ClaimIndex, Claims, FqdnKey, FqdnTranslation, ROUTE_LABELS, Settings, translate_fqdn,
    virtual_service_name,
};
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use crate::children::{CachedService, CachedVirtualService, ChildMeta};
use crate::packed::PackedRoute;
use crate::small_set::SmallSet;

/// (namespace, name)
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

/// Everything one reconcile of a key reads, taken under the lock in one go.
pub struct Snapshot {
    /// All Routes of the key, including those being deleted, ordered by name.
    pub routes: Vec<Arc<Route>>,
    /// Translation of the key's live (not deleting) Routes.
    pub translation: FqdnTranslation,
    /// Cached Services that carry this FQDN or are desired by it, by name.
    pub services: BTreeMap<String, Arc<CachedService>>,
    /// The cached object named vs-<hash(fqdn)>, ours or not.
    pub virtual_service: Option<Arc<CachedVirtualService>>,
}

#[derive(Default)]
pub struct Index {
    routes: HashMap<FqdnKey, SmallSet<PackedRoute>>,
    route_keys: HashMap<ObjId, FqdnKey>,
    /// Destination guid and external FQDN claims, oldest first.
    claims: ClaimIndex,
    /// (namespace, hash of vs-<hash>) → key, for every key that has Routes (maps a foreign VS to its
    /// key).
    vs_names: HashMap<VsId, FqdnKey>,
    services: HashMap<ObjId, Arc<CachedService>>,
    services_by_key: HashMap<FqdnKey, SmallSet<Arc<str>>>,
    virtual_services: HashMap<ObjId, Arc<CachedVirtualService>>,
    /// Children the watch saw deleted; see `Tombstones`.
    gone_services: Tombstones,
    gone_virtual_services: Tombstones,
    owned_services: usize,
    owned_virtual_services: usize,
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

/// The key a child names in its FQDN annotation.
fn fqdn_key(meta: &ChildMeta) -> Option<FqdnKey> {
    Some(FqdnKey {
        namespace: meta.namespace.clone(),
        fqdn: meta.fqdn.clone()?,
    })
}

/// resourceVersions are etcd revisions in every API server we know; compared as numbers when both parse.
fn revision(rv: Option<&String>) -> Option<u64> {
    rv?.parse().ok()
}

/// Is `incoming` the cached object or an older version of it? The reconcile writes its apply responses
/// into the index, and the watch may already have delivered a newer version (someone's edit right after
/// our apply): the older copy must not replace it, or the edit would never be repaired.
fn is_stale(cached: Option<&String>, incoming: Option<&String>) -> bool {
    match (revision(cached), revision(incoming)) {
        (Some(c), Some(i)) => i <= c,
        // Opaque versions: only an identical one is known to be the same object.
        _ => cached == incoming,
    }
}

/// Children the watch saw deleted, with the revision of the deletion, so that the write-back of an apply
/// response older than the deletion cannot put a deleted object back into the cache (it would never be
/// re-created). Bounded: only the newest `TOMBSTONES_KEPT` are kept, as the race spans one API call.
#[derive(Default)]
struct Tombstones(HashMap<ObjId, u64>);

const TOMBSTONES_KEPT: usize = 4096;

impl Tombstones {
    fn bury(&mut self, id: ObjId, deleted_at: Option<&String>) {
        let Some(rv) = revision(deleted_at) else {
            return;
        };
        self.0.insert(id, rv);
        if self.0.len() > 2 * TOMBSTONES_KEPT {
            let mut revisions: Vec<u64> = self.0.values().copied().collect();
            let (_, cut, _) = revisions.select_nth_unstable_by(TOMBSTONES_KEPT, |a, b| b.cmp(a));
            let cut = *cut;
            self.0.retain(|_, rv| *rv > cut);
        }
    }

    /// Is `incoming` no newer than the cached copy of `id`, or than its deletion the watch reported?
    /// Then it must not replace what the index holds.
    fn superseded(&self, id: &ObjId, cached: Option<&ChildMeta>, incoming: &ChildMeta) -> bool {
        let rv = incoming.resource_version.as_ref();
        cached.is_some_and(|c| is_stale(c.resource_version.as_ref(), rv)) || self.outlived(id, rv)
    }

    /// Was `id` deleted at or after `incoming`?
    fn outlived(&self, id: &ObjId, incoming: Option<&String>) -> bool {
        match (self.0.get(id), revision(incoming)) {
            (Some(deleted), Some(rv)) => rv <= *deleted,
            _ => false,
        }
    }

    fn lift(&mut self, id: &ObjId) {
        self.0.remove(id);
    }
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
        if let Some((shared, _)) = self.services_by_key.get_key_value(&key) {
            return shared.clone();
        }
        key
    }

    /// Replaces a child's namespace, FQDN and owner names with the copies the index already keeps.
    fn share_strings(&mut self, meta: &mut ChildMeta) {
        meta.namespace = self.namespace(&meta.namespace);
        if let Some(key) = fqdn_key(meta) {
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

    // ---- Services -----------------------------------------------------------------------------

    fn service_keys(&self, svc: &ChildMeta, out: &mut BTreeSet<FqdnKey>) {
        out.extend(fqdn_key(svc));
        for owner in &svc.owners {
            if let Some(k) = self.route_keys.get(&(svc.namespace.clone(), owner.clone())) {
                out.insert(k.clone());
            }
        }
    }

    pub fn apply_service(&mut self, mut svc: CachedService) -> BTreeSet<FqdnKey> {
        self.share_strings(&mut svc.meta);
        let id = svc.meta.id();
        let mut affected = BTreeSet::new();
        let cached = self.services.get(&id).map(|old| &old.meta);
        if self.gone_services.superseded(&id, cached, &svc.meta) {
            return affected;
        }
        self.gone_services.lift(&id);
        self.remove_service(&id, &mut affected);
        self.service_keys(&svc.meta, &mut affected);
        // `share_strings` made the key the index's copy already.
        if let Some(k) = fqdn_key(&svc.meta) {
            self.services_by_key
                .entry(k)
                .or_default()
                .insert(id.1.clone());
        }
        if svc.meta.is_ours() {
            self.owned_services += 1;
        }
        self.services.insert(id, Arc::new(svc));
        affected
    }

    /// `deleted_at`: the resourceVersion of a deletion the watch reported (None for our own delete).
    pub fn delete_service(&mut self, id: &ObjId, deleted_at: Option<&String>) -> BTreeSet<FqdnKey> {
        self.gone_services.bury(id.clone(), deleted_at);
        let mut affected = BTreeSet::new();
        self.remove_service(id, &mut affected);
        affected
    }

    fn remove_service(&mut self, id: &ObjId, affected: &mut BTreeSet<FqdnKey>) {
        let Some(old) = self.services.remove(id) else {
            return;
        };
        self.service_keys(&old.meta, affected);
        if let Some(k) = fqdn_key(&old.meta)
            && let Some(names) = self.services_by_key.get_mut(&k)
        {
            names.remove(&id.1);
            if names.is_empty() {
                self.services_by_key.remove(&k);
            }
        }
        if old.meta.is_ours() {
            self.owned_services -= 1;
        }
    }

    pub fn replace_services(
        &mut self,
        scope: Option<&str>,
        services: Vec<CachedService>,
    ) -> BTreeSet<FqdnKey> {
        let listed: BTreeSet<ObjId> = services.iter().map(|s| s.meta.id()).collect();
        let gone = not_listed(self.services.keys(), scope, &listed);
        let mut affected = BTreeSet::new();
        for id in gone {
            self.remove_service(&id, &mut affected);
        }
        for s in services {
            affected.extend(self.apply_service(s));
        }
        affected
    }

    // ---- VirtualServices ----------------------------------------------------------------------

    fn virtual_service_keys(&self, vs: &CachedVirtualService, out: &mut BTreeSet<FqdnKey>) {
        out.extend(fqdn_key(&vs.meta));
        if let Some(k) =
            vs_id_of_name(&vs.meta.namespace, &vs.meta.name).and_then(|id| self.vs_names.get(&id))
        {
            out.insert(k.clone());
        }
    }

    pub fn apply_virtual_service(&mut self, mut vs: CachedVirtualService) -> BTreeSet<FqdnKey> {
        self.share_strings(&mut vs.meta);
        let id = vs.meta.id();
        let mut affected = BTreeSet::new();
        let cached = self.virtual_services.get(&id).map(|old| &old.meta);
        if self.gone_virtual_services.superseded(&id, cached, &vs.meta) {
            return affected;
        }
        self.gone_virtual_services.lift(&id);
        self.remove_virtual_service(&id, &mut affected);
        self.virtual_service_keys(&vs, &mut affected);
        if vs.meta.is_ours() {
            self.owned_virtual_services += 1;
        }
        self.virtual_services.insert(id, Arc::new(vs));
        affected
    }

    /// `deleted_at`: the resourceVersion of a deletion the watch reported (None for our own delete).
    pub fn delete_virtual_service(
        &mut self,
        id: &ObjId,
        deleted_at: Option<&String>,
    ) -> BTreeSet<FqdnKey> {
        self.gone_virtual_services.bury(id.clone(), deleted_at);
        let mut affected = BTreeSet::new();
        self.remove_virtual_service(id, &mut affected);
        affected
    }

    fn remove_virtual_service(&mut self, id: &ObjId, affected: &mut BTreeSet<FqdnKey>) {
        let Some(old) = self.virtual_services.remove(id) else {
            return;
        };
        self.virtual_service_keys(&old, affected);
        if old.meta.is_ours() {
            self.owned_virtual_services -= 1;
        }
    }

    pub fn replace_virtual_services(
        &mut self,
        scope: Option<&str>,
        objects: Vec<CachedVirtualService>,
    ) -> BTreeSet<FqdnKey> {
        let listed: BTreeSet<ObjId> = objects.iter().map(|o| o.meta.id()).collect();
        let gone = not_listed(self.virtual_services.keys(), scope, &listed);
        let mut affected = BTreeSet::new();
        for id in gone {
            self.remove_virtual_service(&id, &mut affected);
        }
        for o in objects {
            affected.extend(self.apply_virtual_service(o));
        }
        affected
    }

    // ---- Reads --------------------------------------------------------------------------------

    /// Every key the index knows: FQDNs with Routes and FQDNs named by cached children (orphans).
    pub fn all_keys(&self) -> BTreeSet<FqdnKey> {
        let mut keys: BTreeSet<FqdnKey> = self.routes.keys().cloned().collect();
        keys.extend(self.services_by_key.keys().cloned());
        for vs in self.virtual_services.values() {
            if vs.meta.is_ours() {
                keys.extend(fqdn_key(&vs.meta));
            }
        }
        keys
    }

    /// Owned (Service, VirtualService) counts.
    pub fn owned_counts(&self) -> (usize, usize) {
        (self.owned_services, self.owned_virtual_services)
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<Arc<CachedService>> {
        self.services.get(&(namespace.into(), name.into())).cloned()
    }

    pub fn snapshot(&self, key: &FqdnKey, settings: &Settings) -> Snapshot {
        let routes: Vec<Arc<Route>> = self
            .routes
            .get(key)
            .map(|g| g.iter().map(PackedRoute::unpack).collect())
            .unwrap_or_default();
        let live: Vec<&Route> = routes
            .iter()
            .map(Arc::as_ref)
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .collect();
        let translation = translate_fqdn(key, &live, self, settings);
        let mut services = BTreeMap::new();
        let names = self
            .services_by_key
            .get(key)
            .into_iter()
            .flatten()
            .map(|n| n.to_string());
        let desired = translation
            .services
            .iter()
            .filter_map(|s| s.metadata.name.clone());
        for name in names.chain(desired) {
            if let Some(s) = self.service(&key.namespace, &name) {
                services.insert(name, s);
            }
        }
        let virtual_service = self
            .virtual_services
            .get(&(
                key.namespace.clone(),
                virtual_service_name(&key.fqdn).into(),
            ))
            .cloned();
        Snapshot {
            routes,
            translation,
            services,
            virtual_service,
        }
    }
}

#[cfg(test)]
mod memory;

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;
    use kube::api::DynamicObject;
    use serde_json::json;

    fn route(ns: &str, name: &str, host: &str, created: &str, guids: &[&str]) -> Route {
        let dests: Vec<_> = guids
            .iter()
            .map(|g| {
                json!({"guid": g, "port": 8080, "app": {"guid": "a", "process": {"type": "web"}},
                            "selector": {"matchLabels": {}}})
            })
            .collect();
        serde_json::from_value(json!({
            "apiVersion": "networking.cloudfoundry.org/v1alpha1", "kind": "Route",
            "metadata": {"namespace": ns, "name": name, "creationTimestamp": created, "uid": format!("{name}-uid")},
            "spec": {"host": host, "url": format!("{host}.apps.example.com"),
                     "domain": {"name": "apps.example.com", "internal": false}, "destinations": dests}
        }))
        .unwrap()
    }

    fn key(ns: &str, host: &str) -> FqdnKey {
        FqdnKey {
            namespace: ns.into(),
            fqdn: format!("{host}.apps.example.com").into(),
        }
    }

    #[test]
    fn a_changed_host_rebuilds_old_and_new_fqdn() {
        let mut index = Index::default();
        index.apply_route(route("ns", "r", "a", "2024-01-01T00:00:00Z", &["d"]));
        let affected = index.apply_route(route("ns", "r", "b", "2024-01-01T00:00:00Z", &["d"]));
        assert!(
            affected.contains(&key("ns", "a")) && affected.contains(&key("ns", "b")),
            "{affected:?}"
        );
        assert!(
            index
                .snapshot(
                    &key("ns", "a"),
                    &Settings {
                        gateway: "g".into(),
                        ..Default::default()
                    }
                )
                .routes
                .is_empty()
        );
    }

    #[test]
    fn oldest_claim_holds_and_release_re_enqueues_the_waiting_claimant() {
        let mut index = Index::default();
        index.apply_route(route("ns", "old", "a", "2024-01-01T00:00:00Z", &["d"]));
        index.apply_route(route("ns", "new", "b", "2024-02-01T00:00:00Z", &["d"]));
        assert_eq!(index.destination_holder("ns", "d"), Some("old"));
        index.apply_route(route("other", "x", "a", "2023-01-01T00:00:00Z", &[]));
        assert_eq!(
            index.external_fqdn_holder("a.apps.example.com"),
            Some("other")
        );

        let affected = index.delete_route(&("ns".into(), "old".into()));
        assert_eq!(index.destination_holder("ns", "d"), Some("new"));
        assert!(
            affected.contains(&key("ns", "b")),
            "the new holder's FQDN must be rebuilt: {affected:?}"
        );
    }

    #[test]
    fn a_cached_route_keeps_only_what_the_translation_reads() {
        let mut r = route("ns", "r", "a", "2024-01-01T00:00:00Z", &["d"]);
        r.metadata.labels = Some(BTreeMap::from([
            ("cloudfoundry.org/space_guid".to_string(), "s".to_string()),
            ("cloudfoundry.org/org_guid".to_string(), "o".to_string()),
            (
                "app.kubernetes.io/part-of".to_string(),
                "cloudfoundry".to_string(),
            ),
        ]));
        r.metadata.annotations = Some(BTreeMap::from([(
            "kubectl.kubernetes.io/last-applied-configuration".to_string(),
            "{}".to_string(),
        )]));
        let cached = cached_route(r.clone());
        assert_eq!(
            cached
                .metadata
                .labels
                .unwrap()
                .into_keys()
                .collect::<Vec<_>>(),
            ["cloudfoundry.org/org_guid", "cloudfoundry.org/space_guid"]
        );
        assert!(cached.metadata.annotations.is_none());
        assert_eq!(cached.spec, r.spec);
    }

    #[test]
    fn status_only_updates_do_not_enqueue() {
        let mut index = Index::default();
        let r = route("ns", "r", "a", "2024-01-01T00:00:00Z", &["d"]);
        index.apply_route(r.clone());
        let mut with_status = r.clone();
        with_status.metadata.finalizers = Some(vec!["x".into()]);
        with_status.status = Some(Default::default());
        assert!(index.apply_route(with_status).is_empty());
    }

    #[test]
    fn relist_drops_what_is_gone_only_in_scope() {
        let mut index = Index::default();
        index.apply_route(route("ns1", "r1", "a", "2024-01-01T00:00:00Z", &[]));
        index.apply_route(route("ns2", "r2", "a", "2024-01-01T00:00:00Z", &[]));
        let affected = index.replace_routes(Some("ns1"), Vec::new());
        // ns2's route now holds the external FQDN, so its key is rebuilt too.
        assert_eq!(
            affected.into_iter().collect::<Vec<_>>(),
            vec![key("ns1", "a"), key("ns2", "a")]
        );
        assert_eq!(
            index.all_keys().into_iter().collect::<Vec<_>>(),
            vec![key("ns2", "a")]
        );
    }

    #[test]
    fn children_map_to_their_fqdn_and_foreign_virtual_services_by_name() {
        let mut index = Index::default();
        index.apply_route(route("ns", "r", "a", "2024-01-01T00:00:00Z", &["d"]));
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"namespace": "ns", "name": "s-d", "resourceVersion": "1",
                         "annotations": {"cloudfoundry.org/route-fqdn": "a.apps.example.com"}}
        }))
        .unwrap();
        assert!(
            index
                .apply_service(CachedService::new(svc))
                .contains(&key("ns", "a"))
        );
        let foreign: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
            "metadata": {"namespace": "ns", "name": virtual_service_name("a.apps.example.com"), "resourceVersion": "2"}
        }))
        .unwrap();
        assert!(
            index
                .apply_virtual_service(CachedVirtualService::new(foreign))
                .contains(&key("ns", "a"))
        );
        let snap = index.snapshot(
            &key("ns", "a"),
            &Settings {
                gateway: "g".into(),
                ..Default::default()
            },
        );
        assert!(snap.services.contains_key("s-d"));
        assert!(snap.virtual_service.is_some());
        assert_eq!(index.owned_counts(), (0, 0));
    }

    fn owned_service(rv: &str, port: i32) -> CachedService {
        CachedService::new(serde_json::from_value(json!({
            "metadata": {"namespace": "ns", "name": "s-d", "resourceVersion": rv,
                         "annotations": {"cloudfoundry.org/route-fqdn": "a.apps.example.com"},
                         "ownerReferences": [{"apiVersion": "networking.cloudfoundry.org/v1alpha1",
                                              "kind": "Route", "name": "r", "uid": "r-uid"}]},
            "spec": {"ports": [{"name": "http", "port": port, "protocol": "TCP"}]}
        }))
        .unwrap())
    }

    #[test]
    fn a_virtual_service_name_maps_to_the_id_of_its_key() {
        let k = key("ns", "a");
        let name = virtual_service_name(&k.fqdn);
        assert_eq!(vs_id_of_name(&k.namespace, &name), Some(vs_id(&k)));
        assert_ne!(
            vs_id_of_name(&k.namespace, &virtual_service_name("b.apps.example.com")),
            Some(vs_id(&k))
        );
        for foreign in ["vs-1234", "my-vs", "vs-", &name[1..]] {
            assert_eq!(vs_id_of_name(&k.namespace, foreign), None, "{foreign}");
        }
    }

    /// The memory of 10,000 routes depends on it: one copy of a namespace and of a key for all maps.
    #[test]
    fn ids_and_keys_share_one_copy_of_their_strings() {
        let mut index = Index::default();
        index.apply_route(route("ns", "r", "a", "2024-01-01T00:00:00Z", &["d"]));
        index.apply_service(owned_service("10", 8080));
        let (key, _) = index.routes.iter().next().unwrap();
        let (id, route_key) = index.route_keys.iter().next().unwrap();
        let (vs_id, vs_key) = index.vs_names.iter().next().unwrap();
        let (by_key, names) = index.services_by_key.iter().next().unwrap();
        let (svc_id, svc) = index.services.iter().next().unwrap();
        for ns in [
            &id.0,
            &route_key.namespace,
            &vs_id.0,
            &vs_key.namespace,
            &svc_id.0,
        ] {
            assert!(Arc::ptr_eq(&key.namespace, ns));
        }
        assert!(Arc::ptr_eq(&svc.meta.namespace, &key.namespace));
        for fqdn in [&route_key.fqdn, &vs_key.fqdn, &by_key.fqdn] {
            assert!(Arc::ptr_eq(&key.fqdn, fqdn));
        }
        assert!(Arc::ptr_eq(&svc_id.1, &svc.meta.name));
        assert!(Arc::ptr_eq(svc.meta.fqdn.as_ref().unwrap(), &key.fqdn));
        assert!(Arc::ptr_eq(&svc.meta.owners[0], &id.1));
        assert!(Arc::ptr_eq(&svc_id.1, names.iter().next().unwrap()));
    }

    fn cached_version(index: &Index) -> Option<String> {
        index
            .service("ns", "s-d")
            .and_then(|s| s.meta.resource_version.clone())
    }

    #[test]
    fn an_older_apply_response_does_not_hide_a_newer_edit() {
        let mut index = Index::default();
        // The watch delivers someone's edit (rv 11) before the reconcile writes back its apply response (rv 10).
        index.apply_service(owned_service("11", 9999));
        assert!(index.apply_service(owned_service("10", 8080)).is_empty());
        assert_eq!(
            cached_version(&index).as_deref(),
            Some("11"),
            "the edit must stay visible, so it gets repaired"
        );
        // A newer version still replaces it.
        index.apply_service(owned_service("12", 8080));
        assert_eq!(cached_version(&index).as_deref(), Some("12"));
    }

    #[test]
    fn an_older_apply_response_does_not_resurrect_a_deleted_child() {
        let mut index = Index::default();
        index.apply_service(owned_service("10", 8080));
        let id: ObjId = ("ns".into(), "s-d".into());
        index.delete_service(&id, Some(&"12".to_string()));
        assert!(index.apply_service(owned_service("11", 8080)).is_empty());
        assert!(index.service("ns", "s-d").is_none());
        // Re-created later: a newer version is cached again.
        index.apply_service(owned_service("13", 8080));
        assert_eq!(cached_version(&index).as_deref(), Some("13"));
    }

    #[test]
    fn tombstones_are_bounded() {
        let mut t = Tombstones::default();
        for i in 0..(3 * TOMBSTONES_KEPT as u64) {
            t.bury(("ns".into(), format!("s-{i}").into()), Some(&i.to_string()));
        }
        assert!(t.0.len() <= 2 * TOMBSTONES_KEPT);
        let newest = 3 * TOMBSTONES_KEPT as u64 - 1;
        assert!(t.outlived(
            &("ns".into(), format!("s-{newest}").into()),
            Some(&newest.to_string())
        ));
    }
}
