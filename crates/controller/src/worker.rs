//! A worker: takes FQDN keys from the queue while this replica writes and the caches are synced, and
//! reconciles them.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch as channel;
use tracing::{debug, warn};

use crate::error::error_chain;
use crate::metrics::Metrics;
use crate::queue::WorkQueue;
use crate::reconcile::{Reconciled, Reconciler};

/// What a worker waits on: leadership and synced caches.
pub(crate) struct Signals {
    /// True while this replica writes.
    pub gate: channel::Receiver<bool>,
    /// True once every watch has listed.
    pub ready: channel::Receiver<bool>,
}

pub(crate) async fn work(
    reconciler: Arc<Reconciler>,
    queue: Arc<WorkQueue>,
    metrics: Arc<Metrics>,
    mut signals: Signals,
    mut closing: channel::Receiver<bool>,
) {
    // Before the caches are complete a missing object may only be unlisted yet: do not act on it.
    // A worker waiting here has nothing in flight, so shutdown releases it at once.
    tokio::select! {
        synced = async { signals.ready.wait_for(|r| *r).await.is_ok() } => if !synced { return },
        _ = closing.wait_for(|c| *c) => return,
    }
    loop {
        tokio::select! {
            leads = async { signals.gate.wait_for(|g| *g).await.is_ok() } => if !leads { return },
            _ = closing.wait_for(|c| *c) => return,
        }
        let Some(item) = queue.next().await else {
            return;
        };
        if !*signals.gate.borrow() {
            // Lost the lease between waiting and dequeuing: leave the key for when we lead again.
            queue.done(&item);
            queue.add(item.key, item.seen);
            continue;
        }
        let started = Instant::now();
        let result = reconciler.reconcile(&item.key).await;
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(Reconciled::Done) => {
                metrics.reconciled(seconds, Ok(()));
                if let Some(seen) = item.seen {
                    metrics.propagated(seen.elapsed().as_secs_f64());
                }
                queue.done(&item);
            }
            Ok(Reconciled::Handover) => {
                // Not an error: no back-off. The key waits for whoever leads next (the resync on
                // becoming the writer queues every key anyway).
                metrics.reconciled(seconds, Ok(()));
                debug!(namespace = %item.key.namespace, fqdn = %item.key.fqdn,
                       "lost the lease during the reconcile; the key is left to the leader");
                queue.done(&item);
                queue.add(item.key, item.seen);
            }
            Err(e) => {
                metrics.reconciled(seconds, Err(e.category()));
                let delay = queue.failed(&item);
                warn!(namespace = %item.key.namespace, fqdn = %item.key.fqdn, reason = e.category().as_str(),
                      failures = e.failures().len(), error = %error_chain(&e), retry_in = ?delay, "Reconciler error");
            }
        }
        metrics.set_queue_depth(queue.depth());
    }
}
