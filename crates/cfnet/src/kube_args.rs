//! The Kubernetes connection flags the client commands share (`explain`, `diff`): `--kubeconfig`, `--context`
//! and `--state-dir` (the directory of `cfnet dev up`).

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

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
    #[error("cannot read kubeconfig {} ({source}): pass a readable file with --kubeconfig, or --state-dir of `cfnet dev up`", path.display())]
    Read {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("cannot use {} of kubeconfig {} ({source}): check the context with `kubectl config get-contexts`", context_text(context.as_deref()), path.display())]
    Use {
        path: PathBuf,
        context: Option<String>,
        source: kube::config::KubeconfigError,
    },
    #[error(
        "no kubeconfig found ({source}): pass --kubeconfig FILE, set KUBECONFIG, or pass --state-dir of `cfnet dev up`"
    )]
    Infer {
        source: kube::config::KubeconfigError,
    },
    #[error("cannot build a Kubernetes client from kubeconfig {} ({source})", path_text(path.as_deref()))]
    Client {
        path: Option<PathBuf>,
        source: kube::Error,
    },
}

fn context_text(context: Option<&str>) -> String {
    match context {
        Some(c) => format!("context {c:?}"),
        None => "the current context".to_owned(),
    }
}

fn path_text(path: Option<&Path>) -> String {
    path.map_or_else(|| "(default)".to_owned(), |p| p.display().to_string())
}

impl KubeArgs {
    /// The kubeconfig file to read: `--kubeconfig`, else DIR/kubeconfig of `--state-dir`; `None`: kube's default
    /// ($KUBECONFIG, then ~/.kube/config).
    fn kubeconfig_path(&self) -> Option<PathBuf> {
        self.kubeconfig
            .clone()
            .or_else(|| self.state_dir.as_ref().map(|dir| dir.join("kubeconfig")))
    }

    /// A client for the chosen kubeconfig and context. Requests are not retried: a client command reports an
    /// unreachable API server at once.
    pub async fn client(&self) -> Result<kube::Client, KubeArgsError> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let path = self.kubeconfig_path();
        let config = match &path {
            Some(path) => {
                let kubeconfig =
                    Kubeconfig::read_from(path).map_err(|source| KubeArgsError::Read {
                        path: path.clone(),
                        source,
                    })?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|source| KubeArgsError::Use {
                        path: path.clone(),
                        context: self.context.clone(),
                        source,
                    })?
            }
            None => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|source| KubeArgsError::Infer { source })?,
        };
        kube::Client::try_from(config).map_err(|source| KubeArgsError::Client { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_flag_wins_over_the_state_dir() {
        let args = KubeArgs {
            kubeconfig: Some("/a/config".into()),
            state_dir: Some("/dev-state".into()),
            ..KubeArgs::default()
        };
        assert_eq!(args.kubeconfig_path(), Some(PathBuf::from("/a/config")));
        let args = KubeArgs {
            state_dir: Some("/dev-state".into()),
            ..KubeArgs::default()
        };
        assert_eq!(
            args.kubeconfig_path(),
            Some(PathBuf::from("/dev-state/kubeconfig"))
        );
        assert_eq!(KubeArgs::default().kubeconfig_path(), None);
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_is_one_line_naming_it() {
        let args = KubeArgs {
            kubeconfig: Some("/nonexistent/kubeconfig".into()),
            ..KubeArgs::default()
        };
        let Err(err) = args.client().await else {
            panic!("a missing kubeconfig must fail");
        };
        let err = err.to_string();
        assert!(
            err.starts_with("cannot read kubeconfig /nonexistent/kubeconfig"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }
}
