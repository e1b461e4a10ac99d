//! One kind of child as the index keeps it: the cached objects by id, the names by the FQDN their
//! annotation names, the tombstones of recent deletions and the count of owned objects.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use cfnet_translate::FqdnKey;

use super::ObjId;
use crate::child::{Cached, Child, ChildMeta};
use crate::small_set::SmallSet;

pub(crate) struct ChildStore<C> {
    objects: HashMap<ObjId, Arc<Cached<C>>>,
    /// Names of the cached objects by the key their FQDN annotation names.
    pub(super) by_key: HashMap<FqdnKey, SmallSet<Arc<str>>>,
    /// Objects the watch saw deleted; see [`Tombstones`].
    gone: Tombstones,
    owned: usize,
}

impl<C> Default for ChildStore<C> {
    fn default() -> Self {
        ChildStore {
            objects: HashMap::new(),
            by_key: HashMap::new(),
            gone: Tombstones::default(),
            owned: 0,
        }
    }
}

impl<C: Child> ChildStore<C> {
    pub fn get(&self, id: &ObjId) -> Option<&Arc<Cached<C>>> {
        self.objects.get(id)
    }

    /// Objects owned by a Route (the `cfnet_managed_objects` gauge).
    pub fn owned(&self) -> usize {
        self.owned
    }

    #[cfg(test)]
    pub fn ids(&self) -> impl Iterator<Item = &ObjId> {
        self.objects.keys()
    }

    /// Names of the objects whose FQDN annotation names `key`.
    pub fn names_of(&self, key: &FqdnKey) -> impl Iterator<Item = &Arc<str>> {
        self.by_key.get(key).into_iter().flatten()
    }

    pub fn keys(&self) -> impl Iterator<Item = &FqdnKey> {
        self.by_key.keys()
    }

    /// Is `incoming` no newer than the cached copy, or than a deletion the watch reported? Then it must
    /// not replace what the store holds.
    pub fn superseded(&self, incoming: &ChildMeta) -> bool {
        let id = incoming.id();
        let rv = incoming.resource_version.as_deref();
        self.objects
            .get(&id)
            .is_some_and(|c| is_stale(c.meta.resource_version.as_deref(), rv))
            || self.gone.outlived(&id, rv)
    }

    /// Adds `child` (replacing nothing: call [`ChildStore::remove`] first). `key` is its FQDN annotation's
    /// key, as the index shares it.
    pub fn insert(&mut self, child: Cached<C>, key: Option<FqdnKey>) {
        let id = child.meta.id();
        self.gone.lift(&id);
        if let Some(k) = key {
            self.by_key.entry(k).or_default().insert(id.1.clone());
        }
        if child.meta.is_ours() {
            self.owned += 1;
        }
        self.objects.insert(id, Arc::new(child));
    }

    pub fn remove(&mut self, id: &ObjId) -> Option<Arc<Cached<C>>> {
        let old = self.objects.remove(id)?;
        if let Some(k) = old.meta.fqdn_key()
            && let Some(names) = self.by_key.get_mut(&k)
        {
            names.remove(&id.1);
            if names.is_empty() {
                self.by_key.remove(&k);
            }
        }
        if old.meta.is_ours() {
            self.owned -= 1;
        }
        Some(old)
    }

    /// Remembers a deletion the watch reported at revision `deleted_at`.
    pub fn bury(&mut self, id: ObjId, deleted_at: Option<&str>) {
        self.gone.bury(id, deleted_at);
    }

    /// The ids in `scope` (a namespace, or all) that a re-list did not return.
    pub fn not_listed(&self, scope: Option<&str>, listed: &BTreeSet<ObjId>) -> Vec<ObjId> {
        super::not_listed(self.objects.keys(), scope, listed)
    }
}

/// resourceVersions are etcd revisions in every API server we know; compared as numbers when both parse.
fn revision(rv: Option<&str>) -> Option<u64> {
    rv?.parse().ok()
}

/// Is `incoming` the cached object or an older version of it? The reconcile writes its apply responses
/// into the index, and the watch may already have delivered a newer version (someone's edit right after
/// our apply): the older copy must not replace it, or the edit would never be repaired.
fn is_stale(cached: Option<&str>, incoming: Option<&str>) -> bool {
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
pub(super) struct Tombstones(HashMap<ObjId, u64>);

pub(super) const TOMBSTONES_KEPT: usize = 4096;

impl Tombstones {
    pub(super) fn bury(&mut self, id: ObjId, deleted_at: Option<&str>) {
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

    /// Was `id` deleted at or after `incoming`?
    pub(super) fn outlived(&self, id: &ObjId, incoming: Option<&str>) -> bool {
        match (self.0.get(id), revision(incoming)) {
            (Some(deleted), Some(rv)) => rv <= *deleted,
            _ => false,
        }
    }

    fn lift(&mut self, id: &ObjId) {
        self.0.remove(id);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}
