//! `cfnet dev install`: runs the control-plane installer scripts, embedded in the binary so that the command
//! works from anywhere (not only inside the repository).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::Error;

const INSTALLER: &str = include_str!("../../../scripts/install-control-plane.sh");
/// Called by [`INSTALLER`] as `$(dirname "$0")/install-control-plane-debian.sh` when the Go build fails.
const DEBIAN_FALLBACK: &str = include_str!("../../../scripts/install-control-plane-debian.sh");

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

/// Runs the installer (idempotent: a filled cache is reused). Its progress goes to our stderr.
pub fn install() -> Result<InstallReport, Error> {
    let scripts = tempfile::Builder::new()
        .prefix("cfnet-install-")
        .tempdir()
        .map_err(Error::io("creating a temp dir for the installer scripts"))?;
    let main = scripts.path().join("install-control-plane.sh");
    std::fs::write(&main, INSTALLER).map_err(Error::io(format!("writing {}", main.display())))?;
    let fallback = scripts.path().join("install-control-plane-debian.sh");
    std::fs::write(&fallback, DEBIAN_FALLBACK)
        .map_err(Error::io(format!("writing {}", fallback.display())))?;
    let output = Command::new("bash")
        .arg(&main)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(Error::io(
            "running bash for the control-plane installer (is bash installed?)",
        ))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Anything the script printed besides the report line is progress: pass it on.
    for line in stdout.lines().filter(|l| !l.starts_with("source=")) {
        eprintln!("{line}");
    }
    if !output.status.success() {
        return Err(Error::InstallerFailed {
            status: output.status.to_string(),
        });
    }
    stdout
        .lines()
        .rev()
        .find_map(parse_report)
        .ok_or(Error::InstallerOutput)
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
}
