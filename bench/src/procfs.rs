//! CPU time and memory of the controller process, read from /proc.
//!
//! CPU seconds = (utime + stime) of /proc/<pid>/stat divided by the clock tick rate; peak RSS = `VmHWM`
//! of /proc/<pid>/status (the kernel's high-water mark of the resident set, so one read at the end of
//! the run gives the peak even between samples).

use std::path::PathBuf;

use serde::Serialize;

use crate::error::BenchError;

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ProcessSample {
    /// User + system CPU time consumed so far.
    pub cpu_seconds: f64,
    /// Current resident set.
    pub rss_bytes: u64,
    /// Peak resident set so far (VmHWM).
    pub peak_rss_bytes: u64,
}

impl ProcessSample {
    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_bytes as f64 / (1024.0 * 1024.0)
    }
}

/// Reads /proc/<pid>/stat and /proc/<pid>/status.
pub fn sample(pid: u32) -> Result<ProcessSample, BenchError> {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file)).map_err(|source| BenchError::Proc {
            pid,
            detail: format!(
                "cannot read /proc/{pid}/{file}: {source} (has the controller exited?)"
            ),
        })
    };
    let stat = read("stat")?;
    let status = read("status")?;
    let ticks = parse_stat_cpu_ticks(&stat).ok_or_else(|| BenchError::Proc {
        pid,
        detail: format!("/proc/{pid}/stat has no utime/stime fields: {stat:?}"),
    })?;
    Ok(ProcessSample {
        cpu_seconds: ticks as f64 / clock_ticks_per_second(),
        rss_bytes: parse_status_kib(&status, "VmRSS").unwrap_or(0) * 1024,
        peak_rss_bytes: parse_status_kib(&status, "VmHWM").unwrap_or(0) * 1024,
    })
}

/// utime + stime (fields 14 and 15 of /proc/<pid>/stat). The command name (field 2) is in parentheses
/// and may itself hold spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace();
    // after ')' comes field 3 (state); utime is field 14, i.e. the 12th from here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `Key:   1234 kB` line of /proc/<pid>/status, in KiB.
pub fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a constant of the running system; no memory is passed.
    #[allow(unsafe_code)]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_command_with_spaces_and_parens() {
        let stat = "4242 (cfnet (x) y) S 1 4242 4242 0 -1 4194560 2500 0 0 0 150 50 0 0 20 0 9 0 123 1000 200 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(200));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn status_kib_lines() {
        let status =
            "Name:\tcfnet\nVmPeak:\t  900000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   30000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(40960));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(30000));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn samples_this_process() {
        // Burn a little CPU so that the counter is visibly non-zero.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let s = sample(std::process::id()).unwrap();
        assert!(s.peak_rss_bytes >= s.rss_bytes && s.rss_bytes > 0, "{s:?}");
        assert!(s.cpu_seconds > 0.0, "{s:?}");
    }
}
