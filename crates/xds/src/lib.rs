//! An xDS client for istiod: what Envoy configuration istiod serves a gateway or a sidecar, fetched once
//! ([`fetch`]) or followed push by push ([`Subscription`]), and pure views over it ([`view`], [`lookup`]).
//!
//! See the crate's README.md for what the client asks istiod for and why.

mod ads;
mod client;
pub mod config;
mod error;
pub mod lookup;
pub mod proxy;
pub mod view;

#[cfg(test)]
mod testing;

pub use ads::Received;
pub use client::{Subscription, Update, fetch};
pub use config::{DecodeError, ProxyConfig, ResourceKind};
/// The Envoy types (from the `envoy-types` crate) the configuration is made of.
pub use envoy_types::pb::envoy;
pub use error::Error;
pub use lookup::Lookup;
pub use proxy::{ParseProxyError, Proxy, Workload};
