//! Helpers of the tests that run `cfnet` subcommands with servers (demo, dev up, controller).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

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
