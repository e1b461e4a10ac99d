//! `cfnet dev` (not implemented yet).

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Install etcd and kube-apiserver into the cache directory.
    Install,
}

pub fn run(_cmd: Command) -> ExitCode {
    eprintln!("cfnet dev: not implemented yet");
    ExitCode::from(2)
}
