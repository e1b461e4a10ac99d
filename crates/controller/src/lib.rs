//! The RouteController: Routes → Services + Istio VirtualServices, on a real API server.
//!
//! Data flows one way: watched objects (watch.rs) → in-memory index by (namespace, FQDN) (index.rs) →
//! `cfnet_translate::translate_fqdn` → diff against the cached children (children.rs) → server-side
//! apply / delete → Route status (reconcile.rs). The work item is the FQDN key (queue.rs), so bursts of
//! events on one FQDN coalesce into one reconcile.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), cfnet_controller::Error> {
//! let config = cfnet_controller::Config::new("cf-system/istio-ingressgateway");
//! let controller = cfnet_controller::Controller::new(config, client);
//! let metrics = controller.metrics(); // read in-process: metrics.encode()
//! controller.run(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod changes;
mod children;
mod config;
mod error;
mod index;
mod leader;
mod metrics;
mod packed;
mod queue;
mod reconcile;
mod server;
mod small_set;
mod watch;

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use cfnet_api::{Route, VirtualService};
use cfnet_translate::Settings;
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::events::Reporter;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch as channel;
use tracing::{info, warn};

pub use children::is_ours;
pub use config::{
    Config, ConfigError, DEFAULT_RESYNC_INTERVAL, EnvConfig, FIELD_MANAGER, LEASE_NAME,
    LeaderElection, parse_listen_addr, parse_resync_interval,
};
pub use error::Error;
pub use metrics::{Metrics, RECONCILE_BUCKETS, sum_samples};

use crate::index::Index;
use crate::queue::WorkQueue;
use crate::reconcile::{Reconciler, write};
use crate::watch::{Feed, SyncTracker};

/// Label every Service the Go controller and cfnet write carries; the Service watch selects on it.
pub const ROUTE_GUID_LABEL: &str = "cloudfoundry.org/route_guid";
/// Objects per list request when a watch (re-)lists.
const LIST_PAGE_SIZE: u32 = 100;
/// How long a shutdown waits for in-flight reconciles (SIGTERM: exit within 10 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// A controller ready to run; hand out its metrics and readiness before calling [`Controller::run`].
pub struct Controller {
    config: Config,
    client: Client,
    metrics: Arc<Metrics>,
    ready_tx: channel::Sender<bool>,
    gate_tx: channel::Sender<bool>,
}

/// Builds and runs a controller until `shutdown` completes.
pub async fn run(
    config: Config,
    client: Client,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    Controller::new(config, client).run(shutdown).await
}

