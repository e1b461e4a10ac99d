//! The `cfnet` binary: parses the command line and hands each subcommand to the library (lib.rs).

use std::process::ExitCode;

use cfnet::{controller, crd, explain, malloc, render};
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
    #[cfg(feature = "dev-tools")]
    Demo(cfnet::demo::Args),
    /// Run the RouteController: Routes -> Services + Istio VirtualServices.
    Controller(controller::Args),
    /// Translate Route YAML/JSON offline into the Services and VirtualServices the controller would write.
    Render(render::Args),
    /// Print the Route CustomResourceDefinition (YAML).
    Crd(crd::Args),
    /// Explain one request: the Routes, VirtualService entry, Services, endpoints and Envoy route it meets,
    /// and what stops it (docs/debugging.md).
    Explain(explain::Args),
    /// Local control plane (etcd + kube-apiserver on loopback) for trying cfnet and for tests.
    #[cfg(feature = "dev-tools")]
    #[command(subcommand)]
    Dev(cfnet::dev::Command),
    /// Stress benchmark of the controller against the local control plane.
    #[cfg(feature = "dev-tools")]
    Bench(cfnet::bench::Args),
}

fn main() -> ExitCode {
    malloc::tune();
    match Cli::parse().command {
        #[cfg(feature = "dev-tools")]
        Command::Demo(args) => cfnet::demo::run(args),
        Command::Controller(args) => controller::run(args),
        Command::Render(args) => render::run(args),
        Command::Crd(args) => crd::run(args),
        Command::Explain(args) => explain::run(args),
        #[cfg(feature = "dev-tools")]
        Command::Dev(cmd) => cfnet::dev::run(cmd),
        #[cfg(feature = "dev-tools")]
        Command::Bench(args) => cfnet::bench::run(args),
    }
}
