//! The I/O: one ADS stream to istiod's plaintext gRPC port, driven by [`AdsState`].

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use futures::channel::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::Streaming;
use tonic::transport::{Channel, Endpoint};

use crate::ads::{AdsState, Received};
use crate::config::ProxyConfig;
use crate::error::{Error, chain};
use crate::proxy::Proxy;

/// istiod sends each resource type in one message: a gateway with 10,000 routes gets route configurations and
/// clusters of tens of MB, far above tonic's 4 MiB default.
const MAX_MESSAGE_BYTES: usize = 1 << 30;
/// Updates a [`Subscription`] holds for a caller that has not read them yet before it stops reading istiod.
const UPDATE_BUFFER: usize = 1024;

/// A connected ADS stream.
struct Stream {
    addr: String,
    node: String,
    requests: mpsc::UnboundedSender<DiscoveryRequest>,
    responses: Streaming<DiscoveryResponse>,
    ads: AdsState,
}

fn endpoint(addr: &str, timeout: Duration) -> Result<Endpoint, Error> {
    let invalid = |reason: String| Error::InvalidAddress {
        addr: addr.to_owned(),
        reason,
    };
    if addr.starts_with("https://") {
        return Err(invalid(
            "only istiod's plaintext port is supported, not TLS".to_owned(),
        ));
    }
    let uri = if addr.starts_with("http://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let endpoint = Endpoint::from_shared(uri).map_err(|e| invalid(chain(&e)))?;
    if endpoint.uri().port_u16().is_none() {
        return Err(invalid("the port is missing".to_owned()));
    }
    Ok(endpoint
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        // A subscription lives for long: notice a dead istiod within about 40 s. istiod refuses pings more often
        // than every 15 s (its keepalive enforcement: half its 30 s interval), and pings without a stream.
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(false)
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(16 << 20)))
}

impl Stream {
    /// Connects and opens the stream by `deadline` (`timeout` is the caller's whole budget, for messages).
    async fn open(
        addr: &str,
        proxy: &Proxy,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let node = proxy.node_id();
        let endpoint = endpoint(addr, timeout)?;
        let unreachable = |reason: String| Error::Unreachable {
            addr: addr.to_owned(),
            reason,
        };
        let channel: Channel = tokio::time::timeout_at(deadline, endpoint.connect())
            .await
            .map_err(|_| unreachable(format!("no connection within {timeout:?}")))?
            // tonic's top-level text is only "transport error"; the cause is in its sources.
            .map_err(|e| {
                unreachable(chain(&e).trim_start_matches("transport error: ").to_owned())
            })?;
        let mut client = AggregatedDiscoveryServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let mut ads = AdsState::new(proxy.node());
        let (requests, outgoing) = mpsc::unbounded();
        for request in ads.initial_requests() {
            // The receiver is alive: it is moved into the call below.
            let _ = requests.unbounded_send(request);
        }
        let responses =
            tokio::time::timeout_at(deadline, client.stream_aggregated_resources(outgoing))
                .await
                .map_err(|_| unreachable(format!("no answer to the stream within {timeout:?}")))?
                .map_err(|status| Error::Refused {
                    addr: addr.to_owned(),
                    node: node.clone(),
                    code: format!("{:?}", status.code()),
                    message: status.message().to_owned(),
                })?
                .into_inner();
        tracing::debug!(addr, node, "xDS stream open");
        Ok(Stream {
            addr: addr.to_owned(),
            node,
            requests,
            responses,
            ads,
        })
    }

    /// Waits for the next response, answers it (ACK / NACK / new subscriptions) and applies it.
    async fn step(&mut self) -> Result<(Received, Instant), Error> {
        loop {
            let message = self.responses.message().await;
            let at = Instant::now();
            let response = match message {
                Ok(Some(r)) => r,
                Ok(None) => return Err(self.closed("istiod ended the stream".to_owned())),
                Err(status) => {
                    return Err(self.closed(format!("{:?}: {}", status.code(), status.message())));
                }
            };
            let step = self.ads.on_response(response);
            for request in step.requests {
                if self.requests.unbounded_send(request).is_err() {
                    return Err(self.closed("the request stream stopped".to_owned()));
                }
            }
            let Some(received) = step.received else {
                continue;
            };
            match &received.rejected {
                Some(reason) => {
                    tracing::warn!(addr = %self.addr, node = %self.node, kind = received.kind.short(),
                        version = %received.version, reason = %reason, "xDS response refused (NACK)")
                }
                None => tracing::debug!(addr = %self.addr, kind = received.kind.short(),
                    version = %received.version, resources = received.names.len(), "xDS response applied"),
            }
            return Ok((received, at));
        }
    }

