//! Errors of the local control plane. Each message names what failed and what to do about it.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while installing, starting or using the local control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{binary} not found (looked in: {searched}); install with `cfnet dev install` \
         (or scripts/install-control-plane.sh), or point $KUBEBUILDER_ASSETS at a directory holding \
         etcd and kube-apiserver"
    )]
    MissingBinary {
        binary: &'static str,
        searched: String,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("could not start {binary} ({path}): {source}; reinstall with `cfnet dev install`")]
    Spawn {
        binary: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{server} exited during start-up ({status}); its log {log} ends with:\n{log_tail}")]
    ServerExited {
        server: &'static str,
        status: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error(
        "kube-apiserver was not ready within {timeout:?} (last answer: {last}); its log {log} ends with:\n{log_tail}"
    )]
    NotReady {
        timeout: Duration,
        last: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error("{context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },

    #[error("building a client from the generated kubeconfig {context}: {message}")]
    Kubeconfig { context: String, message: String },

    #[error("test data {file}: {message}")]
    TestData { file: &'static str, message: String },

    #[error("CustomResourceDefinitions not Established within {timeout:?}: {names:?}")]
    CrdsNotEstablished {
        timeout: Duration,
        names: Vec<String>,
    },

    #[error("the task installing the CRDs failed: {0}")]
    CrdTask(String),

    #[error("could not generate the service-account signing key: {0}")]
    KeyGeneration(String),

    #[error(
        "{installer} failed ({status}); read its output above, fix the cause and rerun `cfnet dev install`"
    )]
    InstallerFailed {
        installer: &'static str,
        status: String,
    },

    #[error(
        "{installer} finished but did not report where it installed (expected a line `{expected}`)"
    )]
    InstallerOutput {
        installer: &'static str,
        expected: &'static str,
    },

    #[error(
        "istiod (pilot-discovery, istio.io/istio@{wanted}) is not installed: {reason}; install it with \
         `cfnet dev install` (or scripts/install-istiod.sh; needs Go, 10-20 minutes the first time)"
    )]
    MissingIstiod { wanted: String, reason: String },

    #[error("rendering the chart's Istio objects: {0}")]
    Helm(String),

    #[error("GET {url}: {message}")]
    Http { url: String, message: String },

    #[error(
        "istiod was not ready within {timeout:?} (last answer of {url}: {last}); its log {log} ends with:\n{log_tail}"
    )]
    IstiodNotReady {
        timeout: Duration,
        url: String,
        last: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error(
        "Istio's validating webhook (istiod {webhook_url}) did not take effect within {timeout:?}: a dry-run \
         create of an invalid VirtualService got {last}; istiod's log {log} ends with:\n{log_tail}"
    )]
    WebhookNotEffective {
        timeout: Duration,
        webhook_url: String,
        last: String,
        log: PathBuf,
        log_tail: String,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    pub(crate) fn kube(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let context = context.into();
        move |source| Error::Kube { context, source }
    }
}
