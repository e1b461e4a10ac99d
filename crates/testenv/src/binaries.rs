//! Where etcd and kube-apiserver come from: `$KUBEBUILDER_ASSETS` (the envtest convention), then the cache
//! directory `cfnet dev install` fills.

use std::path::{Path, PathBuf};

use crate::Error;

/// The two server binaries of the control plane.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
}

/// The directory `cfnet dev install` puts binaries into: `$CFNET_CACHE_DIR/bin`, else
/// `$XDG_CACHE_HOME/cfnet/bin`, else `~/.cache/cfnet/bin` (same rule as scripts/install-control-plane.sh).
pub fn cache_bin_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = non_empty("CFNET_CACHE_DIR") {
        return Some(dir.join("bin"));
    }
    if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        return Some(dir.join("cfnet").join("bin"));
    }
    non_empty("HOME").map(|home| home.join(".cache").join("cfnet").join("bin"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds etcd and kube-apiserver. `$KUBEBUILDER_ASSETS` wins when it holds both; a missing binary is an
/// error naming the command that installs it.
pub fn locate() -> Result<Binaries, Error> {
    let mut dirs = Vec::new();
    if let Some(assets) = std::env::var_os("KUBEBUILDER_ASSETS").filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(assets));
    }
    if let Some(cache) = cache_bin_dir() {
        dirs.push(cache);
    }
    for dir in &dirs {
        let (etcd, kube_apiserver) = (dir.join("etcd"), dir.join("kube-apiserver"));
        if is_executable(&etcd) && is_executable(&kube_apiserver) {
            return Ok(Binaries {
                etcd,
                kube_apiserver,
            });
        }
    }
    let searched = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let found = |name: &str| dirs.iter().any(|d| is_executable(&d.join(name)));
    let binary = match (found("etcd"), found("kube-apiserver")) {
        (true, false) => "kube-apiserver",
        (false, true) => "etcd",
        _ => "etcd and kube-apiserver",
    };
    Err(Error::MissingBinary { binary, searched })
}
