//! Running as a kubectl plugin: kubectl runs `kubectl-cfnet` (found on PATH) for `kubectl cfnet …`,
//! passing the rest of the command line. The commands and flags are the same; only the name in usage
//! and help follows the invocation, for every command alike.

use std::ffi::OsStr;
use std::path::Path;

/// The name to show for a binary invoked as `argv0`: `kubectl-cfnet` (or any `kubectl-NAME`) is shown
/// as `kubectl NAME`; `None` for every other name (shown as `cfnet`).
pub fn display_name(argv0: &OsStr) -> Option<String> {
    let base = Path::new(argv0).file_name()?.to_str()?;
    let plugin = base.strip_prefix("kubectl-")?;
    (!plugin.is_empty()).then(|| format!("kubectl {}", plugin.replace('-', " ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_plugin_names() {
        let cases = [
            ("/usr/local/bin/kubectl-cfnet", Some("kubectl cfnet")),
            ("kubectl-cfnet", Some("kubectl cfnet")),
            ("/usr/bin/cfnet", None),
            ("./target/debug/cfnet", None),
            ("kubectl-", None),
        ];
        for (argv0, want) in cases {
            assert_eq!(display_name(OsStr::new(argv0)).as_deref(), want, "{argv0}");
        }
    }
}
