//! Watch tasks: one per (kind, namespace scope). Each feeds the index with reflector semantics (a
//! re-list replaces the scope atomically at InitDone) and enqueues the FQDN keys the event touches. The
//! watch-fed side of the index; the reconcile's own writes come back through `Index::record_write`.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use cfnet_api::{Route, VirtualService};
use cfnet_translate::{FqdnKey, RoutingApi};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::child::{Cached, Child};
use crate::index::{Index, cached_route, obj_id, write};
use crate::metrics::Metrics;
use crate::packed::PackedRoute;
use crate::queue::WorkQueue;

/// Objects per list request when a watch (re-)lists. Pages of 100 instead of kube's 500: a page of full
/// objects (managedFields and all) is the largest transient allocation, and peak memory is what the
/// deployment's limit must cover (3,000 routes: 33 MB peak RSS with 500, 30.5 MB with 100). Streaming
/// lists (sendInitialEvents) measured the same but never finish on an API server without them.
const LIST_PAGE_SIZE: u32 = 100;

/// Watches per namespace scope that the controller's readiness waits for: Routes, Services and the
/// routing mode's kind (VirtualServices or HTTPRoutes). The other mode's kind, watched where served so that
/// a mode switch prunes its children, does not hold readiness (discovery.rs).
pub(crate) const KINDS: usize = 3;

/// Whether a watch's first list counts towards readiness ([`SyncTracker`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    Ready,
    Not,
}

/// Starts the watches of every scope (`None` = all namespaces): Routes and Services, and in Istio mode
/// VirtualServices. discovery.rs starts the HTTPRoutes' (and in gateway-api mode the VirtualServices')
/// once it knows the API server serves them.
pub(crate) fn spawn(
    client: &Client,
    scopes: &[Option<String>],
    feed: &Arc<Feed>,
    routing_api: RoutingApi,
) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    for scope in scopes {
        let routes: Api<Route> = match scope {
            None => Api::all(client.clone()),
            Some(ns) => Api::namespaced(client.clone(), ns),
        };
        let stream = watcher(routes, list_config()).default_backoff();
        tasks.spawn(Arc::clone(feed).run::<Route>(stream, scope.clone(), Gate::Ready));
        tasks.spawn(watch_child::<Service>(client, scope, feed, Gate::Ready));
        if routing_api == RoutingApi::Istio {
            tasks.spawn(watch_child::<VirtualService>(
                client,
                scope,
                feed,
                Gate::Ready,
            ));
        }
    }
    tasks
}

fn list_config() -> watcher::Config {
    watcher::Config::default().page_size(LIST_PAGE_SIZE)
}

pub(crate) fn watch_child<C: Child>(
    client: &Client,
    scope: &Option<String>,
    feed: &Arc<Feed>,
    gate: Gate,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let api = C::api(client.clone(), scope.as_deref());
    let cfg = match C::WATCH_LABEL {
        Some(label) => list_config().labels(label),
        None => list_config(),
    };
    Arc::clone(feed).run::<C>(watcher(api, cfg).default_backoff(), scope.clone(), gate)
}

/// A kind the index holds.
pub(crate) trait Watched: Send + 'static {
    const KIND: &'static str;
    /// Route changes carry a timestamp for the propagation-latency histogram.
    const IS_ROUTE: bool = false;
    /// The object as served.
    type Object: ResourceExt + Clone + Debug + DeserializeOwned + Send + 'static;
    /// What the index keeps of an object of this kind.
    type Cached: Send + 'static;
    /// Converted as soon as an object arrives, outside the index lock: a re-list buffers the whole scope
    /// until InitDone, and the served objects are several times larger than what is kept.
    fn cache(obj: Self::Object) -> Self::Cached;
    fn apply(index: &mut Index, obj: Self::Cached) -> BTreeSet<FqdnKey>;
    fn delete(index: &mut Index, obj: &Self::Object) -> BTreeSet<FqdnKey>;
    fn replace(
        index: &mut Index,
        scope: Option<&str>,
        objs: Vec<Self::Cached>,
    ) -> BTreeSet<FqdnKey>;
}

impl Watched for Route {
    const KIND: &'static str = "Route";
    const IS_ROUTE: bool = true;
    type Object = Route;
    type Cached = PackedRoute;
    fn cache(obj: Route) -> PackedRoute {
        PackedRoute::new(cached_route(obj))
    }
    fn apply(index: &mut Index, obj: PackedRoute) -> BTreeSet<FqdnKey> {
        index.apply_packed_route(obj)
    }
    fn delete(index: &mut Index, obj: &Route) -> BTreeSet<FqdnKey> {
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

impl<C: Child> Watched for C {
    const KIND: &'static str = C::KIND;
    type Object = C::Object;
    type Cached = Cached<C>;
    fn cache(obj: C::Object) -> Cached<C> {
        Cached::new(obj)
    }
    fn apply(index: &mut Index, obj: Cached<C>) -> BTreeSet<FqdnKey> {
        index.apply_child(obj)
    }
    fn delete(index: &mut Index, obj: &C::Object) -> BTreeSet<FqdnKey> {
        index.delete_child::<C>(&obj_id(obj), obj.meta().resource_version.as_ref())
    }
    fn replace(index: &mut Index, scope: Option<&str>, objs: Vec<Cached<C>>) -> BTreeSet<FqdnKey> {
        index.replace_children(scope, objs)
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

    pub fn synced_one(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            info!("caches synced: Routes, Services and the routing kind listed");
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
        for (kind, count) in index.owned_counts() {
            self.metrics.set_managed(kind, count);
        }
    }

    /// Runs until the stream ends (never, for a watcher with back-off) or the task is aborted.
    pub async fn run<K: Watched>(
        self: Arc<Self>,
        stream: impl Stream<Item = Result<watcher::Event<K::Object>, watcher::Error>>,
        scope: Option<String>,
        gate: Gate,
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
                        if gate == Gate::Ready {
                            self.sync.synced_one();
                        }
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