    fn closed(&self, reason: String) -> Error {
        Error::Closed {
            addr: self.addr.clone(),
            node: self.node.clone(),
            reason,
        }
    }

    fn missing(&self) -> String {
        let missing = self.ads.config().missing();
        let shown: Vec<String> = missing
            .iter()
            .take(5)
            .map(|(kind, name)| format!("{} {name}", kind.short()))
            .collect();
        let more = missing.len().saturating_sub(shown.len());
        let mut text = shown.join(", ");
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        text
    }

    /// Steps until the configuration is complete, or the deadline.
    async fn until_complete(&mut self, deadline: Instant, timeout: Duration) -> Result<(), Error> {
        while !self.ads.config().missing().is_empty() {
            match tokio::time::timeout_at(deadline, self.step()).await {
                Err(_) => {
                    return Err(Error::Incomplete {
                        addr: self.addr.clone(),
                        node: self.node.clone(),
                        timeout,
                        missing: self.missing(),
                    });
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok((received, _))) => {
                    if let Some(reason) = received.rejected {
                        return Err(Error::Invalid {
                            addr: self.addr.clone(),
                            node: self.node.clone(),
                            reason,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// The whole configuration istiod serves `proxy` now: listeners, the route configurations they reference,
/// clusters and the EDS clusters' endpoints, over one ADS stream that is closed afterwards. `timeout` bounds
/// the whole call (connect included).
pub async fn fetch(addr: &str, proxy: &Proxy, timeout: Duration) -> Result<ProxyConfig, Error> {
    let deadline = Instant::now() + timeout;
    let mut stream = Stream::open(addr, proxy, deadline, timeout).await?;
    stream.until_complete(deadline, timeout).await?;
    Ok(stream.ads.config().clone())
}

/// One response istiod pushed and the configuration after it.
#[derive(Clone, Debug)]
pub struct Update {
    /// Which resource type, its version and nonce, the resources it held, and whether it was refused.
    pub received: Received,
    /// When the response arrived (before it was decoded).
    pub at: Instant,
    /// The configuration after this response.
    pub config: ProxyConfig,
    /// Whether every referenced route configuration and EDS cluster has been served.
    pub complete: bool,
    /// Position in the stream, from 1.
    pub seq: u64,
}

/// A long-lived ADS stream: ACKs every push and yields each as an [`Update`], in order. Dropping it closes
/// the stream.
///
/// The stream is read by a background task, so ACKs and [`Update::at`] do not depend on how fast the caller
/// reads; up to 1,024 unread updates are buffered, after which istiod is read only as fast as the caller reads.
///
/// A closed stream ends the subscription ([`Error::Closed`]); there is no reconnect. istiod installed by its Helm
/// chart closes connections after `--keepaliveMaxServerConnectionAge` (30 min); pilot-discovery's own default,
/// used by the local istiod, is never.
#[derive(Debug)]
pub struct Subscription {
    addr: String,
    node: String,
    updates: tokio::sync::mpsc::Receiver<Result<Arc<Update>, Error>>,
    latest: Arc<Update>,
    task: JoinHandle<()>,
}

impl Subscription {
    /// Connects and waits until the first complete configuration (within `timeout`).
    pub async fn start(addr: &str, proxy: &Proxy, timeout: Duration) -> Result<Self, Error> {
        let deadline = Instant::now() + timeout;
        let mut stream = Stream::open(addr, proxy, deadline, timeout).await?;
        let mut seq = 0;
        let (received, at) = loop {
            let step = tokio::time::timeout_at(deadline, stream.step())
                .await
                .map_err(|_| Error::Incomplete {
                    addr: stream.addr.clone(),
                    node: stream.node.clone(),
                    timeout,
                    missing: stream.missing(),
                })?;
            let (received, at) = step?;
            seq += 1;
            if stream.ads.config().missing().is_empty() {
                break (received, at);
            }
        };
        let latest = Arc::new(Update {
            received,
            at,
            config: stream.ads.config().clone(),
            complete: true,
            seq,
        });
        let (tx, updates) = tokio::sync::mpsc::channel(UPDATE_BUFFER);
        let (addr, node) = (stream.addr.clone(), stream.node.clone());
        let task = tokio::spawn(async move {
            loop {
                let item = stream.step().await.map(|(received, at)| {
                    seq += 1;
                    let config = stream.ads.config().clone();
                    Arc::new(Update {
                        received,
                        at,
                        complete: config.missing().is_empty(),
                        config,
                        seq,
                    })
                });
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Subscription {
            addr,
            node,
            updates,
            latest,
            task,
        })
    }

    /// The last update read (after [`Self::start`]: the first complete configuration).
    pub fn latest(&self) -> &Arc<Update> {
        &self.latest
    }

    pub fn config(&self) -> &ProxyConfig {
        &self.latest.config
    }

    /// The next update, waiting at most `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Result<Arc<Update>, Error> {
        self.next_until(Instant::now() + timeout, timeout, "is new")
            .await
    }

    async fn next_until(
        &mut self,
        deadline: Instant,
        timeout: Duration,
        waited_for: &str,
    ) -> Result<Arc<Update>, Error> {
        match tokio::time::timeout_at(deadline, self.updates.recv()).await {
            Err(_) => Err(Error::NotServed {
                addr: self.addr.clone(),
                node: self.node.clone(),
                waited_for: waited_for.to_owned(),
                timeout,
                last: self.describe_latest(),
            }),
            Ok(None) => Err(Error::Closed {
                addr: self.addr.clone(),
                node: self.node.clone(),
                reason: "the stream ended earlier".to_owned(),
            }),
            Ok(Some(Err(e))) => Err(e),
            Ok(Some(Ok(update))) => {
                self.latest = Arc::clone(&update);
                Ok(update)
            }
        }
    }

    /// The first update whose configuration satisfies `done`, the current one included (then it is returned
    /// at once). `what` describes the wait in the timeout error, e.g. "routes shop.example.com/api to s-1".
    pub async fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&ProxyConfig) -> bool,
    ) -> Result<Arc<Update>, Error> {
        if done(&self.latest.config) {
            return Ok(Arc::clone(&self.latest));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let update = self.next_until(deadline, timeout, what).await?;
            if done(&update.config) {
                return Ok(update);
            }
        }
    }

    fn describe_latest(&self) -> String {
        let r = &self.latest.received;
        format!(
            "#{} {} version {}",
            self.latest.seq,
            r.kind.short(),
            r.version
        )
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_secs(2);

    /// A loopback port nothing listens on: bound, then released.
    fn closed_port() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        addr
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_with_what_to_do() {
        let addr = closed_port();
        let err = fetch(&addr, &Proxy::default(), SHORT).await.unwrap_err();
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("istiod at {addr} is not reachable (")),
            "{text}"
        );
        assert!(text.contains("refused"), "{text}");
        assert!(
            text.ends_with("start it with `cfnet dev up --istiod` or pass --xds"),
            "{text}"
        );
        let err = Subscription::start(&addr, &Proxy::default(), SHORT)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_within_the_timeout() {
        // Accepts TCP connections and never answers, like a hung istiod.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let held = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                conns.push(conn);
            }
        });
        let started = std::time::Instant::now();
        let err = fetch(&addr, &Proxy::default(), Duration::from_millis(500))
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(err, Error::Unreachable { .. } | Error::Incomplete { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&format!("istiod at {addr}")),
            "{err}"
        );
        held.abort();
    }

    #[tokio::test]
    async fn bad_addresses_say_what_to_pass() {
        for addr in ["127.0.0.1", "https://127.0.0.1:15012", "not a uri:1"] {
            let err = fetch(addr, &Proxy::default(), SHORT).await.unwrap_err();
            assert!(
                matches!(err, Error::InvalidAddress { .. }),
                "{addr}: {err:?}"
            );
            assert!(err.to_string().contains("HOST:PORT"), "{err}");
        }
    }
}
