//! The `cfnet` command as a library: each subcommand's arguments and `run`, and what they share —
//! reading Route manifests (manifest.rs), the offline translation (render.rs), the demo's tables
//! (tables.rs), the cluster flags (kube_args.rs), istiod's xDS address (xds_args.rs), the `kubectl-cfnet`
//! name (plugin.rs) and the process edge (process.rs: logging, runtime, signals). main.rs only parses the
//! command line and dispatches.
//!
//! `demo`, `dev` and `bench` need the local control plane and the benchmark (crates cfnet-testenv and
//! cfnet-bench); they are behind the default-on cargo feature `dev-tools`, so that the controller image
//! (`--no-default-features`) links neither.

pub mod controller;
pub mod crd;
pub mod diff;
pub mod explain;
mod gateway_workload;
pub mod kube_args;
pub mod malloc;
mod manifest;
pub mod plugin;
mod process;
pub mod proxy_config;
pub mod render;
pub mod routing;
#[cfg(feature = "dev-tools")]
mod tables;
pub mod xds_args;

#[cfg(feature = "dev-tools")]
pub mod bench;
#[cfg(feature = "dev-tools")]
pub mod demo;
#[cfg(feature = "dev-tools")]
pub mod dev;
#[cfg(feature = "dev-tools")]
mod gateway_envoy;