impl Controller {
    pub fn new(config: Config, client: Client) -> Self {
        let (ready_tx, _) = channel::channel(false);
        let (gate_tx, _) = channel::channel(config.leader_election.is_none());
        Controller {
            config,
            client,
            metrics: Arc::new(Metrics::new()),
            ready_tx,
            gate_tx,
        }
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Turns true once Routes, Services and VirtualServices are listed.
    pub fn ready(&self) -> channel::Receiver<bool> {
        self.ready_tx.subscribe()
    }

    /// True while this replica writes (always, without leader election).
    pub fn leading(&self) -> channel::Receiver<bool> {
        self.gate_tx.subscribe()
    }

    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let Controller {
            config,
            client,
            metrics,
            ready_tx,
            gate_tx,
        } = self;
        let (stop_tx, stop_rx) = channel::channel(false);
        let mut tasks = tokio::task::JoinSet::new();

        // HTTP servers first: a bad address is a startup error, reported at once.
        let mut listeners = Vec::new();
        if let Some(addr) = config.metrics_addr {
            listeners.push(server::bind("metrics", "--metrics-addr", addr).await?);
        }
        if let Some(addr) = config.health_addr {
            listeners.push(server::bind("health probes", "--health-addr", addr).await?);
        }
        for l in listeners {
            if let Ok(a) = l.local_addr() {
                info!(addr = %a, "serving /metrics, /healthz and /readyz");
            }
            tasks.spawn(server::serve(
                l,
                Arc::clone(&metrics),
                ready_tx.subscribe(),
                stop_rx.clone(),
            ));
        }

        let index = Arc::new(RwLock::new(Index::default()));
        let queue = WorkQueue::new();
        let vs_resource = ApiResource::erase::<VirtualService>(&());
        let scopes: Vec<Option<String>> = if config.namespaces.is_empty() {
            vec![None]
        } else {
            config.namespaces.iter().cloned().map(Some).collect()
        };
        let sync = SyncTracker::new(scopes.len() * 3, ready_tx.clone());
        let feed = Arc::new(Feed {
            index: Arc::clone(&index),
            queue: Arc::clone(&queue),
            metrics: Arc::clone(&metrics),
            sync,
        });
        let mut watch_tasks = tokio::task::JoinSet::new();
        for scope in &scopes {
            let (routes, services, vss): (Api<Route>, Api<Service>, Api<DynamicObject>) =
                match scope {
                    None => (
                        Api::all(client.clone()),
                        Api::all(client.clone()),
                        Api::all_with(client.clone(), &vs_resource),
                    ),
                    Some(ns) => (
                        Api::namespaced(client.clone(), ns),
                        Api::namespaced(client.clone(), ns),
                        Api::namespaced_with(client.clone(), ns, &vs_resource),
                    ),
                };
            // Pages of 100 instead of kube's 500: a page of full objects (managedFields and all) is
            // the largest transient allocation, and peak memory is what the deployment's limit must
            // cover (3,000 routes: 33 MB peak RSS with 500, 30.5 MB with 100). Streaming lists
            // (sendInitialEvents) measured the same but never finish on an API server without them.
            let cfg = watcher::Config::default().page_size(LIST_PAGE_SIZE);
            watch_tasks.spawn(Arc::clone(&feed).run(
                watcher(routes, cfg.clone()).default_backoff(),
                scope.clone(),
            ));
            watch_tasks.spawn(Arc::clone(&feed).run(
                watcher(services, cfg.clone().labels(ROUTE_GUID_LABEL)).default_backoff(),
                scope.clone(),
            ));
            watch_tasks
                .spawn(Arc::clone(&feed).run(watcher(vss, cfg).default_backoff(), scope.clone()));
        }

        let identity = config
            .leader_election
            .as_ref()
            .map(|le| le.identity.clone());
        if let Some(le) = config.leader_election.clone() {
            tasks.spawn(leader::campaign(
                client.clone(),
                le,
                gate_tx.clone(),
                stop_rx.clone(),
            ));
        }

        let reconciler = Arc::new(Reconciler {
            client: client.clone(),
            index: Arc::clone(&index),
            settings: Settings {
                gateway: config.gateway.clone(),
                ..Default::default()
            },
            metrics: Arc::clone(&metrics),
            reporter: Reporter {
                controller: FIELD_MANAGER.into(),
                instance: identity,
            },
            gate: gate_tx.subscribe(),
            vs_resource,
        });

        // Resync backstop, and a full pass whenever this replica becomes the writer.
        {
            let index = Arc::clone(&index);
            let queue = Arc::clone(&queue);
            let mut gate = gate_tx.subscribe();
            let mut ready = ready_tx.subscribe();
            let interval = config.resync_interval;
            let mut stop = stop_rx.clone();
            tasks.spawn(async move {
                let mut next = tokio::time::Instant::now() + interval;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(next) => {
                            next = tokio::time::Instant::now() + interval;
                        }
                        r = gate.changed() => {
                            if r.is_err() || !*gate.borrow_and_update() { continue; }
                        }
                        r = ready.changed() => {
                            if r.is_err() { continue; }
                        }
                        _ = stop.changed() => return,
                    }
                    let keys = crate::reconcile::read_keys(&index);
                    info!(keys = keys.len(), "resync: every FQDN key queued");
                    for k in keys {
                        queue.add(k, None);
                    }
                }
            });
        }

        // Turns true at shutdown: releases workers still waiting for the caches or the lease.
        let (closing_tx, closing_rx) = channel::channel(false);
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..config.workers.max(1) {
            workers.spawn(work(
                Arc::clone(&reconciler),
                Arc::clone(&queue),
                Arc::clone(&metrics),
                gate_tx.subscribe(),
                ready_tx.subscribe(),
                closing_rx.clone(),
            ));
        }
        info!(gateway = %config.gateway, resync = ?config.resync_interval,
              namespaces = ?config.namespaces, leader_election = config.leader_election.is_some(),
              "RouteController started");

        shutdown.await;
        info!("shutting down: finishing in-flight reconciles");
        let _ = closing_tx.send(true);
        queue.close();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!("in-flight reconciles did not finish within {SHUTDOWN_GRACE:?}; stopping them");
            workers.abort_all();
        }
        watch_tasks.abort_all();
        let _ = stop_tx.send(true);
        // The lease is released and the servers stop; bounded so that the process exits in time.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        tasks.abort_all();
        drop(write(&index));
        info!("RouteController stopped");
        Ok(())
    }
}

/// A worker: takes keys while this replica writes and the caches are synced.
async fn work(
    reconciler: Arc<Reconciler>,
    queue: Arc<WorkQueue>,
    metrics: Arc<Metrics>,
    mut gate: channel::Receiver<bool>,
    mut ready: channel::Receiver<bool>,
    mut closing: channel::Receiver<bool>,
) {
    // Before the caches are complete a missing object may only be unlisted yet: do not act on it.
    // A worker waiting here has nothing in flight, so shutdown releases it at once.
    tokio::select! {
        synced = async { ready.wait_for(|r| *r).await.is_ok() } => if !synced { return },
        _ = closing.wait_for(|c| *c) => return,
    }
    loop {
        tokio::select! {
            leads = async { gate.wait_for(|g| *g).await.is_ok() } => if !leads { return },
            _ = closing.wait_for(|c| *c) => return,
        }
        let Some(item) = queue.next().await else {
            return;
        };
        if !*gate.borrow() {
            // Lost the lease between waiting and dequeuing: leave the key for when we lead again.
            queue.done(&item);
            queue.add(item.key, item.seen);
            continue;
        }
        let started = Instant::now();
        let result = reconciler.reconcile(&item.key).await;
        metrics.reconciled(started.elapsed().as_secs_f64(), result.is_ok());
        match result {
            Ok(()) => {
                if let Some(seen) = item.seen {
                    metrics.propagated(seen.elapsed().as_secs_f64());
                }
                queue.done(&item);
            }
            Err(e) => {
                let delay = queue.failed(&item);
                warn!(namespace = %item.key.namespace, fqdn = %item.key.fqdn, error = %e, retry_in = ?delay, "Reconciler error");
            }
        }
        metrics.set_queue_depth(queue.depth());
    }
}
