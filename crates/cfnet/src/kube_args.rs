//! The flags every command that reads a cluster shares (`diff`, `explain`): which kubeconfig, which
//! context, or the state directory of `cfnet dev up`. kubectl's conventions, so that the same flags
//! work under `kubectl cfnet …`.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct KubeArgs {
    /// kubeconfig file (default: $KUBECONFIG, then ~/.kube/config; DIR/kubeconfig with --state-dir)
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context (default: the current context)
    #[arg(long)]
    pub context: Option<String>,
    /// state directory of `cfnet dev up`: uses DIR/kubeconfig (and DIR/istiod for xDS)
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

/// Why no client could be built; one line naming the kubeconfig (and context) and what to do.
#[derive(Debug, thiserror::Error)]
pub enum KubeArgsError {
    #[error(
        "cannot read kubeconfig {path} (pass --kubeconfig FILE, set KUBECONFIG, or --state-dir DIR of `cfnet dev up`)"
    )]
    Read {
        path: String,
        #[source]
        source: KubeconfigError,
    },
    #[error(
        "cannot use {context} of kubeconfig {path} (list the contexts with `kubectl config get-contexts`; pick one with --context)"
    )]
    Context {
        path: String,
        context: String,
        #[source]
        source: KubeconfigError,
    },
    #[error(
        "cannot build a Kubernetes client from kubeconfig {path} (check its server and credentials)"
    )]
    Client {
        path: String,
        #[source]
        source: kube::Error,
    },
}

impl KubeArgs {
    /// The kubeconfig file given, if any: --kubeconfig, else DIR/kubeconfig of --state-dir.
    pub fn kubeconfig_path(&self) -> Option<PathBuf> {
        self.kubeconfig
            .clone()
            .or_else(|| self.state_dir.as_deref().map(|d| d.join("kubeconfig")))
    }

    /// A client for the chosen kubeconfig and context. No retries: a command that reads the cluster
    /// once reports an unreachable API server at once.
    pub async fn client(&self) -> Result<kube::Client, KubeArgsError> {
        let path = self.kubeconfig_path();
        let shown = path.as_deref().map_or_else(
            || "$KUBECONFIG or ~/.kube/config".to_owned(),
            |p: &Path| p.display().to_string(),
        );
        let kubeconfig = match &path {
            Some(p) => Kubeconfig::read_from(p),
            None => Kubeconfig::read(),
        }
        .map_err(|source| KubeArgsError::Read {
            path: shown.clone(),
            source,
        })?;
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| KubeArgsError::Context {
                path: shown.clone(),
                context: self.context.as_ref().map_or_else(
                    || "the current context".to_owned(),
                    |c| format!("context {c:?}"),
                ),
                source,
            })?;
        kube::Client::try_from(config).map_err(|source| KubeArgsError::Client {
            path: shown,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: admin
  user: {token: t}
contexts:
- name: dev
  context: {cluster: local, user: admin}
current-context: dev
"#;

    #[tokio::test]
    async fn errors_name_the_kubeconfig_and_the_context() {
        let dir = tempfile::tempdir().unwrap();
        let missing = KubeArgs {
            state_dir: Some(dir.path().to_owned()),
            ..KubeArgs::default()
        };
        let e = missing.client().await.err().unwrap().to_string();
        assert!(
            e.contains(&dir.path().join("kubeconfig").display().to_string())
                && e.contains("--kubeconfig"),
            "{e}"
        );

        std::fs::write(dir.path().join("kubeconfig"), KUBECONFIG).unwrap();
        let ok = KubeArgs {
            state_dir: Some(dir.path().to_owned()),
            ..KubeArgs::default()
        };
        ok.client().await.unwrap();
        let wrong = KubeArgs {
            context: Some("prod".into()),
            ..ok
        };
        let e = wrong.client().await.err().unwrap().to_string();
        assert!(
            e.contains("context \"prod\"") && e.contains("--context"),
            "{e}"
        );
    }

    #[test]
    fn kubeconfig_wins_over_the_state_dir() {
        let args = KubeArgs {
            kubeconfig: Some("/a/kc".into()),
            state_dir: Some("/b".into()),
            ..KubeArgs::default()
        };
        assert_eq!(args.kubeconfig_path(), Some(PathBuf::from("/a/kc")));
    }
}
