//! Helpers shared by the tests that check servers die with their owner (istiod.rs, lifecycle.rs).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Whether `pid` is a live process (a zombie is dead).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3 is the state; the command name in field 2 is parenthesised and may contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Runs the ignored test `helper` of this test binary in a child process and returns the child and the
/// first line of its output from `marker` on; fails with `missing` when no such line comes.
pub fn run_helper(helper: &str, marker: &str, missing: &str) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            helper,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // libtest prints "test helper_… ... " without a newline before the helper's own output.
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.find(marker).map(|at| l[at..].to_string()))
        .expect(missing);
    (child, line)
}
