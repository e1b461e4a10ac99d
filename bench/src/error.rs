//! What can go wrong in a benchmark run. Every message names the phase or object and what to do.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(
        "cannot start the local control plane: {detail} (run scripts/install-control-plane.sh first)"
    )]
    ControlPlane { detail: String },

    #[error("Kubernetes API call failed while {doing}: {source}")]
    Kube {
        doing: String,
        #[source]
        source: kube::Error,
    },

    #[error(
        "phase {phase}: timed out after {timeout:?} waiting for {what}; last observed: {observed} \
         (look at the controller log {log} )"
    )]
    Timeout {
        phase: String,
        what: String,
        timeout: Duration,
        observed: String,
        log: String,
    },

    #[error("phase {phase}: wrong count: {detail}")]
    Count { phase: String, detail: String },

    #[error(
        "cannot start the controller {exe}: {detail} (build it first: cargo build --release -p cfnet)"
    )]
    ControllerStart { exe: PathBuf, detail: String },

    #[error("the controller exited during phase {phase} ({status}); see its log {log}")]
    ControllerExited {
        phase: String,
        status: String,
        log: String,
    },

    #[error("cannot scrape the controller's metrics at {url}: {detail}")]
    Scrape { url: String, detail: String },

    #[error("cannot read the controller's metrics: {detail}")]
    Metrics { detail: String },

    #[error("cannot sample process {pid}: {detail}")]
    Proc { pid: u32, detail: String },

    #[error("istiod (cfnet bench --istiod): {detail}")]
    Istiod { detail: String },

    #[error("baseline: {detail}")]
    Baseline { detail: String },

    #[error("cannot write {path}: {detail} (check that --out names a writable directory)")]
    Output { path: PathBuf, detail: String },

    #[error("the watch of {kind} ended: {detail}")]
    Watch { kind: String, detail: String },
}

impl BenchError {
    pub(crate) fn kube(doing: impl Into<String>) -> impl FnOnce(kube::Error) -> BenchError {
        let doing = doing.into();
        move |source| BenchError::Kube { doing, source }
    }
}
