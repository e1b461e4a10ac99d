//! Kubeconfig files and clients for the local API server.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::Error;

/// A kubeconfig (YAML) for `server`, trusting the CA file `ca`, authenticating with a bearer `token`.
pub(crate) fn kubeconfig_yaml(
    server: &str,
    ca: &Path,
    user: &str,
    token: &str,
) -> Result<String, Error> {
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cfnet-dev", "cluster": {
            "server": server,
            "certificate-authority": ca.display().to_string(),
        }}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "cfnet-dev", "context": {"cluster": "cfnet-dev", "user": user, "namespace": "default"}}],
        "current-context": "cfnet-dev",
    });
    serde_yaml_ng::to_string(&doc).map_err(|e| Error::Kubeconfig {
        context: format!("for {user}"),
        message: e.to_string(),
    })
}

/// A client built from kubeconfig YAML, exactly as a user of the written file would get it.
pub(crate) async fn client_from_yaml(yaml: &str, what: &str) -> Result<Client, Error> {
    let err = |message: String| Error::Kubeconfig {
        context: what.to_string(),
        message,
    };
    let kubeconfig = Kubeconfig::from_yaml(yaml).map_err(|e| err(e.to_string()))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| err(e.to_string()))?;
    Client::try_from(config).map_err(|e| err(e.to_string()))
}

/// Writes `contents` to `path` atomically (temp file + rename): readers never see a half-written kubeconfig.
pub(crate) fn write_atomically(path: &Path, contents: &str) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).map_err(Error::io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(Error::io(format!(
        "renaming {} to {}",
        tmp.display(),
        path.display()
    )))
}
