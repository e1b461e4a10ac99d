//! `cfnet bench` (not implemented yet).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("cfnet bench: not implemented yet");
    ExitCode::from(2)
}
