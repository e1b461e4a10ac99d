//! Helpers shared by cfnet's integration tests: running the built binary, the examples, the processes the
//! tests start, and (in `mesh`) an installation with istiod and the controller.
#![allow(dead_code)]

pub mod mesh;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

/// The built `cfnet` binary.
pub const CFNET: &str = env!("CARGO_BIN_EXE_cfnet");

/// `cfnet ARGS` without `ISTIO_GATEWAY_NAME` (a developer's setting must not change what a test sees).
pub fn cfnet(args: &[&str]) -> Output {
    Command::new(CFNET)
        .args(args)
        .env_remove("ISTIO_GATEWAY_NAME")
        .output()
        .unwrap()
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// examples/*.yaml, sorted.
pub fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("examples"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// Every Route document of examples/*.yaml as JSON, Lists unpacked, in file order.
pub fn example_route_documents() -> Vec<serde_json::Value> {
    fn collect(doc: serde_json::Value, out: &mut Vec<serde_json::Value>) {
        match doc["kind"].as_str() {
            Some("List") => {
                for item in doc["items"].as_array().cloned().unwrap_or_default() {
                    collect(item, out);
                }
            }
            Some("Route") => out.push(doc),
            _ => {}
        }
    }
    let mut routes = Vec::new();
    for file in example_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            collect(serde::Deserialize::deserialize(doc).unwrap(), &mut routes);
        }
    }
    routes
}

/// Kills the child if the test fails half-way (its servers then die through PDEATHSIG).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `signal` to our own child.
pub fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped, so it is not reused.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
}

/// Live processes other than `except` whose command line names `dir` (etcd and kube-apiserver carry it
/// in their flags), as `pid: command line`.
pub fn processes_naming(dir: &Path, except: u32) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != except)
        .filter(|pid| {
            // Zombies are dead.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
            })
        })
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline
                .contains(&needle)
                .then(|| format!("{pid}: {cmdline}"))
        })
        .collect()
}

/// Waits for `child` to exit; fails the test naming `what` after `within`.
pub fn exit_within(child: &mut Child, within: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still running after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
