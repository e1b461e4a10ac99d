//! Back-off for an unreachable Kubernetes API server, as a layer under every request of the controller's
//! client (watches, applies, status writes, events, the lease).
//!
//! Why a layer: kube-runtime's watcher emits its `Init` marker *before* each re-list, and its back-off
//! resets on every `Ok` item, so while the API server is down every watch retries every ~1 s forever and
//! nothing says when the next attempt comes. Here, once a request fails without an HTTP answer
//! (connection refused, TLS failure, timeout), every request is held until the next attempt, the wait
//! doubling from 500 ms to 30 s, and each failed attempt is logged once with the server, the error and
//! the wait. Any HTTP answer — even an error status — proves the server reachable and resets the back-off.
//! A healthy client pays one uncontended mutex per request.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tower_service::Service;
use tracing::{info, warn};

use crate::error::error_chain;

/// The error type of kube's client stack.
type BoxError = Box<dyn StdError + Send + Sync>;

/// Wait after the first failed attempt.
const FIRST_DELAY: Duration = Duration::from_millis(500);
/// The wait never grows beyond this.
const MAX_DELAY: Duration = Duration::from_secs(30);

/// Wraps a kube client stack in [`ApiBackoff`]; `server` is the URL named in the log lines.
#[derive(Clone, Debug)]
pub(crate) struct ApiBackoffLayer {
    server: Arc<str>,
}

impl ApiBackoffLayer {
    pub(crate) fn new(server: impl Into<String>) -> Self {
        ApiBackoffLayer {
            server: Arc::from(server.into()),
        }
    }
}

impl<S> tower_layer::Layer<S> for ApiBackoffLayer {
    type Service = ApiBackoff<S>;

    fn layer(&self, inner: S) -> ApiBackoff<S> {
        ApiBackoff {
            inner,
            server: Arc::clone(&self.server),
            outage: Arc::new(Mutex::new(Outage::default())),
            wait: None,
        }
    }
}

/// Consecutive failed attempts to reach the server and when the next one may start.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outage {
    /// Failed attempts in a row; 0 = reachable.
    attempts: u32,
    /// When the last failed attempt was counted. A failure of a request sent before then belongs to that
    /// attempt (requests sent together fail together) and is not counted again.
    counted_at: Option<Instant>,
    /// Requests are held until then.
    retry_at: Option<Instant>,
}

impl Outage {
    /// A request sent at `sent` failed at `now`. `Some((attempt, wait))` when this is a new failed attempt.
    fn failed(&mut self, sent: Instant, now: Instant) -> Option<(u32, Duration)> {
        if self.counted_at.is_some_and(|counted| sent < counted) {
            return None;
        }
        self.attempts = self.attempts.saturating_add(1);
        let wait = delay_after(self.attempts);
        self.counted_at = Some(now);
        self.retry_at = Some(now + wait);
        Some((self.attempts, wait))
    }

    /// An HTTP answer arrived: the outage (if any) is over. Returns how many failed attempts it ends.
    fn answered(&mut self) -> u32 {
        std::mem::take(self).attempts
    }
}

/// 500 ms, 1 s, 2 s, … capped at [`MAX_DELAY`].
fn delay_after(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_DELAY.saturating_mul(1u32 << doublings).min(MAX_DELAY)
}

/// See the module documentation.
pub(crate) struct ApiBackoff<S> {
    inner: S,
    server: Arc<str>,
    outage: Arc<Mutex<Outage>>,
    wait: Option<Pin<Box<Sleep>>>,
}

fn lock(outage: &Mutex<Outage>) -> std::sync::MutexGuard<'_, Outage> {
    // The state is a few plain fields updated in one step: a panic elsewhere cannot leave it half-written.
    outage.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for ApiBackoff<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>, Error = BoxError>,
    S::Future: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // kube's client sends through a tower Buffer: while this is Pending, requests queue there.
        loop {
            let retry_at = lock(&self.outage).retry_at;
            match retry_at {
                Some(at) if at > Instant::now() => {
                    let wait = self
                        .wait
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                    if wait.deadline() != at {
                        wait.as_mut().reset(at);
                    }
                    if wait.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    // Slept until `at`; a failure meanwhile may have moved the next attempt: look again.
                }
                _ => {
                    self.wait = None;
                    return self.inner.poll_ready(cx);
                }
            }
        }
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let sent = Instant::now();
        let outage = Arc::clone(&self.outage);
        let server = Arc::clone(&self.server);
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            match &result {
                Ok(_) => {
                    let ended = lock(&outage).answered();
                    if ended > 0 {
                        info!(server = %server, failed_attempts = ended, "Kubernetes API server reachable again");
                    }
                }
                Err(e) => {
                    let counted = lock(&outage).failed(sent, Instant::now());
                    if let Some((attempt, wait)) = counted {
                        let error: &(dyn StdError + 'static) = e.as_ref();
                        warn!(server = %server, attempt, retry_in = ?wait, error = %error_chain(error),
                              "Kubernetes API server unreachable; holding requests until the next attempt \
                               (is it running, and is the kubeconfig's server address right?)");
                    }
                }
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_half_a_second_up_to_thirty() {
        let waits: Vec<Duration> = (1..=9).map(delay_after).collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(
            ms,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(delay_after(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn requests_failing_together_count_as_one_attempt() {
        let mut outage = Outage::default();
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(3);
        assert_eq!(outage.failed(t0, t1), Some((1, FIRST_DELAY)));
        // Sent at the same time as the first one: the same attempt.
        assert_eq!(outage.failed(t0, t1 + Duration::from_millis(1)), None);
        assert_eq!(outage.retry_at, Some(t1 + FIRST_DELAY));
        // Sent after the wait: a new attempt, twice the wait.
        let t2 = t1 + FIRST_DELAY;
        assert_eq!(
            outage.failed(t2, t2 + Duration::from_millis(2)),
            Some((2, Duration::from_secs(1)))
        );
        assert_eq!(outage.answered(), 2);
        assert_eq!(outage, Outage::default());
        assert_eq!(outage.answered(), 0);
    }
}
