//! The istiod connection flag the xDS commands share (`proxy-config`, `explain`): `--xds`, or the DIR/istiod
//! file `cfnet dev up --istiod` writes.

use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct XdsArgs {
    /// istiod's plaintext xDS address HOST:PORT (default: read from DIR/istiod of --state-dir)
    #[arg(long)]
    pub xds: Option<String>,
}

/// DIR/istiod exists but cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum XdsArgsError {
    #[error("cannot read istiod's address from {} ({source}): pass --xds HOST:PORT, or restart `cfnet dev up --istiod`", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is empty: pass --xds HOST:PORT, or restart `cfnet dev up --istiod`", path.display())]
    Empty { path: PathBuf },
}

impl XdsArgs {
    /// `--xds`, else the address in `state_dir`/istiod when that file exists; `None` when neither is given.
    pub fn address(&self, state_dir: Option<&Path>) -> Result<Option<String>, XdsArgsError> {
        if let Some(addr) = &self.xds {
            return Ok(Some(addr.clone()));
        }
        let Some(dir) = state_dir else {
            return Ok(None);
        };
        let path = dir.join("istiod");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            // `cfnet dev up` without --istiod writes no file: no istiod to ask.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(XdsArgsError::Read { path, source }),
        };
        match text.trim() {
            "" => Err(XdsArgsError::Empty { path }),
            addr => Ok(Some(addr.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_then_state_dir_file_then_none() {
        let dir = tempfile::tempdir().unwrap();
        let with_flag = XdsArgs {
            xds: Some("127.0.0.1:1".into()),
        };
        assert_eq!(
            with_flag.address(Some(dir.path())).unwrap().as_deref(),
            Some("127.0.0.1:1")
        );
        let none = XdsArgs::default();
        assert_eq!(none.address(None).unwrap(), None);
        assert_eq!(none.address(Some(dir.path())).unwrap(), None);
        std::fs::write(dir.path().join("istiod"), "127.0.0.1:15010\n").unwrap();
        assert_eq!(
            none.address(Some(dir.path())).unwrap().as_deref(),
            Some("127.0.0.1:15010")
        );
        std::fs::write(dir.path().join("istiod"), "\n").unwrap();
        let err = none.address(Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
    }
}
