//! Pure views over a [`ProxyConfig`](crate::ProxyConfig): serde-serializable rows in a deterministic order,
//! and plain-text tables of them.

pub mod cluster;
pub mod listener;
pub mod route;
pub mod table;

pub use cluster::{ClusterView, IstioClusterName, clusters};
pub use listener::{FilterChainView, ListenerView, listeners};
pub use route::{
    ClusterWeightView, DirectResponseView, MatchView, PathView, RedirectView, RouteView, routes,
};
pub use table::{clusters_table, listeners_table, routes_table};
