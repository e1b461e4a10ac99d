//! Watch tasks: one per (kind, namespace scope). Each feeds the index with reflector semantics (a
//! re-list replaces the scope atomically at InitDone) and enqueues the FQDN keys the event touches.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use cfnet_api::Route;
use cfnet_translate::FqdnKey;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::runtime::watcher;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::children::{CachedService, CachedVirtualService};
use crate::index::{Index, cached_route, obj_id};
use crate::metrics::Metrics;
use crate::packed::PackedRoute;
use crate::queue::WorkQueue;
use crate::reconcile::write;

/// A kind the index holds.
pub(crate) trait Watched: ResourceExt + Clone + Debug + Send + 'static {
    const KIND: &'static str;
    /// Route changes carry a timestamp for the propagation-latency histogram.
    const IS_ROUTE: bool = false;
    /// What the index keeps of an object of this kind.
    type Cached: Send + 'static;
    /// Converted as soon as an object arrives, outside the index lock: a re-list buffers the whole scope
    /// until InitDone, and the served objects are several times larger than what is kept.
    fn cache(obj: Self) -> Self::Cached;
    fn apply(index: &mut Index, obj: Self::Cached) -> BTreeSet<FqdnKey>;
    fn delete(index: &mut Index, obj: &Self) -> BTreeSet<FqdnKey>;
    fn replace(
        index: &mut Index,
        scope: Option<&str>,
        objs: Vec<Self::Cached>,
    ) -> BTreeSet<FqdnKey>;
}

impl Watched for Route {
    const KIND: &'static str = "Route";
    const IS_ROUTE: bool = true;
    type Cached = PackedRoute;
    fn cache(obj: Self) -> PackedRoute {
        PackedRoute::new(cached_route(obj))
    }
    fn apply(index: &mut Index, obj: PackedRoute) -> BTreeSet<FqdnKey> {
        index.apply_packed_route(obj)
    }
    fn delete(index: &mut Index, obj: &Self) -> BTreeSet<FqdnKey> {
        index.delete_route(&obj_id(obj))
    }
    fn replace(
        index: &mut Index,
        scope: Option<&str>,
        objs: Vec<PackedRoute>,
    ) -> BTreeSet<FqdnKey> {
        index.replace_routes(scope, objs)
    }
}

impl Watched for Service {
    const KIND: &'static str = "Service";
    type Cached = CachedService;
    fn cache(obj: Self) -> CachedService {
        CachedService::new(obj)
    }
    fn apply(index: &mut Index, obj: CachedService) -> BTreeSet<FqdnKey> {
        index.apply_service(obj)
    }
    fn delete(index: &mut Index, obj: &Self) -> BTreeSet<FqdnKey> {
        index.delete_service(&obj_id(obj), obj.metadata.resource_version.as_ref())
    }
    fn replace(
        index: &mut Index,
        scope: Option<&str>,
        objs: Vec<CachedService>,
    ) -> BTreeSet<FqdnKey> {
        index.replace_services(scope, objs)
    }
}

impl Watched for DynamicObject {
    const KIND: &'static str = "VirtualService";
    type Cached = CachedVirtualService;
    fn cache(obj: Self) -> CachedVirtualService {
        CachedVirtualService::new(obj)
    }
    fn apply(index: &mut Index, obj: CachedVirtualService) -> BTreeSet<FqdnKey> {
        index.apply_virtual_service(obj)
    }
    fn delete(index: &mut Index, obj: &Self) -> BTreeSet<FqdnKey> {
        index.delete_virtual_service(&obj_id(obj), obj.metadata.resource_version.as_ref())
    }
    fn replace(
        index: &mut Index,
        scope: Option<&str>,
        objs: Vec<CachedVirtualService>,
    ) -> BTreeSet<FqdnKey> {
        index.replace_virtual_services(scope, objs)
    }
}

/// Counts down the watch streams that have not listed yet; flips `ready` when all have.
pub(crate) struct SyncTracker {
    pending: AtomicUsize,
    ready: watch::Sender<bool>,
}

impl SyncTracker {
    pub fn new(streams: usize, ready: watch::Sender<bool>) -> Arc<Self> {
        Arc::new(SyncTracker {
            pending: AtomicUsize::new(streams),
            ready,
        })
    }

    fn synced_one(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            info!("caches synced: Routes, Services and VirtualServices listed");
            self.ready.send_replace(true);
        }
    }
}

pub(crate) struct Feed {
    pub index: Arc<RwLock<Index>>,
    pub queue: Arc<WorkQueue>,
    pub metrics: Arc<Metrics>,
    pub sync: Arc<SyncTracker>,
}

impl Feed {
    fn enqueue(&self, keys: BTreeSet<FqdnKey>, seen: Option<Instant>) {
        for k in keys {
            self.queue.add(k, seen);
        }
        self.metrics.set_queue_depth(self.queue.depth());
    }

    fn update_gauges(&self, index: &Index) {
        let (services, virtual_services) = index.owned_counts();
        self.metrics.set_managed("Service", services);
        self.metrics.set_managed("VirtualService", virtual_services);
    }

    /// Runs until the stream ends (never, for a watcher with back-off) or the task is aborted.
    pub async fn run<K: Watched>(
        self: Arc<Self>,
        stream: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
        scope: Option<String>,
    ) {
        let mut stream = std::pin::pin!(stream);
        let mut buffer: Option<Vec<K::Cached>> = None;
        let mut listed = false;
        let where_ = scope.clone().unwrap_or_else(|| "all namespaces".into());
        while let Some(item) = stream.next().await {
            let seen = K::IS_ROUTE.then(Instant::now);
            let keys = match item {
                Ok(watcher::Event::Init) => {
                    buffer = Some(Vec::new());
                    continue;
                }
                Ok(watcher::Event::InitApply(obj)) => {
                    buffer.get_or_insert_default().push(K::cache(obj));
                    continue;
                }
                Ok(watcher::Event::InitDone) => {
                    let objs = buffer.take().unwrap_or_default();
                    let count = objs.len();
                    let mut index = write(&self.index);
                    let keys = K::replace(&mut index, scope.as_deref(), objs);
                    self.update_gauges(&index);
                    drop(index);
                    info!(kind = K::KIND, scope = %where_, count, "listed {}s", K::KIND);
                    if !listed {
                        listed = true;
                        self.sync.synced_one();
                    }
                    keys
                }
                Ok(watcher::Event::Apply(obj)) => {
                    let obj = K::cache(obj);
                    let mut index = write(&self.index);
                    let keys = K::apply(&mut index, obj);
                    self.update_gauges(&index);
                    keys
                }
                Ok(watcher::Event::Delete(obj)) => {
                    let mut index = write(&self.index);
                    let keys = K::delete(&mut index, &obj);
                    self.update_gauges(&index);
                    keys
                }
                Err(e) => {
                    warn!(kind = K::KIND, scope = %where_, error = %e,
                          "watch of {}s failed; retrying with back-off (is the API server reachable, the CRD installed and the RBAC granted?)", K::KIND);
                    continue;
                }
            };
            self.enqueue(keys, seen);
        }
    }
}
