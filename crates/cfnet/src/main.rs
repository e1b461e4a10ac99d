//! The `cfnet` binary: wires the crates together and owns the process edge (arguments, environment,
//! exit codes, signals, logging).

mod api_backoff;
mod bench;
mod command;
mod controller;
mod crd;
mod demo;
mod dev;
mod malloc;
mod render;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cfnet",
    version,
    about = "Cloud Foundry networking control plane on Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One-command demo: local control plane + in-process controller + the example Routes, printed as
    /// Routes, Services and VirtualServices; runs until Ctrl-C (or --exit-when-ready).
    Demo(demo::Args),
    /// Run the RouteController: Routes -> Services + Istio VirtualServices.
    Controller(controller::Args),
    /// Translate Route YAML/JSON offline into the Services and VirtualServices the controller would write.
    Render(render::Args),
    /// Print the Route CustomResourceDefinition (YAML).
    Crd(crd::Args),
    /// Local control plane (etcd + kube-apiserver on loopback) for trying cfnet and for tests.
    #[command(subcommand)]
    Dev(dev::Command),
    /// Stress benchmark of the controller against the local control plane.
    Bench(bench::Args),
}

fn main() -> ExitCode {
    malloc::tune();
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Controller(args) => controller::run(args),
        Command::Render(args) => render::run(args),
        Command::Crd(args) => crd::run(args),
        Command::Dev(cmd) => dev::run(cmd),
        Command::Bench(args) => bench::run(args),
    }
}
