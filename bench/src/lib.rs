//! `cfnet bench`: upstream's RouteController stress test (reference §4.2), extended, against a real local
//! control plane, with the controller running as a separate process from the release binary.
//!
//! Phases (reported in this order; steady state and drift repair run right after bulk add, while the N
//! routes are programmed): bulk add of N routes to a cold controller, 100 one-at-a-time adds, updates and
//! deletes, bulk delete, 1,000 routes over 50 shared FQDNs with 200 random updates, drift repair (the
//! Service and VirtualService of 100 routes deleted, and the VirtualService edited, one at a time), and
//! 60 s of steady state. The bare-client limit (see [`baseline`]) runs last, with the controller stopped.

mod assemble;
pub mod baseline;
pub mod error;
pub mod observe;
mod plot;
mod process;
mod procfs;
mod prom;
pub mod results;
pub mod routes;
mod scenario;
mod stats;

use std::path::PathBuf;

pub use error::BenchError;
pub use results::Results;

/// Gateway the benchmark's controller binds external routes to (the Istio CRDs are present, Istio is not).
pub const GATEWAY: &str = "cf-system/istio-ingressgateway";

/// What to run. [`Config::new`] gives the sizes; `quick` shrinks them for CI.
#[derive(Clone, Debug)]
pub struct Config {
    /// N: routes of the bulk phases and of the steady state.
    pub routes: usize,
    pub quick: bool,
    pub out: PathBuf,
    /// The `cfnet` binary whose `controller` subcommand is measured.
    pub controller_exe: PathBuf,
    /// The command line, for the report.
    pub command: String,
    /// Routes added, updated and deleted one at a time.
    pub one_by_one: usize,
    pub shared_routes: usize,
    pub shared_fqdns: usize,
    pub shared_updates: usize,
    /// Programmed routes whose Service is deleted, then VirtualService deleted, then VirtualService
    /// edited, one at a time, each waiting for the controller's repair (capped at `routes`).
    pub drift_routes: usize,
    pub steady_seconds: u64,
    /// `RESYNC_INTERVAL` given to the controller: shorter than the steady state, so that a resync happens
    /// inside it and must not write.
    pub resync_seconds: u64,
    /// In-flight requests of the bare client (= the controller's workers) and of route creation.
    pub concurrency: usize,
    /// The controller's `--events`; the bare client publishes the `Created` Event per route when `All`.
    pub events: cfnet_controller::Events,
    /// `--istiod`: the Route → Envoy phases (scenario/envoy.rs) after the others.
    pub istiod: bool,
    /// `--envoy-only`: only the Route → Envoy phases (with istiod), none of the others nor the bare client.
    pub envoy_only: bool,
    /// `--istiod-env KEY=VALUE`: extra environment of istiod (e.g. `PILOT_DEBOUNCE_AFTER=10ms`).
    pub istiod_env: Vec<(String, String)>,
}

impl Config {
    pub fn new(routes: usize, quick: bool, out: PathBuf, controller_exe: PathBuf) -> Self {
        Config {
            routes,
            quick,
            out,
            controller_exe,
            command: String::new(),
            one_by_one: 100,
            shared_routes: if quick { 200 } else { 1000 },
            shared_fqdns: 50,
            shared_updates: if quick { 100 } else { 200 },
            drift_routes: if quick { 50 } else { 100 },
            steady_seconds: if quick { 6 } else { 60 },
            resync_seconds: if quick { 2 } else { 30 },
            concurrency: cfnet_controller::Config::new(GATEWAY).workers,
            events: cfnet_controller::Events::All,
            istiod: false,
            envoy_only: false,
            istiod_env: Vec::new(),
        }
    }
}

/// Starts a fresh local control plane, runs every phase, writes results.json, report.md and latency.svg
/// into `config.out`, and returns the results. Any phase that does not complete, or whose object counts
/// are wrong, is an error.
pub async fn run(config: &Config) -> Result<Results, BenchError> {
    let control_plane =
        cfnet_testenv::ControlPlane::start()
            .await
            .map_err(|e| BenchError::ControlPlane {
                detail: e.to_string(),
            })?;
    let results = scenario::run(&control_plane, config).await?;
    results::write_all(&results, &config.out)?;
    Ok(results)
}
