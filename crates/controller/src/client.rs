//! The one Kubernetes client constructor for the controller: `cfnet controller`, `cfnet demo` and the
//! controller's integration tests all build their client here, so they all run the same client stack,
//! with the API back-off layer (backoff.rs) under every request.

use std::path::{Path, PathBuf};

use kube::Client;
use kube::client::ClientBuilder;
use kube::config::{InferConfigError, KubeConfigOptions, Kubeconfig, KubeconfigError};

use crate::backoff::ApiBackoffLayer;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read --kubeconfig {} (give a readable kubeconfig file)", path.display())]
    ReadKubeconfig {
        path: PathBuf,
        source: KubeconfigError,
    },
    #[error("cannot use --kubeconfig {} (check its current context)", path.display())]
    UseKubeconfig {
        path: PathBuf,
        source: KubeconfigError,
    },
    #[error(
        "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account"
    )]
    Infer { source: InferConfigError },
    #[error("cannot build a Kubernetes client from the configuration")]
    Build { source: kube::Error },
}

/// The configuration in `kubeconfig`, or (None) from `$KUBECONFIG`, `~/.kube/config`, then the pod's
/// service account.
pub async fn kube_config(kubeconfig: Option<&Path>) -> Result<kube::Config, ClientError> {
    let Some(path) = kubeconfig else {
        return kube::Config::infer()
            .await
            .map_err(|source| ClientError::Infer { source });
    };
    let kc = Kubeconfig::read_from(path).map_err(|source| ClientError::ReadKubeconfig {
        path: path.to_owned(),
        source,
    })?;
    kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|source| ClientError::UseKubeconfig {
            path: path.to_owned(),
            source,
        })
}

/// A client for `config` whose requests back off while the API server is unreachable.
pub fn client(config: kube::Config) -> Result<Client, ClientError> {
    let server = config.cluster_url.to_string();
    let builder =
        ClientBuilder::try_from(config).map_err(|source| ClientError::Build { source })?;
    Ok(builder.with_layer(&ApiBackoffLayer::new(server)).build())
}

/// [`kube_config`], then [`client`].
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, ClientError> {
    client(kube_config(kubeconfig).await?)
}
