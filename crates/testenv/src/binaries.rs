//! Where etcd and kube-apiserver come from: `$KUBEBUILDER_ASSETS` (the envtest convention), then the cache
//! directory `cfnet dev install` fills. istiod (`pilot-discovery`) comes only from the cache, in the version
//! the installer pins.

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
    locate_in(&dirs)
}

/// The first of `dirs` holding both binaries.
fn locate_in(dirs: &[PathBuf]) -> Result<Binaries, Error> {
    for dir in dirs {
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

/// Finds istiod (`pilot-discovery`) of the wanted istio.io/istio version in the cache directory.
pub fn locate_istiod() -> Result<PathBuf, Error> {
    let wanted = crate::install::wanted_istio_version();
    match cache_bin_dir() {
        Some(dir) => locate_istiod_in(&dir, &wanted),
        None => Err(Error::MissingIstiod {
            wanted,
            reason:
                "no cache directory ($CFNET_CACHE_DIR, $XDG_CACHE_HOME and $HOME are all unset)"
                    .into(),
        }),
    }
}

/// `dir/pilot-discovery` if it exists and `dir/pilot-discovery.version` names `wanted`.
fn locate_istiod_in(dir: &Path, wanted: &str) -> Result<PathBuf, Error> {
    let binary = dir.join("pilot-discovery");
    let missing = |reason: String| Error::MissingIstiod {
        wanted: wanted.to_string(),
        reason,
    };
    if !is_executable(&binary) {
        return Err(missing(format!("{} not found", binary.display())));
    }
    let version_file = dir.join("pilot-discovery.version");
    let installed = std::fs::read_to_string(&version_file).unwrap_or_default();
    if installed.trim() != wanted {
        return Err(missing(format!(
            "{} holds {:?}, not the wanted version",
            version_file.display(),
            installed.trim()
        )));
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn touch_executable(path: &Path) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn missing_binaries_name_the_install_command() {
        let empty = tempfile::tempdir().unwrap();
        let err = locate_in(&[empty.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("etcd and kube-apiserver not found"), "{err}");
        assert!(err.contains("cfnet dev install"), "{err}");
        assert!(err.contains(&empty.path().display().to_string()), "{err}");

        touch_executable(&empty.path().join("etcd"));
        let err = locate_in(&[empty.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("kube-apiserver not found"), "{err}");
    }

    #[test]
    fn the_first_directory_with_both_binaries_wins() {
        let (half, full) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        touch_executable(&half.path().join("kube-apiserver"));
        touch_executable(&full.path().join("etcd"));
        touch_executable(&full.path().join("kube-apiserver"));
        let found = locate_in(&[half.path().to_path_buf(), full.path().to_path_buf()]).unwrap();
        assert_eq!(found.etcd, full.path().join("etcd"));
        assert_eq!(found.kube_apiserver, full.path().join("kube-apiserver"));
    }

    #[test]
    fn istiod_is_found_only_in_the_wanted_version() {
        let dir = tempfile::tempdir().unwrap();
        let err = locate_istiod_in(dir.path(), "v1").unwrap_err().to_string();
        assert!(err.contains("pilot-discovery not found"), "{err}");
        assert!(err.contains("cfnet dev install"), "{err}");

        touch_executable(&dir.path().join("pilot-discovery"));
        let err = locate_istiod_in(dir.path(), "v1").unwrap_err().to_string();
        assert!(err.contains("holds \"\""), "{err}");

        std::fs::write(dir.path().join("pilot-discovery.version"), "v0\n").unwrap();
        let err = locate_istiod_in(dir.path(), "v1").unwrap_err().to_string();
        assert!(
            err.contains("holds \"v0\", not the wanted version"),
            "{err}"
        );
        assert!(err.contains("istio.io/istio@v1"), "{err}");

        std::fs::write(dir.path().join("pilot-discovery.version"), "v1\n").unwrap();
        assert_eq!(
            locate_istiod_in(dir.path(), "v1").unwrap(),
            dir.path().join("pilot-discovery")
        );
    }
}
