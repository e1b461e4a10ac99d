//! The work queue of FQDN keys.
//!
//! kube-runtime's `Controller` is keyed by `ObjectRef<K>` of one kind; our work item is a (namespace,
//! FQDN) that Routes, Services and VirtualServices all map to, so a small purpose-built queue is simpler
//! than bending `Controller` to it. Semantics (client-go's workqueue, which upstream used):
//! - a key waiting in the queue is held once, however many events name it (bursts coalesce);
//! - a key is never processed by two workers at once; a key added while in flight runs again after;
//! - failed keys come back after an exponential back-off (5 ms doubling to 5 min).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cfnet_translate::FqdnKey;
use tokio::sync::Notify;

const BACKOFF_BASE: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

#[derive(Default)]
struct State {
    ready: VecDeque<FqdnKey>,
    queued: HashSet<FqdnKey>,
    in_flight: HashSet<FqdnKey>,
    /// Added while in flight: back into `ready` when the worker is done.
    again: HashSet<FqdnKey>,
    /// Earliest unprocessed Route change per key, for the propagation-latency histogram.
    seen: HashMap<FqdnKey, Instant>,
    failures: HashMap<FqdnKey, u32>,
    closed: bool,
}

/// One dequeued key and when the oldest Route change it carries was seen.
#[derive(Debug)]
pub struct Work {
    pub key: FqdnKey,
    pub seen: Option<Instant>,
}

#[derive(Default)]
pub struct WorkQueue {
    state: Mutex<State>,
    notify: Notify,
}

impl WorkQueue {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another worker panicked mid-update; the sets stay usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `key`; `seen` is when the Route change behind it was observed, if it is one.
    pub fn add(&self, key: FqdnKey, seen: Option<Instant>) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        if let Some(at) = seen {
            s.seen
                .entry(key.clone())
                .and_modify(|t| *t = (*t).min(at))
                .or_insert(at);
        }
        if s.in_flight.contains(&key) {
            s.again.insert(key);
        } else if s.queued.insert(key.clone()) {
            s.ready.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Adds `key` after `delay`.
    pub fn add_after(self: &Arc<Self>, key: FqdnKey, delay: Duration) {
        let queue = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key, None);
        });
    }

    /// Waits for the next key; `None` once the queue is closed.
    pub async fn next(&self) -> Option<Work> {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if s.closed {
                    return None;
                }
                if let Some(key) = s.ready.pop_front() {
                    s.queued.remove(&key);
                    s.in_flight.insert(key.clone());
                    let seen = s.seen.remove(&key);
                    let more = !s.ready.is_empty();
                    drop(s);
                    if more {
                        // Pass the baton: another idle worker may take the next key.
                        self.notify.notify_one();
                    }
                    return Some(Work { key, seen });
                }
            }
            notified.await;
        }
    }

    /// The worker finished `work` successfully.
    pub fn done(&self, work: &Work) {
        let mut s = self.lock();
        s.failures.remove(&work.key);
        self.finish(s, &work.key);
    }

    /// The worker failed on `work`: the key comes back after a back-off that grows with each failure.
    /// Returns the delay.
    pub fn failed(self: &Arc<Self>, work: &Work) -> Duration {
        let mut s = self.lock();
        if let Some(at) = work.seen {
            s.seen
                .entry(work.key.clone())
                .and_modify(|t| *t = (*t).min(at))
                .or_insert(at);
        }
        let n = s.failures.entry(work.key.clone()).or_insert(0);
        let delay = backoff(*n);
        *n = n.saturating_add(1);
        self.finish(s, &work.key);
        self.add_after(work.key.clone(), delay);
        delay
    }

    fn finish(&self, mut s: MutexGuard<'_, State>, key: &FqdnKey) {
        s.in_flight.remove(key);
        if s.again.remove(key) && s.queued.insert(key.clone()) {
            s.ready.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Keys waiting (not counting those in flight).
    pub fn depth(&self) -> usize {
        self.lock().ready.len()
    }

    /// Wakes every waiting worker with `None`; later adds are ignored.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
    }
}

fn backoff(failures: u32) -> Duration {
    BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(failures.min(31)))
        .min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(f: &str) -> FqdnKey {
        FqdnKey {
            namespace: "ns".into(),
            fqdn: f.into(),
        }
    }

    #[tokio::test]
    async fn a_burst_of_adds_coalesces_into_one_item() {
        let q = WorkQueue::new();
        for _ in 0..100 {
            q.add(key("a"), None);
        }
        q.add(key("b"), None);
        assert_eq!(q.depth(), 2);
        assert_eq!(q.next().await.unwrap().key, key("a"));
        assert_eq!(q.next().await.unwrap().key, key("b"));
    }

    #[tokio::test]
    async fn a_key_in_flight_is_not_handed_out_twice_and_runs_again_after() {
        let q = WorkQueue::new();
        q.add(key("a"), None);
        let w = q.next().await.unwrap();
        q.add(key("a"), None);
        assert_eq!(q.depth(), 0, "in flight: must wait for done");
        q.done(&w);
        assert_eq!(q.depth(), 1);
        assert_eq!(q.next().await.unwrap().key, key("a"));
    }

    #[tokio::test]
    async fn seen_keeps_the_earliest_change() {
        let q = WorkQueue::new();
        let t0 = Instant::now();
        q.add(key("a"), Some(t0));
        q.add(key("a"), Some(t0 + Duration::from_secs(1)));
        let w = q.next().await.unwrap();
        assert_eq!(w.seen, Some(t0));
    }

    #[tokio::test]
    async fn failures_back_off_and_come_back() {
        let q = WorkQueue::new();
        q.add(key("a"), None);
        let w = q.next().await.unwrap();
        assert_eq!(q.failed(&w), Duration::from_millis(5));
        let w = tokio::time::timeout(Duration::from_secs(2), q.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(q.failed(&w), Duration::from_millis(10));
        let w = tokio::time::timeout(Duration::from_secs(2), q.next())
            .await
            .unwrap()
            .unwrap();
        q.done(&w);
        assert_eq!(backoff(40), BACKOFF_MAX);
    }

    #[tokio::test]
    async fn close_releases_waiting_workers() {
        let q = WorkQueue::new();
        let q2 = Arc::clone(&q);
        let waiter = tokio::spawn(async move { q2.next().await.is_none() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.close();
        assert!(waiter.await.unwrap());
    }
}
