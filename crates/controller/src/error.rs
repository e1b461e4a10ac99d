//! Errors of the controller library. Each names the object and what to do about it.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "server-side apply of {kind} {namespace}/{name} failed: {source}; the controller retries with back-off (check its RBAC: patch on {kind})"
    )]
    Apply {
        kind: &'static str,
        namespace: String,
        name: String,
        source: Box<kube::Error>,
    },
    #[error(
        "delete of {kind} {namespace}/{name} failed: {source}; the controller retries with back-off"
    )]
    Delete {
        kind: &'static str,
        namespace: String,
        name: String,
        source: Box<kube::Error>,
    },
    #[error(
        "reading {kind} {namespace}/{name} failed: {source}; the controller retries with back-off"
    )]
    Get {
        kind: &'static str,
        namespace: String,
        name: String,
        source: Box<kube::Error>,
    },
    #[error(
        "patching the finalizer of Route {namespace}/{name} failed: {source}; the controller retries with back-off"
    )]
    Finalizer {
        namespace: String,
        name: String,
        source: Box<kube::Error>,
    },
    #[error(
        "writing the status of Route {namespace}/{name} failed: {source}; the controller retries with back-off"
    )]
    Status {
        namespace: String,
        name: String,
        source: Box<kube::Error>,
    },
    #[error(
        "not the leader: the write to {kind} {namespace}/{name} was not sent; the new leader takes over"
    )]
    NotLeader {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error("cannot serve {what} on {addr}: {source}; choose a free address with {flag}")]
    Bind {
        what: &'static str,
        flag: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("leader election on Lease {namespace}/{name} failed: {source}")]
    LeaderElection {
        namespace: String,
        name: String,
        source: Box<kube_lease_manager::LeaseManagerError>,
    },
}

impl Error {
    /// Not-found on the object the write named.
    pub(crate) fn is_not_found(source: &kube::Error) -> bool {
        matches!(source, kube::Error::Api(s) if s.is_not_found())
    }
}
