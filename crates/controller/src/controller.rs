//! The controller's tasks and their lifetime: HTTP servers, watches, leader election, the resync and the
//! workers, started in that order and stopped in reverse on shutdown.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cfnet_api::FIELD_MANAGER;
use cfnet_translate::Settings;
use kube::Client;
use kube::runtime::events::Reporter;
use tokio::sync::watch as channel;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::config::Config;
use crate::error::StartError;
use crate::execute::Writer;
use crate::index::{Index, read, write};
use crate::metrics::Metrics;
use crate::queue::WorkQueue;
use crate::reconcile::Reconciler;
use crate::watch::{Feed, SyncTracker};
use crate::worker::{Signals, work};
use crate::{discovery, leader, server, watch};

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
) -> Result<(), StartError> {
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

    /// Turns true once Routes, Services and the routing kind (VirtualServices or HTTPRoutes) are listed.
    pub fn ready(&self) -> channel::Receiver<bool> {
        self.ready_tx.subscribe()
    }

    /// True while this replica writes (always, without leader election).
    pub fn leading(&self) -> channel::Receiver<bool> {
        self.gate_tx.subscribe()
    }

    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), StartError> {
        let (stop_tx, stop_rx) = channel::channel(false);
        let mut tasks = JoinSet::new();
        // HTTP servers first: a bad address is a startup error, reported at once.
        self.serve_http(&stop_rx, &mut tasks).await?;

        let index = Arc::new(RwLock::new(Index::default()));
        let queue = WorkQueue::new();
        let watches = self.watch(&index, &queue);
        if let Some(le) = self.config.leader_election.clone() {
            let campaign = leader::campaign(
                self.client.clone(),
                le,
                self.gate_tx.clone(),
                stop_rx.clone(),
            );
            tasks.spawn(campaign);
        }
        tasks.spawn(resync(
            Arc::clone(&index),
            Arc::clone(&queue),
            self.signals(),
            self.config.resync_interval,
            stop_rx.clone(),
        ));
        let (closing_tx, closing_rx) = channel::channel(false);
        let reconciler = Arc::new(self.reconciler(&index));
        let mut workers = JoinSet::new();
        for _ in 0..self.config.workers.max(1) {
            let signals = self.signals();
            workers.spawn(work(
                Arc::clone(&reconciler),
                Arc::clone(&queue),
                Arc::clone(&self.metrics),
                signals,
                closing_rx.clone(),
            ));
        }
        let config = &self.config;
        info!(gateway = %config.gateway, routing_api = %config.routing_api,
              gateway_api_parent = %config.gateway_api_parent, resync = ?config.resync_interval,
              namespaces = ?config.namespaces, leader_election = config.leader_election.is_some(),
              "RouteController started");

        shutdown.await;
        info!("shutting down: finishing in-flight reconciles");
        let _ = closing_tx.send(true);
        queue.close();
        stop(workers, watches, tasks, stop_tx).await;
        drop(write(&index));
        info!("RouteController stopped");
        Ok(())
    }

    fn signals(&self) -> Signals {
        Signals {
            gate: self.gate_tx.subscribe(),
            ready: self.ready_tx.subscribe(),
        }
    }

    /// Binds `/metrics` and the health probes where configured and serves them until `stop`.
    async fn serve_http(
        &self,
        stop: &channel::Receiver<bool>,
        tasks: &mut JoinSet<()>,
    ) -> Result<(), StartError> {
        let mut listeners = Vec::new();
        if let Some(addr) = self.config.metrics_addr {
            listeners.push(server::bind("metrics", "--metrics-addr", addr).await?);
        }
        if let Some(addr) = self.config.health_addr {
            listeners.push(server::bind("health probes", "--health-addr", addr).await?);
        }
        for l in listeners {
            if let Ok(a) = l.local_addr() {
                info!(addr = %a, "serving /metrics, /healthz and /readyz");
            }
            let ready = self.ready_tx.subscribe();
            tasks.spawn(server::serve(
                l,
                Arc::clone(&self.metrics),
                ready,
                stop.clone(),
            ));
        }
        Ok(())
    }

    /// The watch tasks of every namespace scope, feeding `index` and `queue`.
    fn watch(&self, index: &Arc<RwLock<Index>>, queue: &Arc<WorkQueue>) -> JoinSet<()> {
        let scopes: Vec<Option<String>> = if self.config.namespaces.is_empty() {
            vec![None]
        } else {
            self.config.namespaces.iter().cloned().map(Some).collect()
        };
        let feed = Arc::new(Feed {
            index: Arc::clone(index),
            queue: Arc::clone(queue),
            metrics: Arc::clone(&self.metrics),
            sync: SyncTracker::new(scopes.len() * watch::KINDS, self.ready_tx.clone()),
        });
        let mut watches = watch::spawn(&self.client, &scopes, &feed, self.config.routing_api);
        watches.spawn(discovery::watch_routing_kinds(
            self.client.clone(),
            scopes,
            feed,
            self.config.routing_api,
        ));
        watches
    }

    fn reconciler(&self, index: &Arc<RwLock<Index>>) -> Reconciler {
        let identity = self
            .config
            .leader_election
            .as_ref()
            .map(|le| le.identity.clone());
        Reconciler {
            index: Arc::clone(index),
            settings: Settings {
                gateway: self.config.gateway.clone(),
                routing_api: self.config.routing_api,
                gateway_api_parent: self.config.gateway_api_parent.clone(),
            },
            writer: Writer {
                client: self.client.clone(),
                index: Arc::clone(index),
                metrics: Arc::clone(&self.metrics),
                reporter: Reporter {
                    controller: FIELD_MANAGER.into(),
                    instance: identity,
                },
                gate: self.gate_tx.subscribe(),
                events: self.config.events,
            },
        }
    }
}

/// Resync backstop, and a full pass whenever this replica becomes the writer or the caches sync.
async fn resync(
    index: Arc<RwLock<Index>>,
    queue: Arc<WorkQueue>,
    mut signals: Signals,
    interval: Duration,
    mut stop: channel::Receiver<bool>,
) {
    let mut next = tokio::time::Instant::now() + interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {
                next = tokio::time::Instant::now() + interval;
            }
            r = signals.gate.changed() => {
                if r.is_err() || !*signals.gate.borrow_and_update() { continue; }
            }
            r = signals.ready.changed() => {
                if r.is_err() { continue; }
            }
            _ = stop.changed() => return,
        }
        let keys = read(&index).all_keys();
        info!(keys = keys.len(), "resync: every FQDN key queued");
        for k in keys {
            queue.add(k, None);
        }
    }
}

/// Waits for the workers (bounded by [`SHUTDOWN_GRACE`]), then stops the watches, the servers and the
/// lease (bounded too, so that the process exits in time).
async fn stop(
    mut workers: JoinSet<()>,
    mut watches: JoinSet<()>,
    mut tasks: JoinSet<()>,
    stop_tx: channel::Sender<bool>,
) {
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!("in-flight reconciles did not finish within {SHUTDOWN_GRACE:?}; stopping them");
        workers.abort_all();
    }
    watches.abort_all();
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
}
