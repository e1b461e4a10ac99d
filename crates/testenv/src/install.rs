//! `cfnet dev install`: runs the installer scripts (control plane, istiod), embedded in the binary so that the
//! command works from anywhere (not only inside the repository).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::Error;

const INSTALLER: &str = include_str!("../../../scripts/install-control-plane.sh");
/// Called by [`INSTALLER`] as `$(dirname "$0")/install-control-plane-debian.sh` when the Go build fails.
const DEBIAN_FALLBACK: &str = include_str!("../../../scripts/install-control-plane-debian.sh");

/// Builds istiod (`pilot-discovery`) from the Go module proxy into the same cache.
const ISTIOD_INSTALLER: &str = include_str!("../../../scripts/install-istiod.sh");

/// What the installer reports on its last line: `source=... version=... dir=...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallReport {
    /// `KUBEBUILDER_ASSETS`, `cache`, `go-modules` or `debian`.
    pub source: String,
    /// kube-apiserver version, e.g. `v1.37.2`.
    pub version: String,
    /// Directory holding `etcd` and `kube-apiserver`.
    pub dir: PathBuf,
}

/// Runs the control-plane installer (idempotent: a filled cache is reused). Its progress goes to our stderr.
pub fn install() -> Result<InstallReport, Error> {
    const NAME: &str = "the control-plane installer";
    let stdout = run_script(
        NAME,
        &[
            ("install-control-plane.sh", INSTALLER),
            ("install-control-plane-debian.sh", DEBIAN_FALLBACK),
        ],
        "source=",
    )?;
    stdout
        .lines()
        .rev()
        .find_map(parse_report)
        .ok_or(Error::InstallerOutput {
            installer: NAME,
            expected: "source=... version=... dir=...",
        })
}

/// What the istiod installer reports on its last line: `version=... path=...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IstiodInstallReport {
    /// The istio.io/istio module version built, e.g. `v0.0.0-20260827124520-eed52ebb66ad`.
    pub version: String,
    /// The `pilot-discovery` binary.
    pub path: PathBuf,
}

/// Runs the istiod installer (idempotent; the first build takes 10-20 minutes and needs Go). Its progress goes
/// to our stderr.
pub fn install_istiod() -> Result<IstiodInstallReport, Error> {
    const NAME: &str = "the istiod installer";
    let stdout = run_script(NAME, &[("install-istiod.sh", ISTIOD_INSTALLER)], "version=")?;
    stdout
        .lines()
        .rev()
        .find_map(parse_istiod_report)
        .ok_or(Error::InstallerOutput {
            installer: NAME,
            expected: "version=... path=...",
        })
}

/// The istio.io/istio version the embedded installer builds: `$CFNET_ISTIO_VERSION` when set, as in the
/// script, else the script's pinned default.
pub fn wanted_istio_version() -> String {
    match std::env::var("CFNET_ISTIO_VERSION") {
        Ok(v) if !v.is_empty() => v,
        _ => pinned_istio_version(ISTIOD_INSTALLER).to_string(),
    }
}

/// The default of `ISTIO_VERSION="${CFNET_ISTIO_VERSION:-<default>}"` in the installer script.
fn pinned_istio_version(script: &str) -> &str {
    script
        .lines()
        .find_map(|l| l.strip_prefix("ISTIO_VERSION=\"${CFNET_ISTIO_VERSION:-"))
        .and_then(|rest| rest.split_once('}'))
        .map_or("", |(version, _)| version)
}

/// Writes `scripts` (file name, contents) into a temp dir and runs the first with bash. Returns its stdout;
/// every line not starting with `report_prefix` is progress and is passed on to our stderr.
fn run_script(
    installer: &'static str,
    scripts: &[(&str, &str)],
    report_prefix: &str,
) -> Result<String, Error> {
    let dir = tempfile::Builder::new()
        .prefix("cfnet-install-")
        .tempdir()
        .map_err(Error::io(format!("creating a temp dir for {installer}")))?;
    for (name, contents) in scripts {
        let path = dir.path().join(name);
        std::fs::write(&path, contents)
            .map_err(Error::io(format!("writing {}", path.display())))?;
    }
    let main = dir
        .path()
        .join(scripts.first().map_or("", |(name, _)| *name));
    let output = Command::new("bash")
        .arg(&main)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(Error::io(format!(
            "running bash for {installer} (is bash installed?)"
        )))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    for line in stdout.lines().filter(|l| !l.starts_with(report_prefix)) {
        eprintln!("{line}");
    }
    if !output.status.success() {
        return Err(Error::InstallerFailed {
            installer,
            status: output.status.to_string(),
        });
    }
    Ok(stdout)
}

fn parse_istiod_report(line: &str) -> Option<IstiodInstallReport> {
    // `path=` is last and may contain spaces.
    let (head, path) = line.split_once(" path=")?;
    let version = head.strip_prefix("version=")?;
    Some(IstiodInstallReport {
        version: version.to_string(),
        path: PathBuf::from(path),
    })
}

fn parse_report(line: &str) -> Option<InstallReport> {
    let mut source = None;
    let mut version = None;
    let mut dir = None;
    // `dir=` is last and may contain spaces.
    let (head, path) = line.split_once(" dir=")?;
    dir.get_or_insert(PathBuf::from(path));
    for field in head.split_whitespace() {
        match field.split_once('=') {
            Some(("source", v)) => source = Some(v.to_string()),
            Some(("version", v)) => version = Some(v.to_string()),
            _ => {}
        }
    }
    Some(InstallReport {
        source: source?,
        version: version?,
        dir: dir?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_report_line() {
        let r = parse_report("source=go-modules version=v1.37.2 dir=/home/a b/.cache/cfnet/bin")
            .unwrap();
        assert_eq!(r.source, "go-modules");
        assert_eq!(r.version, "v1.37.2");
        assert_eq!(r.dir, PathBuf::from("/home/a b/.cache/cfnet/bin"));
        assert_eq!(parse_report("install-control-plane: building"), None);
    }

    #[test]
    fn parses_the_istiod_report_line() {
        let r = parse_istiod_report(
            "version=v0.0.0-2026 path=/home/a b/.cache/cfnet/bin/pilot-discovery",
        )
        .unwrap();
        assert_eq!(r.version, "v0.0.0-2026");
        assert_eq!(
            r.path,
            PathBuf::from("/home/a b/.cache/cfnet/bin/pilot-discovery")
        );
        assert_eq!(parse_istiod_report("install-istiod: building"), None);
    }

    #[test]
    fn the_pinned_istio_version_is_read_from_the_installer() {
        assert_eq!(
            pinned_istio_version(ISTIOD_INSTALLER),
            "v0.0.0-20260827124520-eed52ebb66ad"
        );
        assert_eq!(pinned_istio_version("echo hi"), "");
    }
}
