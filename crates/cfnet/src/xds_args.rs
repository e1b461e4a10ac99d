//! `--xds ADDR`, shared by the commands that ask istiod for a proxy's Envoy configuration (`cfnet
//! proxy-config`, `cfnet explain`): istiod's plaintext xDS address, given directly or read from the
//! `DIR/istiod` file `cfnet dev up --istiod --state-dir DIR` writes (`127.0.0.1:PORT` and a newline).

use std::path::{Path, PathBuf};

/// The name of the file in a `cfnet dev up` state directory that holds istiod's xDS address.
pub const ISTIOD_FILE: &str = "istiod";

#[derive(clap::Args, Debug, Clone, Default)]
pub struct XdsArgs {
    /// istiod's plaintext xDS address HOST:PORT (default: read from DIR/istiod of --state-dir)
    #[arg(long, value_name = "HOST:PORT")]
    pub xds: Option<String>,
}

/// A state directory's istiod file that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XdsArgsError {
    #[error(
        "cannot read istiod's xDS address from {path}: {reason}; pass --xds HOST:PORT or restart `cfnet dev up --istiod`"
    )]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "{path} holds no xDS address ({contents:?}); it should be HOST:PORT as `cfnet dev up --istiod` writes it: restart that or pass --xds HOST:PORT"
    )]
    Empty { path: PathBuf, contents: String },
}

impl XdsArgs {
    /// `--xds` when given, else the address in `state_dir/istiod` (trimmed). `None` when neither `--xds` nor a
    /// state dir with an istiod file is given.
    pub fn address(&self, state_dir: Option<&Path>) -> Result<Option<String>, XdsArgsError> {
        if let Some(addr) = &self.xds {
            return Ok(Some(addr.clone()));
        }
        let Some(dir) = state_dir else {
            return Ok(None);
        };
        let path = dir.join(ISTIOD_FILE);
        let contents = match std::fs::read_to_string(&path) {
            Ok(contents) => contents,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(XdsArgsError::Unreadable {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        let addr = contents.trim();
        if addr.is_empty() || addr.contains(char::is_whitespace) {
            return Err(XdsArgsError::Empty { path, contents });
        }
        Ok(Some(addr.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(xds: Option<&str>) -> XdsArgs {
        XdsArgs {
            xds: xds.map(str::to_owned),
        }
    }

    #[test]
    fn xds_flag_wins_over_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ISTIOD_FILE), "127.0.0.1:1\n").unwrap();
        assert_eq!(
            args(Some("10.0.0.1:15010"))
                .address(Some(dir.path()))
                .unwrap()
                .as_deref(),
            Some("10.0.0.1:15010")
        );
    }

    #[test]
    fn state_dir_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ISTIOD_FILE), "127.0.0.1:40123\n").unwrap();
        assert_eq!(
            args(None).address(Some(dir.path())).unwrap().as_deref(),
            Some("127.0.0.1:40123")
        );
    }

    #[test]
    fn none_without_flag_or_file() {
        assert_eq!(args(None).address(None).unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(args(None).address(Some(dir.path())).unwrap(), None);
    }

    #[test]
    fn an_empty_or_garbled_file_names_the_path_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ISTIOD_FILE);
        for contents in ["", "\n", "127.0.0.1:1 127.0.0.1:2\n"] {
            std::fs::write(&path, contents).unwrap();
            let err = args(None).address(Some(dir.path())).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains("--xds"), "{text}");
        }
    }

    #[test]
    fn an_unreadable_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: read_to_string fails with something other than NotFound.
        std::fs::create_dir(dir.path().join(ISTIOD_FILE)).unwrap();
        let err = args(None).address(Some(dir.path())).unwrap_err();
        assert!(matches!(err, XdsArgsError::Unreadable { .. }), "{err}");
    }
}
