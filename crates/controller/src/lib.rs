//! The RouteController: Routes → Services + Istio VirtualServices (or Gateway API HTTPRoutes), on a real
//! API server.
//!
//! Data flows one way (docs/architecture.md has the picture): watched objects (watch.rs) → in-memory
//! index by (namespace, FQDN) (index/) → translation of the key's Routes (`cfnet_translate`) → a pure
//! plan (plan.rs) → its execution, the only I/O (execute.rs) → the Ready condition of each Route
//! (status.rs). The one back edge: execute.rs records what its writes returned with
//! `Index::record_write`. The work item is the FQDN key (queue.rs), so bursts of events on one FQDN
//! coalesce into one reconcile. Each kind of child (Service, VirtualService, HTTPRoute) is one impl of
//! the `Child` trait (child/); discovery.rs starts the watches of the routing kinds the API serves. `diff`
//! runs the same translation and plan over listed objects without writing (`cfnet diff`).
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), cfnet_controller::StartError> {
//! let config = cfnet_controller::Config::new("cf-system/istio-ingressgateway");
//! let controller = cfnet_controller::Controller::new(config, client);
//! let metrics = controller.metrics(); // read in-process: metrics.encode()
//! controller.run(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod backoff;
mod changes;
mod child;
mod client;
mod config;
mod controller;
pub mod diff;
mod discovery;
mod error;
mod execute;
mod index;
mod leader;
mod metrics;
mod packed;
mod plan;
mod queue;
mod reconcile;
mod runner;
pub mod scrape;
#[cfg(test)]
mod served;
mod server;
mod small_set;
mod status;
mod watch;
mod worker;

pub use child::is_ours;
pub use client::{ClientError, client, connect, kube_config};
pub use config::{
    Config, ConfigError, DEFAULT_RESYNC_INTERVAL, EnvConfig, Events, LEASE_NAME, LeaderElection,
    parse_events, parse_listen_addr, parse_resync_interval,
};
pub use controller::{Controller, run};
pub use error::{Category, Failure, Operation, ReconcileError, StartError, error_chain};
pub use metrics::{Metrics, RECONCILE_BUCKETS, names};
pub use runner::{InProcess, RunnerError};
pub use scrape::sum_samples;
